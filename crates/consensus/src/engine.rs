//! The interface every consensus engine implements.

use primitives::{BlockHash, ConsensusProof, Header, Height, TimestampMs};

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
    /// A block was durably committed and is the new head.
    Committed {
        /// The committed header, proof included.
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
}

/// A consensus engine: a pure function of its own state, the events it is fed and the time it
/// is told. It must not panic on any sequence of events.
pub trait Engine {
    /// Handles one event at chain time `now` and returns what the node must do, in order.
    fn handle(&mut self, now: TimestampMs, event: Event) -> Vec<Command>;
}
