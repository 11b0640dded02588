//! Four proof-of-work miners on loopback: split two against two (both sides mine), healed,
//! one chain wins and the other side reorganises with its transactions landing on the winning
//! chain; every miner stopped halts the chain and started resumes it; a late node syncs the
//! heaviest chain; `joule verify` passes on every node.

use crate::{
    joule,
    network::{partition, start_extra_node},
};
use rpc::{JouleApiClient, client::HttpClientBuilder, dto::BlockId};
use serde_json::Value;
use std::time::Duration;
use testkit::{Devnet, head, wait_for, wait_for_height};

const POW: &[&str] =
    &["--engine", "pow", "--validators", "4", "--block-ms", "500", "--households", "0"];

/// Runs `joule ARGS` against the node at `url` and parses its JSON output.
fn joule_at(devnet: &Devnet, url: &str, args: &[&str]) -> Value {
    let output = std::process::Command::new(joule())
        .args(args)
        .env("JOULE_RPC", url)
        .env("JOULE_KEYSTORE", devnet.dir().join("keystore"))
        .env("JOULE_PASSWORD_FILE", devnet.dir().join("password.txt"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every node reports the same head; returns its height.
async fn one_head(urls: &[String], within: Duration) -> u64 {
    wait_for("every node to report the same head", within, || async {
        let mut heads = Vec::new();
        for url in urls {
            heads.push(head(url).await?);
        }
        heads.iter().all(|head| head.hash == heads[0].hash).then(|| heads[0].height)
    })
    .await
}

/// The hash of the block at `height` on the node at `url`.
async fn hash_at(url: &str, height: u64) -> Option<String> {
    let client = HttpClientBuilder::default().build(url).unwrap();
    client.chain_block(BlockId::Height(height)).await.unwrap().map(|block| block.hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_miners_split_heal_to_the_heaviest_chain_stop_resume_and_a_late_node_follows() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("devnet");
    let devnet = Devnet::start(&joule(), &dir, POW).await;
    let urls: Vec<String> = (0..4).map(|index| devnet.rpc_url(index)).collect();
    let mut ids = Vec::new();
    for url in &urls {
        let client = HttpClientBuilder::default().build(url).unwrap();
        ids.push(client.node_status().await.unwrap().p2p.expect("p2p").id);
    }
    for url in &urls {
        wait_for_height(url, 3, Duration::from_secs(60)).await;
    }

    // Two against two: both sides mine on, each with a transaction of its own.
    partition(&urls, &ids, &[&[0, 1], &[2, 3]]).await;
    let send = |url: &str, from: &str, to: &str| {
        let sent = joule_at(
            &devnet,
            url,
            &["send", "--from", from, "--to", to, "--amount", "5", "--wait", "--json"],
        );
        assert_eq!(sent["receipt"]["success"], true, "{sent}");
        sent["hash"].as_str().unwrap().to_owned()
    };
    let sent = [send(&urls[0], "alice", "bob"), send(&urls[2], "carol", "dave")];
    let mut tips = Vec::new();
    for side in [0, 2] {
        let at = head(&urls[side]).await.unwrap().height;
        let tip = wait_for_height(&urls[side], at + 3, Duration::from_secs(60)).await;
        tips.push((tip.height, tip.hash));
    }
    // The two sides' chains differ.
    let (low, _) = tips.iter().min().unwrap();
    assert_ne!(hash_at(&urls[0], *low).await, hash_at(&urls[2], *low).await, "no fork");

    // Healed: one chain wins; the other side's blocks are undone and its transaction lands
    // on the winning chain.
    partition(&urls, &ids, &[]).await;
    let healed_at = head(&urls[0]).await.unwrap().height;
    wait_for_height(&urls[0], healed_at + 2, Duration::from_secs(60)).await;
    one_head(&urls, Duration::from_secs(60)).await;
    let mut kept = 0;
    for (height, hash) in &tips {
        if hash_at(&urls[0], *height).await.as_deref() == Some(hash.as_str()) {
            kept += 1;
        }
    }
    assert_eq!(kept, 1, "exactly one side's tip is on the winning chain");
    for url in &urls {
        let client = HttpClientBuilder::default().build(url).unwrap();
        for hash in &sent {
            wait_for("the transaction on the winning chain", Duration::from_secs(60), || async {
                let tx = client.tx_get(hash.clone()).await.ok()??;
                (tx.status == "committed").then_some(())
            })
            .await;
        }
    }

    // Every miner stopped: the chain halts; started again: it resumes.
    for url in &urls {
        let status = joule_at(&devnet, url, &["mining", "stop", "--json"]);
        assert_eq!(status["on"], false, "{status}");
    }
    // A block found just before the stop may still be on its way; after that nothing changes.
    // (Two blocks of equal work found at once stay a tie until the next block: heads may
    // differ at the tip while nobody mines.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut halted = Vec::new();
    for url in &urls {
        halted.push(head(url).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (url, before) in urls.iter().zip(&halted) {
        assert_eq!(&head(url).await.unwrap(), before, "{url} moved with mining stopped");
    }
    let halted = halted.iter().map(|head| head.height).max().unwrap();
    for url in &urls {
        let status = joule_at(&devnet, url, &["mining", "start", "--json"]);
        assert_eq!(status["on"], true, "{status}");
        assert!(status["difficulty"].as_str().unwrap().parse::<u128>().unwrap() >= 2);
    }
    for url in &urls {
        wait_for_height(url, halted + 3, Duration::from_secs(60)).await;
    }
    one_head(&urls, Duration::from_secs(60)).await;

    // A node started now from the genesis alone syncs the heaviest chain.
    let (late, late_url) = start_extra_node(&devnet, &temp.path().join("late"), &[]);
    let target = head(&urls[0]).await.unwrap().height;
    wait_for_height(&late_url, target, Duration::from_secs(60)).await;
    assert_eq!(hash_at(&late_url, target).await, hash_at(&urls[0], target).await);

    // Rewards are counted apart from fiat-backed supply.
    let client = HttpClientBuilder::default().build(&urls[0]).unwrap();
    let supply = client.chain_supply().await.unwrap();
    assert_eq!(supply.fiat_backed, supply.minted);
    assert!(supply.rewarded.parse::<u128>().unwrap() > 0, "{supply:?}");

    assert!(late.stop().success());
    assert!(devnet.stop().success());
    for index in 0..4 {
        let verified = std::process::Command::new(joule())
            .args(["verify", "--dir", devnet_node_dir(&dir, index).to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "node {index}: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
    }
}

fn devnet_node_dir(dir: &std::path::Path, index: usize) -> std::path::PathBuf {
    dir.join(format!("node{index}"))
}
