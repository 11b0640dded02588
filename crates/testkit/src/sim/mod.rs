//! Deterministic simulation of a network of Joule nodes, each running the node's real decision
//! code.
//!
//! One thread, virtual time, no sockets, no clock: a run is a pure function of its seed. The
//! seed draws a [`Scenario`] (4 to 7 validators, sometimes of unequal power, sometimes with a
//! change of the validator set from a later height; clock skew, now and then a clock seconds
//! ahead; message delays, so messages overtake one another; losses; writes that take a while;
//! partitions; crashes and restarts from disk; byzantine validators that equivocate,
//! double-vote, send badly signed or forged messages, propose invalid blocks with valid
//! signatures, or replay old messages), and [`run`] plays it out while checking, on what each
//! node durably writes:
//!
//! - **safety**, by the engine's kind ([`Safety`]): for final engines, agreement: no two nodes
//!   ever write different blocks at one height;
//! - **validity**: every block written follows its parent (height, parent, time, no
//!   transactions, state root), was proposed by a validator of its height, and carries a proof
//!   by its height's validators;
//! - **liveness**: once the last fault is over (network whole and lossless, every crashed
//!   honest node restarted), every honest node writes [`LIVENESS_HEIGHTS`] more heights within
//!   [`LIVENESS_BOUND_MS`] of virtual time;
//! - for proof of work ([`run_pow`], `sim::pow`): validity with the timestamp median and the
//!   difficulty rule, no reorg deeper than the maximum, every node's state a replay of its
//!   chain after every switch, convergence on one head once the network is quiet, no lost
//!   transaction of an orphaned block, and the block interval back at the target after the
//!   hash power jumps tenfold up and down;
//! - **determinism**: the trace digest (every input fed to a node's core and every effect it
//!   returned) is a function of the seed; [`run`] twice on one seed must give the same digest.
//!
//! # What is real and what stands in
//!
//! Real, as shipped: every node's decisions are `node::core::Core` (proposals held during a
//! write, for a later height or for the clock; decisions whose block is missing; catching up,
//! with batches cut at a validator change), the engine is `consensus::TendermintEngine`, and
//! what peers send passes the engine's relay check (`consensus::rules`) before it reaches the
//! core. The wire messages are `node::wire::Wire`.
//!
//! Stand-ins: the application (blocks without transactions whose state root is a function of
//! the parent; a validator change that the block two heights before it carries by the
//! scenario's rule rather than by a transaction), the node's shell (a disk of blocks, logged
//! messages and engine state that survives crashes; writes that complete after a seeded delay
//! and are lost in a crash), and the network (delays, losses, partitions, connections, gossip
//! de-duplicated by id as `net` does). What a real network does below the node is a property
//! of the simulated network: statuses every second, and re-sending what a node gossiped while
//! it makes no progress (TCP's retransmissions after losses). One cost is shared: each
//! distinct signature is verified once per run, and each relay verdict computed once per
//! message and schedule.
//!
//! # The liveness bound
//!
//! The fault phase lasts at most [`MAX_FAULT_PHASE_MS`] (10 s); blocks are due 2 s after
//! their parent. With the default timeouts a round `r` that sees no proposal lasts about
//! `1000 + 500 r` ms, so when the faults end the engines are at most around round 5. Then the
//! nodes reconnect (a core repeats its status and its own messages for the next height to a
//! peer that connects, and to a peer that catches up with it), statuses go round every second,
//! a node two blocks behind asks for blocks at once and one block behind after the core's 3 s
//! request timeout, and the "f+1" rule brings every engine to the highest round: about 4 s. A
//! round `r` lasts at most `propose(r) + 2 vote(r)` plus message delays: ≤ 9.5 s at round 5,
//! ≤ 11 s at round 6. A round whose proposer is byzantine or locked elsewhere may fail, so
//! allowing two rounds per height, the first height after the faults takes ≤ 20.5 s and each
//! later one (2 s wait, then rounds 0 and 1: ≤ 2 + 2 + 3.5 s) ≤ 7.5 s: 4 + 20.5 + 15 ≈ 40 s
//! for three heights. A clock up to [`MAX_FAR_AHEAD_MS`] ahead adds up to 3.5 s to a height
//! it proposes (its block is held for the other clocks, and the next block is due 2 s after
//! its timestamp). The bound, [`LIVENESS_BOUND_MS`] = 60 s, leaves room for one more failed
//! round; the test prints the slowest recovery it saw (22 s over 10,000 seeds).

mod app;
mod byzantine;
mod checks;
mod node;
pub mod pow;
mod raft;
mod scenario;
mod trace;
mod world;

pub use checks::Safety;
pub use scenario::{
    Behaviour, Crash, EPOCH_MS, GENESIS_TIME_MS, LIVENESS_BOUND_MS, LIVENESS_HEIGHTS, LeaderCrash,
    MAX_FAR_AHEAD_MS, MAX_FAULT_PHASE_MS, MAX_SKEW_MS, MAX_WRITE_MS, Partition, Scenario,
    state_root_after,
};
pub use world::{Failure, Outcome, replay_variable, run, run_pow, run_raft};

