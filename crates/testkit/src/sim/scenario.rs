//! What happens in one simulated run, drawn from its seed: the validators and a change of
//! their set, their clocks, the network's delays and losses, how long writes take, and the
//! faults (partitions, crashes, byzantine behaviour).

use ledger::ValidatorChange;
use node::ValidatorSchedule;
use primitives::{
    Address, BlockHash, ChainConfig, ChainId, ChainParams, ConsensusProof, EngineKind, Hash,
    Header, Height, MarketParams, SecretKey, TimestampMs, Validator,
};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

/// Chain time of virtual time 0 on a clock without skew.
pub const EPOCH_MS: u64 = 1_001_000;
/// The timestamp of the genesis block.
pub const GENESIS_TIME_MS: u64 = 1_000_000;
/// The largest clock offset of a node, either way.
pub const MAX_SKEW_MS: i64 = 500;
/// How far ahead a clock that is far ahead runs, at most: its blocks come more than
/// `node::core::MAX_CLOCK_DRIFT_MS` ahead of the other nodes' clocks, which hold them back
/// until their own clocks are close enough.
pub const MAX_FAR_AHEAD_MS: i64 = 3_000;
/// Writing blocks takes 1 to this many ms at most (each scenario draws its own maximum).
pub const MAX_WRITE_MS: u64 = 60;
/// The longest fault phase.
pub const MAX_FAULT_PHASE_MS: u64 = 10_000;
/// Heights every honest node must add after the last fault.
pub const LIVENESS_HEIGHTS: u64 = 3;
/// Virtual time after the last fault within which every honest node must have added
/// [`LIVENESS_HEIGHTS`] heights (see the crate documentation of `sim` for the reasoning).
pub const LIVENESS_BOUND_MS: u64 = 60_000;

/// What a byzantine validator does besides running an honest engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// As proposer, signs a second proposal for another block in the same round and sends each
    /// to a different half of the peers.
    pub equivocate: bool,
    /// Signs a second prevote or precommit for another value and sends each to a different half.
    pub double_vote: bool,
    /// Sends copies of messages with broken signatures, and votes forged in honest validators'
    /// names.
    pub bad_signatures: bool,
    /// Builds blocks with a wrong state root (invalid) and proposes them with valid signatures.
    pub poison: bool,
    /// Re-sends messages recorded at earlier heights and rounds.
    pub replay: bool,
}

impl Behaviour {
    /// Whether it does anything wrong at all.
    pub fn any(&self) -> bool {
        self.equivocate || self.double_vote || self.bad_signatures || self.poison || self.replay
    }
}

/// A split of the network for a while: messages between nodes of different groups are lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Virtual time it starts.
    pub start: u64,
    /// Virtual time it heals.
    pub end: u64,
    /// The group of each node.
    pub groups: Vec<u8>,
}

/// A node crash, and its restart from disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crash {
    /// Which node.
    pub node: usize,
    /// Virtual time it crashes.
    pub at: u64,
    /// Virtual time it restarts; `None` for a byzantine node that stays down.
    pub restart: Option<u64>,
}

/// A crash of whichever node leads at that moment (Raft scenarios), and its restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderCrash {
    /// Virtual time it crashes.
    pub at: u64,
    /// How long it stays down (it is back by the end of the faults at the latest).
    pub down_for: u64,
}

/// Everything one run does, drawn from its seed.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// The chain, its validators in genesis order.
    pub config: ChainConfig,
    /// Validator keys, in the same order.
    pub keys: Vec<SecretKey>,
    /// Block 0.
    pub genesis: Header,
    /// Each node's clock offset from virtual time.
    pub clock_offsets: Vec<i64>,
    /// Messages take 1 to this many ms.
    pub max_delay_ms: u64,
    /// Chance in a million that a message is lost during the fault phase.
    pub drop_ppm: u32,
    /// Partitions, one after the other, all healed by `fault_end`.
    pub partitions: Vec<Partition>,
    /// Crashes; honest nodes restart by `fault_end`.
    pub crashes: Vec<Crash>,
    /// Each node's byzantine behaviour, `None` for an honest node.
    pub byzantine: Vec<Option<Behaviour>>,
    /// Virtual time when the last fault ends: the network is whole and lossless again and every
    /// crashed honest node has restarted.
    pub fault_end: u64,
    /// Writing blocks takes 1 to this many ms.
    pub max_write_ms: u64,
    /// A validator set that takes over at a later height, carried by the block two heights
    /// before it (see [`Scenario::changes_validators`]).
    pub validator_change: Option<ValidatorChange>,
    /// Crashes of the leader of the moment (Raft scenarios only).
    pub leader_crashes: Vec<LeaderCrash>,
    /// Hash power, withheld blocks, hash-power jumps and transactions (proof-of-work scenarios
    /// only).
    pub pow: Option<super::pow::PowPlan>,
}

