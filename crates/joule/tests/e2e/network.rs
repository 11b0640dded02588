//! Four validator processes on loopback: crashes of one and of two, restarts, and a fifth node
//! that joins late. Nothing acknowledged as committed is ever lost.

use crate::joule;
use rpc::{JouleApiClient, client::HttpClientBuilder, dto::BlockId};
use serde_json::Value;
use std::{net::TcpListener, time::Duration};
use testkit::{Devnet, Process, head, wait_for, wait_for_height};

const FOUR: &[&str] = &["--validators", "4", "--block-ms", "200", "--empty-block-ms", "400"];

/// Every node in `urls` has the same block hash and state root at every height up to the
/// lowest head among them; returns that height.
async fn assert_same_chain(urls: &[String]) -> u64 {
    let mut lowest = u64::MAX;
    for url in urls {
        lowest = lowest.min(head(url).await.expect("node answers").height);
    }
    let clients: Vec<_> =
        urls.iter().map(|url| HttpClientBuilder::default().build(url).unwrap()).collect();
    for height in 1..=lowest {
        let mut seen: Option<(String, String)> = None;
        for (client, url) in clients.iter().zip(urls) {
            let block = client.chain_block(BlockId::Height(height)).await.unwrap().unwrap();
            let this = (block.hash, block.state_root);
            match &seen {
                None => seen = Some(this),
                Some(first) => assert_eq!(first, &this, "{url} differs at height {height}"),
            }
        }
    }
    lowest
}

/// Sends a transfer through node `via` and waits until it is committed there; returns its hash.
fn send_committed(devnet: &Devnet, via: usize, amount: &str) -> String {
    let output = std::process::Command::new(joule())
        .args(["send", "--from", "alice", "--to", "bob", "--amount", amount, "--wait", "--json"])
        .env("JOULE_RPC", devnet.rpc_url(via))
        .env("JOULE_KEYSTORE", devnet.dir().join("keystore"))
        .env("JOULE_PASSWORD_FILE", devnet.dir().join("password.txt"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sent: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sent["receipt"]["success"], true, "{sent}");
    sent["hash"].as_str().expect("hash").to_owned()
}

fn kill9(pid: u32) {
    testkit::signal(pid, 9);
}

async fn wait_dead(pid: u32) {
    wait_for("the node to die", Duration::from_secs(10), || async {
        (!testkit::is_alive(pid)).then_some(())
    })
    .await;
}

fn free_addr() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_survive_crashes_and_a_late_node_catches_up() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FOUR).await;
    let urls: Vec<String> = (0..4).map(|index| devnet.rpc_url(index)).collect();
    for url in &urls {
        wait_for_height(url, 3, Duration::from_secs(60)).await;
    }
    let mut committed = vec![send_committed(&devnet, 0, "1")];

    // One of four down: the other three go on.
    kill9(devnet.node_pid(3));
    wait_dead(devnet.node_pid(3)).await;
    let at = head(&urls[0]).await.unwrap().height;
    for url in &urls[..3] {
        wait_for_height(url, at + 3, Duration::from_secs(30)).await;
    }
    committed.push(send_committed(&devnet, 1, "2"));

    // Two of four down: a third of the power is missing and nothing commits.
    kill9(devnet.node_pid(2));
    wait_dead(devnet.node_pid(2)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stalled = head(&urls[0]).await.unwrap().height.max(head(&urls[1]).await.unwrap().height);
    tokio::time::sleep(Duration::from_secs(4)).await;
    for url in &urls[..2] {
        let now = head(url).await.unwrap().height;
        assert!(now <= stalled + 1, "{url} committed {now} with two of four validators down");
    }

    // Both back: progress resumes and all four agree.
    let restarted: Vec<Process> = [2, 3]
        .into_iter()
        .map(|index| {
            Process::spawn(
                &devnet.restart_command(index),
                &dir.join(format!("restart-{index}.log")),
            )
        })
        .collect();
    for url in &urls {
        wait_for_height(url, stalled + 3, Duration::from_secs(60)).await;
    }
    committed.push(send_committed(&devnet, 3, "3"));
    let agreed = assert_same_chain(&urls).await;
    assert!(agreed >= stalled + 3);

    // A fifth node, started later from the genesis file alone, catches up and follows.
    let late_dir = temp.path().join("late");
    let late_rpc = free_addr();
    let late_url = format!("http://{late_rpc}");
    let bootstrap = devnet.file["nodes"][0]["p2p_addr"].as_str().unwrap().to_owned();
    let late = Process::spawn(
        &[
            joule().display().to_string(),
            "node".into(),
            "--dir".into(),
            late_dir.display().to_string(),
            "--genesis".into(),
            dir.join("genesis.json").display().to_string(),
            "--rpc-addr".into(),
            late_rpc.clone(),
            "--p2p-addr".into(),
            "127.0.0.1:0".into(),
            "--bootstrap".into(),
            bootstrap,
        ],
        &temp.path().join("late.log"),
    );
    let target = head(&urls[0]).await.unwrap().height + 2;
    wait_for_height(&late_url, target, Duration::from_secs(60)).await;
    let mut all = urls.clone();
    all.push(late_url.clone());
    assert_same_chain(&all).await;

    // Every transfer acknowledged as committed is on every node.
    for url in &all {
        let client = HttpClientBuilder::default().build(url).unwrap();
        for hash in &committed {
            let tx = client.tx_get(hash.clone()).await.unwrap();
            assert!(tx.is_some(), "{hash} missing on {url}");
        }
    }
    assert!(late.stop().success());
    for process in restarted {
        assert!(process.stop().success());
    }
    assert!(devnet.stop().success());
}

