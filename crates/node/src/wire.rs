//! What nodes say to each other, inside the `net` crate's authenticated frames.
//!
//! Every message is one borsh-encoded [`Wire`] value. Transactions, proposals and votes are
//! gossiped (flooded once to every peer, de-duplicated by hash); status, block requests and
//! block responses go to one peer.

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::Message;
use primitives::{Block, BlockHash, Height, SignedProposal, SignedTransaction, SignedVote};

/// Most blocks asked for, or sent, in one message.
pub const MAX_BLOCKS_PER_MESSAGE: u32 = 512;

/// One message between nodes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Wire {
    /// Transactions admitted by the sender's mempool (gossip).
    Txs(Vec<SignedTransaction>),
    /// A proposal and the block it names (gossip).
    Proposal {
        /// The signed proposal.
        proposal: SignedProposal,
        /// The block.
        block: Box<Block>,
    },
    /// A prevote or precommit (gossip).
    Vote(SignedVote),
    /// The sender's committed head (to one peer: on connecting, and after each block).
    Status {
        /// Its height.
        height: Height,
        /// Its hash.
        hash: BlockHash,
    },
    /// Asks for committed blocks `from`, `from + 1`, … (at most `count`).
    GetBlocks {
        /// The first height wanted.
        from: Height,
        /// How many.
        count: u32,
    },
    /// Committed blocks, consecutive, each with its commit certificate in its header.
    Blocks(Vec<Block>),
}

impl Wire {
    /// The message for a consensus message the engine wants sent; a proposal needs its block.
    pub fn consensus(message: Message, block: Option<Box<Block>>) -> Option<Wire> {
        match (message, block) {
            (Message::Vote(vote), _) => Some(Wire::Vote(vote)),
            (Message::Proposal(proposal), Some(block)) => Some(Wire::Proposal { proposal, block }),
            (Message::Proposal(_), None) => None,
        }
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        primitives::encode(self)
    }

    /// Decodes one message; trailing bytes are refused.
    pub fn decode(bytes: &[u8]) -> Result<Wire, primitives::DecodeError> {
        primitives::decode(bytes)
    }
}

/// An entry of the consensus write-ahead log: a message this validator signed and, for a
/// proposal, the block it names. A block decided by votes that were logged must survive the
/// crash of the process that built it, or a restarted network could never commit it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WalEntry {
    /// The signed message.
    pub message: Message,
    /// The proposed block, for a proposal.
    pub block: Option<Block>,
}
