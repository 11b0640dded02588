//! Process-level tests: real `joule` binaries, real sockets, real database files, killed and
//! restarted. One test binary, one module per story.

mod community;
mod crash;
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
