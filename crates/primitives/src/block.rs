//! Blocks: a header that commits to the parent, the transactions and the resulting state, and
//! the ordered list of signed transactions.

use crate::{
    address::Address,
    crypto::Signature,
    encoding::encode,
    hash::{Hash, domain, merkle_root},
    raft::RaftCertificate,
    tx::SignedTransaction,
    units::{Height, TimestampMs},
    vote::CommitCertificate,
};
use borsh::{BorshDeserialize, BorshSerialize};

crate::hash::hash_newtype!(
    /// The identity of a block: the hash of its header without the consensus proof.
    BlockHash
);

/// Evidence that the validators agreed on a block. It signs the block hash, so it is carried in
/// the header but not covered by the hash.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum ConsensusProof {
    /// The genesis block needs no proof: every node builds it from the genesis file.
    Genesis,
    /// The single validator's signature over `H("joule/block-signature/v1", block hash)`.
    Solo {
        /// The proposer's signature.
        signature: Signature,
    },
    /// Precommits for the block from validators with more than two thirds of the voting power.
    Bft(CommitCertificate),
    /// Raft: the leader's append and the acknowledgements of followers that have the block
    /// durably, holding more than half of the voting power together.
    Raft(RaftCertificate),
    /// Proof of work: the target the header meets and the nonce that meets it (see
    /// [`crate::pow`]). The proof hash covers the block hash, so the work vouches for the whole
    /// header.
    Pow {
        /// The target, as the difficulty rule sets it for the block's height and parent.
        target: crate::pow::Target,
        /// The nonce the miner found.
        nonce: u64,
    },
}

/// A block header.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Header {
    /// Distance from genesis (which is height 0).
    pub height: Height,
    /// Hash of the previous block; zero for genesis.
    pub parent: BlockHash,
    /// Chain time when the block was proposed; strictly greater than the parent's.
    pub timestamp: TimestampMs,
    /// The validator that proposed the block.
    pub proposer: Address,
    /// Merkle root over the block's transactions, signatures included.
    pub tx_root: Hash,
    /// The ledger state root after the block's transactions have been applied.
    pub state_root: Hash,
    /// How the validators agreed on this block.
    pub proof: ConsensusProof,
}

impl Header {
    /// The block hash: everything in the header except the proof.
    pub fn hash(&self) -> BlockHash {
        let Header { height, parent, timestamp, proposer, tx_root, state_root, proof: _ } = self;
        let fields = encode(&(height, parent, timestamp, proposer, tx_root, state_root));
        BlockHash(Hash::digest(domain::HEADER, &[&fields]))
    }
}

/// The message a proposer signs to vouch for a block.
pub fn block_signing_bytes(hash: &BlockHash) -> Hash {
    Hash::digest(domain::BLOCK_SIGNATURE, &[hash.0.as_bytes()])
}

/// A block: header and transactions.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order.
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    /// The block's identity.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The Merkle root of `txs` as it must appear in the header. Each leaf covers the
    /// transaction hash and its signature, so the header commits to the exact bytes.
    pub fn tx_root(txs: &[SignedTransaction]) -> Hash {
        let leaves: Vec<Hash> = txs
            .iter()
            .map(|signed| {
                Hash::digest(domain::TX, &[signed.hash().0.as_bytes(), &signed.signature.0])
            })
            .collect();
        merkle_root(&leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PublicKey;

    fn header() -> Header {
        Header {
            height: Height(4),
            parent: BlockHash(Hash([1; 32])),
            timestamp: TimestampMs(1000),
            proposer: Address(PublicKey([2; 32])),
            tx_root: Hash::ZERO,
            state_root: Hash([3; 32]),
            proof: ConsensusProof::Genesis,
        }
    }

    #[test]
    fn the_hash_covers_every_field_but_the_proof() {
        let base = header().hash();
        let mut with_proof = header();
        with_proof.proof = ConsensusProof::Solo { signature: Signature([5; 64]) };
        assert_eq!(with_proof.hash(), base);

        let changes: Vec<fn(&mut Header)> = vec![
            |h| h.height = Height(5),
            |h| h.parent = BlockHash(Hash([9; 32])),
            |h| h.timestamp = TimestampMs(1001),
            |h| h.proposer = Address(PublicKey([9; 32])),
            |h| h.tx_root = Hash([9; 32]),
            |h| h.state_root = Hash([9; 32]),
        ];
        for change in changes {
            let mut changed = header();
            change(&mut changed);
            assert_ne!(changed.hash(), base);
        }
    }
}
