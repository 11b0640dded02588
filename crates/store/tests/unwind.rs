//! Unwinding the store against real redb files: random histories of transfers, mints and
//! market activity, unwound by 1 to 100 blocks, leave every table row for row as in a store
//! that only ever wrote the blocks below, and the chain reads consistently after other blocks
//! are written on top. Unwinding further than the undo data reaches is refused and changes
//! nothing; undo data survives reopening.

use ledger::{
    MarketEvent, Receipt, State, StateDiff,
    testing::{RandomBlocks, genesis},
};
use primitives::{
    Address, Block, BlockHash, ClearingRule, ConsensusProof, Genesis, Hash, Header, Height, Slot,
    testing,
};
use proptest::prelude::*;
use std::{collections::BTreeMap, path::Path};
use store::{BlockWrite, Store, StoreConfig, StoreError, TableRows};

mod support;

/// Generations this small put a boundary every few blocks, so unwinding crosses them.
const GENERATION_TXS: u64 = 8;

/// A block as the node hands it to the store.
#[derive(Clone)]
struct Written {
    block: Block,
    receipts: Vec<Receipt>,
    events: Vec<MarketEvent>,
    diff: StateDiff,
}

impl Written {
    fn write(&self) -> BlockWrite<'_> {
        BlockWrite {
            block: &self.block,
            receipts: &self.receipts,
            events: &self.events,
            diff: &self.diff,
        }
    }
}

struct Chain {
    genesis: Genesis,
    block0: Block,
    state: State,
    blocks: Vec<Written>,
}

impl Chain {
    fn new(clearing: ClearingRule) -> Chain {
        let genesis = genesis(clearing);
        let state = State::from_genesis(&genesis).unwrap();
        let block0 = Block {
            header: Header {
                height: Height(0),
                parent: BlockHash::default(),
                timestamp: genesis.genesis_time,
                proposer: testing::address(ledger::testing::VALIDATOR),
                tx_root: Hash::ZERO,
                state_root: state.root(),
                proof: ConsensusProof::Genesis,
            },
            txs: vec![],
        };
        Chain { genesis, block0, state, blocks: vec![] }
    }

    fn head(&self) -> &Header {
        self.blocks.last().map_or(&self.block0.header, |written| &written.block.header)
    }

    /// Executes `count` random blocks from `seed` on top of the chain.
    fn extend(&mut self, seed: u64, count: usize) {
        let mut random = RandomBlocks::new(seed);
        for _ in 0..count {
            let (time, verified) = random.next_block(&self.state);
            let outcome = self.state.apply_block(time, &verified).unwrap();
            let txs: Vec<_> = verified.into_iter().map(|tx| tx.into_signed()).collect();
            let parent = self.head();
            let header = Header {
                height: parent.height.next().unwrap(),
                parent: parent.hash(),
                timestamp: time,
                proposer: parent.proposer,
                tx_root: Block::tx_root(&txs),
                state_root: outcome.diff.root,
                proof: ConsensusProof::Genesis,
            };
            self.blocks.push(Written {
                block: Block { header, txs },
                receipts: outcome.receipts,
                events: outcome.events,
                diff: outcome.diff,
            });
        }
    }

    /// Opens (or creates) a store at `path` holding this chain's genesis.
    fn store(&self, path: &Path, undo_depth: u64) -> Store {
        let config =
            StoreConfig { undo_depth, generation_txs: GENERATION_TXS, ..StoreConfig::default() };
        let store = Store::open_with(path, config).unwrap();
        let genesis_state = State::from_genesis(&self.genesis).unwrap();
        store.initialize(&self.genesis, &self.block0, &genesis_state.entries()).unwrap();
        store
    }
}

/// The writes of `blocks`.
fn writes(blocks: &[Written]) -> Vec<BlockWrite<'_>> {
    blocks.iter().map(Written::write).collect()
}

fn dump(store: &Store) -> BTreeMap<String, TableRows> {
    store.read().unwrap().dump().unwrap()
}