/// The state root the stand-in application computes on top of `parent`.
pub fn state_root_after(parent: &BlockHash) -> Hash {
    Hash::digest(b"joule/sim/state", &[parent.0.as_bytes()])
}

impl Scenario {
    /// The BFT scenario of `seed`.
    pub fn from_seed(seed: u64) -> Scenario {
        Scenario::draw(seed, EngineKind::Bft)
    }

    /// The Raft scenario of `seed`: the same fault model without byzantine validators (Raft
    /// tolerates crashes, not lies), 3 to 7 nodes, up to three crashes (so now and then a
    /// majority is down), crashes of whichever node leads at the moment, and changes of the
    /// membership (a validator added or removed) or of one validator's power.
    pub fn raft_from_seed(seed: u64) -> Scenario {
        Scenario::draw(seed, EngineKind::Raft)
    }

    /// The proof-of-work scenario of `seed`: the same network faults and crashes, 3 to 5
    /// miners of unequal hash power, and the faults of proof of work (see `sim::pow`).
    pub fn pow_from_seed(seed: u64) -> Scenario {
        Scenario::draw(seed, EngineKind::Pow(super::pow::params()))
    }

    fn draw(seed: u64, engine: EngineKind) -> Scenario {
        let raft = engine == EngineKind::Raft;
        let pow = matches!(engine, EngineKind::Pow(_));
        let salt = match (raft, pow) {
            (true, _) => 0x5eed_5ce0_a410_0014,
            (_, true) => 0x5eed_5ce0_a410_0013,
            _ => 0x5eed_5ce0_a410_0001,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ salt);
        let n = match (raft, pow) {
            (true, _) => rng.random_range(3..=7usize),
            (_, true) => rng.random_range(3..=5usize),
            _ => rng.random_range(4..=7usize),
        };
        let equal = rng.random_bool(0.5);
        let keys: Vec<SecretKey> = (0..n)
            .map(|i| {
                let mut bytes = [0u8; 32];
                bytes[..8].copy_from_slice(&seed.to_le_bytes());
                bytes[8] = i as u8;
                bytes[9] = if raft { 0x52 } else { 0x51 };
                SecretKey::from_seed(bytes)
            })
            .collect();
        let mut validators: Vec<Validator> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| Validator {
                name: format!("v{i}"),
                key: key.public_key(),
                power: if equal { 1 } else { rng.random_range(1..=10) },
            })
            .collect();
        let membership = raft.then(|| super::raft::draw_membership(&mut rng, &mut validators));
        let total: u64 = validators.iter().map(|v| v.power).sum();
        let config = ChainConfig {
            chain_id: ChainId::new("sim").expect("a valid chain id"),
            engine,
            validators,
            issuer: Address(keys[0].public_key()),
            operator: Address(keys[0].public_key()),
            params: ChainParams {
                block_interval_ms: 2000,
                empty_block_interval_ms: 2000,
                max_block_txs: 1000,
            },
            market: MarketParams::default(),
        };
        let genesis = Header {
            height: Height(0),
            parent: BlockHash(Hash::ZERO),
            timestamp: TimestampMs(GENESIS_TIME_MS),
            proposer: Address(keys[0].public_key()),
            tx_root: Hash::ZERO,
            state_root: Hash::digest(b"joule/sim/genesis", &[&seed.to_le_bytes()]),
            proof: ConsensusProof::Genesis,
        };

        let skewed = rng.random_bool(0.7);
        let mut clock_offsets: Vec<i64> = (0..n)
            .map(|_| if skewed { rng.random_range(-MAX_SKEW_MS..=MAX_SKEW_MS) } else { 0 })
            .collect();
        let max_delay_ms = rng.random_range(5..=200);
        let drop_ppm = if rng.random_bool(0.5) { rng.random_range(10_000..=200_000) } else { 0 };
        let fault_end = rng.random_range(2_000..=MAX_FAULT_PHASE_MS);

