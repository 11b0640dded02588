//! 10,000 transfers submitted concurrently from many accounts.

use crate::{FAST, joule};
use serde_json::Value;
use std::process::Command;
use testkit::Devnet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_transfers_each_commit_once() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FAST).await;
    let output = Command::new(joule())
        .args([
            "bench",
            "ingest",
            "--devnet",
            dir.to_str().unwrap(),
            "--txs",
            "10000",
            "--senders",
            "400",
        ])
        .args(["--workers", "8", "--batch", "250", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // Each transaction committed exactly once, or rejected with a reason.
    assert_eq!(
        report["committed"].as_u64().unwrap() + report["rejected"].as_u64().unwrap(),
        10_000,
        "{report}"
    );
    assert_eq!(report["rejected"], 0, "no transfer had a reason to be refused: {report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert!(report["tx_per_s"].as_f64().unwrap() > 0.0);

    // The supply did not change: transfers only move tokens.
    let status = devnet.joule_json(&["status", "--json"]);
    assert_eq!(status["chain_id"], "joule-devnet");
    assert!(devnet.stop().success());

    // Replaying the stored chain checks, block by block: signatures, that every sender's nonces
    // run without a gap (a transaction executes only at its sender's next nonce), that no
    // transaction appears twice, that no balance went below zero (every debit is checked), the
    // state roots, and finally that the balances add up to the supply.
    let verified = Command::new(joule())
        .args(["verify", "--dir", dir.join("node0").to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let replay: Value = serde_json::from_slice(&verified.stdout).unwrap();
    // 10,000 transfers, the 400 that funded the senders, and the devnet's 4 meter registrations.
    assert_eq!(replay["transactions"], 10_404, "{replay}");
    assert_eq!(replay["failed"], 0, "{replay}");
    assert_eq!(replay["supply"], "4000000000", "four demo accounts of 10^9 tokens: {replay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_to_fresh_recipients_create_their_accounts() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FAST).await;
    let output = Command::new(joule())
        .args(["bench", "ingest", "--devnet", dir.to_str().unwrap(), "--txs", "400"])
        .args(["--senders", "40", "--recipients", "50", "--batch", "100", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["committed"], 400, "{report}");
    // The benchmark's recipients, as it derives them: 400 transfers of 1 token over 50 accounts.
    let recipient = |index: u64| {
        let key = primitives::Hash::digest(b"joule/bench/recipient", &[&index.to_le_bytes()]);
        primitives::Address(primitives::PublicKey(key.0)).to_string()
    };
    for index in [0, 49] {
        let account = devnet.joule_json(&["balance", &recipient(index), "--json"]);
        assert_eq!(account["balance"], "8", "recipient {index}: {account}");
    }
    let beyond = devnet.joule_json(&["balance", &recipient(50), "--json"]);
    assert_eq!(beyond["balance"], "0", "only 50 recipients: {beyond}");
    assert!(devnet.stop().success());
}
