//! The core with the proof-of-work engine on a stand-in application that can undo its blocks:
//! a heavier branch replaces the chain in one switch and gives back what it undid, a block
//! before its parent waits in the orphan pool while the parent is fetched, and a branch with a
//! block that does not execute leaves the chain and the state as they were.

use super::super::*;
use crate::validators::ValidatorSchedule;
use consensus::{PowEngine, Restored};
use primitives::{
    Address, Amount, ChainConfig, ChainParams, EngineKind, Hash, MarketParams, PowParams,
    SecretKey, Target, TimeScale, pow::proof_hash,
};

const START: u64 = 1_000_000;

fn params() -> PowParams {
    PowParams {
        target_block_ms: 1_000,
        block_reward: Amount(1),
        initial_difficulty: 2,
        half_life_blocks: 16,
        max_reorg_depth: 4,
        settlement_confirmations: 2,
        schedule_start: TimestampMs(START),
    }
}

fn config() -> ChainConfig {
    let operator = Address(SecretKey::from_seed([7; 32]).public_key());
    ChainConfig {
        chain_id: primitives::ChainId::new("fork-test").unwrap(),
        engine: EngineKind::Pow(params()),
        validators: vec![],
        issuer: operator,
        operator,
        params: ChainParams {
            block_interval_ms: 1000,
            empty_block_interval_ms: 1000,
            max_block_txs: 10,
        },
        market: MarketParams::default(),
    }
}

fn peer(seed: u8) -> PeerId {
    SecretKey::from_seed([seed; 32]).public_key()
}

fn root_after(parent: &BlockHash) -> Hash {
    Hash::digest(b"fork-test/state", &[parent.0.as_bytes()])
}

fn genesis() -> Header {
    Header {
        height: Height(0),
        parent: BlockHash(Hash::ZERO),
        timestamp: TimestampMs(START),
        proposer: Address(SecretKey::from_seed([7; 32]).public_key()),
        tx_root: Block::tx_root(&[]),
        state_root: Hash::ZERO,
        proof: ConsensusProof::Genesis,
    }
}

/// A mined block on `parent`, `after` ms later, paying `miner` (which tells branches apart).
fn mined(parent: &Header, after: u64, miner: u8) -> Block {
    stamped(parent, TimestampMs(parent.timestamp.0 + after), miner)
}

/// A mined block on `parent` stamped `timestamp`, paying `miner`.
fn stamped(parent: &Header, timestamp: TimestampMs, miner: u8) -> Block {
    let target = consensus::pow::next_target(&params(), parent);
    let mut header = Header {
        height: Height(parent.height.0 + 1),
        parent: parent.hash(),
        timestamp,
        proposer: Address(SecretKey::from_seed([miner; 32]).public_key()),
        tx_root: Block::tx_root(&[]),
        state_root: root_after(&parent.hash()),
        proof: ConsensusProof::Pow { target, nonce: 0 },
    };
    let hash = header.hash();
    let nonce = (0..).find(|nonce| target.is_met_by(&proof_hash(&hash, target, *nonce))).unwrap();
    header.proof = ConsensusProof::Pow { target, nonce };
    Block { header, txs: vec![] }
}

fn branch(parent: &Header, count: usize, miner: u8) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for _ in 0..count {
        let last = blocks.last().map_or(parent.clone(), |block| block.header.clone());
        blocks.push(mined(&last, 1_000, miner));
    }
    blocks
}

/// An application whose state is the list of blocks it applied.
#[derive(Default)]
struct ForkApp {
    applied: Vec<Arc<Block>>,
    candidate: Option<Block>,
    /// What `reverted` was given, newest first.
    reverted: Vec<BlockHash>,
}

impl ForkApp {
    fn heights_and_miners(&self) -> Vec<(u64, Address)> {
        self.applied.iter().map(|block| (block.header.height.0, block.header.proposer)).collect()
    }
}

impl App for ForkApp {
    type Write = ();

    fn build(&mut self, parent: &Header, height: Height, timestamp: TimestampMs) -> Option<Block> {
        let mut block = stamped(parent, timestamp, 1);
        block.header.height = height;
        block.header.proof = ConsensusProof::Genesis;
        self.candidate = Some(block.clone());
        Some(block)
    }

    fn execute(&mut self, parent: &Header, block: &Block) -> Result<(), BlockError> {
        self.candidate = None;
        let computed = root_after(&parent.hash());
        if block.header.state_root != computed {
            return Err(BlockError::StateRoot { computed, claimed: block.header.state_root });
        }
        self.candidate = Some(block.clone());
        Ok(())
    }

    fn candidate(&self) -> Option<&Block> {
        self.candidate.as_ref()
    }

    fn discard_candidate(&mut self) {
        self.candidate = None;
    }

    fn seal(&mut self, proof: ConsensusProof) -> Option<(Arc<Block>, ())> {
        let mut block = self.candidate.take()?;
        block.header.proof = proof;
        let block = Arc::new(block);
        self.applied.push(block.clone());
        Some((block, ()))
    }

    fn committed(&mut self, _blocks: &[Arc<Block>]) {}

