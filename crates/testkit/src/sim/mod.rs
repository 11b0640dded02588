//! Deterministic simulation of a network of [`consensus::TendermintEngine`]s.
//!
//! One thread, virtual time, no sockets, no clock: a run is a pure function of its seed. The
//! seed draws a [`Scenario`] (4 to 7 validators, sometimes of unequal power; clock skew; message
//! delays, so messages overtake one another; losses; partitions; crashes and restarts from
//! disk; byzantine validators that equivocate, double-vote, send badly signed or forged
//! messages, propose invalid blocks with valid signatures, or replay old messages), and
//! [`run`] plays it out while checking:
//!
//! - **agreement**: no two nodes ever commit different blocks at one height;
//! - **validity**: every committed block is valid on top of its parent and its proof verifies;
//! - **liveness**: once the last fault is over (network whole and lossless, every crashed
//!   honest node restarted), every honest node commits [`LIVENESS_HEIGHTS`] more heights within
//!   [`LIVENESS_BOUND_MS`] of virtual time;
//! - **determinism**: the trace digest (every event an engine is fed and every command it
//!   returns) is a function of the seed; [`run`] twice on one seed must give the same digest.
//!
//! Each simulated node is an engine plus a stand-in application: blocks are bare headers whose
//! state root is a function of the parent, a "disk" that survives crashes (committed headers,
//! the write-ahead log of the messages it signed, the blocks it proposed), a status exchange
//! every second by which a node that is behind downloads committed headers with their proofs,
//! and a re-broadcast of its own messages for the current height while it makes no progress
//! (the gossip layer's job in a real network; receivers drop exact duplicates).
//!
//! # The liveness bound
//!
//! The fault phase lasts at most [`MAX_FAULT_PHASE_MS`] (10 s); blocks are due 2 s after
//! their parent. With the default timeouts a round `r` that sees no proposal lasts about
//! `1000 + 500 r` ms, so when the faults end the engines are at most around round 5. Status
//! exchange, re-broadcast and relay (every second) then bring every node to the highest
//! height, and the "f+1" rule to the highest round, within about 2 s. A round `r` lasts at
//! most `propose(r) + 2 vote(r)` plus message delays: ≤ 9.5 s at round 5, ≤ 11 s at round 6.
//! A round whose proposer is byzantine or locked elsewhere may fail, so allowing two rounds per
//! height, the first height after the faults takes ≤ 20.5 s and each later one (2 s wait, then
//! rounds 0 and 1: ≤ 2 + 2 + 3.5 s) ≤ 7.5 s: 2 + 20.5 + 2 × 7.5 ≈ 38 s for three heights.
//! The bound, [`LIVENESS_BOUND_MS`] = 60 s, leaves room for a third failed round; the test
//! prints the slowest recovery it saw.

mod scenario;
mod world;

pub use scenario::{
    Behaviour, Crash, EPOCH_MS, GENESIS_TIME_MS, LIVENESS_BOUND_MS, LIVENESS_HEIGHTS, MAX_AHEAD_MS,
    MAX_FAULT_PHASE_MS, MAX_SKEW_MS, Partition, Scenario, state_root_after,
};
pub use world::{Failure, Outcome, run};

/// The kinds of fault and situation a run can exercise, in the order of [`Coverage::counts`].
pub const KINDS: [&str; 17] = [
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
    "headers synced from peers",
    "commits of blocks never seen",
    "proposals for a future height buffered",
];

/// How often each kind of [`KINDS`] happened: in one run, the number of occurrences; summed
/// over runs with [`Coverage::add_run`], the number of runs in which it happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// One count per kind, in the order of [`KINDS`].
    pub counts: [u64; KINDS.len()],
}

impl Coverage {
    /// Counts one more occurrence of kind `kind` (an index into [`KINDS`]).
    pub(crate) fn hit(&mut self, kind: Kind) {
        self.counts[kind as usize] += 1;
    }

    /// Adds one for every kind that `run` exercised at least once.
    pub fn add_run(&mut self, run: &Coverage) {
        for (total, count) in self.counts.iter_mut().zip(run.counts) {
            *total += u64::from(count > 0);
        }
    }

    /// The kinds never exercised.
    pub fn missing(&self) -> Vec<&'static str> {
        KINDS.iter().zip(self.counts).filter(|(_, count)| *count == 0).map(|(k, _)| *k).collect()
    }

    /// One line per kind with its count.
    pub fn render(&self) -> String {
        KINDS
            .iter()
            .zip(self.counts)
            .map(|(kind, count)| format!("  {kind:<42} {count:>7}\n"))
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
    FetchedCommit,
    FutureProposal,
}
