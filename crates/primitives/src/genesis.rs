//! The genesis description of a chain: who validates, who issues tokens, who operates the grid,
//! the initial balances and the consensus parameters.

use crate::{
    address::Address,
    crypto::PublicKey,
    tx::ChainId,
    units::{Amount, Price, Slot, TimestampMs},
};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeSet;

/// Which consensus engine drives the chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum EngineKind {
    /// One validator proposes and finalises every block.
    Solo,
    /// Tendermint-style BFT: validators holding more than two thirds of the voting power
    /// precommit every block.
    Bft,
    /// Raft: an elected leader proposes every block, and it is committed once validators with
    /// more than half of the voting power have it durably. Tolerates crashes, not lying
    /// validators.
    Raft,
    /// Proof of work: anyone may mine, the chain with the most work wins (issue 13). No
    /// validator set; its parameters travel with the choice.
    Pow(crate::pow::PowParams),
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

/// How a slot's orders are matched.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum ClearingRule {
    /// A uniform-price double auction at gate closure (pay-as-clear).
    UniformPrice,
    /// Continuous matching: each incoming order trades with the best resting orders at their
    /// price.
    PayAsBid,
}

/// What the grid charges and pays, in tokens per kWh.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Tariffs {
    /// Price of energy bought from the grid.
    pub retail: Price,
    /// Price the grid pays for energy fed in.
    pub feed_in: Price,
    /// Fee per kWh of locally traded energy, paid by the buyer to the operator.
    pub grid_fee: Price,
}

/// The energy market's parameters (see `docs/design/market.md`).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct MarketParams {
    /// Length of a delivery slot, 1 to 60 minutes.
    pub slot_minutes: u32,
    /// Length of the interval one meter reading covers; divides the slot length.
    pub reading_minutes: u32,
    /// How long before a slot starts its gate closes.
    pub gate_lead_minutes: u32,
    /// How many slots after a slot ends it is settled.
    pub settlement_delay_slots: u32,
    /// How orders are matched.
    pub clearing: ClearingRule,
    /// Tariffs in force from genesis.
    pub tariffs: Tariffs,
}

impl Default for MarketParams {
    fn default() -> MarketParams {
        MarketParams {
            slot_minutes: 15,
            reading_minutes: 1,
            gate_lead_minutes: 5,
            settlement_delay_slots: 2,
            clearing: ClearingRule::UniformPrice,
            tariffs: Tariffs { retail: Price(30), feed_in: Price(8), grid_fee: Price(4) },
        }
    }
}

const MINUTE_MS: u64 = 60_000;

