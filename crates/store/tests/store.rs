//! The store against a real redb file: commit, reopen, read back, refuse what does not fit;
//! indexes split into generations; a file of the first layout upgraded on open.

use ledger::{Receipt, State};
use primitives::{
    Amount, Block, BlockHash, ChainParams, ConsensusProof, Genesis, Hash, Header, Height,
    TimestampMs,
    testing::{self, address, chain_id},
};
use store::{Store, StoreConfig, StoreError};

mod support;

const CHAIN: &str = "store-test";
const NOW: TimestampMs = TimestampMs(1_000);

fn make_genesis(balance: u128) -> Genesis {
    let balances = [(2, balance), (3, balance)];
    testing::genesis(CHAIN, 9, 1, &balances, ChainParams::default(), TimestampMs(1))
}

fn genesis_block(state: &State) -> Block {
    Block {
        header: Header {
            height: Height(0),
            parent: BlockHash::default(),
            timestamp: TimestampMs(1),
            proposer: address(9),
            tx_root: Hash::ZERO,
            state_root: state.root(),
            proof: ConsensusProof::Genesis,
        },
        txs: vec![],
    }
}

/// Executes transfers from account 2 to 3 as block `parent.height + 1`.
fn next_block(
    state: &mut State,
    parent: &Header,
    nonces: std::ops::Range<u64>,
) -> (Block, Vec<Receipt>, ledger::StateDiff) {
    let verified: Vec<_> = nonces
        .map(|nonce| testing::transfer(CHAIN, 2, nonce, 3, 1).verify(&chain_id(CHAIN)).unwrap())
        .collect();
    let outcome = state.apply_block(NOW, &verified).unwrap();
    let txs: Vec<_> = verified.into_iter().map(|v| v.into_signed()).collect();
    let header = Header {
        height: parent.height.next().unwrap(),
        parent: parent.hash(),
        timestamp: TimestampMs(parent.timestamp.0 + 1),
        proposer: address(9),
        tx_root: Block::tx_root(&txs),
        state_root: outcome.diff.root,
        proof: ConsensusProof::Genesis,
    };
    (Block { header, txs }, outcome.receipts, outcome.diff)
}

#[test]
fn blocks_survive_reopening_with_indexes_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let genesis = make_genesis(1_000);
    let mut state = State::from_genesis(&genesis).unwrap();
    let block0 = genesis_block(&state);
    let mut blocks = vec![block0.clone()];
    {
        let store = Store::open(&path).unwrap();
        store.initialize(&genesis, &block0, &state.entries()).unwrap();
        // Initialising again with the same genesis is a no-op.
        store.initialize(&genesis, &block0, &state.entries()).unwrap();
        let mut parent = block0.header.clone();
        for round in 0..5u64 {
            let (block, receipts, diff) =
                next_block(&mut state, &parent, round * 10..round * 10 + 10);
            store.commit_block(&block, &receipts, &[], &diff).unwrap();
            parent = block.header.clone();
            blocks.push(block);
            // Blocks 1 to 4 are indexed by hash; block 5 is left unindexed, as a crash right
            // after its commit leaves it. Its transactions are found all the same.
            if round == 3 {
                let unindexed: Vec<&Block> = blocks[1..].iter().collect();
                store.index_blocks(&unindexed).unwrap();
            }
        }
        let reader = store.read().unwrap();
        assert_eq!(reader.indexed_height().unwrap(), Height(4));
        let last = &blocks[5].txs[3];
        assert_eq!(reader.transaction(&last.hash()).unwrap().unwrap().height, Height(5));
        assert!(!reader.is_indexed_at(&last.hash(), Height(5), 3).unwrap());
    }
    // Opening the store indexes what was left.
    let store = Store::open(&path).unwrap();
    let reader = store.read().unwrap();
    assert_eq!(reader.indexed_height().unwrap(), Height(5));
    assert!(reader.is_indexed_at(&blocks[5].txs[3].hash(), Height(5), 3).unwrap());
    assert_eq!(reader.genesis().unwrap(), Some(genesis));
    assert_eq!(reader.head_height().unwrap(), Some(Height(5)));
    for block in &blocks {
        assert_eq!(reader.block(block.header.height).unwrap().as_ref(), Some(block));
        assert_eq!(reader.height_of(&block.hash()).unwrap(), Some(block.header.height));
        for (index, tx) in block.txs.iter().enumerate() {
            let record = reader.transaction(&tx.hash()).unwrap().unwrap();
            assert_eq!(&record.tx, tx);
            assert_eq!(record.receipt, Receipt::Success(ledger::Outcome::Done));
            assert_eq!((record.height, record.index as usize), (block.header.height, index));
        }
    }
    let stored_state = reader.state().unwrap();
    assert_eq!(stored_state.root(), state.root());
    assert_eq!(stored_state.root(), reader.head().unwrap().unwrap().state_root);
    assert_eq!(stored_state.account(&address(3)).balance, Amount(1_050));

    // History: newest first, paged.
    let first_page = reader.history(&address(3), None, 7).unwrap();
    assert_eq!(first_page.len(), 7);
    assert_eq!((first_page[0].height, first_page[0].index), (Height(5), 9));
    let last = first_page.last().unwrap();
    let rest = reader.history(&address(3), Some((last.height, last.index)), 100).unwrap();
    assert_eq!(first_page.len() + rest.len(), 50);
    assert!(rest.iter().all(|entry| (entry.height, entry.index) < (last.height, last.index)));
    assert!(reader.history(&address(7), None, 10).unwrap().is_empty());
}

