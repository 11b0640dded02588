//! Measures a reorganisation of a proof-of-work chain as a node carries it out: undo the last
//! `depth` blocks and apply `depth` blocks of another branch.
//!
//! `cargo run --release -p store --example reorg_cost -- [depth] [txs-per-block] [switches]`
//! (defaults 10, 2000, 7) builds two branches of `depth` blocks from the genesis, each block
//! `txs-per-block` signed transfers among 200 senders, writes one branch, and then switches
//! from one branch to the other `switches` times. Each switch does what the node does
//! (`App::rewind`, `App::execute` and `Store::switch_branch`): read the blocks and their undo
//! data from the store, undo the ledger's state block by block, verify every signature of the
//! other branch in one batch per block, execute it and check each state root, and write the
//! switch (the store's undo and the new blocks) in one fsync'd transaction. It prints each
//! switch's phases and their medians.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ledger::{MarketEvent, Receipt, State, StateDiff};
use primitives::{
    Block, BlockHash, ChainParams, ConsensusProof, EngineKind, Hash, Header, Height, PowParams,
    SignedTransaction, TimestampMs, testing,
};
use std::time::{Duration, Instant};
use store::{BlockWrite, Store, StoreConfig};

const CHAIN: &str = "reorg-bench";
const SENDERS: u8 = 200;
const GENESIS_MS: u64 = 1_800_000_000_000;
const BLOCK_MS: u64 = 2_000;

/// A block with what executing it produced, as the node hands it to the store.
struct Executed {
    block: Block,
    receipts: Vec<Receipt>,
    events: Vec<MarketEvent>,
    diff: StateDiff,
}

fn writes(blocks: &[Executed]) -> Vec<BlockWrite<'_>> {
    blocks
        .iter()
        .map(|executed| BlockWrite {
            block: &executed.block,
            receipts: &executed.receipts,
            events: &executed.events,
            diff: &executed.diff,
        })
        .collect()
}

/// Verifies the signatures of `block` in one batch, executes it on `state` and checks its state
/// root, as the node does with a block of another branch.
fn execute(state: &mut State, block: Block) -> Executed {
    let chain_id = state.config().chain_id.clone();
    let verified: Vec<_> =
        SignedTransaction::verify_batch(block.txs.clone(), &chain_id, rand::rng())
            .into_iter()
            .map(|result| result.expect("a valid signature"))
            .collect();
    let outcome = state
        .apply_block_by(block.header.timestamp, block.header.proposer, &verified)
        .unwrap_or_else(|(index, error)| panic!("transaction {index}: {error}"));
    assert_eq!(outcome.diff.root, block.header.state_root, "state root");
    Executed { block, receipts: outcome.receipts, events: outcome.events, diff: outcome.diff }
}

/// A branch of `depth` blocks from the genesis, `per_block` transfers of `amount` each: built
/// (its state roots computed) on a state of its own.
fn branch(genesis: &primitives::Genesis, depth: u64, per_block: usize, amount: u128) -> Vec<Block> {
    let mut state = State::from_genesis(genesis).unwrap();
    let mut nonces = [0u64; SENDERS as usize];
    let mut parent = genesis_block(&state).header;
    let mut blocks = Vec::new();
    for height in 1..=depth {
        let txs: Vec<SignedTransaction> = (0..per_block)
            .map(|index| {
                let sender = (index % usize::from(SENDERS)) as u8;
                let nonce = nonces[usize::from(sender)];
                nonces[usize::from(sender)] += 1;
                let to = 201 + (index % 50) as u8;
                testing::transfer(CHAIN, sender + 1, nonce, to, amount)
            })
            .collect();
        let mut header = Header {
            height: Height(height),
            parent: parent.hash(),
            timestamp: TimestampMs(GENESIS_MS + height * BLOCK_MS),
            proposer: testing::address(250),
            tx_root: Block::tx_root(&txs),
            state_root: Hash::ZERO,
            proof: ConsensusProof::Genesis,
        };
        let verified: Vec<_> =
            SignedTransaction::verify_batch(txs.clone(), &testing::chain_id(CHAIN), rand::rng())
                .into_iter()
                .map(Result::unwrap)
                .collect();
        let outcome = state.apply_block_by(header.timestamp, header.proposer, &verified).unwrap();
        header.state_root = outcome.diff.root;
        parent = header.clone();
        blocks.push(Block { header, txs });
    }
    blocks
}