impl MarketParams {
    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=60).contains(&self.slot_minutes) {
            return Err(format!("slot_minutes must be 1 to 60, got {}", self.slot_minutes));
        }
        if self.reading_minutes == 0 || !self.slot_minutes.is_multiple_of(self.reading_minutes) {
            return Err(format!(
                "reading_minutes must divide slot_minutes ({}), got {}",
                self.slot_minutes, self.reading_minutes
            ));
        }
        if self.gate_lead_minutes > 1440 {
            return Err(format!(
                "gate_lead_minutes must be at most 1440, got {}",
                self.gate_lead_minutes
            ));
        }
        if self.settlement_delay_slots > 96 {
            return Err(format!(
                "settlement_delay_slots must be at most 96, got {}",
                self.settlement_delay_slots
            ));
        }
        Ok(())
    }

    /// Slot length in ms.
    pub fn slot_ms(&self) -> u64 {
        u64::from(self.slot_minutes).saturating_mul(MINUTE_MS).max(1)
    }

    /// Reading interval length in ms.
    pub fn reading_ms(&self) -> u64 {
        u64::from(self.reading_minutes).saturating_mul(MINUTE_MS).max(1)
    }

    /// The slot that contains chain time `time`.
    pub fn slot_of(&self, time: TimestampMs) -> Slot {
        Slot(time.0 / self.slot_ms())
    }

    /// When slot `slot` starts.
    pub fn slot_start(&self, slot: Slot) -> TimestampMs {
        TimestampMs(slot.0.saturating_mul(self.slot_ms()))
    }

    /// The gate closure of `slot`: orders for it are accepted before this time.
    pub fn gate_closure(&self, slot: Slot) -> TimestampMs {
        let lead = u64::from(self.gate_lead_minutes).saturating_mul(MINUTE_MS);
        TimestampMs(self.slot_start(slot).0.saturating_sub(lead))
    }

    /// The settlement deadline of `slot`: readings are accepted before it, and the slot is
    /// settled in the first block at or after it.
    pub fn settlement_deadline(&self, slot: Slot) -> TimestampMs {
        let slots = slot.0.saturating_add(1).saturating_add(u64::from(self.settlement_delay_slots));
        TimestampMs(slots.saturating_mul(self.slot_ms()))
    }

    /// The slot a reading interval belongs to.
    pub fn interval_slot(&self, interval: u64) -> Slot {
        Slot(interval.saturating_mul(self.reading_ms()) / self.slot_ms())
    }

    /// When a reading interval ends.
    pub fn interval_end(&self, interval: u64) -> TimestampMs {
        TimestampMs(interval.saturating_add(1).saturating_mul(self.reading_ms()))
    }

    /// The position of a reading interval within its slot (0-based).
    pub fn interval_in_slot(&self, interval: u64) -> u32 {
        let per_slot = u64::from(self.slot_minutes / self.reading_minutes.max(1)).max(1);
        u32::try_from(interval % per_slot).unwrap_or(0)
    }

    /// The first slot whose gate has not closed at `time`: the earliest slot orders may target.
    pub fn first_open_slot(&self, time: TimestampMs) -> Slot {
        let lead = u64::from(self.gate_lead_minutes).saturating_mul(MINUTE_MS);
        // The gate of slot s closes at s·L − lead; it is open while time < s·L − lead, that is
        // s > (time + lead) / L.
        Slot(time.0.saturating_add(lead) / self.slot_ms() + 1)
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
    /// Energy market parameters.
    pub market: MarketParams,
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
    #[error("the validator set is empty")]
    NoValidators,
    /// The solo engine takes exactly one validator.
    #[error("the solo engine needs exactly one validator, the genesis names {0}")]
    SoloNeedsOneValidator(usize),
    /// A proof-of-work chain is open to any miner: it names no validators.
    #[error("a proof-of-work chain has no validator set, the genesis names {0} validators")]
    PowHasNoValidators(usize),
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

/// Checks a validator set for `engine`: not empty (exactly one for the solo engine, none for
/// proof of work), names of 1 to 32 bytes, voting power of at least 1 each, no key twice. The genesis set and every set an
/// operator installs later pass the same checks.
pub fn check_validators(engine: EngineKind, validators: &[Validator]) -> Result<(), GenesisError> {
    if let EngineKind::Pow(_) = engine {
        return match validators.len() {
            0 => Ok(()),
            count => Err(GenesisError::PowHasNoValidators(count)),
        };
    }
    if validators.is_empty() {
        return Err(GenesisError::NoValidators);
    }
    if engine == EngineKind::Solo && validators.len() != 1 {
        return Err(GenesisError::SoloNeedsOneValidator(validators.len()));
    }
    let mut keys = BTreeSet::new();
    for (index, validator) in validators.iter().enumerate() {
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
    Ok(())
}

impl Genesis {
    /// Checks the genesis for internal consistency.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let config = &self.config;
        check_validators(config.engine, &config.validators)?;
        if let EngineKind::Pow(pow) = &config.engine {
            pow.validate(self.genesis_time)
                .map_err(|reason| GenesisError::BadParameter { name: "pow", reason })?;
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
        config
            .market
            .validate()
            .map_err(|reason| GenesisError::BadParameter { name: "market", reason })?;
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
