//! A Tendermint-style BFT engine (see `docs/design/consensus.md`).
//!
//! Implementation in progress: see the module documentation of the finished engine.

use crate::engine::{Command, Engine, Event, Message};
use primitives::{ChainConfig, Header, Height, SecretKey, TimestampMs, Validator};

/// How long the engine waits at each step before giving up on a round. Round `r` waits
/// `base + r * delta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for a proposal, beyond the moment the proposer is due to propose.
    pub propose_ms: u64,
    /// Added per round to the propose timeout.
    pub propose_delta_ms: u64,
    /// Waiting for more votes once votes from more than two thirds have arrived but disagree.
    pub vote_ms: u64,
    /// Added per round to the vote timeouts.
    pub vote_delta_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { propose_ms: 1000, propose_delta_ms: 500, vote_ms: 500, vote_delta_ms: 500 }
    }
}

/// The BFT engine of one validator (or of a full node, which only follows).
#[derive(Debug)]
pub struct TendermintEngine {}

impl TendermintEngine {
    /// An engine resuming after `head`. `key` is this node's key: it signs only if the key
    /// belongs to a validator. `restored` are the messages this validator signed for the height
    /// after `head` before a restart, read back from its write-ahead log.
    pub fn new(
        _config: &ChainConfig,
        _key: Option<SecretKey>,
        _head: &Header,
        _restored: Vec<Message>,
        _timeouts: Timeouts,
    ) -> TendermintEngine {
        TendermintEngine {}
    }
}

impl Engine for TendermintEngine {
    fn handle(&mut self, _now: TimestampMs, _event: Event) -> Vec<Command> {
        vec![]
    }
}

/// The validator that proposes at `height` and `round`: a deterministic rotation in which each
/// validator's share of turns is proportional to its voting power.
pub fn proposer(validators: &[Validator], height: Height, round: u32) -> Option<&Validator> {
    let _ = (height, round);
    validators.first()
}
