//! What is particular to simulated Raft networks: their scenarios' membership changes and
//! leader crashes, the engine a node runs, and Raft's own safety properties, checked on what
//! the nodes do and durably log:
//!
//! - **election safety**: at most one node leads in any term;
//! - **log matching**: no two nodes ever hold different blocks for one height in one term (in
//!   their logs: the appends they logged, and the committed blocks with the term of their
//!   certificate); since a block's hash covers its parent's, two logs that hold the same
//!   entry also hold the same blocks below it;
//! - **leader completeness**: a node that becomes leader of a term holds every block
//!   committed (written by any node) before, in its chain or as its pending entry.
//!
//! That no two different blocks are committed at one height is [`super::Safety::Final`],
//! checked on every write; liveness once the network is whole again is the world's check.

use super::{
    Kind,
    scenario::{LeaderCrash, Scenario},
    world::{Item, World},
};
use consensus::{EngineMessage, RaftEngine, RaftTimeouts, Role, SignatureCheck, raft};
use ledger::ValidatorChange;
use primitives::{BlockHash, ConsensusProof, Header, Height, SecretKey, Validator};
use rand::{RngExt, rngs::ChaCha8Rng};
use std::collections::BTreeMap;

/// Draws a Raft scenario's change of the validator set, taking over from a height of 3 to 6:
/// none, one validator's power up by one, one validator removed, or one added (the genesis set
/// then leaves out the last node, which follows until it is added). Changes `validators`,
/// the genesis set, for an addition.
///
/// Only changes after which every majority of the old set and every majority of the new one
/// share a validator are drawn (others are none): the condition under which a change keeps one
/// leader per term (`docs/design/consensus.md`, "Membership"). With weighted votes one removal
/// can break it: taking a validator of power 6 out of {1, 6, 6} leaves the other one of power
/// 6 a majority alone, with no voter in common with the majority of the first two.
pub(crate) fn draw_membership(
    rng: &mut ChaCha8Rng,
    validators: &mut Vec<Validator>,
) -> Option<ValidatorChange> {
    let from = Height(rng.random_range(3..=6));
    let mut before = validators.clone();
    let mut changed = validators.clone();
    match rng.random_range(0..4u8) {
        0 => return None,
        1 => {
            let lucky = rng.random_range(0..changed.len());
            changed[lucky].power += 1;
        }
        2 => {
            changed.remove(rng.random_range(0..changed.len()));
        }
        _ => {
            before.pop();
        }
    }
    if !majorities_overlap(&before, &changed) {
        return None;
    }
    *validators = before;
    Some(ValidatorChange { from, validators: changed })
}

/// Whether every set of `old` holding more than half of its power and every set of `new`
/// holding more than half of its power have a validator in common: no split of the validators
/// of both into two groups gives one group a majority of `old` and the other one of `new`.
fn majorities_overlap(old: &[Validator], new: &[Validator]) -> bool {
    let mut keys: Vec<_> = old.iter().chain(new).map(|validator| validator.key).collect();
    keys.sort();
    keys.dedup();
    let power = |set: &[Validator], key| {
        u128::from(set.iter().find(|validator| validator.key == key).map_or(0, |v| v.power))
    };
    let total = |set: &[Validator]| set.iter().map(|validator| u128::from(validator.power)).sum();
    let (old_total, new_total): (u128, u128) = (total(old), total(new));
    (0..1u32 << keys.len()).all(|split| {
        let (mut first, mut second) = (0u128, 0u128);
        for (index, key) in keys.iter().enumerate() {
            if split & (1 << index) != 0 {
                first += power(old, *key);
            } else {
                second += power(new, *key);
            }
        }
        !(2 * first > old_total && 2 * second > new_total)
    })
}

/// Draws up to two crashes of the leader of the moment during the fault phase.
pub(crate) fn draw_leader_crashes(rng: &mut ChaCha8Rng, fault_end: u64) -> Vec<LeaderCrash> {
    let mut crashes = Vec::new();
    for _ in 0..rng.random_range(0..=2) {
        let at = rng.random_range(0..fault_end);
        let down_for = rng.random_range(0..=fault_end - at);
        crashes.push(LeaderCrash { at, down_for });
    }
    crashes
}

/// The engine of node `key` resuming after `head`, with its kept state and logged messages.
pub(super) fn engine(
    scenario: &Scenario,
    key: SecretKey,
    head: &Header,
    state: Option<&[u8]>,
    logged: &[EngineMessage],
    signatures: SignatureCheck,
) -> RaftEngine {
    let next = Height(head.height.0 + 1);
    let restored = logged.iter().filter_map(raft::decode).collect();
    RaftEngine::new(
        &scenario.config_at(next),
        Some(key),
        head,
        state,
        restored,
        RaftTimeouts::default(),
    )
    .with_signature_check(signatures)
}

/// What the Raft checks remember across nodes.
#[derive(Debug, Default)]
pub(crate) struct RaftChecks {
    /// The leader of each term seen.
    leaders: BTreeMap<u64, usize>,
    /// The block each (term, height) stands for in any node's log, and the first node seen
    /// holding it.
    entries: BTreeMap<(u64, u64), (BlockHash, usize)>,
    /// The terms in which each block was appended.
    appended: BTreeMap<BlockHash, u64>,
    /// Whether each node led when last looked at.
    leading: BTreeMap<usize, bool>,
}

