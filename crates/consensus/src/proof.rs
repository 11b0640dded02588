//! Checking the consensus proof carried by a header.

use primitives::{
    Address, ChainConfig, ConsensusProof, EngineKind, Header, block::block_signing_bytes,
};

/// Why a header's proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is of another kind than the engine makes.
    #[error("a {engine:?} chain does not accept this kind of proof")]
    WrongKind {
        /// The chain's engine.
        engine: EngineKind,
    },
    /// The proposer is not the validator.
    #[error("block proposed by {0}, which is not a validator")]
    NotAValidator(Address),
    /// The signature does not verify.
    #[error("the proposer's signature does not verify")]
    BadSignature,
}

/// Checks that `header` carries a valid proof for a chain configured by `config`. Block 0
/// carries [`ConsensusProof::Genesis`] and needs no signature.
pub fn verify_proof(config: &ChainConfig, header: &Header) -> Result<(), ProofError> {
    match (&header.proof, config.engine) {
        (ConsensusProof::Genesis, _) if header.height.0 == 0 => Ok(()),
        (ConsensusProof::Solo { signature }, EngineKind::Solo) => {
            let validator = config
                .validators
                .iter()
                .find(|validator| Address(validator.key) == header.proposer)
                .ok_or(ProofError::NotAValidator(header.proposer))?;
            let message = block_signing_bytes(&header.hash());
            validator
                .key
                .verify(message.as_bytes(), signature)
                .map_err(|_| ProofError::BadSignature)
        }
        (_, engine) => Err(ProofError::WrongKind { engine }),
    }
}
