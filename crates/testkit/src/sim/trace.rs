//! The trace of a run: every input fed to a node's core and every effect it returned, folded
//! into one digest (the same seed must give the same digest), and readable one-line forms of
//! them for a verbose replay.

use borsh::BorshSerialize;
use consensus::{EngineMessage, raft, tendermint};
use node::{PeerId, core::Effect, wire::Wire};
use primitives::{Block, BlockHash, Hash, Header, Height, SignedTransaction, TimestampMs, encode};

/// One input to a node's core: a call of one of its methods, with its arguments.
#[derive(Debug, BorshSerialize)]
pub(crate) enum Input {
    /// `Core::start`.
    Start,
    /// `Core::tick`: the wake-up the core asked for.
    Tick,
    /// `Core::housekeeping`, every 500 ms as the tokio shell does.
    Housekeeping,
    /// `Core::persisted`: the last write is durable.
    Persisted,
    /// `Core::message`: a peer's consensus message that passed the relay check.
    Message { from: PeerId, message: EngineMessage, block: Option<Box<Block>> },
    /// `Core::peer_connected`.
    PeerConnected(PeerId),
    /// `Core::peer_status`.
    PeerStatus { peer: PeerId, height: Height, hash: BlockHash, latency_ms: u64 },
    /// `Core::peer_gone`.
    PeerGone(PeerId),
    /// `Core::blocks`: committed blocks a peer sent in answer to a request.
    Blocks { from: PeerId, blocks: Vec<Block> },
    /// `Core::mined`: the miner found the proof of the template it was given.
    Mined(Header),
    /// `Core::set_mining`.
    Mining(bool),
    /// Transactions for the pool (submitted, or from a peer), then `Core::pending`.
    Txs(Vec<SignedTransaction>),
}

/// The digest of everything fed to the cores and everything they returned, in order.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    digest: Hash,
}

impl Trace {
    pub(crate) fn digest(&self) -> Hash {
        self.digest
    }

    fn fold(&mut self, bytes: &[u8]) {
        self.digest = Hash::digest(b"joule/sim/trace", &[self.digest.as_bytes(), bytes]);
    }

    /// Node `node` is fed `input` at its chain time `now`.
    pub(crate) fn input(&mut self, node: usize, now: TimestampMs, input: &Input) {
        self.fold(&encode(&(node as u64, now.0, input)));
    }

    /// The effects the core returned.
    pub(crate) fn effects(&mut self, effects: &[Effect<()>]) {
        for effect in effects {
            self.fold(&effect_bytes(effect));
        }
    }
}

fn effect_bytes(effect: &Effect<()>) -> Vec<u8> {
    match effect {
        Effect::Log { height, message, block } => encode(&(0u8, height, message, block.as_deref())),
        Effect::SaveState(state) => encode(&(1u8, state)),
        Effect::Send { peer, wire } => encode(&(2u8, peer, wire)),
        Effect::Gossip { wire, except } => encode(&(3u8, wire, except)),
        Effect::SendAll { wire } => encode(&(4u8, wire)),
        Effect::Report { peer, misbehaviour } => encode(&(5u8, peer, format!("{misbehaviour:?}"))),
        Effect::Persist { blocks } => {
            let blocks: Vec<&Block> = blocks.iter().map(|(block, ())| block.as_ref()).collect();
            encode(&(6u8, blocks))
        }
        Effect::Schedule(schedule) => {
            encode(&(7u8, schedule.next_height, &schedule.current, &schedule.upcoming))
        }
        Effect::Switch { to, blocks } => {
            let blocks: Vec<&Block> = blocks.iter().map(|(block, ())| block.as_ref()).collect();
            encode(&(8u8, to, blocks))
        }
        Effect::Mine { header } => encode(&(9u8, header)),
        Effect::StopMining => encode(&10u8),
    }
}

/// A consensus message in a line.
pub(crate) fn describe_message(message: &EngineMessage) -> String {
    match tendermint::decode(message) {
        Some(tendermint::Message::Proposal(signed)) => format!(
            "proposal h{} r{} {:?} pol {:?} by {:?}",
            signed.proposal.height.0,
            signed.proposal.round,
            signed.proposal.block,
            signed.proposal.pol_round,
            signed.proposer
        ),
        Some(tendermint::Message::Vote(signed)) => format!(
            "{:?} h{} r{} {:?} by {:?}",
            signed.vote.kind,
            signed.vote.height.0,
            signed.vote.round,
            signed.vote.block,
            signed.validator
        ),
        None => describe_raft(message),
    }
}