/// Compares two stores table by table, row by row, naming the first difference.
fn assert_same_tables(actual: &Store, expected: &Store, context: &str) {
    let (actual, expected) = (dump(actual), dump(expected));
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{context}: tables"
    );
    for (table, rows) in &expected {
        let other = &actual[table];
        let first_difference = rows.iter().zip(other).position(|(left, right)| left != right);
        assert!(
            rows == other,
            "{context}: table {table} has {} rows, expected {}; first difference at row {:?}",
            other.len(),
            rows.len(),
            first_difference
        );
    }
}

/// Every account the random histories touch.
fn accounts() -> Vec<Address> {
    (0..=ledger::testing::MEMBERS)
        .flat_map(|member| [member, ledger::testing::meter(member)])
        .map(testing::address)
        .collect()
}

/// Reads `store` back against the chain it should hold: every block, its hash, each
/// transaction by hash with its receipt, each account's history (whole and paged), and the
/// market records of every slot cleared and settled; and blocks of another branch are gone.
fn assert_reads(store: &Store, chain: &Chain, gone: &[Written]) {
    let reader = store.read().unwrap();
    assert_eq!(reader.head().unwrap().as_ref(), Some(chain.head()));
    assert_eq!(reader.state().unwrap().root(), chain.state.root());
    assert_eq!(reader.state().unwrap().entries(), chain.state.entries());
    let mut history: BTreeMap<Address, Vec<(Height, u32)>> = BTreeMap::new();
    let mut clearings = BTreeMap::new();
    let mut settlements = BTreeMap::new();
    for written in &chain.blocks {
        let height = written.block.header.height;
        assert_eq!(reader.block(height).unwrap().as_ref(), Some(&written.block));
        assert_eq!(reader.height_of(&written.block.hash()).unwrap(), Some(height));
        for (index, tx) in written.block.txs.iter().enumerate() {
            let record = reader.transaction(&tx.hash()).unwrap().expect("a committed transaction");
            assert_eq!((record.height, record.index as usize), (height, index));
            assert_eq!(record.receipt, written.receipts[index]);
            for account in tx.tx.accounts() {
                let positions = history.entry(account).or_default();
                if !positions.contains(&(height, index as u32)) {
                    positions.push((height, index as u32));
                }
            }
        }
        for event in &written.events {
            match event {
                MarketEvent::Cleared { slot, trades, .. } => {
                    clearings.insert(*slot, (height, trades.clone()));
                }
                MarketEvent::Settled { slot, records } => {
                    settlements.insert(*slot, (height, records.clone()));
                }
            }
        }
    }
    for written in gone {
        let height = written.block.header.height;
        let current = reader.header(height).unwrap().map(|header| header.hash());
        if current != Some(written.block.hash()) {
            assert_eq!(reader.height_of(&written.block.hash()).unwrap(), None, "unwound block");
        }
        for tx in &written.block.txs {
            // Gone, unless the same transaction is on the new branch too.
            if let Some(record) = reader.transaction(&tx.hash()).unwrap() {
                let block = reader.block(record.height).unwrap().unwrap();
                assert_eq!(block.txs[record.index as usize].hash(), tx.hash());
            }
        }
    }
    for account in accounts() {
        let mut expected = history.remove(&account).unwrap_or_default();
        expected.reverse();
        support::assert_history(&reader, &account, &expected, 3);
    }
    let first = Slot(chain.genesis.config.market.slot_of(chain.genesis.genesis_time).0);
    let last = Slot(chain.genesis.config.market.slot_of(chain.head().timestamp).0 + 10);
    for slot in first.0..=last.0 {
        let slot = Slot(slot);
        let stored = reader.clearing(slot).unwrap();
        match clearings.get(&slot) {
            Some((height, trades)) => {
                let stored = stored.expect("a cleared slot has its record");
                assert_eq!((stored.height, &stored.trades), (*height, trades));
            }
            None => assert_eq!(stored, None, "slot {slot} was not cleared on this branch"),
        }
        let community = reader.community(slot..=slot).unwrap();
        let settled = settlements.get(&slot);
        assert_eq!(
            reader.settled_at(slot).unwrap(),
            settled.map(|(height, _)| *height),
            "the block that settled slot {slot}"
        );
        let records = settled.map(|(_, records)| records);
        assert_eq!(community.len(), usize::from(records.is_some()), "community sums of {slot}");
        for account in accounts() {
            let stored = reader.settlements(&account, slot..=slot).unwrap();
            let expected: Vec<_> = records
                .into_iter()
                .flatten()
                .filter(|record| record.account == account)
                .cloned()
                .collect();
            assert_eq!(stored, expected, "settlement of {account} in {slot}");
        }
    }
}

