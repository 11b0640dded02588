//! The core's paths that are rare on a live network, each driven by hand: inputs in, the exact
//! engine events and effects out. The engine is a script that records what it is told; the
//! application a stand-in whose state root is a function of the parent.

use super::sync::REQUEST_TIMEOUT_MS;
use super::*;
use crate::validators::ValidatorSchedule;
use consensus::{BlockCheck, Command, Engine, EngineMessage, Event};
use primitives::{
    Address, ChainConfig, ChainParams, EngineKind, Hash, MarketParams, SecretKey, Validator,
    block::block_signing_bytes,
};
use std::sync::Mutex;

fn key() -> SecretKey {
    SecretKey::from_seed([7; 32])
}

fn peer() -> PeerId {
    SecretKey::from_seed([8; 32]).public_key()
}

fn config() -> ChainConfig {
    ChainConfig {
        chain_id: primitives::ChainId::new("core-test").unwrap(),
        engine: EngineKind::Solo,
        validators: vec![Validator { name: "v".into(), key: key().public_key(), power: 1 }],
        issuer: Address(key().public_key()),
        operator: Address(key().public_key()),
        params: ChainParams {
            block_interval_ms: 1000,
            empty_block_interval_ms: 1000,
            max_block_txs: 10,
        },
        market: MarketParams::default(),
    }
}

fn root_after(parent: &BlockHash) -> Hash {
    Hash::digest(b"core-test/state", &[parent.0.as_bytes()])
}

fn genesis() -> Header {
    Header {
        height: Height(0),
        parent: BlockHash(Hash::ZERO),
        timestamp: TimestampMs(1_000),
        proposer: Address(key().public_key()),
        tx_root: Block::tx_root(&[]),
        state_root: Hash::ZERO,
        proof: ConsensusProof::Genesis,
    }
}

/// The block after `parent`, with `timestamp`, sealed by the validator.
fn child(parent: &Header, timestamp: u64) -> Block {
    let mut header = Header {
        height: Height(parent.height.0 + 1),
        parent: parent.hash(),
        timestamp: TimestampMs(timestamp),
        proposer: Address(key().public_key()),
        tx_root: Block::tx_root(&[]),
        state_root: root_after(&parent.hash()),
        proof: ConsensusProof::Genesis,
    };
    let signature = key().sign(block_signing_bytes(&header.hash()).as_bytes());
    header.proof = ConsensusProof::Solo { signature };
    Block { header, txs: vec![] }
}

/// A chain of `count` blocks after `parent`, a second apart.
fn chain(parent: &Header, count: usize) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for _ in 0..count {
        let previous = blocks.last().map_or(parent.clone(), |block| block.header.clone());
        blocks.push(child(&previous, previous.timestamp.0 + 1_000));
    }
    blocks
}

struct TestApp {
    head: Header,
    candidate: Option<Block>,
    /// Blocks at this height change the validator set.
    changer: Option<Height>,
}

impl App for TestApp {
    type Write = ();

    fn build(&mut self, parent: &Header, height: Height, timestamp: TimestampMs) -> Option<Block> {
        let mut block = child(parent, timestamp.0);
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
        self.head = block.header.clone();
        Some((Arc::new(block), ()))
    }

    fn committed(&mut self, _blocks: &[Arc<Block>]) {}

    fn has_ready(&self) -> bool {
        false
    }

    fn validators(&self, head: Height) -> ValidatorSchedule {
        ValidatorSchedule {
            next_height: Height(head.0 + 1),
            current: config().validators,
            upcoming: None,
        }
    }

    fn changes_validators(&self, block: &Block) -> bool {
        Some(block.header.height) == self.changer
    }

    fn config_at(&self, _height: Height) -> ChainConfig {
        config()
    }
}

/// An answer of the script: to the first event that matches, these commands.
type Answer = (fn(&Event) -> bool, Vec<Command>);

/// An engine that records every event and answers with scripted commands.
#[derive(Clone, Default)]
struct Script {
    events: Arc<Mutex<Vec<Event>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

impl Script {
    /// When an event matching `when` comes, answer `commands` (once).
    fn on(&self, when: fn(&Event) -> bool, commands: Vec<Command>) {
        self.answers.lock().unwrap().push_back((when, commands));
    }

