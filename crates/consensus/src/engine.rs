//! The interface every consensus engine implements.

use primitives::{
    BlockHash, ChainId, ConsensusProof, Hash, Header, Height, PublicKey, Signature, SignedProposal,
    SignedVote, TimestampMs,
};

/// A message validators exchange while deciding a block.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub enum Message {
    /// A proposer's signed proposal. On the network it travels with the block itself.
    Proposal(SignedProposal),
    /// A validator's signed prevote or precommit.
    Vote(SignedVote),
}

impl Message {
    /// The height the message is about.
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(signed) => signed.proposal.height,
            Message::Vote(signed) => signed.vote.height,
        }
    }

    /// The round the message is about.
    pub fn round(&self) -> u32 {
        match self {
            Message::Proposal(signed) => signed.proposal.round,
            Message::Vote(signed) => signed.vote.round,
        }
    }

    /// Who signed it: the proposer or the voting validator.
    pub fn signer(&self) -> PublicKey {
        match self {
            Message::Proposal(signed) => signed.proposer,
            Message::Vote(signed) => signed.validator,
        }
    }

    /// What its signature must cover on chain `chain_id`, and the signature.
    pub fn signed(&self, chain_id: &ChainId) -> (Hash, Signature) {
        match self {
            Message::Proposal(signed) => (signed.proposal.signing_hash(chain_id), signed.signature),
            Message::Vote(signed) => (signed.vote.signing_hash(chain_id), signed.signature),
        }
    }
}

/// Something the node tells the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing happened but time passed (the node was woken up as asked, or is starting).
    Tick,
    /// The number of mempool transactions that could go into the next block changed.
    PendingChanged {
        /// How many are ready.
        ready: usize,
    },
    /// The node built the block asked for with [`Command::BuildBlock`]. The header's proof is
    /// a placeholder; the engine provides the real one.
    BlockBuilt {
        /// The header of the built block.
        header: Header,
    },
    /// A block was durably committed and is the new head (decided by this engine, or
    /// downloaded with its commit certificate while catching up).
    Committed {
        /// The committed header, proof included.
        header: Header,
    },
    /// A proposal arrived together with its block, and the node has checked the block against
    /// its state (`valid`: transactions, state root, timestamp). The node only passes proposals
    /// for the height after its head, from the round's proposer; the engine checks the
    /// signature again.
    Proposal {
        /// The signed proposal.
        proposal: SignedProposal,
        /// Whether the block it names is valid on top of the head.
        valid: bool,
    },
    /// A vote arrived. The engine checks its signature and that it comes from a validator.
    Vote(SignedVote),
    /// Whether the node is catching up with its peers. While it is, the engine signs nothing.
    Syncing {
        /// True while downloading missing blocks.
        behind: bool,
    },
    /// From height `from` on, `validators` decide (an operator installed a new set). The node
    /// tells the engine as soon as the change is committed, at least two heights ahead.
    Validators {
        /// The first height the set decides.
        from: Height,
        /// The set.
        validators: Vec<primitives::Validator>,
    },
}

/// Something the engine asks the node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Build the next block from the mempool with this height and timestamp, execute it and
    /// answer with [`Event::BlockBuilt`].
    BuildBlock {
        /// The height of the new block.
        height: Height,
        /// Its timestamp.
        timestamp: TimestampMs,
    },
    /// The block is final: attach the proof and commit it durably, then answer with
    /// [`Event::Committed`].
    Commit {
        /// The block to commit.
        hash: BlockHash,
        /// The proof to put in its header.
        proof: ConsensusProof,
    },
    /// Send a [`Event::Tick`] no later than this time (replaces any earlier request).
    WakeAt {
        /// When.
        at: TimestampMs,
    },
    /// Send this message, signed by this validator, to every peer. The node first appends it
    /// durably to its write-ahead log: after a restart the engine is given back its own
    /// messages for the current height, so that it never signs two different ones for the same
    /// height, round and step. A proposal is sent with its block.
    Broadcast(Message),
}

/// A consensus engine: a pure function of its own state, the events it is fed and the time it
/// is told. It must not panic on any sequence of events.
pub trait Engine {
    /// Handles one event at chain time `now` and returns what the node must do, in order.
    fn handle(&mut self, now: TimestampMs, event: Event) -> Vec<Command>;
}