/// Undo data reaches further than any test history, so no undo data is pruned and the
/// reference store's undo table can be compared too.
const DEEP: u64 = 128;

/// Writes `count` random blocks (in batches of up to `batch`, indexing all but the last `lag`),
/// unwinds `depth` of them, and compares the store with one that only ever wrote the blocks
/// below, before and after reopening both; then writes `again` other blocks on both and checks
/// them again and reads the chain back.
fn unwind_and_compare(
    seed: u64,
    clearing: ClearingRule,
    count: usize,
    depth: usize,
    lag: usize,
    batch: usize,
    again: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    let (path, reference_path) = (dir.path().join("chain.redb"), dir.path().join("ref.redb"));
    let mut chain = Chain::new(clearing);
    chain.extend(seed, count);
    let indexed_up_to = count - lag;

    let store = chain.store(&path, DEEP);
    for (round, group) in chain.blocks.chunks(batch.max(1)).enumerate() {
        if round % 2 == 0 && group.len() == 1 {
            store
                .commit_block(&group[0].block, &group[0].receipts, &group[0].events, &group[0].diff)
                .unwrap();
        } else {
            store.commit_blocks(&writes(group)).unwrap();
        }
        let index: Vec<&Block> = group
            .iter()
            .map(|written| &written.block)
            .filter(|block| block.header.height.0 as usize <= indexed_up_to)
            .collect();
        store.index_blocks(&index).unwrap();
    }

    let target = count - depth;
    let reference = chain.store(&reference_path, DEEP);
    reference.commit_blocks(&writes(&chain.blocks[..target])).unwrap();
    let index: Vec<&Block> =
        chain.blocks[..target.min(indexed_up_to)].iter().map(|written| &written.block).collect();
    reference.index_blocks(&index).unwrap();

    let generations_before = dump(&store)["generations"].len();
    let unwound = store.unwind_to(Height(target as u64)).unwrap();
    let gone = chain.blocks.split_off(target);
    assert_eq!(unwound.len(), depth);
    // More transactions than a generation holds cannot all have joined one that started below
    // (only a generation's first block may be larger, and block 1 joins the genesis's).
    let gone_txs: usize = gone.iter().map(|written| written.block.txs.len()).sum();
    if target > 0 && gone_txs as u64 > GENERATION_TXS {
        assert!(dump(&store)["generations"].len() < generations_before, "a boundary was crossed");
    }
    for (unwound, written) in unwound.iter().zip(gone.iter().rev()) {
        assert_eq!(unwound.block, written.block, "the blocks taken off, newest first");
        assert_eq!(unwound.undo, *written.diff.undo);
        chain.state.undo_block(&unwound.undo).unwrap();
    }
    assert_eq!(chain.state.root(), chain.head().state_root, "the ledger undone in memory");
    assert_same_tables(&store, &reference, "after unwinding");

    // Both reopened (opening indexes what was left unindexed): still the same.
    drop((store, reference));
    let store = chain.store(&path, DEEP);
    let reference = chain.store(&reference_path, DEEP);
    assert_same_tables(&store, &reference, "after reopening");

    // Another branch on top.
    chain.extend(seed ^ 0xa5a5_a5a5, again);
    for written in &chain.blocks[target..] {
        for store in [&store, &reference] {
            store.commit_blocks(&[written.write()]).unwrap();
            store.index_blocks(&[&written.block]).unwrap();
        }
    }
    assert_same_tables(&store, &reference, "after writing another branch");
    assert_reads(&store, &chain, &gone);
}