        // Byzantine validators: fewer than a third of the power.
        let mut byzantine = vec![None; n];
        if !raft && !pow && rng.random_bool(0.6) {
            let mut byzantine_power = 0;
            let mut order: Vec<usize> = (0..n).collect();
            shuffle(&mut rng, &mut order);
            let wanted = rng.random_range(1..=2usize);
            for node in order.into_iter().take(wanted) {
                let power = config.validators[node].power;
                if 3 * (byzantine_power + power) >= total {
                    continue;
                }
                byzantine_power += power;
                let mut behaviour = Behaviour::default();
                while !behaviour.any() {
                    behaviour = Behaviour {
                        equivocate: rng.random_bool(0.4),
                        double_vote: rng.random_bool(0.4),
                        bad_signatures: rng.random_bool(0.4),
                        poison: rng.random_bool(0.4),
                        replay: rng.random_bool(0.4),
                    };
                }
                byzantine[node] = Some(behaviour);
            }
        }

        let mut partitions = Vec::new();
        let mut cursor = rng.random_range(0..fault_end / 2);
        for _ in 0..rng.random_range(0..=2) {
            if cursor + 500 >= fault_end {
                break;
            }
            let end = rng.random_range(cursor + 500..=fault_end);
            let group_count = rng.random_range(2..=3u8);
            let groups = (0..n).map(|_| rng.random_range(0..group_count)).collect();
            partitions.push(Partition { start: cursor, end, groups });
            cursor = end + rng.random_range(0..2_000);
        }

        let mut crashes = Vec::new();
        let most_crashes = if raft { 3 } else { 2 };
        for _ in 0..rng.random_range(0..=most_crashes) {
            let node = rng.random_range(0..n);
            if crashes.iter().any(|crash: &Crash| crash.node == node) {
                continue;
            }
            let at = rng.random_range(0..fault_end);
            let restart = if byzantine[node].is_some() && rng.random_bool(0.5) {
                None
            } else {
                Some(rng.random_range(at..=fault_end))
            };
            crashes.push(Crash { node, at, restart });
        }

        // Now and then a clock far ahead: the other nodes hold its blocks for a while.
        if rng.random_bool(0.15) {
            let node = rng.random_range(0..n);
            clock_offsets[node] = rng.random_range(MAX_SKEW_MS * 5..=MAX_FAR_AHEAD_MS);
        }
        let max_write_ms = rng.random_range(1..=MAX_WRITE_MS);
        // Half the scenarios change the validator set early on, so that nodes that catch up
        // after a crash or a partition download batches across the change: one honest
        // validator gets one more unit of power (which keeps the byzantine power below a third).
        let validator_change = if let Some(membership) = membership {
            membership
        } else if !pow && rng.random_bool(0.5) {
            let honest: Vec<usize> = (0..n).filter(|&node| byzantine[node].is_none()).collect();
            let lucky = honest[rng.random_range(0..honest.len())];
            let mut validators = config.validators.clone();
            validators[lucky].power += 1;
            Some(ValidatorChange { from: Height(rng.random_range(3..=6)), validators })
        } else {
            None
        };

        let leader_crashes =
            if raft { super::raft::draw_leader_crashes(&mut rng, fault_end) } else { Vec::new() };
        let pow = pow.then(|| super::pow::draw_plan(&mut rng, n, fault_end));
        Scenario {
            seed,
            config,
            keys,
            genesis,
            clock_offsets,
            max_delay_ms,
            drop_ppm,
            partitions,
            crashes,
            byzantine,
            fault_end,
            max_write_ms,
            validator_change,
            leader_crashes,
            pow,
        }
    }

    /// The validators of `height`.
    pub fn validators_at(&self, height: Height) -> &[Validator] {
        match &self.validator_change {
            Some(change) if height >= change.from => &change.validators,
            _ => &self.config.validators,
        }
    }

    /// The chain's configuration as it applies to `height`: with that height's validators.
    pub fn config_at(&self, height: Height) -> ChainConfig {
        ChainConfig { validators: self.validators_at(height).to_vec(), ..self.config.clone() }
    }

    /// Whether the block at `height` carries the validator change: the one two heights before
    /// the change takes over (the earliest an operator's change may be committed).
    pub fn changes_validators(&self, height: Height) -> bool {
        self.validator_change
            .as_ref()
            .is_some_and(|change| change.from.0.checked_sub(2) == Some(height.0))
    }

    /// Who validates the heights after `head`, as the ledger would say once the block that
    /// carries the change is applied: the change is known from that block on, and decides from
    /// its first height.
    pub fn schedule(&self, head: Height) -> ValidatorSchedule {
        let next_height = Height(head.0 + 1);
        let upcoming = self
            .validator_change
            .as_ref()
            .filter(|change| change.from.0 <= head.0 + 2 && change.from > next_height)
            .cloned();
        ValidatorSchedule {
            next_height,
            current: self.validators_at(next_height).to_vec(),
            upcoming,
        }
    }

    /// Number of nodes (all of them validators at some height).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no nodes (never: a scenario has 3 to 7).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether node `node` is honest.
    pub fn honest(&self, node: usize) -> bool {
        self.byzantine[node].is_none()
    }
}