    /// The events since the last call, but ticks and pending changes.
    fn seen(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap())
            .into_iter()
            .filter(|event| !matches!(event, Event::Tick | Event::PendingChanged { .. }))
            .collect()
    }
}

impl Engine for Script {
    fn handle(&mut self, _now: TimestampMs, event: Event) -> Vec<Command> {
        let mut answers = self.answers.lock().unwrap();
        let answer = answers.iter().position(|(when, _)| when(&event));
        self.events.lock().unwrap().push(event);
        answer
            .and_then(|index| answers.remove(index))
            .map(|(_, commands)| commands)
            .unwrap_or_default()
    }
}

fn core(script: &Script, changer: Option<Height>) -> Core<TestApp> {
    let app = TestApp { head: genesis(), candidate: None, changer };
    let config = CoreConfig { chain: config(), time: TimeScale::REAL };
    let mut core = Core::new(config, app, Box::new(script.clone()), genesis(), vec![]);
    core.start(TimestampMs(1_500));
    script.seen();
    core
}

fn message(byte: u8) -> EngineMessage {
    EngineMessage(vec![byte])
}

fn is_message(event: &Event) -> bool {
    matches!(event, Event::Message { .. })
}

fn persisted_heights(effects: &[Effect<()>]) -> Vec<u64> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Persist { blocks } => {
                Some(blocks.iter().map(|(block, _)| block.header.height.0))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn commit(block: &Block) -> Command {
    Command::Commit { hash: block.hash(), proof: block.header.proof.clone() }
}

#[test]
fn a_block_that_comes_during_a_write_is_checked_once_the_write_is_done() {
    let script = Script::default();
    let mut core = core(&script, None);
    let blocks = chain(&genesis(), 2);
    // The engine decides block 1 as soon as it hears of it.
    script.on(is_message, vec![commit(&blocks[0])]);
    let effects = core.message(TimestampMs(2_100), peer(), message(1), Some(blocks[0].clone()));
    assert_eq!(
        script.seen(),
        vec![Event::Message {
            message: message(1),
            block: Some(BlockCheck { hash: blocks[0].hash(), valid: true })
        }]
    );
    assert_eq!(persisted_heights(&effects), vec![1]);
    assert!(core.is_writing());

    // Block 2 comes while block 1 is being written: the engine hears nothing of it yet.
    let effects = core.message(TimestampMs(3_100), peer(), message(2), Some(blocks[1].clone()));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(script.seen(), vec![]);
    assert_eq!(core.counters().held_during_write, 1);

    // Once block 1 is durable, the engine hears of it, then of block 2, checked against it.
    let effects = core.persisted(TimestampMs(3_200));
    assert_eq!(core.head().height, Height(1));
    assert!(effects.iter().any(|effect| matches!(
        effect,
        Effect::SendAll { wire: Wire::Status { height: Height(1), .. } }
    )));
    assert_eq!(
        script.seen(),
        vec![
            Event::Committed { header: blocks[0].header.clone() },
            Event::Message {
                message: message(2),
                block: Some(BlockCheck { hash: blocks[1].hash(), valid: true })
            },
        ]
    );
}

#[test]
fn a_decided_block_that_never_came_is_fetched_from_a_peer_and_committed() {
    let script = Script::default();
    let mut core = core(&script, None);
    let blocks = chain(&genesis(), 1);
    core.peer_status(TimestampMs(1_600), peer(), Height(1), BlockHash(Hash::ZERO), 5);
    // More than two thirds precommitted a block this node never received.
    script.on(is_message, vec![commit(&blocks[0])]);
    let effects = core.message(TimestampMs(2_100), peer(), message(9), None);
    assert_eq!(core.counters().decided_without_block, 1);
    let asks: Vec<&Effect<()>> = effects
        .iter()
        .filter(|effect| {
            matches!(effect, Effect::Send { wire: Wire::GetBlocks { from: Height(1), .. }, .. })
        })
        .collect();
    assert_eq!(asks.len(), 1, "{effects:?}");
    assert!(!core.is_writing());

    // The block comes as a committed one, with its proof: checked, applied, written.
    let effects = core.blocks(TimestampMs(2_200), peer(), blocks.clone());
    assert_eq!(persisted_heights(&effects), vec![1]);
    core.persisted(TimestampMs(2_300));
    assert_eq!(core.head(), &blocks[0].header);
    assert_eq!(
        script.seen(),
        vec![
            Event::Message { message: message(9), block: None },
            Event::Committed { header: blocks[0].header.clone() }
        ]
    );
}

#[test]
fn a_downloaded_batch_ends_at_a_block_that_changes_the_validators() {
    let script = Script::default();
    let mut core = core(&script, Some(Height(2)));
    let blocks = chain(&genesis(), 5);
    core.peer_status(TimestampMs(1_600), peer(), Height(5), BlockHash(Hash::ZERO), 5);
    assert_eq!(script.seen(), vec![Event::Syncing { behind: true }]);
    let effects = core.blocks(TimestampMs(2_000), peer(), blocks.clone());
    assert_eq!(persisted_heights(&effects), vec![1, 2], "the batch stops at the change");
    assert_eq!(core.counters().sync_cut_at_validator_change, 1);
    // The rest is asked for again at once, while blocks 1 and 2 are written...
    assert!(
        effects.iter().any(|effect| matches!(
            effect,
            Effect::Send { wire: Wire::GetBlocks { from: Height(3), .. }, .. }
        )),
        "{effects:?}"
    );
    // ... and checked only once they are, with the new set known.
    let effects = core.blocks(TimestampMs(2_050), peer(), blocks[2..].to_vec());
    assert!(persisted_heights(&effects).is_empty(), "{effects:?}");
    let effects = core.persisted(TimestampMs(2_100));
    assert_eq!(persisted_heights(&effects), vec![3, 4, 5]);
    assert_eq!(core.counters().blocks_synced, 5);
}

#[test]
fn the_next_blocks_are_asked_for_while_downloaded_ones_are_written() {
    let script = Script::default();
    let mut core = core(&script, None);
    let blocks = chain(&genesis(), 6);
    core.peer_status(TimestampMs(1_600), peer(), Height(6), BlockHash(Hash::ZERO), 5);
    // Two of six come: they are written, and the four after them asked for at once.
    let effects = core.blocks(TimestampMs(2_000), peer(), blocks[..2].to_vec());
    assert_eq!(persisted_heights(&effects), vec![1, 2]);
    assert_eq!(asks(&effects), vec![(3, 4)]);
    // A status during the write asks nothing more: the request is out.
    let effects = core.peer_status(TimestampMs(2_010), peer(), Height(6), BlockHash(Hash::ZERO), 5);
    assert_eq!(asks(&effects), vec![]);
    // Its answer waits for the write; nor is anything asked while it waits.
    let effects = core.blocks(TimestampMs(2_020), peer(), blocks[2..4].to_vec());
    assert!(persisted_heights(&effects).is_empty());
    let effects = core.peer_status(TimestampMs(2_030), peer(), Height(6), BlockHash(Hash::ZERO), 5);
    assert_eq!(asks(&effects), vec![]);
    // Once 1 and 2 are durable, 3 and 4 are applied and written, and 5 and 6 asked for.
    let effects = core.persisted(TimestampMs(2_100));
    assert_eq!(core.head().height, Height(2));
    assert_eq!(persisted_heights(&effects), vec![3, 4]);
    assert_eq!(asks(&effects), vec![(5, 2)]);
    let effects = core.blocks(TimestampMs(2_150), peer(), blocks[4..].to_vec());
    assert!(persisted_heights(&effects).is_empty());
    let effects = core.persisted(TimestampMs(2_200));
    assert_eq!(persisted_heights(&effects), vec![5, 6]);
    // Caught up: the last write asks for nothing.
    assert_eq!(asks(&effects), vec![]);
    assert_eq!(asks(&core.persisted(TimestampMs(2_300))), vec![]);
    assert_eq!(core.head().height, Height(6));
    assert_eq!(core.counters().blocks_synced, 6);
}

/// The block requests among `effects`: (first height, count).
fn asks(effects: &[Effect<()>]) -> Vec<(u64, u32)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { wire: Wire::GetBlocks { from, count }, .. } => Some((from.0, *count)),
            _ => None,
        })
        .collect()
}

