//! Process-level tests: real `joule` binaries, real sockets, real database files, killed and
//! restarted. One test binary, one module per story.

mod clock_skew;
mod community;
mod crash;
mod damaged_store;
mod hostile_peers;
mod load;
mod market;
mod network;
mod walkthrough;

use std::path::PathBuf;

/// The `joule` binary under test: this build's, or the one `JOULE_UNDER_TEST` names (to run
/// the tests against another build, an older one say, and see which attacks succeed there).
fn joule() -> PathBuf {
    std::env::var_os("JOULE_UNDER_TEST")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_joule")), PathBuf::from)
}

/// Devnet options that make the tests quick: short block intervals.
const FAST: &[&str] = &["--block-ms", "200", "--empty-block-ms", "500"];

/// Four validators with short block intervals.
const FOUR: &[&str] = &["--validators", "4", "--block-ms", "200", "--empty-block-ms", "400"];