    fn has_ready(&self) -> bool {
        false
    }

    fn validators(&self, head: Height) -> ValidatorSchedule {
        ValidatorSchedule { next_height: Height(head.0 + 1), current: vec![], upcoming: None }
    }

    fn changes_validators(&self, _block: &Block) -> bool {
        false
    }

    fn config_at(&self, _height: Height) -> ChainConfig {
        config()
    }

    fn rewind(&mut self, to: Height) -> Result<Vec<Arc<Block>>, String> {
        let mut undone = Vec::new();
        while self.applied.last().is_some_and(|block| block.header.height > to) {
            undone.extend(self.applied.pop());
        }
        Ok(undone)
    }

    fn reverted(&mut self, blocks: &[Arc<Block>]) -> Vec<primitives::SignedTransaction> {
        self.reverted.extend(blocks.iter().map(|block| block.hash()));
        vec![]
    }
}

fn core() -> Core<ForkApp> {
    let engine =
        PowEngine::new(params(), None, &genesis(), &Restored::default(), false, &TimeScale::REAL);
    let config = CoreConfig { chain: config(), time: TimeScale::REAL };
    let mut core = Core::new(config, ForkApp::default(), Box::new(engine), genesis(), vec![]);
    core.start(now());
    core
}

/// Late enough that no test block is from the future.
fn now() -> TimestampMs {
    TimestampMs(START + 100_000)
}

/// The switches among `effects`: the height that stays and the heights written.
fn switches(effects: &[Effect<()>]) -> Vec<(u64, Vec<u64>)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Switch { to, blocks } => {
                Some((to.0, blocks.iter().map(|(block, _)| block.header.height.0).collect()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_heavier_branch_replaces_the_chain_in_one_switch_and_gives_back_what_it_undid() {
    let mut core = core();
    let ours = branch(&genesis(), 2, 2);
    let effects = core.blocks(now(), peer(2), ours.clone());
    assert_eq!(switches(&effects), vec![(0, vec![1, 2])], "two new blocks in one write");
    core.persisted(now());
    assert_eq!(core.head().hash(), ours[1].hash());

    let theirs = branch(&genesis(), 3, 3);
    // Equal work first: the branch seen first stays.
    let effects = core.blocks(now(), peer(3), theirs[..2].to_vec());
    assert_eq!(switches(&effects), vec![]);
    assert_eq!(core.head().hash(), ours[1].hash());
    // One more block: more work.
    let effects = core.blocks(now(), peer(3), theirs[2..].to_vec());
    assert_eq!(switches(&effects), vec![(0, vec![1, 2, 3])]);
    let miner = Address(SecretKey::from_seed([3; 32]).public_key());
    assert_eq!(core.app().heights_and_miners(), vec![(1, miner), (2, miner), (3, miner)]);
    assert!(core.app().reverted.is_empty(), "nothing goes back before the switch is durable");
    core.persisted(now());
    assert_eq!(core.head().hash(), theirs[2].hash());
    assert_eq!(core.app().reverted, vec![ours[1].hash(), ours[0].hash()], "newest first");
    let counters = core.counters();
    assert_eq!((counters.reorgs, counters.blocks_reverted), (1, 2));
}

#[test]
fn a_block_before_its_parent_waits_while_the_parent_is_fetched() {
    let mut core = core();
    let blocks = branch(&genesis(), 2, 2);
    let announce = |block: &Block| consensus::pow::announce(&block.header);
    let effects = core.message(now(), peer(2), announce(&blocks[1]), Some(blocks[1].clone()));
    let asked: Vec<_> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { peer: to, wire: Wire::GetBlocks { from, .. } } => Some((*to, *from)),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![(peer(2), Height(1))]);
    assert!(switches(&effects).is_empty());
    assert_eq!(core.status().orphans, 1);
    // The parent comes: both are kept and appended, and both are passed on to other peers.
    let effects = core.message(now(), peer(2), announce(&blocks[0]), Some(blocks[0].clone()));
    assert_eq!(switches(&effects), vec![(0, vec![1, 2])]);
    let gossiped = effects.iter().filter(|effect| matches!(effect, Effect::Gossip { .. })).count();
    assert_eq!(gossiped, 2);
    assert_eq!(core.status().orphans, 0);
}

#[test]
fn a_branch_with_a_block_that_does_not_execute_leaves_chain_and_state_as_they_were() {
    let mut core = core();
    let ours = branch(&genesis(), 1, 2);
    core.blocks(now(), peer(2), ours.clone());
    core.persisted(now());
    let before = core.app().heights_and_miners();

    // A heavier branch whose second block claims a wrong state root, its work done right.
    let first = mined(&genesis(), 1_000, 3);
    let mut bad = mined(&first.header, 1_000, 3);
    bad.header.state_root = Hash([9; 32]);
    let target = consensus::pow::next_target(&params(), &first.header);
    let hash = bad.header.hash();
    let nonce = (0..).find(|nonce| target.is_met_by(&proof_hash(&hash, target, *nonce))).unwrap();
    bad.header.proof = ConsensusProof::Pow { target, nonce };
    let after_bad = mined(&bad.header, 1_000, 3);
    let effects = core.blocks(now(), peer(3), vec![first, bad, after_bad]);
    assert!(switches(&effects).is_empty(), "{:?}", switches(&effects));
    assert_eq!(core.head().hash(), ours[0].hash());
    assert_eq!(core.app().heights_and_miners(), before, "the state is back on this chain");
    assert_eq!(core.counters().invalid_blocks, 1);
    assert!(core.app().reverted.is_empty());
}

#[test]
fn a_block_whose_target_is_not_the_one_its_parent_sets_is_never_kept() {
    let mut core = core();
    let mut block = mined(&genesis(), 1_000, 2);
    // Easier than the rule allows, with a proof that meets it.
    let target = Target::EASIEST;
    let hash = block.header.hash();
    let nonce = (0..).find(|nonce| target.is_met_by(&proof_hash(&hash, target, *nonce))).unwrap();
    block.header.proof = ConsensusProof::Pow { target, nonce };
    if consensus::pow::next_target(&params(), &genesis()) == target {
        // The initial target is already the easiest: make the block's harder instead.
        let target = Target(target.0 / 4);
        let nonce =
            (0..).find(|nonce| target.is_met_by(&proof_hash(&hash, target, *nonce))).unwrap();
        block.header.proof = ConsensusProof::Pow { target, nonce };
    }
    let effects =
        core.message(now(), peer(2), consensus::pow::announce(&block.header), Some(block));
    assert!(switches(&effects).is_empty());
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::Gossip { .. })), "not passed on");
    assert_eq!(core.head().height, Height(0));
    assert_eq!(core.counters().invalid_blocks, 1);
}

