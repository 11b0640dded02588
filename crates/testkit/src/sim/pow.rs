//! What is particular to simulated proof-of-work networks: their scenarios' hash power, withheld
//! blocks, hash-power jumps and transactions; mining in virtual time; the disk's switches to
//! another branch; and the properties of a chain with forks, checked on what the nodes write
//! and, once the network is healed and quiet, on where they end up:
//!
//! - **validity**: every block written follows its parent (height, parent, a timestamp later
//!   than the median of the 11 blocks before it, the state root), carries the target the
//!   difficulty rule sets after its parent and a SHA-256 proof that meets it;
//! - **bounded reorgs**: no switch ever undoes more than [`MAX_REORG_DEPTH`] blocks on any node;
//! - **state**: after every switch (and at the end, on every node) a node's application state is
//!   what a fresh replay of its durable chain gives (the stand-in's "conservation": the same
//!   blocks, the same transactions at the same heights);
//! - **convergence**: once the faults are over (and the jumps measured) every miner but the
//!   most powerful stops, which mines on with a tenth of the network's hash power (the network
//!   is quiet: no new forks start, and its next block breaks any tie of equal work, which
//!   first-seen fork choice never breaks by itself); every node must then write the same head
//!   within [`CONVERGENCE_BOUND_MS`];
//! - **no lost transactions**: every transaction of a block some node undid is then in the
//!   winning chain or waiting in a node's pool;
//! - **difficulty**: in the seeds where the hash power jumps tenfold up (when the faults end)
//!   and later tenfold down, the mean interval between the blocks of the winning chain, over
//!   [`JUMP_WINDOW_BLOCKS`] blocks starting [`JUMP_SETTLE_BLOCKS`] after each jump, is within
//!   [`INTERVAL_TOLERANCE`] of the target block time.
//!
//! Mining is modelled, not done at the real difficulty: a node that is handed a template
//! ([`node::core::Effect::Mine`]) finds its block after a time drawn from the exponential
//! distribution with mean `work / rate` (the work the template's target asks for, the node's
//! hash rate in hashes per virtual millisecond), redrawn for every new template and whenever the
//! hash power changes (the exponential has no memory, so that is exact). The proof itself is
//! real: the nonce is searched with SHA-256 at the target, which the chain's small difficulty
//! ([`BASE_DIFFICULTY`] hashes a block at the start) keeps cheap. The engine, its ASERT target,
//! fork choice and reorg depth, and the core's orphan pool, switches and mempool returns are
//! the real ones.

use super::{
    Kind,
    scenario::{Scenario, state_root_after},
    trace::Input,
    world::{Item, World},
};
use consensus::{PowEngine, Restored, pow};
use node::wire::Wire;
use primitives::{
    Amount, Block, BlockHash, ConsensusProof, Hash, Header, Height, Nonce, Payload, PowParams,
    SecretKey, Signature, SignedTransaction, TimeScale, TimestampMs, Transaction,
};
use rand::{RngExt, rngs::ChaCha8Rng};
use std::{
    collections::{BTreeSet, HashMap},
    rc::Rc,
    sync::Arc,
};

/// The target block time of the simulated chains (virtual ms).
pub const TARGET_BLOCK_MS: u64 = 250;
/// Expected hashes of the first block: the network's hash power at the start makes one block
/// per [`TARGET_BLOCK_MS`] at it.
pub const BASE_DIFFICULTY: u64 = 16;
/// The difficulty's half-life in blocks (shorter than the default 16, so that the target
/// follows a jump within the blocks a seed can afford).
pub const HALF_LIFE_BLOCKS: u32 = 8;
/// The deepest switch allowed: well beyond what two sides of a 10 s partition mine apart at
/// 250 ms a block.
pub const MAX_REORG_DEPTH: u32 = 96;
/// Blocks after a hash-power jump before the block interval is measured.
pub const JUMP_SETTLE_BLOCKS: u64 = 64;
/// Blocks over which the mean interval is measured after each jump.
pub const JUMP_WINDOW_BLOCKS: u64 = 128;
/// How far the mean interval over the window may be from the target: ±20 %. A model of the
/// rule alone (ASERT with this half-life, exponential block times) gives a standard deviation
/// of about 3 % over this window, and at most 11 % in 3,000 draws.
pub const INTERVAL_TOLERANCE: f64 = 0.2;
/// Within how long after every miner stopped (faults over, jumps measured) all nodes must have
/// written one head.
pub const CONVERGENCE_BOUND_MS: u64 = 30_000;
/// Once quiet, the one miner left has this fraction of the network's hash power (1 / this):
/// its blocks come about ten target block times apart, time enough for every node to take
/// each before the next.
const QUIET_SHARE: f64 = 10.0;
/// How long the hash-power jumps may take at most, in virtual time.
const JUMPS_BOUND_MS: u64 = 600_000;

