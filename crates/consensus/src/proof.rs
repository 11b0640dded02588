//! Checking the consensus proof carried by a header.

use crate::power::{more_than_half, more_than_two_thirds, power_of, total_power};
use primitives::{
    Address, BlockHash, ChainConfig, ChainId, CommitCertificate, ConsensusProof, EngineKind,
    EntryRole, Hash, Header, Height, PublicKey, RaftCertificate, Signature, Validator,
    block::block_signing_bytes,
};
use std::collections::BTreeSet;

/// Why a header's proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is of another kind than the engine makes.
    #[error("a {engine:?} chain does not accept this kind of proof")]
    WrongKind {
        /// The chain's engine.
        engine: EngineKind,
    },
    /// The proposer (solo) or a signer of the commit certificate (BFT) is not a validator.
    #[error("block signed by {0}, which is not a validator")]
    NotAValidator(Address),
    /// The signature does not verify.
    #[error("the proposer's signature does not verify")]
    BadSignature,
    /// A validator signs the commit certificate more than once.
    #[error("validator {0} signs the commit certificate more than once")]
    DuplicateSigner(Address),
    /// The commit certificate's signers do not hold more than two thirds of the voting power.
    #[error(
        "the commit certificate is signed by {signed} of {total} voting power, not more than two thirds"
    )]
    NotEnoughPower {
        /// The voting power of the signers.
        signed: u128,
        /// The total voting power.
        total: u128,
    },
    /// A precommit signature in the commit certificate does not verify.
    #[error("the precommit signature of {0} does not verify")]
    BadPrecommitSignature(Address),
    /// The Raft certificate's leader and followers do not hold more than half of the voting
    /// power.
    #[error(
        "the Raft certificate is signed by {signed} of {total} voting power, not more than half"
    )]
    NoMajority {
        /// The voting power of the leader and the acknowledging followers.
        signed: u128,
        /// The total voting power.
        total: u128,
    },
    /// The Raft leader's signature over its append does not verify.
    #[error("the leader's signature of its append does not verify")]
    BadLeaderSignature,
    /// A follower's acknowledgement in the Raft certificate does not verify.
    #[error("the acknowledgement of {0} does not verify")]
    BadAckSignature(Address),
    /// A proof-of-work header's proof hash does not meet its target, or the target is out of
    /// bounds.
    #[error("the proof of work does not meet the header's target")]
    InsufficientWork,
}

/// Checks that `header` carries a valid proof for a chain configured by `config`. Block 0
/// carries [`ConsensusProof::Genesis`] and needs no signature.
///
/// This is [`certificate_signatures`] followed by a check of every signature.
pub fn verify_proof(config: &ChainConfig, header: &Header) -> Result<(), ProofError> {
    for (index, (key, message, signature)) in
        certificate_signatures(config, header)?.into_iter().enumerate()
    {
        key.verify(message.as_bytes(), &signature).map_err(|_| match header.proof {
            ConsensusProof::Bft(_) => ProofError::BadPrecommitSignature(Address(key)),
            // The leader's signature comes first, then the acknowledgements.
            ConsensusProof::Raft(_) if index == 0 => ProofError::BadLeaderSignature,
            ConsensusProof::Raft(_) => ProofError::BadAckSignature(Address(key)),
            _ => ProofError::BadSignature,
        })?;
    }
    Ok(())
}

