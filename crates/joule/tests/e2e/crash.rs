//! `kill -9` under load, then the restart command from devnet.json: nothing committed is lost.

use crate::{FAST, joule};
use rpc::{JouleApiClient, client::HttpClientBuilder, dto::BlockId};
use std::{collections::BTreeMap, process::Command, time::Duration};
use testkit::{Devnet, Process, wait_for_height};

/// Heights seen committed, with their hash, state root and transaction count.
type Seen = BTreeMap<u64, (String, String, u64)>;

async fn record_blocks(url: &str, seen: &mut Seen) {
    let client = HttpClientBuilder::default().build(url).unwrap();
    let Ok(head) = client.chain_head().await else { return };
    let from = seen.keys().next_back().map_or(0, |height| height + 1);
    for height in from..=head.height {
        match client.chain_block(BlockId::Height(height)).await {
            Ok(Some(block)) => {
                seen.insert(height, (block.hash, block.state_root, block.tx_count));
            }
            _ => return,
        }
    }
}

/// Keeps recording blocks until `done` holds; panics at `deadline`.
async fn record_until(
    url: &str,
    seen: &mut Seen,
    deadline: std::time::Instant,
    done: impl Fn(&Seen) -> bool,
) {
    while !done(seen) {
        assert!(
            std::time::Instant::now() < deadline,
            "the benchmark's load never reached the chain"
        );
        record_blocks(url, seen).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_under_load_loses_nothing_committed() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FAST).await;
    let url = devnet.rpc_url(0);
    let restart = devnet.restart_command(0);
    let mut seen = Seen::new();
    let mut node: Option<Process> = None;
    let mut pid = devnet.node_pid(0);

    // Three rounds: load, kill at an arbitrary moment, restart, check.
    for (round, kill_after_ms) in [1_700u64, 2_300, 900].into_iter().enumerate() {
        let bench_log = dir.join(format!("bench-{round}.log"));
        let bench = Process::spawn(
            &[
                joule().display().to_string(),
                "bench".into(),
                "ingest".into(),
                "--devnet".into(),
                dir.display().to_string(),
                "--txs".into(),
                "40000".into(),
                "--senders".into(),
                "400".into(),
                "--from".into(),
                ["alice", "bob", "carol"][round].into(),
                "--rate".into(),
                "4000".into(),
            ],
            &bench_log,
        );
        // Wait until the load is flowing (the benchmark has funded its senders, signed, started
        // submitting, and a block of its transfers is in), then a while longer.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let submitting =
            || std::fs::read_to_string(&bench_log).unwrap_or_default().contains("submitting");
        record_until(&url, &mut seen, deadline, |_| submitting()).await;
        let round_start = seen.keys().next_back().map_or(0, |height| height + 1);
        record_until(&url, &mut seen, deadline, |seen| {
            seen.range(round_start..).any(|(_, (_, _, txs))| *txs >= 100)
        })
        .await;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(kill_after_ms) {
            record_blocks(&url, &mut seen).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        record_blocks(&url, &mut seen).await;
        let killed_at = *seen.keys().next_back().unwrap();
        eprintln!(
            "round {round}: kill -9 at height {killed_at}; transactions in the last blocks: {:?}",
            seen.range(killed_at.saturating_sub(4)..)
                .map(|(height, (_, _, txs))| (*height, *txs))
                .collect::<Vec<_>>()
        );
        testkit::signal(pid, 9);
        if let Some(process) = node.take() {
            process.kill9();
        }
        testkit::wait_for("the node to die", Duration::from_secs(10), || async {
            (!testkit::is_alive(pid)).then_some(())
        })
        .await;
        drop(bench);

        let restarted = Process::spawn(&restart, &dir.join(format!("restart-{round}.log")));
        pid = restarted.pid();
        node = Some(restarted);
        // Every block seen before the kill is there, identical, and the chain goes on.
        wait_for_height(&url, killed_at + 1, Duration::from_secs(60)).await;
        let client = HttpClientBuilder::default().build(&url).unwrap();
        for (height, (hash, state_root, _)) in &seen {
            let block = client.chain_block(BlockId::Height(*height)).await.unwrap().unwrap();
            assert_eq!(
                (&block.hash, &block.state_root),
                (hash, state_root),
                "block {height} after round {round}"
            );
        }
        let loaded_blocks =
            seen.range(round_start..=killed_at).filter(|(_, (_, _, txs))| *txs > 0).count();
        assert!(loaded_blocks > 0, "blocks with transactions were committed before the kill");
    }

    // The chain takes new transactions after the last restart.
    let sent = devnet.joule_json(&[
        "send", "--from", "dave", "--to", "alice", "--amount", "1", "--wait", "--json",
    ]);
    assert_eq!(sent["receipt"]["success"], true);
    assert!(node.take().unwrap().stop().success());
    assert!(devnet.stop().success());
    let verified = Command::new(joule())
        .args(["verify", "--dir", dir.join("node0").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}
