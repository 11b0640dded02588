//! A real node on a real database file: submit, commit, stop, restart.

use ledger::Receipt;
use node::{AdmitError, MempoolLimits, Node, NodeConfig, NodeMetrics, SubmitError};
use primitives::{
    Amount, ChainId, ChainParams, Genesis, Height, Nonce, Payload, SignedTransaction, Transaction,
    TxRejection,
    testing::{self, address, chain_id, key},
};
use prometheus_client::registry::Registry;
use std::{path::Path, time::Duration};

const CHAIN: &str = "node-test";

fn genesis() -> Genesis {
    let params =
        ChainParams { block_interval_ms: 50, empty_block_interval_ms: 200, max_block_txs: 500 };
    let balances: Vec<(u8, u128)> = (1..=20).map(|seed| (seed, 1_000_000)).collect();
    testing::genesis(CHAIN, 100, 0, &balances, params, node::now_ms())
}

async fn start(dir: &Path, genesis: &Genesis) -> Node {
    let config = NodeConfig {
        data_dir: dir.to_owned(),
        genesis: genesis.clone(),
        validator_key: Some(key(100)),
        mempool: MempoolLimits::default(),
        p2p: None,
        verify_threads: None,
        clock: node::Clock::REAL,
        mining: node::MiningConfig::default(),
    };
    Node::start(config, NodeMetrics::register(&mut Registry::default())).await.unwrap()
}

