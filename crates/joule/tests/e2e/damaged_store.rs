//! A validator's database file damaged on disk: `joule verify` and `joule node` say the file is
//! damaged (not "is the node still running?"), and `joule node --resync` moves it aside and
//! downloads the chain from the other validators.

use crate::{FOUR, joule};
use rpc::{JouleApiClient, client::HttpClientBuilder, dto::BlockId};
use std::{process::Command, time::Duration};
use testkit::{Devnet, Process, head, wait_for_height};

/// Overwrites a stretch of every 4 KiB page after the first with garbage, as a failing disk
/// or a bad copy might.
fn damage(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mut offset = 4096;
    while offset + 200 < bytes.len() {
        for byte in &mut bytes[offset + 100..offset + 200] {
            *byte ^= 0x5a;
        }
        offset += 4096;
    }
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_is_named_as_such_and_resync_brings_the_node_back() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FOUR).await;
    let urls: Vec<String> = (0..4).map(|index| devnet.rpc_url(index)).collect();
    wait_for_height(&urls[3], 5, Duration::from_secs(60)).await;
    devnet.stop_node(3).await;
    let node_dir = devnet.node_dir(3);
    damage(&node_dir.join("chain.redb"));

    // `joule verify` names the damage.
    let verified = Command::new(joule())
        .args(["verify", "--dir", node_dir.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stderr);
    assert!(!verified.status.success());
    assert!(said.contains("is damaged") && !said.contains("still running"), "{said}");

    // So does `joule node`, and it points at --resync.
    let command = devnet.restart_command(3);
    let refused = Command::new(&command[0]).args(&command[1..]).output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(said.contains("damaged") && said.contains("--resync"), "{said}");

    // With --resync it moves the file aside and catches up from its peers.
    let mut resync = command.clone();
    resync.push("--resync".into());
    let node = Process::spawn(&resync, &dir.join("resync.log"));
    let target = head(&urls[0]).await.unwrap().height + 2;
    wait_for_height(&urls[3], target, Duration::from_secs(60)).await;
    let moved: Vec<String> = std::fs::read_dir(&node_dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("chain.redb.damaged-"))
        .collect();
    assert_eq!(moved.len(), 1, "the damaged file is kept aside: {moved:?}");
    let ours = HttpClientBuilder::default().build(&urls[3]).unwrap();
    let theirs = HttpClientBuilder::default().build(&urls[0]).unwrap();
    for height in [1, target / 2, target] {
        let mine = ours.chain_block(BlockId::Height(height)).await.unwrap().unwrap();
        let other = theirs.chain_block(BlockId::Height(height)).await.unwrap().unwrap();
        assert_eq!(mine.hash, other.hash, "height {height}");
    }
    // And --resync on a healthy database changes nothing.
    assert!(node.stop().success());
    let again = Process::spawn(&resync, &dir.join("resync-again.log"));
    wait_for_height(&urls[3], target + 2, Duration::from_secs(60)).await;
    assert!(again.stop().success());
    let still: usize = std::fs::read_dir(&node_dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("chain.redb.damaged-"))
        .count();
    assert_eq!(still, 1);
    let verified = Command::new(joule())
        .args(["verify", "--dir", node_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(devnet.stop().success());
}
