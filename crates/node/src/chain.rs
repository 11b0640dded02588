//! Small facts about the chain that the node needs: block 0 and the wall clock.

use ledger::State;
use primitives::{
    Address, Block, BlockHash, ConsensusProof, Genesis, Hash, Header, Height, TimestampMs,
};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> TimestampMs {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    TimestampMs(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}
