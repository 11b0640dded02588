//! What nodes say to each other, inside the `net` crate's authenticated frames.
//!
//! Every message is one borsh-encoded [`Wire`] value. Transactions and consensus messages are
//! gossiped (a node's own to every peer, what it passes on to a few, de-duplicated by hash);
//! status, block requests and block responses go to one peer. A consensus message is the
//! engine's own ([`consensus::EngineMessage`]): the node carries it, and the block that goes
//! with it, without knowing its shape.

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::EngineMessage;
use primitives::{Block, BlockHash, Height, SignedTransaction};

/// Most blocks asked for, or sent, in one message.
pub const MAX_BLOCKS_PER_MESSAGE: u32 = 512;

/// One message between nodes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Wire {
    /// Transactions admitted by the sender's mempool (gossip).
    Txs(Vec<SignedTransaction>),
    /// A consensus engine's message, and the block that goes with it, if any (gossip, or to
    /// one peer).
    Consensus {
        /// The engine's message.
        message: EngineMessage,
        /// The block it carries.
        block: Option<Box<Block>>,
    },
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
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        primitives::encode(self)
    }

    /// Decodes one message; trailing bytes are refused.
    pub fn decode(bytes: &[u8]) -> Result<Wire, primitives::DecodeError> {
        primitives::decode(bytes)
    }
}

/// An entry of the consensus write-ahead log: a message the engine sent and the block that
/// went with it. A block decided by votes that were logged must survive the crash of the
/// process that built it, or a restarted network could never commit it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WalEntry {
    /// The engine's message.
    pub message: EngineMessage,
    /// The block that went with it.
    pub block: Option<Block>,
}

impl WalEntry {
    /// The encoding of the entry of `message` and `block`, made without copying the block.
    pub fn encode(message: &EngineMessage, block: Option<&Block>) -> Vec<u8> {
        primitives::encode(&(message, block))
    }

    /// Decodes an entry, also in the layout of nodes before engine messages were opaque (a
    /// Tendermint message and its block), so that an upgraded validator keeps what it signed.
    pub fn decode(bytes: &[u8]) -> Result<WalEntry, primitives::DecodeError> {
        primitives::decode(bytes).or_else(|error| {
            let (message, block): (consensus::tendermint::Message, Option<Block>) =
                primitives::decode(bytes).map_err(|_| error)?;
            Ok(WalEntry { message: consensus::tendermint::encode(&message), block })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::{ConsensusProof, Hash, Header, TimestampMs, testing};

    #[test]
    fn a_write_ahead_log_entry_encoded_by_reference_is_the_entry() {
        let txs = (0..3).map(|nonce| testing::transfer("wal", 1, nonce, 2, 5)).collect();
        let header = Header {
            height: Height(7),
            parent: BlockHash(Hash([1; 32])),
            timestamp: TimestampMs(9),
            proposer: testing::address(3),
            tx_root: Hash([2; 32]),
            state_root: Hash([3; 32]),
            proof: ConsensusProof::Genesis,
        };
        let block = Block { header, txs };
        let message = EngineMessage(vec![4, 5, 6]);
        for block in [Some(block), None] {
            let entry = WalEntry { message: message.clone(), block: block.clone() };
            let bytes = WalEntry::encode(&message, block.as_ref());
            assert_eq!(bytes, primitives::encode(&entry));
            assert_eq!(WalEntry::decode(&bytes), Ok(entry));
        }
    }
}