fn clearing(pay_as_bid: bool) -> ClearingRule {
    if pay_as_bid { ClearingRule::PayAsBid } else { ClearingRule::UniformPrice }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Short histories unwound by up to ten blocks, with the indexer behind or not.
    #[test]
    fn unwinding_a_few_blocks_leaves_the_tables_of_the_shorter_chain(
        seed in any::<u64>(),
        pay_as_bid in any::<bool>(),
        count in 1usize..=20,
        depth in 1usize..=10,
        lag in 0usize..=3,
        batch in 1usize..=3,
        again in 0usize..=4,
    ) {
        let depth = depth.min(count);
        unwind_and_compare(seed, clearing(pay_as_bid), count, depth, lag.min(count), batch, again);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    /// Long histories unwound by up to a hundred blocks.
    #[test]
    fn unwinding_up_to_a_hundred_blocks_leaves_the_tables_of_the_shorter_chain(
        seed in any::<u64>(),
        pay_as_bid in any::<bool>(),
        depth in 11usize..=100,
        below in 0usize..=5,
        lag in 0usize..=3,
    ) {
        unwind_and_compare(seed, clearing(pay_as_bid), depth + below, depth, lag, 4, 3);
    }
}

/// The deepest case exactly: a hundred blocks unwound down to the genesis.
#[test]
fn a_hundred_blocks_unwind_to_the_genesis() {
    unwind_and_compare(100, ClearingRule::UniformPrice, 100, 100, 0, 10, 2);
}

#[test]
fn unwinding_further_than_the_undo_depth_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new(ClearingRule::UniformPrice);
    chain.extend(5, 12);
    let store = chain.store(&dir.path().join("chain.redb"), 5);
    for written in &chain.blocks {
        store.commit_blocks(&[written.write()]).unwrap();
    }
    // Undo data of the last five blocks only.
    let reader = store.read().unwrap();
    assert!(reader.undo_data(Height(7)).unwrap().is_none());
    for height in 8..=12 {
        assert_eq!(
            reader.undo_data(Height(height)).unwrap().as_ref(),
            Some(&*chain.blocks[height as usize - 1].diff.undo)
        );
    }
    drop(reader);
    let before = dump(&store);
    let error = store.unwind_to(Height(6)).unwrap_err();
    assert!(
        matches!(error, StoreError::UnwindTooDeep { target: 6, head: 12, lowest: 7, depth: 5 }),
        "{error}"
    );
    assert!(error.to_string().contains("reaches down to height 7"), "{error}");
    let error = store.unwind_to(Height(13)).unwrap_err();
    assert!(matches!(error, StoreError::UnwindAboveHead { target: 13, head: 12 }), "{error}");
    assert!(store.unwind_to(Height(12)).unwrap().is_empty(), "unwinding to the head does nothing");
    assert_eq!(dump(&store), before, "refusals change nothing");

    // The limit is exactly five blocks.
    assert_eq!(store.unwind_to(Height(7)).unwrap().len(), 5);
    assert!(matches!(store.unwind_to(Height(6)), Err(StoreError::UnwindTooDeep { lowest: 7, .. })));
}

#[test]
fn a_final_chain_keeps_no_undo_data_and_cannot_unwind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut chain = Chain::new(ClearingRule::UniformPrice);
    chain.extend(9, 6);
    {
        // Kept for three blocks, then reopened as a final chain: the next commit drops it all.
        let store = chain.store(&path, 3);
        for written in &chain.blocks[..5] {
            store.commit_blocks(&[written.write()]).unwrap();
        }
        assert!(store.read().unwrap().undo_data(Height(5)).unwrap().is_some());
    }
    let store = chain.store(&path, 0);
    assert_eq!(store.config().undo_depth, StoreConfig::default().undo_depth);
    store.commit_blocks(&[chain.blocks[5].write()]).unwrap();
    assert!(dump(&store)["undo"].is_empty(), "no undo data on a final chain");
    assert!(matches!(
        store.unwind_to(Height(5)),
        Err(StoreError::UnwindTooDeep { lowest: 6, depth: 0, .. })
    ));
}

