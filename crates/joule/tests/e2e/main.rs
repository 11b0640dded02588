//! Process-level tests: real `joule` binaries, real sockets, real database files, killed and
//! restarted. One test binary, one module per story.

mod community;
mod crash;
mod dashboard;
mod load;
mod market;
mod network;
mod walkthrough;

use std::path::PathBuf;

/// The `joule` binary under test.
fn joule() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_joule"))
}

/// Devnet options that make the tests quick: short block intervals.
const FAST: &[&str] = &["--block-ms", "200", "--empty-block-ms", "500"];

/// Devnet options for a market that trades and settles in minutes: one-minute slots whose gate
/// closes when they start, settled one slot after they end.
const MINUTE_SLOTS: &[&str] =
    &["--slot-minutes", "1", "--gate-lead-minutes", "0", "--settlement-delay-slots", "1"];

/// Wall-clock ms since the Unix epoch (the devnets of these tests run chain time at wall time).
fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap()
}
