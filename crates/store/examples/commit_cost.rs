//! Measures how long `Store::commit_block` takes as the chain grows.
//!
//! `cargo run --release -p store --example commit_cost -- [blocks] [txs-per-block] [accounts]
//! [--undo-depth N] [--unwind K]` writes synthetic blocks of transfers (unsigned: the store does
//! not check signatures) and prints the median commit time of every tenth of the run, so a cost
//! that grows with the size of the database shows up as a rising column. With `--undo-depth N`
//! the store keeps undo data for the last N blocks, as a chain that may unwind does; with
//! `--unwind K` it then takes the last K blocks off and says how long that took.

use ledger::{Receipt, StateDiff, UndoData};
use primitives::{
    Address, Amount, Block, BlockHash, ChainId, ConsensusProof, Hash, Header, Height, Nonce,
    Payload, PublicKey, Signature, SignedTransaction, TimestampMs, Transaction,
};
use std::{sync::Arc, time::Instant};
use store::{Store, StoreConfig};

#[allow(clippy::print_stdout)]
fn main() {
    let mut numbers = Vec::new();
    let mut undo_depth = 0;
    let mut unwind = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--undo-depth" {
            undo_depth = args.next().and_then(|n| n.parse().ok()).expect("--undo-depth N");
        } else if arg == "--unwind" {
            unwind = args.next().and_then(|n| n.parse().ok()).expect("--unwind K");
        } else {
            numbers.push(arg.parse::<u64>().expect("a number"));
        }
    }
    let blocks = numbers.first().copied().unwrap_or(60);
    let per_block = numbers.get(1).copied().unwrap_or(20_000) as usize;
    let accounts = numbers.get(2).copied().unwrap_or(2_400);
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Store::open_with(&dir.path().join("chain.redb"), StoreConfig { undo_depth }).expect("open");
    let chain_id = ChainId::new("bench").expect("id");
    let address = |i: u64| {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        Address(PublicKey(primitives::Hash::digest(b"a", &[&bytes]).0))
    };
    let genesis_block = Block {
        header: Header {
            height: Height(0),
            parent: BlockHash(Hash::ZERO),
            timestamp: TimestampMs(0),
            proposer: address(0),
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            proof: ConsensusProof::Genesis,
        },
        txs: vec![],
    };
    let genesis = primitives::Genesis {
        config: primitives::ChainConfig {
            chain_id: chain_id.clone(),
            engine: primitives::EngineKind::Solo,
            validators: vec![primitives::Validator {
                name: "v".into(),
                key: address(0).0,
                power: 1,
            }],
            issuer: address(0),
            operator: address(0),
            params: primitives::ChainParams::default(),
            market: primitives::MarketParams::default(),
        },
        genesis_time: TimestampMs(0),
        balances: vec![],
    };
    store.initialize(&genesis, &genesis_block, &[]).expect("init");
    let mut parent = genesis_block.header.clone();
    let mut times = Vec::new();
    let mut counter = 0u64;
    for height in 1..=blocks {
        let txs: Vec<SignedTransaction> = (0..per_block)
            .map(|_| {
                counter += 1;
                SignedTransaction {
                    tx: Transaction {
                        chain_id: chain_id.clone(),
                        sender: address(counter % accounts),
                        nonce: Nonce(counter),
                        fee: primitives::Amount::ZERO,
                        payload: Payload::Transfer {
                            to: address((counter * 7) % accounts),
                            amount: Amount(1),
                        },
                    },
                    signature: Signature([1; 64]),
                }
            })
            .collect();
        let mut changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..accounts.min(per_block as u64 * 2))
            .map(|i| (ledger::keys::account(&address(i)), Some(vec![7u8; 24])))
            .collect();
        changes.sort();
        let header = Header {
            height: Height(height),
            parent: parent.hash(),
            timestamp: TimestampMs(height),
            proposer: address(0),
            tx_root: Block::tx_root(&txs),
            state_root: Hash::ZERO,
            proof: ConsensusProof::Genesis,
        };
        let block = Block { header, txs };
        let receipts = vec![Receipt::Success(ledger::Outcome::Done); per_block];
        // Every block rewrites the same accounts: before it, each held what the last block
        // wrote (or nothing, before the first).
        let before = (height > 1).then(|| vec![7u8; 24]);
        let undo = UndoData {
            entries: changes.iter().map(|(key, _)| (key.clone(), before.clone())).collect(),
            root_before: Hash::ZERO,
            root_after: Hash::ZERO,
        };
        let diff = StateDiff { changes, root: Hash::ZERO, undo: Arc::new(undo) };
        let started = Instant::now();
        store.commit_block(&block, &receipts, &[], &diff).expect("commit");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        parent = block.header;
    }
    let size = std::fs::metadata(dir.path().join("chain.redb")).map(|m| m.len()).unwrap_or(0);
    let reader = store.read().expect("read");
    let kept = (1..=blocks)
        .filter(|height| reader.undo_data(Height(*height)).expect("undo data").is_some())
        .count();
    let undo_bytes: usize = reader
        .undo_data(Height(blocks))
        .expect("undo data")
        .map_or(0, |undo| primitives::encode(&undo).len());
    drop(reader);
    let mut all = times.clone();
    all.sort_by(f64::total_cmp);
    let overall = all.get(all.len() / 2).copied().unwrap_or(0.0);
    let tenth = (times.len() / 10).max(1);
    println!(
        "blocks {blocks} × {per_block} txs, {accounts} accounts, undo depth {undo_depth}; file {} MB",
        size / 1_000_000
    );
    println!("undo data kept for {kept} blocks, {} kB for the last", undo_bytes / 1_000);
    println!(
        "all blocks        median commit {overall:7.1} ms  ({:.1} µs/tx)",
        overall * 1000.0 / per_block as f64
    );
    for (index, chunk) in times.chunks(tenth).enumerate() {
        let mut sorted = chunk.to_vec();
        sorted.sort_by(f64::total_cmp);
        println!(
            "blocks {:>5}..{:<5} median commit {:7.1} ms  ({:.1} µs/tx)",
            index * tenth + 1,
            index * tenth + chunk.len(),
            sorted[sorted.len() / 2],
            sorted[sorted.len() / 2] * 1000.0 / per_block as f64
        );
    }
    if unwind > 0 {
        let started = Instant::now();
        let unwound = store.unwind_to(Height(blocks.saturating_sub(unwind))).expect("unwind");
        println!(
            "unwound {} blocks in {:.1} ms",
            unwound.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
}
