//! The genesis description of a chain: who validates, who issues tokens, who operates the grid,
//! the initial balances and the consensus parameters.

use crate::{
    address::Address,
    crypto::PublicKey,
    tx::ChainId,
    units::{Amount, TimestampMs},
};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeSet;

/// Which consensus engine drives the chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum EngineKind {
    /// One validator proposes and finalises every block.
    Solo,
}

/// A validator and its voting power.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Validator {
    /// A display name (1 to 32 bytes).
    pub name: String,
    /// The key that signs blocks and votes.
    pub key: PublicKey,
    /// Voting power (at least 1).
    pub power: u64,
}

/// Consensus parameters, identical on every node.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ChainParams {
    /// Time between blocks while there are transactions to include.
    pub block_interval_ms: u64,
    /// Longest time without a block while idle: an empty block is made after it.
    pub empty_block_interval_ms: u64,
    /// Most transactions in one block.
    pub max_block_txs: u32,
}

impl Default for ChainParams {
    fn default() -> ChainParams {
        ChainParams {
            block_interval_ms: 1000,
            empty_block_interval_ms: 5000,
            max_block_txs: 50_000,
        }
    }
}

/// The parts of the genesis that stay in force (and can later be changed by transactions).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ChainConfig {
    /// The chain's name; every transaction carries it.
    pub chain_id: ChainId,
    /// The consensus engine.
    pub engine: EngineKind,
    /// The validator set.
    pub validators: Vec<Validator>,
    /// The only account that may mint and redeem tokens.
    pub issuer: Address,
    /// The grid operator / community manager account.
    pub operator: Address,
    /// Consensus parameters.
    pub params: ChainParams,
}

/// Everything needed to build block 0.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Genesis {
    /// Rules and roles.
    pub config: ChainConfig,
    /// The timestamp of block 0.
    pub genesis_time: TimestampMs,
    /// Initial balances; they count as minted.
    pub balances: Vec<(Address, Amount)>,
}

/// Why a genesis is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// No validators.
    #[error("the genesis names no validators")]
    NoValidators,
    /// The solo engine takes exactly one validator.
    #[error("the solo engine needs exactly one validator, the genesis names {0}")]
    SoloNeedsOneValidator(usize),
    /// A validator entry is unusable.
    #[error("validator {index}: {reason}")]
    BadValidator {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// An address has two initial balances.
    #[error("account {0} has more than one initial balance")]
    DuplicateBalance(Address),
    /// The initial balances overflow.
    #[error("the initial balances add up to more than the largest amount")]
    SupplyOverflow,
    /// A parameter is out of range.
    #[error("parameter {name}: {reason}")]
    BadParameter {
        /// Which parameter.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Genesis {
    /// Checks the genesis for internal consistency.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let config = &self.config;
        if config.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        if config.engine == EngineKind::Solo && config.validators.len() != 1 {
            return Err(GenesisError::SoloNeedsOneValidator(config.validators.len()));
        }
        let mut keys = BTreeSet::new();
        for (index, validator) in config.validators.iter().enumerate() {
            let reason = if validator.name.is_empty() || validator.name.len() > 32 {
                Some("name must be 1 to 32 bytes".to_owned())
            } else if validator.power == 0 {
                Some("voting power must be at least 1".to_owned())
            } else if !keys.insert(validator.key) {
                Some("key appears twice".to_owned())
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(GenesisError::BadValidator { index, reason });
            }
        }
        let params = &config.params;
        if !(10..=60_000).contains(&params.block_interval_ms) {
            return Err(GenesisError::BadParameter {
                name: "block_interval_ms",
                reason: format!("must be 10 to 60000, got {}", params.block_interval_ms),
            });
        }
        if params.empty_block_interval_ms < params.block_interval_ms
            || params.empty_block_interval_ms > 3_600_000
        {
            return Err(GenesisError::BadParameter {
                name: "empty_block_interval_ms",
                reason: format!(
                    "must be at least block_interval_ms and at most 3600000, got {}",
                    params.empty_block_interval_ms
                ),
            });
        }
        if !(1..=1_000_000).contains(&params.max_block_txs) {
            return Err(GenesisError::BadParameter {
                name: "max_block_txs",
                reason: format!("must be 1 to 1000000, got {}", params.max_block_txs),
            });
        }
        let mut seen = BTreeSet::new();
        let mut total = Amount::ZERO;
        for (address, amount) in &self.balances {
            if !seen.insert(*address) {
                return Err(GenesisError::DuplicateBalance(*address));
            }
            total = total.checked_add(*amount).ok_or(GenesisError::SupplyOverflow)?;
        }
        Ok(())
    }
}