/// Fisher–Yates with our RNG, so that the order depends on the seed alone.
pub(crate) fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byzantine_power_stays_below_a_third_and_faults_end_in_time() {
        for seed in 0..2000 {
            let scenario = Scenario::from_seed(seed);
            let total: u64 = scenario.config.validators.iter().map(|v| v.power).sum();
            let byzantine: u64 = (0..scenario.len())
                .filter(|&node| !scenario.honest(node))
                .map(|node| scenario.config.validators[node].power)
                .sum();
            assert!(3 * byzantine < total, "seed {seed}");
            assert!(scenario.fault_end <= MAX_FAULT_PHASE_MS);
            for partition in &scenario.partitions {
                assert!(partition.start < partition.end && partition.end <= scenario.fault_end);
            }
            for crash in &scenario.crashes {
                match crash.restart {
                    Some(restart) => assert!(restart >= crash.at && restart <= scenario.fault_end),
                    None => assert!(!scenario.honest(crash.node), "seed {seed}"),
                }
            }
            if let Some(change) = &scenario.validator_change {
                let total: u64 = change.validators.iter().map(|v| v.power).sum();
                let byzantine: u64 = (0..scenario.len())
                    .filter(|&node| !scenario.honest(node))
                    .map(|node| change.validators[node].power)
                    .sum();
                assert!(3 * byzantine < total, "seed {seed}: after the change");
            }
            for offset in &scenario.clock_offsets {
                assert!((-MAX_SKEW_MS..=MAX_FAR_AHEAD_MS).contains(offset), "seed {seed}");
            }
            assert!((1..=MAX_WRITE_MS).contains(&scenario.max_write_ms));
        }
    }

    #[test]
    fn a_validator_change_is_carried_two_heights_ahead_and_decides_from_its_height() {
        let scenario = (0..100)
            .map(Scenario::from_seed)
            .find(|scenario| scenario.validator_change.is_some())
            .expect("half the scenarios change the set");
        let change = scenario.validator_change.clone().expect("found one");
        let from = change.from.0;
        assert_ne!(change.validators, scenario.config.validators, "the set changes");
        let carriers: Vec<u64> =
            (0..from + 5).filter(|&height| scenario.changes_validators(Height(height))).collect();
        assert_eq!(carriers, vec![from - 2]);
        // Before the carrier is applied nobody knows of the change; from then on it is the
        // upcoming set until the head is just below its first height.
        for head in 0..from + 3 {
            let schedule = scenario.schedule(Height(head));
            assert_eq!(schedule.next_height, Height(head + 1));
            let expected_current =
                if head + 1 >= from { &change.validators } else { &scenario.config.validators };
            assert_eq!(&schedule.current, expected_current, "head {head}");
            let upcoming = (head + 2 >= from && head + 1 < from).then(|| change.clone());
            assert_eq!(schedule.upcoming, upcoming, "head {head}");
            assert_eq!(
                scenario.config_at(Height(head + 1)).validators,
                scenario.validators_at(Height(head + 1)).to_vec()
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_scenario() {
        let a = Scenario::from_seed(42);
        let b = Scenario::from_seed(42);
        assert_eq!(a.config, b.config);
        assert_eq!(a.partitions, b.partitions);
        assert_eq!(a.crashes, b.crashes);
        assert_eq!(a.byzantine, b.byzantine);
        assert_eq!(a.clock_offsets, b.clock_offsets);
        assert_eq!(a.validator_change, b.validator_change);
        assert_ne!(Scenario::from_seed(43).config, a.config);
    }
}