fn genesis_block(state: &State) -> Block {
    Block {
        header: Header {
            height: Height(0),
            parent: BlockHash::default(),
            timestamp: TimestampMs(GENESIS_MS),
            proposer: testing::address(0),
            tx_root: Hash::ZERO,
            state_root: state.root(),
            proof: ConsensusProof::Genesis,
        },
        txs: vec![],
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let numbers: Vec<u64> =
        std::env::args().skip(1).map(|arg| arg.parse().expect("a number")).collect();
    let depth = numbers.first().copied().unwrap_or(10);
    let per_block = numbers.get(1).copied().unwrap_or(2_000) as usize;
    let switches = numbers.get(2).copied().unwrap_or(7);

    let balances: Vec<(u8, u128)> = (0..=SENDERS).map(|seed| (seed, 1_000_000_000_000)).collect();
    let mut genesis =
        testing::genesis(CHAIN, 250, 0, &balances, ChainParams::default(), TimestampMs(GENESIS_MS));
    genesis.config.engine = EngineKind::Pow(PowParams::new(TimestampMs(GENESIS_MS)));
    genesis.config.validators.clear();
    let max_reorg_depth = match &genesis.config.engine {
        EngineKind::Pow(params) => u64::from(params.max_reorg_depth),
        _ => unreachable!(),
    };
    assert!(depth <= max_reorg_depth, "depth {depth} is beyond the reorg depth {max_reorg_depth}");

    println!("building two branches of {depth} blocks of {per_block} signed transfers");
    let branches = [branch(&genesis, depth, per_block, 1), branch(&genesis, depth, per_block, 2)];

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_with(
        &dir.path().join("chain.redb"),
        StoreConfig { undo_depth: max_reorg_depth, ..StoreConfig::default() },
    )
    .unwrap();
    let mut state = State::from_genesis(&genesis).unwrap();
    store.initialize(&genesis, &genesis_block(&state), &state.entries()).unwrap();
    let first: Vec<Executed> =
        branches[0].iter().map(|block| execute(&mut state, block.clone())).collect();
    store.commit_blocks(&writes(&first)).unwrap();
    drop(first);

    println!("switch  read ms  undo ms  verify+execute ms  write ms  total ms");
    let mut phases: [Vec<f64>; 5] = Default::default();
    for switch in 0..switches {
        let to = &branches[usize::from(switch % 2 == 0)];
        let started = Instant::now();
        // What the node's rewind reads: each block and its undo data, newest first.
        let reader = store.read().unwrap();
        let undone: Vec<_> = (1..=depth)
            .rev()
            .map(|height| {
                let block = reader.block(Height(height)).unwrap().expect("stored block");
                let undo = reader.undo_data(Height(height)).unwrap().expect("undo data");
                (block, undo)
            })
            .collect();
        drop(reader);
        let read = started.elapsed();
        for (_, undo) in &undone {
            state.undo_block(undo).unwrap();
        }
        let undo = started.elapsed() - read;
        let applied: Vec<Executed> =
            to.iter().map(|block| execute(&mut state, block.clone())).collect();
        let executed = started.elapsed() - read - undo;
        let unwound = store.switch_branch(Height(0), &writes(&applied)).unwrap();
        assert_eq!(unwound.len() as u64, depth);
        let total = started.elapsed();
        let write = total - read - undo - executed;
        println!(
            "{:>6}  {:>7.1}  {:>7.1}  {:>17.1}  {:>8.1}  {:>8.1}",
            switch + 1,
            ms(read),
            ms(undo),
            ms(executed),
            ms(write),
            ms(total)
        );
        for (list, value) in phases.iter_mut().zip([read, undo, executed, write, total]) {
            list.push(ms(value));
        }
    }
    let [read, undo, executed, write, total] = phases.map(median);
    println!(
        "median  {read:>7.1}  {undo:>7.1}  {executed:>17.1}  {write:>8.1}  {total:>8.1}  \
         ({depth} blocks undone and {depth} applied, {} transfers each way)",
        depth * per_block as u64
    );
}