fn transfer(sender: u8, nonce: u64, to: u8, amount: u128) -> SignedTransaction {
    testing::transfer(CHAIN, sender, nonce, to, amount)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_submissions_and_keeps_them_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis();
    let node = start(dir.path(), &genesis).await;
    let handle = node.handle();
    let mut blocks = handle.subscribe_blocks();

    // 20 senders × 25 transfers, submitted concurrently in batches.
    let mut submissions = Vec::new();
    for sender in 1..=20u8 {
        let handle = handle.clone();
        submissions.push(tokio::spawn(async move {
            let txs: Vec<_> =
                (0..25).map(|nonce| transfer(sender, nonce, (sender % 20) + 1, 7)).collect();
            handle.submit(txs).await.unwrap()
        }));
    }
    let mut hashes = Vec::new();
    for submission in submissions {
        for result in submission.await.unwrap() {
            hashes.push(result.unwrap());
        }
    }
    assert_eq!(hashes.len(), 500);

    let mut committed = 0;
    while committed < 500 {
        let block =
            tokio::time::timeout(Duration::from_secs(10), blocks.recv()).await.unwrap().unwrap();
        committed += block.txs.len();
    }
    assert_eq!(committed, 500, "each transaction committed exactly once");
    let head = handle.head().header.clone();
    let reader = handle.store().read().unwrap();
    for hash in &hashes {
        let record = reader.transaction(hash).unwrap().expect("committed");
        assert_eq!(record.receipt, Receipt::Success(ledger::Outcome::Done));
    }
    let state = reader.state().unwrap();
    for seed in 1..=20 {
        assert_eq!(state.account(&address(seed)).nonce, Nonce(25));
        assert_eq!(
            state.account(&address(seed)).balance,
            Amount(1_000_000),
            "each sends and receives 25 × 7"
        );
    }
    drop(reader);

    handle.shutdown();
    node.stopped().await.unwrap();
    // The database closes when the last handle is gone.
    drop(handle);

    // Restart on the same directory: same blocks, same state root, and it goes on.
    let node = start(dir.path(), &genesis).await;
    let handle = node.handle();
    let restarted_head = handle.head();
    assert!(restarted_head.header.height >= head.height);
    let reader = handle.store().read().unwrap();
    assert_eq!(reader.header(head.height).unwrap().unwrap(), head);
    drop(reader);
    let result = handle.submit(vec![transfer(1, 25, 2, 1)]).await.unwrap();
    let hash = result[0].clone().unwrap();
    let mut heads = handle.watch_head();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            heads.changed().await.unwrap();
            if handle.store().read().unwrap().transaction(&hash).unwrap().is_some() {
                break;
            }
        }
    })
    .await
    .unwrap();
    handle.shutdown();
    node.stopped().await.unwrap();
    drop(handle);

    // Anyone can re-execute the stored chain and get the same roots, receipts and supply.
    let store = store::Store::open(&dir.path().join(node::DATABASE_FILE)).unwrap();
    let report = node::replay_chain(&store, |_, _| {}).unwrap();
    assert_eq!(report.transactions, 501);
    assert_eq!(report.failed, 0);
    assert_eq!(report.supply, Amount(20_000_000));

    // A block whose state root lies is caught, even when properly signed.
    let reader = store.read().unwrap();
    let head = reader.head().unwrap().unwrap();
    let mut header = primitives::Header {
        height: head.height.next().unwrap(),
        parent: head.hash(),
        timestamp: primitives::TimestampMs(head.timestamp.0 + 1),
        proposer: address(100),
        tx_root: primitives::Block::tx_root(&[]),
        state_root: primitives::Hash([9; 32]),
        proof: primitives::ConsensusProof::Genesis,
    };
    let signature =
        key(100).sign(primitives::block::block_signing_bytes(&header.hash()).as_bytes());
    header.proof = primitives::ConsensusProof::Solo { signature };
    drop(reader);
    let forged = primitives::Block { header, txs: vec![] };
    store.commit_block(&forged, &[], &[], &ledger::StateDiff::default()).unwrap();
    let error = node::replay_chain(&store, |_, _| {}).unwrap_err();
    assert!(error.to_string().contains("state root does not match"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &genesis()).await;
    let handle = node.handle();
    let root = handle.store().read().unwrap().state().unwrap().root();

    let good = transfer(1, 0, 2, 5);
    let mut forged = transfer(1, 0, 2, 5);
    forged.signature = transfer(2, 0, 2, 5).signature;
    let foreign = Transaction {
        chain_id: ChainId::new("elsewhere").unwrap(),
        sender: address(1),
        nonce: Nonce(0),
        fee: primitives::Amount::ZERO,
        payload: Payload::Transfer { to: address(2), amount: Amount(5) },
    }
    .sign(&key(1));
    let results = handle
        .submit_encoded(vec![
            vec![1, 2, 3],
            vec![0; 5000],
            forged.encode(),
            foreign.encode(),
            transfer(3, 0, 2, 2_000_000).encode(),
            Transaction {
                chain_id: chain_id(CHAIN),
                sender: address(4),
                nonce: Nonce(0),
                fee: primitives::Amount::ZERO,
                payload: Payload::Mint {
                    to: address(4),
                    amount: Amount(1),
                    fiat_ref: primitives::FiatRef::new("x").unwrap(),
                },
            }
            .sign(&key(4))
            .encode(),
        ])
        .await
        .unwrap();
    let codes: Vec<&str> = results.iter().map(|r| r.as_ref().unwrap_err().code()).collect();
    assert_eq!(
        codes,
        [
            "malformed",
            "too_large",
            "bad_signature",
            "wrong_chain",
            "insufficient_balance",
            "not_issuer"
        ]
    );
    assert!(matches!(results[3], Err(SubmitError::Rejected(TxRejection::WrongChain { .. }))));

    // A good one goes through; sending it again is a duplicate, then a replay once committed.
    let hash = handle.submit(vec![good.clone()]).await.unwrap()[0].clone().unwrap();
    let again = handle.submit(vec![good.clone()]).await.unwrap();
    assert_eq!(again[0], Err(SubmitError::Refused(AdmitError::Duplicate(hash))));
    let mut heads = handle.watch_head();
    while handle.store().read().unwrap().transaction(&hash).unwrap().is_none() {
        tokio::time::timeout(Duration::from_secs(10), heads.changed()).await.unwrap().unwrap();
    }
    let replay = handle.submit(vec![good]).await.unwrap();
    assert!(matches!(replay[0], Err(SubmitError::Refused(AdmitError::NonceUsed { .. }))));

    let state = handle.store().read().unwrap().state().unwrap();
    assert_ne!(state.root(), root, "only the good transfer changed the state");
    assert_eq!(state.account(&address(1)).balance, Amount(999_995));
    assert_eq!(state.account(&address(3)).nonce, Nonce(0));
    assert_eq!(state.account(&address(4)).nonce, Nonce(0));
    assert_eq!(state.supply().minted, Amount(20_000_000));
    assert!(handle.head().header.height > Height(0));
    handle.shutdown();
    node.stopped().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_another_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &genesis()).await;
    node.handle().shutdown();
    node.stopped().await.unwrap();
    let mut other = genesis();
    other.config.chain_id = ChainId::new("another").unwrap();
    let config = NodeConfig {
        data_dir: dir.path().to_owned(),
        genesis: other,
        validator_key: Some(key(100)),
        mempool: MempoolLimits::default(),
        p2p: None,
        verify_threads: None,
        clock: node::Clock::REAL,
        mining: node::MiningConfig::default(),
    };
    let error =
        Node::start(config, NodeMetrics::register(&mut Registry::default())).await.err().unwrap();
    assert!(error.to_string().contains("holds another chain"), "{error}");
}
