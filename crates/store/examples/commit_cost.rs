//! Measures how long writing a block takes as the chain grows.
//!
//! `cargo run --release -p store --example commit_cost -- [blocks] [txs-per-block] [accounts]
//! [--accounts N] [--generation TXS] [--cache-mb N] [--undo-depth N] [--unwind K]` writes synthetic
//! blocks of transfers (unsigned: the store does not check signatures). For each block it times
//! `Store::commit_block` and then `Store::index_blocks` for that block, as the node does one after
//! the other on the store's one writer, and prints the median of each and of their sum for every
//! tenth of the run, so a cost that grows with the size of the database shows up as a rising
//! column. It also prints how many bytes the store wrote per transfer (median per block), which
//! does not depend on what else the machine is doing.
//!
//! With the positional `accounts` every block moves tokens among the same accounts and rewrites
//! all of them (up to two per transfer). With `--accounts N` each transfer goes between two
//! accounts drawn at random from N, all of which exist from the genesis on, and the block's
//! state diff writes the accounts it touched: with many accounts, a block's history rows and
//! state entries land all over their tables.
//!
//! `--generation TXS` sets `StoreConfig::generation_txs`, the size of the indexes' generations;
//! `--cache-mb N` the store's page cache (`StoreConfig::cache_bytes`, 64 MiB by default).
//! With `--undo-depth N` the store keeps undo data for the last N blocks, as a chain that may
//! unwind does; with `--unwind K` it then takes the last K blocks off and says how long that
//! took. At the end it times lookups: transactions by hash and account history pages.

use ledger::{Receipt, StateDiff, UndoData};
use primitives::{
    Address, Amount, Block, BlockHash, ChainId, ConsensusProof, Hash, Header, Height, Nonce,
    Payload, PublicKey, Signature, SignedTransaction, TimestampMs, Transaction, TxHash,
};
use std::{collections::BTreeSet, sync::Arc, time::Instant};
use store::{Store, StoreConfig};