/// The chain parameters of the simulated proof-of-work networks.
pub fn params() -> PowParams {
    PowParams {
        target_block_ms: TARGET_BLOCK_MS,
        block_reward: Amount(0),
        initial_difficulty: BASE_DIFFICULTY,
        half_life_blocks: HALF_LIFE_BLOCKS,
        max_reorg_depth: MAX_REORG_DEPTH,
        settlement_confirmations: 6,
        ..PowParams::new(TimestampMs(super::scenario::GENESIS_TIME_MS))
    }
}

/// A miner that keeps the blocks it finds to itself for a while, mining on them, and then
/// publishes its private branch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Withholding {
    /// Which node.
    pub node: usize,
    /// Virtual time it starts holding back its announcements, status and blocks.
    pub start: u64,
    /// Virtual time it publishes everything it held back.
    pub end: u64,
}

/// What a proof-of-work scenario adds to the shared fault model.
#[derive(Clone, Debug, PartialEq)]
pub struct PowPlan {
    /// Each node's hash rate, in hashes per virtual ms; together [`BASE_DIFFICULTY`] per
    /// [`TARGET_BLOCK_MS`].
    pub rates: Vec<f64>,
    /// A node with 40 to 60 % of the hash power, if any.
    pub dominant: Option<usize>,
    /// A selfish miner, if any.
    pub withholding: Option<Withholding>,
    /// Whether the hash power jumps tenfold up when the faults end and tenfold down later.
    pub jumps: bool,
    /// Transactions: when each is submitted, and to which node; the index is its nonce.
    pub txs: Vec<(u64, usize)>,
}

/// Draws the proof-of-work part of a scenario of `n` nodes whose faults end at `fault_end`.
pub(crate) fn draw_plan(rng: &mut ChaCha8Rng, n: usize, fault_end: u64) -> PowPlan {
    let mut weights: Vec<f64> = (0..n).map(|_| rng.random_range(1..=10u32).into()).collect();
    let dominant = rng.random_bool(0.3).then(|| rng.random_range(0..n));
    if let Some(node) = dominant {
        let share = rng.random_range(0.4..0.6);
        let others: f64 = (0..n).filter(|&i| i != node).map(|i| weights[i]).sum();
        weights[node] = others * share / (1.0 - share);
    }
    let total: f64 = weights.iter().sum();
    let network = BASE_DIFFICULTY as f64 / TARGET_BLOCK_MS as f64;
    let rates = weights.iter().map(|weight| network * weight / total).collect();
    let withholding = rng.random_bool(0.3).then(|| {
        let node = match dominant {
            Some(node) if rng.random_bool(0.5) => node,
            _ => rng.random_range(0..n),
        };
        let start = rng.random_range(0..fault_end / 2);
        let end = rng.random_range(start + 1_000..=fault_end.max(start + 1_000));
        Withholding { node, start, end }
    });
    let jumps = rng.random_bool(0.1);
    let txs = (0..rng.random_range(5..=30))
        .map(|_| (rng.random_range(0..fault_end), rng.random_range(0..n)))
        .collect();
    PowPlan { rates, dominant, withholding, jumps, txs }
}

/// Transaction `nonce` of a scenario: a transfer told apart by its nonce, with a signature the
/// stand-in application does not check.
pub(crate) fn transaction(scenario: &Scenario, nonce: u64) -> SignedTransaction {
    SignedTransaction {
        tx: Transaction {
            chain_id: scenario.config.chain_id.clone(),
            sender: scenario.config.operator,
            nonce: Nonce(nonce),
            fee: Amount(0),
            payload: Payload::Transfer { to: scenario.config.issuer, amount: Amount(1) },
        },
        signature: Signature([0; 64]),
    }
}