#[test]
fn undo_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut chain = Chain::new(ClearingRule::PayAsBid);
    chain.extend(11, 10);
    {
        let store = chain.store(&path, 10);
        store.commit_blocks(&writes(&chain.blocks)).unwrap();
    }
    let store = chain.store(&path, 10);
    let unwound = store.unwind_to(Height(2)).unwrap();
    assert_eq!(unwound.len(), 8);
    drop(store);
    // The unwind was durable: reopened, the chain ends at block 2 and its state matches.
    let store = chain.store(&path, 10);
    let reader = store.read().unwrap();
    assert_eq!(reader.head_height().unwrap(), Some(Height(2)));
    assert_eq!(reader.state().unwrap().root(), chain.blocks[1].block.header.state_root);
    assert_eq!(reader.indexed_height().unwrap(), Height(2));
}

#[test]
fn switching_branch_unwinds_and_writes_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new(ClearingRule::UniformPrice);
    chain.extend(21, 8);
    let store = chain.store(&dir.path().join("chain.redb"), 10);
    store.commit_blocks(&writes(&chain.blocks)).unwrap();

    let mut other = Chain::new(ClearingRule::UniformPrice);
    other.blocks = chain.blocks[..5].to_vec();
    other.state = State::from_entries(store.read().unwrap().state().unwrap().entries()).unwrap();
    for unwound in chain.blocks[5..].iter().rev() {
        other.state.undo_block(&unwound.diff.undo).unwrap();
    }
    other.extend(22, 4);
    let gone = chain.blocks[5..].to_vec();

    // A branch that does not fit is refused whole: the old chain stays.
    let before = dump(&store);
    let error = store.switch_branch(Height(5), &writes(&other.blocks[6..])).unwrap_err();
    assert!(matches!(error, StoreError::NotNextBlock { height: 7, head: 5 }), "{error}");
    assert_eq!(dump(&store), before);

    let unwound = store.switch_branch(Height(5), &writes(&other.blocks[5..])).unwrap();
    assert_eq!(unwound.len(), 3);
    store
        .index_blocks(&other.blocks.iter().map(|written| &written.block).collect::<Vec<_>>())
        .unwrap();
    assert_reads(&store, &other, &gone);
}

#[test]
fn a_diff_without_its_undo_data_is_refused_when_undo_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new(ClearingRule::UniformPrice);
    chain.extend(31, 1);
    let store = chain.store(&dir.path().join("chain.redb"), 4);
    let mut written = chain.blocks[0].clone();
    written.diff.undo = Default::default();
    let before = dump(&store);
    let error = store.commit_blocks(&[written.write()]).unwrap_err();
    assert!(matches!(error, StoreError::UndoMismatch { height: 1 }), "{error}");
    assert_eq!(dump(&store), before);
}

/// The indexer may still hold a block that was unwound meanwhile: it is skipped, and the last
/// indexed height never passes the head.
#[test]
fn an_unwound_block_handed_to_the_indexer_late_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new(ClearingRule::UniformPrice);
    chain.extend(41, 4);
    let store = chain.store(&dir.path().join("chain.redb"), 4);
    store.commit_blocks(&writes(&chain.blocks)).unwrap();
    let blocks: Vec<&Block> = chain.blocks.iter().map(|written| &written.block).collect();
    store.index_blocks(&blocks[..2]).unwrap();
    store.unwind_to(Height(2)).unwrap();
    store.index_blocks(&blocks[2..]).unwrap();
    let reader = store.read().unwrap();
    assert_eq!(reader.indexed_height().unwrap(), Height(2));
    for tx in blocks[2..].iter().flat_map(|block| &block.txs) {
        assert_eq!(reader.transaction(&tx.hash()).unwrap(), None);
    }
    assert!(dump(&store)["tx_index_v2"].iter().all(|(key, _)| {
        // Key: the generation, 8 bytes of hash prefix, then the height, big-endian.
        u64::from_be_bytes(key[12..20].try_into().unwrap()) <= 2
    }));
}