/// A fixed pseudo-random sequence (splitmix64), so that every run writes the same chain.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Bytes this process has passed to `write` so far (Linux; 0 elsewhere): what the store wrote,
/// whatever else the machine is doing.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines().find_map(|line| line.strip_prefix("wchar:").map(|n| n.trim().parse().ok()))
        })
        .flatten()
        .unwrap_or(0)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(values: &[f64], fraction: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

#[allow(clippy::print_stdout)]
fn main() {
    let mut numbers = Vec::new();
    let mut undo_depth = 0;
    let mut unwind = 0;
    let mut spread_accounts: Option<u64> = None;
    let mut generation_txs = StoreConfig::GENERATION_TXS;
    let mut cache_bytes = StoreConfig::CACHE_BYTES;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--cache-mb" {
            cache_bytes =
                args.next().and_then(|n| n.parse::<usize>().ok()).expect("--cache-mb N") << 20;
        } else if arg == "--undo-depth" {
            undo_depth = args.next().and_then(|n| n.parse().ok()).expect("--undo-depth N");
        } else if arg == "--unwind" {
            unwind = args.next().and_then(|n| n.parse().ok()).expect("--unwind K");
        } else if arg == "--generation" {
            generation_txs = args.next().and_then(|n| n.parse().ok()).expect("--generation TXS");
        } else if arg == "--accounts" {
            spread_accounts = Some(args.next().and_then(|n| n.parse().ok()).expect("--accounts N"));
        } else {
            numbers.push(arg.parse::<u64>().expect("a number"));
        }
    }
    let blocks = numbers.first().copied().unwrap_or(60);
    let per_block = numbers.get(1).copied().unwrap_or(20_000) as usize;
    let accounts = spread_accounts.or(numbers.get(2).copied()).unwrap_or(2_400).max(1);
    let config = StoreConfig { undo_depth, generation_txs, cache_bytes };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_with(&dir.path().join("chain.redb"), config).expect("open");
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
    // With accounts drawn from a large set, they all exist from the genesis on, so that the state
    // has its full size from the first block and only the chain grows.
    let entries: Vec<(Vec<u8>, Vec<u8>)> = match spread_accounts {
        Some(_) => {
            let mut entries: Vec<_> = (0..accounts)
                .map(|i| (ledger::keys::account(&address(i)), vec![7u8; 24]))
                .collect();
            entries.sort();
            entries
        }
        None => Vec::new(),
    };
    store.initialize(&genesis, &genesis_block, &entries).expect("init");
    drop(entries);
    let mut parent = genesis_block.header.clone();
    let (mut commit_times, mut index_times, mut sums) = (Vec::new(), Vec::new(), Vec::new());
    let mut written = Vec::new();
    let mut counter = 0u64;
    // A few transactions of every block, for the lookups at the end.
    let mut samples: Vec<TxHash> = Vec::new();
    for height in 1..=blocks {
        let txs: Vec<SignedTransaction> = (0..per_block)
            .map(|_| {
                counter += 1;
                let (sender, to) = match spread_accounts {
                    Some(_) => (mix(counter * 2) % accounts, mix(counter * 2 + 1) % accounts),
                    None => (counter % accounts, (counter * 7) % accounts),
                };
                SignedTransaction {
                    tx: Transaction {
                        chain_id: chain_id.clone(),
                        sender: address(sender),
                        nonce: Nonce(counter),
                        fee: primitives::Amount::ZERO,
                        payload: Payload::Transfer { to: address(to), amount: Amount(1) },
                    },
                    signature: Signature([1; 64]),
                }
            })
            .collect();
        let mut changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = match spread_accounts {
            Some(_) => {
                let touched: BTreeSet<Address> =
                    txs.iter().flat_map(|signed| signed.tx.accounts()).collect();
                touched
                    .iter()
                    .map(|account| (ledger::keys::account(account), Some(vec![7u8; 24])))
                    .collect()
            }
            None => (0..accounts.min(per_block as u64 * 2))
                .map(|i| (ledger::keys::account(&address(i)), Some(vec![7u8; 24])))
                .collect(),
        };
        changes.sort();
        changes.dedup_by(|a, b| a.0 == b.0);
        for position in [0, per_block / 2, per_block.saturating_sub(1)] {
            if let Some(signed) = txs.get(position) {
                samples.push(signed.hash());
            }
        }
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
        // Only the keys of the undo data matter to the store's cost; with the fixed accounts
        // each held what the last block wrote (or nothing, before the first).
        let before = (height > 1).then(|| vec![7u8; 24]);
        let undo = UndoData {
            entries: changes.iter().map(|(key, _)| (key.clone(), before.clone())).collect(),
            root_before: Hash::ZERO,
            root_after: Hash::ZERO,
        };
        let diff = StateDiff { changes, root: Hash::ZERO, undo: Arc::new(undo) };
        let bytes_before = written_bytes();
        let started = Instant::now();
        store.commit_block(&block, &receipts, &[], &diff).expect("commit");
        let committed = Instant::now();
        store.index_blocks(&[&block]).expect("index");
        let commit = committed.duration_since(started).as_secs_f64() * 1000.0;
        let index = committed.elapsed().as_secs_f64() * 1000.0;
        commit_times.push(commit);
        index_times.push(index);
        sums.push(commit + index);
        written.push(written_bytes().saturating_sub(bytes_before) as f64 / per_block as f64);
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
    let per_tx = |ms: f64| ms * 1000.0 / per_block as f64;
    let tenth = (sums.len() / 10).max(1);
    let mode = if spread_accounts.is_some() { "drawn at random" } else { "fixed" };
    println!(
        "blocks {blocks} × {per_block} txs, {accounts} accounts ({mode}), undo depth {undo_depth}, generations of {generation_txs} txs; file {} MB",
        size / 1_000_000
    );
    println!("undo data kept for {kept} blocks, {} kB for the last", undo_bytes / 1_000);
    println!(
        "all blocks        median commit {:7.1} ms  index {:7.1} ms  sum {:7.1} ms  ({:.1} µs/tx)",
        median(&commit_times),
        median(&index_times),
        median(&sums),
        per_tx(median(&sums))
    );
    for (chunk, (((commit, index), sum), written)) in commit_times
        .chunks(tenth)
        .zip(index_times.chunks(tenth))
        .zip(sums.chunks(tenth))
        .zip(written.chunks(tenth))
        .enumerate()
    {
        println!(
            "blocks {:>5}..{:<5} median commit {:7.1} ms  index {:7.1} ms  sum {:7.1} ms  ({:.1} µs/tx)  written {:.2} kB/tx",
            chunk * tenth + 1,
            chunk * tenth + sum.len(),
            median(commit),
            median(index),
            median(sum),
            per_tx(median(sum)),
            median(written) / 1000.0
        );
    }
    let first = median(sums.chunks(tenth).next().unwrap_or(&[]));
    let last = median(sums.chunks(tenth).last().unwrap_or(&[]));
    println!(
        "last tenth / first tenth, median per transfer: {:.2}",
        last / first.max(f64::MIN_POSITIVE)
    );

    // Lookups on the finished chain, spread over its whole length.
    let reader = store.read().expect("read");
    let mut by_hash = Vec::new();
    let step = (samples.len() / 300).max(1);
    for hash in samples.iter().step_by(step) {
        let started = Instant::now();
        let found = reader.transaction(hash).expect("lookup");
        by_hash.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(found.is_some(), "a written transaction is found");
    }
    let mut missing = Vec::new();
    for i in 0..100u64 {
        let hash = TxHash(Hash::digest(b"missing", &[&i.to_le_bytes()]));
        let started = Instant::now();
        let found = reader.transaction(&hash).expect("lookup");
        missing.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(found.is_none());
    }
    let (mut first_pages, mut next_pages) = (Vec::new(), Vec::new());
    let mut entries = 0;
    for i in 0..200u64 {
        let account = address(mix(i ^ 0x5eed) % accounts);
        let started = Instant::now();
        let page = reader.history(&account, None, 20).expect("history");
        first_pages.push(started.elapsed().as_secs_f64() * 1e6);
        entries += page.len();
        if let Some(last) = page.last() {
            let started = Instant::now();
            reader.history(&account, Some((last.height, last.index)), 20).expect("history");
            next_pages.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!(
        "lookup by hash      median {:8.1} µs  p99 {:8.1} µs  ({} found)",
        median(&by_hash),
        percentile(&by_hash, 0.99),
        by_hash.len()
    );
    println!(
        "lookup, no such tx  median {:8.1} µs  p99 {:8.1} µs",
        median(&missing),
        percentile(&missing, 0.99)
    );
    println!(
        "history, 20 newest  median {:8.1} µs  p99 {:8.1} µs  ({} accounts, {} entries)",
        median(&first_pages),
        percentile(&first_pages, 0.99),
        first_pages.len(),
        entries
    );
    println!(
        "history, next 20    median {:8.1} µs  p99 {:8.1} µs",
        median(&next_pages),
        percentile(&next_pages, 0.99)
    );
    drop(reader);
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