#[test]
fn refuses_gaps_replays_and_another_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("chain.redb")).unwrap();
    let genesis = make_genesis(1_000);
    let mut state = State::from_genesis(&genesis).unwrap();
    let block0 = genesis_block(&state);
    store.initialize(&genesis, &block0, &state.entries()).unwrap();

    let (block1, receipts1, diff1) = next_block(&mut state, &block0.header, 0..1);
    let (block2, receipts2, diff2) = next_block(&mut state, &block1.header, 1..2);
    assert!(matches!(
        store.commit_block(&block2, &receipts2, &[], &diff2),
        Err(StoreError::NotNextBlock { height: 2, head: 0 })
    ));
    store.commit_block(&block1, &receipts1, &[], &diff1).unwrap();
    assert!(matches!(
        store.commit_block(&block1, &receipts1, &[], &diff1),
        Err(StoreError::NotNextBlock { .. })
    ));
    assert_eq!(store.read().unwrap().head_height().unwrap(), Some(Height(1)));

    let other = make_genesis(5);
    let other_state = State::from_genesis(&other).unwrap();
    let error =
        store.initialize(&other, &genesis_block(&other_state), &other_state.entries()).unwrap_err();
    assert!(matches!(error, StoreError::GenesisMismatch { .. }), "{error}");
}

#[test]
fn a_second_process_cannot_open_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let _first = Store::open(&path).unwrap();
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, store::StoreError::InUse { .. }), "{error}");
    assert!(error.to_string().contains("in use by another process"), "{error}");
    assert!(!error.is_damaged(), "a file in use is not damaged");
}

/// Writes blocks of `sizes` transfers (from account 2 to 3) on a fresh chain; returns every
/// block from the genesis on.
fn write_chain(store: &Store, sizes: &[u64]) -> Vec<Block> {
    let genesis = make_genesis(1_000);
    let mut state = State::from_genesis(&genesis).unwrap();
    let block0 = genesis_block(&state);
    store.initialize(&genesis, &block0, &state.entries()).unwrap();
    let mut blocks = vec![block0];
    let mut nonce = 0;
    for size in sizes {
        let parent = blocks.last().unwrap().header.clone();
        let (block, receipts, diff) = next_block(&mut state, &parent, nonce..nonce + size);
        nonce += size;
        store.commit_block(&block, &receipts, &[], &diff).unwrap();
        blocks.push(block);
    }
    blocks
}

/// Checks every transaction by hash and the whole and paged history of both accounts.
fn assert_lookups(store: &Store, blocks: &[Block]) {
    let reader = store.read().unwrap();
    let mut expected = Vec::new();
    for block in blocks {
        for (index, tx) in block.txs.iter().enumerate() {
            let record = reader.transaction(&tx.hash()).unwrap().expect("a committed transaction");
            assert_eq!((record.height, record.index as usize), (block.header.height, index));
            assert!(reader.is_indexed_at(&tx.hash(), block.header.height, index as u32).unwrap());
            expected.push((block.header.height, index as u32));
        }
    }
    expected.reverse();
    for account in [address(2), address(3)] {
        support::assert_history(&reader, &account, &expected, 2);
    }
}