/// The engine of node `key` resuming on `chain` (its disk, from genesis to the head).
pub(super) fn engine(key: &SecretKey, chain: &[Arc<Block>]) -> PowEngine {
    let headers = recent_headers(chain);
    let head = headers.last().cloned().expect("a chain has its genesis");
    let restored = Restored { chain: headers, ..Restored::default() };
    PowEngine::new(params(), Some(key), &head, &restored, false, &TimeScale::REAL)
}

/// The newest headers of `chain` a restarted node loads (as the node's manager does): as many
/// as the reorg depth allows to undo, the one below, and the ten below that for the median of
/// timestamps.
pub(super) fn recent_headers(chain: &[Arc<Block>]) -> Vec<Header> {
    let keep = MAX_REORG_DEPTH as usize + pow::MEDIAN_TIME_BLOCKS;
    chain[chain.len().saturating_sub(keep)..].iter().map(|block| block.header.clone()).collect()
}

/// Where a run with hash-power jumps stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Jump {
    /// Not yet (or no jumps in this scenario).
    Before,
    /// Tenfold up since the best height was `from`.
    Up { from: u64 },
    /// Back down since the best height was `from`.
    Down { from: u64 },
    /// Both measured.
    Done,
}

/// What the proof-of-work checks and the mining model keep across nodes.
pub(crate) struct PowWorld {
    plan: PowPlan,
    /// The hash power's factor now (1, or 10 after the jump up).
    factor: f64,
    /// Each node's mining job: its template and the token of its find.
    jobs: Vec<Option<(Header, u64)>>,
    next_token: u64,
    jump: Jump,
    /// The best heights at which the jumps started, for the measurement.
    jumped_at: Vec<u64>,
    /// A selfish miner's messages held back: to whom, what, with which gossip id.
    withheld: Vec<(usize, Rc<Wire>, Option<Hash>)>,
    withholding: bool,
    /// The first block written at each height (forks: another one at the same height).
    first_at: HashMap<u64, BlockHash>,
    /// When each block was found (virtual ms).
    found_at: HashMap<BlockHash, u64>,
    /// The transactions of blocks some node undid, by nonce.
    orphaned: BTreeSet<u64>,
    /// Since when every miner but one has stopped (the network is quiet: no new forks), and
    /// which one mines on, with a tenth of the network's hash power.
    quiet_since: Option<u64>,
    sole: Option<usize>,
    /// The mean interval's relative deviation from the target after each jump.
    pub(crate) deviations: Vec<f64>,
}

impl PowWorld {
    pub(crate) fn new(scenario: &Scenario) -> Option<PowWorld> {
        let plan = scenario.pow.clone()?;
        Some(PowWorld {
            factor: 1.0,
            jobs: vec![None; scenario.len()],
            next_token: 0,
            jump: Jump::Before,
            jumped_at: Vec::new(),
            withheld: Vec::new(),
            withholding: false,
            first_at: HashMap::new(),
            found_at: HashMap::new(),
            orphaned: BTreeSet::new(),
            quiet_since: None,
            sole: None,
            deviations: Vec::new(),
            plan,
        })
    }

    /// Whether node `node` mines (all until the faults and the jumps are over, then one).
    pub(crate) fn mining(&self, node: usize) -> bool {
        self.sole.is_none_or(|sole| sole == node)
    }
}

/// A proof-of-work event due at a virtual time.
#[derive(Debug)]
pub(crate) enum PowItem {
    /// Node `node` finds the block of its job `token`.
    Found { node: usize, incarnation: u64, token: u64 },
    /// Transaction `nonce` is submitted to its node.
    Submit(u64),
    /// The selfish miner starts holding back.
    Withhold,
    /// The selfish miner publishes what it held back.
    Publish,
}

impl World {
    /// Schedules the proof-of-work scenario's own events.
    pub(super) fn pow_schedule(&mut self) {
        let Some(plan) = self.pow.as_ref().map(|pow| pow.plan.clone()) else { return };
        if plan.dominant.is_some() {
            self.coverage.hit(Kind::DominantMiner);
        }
        for (nonce, (at, _)) in plan.txs.iter().enumerate() {
            self.schedule(*at, Item::Pow(PowItem::Submit(nonce as u64)));
        }
        if let Some(withholding) = plan.withholding {
            self.schedule(withholding.start, Item::Pow(PowItem::Withhold));
            self.schedule(withholding.end, Item::Pow(PowItem::Publish));
        }
    }

