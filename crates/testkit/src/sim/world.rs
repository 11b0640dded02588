//! The simulated world: the nodes, the network between them and the faults, driven by one
//! event queue in virtual time, and the run's end (liveness, or the first broken rule).

use super::{
    Coverage, Kind,
    checks::{Checks, SignatureMemo},
    node::SimNode,
    pow::{PowItem, PowWorld},
    raft::RaftChecks,
    scenario::{LIVENESS_BOUND_MS, LIVENESS_HEIGHTS, LeaderCrash, Scenario},
    trace::Trace,
};
use consensus::{EngineMessage, Verdict};
use node::wire::Wire;
use primitives::{Hash, Height};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap},
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    rc::Rc,
    sync::Arc,
};

/// A run that handles more queue items than this is a livelock.
const MAX_ITEMS: u64 = 3_000_000;

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Digest of every input fed to a node's core and every effect it returned, in order.
    pub digest: Hash,
    /// What the run exercised.
    pub coverage: Coverage,
    /// The lowest height an honest node had written at the end.
    pub min_height: u64,
    /// Virtual time at the end, in ms.
    pub end_ms: u64,
    /// Virtual time from the end of the faults until every honest node had added the required
    /// heights (and, with proof of work, had converged on one head).
    pub recovery_ms: u64,
    /// With proof of work and hash-power jumps: the mean block interval's relative deviation
    /// from the target over the window after each jump.
    pub difficulty_deviations: Vec<f64>,
}

/// A seed that broke a rule.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Virtual time of the failure, in ms.
    pub at_ms: u64,
    /// What went wrong.
    pub message: String,
    /// The environment variable that replays this seed (it depends on the engine of the run).
    pub replay_with: &'static str,
}

/// The environment variable that replays a seed of a run with `engine`.
pub fn replay_variable(engine: &primitives::EngineKind) -> &'static str {
    match engine {
        primitives::EngineKind::Raft => "JOULE_RAFT_SIM_SEED",
        primitives::EngineKind::Pow(_) => "JOULE_POW_SIM_SEED",
        _ => "JOULE_SIM_SEED",
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "seed {} failed at virtual {} ms: {}\nreplay it with: {}={} cargo test -p testkit --test simulation -- --nocapture",
            self.seed, self.at_ms, self.message, self.replay_with, self.seed
        )
    }
}

/// Runs the BFT scenario of `seed` to its end. With `verbose`, prints every step to stderr.
pub fn run(seed: u64, verbose: bool) -> Result<Outcome, Failure> {
    run_scenario(Scenario::from_seed(seed), verbose)
}

/// Runs the Raft scenario of `seed` ([`Scenario::raft_from_seed`]) to its end, also checking
/// Raft's own safety properties (see `sim::raft`).
pub fn run_raft(seed: u64, verbose: bool) -> Result<Outcome, Failure> {
    run_scenario(Scenario::raft_from_seed(seed), verbose)
}

/// Runs the proof-of-work scenario of `seed` ([`Scenario::pow_from_seed`]) to its end, also
/// checking the properties of a chain with forks (see `sim::pow`).
pub fn run_pow(seed: u64, verbose: bool) -> Result<Outcome, Failure> {
    run_scenario(Scenario::pow_from_seed(seed), verbose)
}

fn run_scenario(scenario: Scenario, verbose: bool) -> Result<Outcome, Failure> {
    let seed = scenario.seed;
    let replay_with = replay_variable(&scenario.config.engine);
    match catch_unwind(AssertUnwindSafe(|| World::new(scenario, verbose).run())) {
        Ok(result) => result,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default();
            Err(Failure { seed, at_ms: 0, message: format!("panicked: {text}"), replay_with })
        }
    }
}

/// Something due at a virtual time.
#[derive(Debug)]
pub(super) enum Item {
    /// A message arrives; `gossip` is its gossip id (by which receivers drop copies they have
    /// seen), `None` for one sent to this node only.
    Deliver {
        to: usize,
        from: usize,
        wire: Rc<Wire>,
        gossip: Option<Hash>,
    },
    /// The wake-up a node's core asked for.
    Wake {
        node: usize,
        incarnation: u64,
        token: u64,
    },
    /// A node's write is durable.
    Written {
        node: usize,
        incarnation: u64,
    },
    /// A node's periodic duties (housekeeping; status, re-sending and replays every other time).
    Periodic {
        node: usize,
        incarnation: u64,
    },
    Crash(usize),
    /// Whichever node leads now crashes (Raft).
    CrashLeader(LeaderCrash),
    Restart(usize),
    /// A proof-of-work event (a find, a transaction, a selfish miner's moves).
    Pow(PowItem),
    PartitionStart(usize),
    PartitionEnd,
    FaultEnd,
}

struct Scheduled {
    at: u64,
    seq: u64,
    item: Item,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Scheduled) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Scheduled) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: the heap pops the earliest item, ties in scheduling order.
    fn cmp(&self, other: &Scheduled) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

