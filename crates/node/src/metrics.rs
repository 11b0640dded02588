//! The node's Prometheus metrics.

use crate::validators::ValidatorSchedule;
use primitives::{Block, ConsensusProof, Payload, TimeScale};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

/// Labels for rejected transactions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The machine-readable reason.
    pub reason: String,
}

/// Labels naming a validator.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValidatorLabel {
    /// Its name in the validator set.
    pub validator: String,
}

/// What a committed block did besides its transactions, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlockFacts {
    /// Transactions whose receipt is a failure.
    pub(crate) failed: usize,
    /// Slots whose gate closed at its start (cleared).
    pub(crate) cleared: usize,
    /// Slots settled at its start.
    pub(crate) settled: usize,
}

/// Counters, gauges and histograms the node updates. Clones share the same values.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    /// Transactions admitted to the mempool.
    pub txs_admitted: Counter,
    /// Transactions refused at submission, by reason.
    pub txs_refused: Family<ReasonLabel, Counter>,
    /// Transactions from peers dropped before their signature check: their nonce was used on
    /// the chain already, or one of the same sender and nonce waits in the mempool.
    pub txs_known: Counter,
    /// Transactions committed in blocks (failed receipts included).
    pub txs_committed: Counter,
    /// Committed transactions whose receipt is a failure.
    pub txs_failed: Counter,
    /// Blocks committed.
    pub blocks_committed: Counter,
    /// Blocks taken off the chain by switches to another branch (chains with forks).
    pub blocks_reverted: Counter,
    /// Height of the head.
    pub head_height: Gauge,
    /// Transactions waiting in the mempool.
    pub mempool_size: Gauge,
    /// Seconds to select and execute a block.
    pub block_build_seconds: Histogram,
    /// Seconds to write a block durably.
    pub block_commit_seconds: Histogram,
    /// Transactions per block.
    pub block_txs: Histogram,
    /// Wall seconds between a committed block's timestamp and its parent's.
    pub block_interval_seconds: Histogram,
    /// The height consensus is deciding: the head's plus one.
    pub consensus_height: Gauge,
    /// The round in which the head was decided (0: at the first try).
    pub consensus_round: Gauge,
    /// Validators of the head's height whose precommit is not in its commit certificate.
    pub consensus_absent_validators: Gauge,
    /// Committed blocks whose commit certificate lacks a validator's precommit, per validator.
    pub consensus_validator_absent_blocks: Family<ValidatorLabel, Counter>,
    /// Meter readings committed in blocks (failed receipts included).
    pub market_readings: Counter,
    /// Slots cleared (their gate closed) by committed blocks.
    pub market_slots_cleared: Counter,
    /// Slots settled by committed blocks.
    pub market_slots_settled: Counter,
}

