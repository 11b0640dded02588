//! The store against a real redb file: commit, reopen, read back, refuse what does not fit.

use ledger::{Receipt, State};
use primitives::{
    Amount, Block, BlockHash, ChainParams, ConsensusProof, Genesis, Hash, Header, Height,
    TimestampMs,
    testing::{self, address, chain_id},
};
use store::{Store, StoreError};

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
