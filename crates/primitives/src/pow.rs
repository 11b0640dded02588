//! Proof of work: what a proof-of-work chain fixes in its genesis ([`PowParams`]), the target a
//! header's proof must meet ([`Target`]), and the proof hash a miner searches for.
//!
//! A header's proof is [`ConsensusProof::Pow`](crate::ConsensusProof::Pow) `{ target, nonce }`.
//! The proof hash is SHA-256 over the whole header: the block hash (every other field) with the
//! target and the nonce, under its own domain tag ([`proof_hash`]). The header meets its target
//! when the first 16 bytes of that hash, read as a big-endian number, are below the target: a
//! single hash succeeds with probability `target / 2^128`, so a block is worth
//! `2^128 / target` hashes of expected work ([`Target::work`]). Which target a block must carry
//! (the difficulty adjustment) is the consensus engine's rule.

use crate::{
    block::BlockHash,
    hash::{Hash, domain},
    units::{Amount, TimestampMs},
};
use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The most expected hashes per block a target may ask for (2^100: far beyond any chain of
/// computers; the bound keeps cumulative work from overflowing for billions of blocks).
pub const MAX_DIFFICULTY: u128 = 1 << 100;
/// The fewest expected hashes per block (2): a target never lets every hash succeed.
pub const MIN_DIFFICULTY: u128 = 2;

/// The threshold a header's proof hash must stay below: a single hash meets it with probability
/// `target / 2^128`.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    Default,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Target(pub u128);

impl Target {
    /// The easiest target there may be ([`MIN_DIFFICULTY`] hashes per block).
    pub const EASIEST: Target = Target(u128::MAX / MIN_DIFFICULTY);
    /// The hardest target there may be ([`MAX_DIFFICULTY`] hashes per block).
    pub const HARDEST: Target = Target(u128::MAX / MAX_DIFFICULTY);

    /// The target at which a block takes `difficulty` hashes on average, within the bounds.
    pub fn from_difficulty(difficulty: u128) -> Target {
        Target(u128::MAX / difficulty.clamp(MIN_DIFFICULTY, MAX_DIFFICULTY)).clamped()
    }

    /// The same target moved into `HARDEST..=EASIEST`.
    pub fn clamped(self) -> Target {
        Target(self.0.clamp(Target::HARDEST.0, Target::EASIEST.0))
    }

    /// The expected number of hashes a block at this target takes: `2^128 / target`, rounded
    /// down (at least 1).
    pub fn work(self) -> u128 {
        (u128::MAX / self.0.max(1)).max(1)
    }

    /// Whether `hash` meets the target.
    pub fn is_met_by(self, hash: &Hash) -> bool {
        let mut high = [0u8; 16];
        high.copy_from_slice(&hash.0[..16]);
        u128::from_be_bytes(high) < self.0
    }
}

impl fmt::Display for Target {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:032x}", self.0)
    }
}

/// The proof hash of a header with block hash `block`, carrying `target` and `nonce`.
pub fn proof_hash(block: &BlockHash, target: Target, nonce: u64) -> Hash {
    ProofHasher::new(block, target).hash(nonce)
}

/// The proof hash with everything but the nonce absorbed once: what a miner clones for every
/// nonce it tries.
#[derive(Clone)]
pub struct ProofHasher {
    prefix: Sha256,
}

impl ProofHasher {
    /// A hasher for the header with block hash `block` and `target`.
    pub fn new(block: &BlockHash, target: Target) -> ProofHasher {
        let mut prefix = Sha256::new();
        // The same framing as `Hash::digest`: the tag's length, the tag, then the parts.
        prefix.update([domain::POW.len() as u8]);
        prefix.update(domain::POW);
        prefix.update(block.0.as_bytes());
        prefix.update(target.0.to_be_bytes());
        ProofHasher { prefix }
    }

    /// The proof hash with `nonce`.
    pub fn hash(&self, nonce: u64) -> Hash {
        let mut hasher = self.prefix.clone();
        hasher.update(nonce.to_le_bytes());
        Hash(hasher.finalize().into())
    }
}

/// A proof-of-work chain's consensus parameters, fixed by its genesis.
///
/// Durations are chain time: the difficulty rule compares block timestamps with each other, so
/// a devnet whose chain time runs faster than the wall clock scales its target block time by
/// its speed when it writes the genesis (`docs/design/time.md`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct PowParams {
    /// The block time the difficulty steers towards.
    pub target_block_ms: u64,
    /// New tokens the miner of each block receives (counted apart from fiat-backed supply).
    pub block_reward: Amount,
    /// Expected hashes per block for the first block.
    pub initial_difficulty: u64,
    /// After how many target block times of being ahead of (or behind) the schedule the
    /// difficulty has doubled (or halved).
    pub half_life_blocks: u32,
    /// How many blocks below the head a branch may fork off and still replace them; blocks
    /// deeper than that are final.
    pub max_reorg_depth: u32,
    /// How many blocks on top of the block that passes a slot's settlement deadline the chain
    /// waits before it settles the slot.
    pub settlement_confirmations: u32,
    /// Where the difficulty schedule starts: the genesis time.
    pub schedule_start: TimestampMs,
}

