//! Validators in one process, on real sockets: four BFT nodes agree on every block, a fifth
//! catches up, and transactions submitted anywhere are committed everywhere.

use node::{MempoolLimits, Node, NodeConfig, NodeHandle, NodeMetrics, P2pConfig};
use primitives::{
    ChainParams, EngineKind, Genesis, Height, Validator,
    testing::{self, key},
};
use prometheus_client::registry::Registry;
use std::{net::SocketAddr, path::Path, time::Duration};

const CHAIN: &str = "network-test";
const VALIDATORS: [u8; 4] = [100, 101, 102, 103];

fn genesis() -> Genesis {
    let params =
        ChainParams { block_interval_ms: 100, empty_block_interval_ms: 300, max_block_txs: 1000 };
    let balances: Vec<(u8, u128)> = (1..=10).map(|seed| (seed, 1_000_000)).collect();
    let mut genesis = testing::genesis(CHAIN, 100, 0, &balances, params, node::now_ms());
    genesis.config.engine = EngineKind::Bft;
    genesis.config.validators = VALIDATORS
        .iter()
        .map(|seed| Validator { name: format!("v{seed}"), key: key(*seed).public_key(), power: 1 })
        .collect();
    genesis
}

async fn start(dir: &Path, genesis: &Genesis, seed: u8, bootstrap: Vec<SocketAddr>) -> Node {
    let config = NodeConfig {
        data_dir: dir.to_owned(),
        genesis: genesis.clone(),
        validator_key: VALIDATORS.contains(&seed).then(|| key(seed)),
        mempool: MempoolLimits::default(),
        p2p: Some(P2pConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            advertise: None,
            bootstrap,
            identity: key(seed),
            max_peers: 50,
        }),
        verify_threads: Some(1),
        clock: node::Clock::REAL,
        mining: node::MiningConfig::default(),
    };
    Node::start(config, NodeMetrics::register(&mut Registry::default())).await.unwrap()
}

async fn wait_height(handle: &NodeHandle, height: u64, within: Duration) {
    let mut head = handle.watch_head();
    tokio::time::timeout(within, head.wait_for(|block| block.header.height.0 >= height))
        .await
        .unwrap_or_else(|_| {
            panic!("height {height} not reached, at {}", handle.head().header.height)
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_agree_and_a_fifth_node_catches_up() {
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let genesis = genesis();
    let first = start(dirs[0].path(), &genesis, VALIDATORS[0], vec![]).await;
    let (_, first_addr) = first.handle().p2p_identity().unwrap();
    let mut nodes = vec![first];
    for (index, seed) in VALIDATORS.iter().enumerate().skip(1) {
        nodes.push(start(dirs[index].path(), &genesis, *seed, vec![first_addr]).await);
    }
    let handles: Vec<NodeHandle> = nodes.iter().map(Node::handle).collect();

    // Transactions sent to one node reach the proposers through gossip.
    let txs: Vec<_> = (0..50).map(|nonce| testing::transfer(CHAIN, 1, nonce, 2, 10)).collect();
    let results = handles[3].submit(txs).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for handle in &handles {
        wait_height(handle, 5, Duration::from_secs(30)).await;
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let account = handles[0].store().read().unwrap().account(&testing::address(1)).unwrap();
            if account.nonce.0 == 50 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("all 50 transfers committed");

    // A fifth node, not a validator, joins later and follows.
    let late = start(dirs[4].path(), &genesis, 7, vec![first_addr]).await;
    let target = handles[0].head().header.height.0 + 3;
    wait_height(&late.handle(), target, Duration::from_secs(30)).await;

    // Every node has the same block at every height.
    let reader0 = handles[0].store().read().unwrap();
    for handle in handles.iter().skip(1).chain([&late.handle()]) {
        let reader = handle.store().read().unwrap();
        for height in 1..=target {
            let ours = reader0.header(Height(height)).unwrap().map(|header| header.hash());
            let theirs = reader.header(Height(height)).unwrap().map(|header| header.hash());
            if let (Some(ours), Some(theirs)) = (ours, theirs) {
                assert_eq!(ours, theirs, "height {height}");
            }
        }
    }
    for node in nodes.into_iter().chain([late]) {
        node.handle().shutdown();
        node.stopped().await.unwrap();
    }
}

/// A node whose network dies does not go on cut off from its peers: it stops, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_network_dies_stops_with_the_reason() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let genesis = genesis();
    let first = start(dirs[0].path(), &genesis, VALIDATORS[0], vec![]).await;
    let (_, first_addr) = first.handle().p2p_identity().unwrap();
    let second = start(dirs[1].path(), &genesis, VALIDATORS[1], vec![first_addr]).await;
    let handle = second.handle();
    tokio::time::timeout(Duration::from_secs(10), async {
        while handle.peers().await.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the two nodes connect");

    assert!(handle.kill_network());
    let stopped = tokio::time::timeout(Duration::from_secs(10), second.stopped())
        .await
        .expect("the node stops once its network is gone");
    match stopped {
        Err(node::NodeError::Network(reason)) => {
            assert!(reason.contains("stopped while the node was running"), "{reason}")
        }
        other => panic!("expected a network error, got {other:?}"),
    }
    assert!(handle.status().await.is_err(), "the stopped node takes no more requests");

    // A node asked to stop stops cleanly, network and all.
    let handle = first.handle();
    handle.shutdown();
    let stopped = tokio::time::timeout(Duration::from_secs(10), first.stopped()).await.unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
}
