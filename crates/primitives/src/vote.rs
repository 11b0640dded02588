//! The messages validators sign to agree on a block, and the certificate that proves they did.
//!
//! Each message is signed over a domain-separated hash of its canonical encoding together with
//! the chain id, so a signature made for one chain, height, round or kind of message is worth
//! nothing anywhere else.

use crate::{
    block::BlockHash,
    crypto::{PublicKey, Signature},
    encoding::encode,
    hash::{Hash, domain},
    tx::ChainId,
    units::Height,
};
use borsh::{BorshDeserialize, BorshSerialize};

/// The two voting steps of a round.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, BorshSerialize, BorshDeserialize,
)]
pub enum VoteKind {
    /// First vote: "this proposal is valid and I am free to accept it".
    Prevote,
    /// Second vote: "more than two thirds prevoted for it; I commit to it".
    Precommit,
}

/// A validator's vote for a block (or for nothing) at one height and round.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// The height being decided.
    pub height: Height,
    /// The round within the height.
    pub round: u32,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The block voted for; `None` is a vote for no block (nil).
    pub block: Option<BlockHash>,
}

impl Vote {
    /// The hash a validator signs for this vote on chain `chain_id`.
    pub fn signing_hash(&self, chain_id: &ChainId) -> Hash {
        Hash::digest(domain::VOTE, &[&encode(&(chain_id.as_str(), self))])
    }
}

/// A vote with its validator's signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// Who voted.
    pub validator: PublicKey,
    /// Signature over [`Vote::signing_hash`].
    pub signature: Signature,
}

/// A proposer's proposal of a block for one height and round.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// The height being decided.
    pub height: Height,
    /// The round.
    pub round: u32,
    /// The proposed block.
    pub block: BlockHash,
    /// The round in which more than two thirds prevoted for this block, when it is proposed
    /// again (Tendermint's "valid round"); `None` for a new block.
    pub pol_round: Option<u32>,
}

impl Proposal {
    /// The hash the proposer signs for this proposal on chain `chain_id`.
    pub fn signing_hash(&self, chain_id: &ChainId) -> Hash {
        Hash::digest(domain::PROPOSAL, &[&encode(&(chain_id.as_str(), self))])
    }
}

/// A proposal with its proposer's signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, BorshSerialize, BorshDeserialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// Who proposed.
    pub proposer: PublicKey,
    /// Signature over [`Proposal::signing_hash`].
    pub signature: Signature,
}

/// One validator's precommit signature in a [`CommitCertificate`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct CommitSignature {
    /// The validator.
    pub validator: PublicKey,
    /// Its signature over the precommit for the block at the certificate's height and round.
    pub signature: Signature,
}

/// Proof that validators holding more than two thirds of the voting power precommitted a block:
/// their signatures over `Vote { height, round, Precommit, Some(block hash) }`.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct CommitCertificate {
    /// The round in which the block was decided.
    pub round: u32,
    /// The precommit signatures, one per validator, sorted by validator key.
    pub signatures: Vec<CommitSignature>,
}

impl CommitCertificate {
    /// The precommit each signature covers, for the block `hash` at `height`.
    pub fn vote(&self, height: Height, hash: BlockHash) -> Vote {
        Vote { height, round: self.round, kind: VoteKind::Precommit, block: Some(hash) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    #[test]
    fn every_field_and_the_chain_change_what_is_signed() {
        let chain = ChainId::new("a").unwrap();
        let other = ChainId::new("b").unwrap();
        let vote = Vote {
            height: Height(3),
            round: 1,
            kind: VoteKind::Prevote,
            block: Some(BlockHash(Hash([1; 32]))),
        };
        let base = vote.signing_hash(&chain);
        assert_ne!(vote.signing_hash(&other), base);
        for changed in [
            Vote { height: Height(4), ..vote },
            Vote { round: 2, ..vote },
            Vote { kind: VoteKind::Precommit, ..vote },
            Vote { block: None, ..vote },
        ] {
            assert_ne!(changed.signing_hash(&chain), base);
        }
        let proposal = Proposal {
            height: Height(3),
            round: 1,
            block: BlockHash(Hash([1; 32])),
            pol_round: None,
        };
        assert_ne!(proposal.signing_hash(&chain), base);
        assert_ne!(
            Proposal { pol_round: Some(0), ..proposal }.signing_hash(&chain),
            proposal.signing_hash(&chain)
        );
    }
}