/// Every structural check of `header`'s proof (kind, signers are validators, no signer twice,
/// more than two thirds of the voting power) but none of the signatures, which it returns as
/// `(key, signed hash, signature)` so that the caller can verify many blocks' proofs in one
/// batch. The proof holds if and only if this succeeds and every returned signature verifies.
///
/// A genesis proof yields no signature, a solo proof the proposer's, a BFT certificate one
/// precommit signature per signer, in the certificate's order, a Raft certificate the leader's
/// append signature and then one acknowledgement per follower, in the certificate's order.
pub fn certificate_signatures(
    config: &ChainConfig,
    header: &Header,
) -> Result<Vec<(PublicKey, Hash, Signature)>, ProofError> {
    match (&header.proof, config.engine) {
        (ConsensusProof::Genesis, _) if header.height.0 == 0 => Ok(vec![]),
        (ConsensusProof::Solo { signature }, EngineKind::Solo) => {
            let validator = config
                .validators
                .iter()
                .find(|validator| Address(validator.key) == header.proposer)
                .ok_or(ProofError::NotAValidator(header.proposer))?;
            Ok(vec![(validator.key, block_signing_bytes(&header.hash()), *signature)])
        }
        (ConsensusProof::Bft(certificate), EngineKind::Bft) => {
            bft_signatures(config, header, certificate)
        }
        (ConsensusProof::Raft(certificate), EngineKind::Raft) => raft_signatures(
            &config.chain_id,
            &config.validators,
            header.height,
            header.hash(),
            certificate,
        ),
        // A proof of work carries no signature: its hash is checked here, whether its target is
        // right for its parent by `Rules::check_successor`.
        (ConsensusProof::Pow { .. }, EngineKind::Pow(_)) if header.height.0 > 0 => {
            if crate::pow::meets_target(header) {
                Ok(vec![])
            } else {
                Err(ProofError::InsufficientWork)
            }
        }
        (_, engine) => Err(ProofError::WrongKind { engine }),
    }
}

fn bft_signatures(
    config: &ChainConfig,
    header: &Header,
    certificate: &CommitCertificate,
) -> Result<Vec<(PublicKey, Hash, Signature)>, ProofError> {
    let message = certificate.vote(header.height, header.hash()).signing_hash(&config.chain_id);
    let mut signers = BTreeSet::new();
    let mut signed: u128 = 0;
    let mut triples = Vec::with_capacity(certificate.signatures.len());
    for entry in &certificate.signatures {
        let power = power_of(&config.validators, &entry.validator)
            .ok_or(ProofError::NotAValidator(Address(entry.validator)))?;
        if !signers.insert(entry.validator) {
            return Err(ProofError::DuplicateSigner(Address(entry.validator)));
        }
        signed = signed.saturating_add(u128::from(power));
        triples.push((entry.validator, message, entry.signature));
    }
    let total = total_power(&config.validators);
    if !more_than_two_thirds(signed, total) {
        return Err(ProofError::NotEnoughPower { signed, total });
    }
    Ok(triples)
}

/// The structural checks of a Raft certificate for block `hash` at `height`, `validators` being
/// that height's: the leader and every acknowledging follower are validators, no one signs
/// twice (the leader does not acknowledge its own append), and together they hold more than
/// half of the voting power. Returns the signatures to verify: the leader's first.
pub(crate) fn raft_signatures(
    chain_id: &ChainId,
    validators: &[Validator],
    height: Height,
    hash: BlockHash,
    certificate: &RaftCertificate,
) -> Result<Vec<(PublicKey, Hash, Signature)>, ProofError> {
    let entry = certificate.entry(height, hash);
    let leader_power = power_of(validators, &certificate.leader)
        .ok_or(ProofError::NotAValidator(Address(certificate.leader)))?;
    let mut signers = BTreeSet::from([certificate.leader]);
    let mut signed = u128::from(leader_power);
    let mut triples = Vec::with_capacity(certificate.acks.len().saturating_add(1));
    triples.push((
        certificate.leader,
        entry.signing_hash(chain_id, EntryRole::Append),
        certificate.leader_signature,
    ));
    let ack = entry.signing_hash(chain_id, EntryRole::Ack);
    for entry in &certificate.acks {
        let power = power_of(validators, &entry.validator)
            .ok_or(ProofError::NotAValidator(Address(entry.validator)))?;
        if !signers.insert(entry.validator) {
            return Err(ProofError::DuplicateSigner(Address(entry.validator)));
        }
        signed = signed.saturating_add(u128::from(power));
        triples.push((entry.validator, ack, entry.signature));
    }
    let total = total_power(validators);
    if !more_than_half(signed, total) {
        return Err(ProofError::NoMajority { signed, total });
    }
    Ok(triples)
}