    /// How much longer than a final engine's run a proof-of-work run may take.
    pub(super) fn pow_extra_ms(&self) -> u64 {
        match &self.pow {
            Some(pow) if pow.plan.jumps => JUMPS_BOUND_MS + CONVERGENCE_BOUND_MS,
            Some(_) => CONVERGENCE_BOUND_MS,
            None => 0,
        }
    }

    pub(super) fn pow_handle(&mut self, item: PowItem) {
        match item {
            PowItem::Found { node, incarnation, token } => self.found(node, incarnation, token),
            PowItem::Submit(nonce) => {
                let Some(pow) = &self.pow else { return };
                let node = pow.plan.txs[nonce as usize].1;
                let tx = transaction(&self.s, nonce);
                self.feed(node, Input::Txs(vec![tx]));
            }
            PowItem::Withhold => {
                if let Some(pow) = self.pow.as_mut() {
                    pow.withholding = true;
                }
                self.log(|| "the selfish miner starts withholding".into());
            }
            PowItem::Publish => {
                let Some(pow) = self.pow.as_mut() else { return };
                pow.withholding = false;
                let held = std::mem::take(&mut pow.withheld);
                let from = pow.plan.withholding.map_or(0, |withholding| withholding.node);
                let blocks = held
                    .iter()
                    .filter(|(_, wire, _)| matches!(**wire, Wire::Consensus { .. }))
                    .count();
                if blocks > 0 {
                    self.coverage.hit(Kind::Withheld);
                }
                self.log(|| format!("the selfish miner publishes {} messages", held.len()));
                for (to, wire, gossip) in held {
                    if self.nodes[from].is_connected(to) {
                        self.send(from, to, wire, gossip);
                    }
                }
            }
        }
    }

    /// Whether `wire` from `from` is held back by a selfish miner (and keeps it to publish).
    pub(super) fn pow_withholds(
        &mut self,
        from: usize,
        to: usize,
        wire: &Rc<Wire>,
        gossip: Option<Hash>,
    ) -> bool {
        let Some(pow) = self.pow.as_mut() else { return false };
        let selfish = pow.plan.withholding.is_some_and(|withholding| withholding.node == from);
        let revealing =
            matches!(**wire, Wire::Consensus { .. } | Wire::Status { .. } | Wire::Blocks(_));
        if pow.withholding && selfish && revealing {
            pow.withheld.push((to, wire.clone(), gossip));
            return true;
        }
        false
    }

    /// The core handed node `node` a template to mine.
    pub(super) fn pow_mine(&mut self, node: usize, header: Header) {
        let Some(pow) = self.pow.as_mut() else { return };
        pow.next_token += 1;
        let token = pow.next_token;
        pow.jobs[node] = Some((header.clone(), token));
        self.schedule_find(node, &header, token);
    }

    /// The core stopped node `node`'s miner.
    pub(super) fn pow_stop(&mut self, node: usize) {
        if let Some(pow) = self.pow.as_mut() {
            pow.jobs[node] = None;
        }
    }

    /// Draws when node `node` finds the block of job `token` on `header`'s target.
    fn schedule_find(&mut self, node: usize, header: &Header, token: u64) {
        let Some(pow) = self.pow.as_ref() else { return };
        let ConsensusProof::Pow { target, .. } = header.proof else { return };
        let rate = match pow.sole {
            Some(_) => pow.plan.rates.iter().sum::<f64>() * pow.factor / QUIET_SHARE,
            None => pow.plan.rates[node] * pow.factor,
        };
        let mean = target.work() as f64 / rate.max(f64::MIN_POSITIVE);
        // Exponential: the next find of a memoryless search at this rate.
        let uniform: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let delay = (-uniform.ln() * mean).clamp(1.0, 1e12) as u64;
        let incarnation = self.nodes[node].incarnation();
        self.schedule(self.now + delay, Item::Pow(PowItem::Found { node, incarnation, token }));
    }

    /// Node `node` finds its job's block, if the job is still the one: the real proof, searched
    /// at the template's target from a seeded nonce.
    fn found(&mut self, node: usize, incarnation: u64, token: u64) {
        if self.nodes[node].incarnation() != incarnation {
            return;
        }
        let Some(pow) = self.pow.as_mut() else { return };
        let Some((mut header, _)) = pow.jobs[node].take_if(|(_, current)| *current == token) else {
            return;
        };
        let ConsensusProof::Pow { target, .. } = header.proof else { return };
        let hasher = primitives::pow::ProofHasher::new(&header.hash(), target);
        let mut nonce: u64 = self.rng.random();
        while !target.is_met_by(&hasher.hash(nonce)) {
            nonce = nonce.wrapping_add(1);
        }
        header.proof = ConsensusProof::Pow { target, nonce };
        pow.found_at.insert(header.hash(), self.now);
        self.log(|| format!("node {node} finds h{} {:?}", header.height.0, header.hash()));
        self.feed(node, Input::Mined(header));
    }

