//! Whether the node is fit to serve: the chain advances (the head is not much older than the
//! longest time the chain goes without a block), the node is in step with its peers, and it has
//! the peers it needs. `GET /health` answers 200 when it is and 503 when it is not (what a load
//! balancer or an orchestrator's probe understands), with the facts as JSON; `node_status`
//! carries the same in `health`, and `joule status` says it in words.

use crate::dto::HealthDto;
use node::NodeHandle;

/// How far a node may be behind the best head its peers report and still be in step.
pub const MAX_LAG_BLOCKS: u64 = 2;

/// What the verdict is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthFacts {
    /// The head's height.
    pub head_height: u64,
    /// The head's timestamp (chain time, ms).
    pub head_time_ms: u64,
    /// Wall time since the head's timestamp, ms.
    pub head_age_ms: u64,
    /// The longest the chain goes without a block when all is well (its empty-block interval),
    /// wall ms.
    pub block_interval_ms: u64,
    /// Connected peers; `None` for a node without a peer-to-peer network.
    pub peers: Option<u64>,
    /// Whether peers are needed: more than one validator, or this node is not one.
    pub needs_peers: bool,
    /// Whether the node is downloading blocks it missed.
    pub syncing: bool,
    /// The highest head its peers report.
    pub best_peer_height: Option<u64>,
}

/// How old the head may be before the chain counts as stalled: three times the longest
/// interval between blocks, and at least five seconds (a missing proposer's turn costs a
/// round's timeouts).
pub fn stall_after_ms(block_interval_ms: u64) -> u64 {
    block_interval_ms.saturating_mul(3).max(5_000)
}

/// The longest interval between blocks a healthy chain shows. Proof-of-work intervals are
/// random (exponential around the target): ten targets, so that the stall threshold (three of
/// these) is passed by chance about once in e^30 blocks.
fn longest_gap_ms(config: &primitives::ChainConfig) -> u64 {
    match &config.engine {
        primitives::EngineKind::Pow(pow) => pow.target_block_ms.saturating_mul(10),
        _ => config.params.empty_block_interval_ms.max(config.params.block_interval_ms),
    }
}

/// The verdict on `facts`.
pub fn assess(facts: HealthFacts) -> HealthDto {
    let stall_after = stall_after_ms(facts.block_interval_ms);
    let behind = facts.best_peer_height.map_or(0, |best| best.saturating_sub(facts.head_height));
    let seconds = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    let (status, message) = if facts.peers == Some(0) && facts.needs_peers {
        ("no_peers", "no peer is connected: the node cannot learn of new blocks".to_owned())
    } else if facts.syncing || behind > MAX_LAG_BLOCKS {
        (
            "syncing",
            match facts.best_peer_height {
                Some(best) => format!(
                    "catching up: at height {} of {best} that peers report",
                    facts.head_height
                ),
                None => "catching up with its peers".to_owned(),
            },
        )
    } else if facts.head_age_ms > stall_after {
        (
            "stalled",
            format!(
                "the chain is stalled: no block for {} (one comes at least every {}); are more than two thirds of the validators' power up and connected?",
                seconds(facts.head_age_ms),
                seconds(facts.block_interval_ms)
            ),
        )
    } else {
        (
            "ok",
            format!(
                "the chain advances: last block {} ago, in step with its peers",
                seconds(facts.head_age_ms)
            ),
        )
    };
    HealthDto {
        healthy: status == "ok",
        status: status.to_owned(),
        message,
        head_height: facts.head_height,
        head_time_ms: facts.head_time_ms,
        head_age_ms: facts.head_age_ms,
        block_interval_ms: facts.block_interval_ms,
        stall_after_ms: stall_after,
        peers: facts.peers,
        syncing: facts.syncing,
        best_peer_height: facts.best_peer_height,
    }
}

/// The facts about `node` now; `None` when it is shutting down.
pub(crate) async fn facts(node: &NodeHandle) -> Option<HealthFacts> {
    let status = node.status().await.ok()?;
    let head = node.head();
    let clock = node.clock();
    let scale = clock.scale();
    let head_time_ms = head.header.timestamp.0;
    let head_age_ms = scale.wall_span(clock.now().0.saturating_sub(head_time_ms));
    let config = node.chain_config();
    let peers = match node.p2p_identity() {
        Some(_) => Some(node.peers().await.len() as u64),
        None => None,
    };
    Some(HealthFacts {
        head_height: head.header.height.0,
        head_time_ms,
        head_age_ms,
        block_interval_ms: longest_gap_ms(config),
        peers,
        needs_peers: node.validators().current.len() > 1 || !status.is_validator,
        syncing: status.syncing,
        best_peer_height: status.best_peer_height.map(|height| height.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> HealthFacts {
        HealthFacts {
            head_height: 100,
            head_time_ms: 1_000_000,
            head_age_ms: 900,
            block_interval_ms: 1_000,
            peers: Some(3),
            needs_peers: true,
            syncing: false,
            best_peer_height: Some(101),
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(assess(healthy()).status, "ok");
        assert!(assess(healthy()).healthy);
        let stalled = assess(HealthFacts { head_age_ms: 5_001, ..healthy() });
        assert_eq!((stalled.status.as_str(), stalled.healthy), ("stalled", false));
        assert!(stalled.message.contains("no block for 5.0 s"), "{}", stalled.message);
        assert_eq!(assess(HealthFacts { head_age_ms: 5_000, ..healthy() }).status, "ok");
        // A slow chain's limit grows with its interval.
        let slow = HealthFacts { block_interval_ms: 5_000, head_age_ms: 14_000, ..healthy() };
        assert_eq!(assess(slow).status, "ok");
        assert_eq!(assess(HealthFacts { head_age_ms: 15_001, ..slow }).status, "stalled");
        assert_eq!(assess(HealthFacts { syncing: true, ..healthy() }).status, "syncing");
        assert_eq!(
            assess(HealthFacts { best_peer_height: Some(103), ..healthy() }).status,
            "syncing"
        );
        assert_eq!(assess(HealthFacts { peers: Some(0), ..healthy() }).status, "no_peers");
        // A lone validator needs nobody; a node without a network has no peers to count.
        let alone = HealthFacts { peers: Some(0), needs_peers: false, ..healthy() };
        assert_eq!(assess(alone).status, "ok");
        assert_eq!(assess(HealthFacts { peers: None, ..healthy() }).status, "ok");
    }
}
