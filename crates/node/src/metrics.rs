//! The node's Prometheus metrics.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels for rejected transactions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The machine-readable reason.
    pub reason: String,
}

/// Counters, gauges and histograms the node updates. Clones share the same values.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    /// Transactions admitted to the mempool.
    pub txs_admitted: Counter,
    /// Transactions refused at submission, by reason.
    pub txs_refused: Family<ReasonLabel, Counter>,
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
}

impl NodeMetrics {
    /// Creates the metrics and registers them under `registry`.
    pub fn register(registry: &mut Registry) -> NodeMetrics {
        let seconds =
            || Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]);
        let metrics = NodeMetrics {
            txs_admitted: Counter::default(),
            txs_refused: Family::default(),
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
        metrics
    }
}