fn asks_for_blocks(effects: &[Effect<()>]) -> bool {
    !asks(effects).is_empty()
}

#[test]
fn a_peer_that_claims_blocks_it_does_not_send_cannot_keep_the_node_behind() {
    let script = Script::default();
    let mut core = core(&script, None);
    // A peer says it is a million blocks ahead: the node is behind and asks it.
    let effects =
        core.peer_status(TimestampMs(1_600), peer(), Height(1_000_000), BlockHash(Hash::ZERO), 5);
    assert_eq!(script.seen(), vec![Event::Syncing { behind: true }]);
    assert!(asks_for_blocks(&effects), "{effects:?}");
    // Nothing comes. Before the request times out the node waits...
    let effects = core.housekeeping(TimestampMs(1_600 + REQUEST_TIMEOUT_MS - 1));
    assert!(!asks_for_blocks(&effects) && script.seen().is_empty(), "{effects:?}");
    // ...then the claim stops counting: the engine may sign again. The peer is still asked,
    // once per timeout, as the only one that claims the blocks.
    let effects = core.housekeeping(TimestampMs(1_600 + REQUEST_TIMEOUT_MS));
    assert_eq!(script.seen(), vec![Event::Syncing { behind: false }]);
    assert!(asks_for_blocks(&effects), "{effects:?}");
    assert_eq!(core.counters().peers_doubted, 1);
    // The same claim again, and more requests that go unanswered, change nothing for the
    // engine.
    let effects =
        core.peer_status(TimestampMs(5_000), peer(), Height(1_000_001), BlockHash(Hash::ZERO), 5);
    assert!(!asks_for_blocks(&effects) && script.seen().is_empty(), "{effects:?}");
    for round in 2..=5 {
        let effects = core.housekeeping(TimestampMs(1_600 + round * REQUEST_TIMEOUT_MS));
        assert!(asks_for_blocks(&effects), "{effects:?}");
        assert_eq!(script.seen(), vec![]);
    }
    assert_eq!(core.counters().peers_doubted, 5);
}

