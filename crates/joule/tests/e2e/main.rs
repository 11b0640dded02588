//! Process-level tests: real `joule` binaries, real sockets, real database files, killed and
//! restarted. One test binary, one module per story.

mod admin_rights;
mod clock_skew;
mod community;
mod crash;
mod damaged_store;
mod dashboard;
mod hostile_clients;
mod hostile_peers;
mod load;
mod market;
mod network;
mod openrpc;
mod operator;
mod pow;
mod raft;
mod walkthrough;

use std::{net::SocketAddr, path::PathBuf, time::Duration};
use testkit::{Devnet, Process, wait_for_height};

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

/// Restarts node 0 of a one-validator devnet with `adjust` applied to its command; returns the
/// process and its RPC address.
async fn restart_first_node(
    devnet: &Devnet,
    log: &str,
    adjust: impl FnOnce(Vec<String>) -> Vec<String>,
) -> (Process, SocketAddr) {
    devnet.stop_node(0).await;
    let command = adjust(devnet.restart_command(0));
    let process = Process::spawn(&command, &devnet.dir().join(log));
    let url = devnet.rpc_url(0);
    wait_for_height(&url, 1, Duration::from_secs(30)).await;
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    (process, addr)
}

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