/// The generations as stored: (first height, generation, transactions).
fn generations(store: &Store) -> Vec<(u64, u32, u64)> {
    let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap());
    store.read().unwrap().dump().unwrap()["generations"]
        .iter()
        .map(|(key, value)| {
            let generation = u32::from_le_bytes(value[..4].try_into().unwrap());
            (word(key), generation, word(&value[4..]))
        })
        .collect()
}

#[test]
fn lookups_and_history_cross_generation_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let config = StoreConfig { generation_txs: 5, ..StoreConfig::default() };
    // Blocks 1 to 10; block 5 is larger than a generation and gets one to itself (the empty
    // block after it joins it: an empty block never opens a generation).
    let sizes = [3, 0, 2, 1, 12, 0, 2, 3, 0, 4];
    let blocks = {
        let store = Store::open_with(&path, config).unwrap();
        let blocks = write_chain(&store, &sizes);
        // Indexed up to block 3; a crash leaves 4 to 10, across four generations, unindexed.
        store.index_blocks(&blocks[1..=3].iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(store.read().unwrap().indexed_height().unwrap(), Height(3));
        blocks
    };
    let store = Store::open_with(&path, config).unwrap();
    assert_eq!(store.read().unwrap().indexed_height().unwrap(), Height(10));
    assert_eq!(
        generations(&store),
        [(0, 0, 5), (4, 1, 1), (5, 2, 12), (7, 3, 5), (10, 4, 4)],
        "each generation holds up to five transactions, or one larger block"
    );
    assert_lookups(&store, &blocks);

    // The same chain in one generation reads the same.
    let single = Store::open(&dir.path().join("single.redb")).unwrap();
    let same = write_chain(&single, &sizes);
    single.index_blocks(&same.iter().collect::<Vec<_>>()).unwrap();
    assert_eq!(same, blocks);
    assert_eq!(generations(&single), [(0, 0, 27)]);
    assert_lookups(&single, &blocks);
}

#[test]
fn unwinding_across_a_generation_boundary_removes_the_generations_above() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { undo_depth: 10, generation_txs: 4, ..StoreConfig::default() };
    let store = Store::open_with(&dir.path().join("chain.redb"), config).unwrap();
    let blocks = write_chain(&store, &[3, 1, 2, 2, 3]);
    store.index_blocks(&blocks.iter().collect::<Vec<_>>()).unwrap();
    assert_eq!(generations(&store), [(0, 0, 4), (3, 1, 4), (5, 2, 3)]);
    store.unwind_to(Height(3)).unwrap();
    assert_eq!(generations(&store), [(0, 0, 4), (3, 1, 2)]);
    assert_lookups(&store, &blocks[..=3]);
    let reader = store.read().unwrap();
    for tx in blocks[4..].iter().flat_map(|block| &block.txs) {
        assert_eq!(reader.transaction(&tx.hash()).unwrap(), None);
    }
    let dump = reader.dump().unwrap();
    drop(reader);
    for table in ["tx_index_v2", "account_history_v2"] {
        assert!(
            dump[table]
                .iter()
                .all(|(key, _)| u32::from_be_bytes(key[..4].try_into().unwrap()) <= 1),
            "{table} holds nothing of generation 2"
        );
    }
    // The next blocks join generation 1 again, as on a store that never held the unwound ones.
    let other = Store::open_with(&dir.path().join("other.redb"), config).unwrap();
    let other_blocks = write_chain(&other, &[3, 1, 2, 5]);
    assert_eq!(other_blocks[..=3], blocks[..=3]);
    let parent = &blocks[3];
    let mut state = store.read().unwrap().state().unwrap();
    let (block, receipts, diff) = next_block(&mut state, &parent.header, 6..11);
    assert_eq!(block, other_blocks[4]);
    store.commit_block(&block, &receipts, &[], &diff).unwrap();
    assert_eq!(generations(&store), generations(&other));
    assert_eq!(generations(&store), [(0, 0, 4), (3, 1, 2), (4, 2, 5)]);
}

