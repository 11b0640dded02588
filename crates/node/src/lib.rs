//! Joule's node: the one place where the pure parts meet I/O.
//!
//! A [`Node`] owns a data directory: it opens the [`store::Store`], rebuilds the
//! [`ledger::State`] from it (or from the genesis), and runs one task, the node manager, which
//! owns the state, the [`Mempool`] and the consensus engine. Everything else reaches it through a
//! cloneable [`NodeHandle`]: submissions are decoded and signature-checked on the caller's side
//! (in parallel, on the blocking pool) and only then handed to the manager for admission; reads
//! go straight to the store's MVCC snapshots and never wait for the manager.
//!
//! The manager drives the engine: it feeds it time and mempool events, builds and executes the
//! blocks it asks for, and commits them to the store in one transaction each, on the blocking
//! pool, while it keeps admitting transactions. A block is announced (head subscription,
//! `chain_head`) only once it is durable. A storage failure stops the node: it never runs on
//! state it could not persist.
//!
//! The node does not speak JSON or HTTP (that is `rpc`), and does not parse files (the binary
//! hands it a [`primitives::Genesis`]).

mod app;
mod chain;
pub mod core;
mod manager;
mod mempool;
mod metrics;
mod miner;
mod p2p;
mod replay;
mod validators;
pub mod wire;

pub use chain::{Clock, genesis_block, now_ms};
pub use manager::{
    DATABASE_FILE, MiningConfig, MiningStatus, Node, NodeConfig, NodeError, NodeHandle, NodeStatus,
    NodeStopped, Reorg, SubmitError,
};
pub use mempool::{AdmitError, Mempool, MempoolLimits};
pub use metrics::{NodeMetrics, ValidatorLabel};
pub use miner::MinerStats;
pub use p2p::{P2pConfig, PeerId, max_frame_bytes};
pub use replay::{ReplayError, ReplayReport, replay_chain};
pub use validators::ValidatorSchedule;