impl PowParams {
    /// The parameters a new proof-of-work chain starts with by default, from `genesis_time`.
    pub fn new(genesis_time: TimestampMs) -> PowParams {
        PowParams {
            target_block_ms: 2_000,
            block_reward: Amount(100),
            initial_difficulty: 100_000,
            half_life_blocks: 16,
            max_reorg_depth: 32,
            settlement_confirmations: 6,
            schedule_start: genesis_time,
        }
    }

    /// The first block's target.
    pub fn initial_target(&self) -> Target {
        Target::from_difficulty(u128::from(self.initial_difficulty))
    }

    /// Checks the ranges, and that the schedule starts at `genesis_time`.
    pub fn validate(&self, genesis_time: TimestampMs) -> Result<(), String> {
        if !(10..=3_600_000_000).contains(&self.target_block_ms) {
            return Err(format!(
                "target_block_ms must be 10 to 3600000000, got {}",
                self.target_block_ms
            ));
        }
        if !(2..=1 << 60).contains(&self.initial_difficulty) {
            return Err(format!(
                "initial_difficulty must be 2 to 2^60, got {}",
                self.initial_difficulty
            ));
        }
        if !(1..=10_000).contains(&self.half_life_blocks) {
            return Err(format!(
                "half_life_blocks must be 1 to 10000, got {}",
                self.half_life_blocks
            ));
        }
        if !(1..=10_000).contains(&self.max_reorg_depth) {
            return Err(format!(
                "max_reorg_depth must be 1 to 10000, got {}",
                self.max_reorg_depth
            ));
        }
        if self.settlement_confirmations > self.max_reorg_depth {
            return Err(format!(
                "settlement_confirmations ({}) must not exceed max_reorg_depth ({})",
                self.settlement_confirmations, self.max_reorg_depth
            ));
        }
        if self.schedule_start != genesis_time {
            return Err(format!(
                "schedule_start ({}) must be the genesis time ({})",
                self.schedule_start.0, genesis_time.0
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_and_difficulty_are_inverse_within_the_bounds() {
        for difficulty in [2u128, 3, 1000, 100_000, 1 << 40, MAX_DIFFICULTY] {
            let target = Target::from_difficulty(difficulty);
            let work = target.work();
            // Exact for small difficulties; within one part in a million at the hardest.
            let slack = (difficulty >> 20) + 1;
            assert!(work >= difficulty && work <= difficulty + slack, "{difficulty}: {work}");
        }
        assert_eq!(Target::from_difficulty(0), Target::EASIEST);
        assert_eq!(Target::from_difficulty(u128::MAX), Target::HARDEST);
        assert_eq!(Target(0).clamped(), Target::HARDEST);
        assert_eq!(Target(u128::MAX).clamped(), Target::EASIEST);
    }

    #[test]
    fn a_hash_meets_a_target_when_its_first_sixteen_bytes_are_below_it() {
        let mut bytes = [0xffu8; 32];
        bytes[..16].copy_from_slice(&99u128.to_be_bytes());
        let hash = Hash(bytes);
        assert!(Target(100).is_met_by(&hash));
        assert!(!Target(99).is_met_by(&hash));
    }

    #[test]
    fn the_proof_hash_depends_on_every_part_and_the_shortcut_agrees() {
        let block = BlockHash(Hash([7; 32]));
        let base = proof_hash(&block, Target(5), 1);
        assert_eq!(ProofHasher::new(&block, Target(5)).hash(1), base);
        assert_eq!(
            base,
            Hash::digest(domain::POW, &[&[7; 32], &5u128.to_be_bytes(), &1u64.to_le_bytes()])
        );
        assert_ne!(proof_hash(&BlockHash(Hash([8; 32])), Target(5), 1), base);
        assert_ne!(proof_hash(&block, Target(6), 1), base);
        assert_ne!(proof_hash(&block, Target(5), 2), base);
    }

    #[test]
    fn about_one_hash_in_difficulty_meets_the_target() {
        let block = BlockHash(Hash([3; 32]));
        let target = Target::from_difficulty(64);
        let hasher = ProofHasher::new(&block, target);
        let found = (0..64_000u64).filter(|nonce| target.is_met_by(&hasher.hash(*nonce))).count();
        // 1,000 expected; a binomial count this far off would be a broken target.
        assert!((850..1150).contains(&found), "{found}");
    }

    #[test]
    fn parameters_are_checked() {
        let start = TimestampMs(1_000);
        let good = PowParams::new(start);
        assert_eq!(good.validate(start), Ok(()));
        assert!(good.validate(TimestampMs(2_000)).is_err(), "the schedule starts at genesis");
        let bad = [
            PowParams { target_block_ms: 5, ..good },
            PowParams { initial_difficulty: 1, ..good },
            PowParams { half_life_blocks: 0, ..good },
            PowParams { max_reorg_depth: 0, ..good },
            PowParams { settlement_confirmations: good.max_reorg_depth + 1, ..good },
        ];
        for params in bad {
            assert!(params.validate(start).is_err(), "{params:?}");
        }
    }
}
