//! What Raft validators sign to commit a block, and the certificate that proves a majority did.
//!
//! A Raft leader of term `t` appends block `b` at height `h` by signing the [`RaftEntry`]
//! `(t, h, b)` with the *append* role; a follower that has the block durably signs the same
//! entry with the *acknowledgement* role. A block is committed once validators holding more than
//! half of the voting power of its height have it durably: the leader and the followers that
//! acknowledged. [`RaftCertificate`] carries those signatures in the block's header, so that a
//! node downloading the block can check it without having seen the messages.
//!
//! Each signature covers a domain-separated hash of the entry together with the chain id and
//! the role, so a leader's append cannot be passed off as an acknowledgement, nor a signature
//! made on one chain used on another.

use crate::{
    block::BlockHash,
    crypto::{PublicKey, Signature},
    encoding::encode,
    hash::{Hash, domain},
    tx::ChainId,
    units::{Height, counter},
    vote::CommitSignature,
};
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;

counter!(
    /// A Raft term: a period with at most one leader. Terms only grow.
    Term
);

/// Who signs a [`RaftEntry`], and so what the signature says.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum EntryRole {
    /// The term's leader: "I append this block at this height, and have it durably".
    Append,
    /// A follower: "I have this block durably at this height in this term".
    Ack,
}

/// One entry of the Raft log: the block at `height`, appended in `term`. The log index is the
/// block height.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, BorshSerialize, BorshDeserialize,
)]
pub struct RaftEntry {
    /// The term of the leader that appended it.
    pub term: Term,
    /// Its height.
    pub height: Height,
    /// The block.
    pub block: BlockHash,
}

impl RaftEntry {
    /// The hash a validator signs for this entry in `role` on chain `chain_id`.
    pub fn signing_hash(&self, chain_id: &ChainId, role: EntryRole) -> Hash {
        let tag = match role {
            EntryRole::Append => domain::RAFT_APPEND,
            EntryRole::Ack => domain::RAFT_ACK,
        };
        Hash::digest(tag, &[&encode(&(chain_id.as_str(), self))])
    }
}

/// Proof that a block was committed by Raft: the leader's append and the acknowledgements of
/// followers, together holding more than half of the voting power of the block's height.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct RaftCertificate {
    /// The term in which the block was committed.
    pub term: Term,
    /// The leader of that term.
    pub leader: PublicKey,
    /// The leader's signature over the entry in the append role.
    pub leader_signature: Signature,
    /// The followers' signatures over the entry in the acknowledgement role, one per follower,
    /// sorted by key; the leader is not among them.
    pub acks: Vec<CommitSignature>,
}

impl RaftCertificate {
    /// The entry every signature covers, for the block `hash` at `height`.
    pub fn entry(&self, height: Height, hash: BlockHash) -> RaftEntry {
        RaftEntry { term: self.term, height, block: hash }
    }
}

impl fmt::Display for RaftEntry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "term {} height {} block {}", self.term, self.height, self.block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_chain_and_every_field_change_what_is_signed() {
        let chain = ChainId::new("a").unwrap();
        let entry = RaftEntry { term: Term(3), height: Height(7), block: BlockHash(Hash([1; 32])) };
        let base = entry.signing_hash(&chain, EntryRole::Append);
        assert_ne!(entry.signing_hash(&chain, EntryRole::Ack), base);
        assert_ne!(entry.signing_hash(&ChainId::new("b").unwrap(), EntryRole::Append), base);
        for changed in [
            RaftEntry { term: Term(4), ..entry },
            RaftEntry { height: Height(8), ..entry },
            RaftEntry { block: BlockHash(Hash([2; 32])), ..entry },
        ] {
            assert_ne!(changed.signing_hash(&chain, EntryRole::Append), base);
        }
    }
}