#[test]
fn a_doubted_peer_counts_again_once_it_delivers() {
    let script = Script::default();
    let mut core = core(&script, None);
    let honest = SecretKey::from_seed([9; 32]).public_key();
    core.peer_status(TimestampMs(1_600), peer(), Height(50), BlockHash(Hash::ZERO), 1);
    core.peer_status(TimestampMs(1_600), honest, Height(3), BlockHash(Hash::ZERO), 9);
    assert_eq!(script.seen(), vec![Event::Syncing { behind: true }]);
    // The lowest-latency peer is asked and sends nothing; the other one is asked and delivers.
    let effects = core.housekeeping(TimestampMs(1_600 + REQUEST_TIMEOUT_MS));
    assert!(
        effects.iter().any(|effect| matches!(
            effect,
            Effect::Send { peer, wire: Wire::GetBlocks { from: Height(1), .. } } if *peer == honest
        )),
        "{effects:?}"
    );
    core.blocks(TimestampMs(5_000), honest, chain(&genesis(), 3));
    core.persisted(TimestampMs(5_100));
    assert_eq!(core.head().height, Height(3));
    // Caught up with the honest peer: not behind, though the doubted one claims 50.
    assert_eq!(
        script.seen(),
        vec![Event::Syncing { behind: false }, Event::Committed { header: core.head().clone() }]
    );
    // Once it delivers a block, its claim counts again.
    let more = chain(core.head(), 2);
    core.blocks(TimestampMs(6_000), peer(), more);
    core.persisted(TimestampMs(6_100));
    assert_eq!(core.head().height, Height(5));
    assert_eq!(
        script.seen(),
        vec![Event::Syncing { behind: true }, Event::Committed { header: core.head().clone() }]
    );
    assert_eq!(core.counters().peers_doubted, 1);
}