    /// The hash power changes by `factor`: every job is drawn again at the new rate.
    fn set_factor(&mut self, factor: f64) {
        let Some(pow) = self.pow.as_mut() else { return };
        pow.factor = factor;
        let jobs: Vec<(usize, Header)> = pow
            .jobs
            .iter()
            .enumerate()
            .filter_map(|(node, job)| job.as_ref().map(|(header, _)| (node, header.clone())))
            .collect();
        for (node, header) in jobs {
            self.pow_mine(node, header);
        }
    }

    /// The faults are over: the hash power jumps tenfold up, if the scenario says so.
    pub(super) fn pow_fault_end(&mut self) {
        let best = self.best_height();
        let Some(pow) = self.pow.as_mut() else { return };
        if pow.plan.jumps {
            pow.jump = Jump::Up { from: best };
            self.coverage.hit(Kind::HashJump);
            self.log(|| format!("the hash power jumps tenfold at height {best}"));
            self.set_factor(10.0);
        }
    }

    /// The highest height any node has written.
    fn best_height(&self) -> u64 {
        self.nodes.iter().map(|node| node.height()).max().unwrap_or(0)
    }

    /// Validity of `block` on node `node`'s durable chain `chain` (see the module
    /// documentation).
    pub(super) fn pow_validity(&self, chain: &[Arc<Block>], block: &Block) -> Result<(), String> {
        let Some(parent) = chain.last() else { return Err("no parent".into()) };
        let header = &block.header;
        let mut problems = super::checks::link_problems(parent, block);
        let recent: Vec<TimestampMs> = chain
            .iter()
            .rev()
            .take(pow::MEDIAN_TIME_BLOCKS)
            .map(|block| block.header.timestamp)
            .collect();
        if !pow::after_median(&recent, header.timestamp) {
            problems.push(format!(
                "its timestamp {} is not after the median {:?} of the 11 before it",
                header.timestamp.0,
                pow::median_time_past(&recent)
            ));
        }
        if header.state_root != state_root_after(&header.parent) {
            problems.push("wrong state root".to_owned());
        }
        if header.tx_root != Block::tx_root(&block.txs) {
            problems.push("wrong transaction root".to_owned());
        }
        let expected = pow::next_target(&params(), &parent.header);
        match header.proof {
            ConsensusProof::Pow { target, .. } if target != expected => {
                problems.push(format!("target {target}, the rule sets {expected}"))
            }
            ConsensusProof::Pow { .. } if !pow::meets_target(header) => {
                problems.push("its proof does not meet its target".to_owned())
            }
            ConsensusProof::Pow { .. } => {}
            _ => problems.push("it carries no proof of work".to_owned()),
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join(", ")) }
    }

    /// Node `node`'s switch above `to` is durable: its disk undoes the blocks above `to`; none
    /// may be deeper than the reorg depth.
    pub(super) fn pow_unwind(&mut self, node: usize, to: Height) {
        let height = self.nodes[node].height();
        let depth = height.saturating_sub(to.0);
        if depth > u64::from(MAX_REORG_DEPTH) {
            self.fail(format!(
                "reorg depth: node {node} undid {depth} blocks (from {height} to {}), more than {MAX_REORG_DEPTH}",
                to.0
            ));
            return;
        }
        let keep = usize::try_from(to.0 + 1).unwrap_or(usize::MAX);
        let chain = &mut self.nodes[node].disk.chain;
        let undone = chain.split_off(keep.min(chain.len()));
        if undone.is_empty() {
            return;
        }
        self.coverage.hit(Kind::Reorg);
        if depth >= 3 {
            self.coverage.hit(Kind::DeepReorg);
        }
        self.log(|| format!("node {node} undoes {depth} blocks above {}", to.0));
        if let Some(pow) = self.pow.as_mut() {
            for tx in undone.iter().flat_map(|block| &block.txs) {
                pow.orphaned.insert(tx.tx.nonce.0);
            }
        }
        if undone.iter().any(|block| !block.txs.is_empty()) {
            self.coverage.hit(Kind::OrphanedTxs);
        }
    }

    /// After node `node` wrote blocks (`switched`: replacing others): forks, after a switch the
    /// state against a replay of its chain, and the jumps' progress.
    pub(super) fn pow_after_write(&mut self, node: usize, blocks: &[Arc<Block>], switched: bool) {
        if self.pow.is_none() {
            return;
        }
        let mut forked = false;
        if let Some(pow) = self.pow.as_mut() {
            for block in blocks {
                let first = *pow.first_at.entry(block.header.height.0).or_insert(block.hash());
                forked |= first != block.hash();
            }
        }
        if forked {
            self.coverage.hit(Kind::Fork);
        }
        if switched {
            self.check_replay(node);
        }
        let best = self.best_height();
        let span = JUMP_SETTLE_BLOCKS + JUMP_WINDOW_BLOCKS + 8;
        let Some(pow) = self.pow.as_mut() else { return };
        match pow.jump {
            Jump::Up { from } if best >= from + span => {
                pow.jumped_at.push(from);
                pow.jump = Jump::Down { from: best };
                self.log(|| format!("the hash power falls tenfold at height {best}"));
                self.set_factor(1.0);
            }
            Jump::Down { from } if best >= from + span => {
                pow.jumped_at.push(from);
                pow.jump = Jump::Done;
            }
            _ => {}
        }
    }

    /// Node `node`'s application state must be what a fresh replay of its durable chain gives.
    fn check_replay(&mut self, node: usize) {
        let state = &self.nodes[node];
        if let Some(running) = &state.running
            && let Some(difference) = running.core.app().differs_from_replay(&state.disk.chain)
        {
            self.fail(format!(
                "state: node {node}'s state is not a replay of its chain: {difference}"
            ));
        }
    }

    /// Whether a proof-of-work run is over once the final engines' liveness holds: the jumps
    /// measured, every miner stopped, and all nodes on one head; then the checks at the end.
    /// Fails the run if the nodes do not converge in time.
    pub(super) fn pow_settled(&mut self) -> bool {
        let Some(pow) = self.pow.as_ref() else { return true };
        if matches!(pow.jump, Jump::Up { .. } | Jump::Down { .. }) {
            return false;
        }
        let Some(since) = pow.quiet_since else {
            // The most powerful miner goes on alone: the network's last tie is broken by its
            // next block, and no new fork starts.
            let rates = &pow.plan.rates;
            let sole = (0..rates.len()).max_by(|&a, &b| rates[a].total_cmp(&rates[b])).unwrap_or(0);
            if let Some(pow) = self.pow.as_mut() {
                pow.quiet_since = Some(self.now);
                pow.sole = Some(sole);
            }
            self.log(|| format!("every miner but node {sole} stops"));
            for node in (0..self.s.len()).filter(|&node| node != sole) {
                self.feed(node, Input::Mining(false));
            }
            return false;
        };
        let heads: BTreeSet<BlockHash> = self
            .nodes
            .iter()
            .filter_map(|node| node.running.as_ref().map(|running| running.core.head().hash()))
            .collect();
        let disk_heads: BTreeSet<BlockHash> =
            self.nodes.iter().filter_map(|node| node.disk.chain.last().map(|b| b.hash())).collect();
        let converged = heads.len() == 1
            && heads == disk_heads
            && self.nodes.iter().all(|node| {
                node.running.as_ref().is_some_and(|running| !running.core.is_writing())
            });
        if !converged {
            if self.now > since + CONVERGENCE_BOUND_MS {
                let described: Vec<String> = (0..self.s.len())
                    .map(|node| {
                        let head = self.nodes[node].disk.chain.last().map(|block| block.hash());
                        format!("node {node} {} head {head:?}", self.nodes[node].describe())
                    })
                    .collect();
                self.fail(format!(
                    "convergence: the nodes are on {} heads {CONVERGENCE_BOUND_MS} ms after all miners but one stopped: {}",
                    disk_heads.len(),
                    described.join("; ")
                ));
            }
            return false;
        }
        for node in 0..self.s.len() {
            self.check_replay(node);
        }
        self.pow_final_checks();
        !self.failed()
    }

    /// Once converged: the orphaned blocks' transactions, and the block intervals after the
    /// jumps.
    fn pow_final_checks(&mut self) {
        let Some(pow) = self.pow.as_ref() else { return };
        let chain = self.nodes[0].disk.chain.clone();
        let in_chain: BTreeSet<u64> =
            chain.iter().flat_map(|block| block.txs.iter().map(|tx| tx.tx.nonce.0)).collect();
        let lost: Vec<u64> = pow
            .orphaned
            .iter()
            .copied()
            .filter(|nonce| {
                !in_chain.contains(nonce)
                    && !self.nodes.iter().any(|node| {
                        node.running
                            .as_ref()
                            .is_some_and(|running| running.core.app().pending(*nonce))
                    })
            })
            .collect();
        if !lost.is_empty() {
            self.fail(format!(
                "transactions: {lost:?} of orphaned blocks are neither in the winning chain nor in any pool"
            ));
            return;
        }
        let mut deviations = Vec::new();
        let mut problems = Vec::new();
        for &from in &pow.jumped_at {
            let start = from + JUMP_SETTLE_BLOCKS;
            let end = start + JUMP_WINDOW_BLOCKS;
            let found = |height: u64| {
                chain
                    .get(height as usize)
                    .and_then(|block| pow.found_at.get(&block.hash()))
                    .copied()
            };
            let (Some(first), Some(last)) = (found(start), found(end)) else {
                problems.push(format!("the winning chain has no blocks {start} to {end}"));
                continue;
            };
            let mean = (last - first) as f64 / JUMP_WINDOW_BLOCKS as f64;
            let deviation = mean / TARGET_BLOCK_MS as f64 - 1.0;
            deviations.push(deviation);
            if deviation.abs() > INTERVAL_TOLERANCE {
                problems.push(format!(
                    "blocks {start} to {end} came {mean:.0} ms apart on average, the target is {TARGET_BLOCK_MS} ms (more than {:.0} % off)",
                    INTERVAL_TOLERANCE * 100.0
                ));
            }
        }
        if let Some(pow) = self.pow.as_mut() {
            pow.deviations = deviations;
        }
        if !problems.is_empty() {
            self.fail(format!("difficulty: {}", problems.join("; ")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_share_the_network_s_hash_power_and_end_their_faults_in_time() {
        let network = BASE_DIFFICULTY as f64 / TARGET_BLOCK_MS as f64;
        let (mut dominant, mut selfish, mut jumps) = (0, 0, 0);
        for seed in 0..2000 {
            let scenario = Scenario::pow_from_seed(seed);
            let plan = scenario.pow.clone().expect("a proof-of-work scenario has a plan");
            assert!(matches!(scenario.config.engine, primitives::EngineKind::Pow(_)));
            assert!((3..=5).contains(&scenario.len()), "seed {seed}");
            assert_eq!(plan.rates.len(), scenario.len());
            let total: f64 = plan.rates.iter().sum();
            assert!((total - network).abs() < 1e-12, "seed {seed}: {total}");
            if let Some(node) = plan.dominant {
                let share = plan.rates[node] / total;
                assert!((0.4..0.6).contains(&share), "seed {seed}: {share}");
                dominant += 1;
            }
            if let Some(withholding) = plan.withholding {
                assert!(withholding.start < withholding.end, "seed {seed}");
                assert!(withholding.end <= scenario.fault_end, "seed {seed}");
                selfish += 1;
            }
            jumps += u32::from(plan.jumps);
            assert!(
                plan.txs
                    .iter()
                    .all(|(at, node)| *at < scenario.fault_end && *node < scenario.len())
            );
            assert!(
                scenario.validator_change.is_none()
                    && scenario.byzantine.iter().all(Option::is_none)
            );
        }
        // About 30 %, 30 % and 10 % of the seeds.
        assert!((450..750).contains(&dominant), "{dominant}");
        assert!((450..750).contains(&selfish), "{selfish}");
        assert!((120..280).contains(&jumps), "{jumps}");
    }

    #[test]
    fn a_transaction_is_told_apart_by_its_nonce() {
        let scenario = Scenario::pow_from_seed(1);
        let (a, b) = (transaction(&scenario, 3), transaction(&scenario, 4));
        assert_eq!(a.tx.nonce, Nonce(3));
        assert_ne!(a.tx.hash(), b.tx.hash());
        assert_eq!(a, transaction(&scenario, 3));
    }
}