/// Rewrites the store at `path` by hand into layout 1, as versions before generations wrote
/// it: `tx_index` keyed hash prefix ‖ height ‖ index, `account_history` keyed address ‖ height,
/// no generations and no layout in `meta`.
fn rewrite_as_layout_1(path: &std::path::Path) {
    use redb::{ReadableTable, TableDefinition};
    let new_index: TableDefinition<'_, &[u8; 24], ()> = TableDefinition::new("tx_index_v2");
    let new_history: TableDefinition<'_, &[u8; 44], &[u8]> =
        TableDefinition::new("account_history_v2");
    let old_index: TableDefinition<'_, &[u8; 20], ()> = TableDefinition::new("tx_index");
    let old_history: TableDefinition<'_, &[u8; 40], &[u8]> =
        TableDefinition::new("account_history");
    let generations: TableDefinition<'_, u64, (u32, u64)> = TableDefinition::new("generations");
    let meta: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut old = txn.open_table(old_index).unwrap();
        for row in txn.open_table(new_index).unwrap().iter().unwrap() {
            let key: [u8; 20] = row.unwrap().0.value()[4..].try_into().unwrap();
            old.insert(&key, ()).unwrap();
        }
        let mut old = txn.open_table(old_history).unwrap();
        for row in txn.open_table(new_history).unwrap().iter().unwrap() {
            let (key, value) = row.unwrap();
            let key: [u8; 40] = key.value()[4..].try_into().unwrap();
            old.insert(&key, value.value()).unwrap();
        }
        txn.open_table(meta).unwrap().remove("layout").unwrap();
    }
    txn.delete_table(new_index).unwrap();
    txn.delete_table(new_history).unwrap();
    txn.delete_table(generations).unwrap();
    txn.commit().unwrap();
}

#[test]
fn a_store_of_the_first_layout_is_upgraded_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let config = StoreConfig { undo_depth: 10, generation_txs: 4, ..StoreConfig::default() };
    let sizes = [3, 1, 2, 2, 3];
    let blocks = {
        let store = Store::open_with(&path, config).unwrap();
        let blocks = write_chain(&store, &sizes);
        // Block 5 is left unindexed, as a crash after its commit leaves it.
        store.index_blocks(&blocks[1..=4].iter().collect::<Vec<_>>()).unwrap();
        blocks
    };
    rewrite_as_layout_1(&path);
    let store = Store::open_with(&path, config).unwrap();
    let reader = store.read().unwrap();
    assert_eq!(reader.indexed_height().unwrap(), Height(5));
    let dump = reader.dump().unwrap();
    assert!(!dump.contains_key("tx_index") && !dump.contains_key("account_history"));
    drop(reader);
    // Everything written before the upgrade is generation 0.
    assert_eq!(generations(&store), [(0, 0, 11)]);
    assert_lookups(&store, &blocks);

    // New blocks open generation 1; unwinding goes back into the upgraded one.
    let mut state = store.read().unwrap().state().unwrap();
    let (block, receipts, diff) = next_block(&mut state, &blocks[5].header, 11..13);
    store.commit_block(&block, &receipts, &[], &diff).unwrap();
    store.index_blocks(&[&block]).unwrap();
    assert_eq!(generations(&store), [(0, 0, 11), (6, 1, 2)]);
    let mut longer = blocks.clone();
    longer.push(block);
    assert_lookups(&store, &longer);
    store.unwind_to(Height(4)).unwrap();
    assert_eq!(generations(&store), [(0, 0, 8)]);
    assert_lookups(&store, &blocks[..=4]);
    drop(store);
    // Opening again changes nothing.
    let store = Store::open_with(&path, config).unwrap();
    assert_eq!(generations(&store), [(0, 0, 8)]);
    assert_lookups(&store, &blocks[..=4]);
}

#[test]
fn a_store_of_a_later_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    write_chain(&Store::open(&path).unwrap(), &[2]);
    {
        let meta: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("meta");
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(meta).unwrap().insert("layout", 3u64.to_be_bytes().as_slice()).unwrap();
        txn.commit().unwrap();
    }
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Layout { .. }), "{error}");
    assert!(error.to_string().contains("newer version"), "{error}");
}
