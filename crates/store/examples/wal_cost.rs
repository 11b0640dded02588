//! Measures what logging a block to the write-ahead log costs: cloning it, encoding it and
//! appending it in one durable transaction, as a Raft follower did for every block it
//! acknowledged.
//!
//! `cargo run --release -p store --example wal_cost -- [txs-per-block] [rounds]` (defaults
//! 10000, 5) prints each round's three phases.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use primitives::{Block, BlockHash, ConsensusProof, Hash, Header, Height, TimestampMs, testing};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>().expect("a number"));
    let per_block = args.next().unwrap_or(10_000);
    let rounds = args.next().unwrap_or(5);
    let txs = (0..per_block)
        .map(|i| testing::transfer("wal", (i % 200) as u8 + 1, (i / 200) as u64, 0, 1))
        .collect();
    let header = Header {
        height: Height(1),
        parent: BlockHash(Hash([0; 32])),
        timestamp: TimestampMs(1),
        proposer: testing::address(1),
        tx_root: Hash([0; 32]),
        state_root: Hash([0; 32]),
        proof: ConsensusProof::Genesis,
    };
    let block = Block { header, txs };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = store::Store::open(&dir.path().join("wal.redb")).expect("a new store");
    for round in 0..rounds {
        let started = Instant::now();
        let copy = block.clone();
        let clone = started.elapsed();
        let started = Instant::now();
        let bytes = primitives::encode(&(round as u8, Some(&copy)));
        let encode = started.elapsed();
        let started = Instant::now();
        store.append_wal(Height(round as u64 + 1), &bytes).expect("a durable append");
        let append = started.elapsed();
        println!(
            "{per_block} transfers, {} bytes: clone {:.2} ms, encode {:.2} ms, durable append {:.2} ms",
            bytes.len(),
            clone.as_secs_f64() * 1e3,
            encode.as_secs_f64() * 1e3,
            append.as_secs_f64() * 1e3
        );
    }
}