pub(super) struct World {
    pub(super) s: Arc<Scenario>,
    pub(super) rng: ChaCha8Rng,
    /// Virtual time, in ms.
    pub(super) now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    pub(super) nodes: Vec<SimNode>,
    /// Each node's group while the network is split (all 0 when it is whole).
    pub(super) groups: Vec<u8>,
    pub(super) lossy: bool,
    /// The latency a node measures to each peer (what the core picks sync peers by).
    pub(super) latency: Vec<Vec<u64>>,
    pub(super) checks: Checks,
    pub(super) trace: Trace,
    pub(super) coverage: Coverage,
    failure: Option<String>,
    verbose: bool,
    /// Each node's height to reach after the faults.
    targets: Option<Vec<u64>>,
    pub(super) signing_checked: bool,
    /// Shared by every engine of this world and the validity check.
    pub(super) signatures: SignatureMemo,
    /// The relay check's verdicts, by message and the height after the receiver's head: the
    /// check is a function of the message and the receiver's validator schedule, and in the
    /// simulation the schedule is a function of the head's height.
    pub(super) verdicts: HashMap<(EngineMessage, Height), Verdict>,
    /// Raft's own checks, in Raft networks.
    pub(super) raft: Option<RaftChecks>,
    /// Mining and the checks of a chain with forks, in proof-of-work networks.
    pub(super) pow: Option<PowWorld>,
}

impl World {
    fn new(s: Scenario, verbose: bool) -> World {
        let rng = ChaCha8Rng::seed_from_u64(s.seed);
        let n = s.len();
        let s = Arc::new(s);
        let nodes = (0..n).map(|i| SimNode::new(&s, i)).collect();
        let mut coverage = Coverage::default();
        if s.clock_offsets.iter().any(|offset| *offset != 0) {
            coverage.hit(Kind::ClockSkew);
        }
        if s.config.validators.iter().any(|v| v.power != s.config.validators[0].power) {
            coverage.hit(Kind::UnequalPower);
        }
        let mut world = World {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            groups: vec![0; n],
            lossy: s.drop_ppm > 0,
            latency: Vec::new(),
            checks: Checks::new(&s, SignatureMemo::default()),
            trace: Trace::default(),
            coverage,
            failure: None,
            verbose,
            targets: None,
            signing_checked: false,
            signatures: SignatureMemo::default(),
            verdicts: HashMap::new(),
            raft: (s.config.engine == primitives::EngineKind::Raft).then(RaftChecks::default),
            pow: PowWorld::new(&s),
            s,
        };
        world.checks = Checks::new(&world.s, world.signatures.clone());
        let max_delay = world.s.max_delay_ms;
        world.latency = (0..n)
            .map(|_| (0..n).map(|_| world.rng.random_range(1..=max_delay)).collect())
            .collect();
        world
    }

    pub(super) fn log(&self, line: impl FnOnce() -> String) {
        if self.verbose {
            eprintln!("[{:>6} ms] {}", self.now, line());
        }
    }

    pub(super) fn verbose(&self) -> bool {
        self.verbose
    }

    pub(super) fn fail(&mut self, message: String) {
        if self.failure.is_none() {
            self.log(|| format!("FAILURE: {message}"));
            self.failure = Some(message);
        }
    }

    pub(super) fn failed(&self) -> bool {
        self.failure.is_some()
    }

    pub(super) fn schedule(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.queue.push(Scheduled { at, seq: self.seq, item });
    }

    fn run(mut self) -> Result<Outcome, Failure> {
        let n = self.s.len();
        if self.verbose {
            eprintln!("{:#?}", self.s);
        }
        for (index, partition) in self.s.partitions.clone().into_iter().enumerate() {
            self.schedule(partition.start, Item::PartitionStart(index));
            self.schedule(partition.end, Item::PartitionEnd);
        }
        for crash in self.s.crashes.clone() {
            self.schedule(crash.at, Item::Crash(crash.node));
            match crash.restart {
                Some(at) => self.schedule(at, Item::Restart(crash.node)),
                None => self.coverage.hit(Kind::DownForGood),
            }
        }
        for crash in self.s.leader_crashes.clone() {
            self.schedule(crash.at, Item::CrashLeader(crash));
        }
        self.schedule(self.s.fault_end, Item::FaultEnd);
        self.pow_schedule();
        for node in 0..n {
            self.start(node);
        }
        let deadline = self.s.fault_end + LIVENESS_BOUND_MS + self.pow_extra_ms();
        let mut items = 0u64;
        while let Some(Scheduled { at, item, .. }) = self.queue.pop() {
            if at > deadline {
                self.now = deadline;
                break;
            }
            self.now = at;
            self.handle(item);
            items += 1;
            if items > MAX_ITEMS {
                self.fail(format!("more than {MAX_ITEMS} queue items: a livelock"));
            }
            if let Some(message) = self.failure.take() {
                let replay_with = replay_variable(&self.s.config.engine);
                return Err(Failure { seed: self.s.seed, at_ms: self.now, message, replay_with });
            }
            if self.live() && self.pow_settled() {
                let min_height = (0..n)
                    .filter(|&node| self.s.honest(node))
                    .map(|node| self.nodes[node].height())
                    .min()
                    .unwrap_or(0);
                for node in 0..n {
                    self.count_core_paths(node);
                }
                return Ok(Outcome {
                    seed: self.s.seed,
                    digest: self.trace.digest(),
                    coverage: self.coverage,
                    min_height,
                    end_ms: self.now,
                    recovery_ms: self.now - self.s.fault_end,
                    difficulty_deviations: self
                        .pow
                        .as_ref()
                        .map(|pow| pow.deviations.clone())
                        .unwrap_or_default(),
                });
            }
        }
        let targets = self.targets.clone().unwrap_or_default();
        let lagging: Vec<String> = (0..n)
            .filter(|&node| self.s.honest(node) && self.nodes[node].height() < targets[node])
            .map(|node| {
                format!("node {node} {} (needed {})", self.nodes[node].describe(), targets[node])
            })
            .collect();
        Err(Failure {
            seed: self.s.seed,
            replay_with: replay_variable(&self.s.config.engine),
            at_ms: self.now,
            message: format!(
                "liveness: {LIVENESS_HEIGHTS} new heights not reached within {LIVENESS_BOUND_MS} ms after the faults ended at {} ms: {}",
                self.s.fault_end,
                lagging.join("; ")
            ),
        })
    }

