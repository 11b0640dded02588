//! The interface every consensus engine implements.

use primitives::{BlockHash, ConsensusProof, Header, Height, PublicKey, TimestampMs};

/// A message of an engine as it travels between nodes: the engine encodes and decodes it, the
/// node only carries it (and the block that travels with it, if any). Its shape is the
/// engine's business: a Tendermint proposal or vote, a Raft append or vote, a mined block's
/// announcement.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Hash,
    Debug,
    PartialOrd,
    Ord,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
pub struct EngineMessage(pub Vec<u8>);

/// What the node found of the block that came with a message: it executed it on top of its
/// head and checked the result (transactions, state root, timestamp, proposer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockCheck {
    /// The block's hash.
    pub hash: BlockHash,
    /// Whether it is a valid successor of the head.
    pub valid: bool,
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
    /// A block became the head: durably appended, by this engine's decision or downloaded with
    /// its proof while catching up.
    Committed {
        /// The header, proof included.
        header: Header,
    },
    /// A message from a peer. If a block came with it for the height after the head, the node
    /// has checked it (`block`); a block for a later height is held back, with its message,
    /// until that height comes; a message without a block comes at once. The engine checks
    /// the message's signature itself.
    Message {
        /// The message.
        message: EngineMessage,
        /// The block that came with it, checked.
        block: Option<BlockCheck>,
    },
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
    /// (Engines with forks.) Blocks the node now keeps, received or downloaded, each connected:
    /// its parent is a block of the chain within the engine's reorg depth, a block stored
    /// before, or one earlier in the list. The node has checked all it can without executing
    /// them on their parent's state (structure, proof, the engine's rules against the parent);
    /// it executes them when the engine asks to append them, and says [`Event::Invalid`] if one
    /// fails.
    Stored {
        /// Their headers, proofs included, parents first.
        headers: Vec<Header>,
    },
    /// (Engines with forks.) A stored block turned out invalid when the node executed it; so
    /// are the blocks built on it. The node's chain is as it was before the command that tried.
    Invalid {
        /// The block.
        hash: BlockHash,
    },
    /// (Engines with open block production.) The node's operator turned mining on or off.
    Mining {
        /// Whether to mine.
        on: bool,
    },
    /// (Engines with open block production.) The search asked for with [`Command::Mine`]
    /// found a proof: `header` is the template with it.
    Mined {
        /// The header, proof included.
        header: Header,
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
        /// Its timestamp; the node raises one that is not later than the median of the recent
        /// blocks ([`crate::Rules::time_window`]) to just after that median.
        timestamp: TimestampMs,
    },
    /// The block is final: attach the proof, append it durably to the head, then answer with
    /// [`Event::Committed`]. It will never be undone.
    Commit {
        /// The block to commit.
        hash: BlockHash,
        /// The proof to put in its header.
        proof: ConsensusProof,
    },
    /// Like [`Command::Commit`], but the block is not final yet: an engine with forks may
    /// later undo it with [`Command::SwitchBranch`] until it marks it final with
    /// [`Command::Finalize`].
    Extend {
        /// The block to append.
        hash: BlockHash,
        /// The proof to put in its header.
        proof: ConsensusProof,
    },
    /// Undo the blocks above height `to` (none of them final) and append `blocks` in order, in
    /// one durable step; then each applied block is answered with [`Event::Committed`].
    SwitchBranch {
        /// The height that stays.
        to: Height,
        /// The blocks of the other branch, first to last, with their proofs.
        blocks: Vec<(BlockHash, ConsensusProof)>,
    },
    /// Blocks up to `height` will never be undone.
    Finalize {
        /// The highest final height.
        height: Height,
    },
    /// Send a [`Event::Tick`] no later than this time (replaces any earlier request).
    WakeAt {
        /// When.
        at: TimestampMs,
    },
    /// Send this message to every peer, with block `block` if it names one. The node first
    /// appends it durably to its write-ahead log: after a restart the engine is given back its
    /// own messages for the height after the head, so that it never signs two different ones
    /// for the same decision.
    Broadcast {
        /// The message.
        message: EngineMessage,
        /// The block to send with it (one the node built or received).
        block: Option<BlockHash>,
    },
    /// Append this message durably to the write-ahead log, with block `block` if it names one,
    /// as for [`Command::Broadcast`], but send it nowhere: a message the engine received and
    /// must find again after a restart, such as the entry a Raft follower acknowledges (its
    /// leader has already sent it to every peer).
    Log {
        /// The message.
        message: EngineMessage,
        /// The block to keep with it.
        block: Option<BlockHash>,
    },
    /// Send this message to one validator only (by its key; a validator's network identity is
    /// its validator key). Not logged.
    Send {
        /// The validator.
        to: PublicKey,
        /// The message.
        message: EngineMessage,
        /// The block to send with it.
        block: Option<BlockHash>,
    },
    /// Keep this engine state durably (it replaces the one kept before), written before any
    /// message of a later command leaves the node: state that outlives a height, such as a
    /// Raft term and vote. A restarted engine is given it back.
    SaveState(Vec<u8>),
    /// Search for a proof that makes `header` (a block the node built, with a proof whose
    /// fields the engine filled in except the one searched for) valid, replacing any search
    /// under way; answer with [`Event::Mined`]. A search goes on until it succeeds, is replaced
    /// or is stopped.
    Mine {
        /// The header to complete.
        header: Header,
    },
    /// Stop searching.
    StopMining,
}

/// A consensus engine: a pure function of its own state, the events it is fed and the time it
/// is told. It must not panic on any sequence of events.
pub trait Engine {
    /// Handles one event at chain time `now` and returns what the node must do, in order.
    fn handle(&mut self, now: TimestampMs, event: Event) -> Vec<Command>;

    /// The engine's view of who leads, for status reports. Engines without leaders keep the
    /// default, which says nothing.
    fn status(&self) -> EngineStatus {
        EngineStatus::default()
    }
}

/// What a leader-based engine says of itself ([`Engine::status`]): its role, its term and the
/// leader it knows of. Every field is `None` for engines without leaders and terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStatus {
    /// This node's role.
    pub role: Option<Role>,
    /// The current term.
    pub term: Option<u64>,
    /// The leader of the current term, if this node knows one (itself, if it leads).
    pub leader: Option<PublicKey>,
}

/// A node's role in a leader-based engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It leads: it proposes blocks.
    Leader,
    /// It follows a leader (or waits for one to be elected).
    Follower,
    /// It asks for votes to become the leader (in Raft also while it only sounds out whether
    /// it could win, the pre-vote).
    Candidate,
}

impl Role {
    /// The role in one lower-case word.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
        }
    }
}

/// What an engine is given back when its node restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// The messages it broadcast (and the node logged) for the height after the head.
    pub messages: Vec<EngineMessage>,
    /// The state it last asked to keep ([`Command::SaveState`]).
    pub state: Option<Vec<u8>>,
    /// (Engines with forks.) The headers of the newest stored blocks, oldest first, the head
    /// last: as many as the engine's reorg depth allows to undo, and the block below them.
    pub chain: Vec<Header>,
}