#[test]
fn a_timestamp_one_millisecond_after_the_median_of_eleven_blocks_passes_and_at_it_fails() {
    let mut core = core();
    // Eleven blocks a second apart: more than the reorg depth (4), so the chain keeps headers
    // for the median beyond what it can undo.
    let chain = branch(&genesis(), 11, 2);
    core.blocks(now(), peer(2), chain.clone());
    core.persisted(now());
    let parent = chain[10].header.clone();
    assert_eq!(core.head().hash(), parent.hash());
    // Blocks 1 to 11: the median is block 6's, five seconds before the parent's.
    let median = chain[5].header.timestamp;
    assert_eq!(median, TimestampMs(START + 6_000));

    // At the median: refused, not passed on.
    let at_median = stamped(&parent, median, 4);
    let effects = core.message(
        now(),
        peer(4),
        consensus::pow::announce(&at_median.header),
        Some(at_median.clone()),
    );
    assert!(switches(&effects).is_empty());
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::Gossip { .. })), "not passed on");
    assert_eq!(core.counters().invalid_blocks, 1);
    assert_eq!(core.head().hash(), parent.hash());

    // One millisecond later: kept and appended, although it is stamped before its parent.
    let after_median = stamped(&parent, TimestampMs(median.0 + 1), 5);
    assert!(after_median.header.timestamp < parent.timestamp);
    let effects = core.message(
        now(),
        peer(5),
        consensus::pow::announce(&after_median.header),
        Some(after_median.clone()),
    );
    let written: Vec<BlockHash> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Persist { blocks } => Some(blocks.iter().map(|(block, _)| block.hash())),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(written, vec![after_median.hash()], "appended to the head");
    core.persisted(now());
    assert_eq!(core.head().hash(), after_median.hash());
    assert_eq!(core.counters().invalid_blocks, 1);
}

#[test]
fn the_template_of_a_node_whose_clock_is_behind_is_stamped_just_after_the_median() {
    let mut core = core();
    let chain = branch(&genesis(), 11, 2);
    core.blocks(now(), peer(2), chain.clone());
    core.persisted(now());
    let median = chain[5].header.timestamp;
    // A clock behind the median: raised to one millisecond after it.
    let built = core.build(Height(12), TimestampMs(START + 2_000)).expect("built on the head");
    assert_eq!(built.timestamp, TimestampMs(median.0 + 1));
    // A clock ahead of it: kept, even if it is before the parent's timestamp.
    let built = core.build(Height(12), TimestampMs(START + 8_000)).expect("built on the head");
    assert_eq!(built.timestamp, TimestampMs(START + 8_000));
}

#[test]
fn the_chain_keeps_the_headers_a_branch_at_the_floor_needs_for_its_median() {
    // A branch may fork off at the floor, the reorg depth (4) below the head: its first block
    // is checked against the median of the floor and the ten blocks before it, which every
    // node must have to agree on it.
    let chain = branch(&genesis(), 20, 2);
    let mut forks = super::Forks::new(4, consensus::pow::MEDIAN_TIME_BLOCKS, &genesis());
    forks.extend_main(chain.iter().map(|block| block.header.clone()).collect());
    let floor = &chain[15].header;
    assert_eq!(floor.height, Height(16));
    let recent = forks.recent_timestamps(floor);
    assert_eq!(recent.len(), 11);
    assert_eq!(recent.first(), Some(&floor.timestamp));
    assert_eq!(recent.last(), Some(&chain[5].header.timestamp), "block 6");
}