use primitives::EngineKind;

/// The kinds of fault and situation a run can exercise, in the order of [`Coverage::counts`].
/// The Raft ones happen in Raft networks only, the byzantine ones in BFT networks only, the
/// last eight in proof-of-work networks only, which share the network faults, crashes, clock
/// skew, sync and blocks held for the clock ([`applies`]).
pub const KINDS: [&str; 33] = [
    "delayed/reordered messages",
    "dropped messages",
    "partitions",
    "crashes",
    "restarts with a non-empty WAL",
    "clock skew",
    "unequal voting power",
    "equivocating proposals",
    "double votes",
    "bad signatures",
    "forged votes",
    "poisoned blocks",
    "replayed old messages",
    "byzantine node down for good",
    "blocks synced from peers",
    "decided without the block",
    "held for a later height",
    "held during a write",
    "held for the clock",
    "sync cut at a validator change",
    "validator set changes",
    "leader crashed",
    "entry appended again in a later term",
    "leader stepped down",
    "membership changes",
    "forks (two blocks at one height)",
    "reorgs",
    "reorgs of 3 blocks or more",
    "blocks in the orphan pool",
    "transactions of orphaned blocks",
    "a miner with 40-60 % of the hash power",
    "withheld blocks published late",
    "hash power 10x up and 10x down",
];

/// Whether kind `index` of [`KINDS`] can happen in a network of engine `engine` (byzantine
/// behaviour in BFT networks, Raft's own situations in Raft networks, the rest in both).
pub fn applies(index: usize, engine: EngineKind) -> bool {
    let byzantine = (Kind::Equivocation as usize..=Kind::DownForGood as usize).contains(&index);
    let pow = index >= Kind::Fork as usize;
    let raft = index >= Kind::LeaderCrash as usize && !pow;
    let shared_with_pow = [
        Kind::Delayed,
        Kind::Dropped,
        Kind::Partition,
        Kind::Crash,
        Kind::ClockSkew,
        Kind::Synced,
        Kind::HeldForClock,
    ];
    match engine {
        EngineKind::Raft => !byzantine && !pow,
        EngineKind::Pow(_) => pow || shared_with_pow.iter().any(|kind| *kind as usize == index),
        _ => !raft && !pow,
    }
}

/// How often each kind of [`KINDS`] happened: in one run, the number of occurrences; summed
/// over runs with [`Coverage::add_run`], the number of runs in which it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// One count per kind, in the order of [`KINDS`].
    pub counts: [u64; KINDS.len()],
}

impl Default for Coverage {
    fn default() -> Coverage {
        Coverage { counts: [0; KINDS.len()] }
    }
}

impl Coverage {
    /// Counts one more occurrence of kind `kind` (an index into [`KINDS`]).
    pub(crate) fn hit(&mut self, kind: Kind) {
        self.add(kind, 1);
    }

    /// Counts `count` more occurrences of kind `kind`.
    pub(crate) fn add(&mut self, kind: Kind, count: u64) {
        self.counts[kind as usize] += count;
    }

    /// Adds one for every kind that `run` exercised at least once.
    pub fn add_run(&mut self, run: &Coverage) {
        for (total, count) in self.counts.iter_mut().zip(run.counts) {
            *total += u64::from(count > 0);
        }
    }

    /// The kinds that can happen with `engine` and were never exercised.
    pub fn missing(&self, engine: EngineKind) -> Vec<&'static str> {
        KINDS
            .iter()
            .zip(self.counts)
            .enumerate()
            .filter(|(index, (_, count))| *count == 0 && applies(*index, engine))
            .map(|(_, (kind, _))| *kind)
            .collect()
    }

    /// One line per kind that can happen with `engine`, with its count.
    pub fn render(&self, engine: EngineKind) -> String {
        KINDS
            .iter()
            .zip(self.counts)
            .enumerate()
            .filter(|(index, _)| applies(*index, engine))
            .map(|(_, (kind, count))| format!("  {kind:<42} {count:>7}\n"))
            .collect()
    }
}

/// Indexes into [`KINDS`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Delayed,
    Dropped,
    Partition,
    Crash,
    RestoredWal,
    ClockSkew,
    UnequalPower,
    Equivocation,
    DoubleVote,
    BadSignature,
    ForgedVote,
    Poison,
    Replay,
    DownForGood,
    Synced,
    DecidedWithoutBlock,
    HeldForLaterHeight,
    HeldDuringWrite,
    HeldForClock,
    SyncCut,
    ValidatorChange,
    LeaderCrash,
    Reappended,
    SteppedDown,
    MembershipChange,
    Fork,
    Reorg,
    DeepReorg,
    OrphanPool,
    OrphanedTxs,
    DominantMiner,
    Withheld,
    HashJump,
}