impl NodeMetrics {
    /// Creates the metrics and registers them under `registry`.
    pub fn register(registry: &mut Registry) -> NodeMetrics {
        let seconds =
            || Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]);
        let metrics = NodeMetrics {
            txs_admitted: Counter::default(),
            txs_refused: Family::default(),
            txs_known: Counter::default(),
            txs_committed: Counter::default(),
            txs_failed: Counter::default(),
            blocks_committed: Counter::default(),
            blocks_reverted: Counter::default(),
            head_height: Gauge::default(),
            mempool_size: Gauge::default(),
            block_build_seconds: seconds(),
            block_commit_seconds: seconds(),
            block_txs: Histogram::new([
                0.0, 1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 20_000.0, 50_000.0,
            ]),
            block_interval_seconds: Histogram::new([
                0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0,
            ]),
            consensus_height: Gauge::default(),
            consensus_round: Gauge::default(),
            consensus_absent_validators: Gauge::default(),
            consensus_validator_absent_blocks: Family::default(),
            market_readings: Counter::default(),
            market_slots_cleared: Counter::default(),
            market_slots_settled: Counter::default(),
        };
        let node = registry.sub_registry_with_prefix("joule");
        node.register(
            "txs_admitted",
            "Transactions admitted to the mempool",
            metrics.txs_admitted.clone(),
        );
        node.register(
            "txs_refused",
            "Transactions refused at submission",
            metrics.txs_refused.clone(),
        );
        node.register(
            "txs_known",
            "Transactions from peers dropped unchecked: committed already, or waiting",
            metrics.txs_known.clone(),
        );
        node.register(
            "txs_committed",
            "Transactions committed in blocks",
            metrics.txs_committed.clone(),
        );
        node.register(
            "txs_failed",
            "Committed transactions with a failed receipt",
            metrics.txs_failed.clone(),
        );
        node.register("blocks_committed", "Blocks committed", metrics.blocks_committed.clone());
        node.register(
            "blocks_reverted",
            "Blocks taken off the chain by switches to another branch",
            metrics.blocks_reverted.clone(),
        );
        node.register("head_height", "Height of the chain head", metrics.head_height.clone());
        node.register(
            "mempool_size",
            "Transactions waiting in the mempool",
            metrics.mempool_size.clone(),
        );
        node.register(
            "block_build_seconds",
            "Time to select and execute a block",
            metrics.block_build_seconds.clone(),
        );
        node.register(
            "block_commit_seconds",
            "Time to write a block durably",
            metrics.block_commit_seconds.clone(),
        );
        node.register("block_txs", "Transactions per block", metrics.block_txs.clone());
        node.register_with_unit(
            "block_interval",
            "Wall time between a committed block's timestamp and its parent's",
            Unit::Seconds,
            metrics.block_interval_seconds.clone(),
        );
        node.register(
            "consensus_height",
            "The height consensus is deciding (the head's plus one)",
            metrics.consensus_height.clone(),
        );
        node.register(
            "consensus_round",
            "The round in which the head was decided (0 = at the first try; more means proposers were missing or slow)",
            metrics.consensus_round.clone(),
        );
        node.register(
            "consensus_absent_validators",
            "Validators whose precommit is not in the head's commit certificate (a certificate holds the precommits in hand when more than two thirds of the power agreed, so a slow validator can be absent; one absent from block after block is down or cut off)",
            metrics.consensus_absent_validators.clone(),
        );
        node.register(
            "consensus_validator_absent_blocks",
            "Committed blocks whose commit certificate lacks this validator's precommit",
            metrics.consensus_validator_absent_blocks.clone(),
        );
        node.register(
            "market_readings",
            "Meter readings committed in blocks",
            metrics.market_readings.clone(),
        );
        node.register(
            "market_slots_cleared",
            "Delivery slots cleared (gate closed) by committed blocks",
            metrics.market_slots_cleared.clone(),
        );
        node.register(
            "market_slots_settled",
            "Delivery slots settled by committed blocks",
            metrics.market_slots_settled.clone(),
        );
        metrics
    }

    /// Counts a block that is now durable: its transactions, its interval since `parent_ms`
    /// (chain time, turned into wall time by `scale`), its commit certificate against the
    /// validators of its height in `schedule`, and its market events.
    pub(crate) fn committed(
        &self,
        block: &Block,
        parent_ms: Option<u64>,
        facts: BlockFacts,
        schedule: &ValidatorSchedule,
        scale: &TimeScale,
    ) {
        let header = &block.header;
        let height = i64::try_from(header.height.0).unwrap_or(i64::MAX);
        self.blocks_committed.inc();
        self.txs_committed.inc_by(block.txs.len() as u64);
        self.txs_failed.inc_by(facts.failed as u64);
        self.block_txs.observe(block.txs.len() as f64);
        self.head_height.set(height);
        self.consensus_height.set(height.saturating_add(1));
        if let Some(parent_ms) = parent_ms {
            let chain_ms = header.timestamp.0.saturating_sub(parent_ms);
            self.block_interval_seconds.observe(scale.wall_span(chain_ms) as f64 / 1000.0);
        }
        if let ConsensusProof::Bft(certificate) = &header.proof {
            self.consensus_round.set(i64::from(certificate.round));
            let mut absent = 0;
            for validator in &schedule.current {
                if !certificate.signatures.iter().any(|entry| entry.validator == validator.key) {
                    absent += 1;
                    self.consensus_validator_absent_blocks
                        .get_or_create(&ValidatorLabel { validator: validator.name.clone() })
                        .inc();
                }
            }
            self.consensus_absent_validators.set(absent);
        }
        let readings =
            block.txs.iter().filter(|tx| matches!(tx.tx.payload, Payload::Reading { .. })).count();
        self.market_readings.inc_by(readings as u64);
        self.market_slots_cleared.inc_by(facts.cleared as u64);
        self.market_slots_settled.inc_by(facts.settled as u64);
    }
}
