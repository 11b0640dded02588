//! Joule's consensus engines.
//!
//! Consensus decides which block comes next and proves that the validators agreed. Every engine
//! is a pure state machine behind the [`Engine`] trait: the node feeds it [`Event`]s together
//! with the current time, and carries out the [`Command`]s it returns (build a block, commit it
//! with a proof, wake me later). Engines do no I/O, read no clock, spawn nothing and never see
//! the mempool or the database, so they can be tested by feeding events and comparing the exact
//! commands that come out, and later simulated deterministically.
//!
//! Engines order opaque blocks: executing transactions is the ledger's job, and the node hands
//! the engine a header that already carries the state root.
//!
//! There are three engines: [`SoloEngine`], in which one validator proposes and finalises every
//! block; [`TendermintEngine`], Tendermint-style BFT among several validators whose blocks
//! carry a commit certificate of precommits from more than two thirds of the voting power;
//! [`RaftEngine`], in which an elected leader proposes every block and a block is committed
//! once validators with more than half of the voting power have it durably (crash faults
//! only); and [`PowEngine`], proof of work: anyone mines, the branch with the most work wins,
//! and blocks are final once they are deeper than the chain's maximum reorg depth.

mod engine;
pub mod pow;
mod power;
mod proof;
pub mod raft;
mod rules;
mod solo;
pub mod tendermint;

pub use engine::{BlockCheck, Command, Engine, EngineMessage, EngineStatus, Event, Restored, Role};
pub use pow::PowEngine;
pub use proof::{ProofError, certificate_signatures, verify_proof};
pub use raft::{RaftEngine, RaftTimeouts};
pub use rules::{HeaderError, Rules, ValidatorView, Verdict, rules};
pub use solo::SoloEngine;
pub use tendermint::{SignatureCheck, TendermintEngine, Timeouts, proposer};

use primitives::{ChainConfig, EngineKind, Header, SecretKey, TimeScale};

/// The engine the genesis asks for, resuming after `head`. `key` is this node's validator key,
/// if it has one; `restored` is what it logged and kept before a restart.
///
/// Engines see one time, chain time. Block intervals and round timeouts are wall durations (a
/// devnet whose chain time runs 60 times as fast still makes a block a second), so they are
/// handed to the engine converted into chain time by `time`.
pub fn engine_for(
    config: &ChainConfig,
    key: Option<SecretKey>,
    head: &Header,
    restored: Restored,
    time: &TimeScale,
) -> Box<dyn Engine + Send> {
    let mut config = config.clone();
    config.params.block_interval_ms = time.chain_span(config.params.block_interval_ms);
    config.params.empty_block_interval_ms = time.chain_span(config.params.empty_block_interval_ms);
    match config.engine {
        EngineKind::Solo => Box::new(SoloEngine::new(&config, key, head)),
        EngineKind::Bft => Box::new(TendermintEngine::new(
            &config,
            key,
            head,
            restored.messages.iter().filter_map(tendermint::decode).collect(),
            Timeouts::default().scaled(time),
        )),
        // Raft (issue 14): its term and vote, and the appends it logged.
        EngineKind::Raft => Box::new(RaftEngine::new(
            &config,
            key,
            head,
            restored.state.as_deref(),
            restored.messages.iter().filter_map(raft::decode).collect(),
            RaftTimeouts::default().scaled(time),
        )),
        // Mining starts when the node says so (`Event::Mining`).
        EngineKind::Pow(params) => {
            Box::new(PowEngine::new(params, key.as_ref(), head, &restored, false, time))
        }
    }
}