impl World {
    /// Node `node` was fed an input: is it leader, and may it be?
    pub(super) fn raft_observe(&mut self, node: usize) {
        let Some(mut checks) = self.raft.take() else { return };
        if let Some(running) = &self.nodes[node].running {
            let status = running.core.engine_status();
            let leads = status.role == Some(Role::Leader);
            let led = checks.leading.insert(node, leads).unwrap_or(false);
            if led && !leads {
                self.coverage.hit(Kind::SteppedDown);
            }
            if let (true, Some(term)) = (leads, status.term) {
                match checks.leaders.get(&term) {
                    Some(other) if *other != node => self.fail(format!(
                        "election safety: nodes {other} and {node} both lead term {term}"
                    )),
                    Some(_) => {}
                    None => {
                        checks.leaders.insert(term, node);
                        self.log(|| format!("node {node} leads term {term}"));
                        self.leader_completeness(node, term);
                    }
                }
            }
        }
        self.raft = Some(checks);
    }

    /// Leader completeness: node `node`, leader of `term` from now, holds every block written.
    fn leader_completeness(&mut self, node: usize, term: u64) {
        let chain_height = self.nodes[node].height();
        let pending = self.pending_of(node);
        let missing: Vec<u64> = self
            .checks
            .written()
            .iter()
            .filter(|(height, (hash, _))| {
                let in_chain = **height <= chain_height
                    && self.nodes[node].disk.chain[**height as usize].hash() == *hash;
                let as_pending = **height == chain_height + 1 && pending == Some(*hash);
                !in_chain && !as_pending
            })
            .map(|(height, _)| *height)
            .collect();
        if !missing.is_empty() {
            self.fail(format!(
                "leader completeness: node {node} leads term {term} without the committed blocks at heights {missing:?} (its chain ends at {chain_height}, pending {pending:?})"
            ));
        }
    }

    /// The block of the pending entry in node `node`'s log: the logged append of the highest
    /// term for the height after its chain.
    fn pending_of(&self, node: usize) -> Option<BlockHash> {
        let next = Height(self.nodes[node].height() + 1);
        self.nodes[node]
            .disk
            .wal
            .iter()
            .filter(|(height, ..)| *height == next)
            .filter_map(|(_, message, _)| match raft::decode(message) {
                Some(raft::Message::Append(signed)) => Some(signed.body),
                _ => None,
            })
            .max_by_key(|entry| entry.term)
            .map(|entry| entry.block)
    }

    /// Node `node` logged `message`: an append is an entry of its log.
    pub(super) fn raft_logged(&mut self, node: usize, message: &EngineMessage) {
        if let Some(raft::Message::Append(signed)) = raft::decode(message) {
            let entry = signed.body;
            let again = self.raft.as_mut().and_then(|checks| {
                let first = *checks.appended.entry(entry.block).or_insert(entry.term.0);
                (first < entry.term.0).then_some(first)
            });
            if again.is_some() {
                self.coverage.hit(Kind::Reappended);
            }
            self.raft_entry(node, entry.term.0, entry.height.0, entry.block);
        }
    }

    /// Node `node` wrote `block`: an entry of its log in the term of its certificate.
    pub(super) fn raft_wrote(&mut self, node: usize, header: &Header) {
        if let ConsensusProof::Raft(certificate) = &header.proof {
            self.raft_entry(node, certificate.term.0, header.height.0, header.hash());
        }
    }

    /// Log matching: one block per (term, height) across every node's log.
    fn raft_entry(&mut self, node: usize, term: u64, height: u64, block: BlockHash) {
        let Some(checks) = self.raft.as_mut() else { return };
        match checks.entries.get(&(term, height)) {
            Some((other, by)) if *other != block => {
                let by = *by;
                let other = *other;
                self.fail(format!(
                    "log matching: node {node} holds {block:?} at height {height} in term {term}, node {by} holds {other:?}"
                ));
            }
            Some(_) => {}
            None => {
                checks.entries.insert((term, height), (block, node));
            }
        }
    }

    /// A leader crash is due: the node that leads the highest term now goes down for a while.
    pub(super) fn crash_leader(&mut self, crash: LeaderCrash) {
        let leader = (0..self.s.len())
            .filter_map(|node| {
                let status = self.nodes[node].running.as_ref()?.core.engine_status();
                (status.role == Some(Role::Leader)).then_some((status.term.unwrap_or(0), node))
            })
            .max();
        let Some((term, node)) = leader else { return };
        self.log(|| format!("the leader of term {term}, node {node}, crashes"));
        self.coverage.hit(Kind::LeaderCrash);
        self.crash(node);
        let restart = (self.now + crash.down_for).min(self.s.fault_end);
        self.schedule(restart, Item::Restart(node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::SecretKey;

    fn set(powers: &[(u8, u64)]) -> Vec<Validator> {
        powers
            .iter()
            .map(|&(seed, power)| Validator {
                name: format!("v{seed}"),
                key: SecretKey::from_seed([seed; 32]).public_key(),
                power,
            })
            .collect()
    }

    #[test]
    fn majorities_overlap_unless_one_change_moves_a_majority() {
        let three = set(&[(0, 1), (1, 1), (2, 1)]);
        // With equal votes one addition or removal always keeps the majorities overlapping.
        assert!(majorities_overlap(&three, &set(&[(0, 1), (1, 1)])));
        assert!(majorities_overlap(&three, &set(&[(0, 1), (1, 1), (2, 1), (3, 1)])));
        assert!(majorities_overlap(&three, &set(&[(0, 2), (1, 1), (2, 1)])));
        // {0, 1} holds a majority of {1, 6, 6}; {2} alone one of what is left without 1.
        let weighted = set(&[(0, 1), (1, 6), (2, 6)]);
        assert!(!majorities_overlap(&weighted, &set(&[(0, 1), (2, 6)])));
        // Four removals at once from equal votes: {0, 1, 3} is a majority of the five, and {2}
        // one of what is left.
        let five = set(&[(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]);
        assert!(!majorities_overlap(&five, &set(&[(2, 1)])));
    }
}