fn describe_raft(message: &EngineMessage) -> String {
    use consensus::raft::Message;
    match raft::decode(message) {
        Some(Message::Campaign(signed)) => format!(
            "{} t{} at {:?} by {:?}",
            if signed.body.pre { "pre-vote campaign" } else { "campaign" },
            signed.body.term,
            signed.body.position,
            signed.signer
        ),
        Some(Message::Ballot(signed)) => format!(
            "{} ballot t{} for {:?} by {:?}: {}",
            if signed.body.pre { "pre-vote" } else { "vote" },
            signed.body.term,
            signed.body.candidate,
            signed.signer,
            if signed.body.granted { "granted" } else { "refused" }
        ),
        Some(Message::Append(signed)) => format!("append {} by {:?}", signed.body, signed.signer),
        Some(Message::Ack(signed)) => format!("ack {} by {:?}", signed.body, signed.signer),
        Some(Message::Heartbeat(signed)) => format!(
            "heartbeat t{} h{} commit {:?} by {:?}",
            signed.body.term,
            signed.body.height,
            signed.body.commit.as_ref().map(|commit| commit.height.0),
            signed.signer
        ),
        Some(Message::Reply(signed)) => {
            format!(
                "reply t{} to {:?} by {:?}",
                signed.body.term, signed.body.leader, signed.signer
            )
        }
        None => format!("{} bytes that are no consensus message", message.0.len()),
    }
}

/// A message between nodes in a line.
pub(crate) fn describe_wire(wire: &Wire) -> String {
    match wire {
        Wire::Consensus { message, block } => match block {
            Some(block) => {
                format!("{} with block {}", describe_message(message), describe_block(block))
            }
            None => describe_message(message),
        },
        Wire::Blocks(blocks) => match (blocks.first(), blocks.last()) {
            (Some(first), Some(last)) => {
                format!("blocks {}..={}", first.header.height.0, last.header.height.0)
            }
            _ => "no blocks".to_owned(),
        },
        other => format!("{other:?}"),
    }
}

fn describe_block(block: &Block) -> String {
    format!("{} {:?} at {}", block.header.height.0, block.hash(), block.header.timestamp.0)
}

/// An input in a line.
pub(crate) fn describe_input(input: &Input) -> String {
    match input {
        Input::Message { from, message, block } => format!(
            "message from {from:?}: {}{}",
            describe_message(message),
            block
                .as_ref()
                .map(|block| format!(" with block {}", describe_block(block)))
                .unwrap_or_default()
        ),
        Input::Blocks { from, blocks } => {
            format!("{} from {from:?}", describe_wire(&Wire::Blocks(blocks.clone())))
        }
        other => format!("{other:?}"),
    }
}

/// An effect in a line.
pub(crate) fn describe_effect(effect: &Effect<()>) -> String {
    match effect {
        Effect::Log { height, message, .. } => {
            format!("log h{}: {}", height.0, describe_message(message))
        }
        Effect::SaveState(state) => format!("save {} bytes of engine state", state.len()),
        Effect::Send { peer, wire } => format!("send to {peer:?}: {}", describe_wire(wire)),
        Effect::Gossip { wire, except } => {
            format!("gossip (not to {except:?}): {}", describe_wire(wire))
        }
        Effect::SendAll { wire } => format!("send to all: {}", describe_wire(wire)),
        Effect::Report { peer, misbehaviour } => format!("report {peer:?}: {misbehaviour:?}"),
        Effect::Persist { blocks } => {
            let blocks: Vec<String> =
                blocks.iter().map(|(block, ())| describe_block(block)).collect();
            format!("persist {}", blocks.join(", "))
        }
        Effect::Schedule(schedule) => format!(
            "schedule from {}: {} validators, upcoming {:?}",
            schedule.next_height.0,
            schedule.current.len(),
            schedule.upcoming.as_ref().map(|change| change.from.0)
        ),
        Effect::Switch { to, blocks } => {
            let blocks: Vec<String> =
                blocks.iter().map(|(block, ())| describe_block(block)).collect();
            format!("switch above h{}: {}", to.0, blocks.join(", "))
        }
        Effect::Mine { header } => format!("mine h{} on {:?}", header.height.0, header.parent),
        Effect::StopMining => "stop mining".into(),
    }
}