    /// Whether every honest node has reached its target since the faults ended.
    fn live(&self) -> bool {
        self.targets.as_ref().is_some_and(|targets| {
            (0..self.s.len())
                .all(|node| !self.s.honest(node) || self.nodes[node].height() >= targets[node])
        })
    }

    fn handle(&mut self, item: Item) {
        match item {
            Item::Deliver { to, from, wire, gossip } => self.deliver(to, from, wire, gossip),
            Item::Wake { node, incarnation, token } => self.woken(node, incarnation, token),
            Item::Written { node, incarnation } => self.written(node, incarnation),
            Item::Periodic { node, incarnation } => self.periodic(node, incarnation),
            Item::Crash(node) => self.crash(node),
            Item::CrashLeader(crash) => self.crash_leader(crash),
            Item::Pow(item) => self.pow_handle(item),
            Item::Restart(node) => {
                if !self.nodes[node].is_up() {
                    self.start(node);
                }
            }
            Item::PartitionStart(index) => {
                self.coverage.hit(Kind::Partition);
                let groups = self.s.partitions[index].groups.clone();
                self.log(|| format!("partition {groups:?}"));
                self.set_groups(groups);
            }
            Item::PartitionEnd => {
                self.log(|| "partition healed".into());
                self.set_groups(vec![0; self.s.len()]);
            }
            Item::FaultEnd => {
                self.set_groups(vec![0; self.s.len()]);
                self.lossy = false;
                for node in 0..self.s.len() {
                    if self.s.honest(node) && !self.nodes[node].is_up() {
                        self.start(node);
                    }
                }
                let targets: Vec<u64> =
                    self.nodes.iter().map(|node| node.height() + LIVENESS_HEIGHTS).collect();
                self.log(|| format!("faults over; liveness targets {targets:?}"));
                self.targets = Some(targets);
                self.pow_fault_end();
            }
        }
    }

    // ----- the network -----

    /// Whether `a` and `b` can reach each other: both up, in the same group.
    pub(super) fn reachable(&self, a: usize, b: usize) -> bool {
        a != b && self.nodes[a].is_up() && self.nodes[b].is_up() && self.groups[a] == self.groups[b]
    }

    /// Splits or heals the network: nodes that can no longer reach each other lose their
    /// connection, nodes that can again connect.
    fn set_groups(&mut self, groups: Vec<u8>) {
        self.groups = groups;
        let n = self.s.len();
        for a in 0..n {
            for b in a + 1..n {
                let connected = self.nodes[a].is_connected(b);
                let reachable = self.reachable(a, b);
                if connected && !reachable {
                    self.disconnect(a, b);
                } else if !connected && reachable {
                    self.connect(a, b);
                }
            }
        }
    }

    /// Puts `wire` on the way from `from` to `to`: lost while the network is lossy, otherwise
    /// delayed by 1 to `max_delay_ms` (so messages overtake one another).
    pub(super) fn send(&mut self, from: usize, to: usize, wire: Rc<Wire>, gossip: Option<Hash>) {
        if from == to || self.pow_withholds(from, to, &wire, gossip) {
            return;
        }
        if self.groups[from] != self.groups[to] {
            return;
        }
        if self.lossy && self.rng.random_range(0..1_000_000) < self.s.drop_ppm {
            self.coverage.hit(Kind::Dropped);
            return;
        }
        let delay = self.rng.random_range(1..=self.s.max_delay_ms);
        if delay > 1 {
            self.coverage.hit(Kind::Delayed);
        }
        self.schedule(self.now + delay, Item::Deliver { to, from, wire, gossip });
    }
}
