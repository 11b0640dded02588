//! Four validator processes on loopback: crashes of one and of two, restarts, and a fifth node
//! that joins late. Nothing acknowledged as committed is ever lost.

use crate::{FOUR, joule};
use rpc::{JouleApiClient, client::HttpClientBuilder, dto::BlockId};
use serde_json::Value;
use std::{net::TcpListener, time::Duration};
use testkit::{Devnet, Process, head, wait_for, wait_for_height};

/// Every node in `urls` has the same block hash and state root at every height up to the
/// lowest head among them; returns that height.
pub(crate) async fn assert_same_chain(urls: &[String]) -> u64 {
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
pub(crate) fn send_committed(devnet: &Devnet, via: usize, amount: &str) -> String {
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

pub(crate) fn kill9(pid: u32) {
    testkit::signal(pid, 9);
}

pub(crate) async fn wait_dead(pid: u32) {
    wait_for("the node to die", Duration::from_secs(10), || async {
        (!testkit::is_alive(pid)).then_some(())
    })
    .await;
}

fn free_addr() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

/// Starts one more `joule node` in `dir` that joins the devnet from its genesis file, with
/// `extra` arguments; returns the process and its RPC URL.
pub(crate) fn start_extra_node(
    devnet: &Devnet,
    dir: &std::path::Path,
    extra: &[String],
) -> (Process, String) {
    let rpc_addr = free_addr();
    let bootstrap = devnet.file["nodes"][0]["p2p_addr"].as_str().unwrap().to_owned();
    let mut command = vec![
        joule().display().to_string(),
        "node".into(),
        "--dir".into(),
        dir.display().to_string(),
        "--genesis".into(),
        devnet.dir().join("genesis.json").display().to_string(),
        "--rpc-addr".into(),
        rpc_addr.clone(),
        "--p2p-addr".into(),
        "127.0.0.1:0".into(),
        "--bootstrap".into(),
        bootstrap,
    ];
    command.extend_from_slice(extra);
    let process = Process::spawn(&command, &dir.with_extension("log"));
    (process, format!("http://{rpc_addr}"))
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
    let (late, late_url) = start_extra_node(&devnet, &temp.path().join("late"), &[]);
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

/// The peer ids of the nodes at `urls`.
pub(crate) async fn peer_ids(urls: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for url in urls {
        let client = HttpClientBuilder::default().build(url).unwrap();
        ids.push(client.node_status().await.unwrap().p2p.expect("p2p").id);
    }
    ids
}

/// Cuts the network into `groups` through each node's fault-injection switch (an empty group
/// list heals it).
pub(crate) async fn partition(urls: &[String], ids: &[String], groups: &[&[usize]]) {
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
    let ids = peer_ids(&urls).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_replaces_validators_from_a_later_height() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, FOUR).await;
    let urls: Vec<String> = (0..4).map(|index| devnet.rpc_url(index)).collect();
    let genesis_set = devnet.joule_json(&["validators", "--json"]);
    let old: Vec<(String, String)> = genesis_set["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (v["name"].as_str().unwrap().to_owned(), v["address"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(old.len(), 4, "{genesis_set}");

    // A fifth node with its own validator key follows as a full node.
    let key_file = temp.path().join("newcomer.key");
    std::fs::write(&key_file, "77".repeat(32)).unwrap();
    let (newcomer, newcomer_url) = start_extra_node(
        &devnet,
        &temp.path().join("newcomer"),
        &["--validator-key".into(), key_file.display().to_string()],
    );
    wait_for_height(&newcomer_url, 2, Duration::from_secs(60)).await;
    let client = HttpClientBuilder::default().build(&newcomer_url).unwrap();
    let status = client.node_status().await.unwrap();
    assert!(!status.is_validator);
    let newcomer_address = status.p2p.expect("p2p").id;

    // Only the operator may change the set.
    let refused = devnet.joule(&[
        "validators",
        "set",
        "--from",
        "alice",
        "--wait",
        &format!("x={newcomer_address}"),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("operator"), "{refused:?}");

    // The operator keeps validators 0 and 1, drops 2 and 3, and adds the newcomer.
    let from_height = head(&urls[0]).await.unwrap().height + 6;
    let new_set = [
        format!("{}={}", old[0].0, old[0].1),
        format!("{}={}", old[1].0, old[1].1),
        format!("node4={newcomer_address}"),
    ];
    let mut args = vec!["validators", "set", "--from", "operator", "--wait", "--json"];
    let from_arg = from_height.to_string();
    args.extend(["--from-height", &from_arg]);
    args.extend(new_set.iter().map(String::as_str));
    let sent = devnet.joule_json(&args);
    assert_eq!(sent["receipt"]["success"], true, "{sent}");
    let waiting = devnet.joule_json(&["validators", "--json"]);
    assert_eq!(waiting["upcoming"]["from_height"], from_height, "{waiting}");
    assert_eq!(waiting["validators"].as_array().unwrap().len(), 4);

    // From that height the newcomer validates and the two dropped validators do not.
    wait_for_height(&urls[0], from_height + 1, Duration::from_secs(60)).await;
    wait_for_height(&newcomer_url, from_height + 1, Duration::from_secs(60)).await;
    assert!(client.node_status().await.unwrap().is_validator);
    let dropped = HttpClientBuilder::default().build(&urls[3]).unwrap();
    assert!(!dropped.node_status().await.unwrap().is_validator);
    let now = devnet.joule_json(&["validators", "--json"]);
    let names: Vec<&str> =
        now["validators"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, [old[0].0.as_str(), old[1].0.as_str(), "node4"], "{now}");
    assert!(now["upcoming"].is_null(), "{now}");

    // With the old set, two of four down would stop the chain; with the new one, the three
    // validators left (0, 1 and the newcomer) go on.
    kill9(devnet.node_pid(2));
    kill9(devnet.node_pid(3));
    wait_dead(devnet.node_pid(2)).await;
    wait_dead(devnet.node_pid(3)).await;
    let at = head(&urls[0]).await.unwrap().height;
    for url in [&urls[0], &urls[1], &newcomer_url] {
        wait_for_height(url, at + 4, Duration::from_secs(30)).await;
    }
    let block = client.chain_block(BlockId::Height(at + 3)).await.unwrap().unwrap();
    assert!(block.proof.ends_with(", 3 precommits"), "three signers: {}", block.proof);

    // A node that starts from the genesis now checks the certificates of both sets on its way.
    let (late, late_url) = start_extra_node(&devnet, &temp.path().join("late"), &[]);
    let target = head(&urls[0]).await.unwrap().height + 1;
    wait_for_height(&late_url, target, Duration::from_secs(60)).await;
    assert_same_chain(&[urls[0].clone(), urls[1].clone(), newcomer_url.clone(), late_url]).await;
    assert!(late.stop().success());
    assert!(newcomer.stop().success());
    assert!(devnet.stop().success());
}