/// Cuts the network into `groups` through each node's fault-injection switch (an empty group
/// list heals it).
async fn partition(urls: &[String], ids: &[String], groups: &[&[usize]]) {
    for (index, url) in urls.iter().enumerate() {
        let blocked: Vec<String> = match groups.iter().find(|group| group.contains(&index)) {
            Some(group) => (0..urls.len())
                .filter(|other| !group.contains(other))
                .map(|other| ids[other].clone())
                .collect(),
            None => Vec::new(),
        };
        let client = HttpClientBuilder::default().build(url).unwrap();
        client.node_set_blocked_peers(blocked).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_stop_the_minority_and_heal_without_forks() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FOUR).await;
    let urls: Vec<String> = (0..4).map(|index| devnet.rpc_url(index)).collect();
    let mut ids = Vec::new();
    for url in &urls {
        let client = HttpClientBuilder::default().build(url).unwrap();
        ids.push(client.node_status().await.unwrap().p2p.expect("p2p").id);
    }
    for url in &urls {
        wait_for_height(url, 2, Duration::from_secs(60)).await;
    }

    // Two against two: neither side has more than two thirds, nothing commits anywhere.
    partition(&urls, &ids, &[&[0, 1], &[2, 3]]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut split = Vec::new();
    for url in &urls {
        split.push(head(url).await.unwrap().height);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (url, before) in urls.iter().zip(&split) {
        let now = head(url).await.unwrap().height;
        assert!(now <= before + 1, "{url} went from {before} to {now} in a two-two split");
    }

    // Three against one: the three go on, the one waits.
    partition(&urls, &ids, &[&[0, 1, 2], &[3]]).await;
    let lone = head(&urls[3]).await.unwrap().height;
    let at = head(&urls[0]).await.unwrap().height;
    for url in &urls[..3] {
        wait_for_height(url, at + 4, Duration::from_secs(60)).await;
    }
    assert!(head(&urls[3]).await.unwrap().height <= lone + 1, "the cut-off node committed alone");

    // Healed: the lone node catches up and all four agree on one chain.
    partition(&urls, &ids, &[]).await;
    let target = head(&urls[0]).await.unwrap().height + 2;
    for url in &urls {
        wait_for_height(url, target, Duration::from_secs(60)).await;
    }
    assert_same_chain(&urls).await;
    assert!(devnet.stop().success());
}