#[test]
fn a_peer_whose_blocks_do_not_check_out_is_doubted_and_one_that_delivers_is_not() {
    let script = Script::default();
    let mut core = core(&script, None);
    let blocks = chain(&genesis(), 3);
    core.peer_status(TimestampMs(1_600), peer(), Height(3), BlockHash(Hash::ZERO), 5);
    assert_eq!(script.seen(), vec![Event::Syncing { behind: true }]);
    // An answer with a block whose state root is wrong: reported, doubted, no longer behind.
    let mut bad = blocks[0].clone();
    bad.header.state_root = Hash::ZERO;
    let signature = key().sign(block_signing_bytes(&bad.header.hash()).as_bytes());
    bad.header.proof = ConsensusProof::Solo { signature };
    let effects = core.blocks(TimestampMs(1_700), peer(), vec![bad]);
    assert!(effects.iter().any(|effect| matches!(effect, Effect::Report { .. })), "{effects:?}");
    assert_eq!(core.counters().peers_doubted, 1);
    assert_eq!(script.seen(), vec![Event::Syncing { behind: false }]);
    // Another peer that has the blocks is asked, and delivers.
    let honest = SecretKey::from_seed([9; 32]).public_key();
    let effects = core.peer_status(TimestampMs(1_800), honest, Height(3), BlockHash(Hash::ZERO), 9);
    assert!(
        effects.iter().any(|effect| matches!(
            effect,
            Effect::Send { peer, wire: Wire::GetBlocks { from: Height(1), .. } } if *peer == honest
        )),
        "{effects:?}"
    );
    let effects = core.blocks(TimestampMs(1_900), honest, blocks.clone());
    assert_eq!(persisted_heights(&effects), vec![1, 2, 3]);
    assert_eq!(core.counters().peers_doubted, 1, "a peer that delivers is not doubted");
}

#[test]
fn a_block_from_the_future_waits_for_the_clock_and_is_not_held_against_its_sender() {
    let script = Script::default();
    let mut core = core(&script, None);
    let mut block = child(&genesis(), 20_000);
    block.header.proof = ConsensusProof::Genesis;
    // 20 s ahead of this node's clock at 2 s: held, not judged.
    let effects = core.message(TimestampMs(2_000), peer(), message(1), Some(block.clone()));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(script.seen(), vec![]);
    assert_eq!(core.counters().held_for_clock, 1);
    let release = TimestampMs(20_000 - MAX_CLOCK_DRIFT_MS);
    assert_eq!(core.wake(), Some(release));
    core.tick(TimestampMs(release.0 - 1));
    assert_eq!(script.seen(), vec![]);
    let effects = core.tick(release);
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::Report { .. })));
    assert_eq!(
        script.seen(),
        vec![Event::Message {
            message: message(1),
            block: Some(BlockCheck { hash: block.hash(), valid: true })
        }]
    );
}

#[test]
fn an_invalid_block_is_reported_and_the_engine_told_so() {
    let script = Script::default();
    let mut core = core(&script, None);
    let mut block = child(&genesis(), 2_000);
    block.header.state_root = Hash([9; 32]);
    let effects = core.message(TimestampMs(2_100), peer(), message(1), Some(block.clone()));
    assert!(
        effects.iter().any(|effect| matches!(
            effect,
            Effect::Report { misbehaviour: Misbehaviour::InvalidBlock, .. }
        )),
        "{effects:?}"
    );
    assert_eq!(
        script.seen(),
        vec![Event::Message {
            message: message(1),
            block: Some(BlockCheck { hash: block.hash(), valid: false })
        }]
    );
    // The same block again is not executed again.
    core.message(TimestampMs(2_200), peer(), message(2), Some(block));
    assert_eq!(core.counters().invalid_blocks, 1);
}

#[test]
fn own_messages_are_logged_before_they_are_sent_and_repeated_to_a_peer_that_connects() {
    let script = Script::default();
    let mut core = core(&script, None);
    script.on(|event| matches!(event, Event::Syncing { .. }), vec![]);
    let effects = {
        script.on(is_message, vec![Command::Broadcast { message: message(5), block: None }]);
        core.message(TimestampMs(2_000), peer(), message(4), None)
    };
    let kinds: Vec<&str> = effects
        .iter()
        .map(|effect| match effect {
            Effect::Log { .. } => "log",
            Effect::Gossip { .. } => "gossip",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["log", "gossip"]);
    let effects = core.peer_connected(peer());
    assert!(matches!(effects[0], Effect::Send { wire: Wire::Status { .. }, .. }));
    assert!(
        matches!(&effects[1], Effect::Send { wire: Wire::Consensus { message: sent, .. }, .. } if *sent == message(5))
    );
}
