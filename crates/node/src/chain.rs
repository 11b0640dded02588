//! Small facts about the chain that the node needs: block 0 and the clock.

use ledger::State;
use primitives::{
    Address, Block, BlockHash, ConsensusProof, Genesis, Hash, Header, Height, TimeScale,
    TimestampMs,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Block 0 of the chain described by `genesis`, whose state is `state`. Every node builds the
/// same block from the same genesis, so its hash identifies the chain.
pub fn genesis_block(genesis: &Genesis, state: &State) -> Block {
    let proposer = genesis
        .config
        .validators
        .first()
        .map(|validator| Address(validator.key))
        .unwrap_or(genesis.config.operator);
    Block {
        header: Header {
            height: Height(0),
            parent: BlockHash(Hash::ZERO),
            timestamp: genesis.genesis_time,
            proposer,
            tx_root: Hash::ZERO,
            state_root: state.root(),
            proof: ConsensusProof::Genesis,
        },
        txs: Vec::new(),
    }
}

/// The node's one clock. Everything that asks "what time is it on the chain" (block timestamps,
/// gate closures and reading deadlines at admission, the engine's timers) asks it; chain time
/// runs at the speed of its [`TimeScale`] (the wall clock itself in production). Durations for
/// the network's sake (peer and sync timeouts) are measured on the wall clock directly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    scale: TimeScale,
}

impl Clock {
    /// Chain time is wall time.
    pub const REAL: Clock = Clock { scale: TimeScale::REAL };

    /// A clock whose chain time follows `scale`.
    pub fn new(scale: TimeScale) -> Clock {
        Clock { scale }
    }

    /// How chain time relates to the wall clock.
    pub fn scale(&self) -> TimeScale {
        self.scale
    }

    /// Chain time now.
    pub fn now(&self) -> TimestampMs {
        self.scale.chain_time(now_ms())
    }

    /// How long, on the wall clock, until chain time reaches `at` (zero if it has).
    pub fn until(&self, at: TimestampMs) -> Duration {
        Duration::from_millis(self.scale.wall_time(at).0.saturating_sub(now_ms().0))
    }
}

/// Wall-clock time in milliseconds since the Unix epoch. Chain time is [`Clock::now`].
pub fn now_ms() -> TimestampMs {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    TimestampMs(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}
