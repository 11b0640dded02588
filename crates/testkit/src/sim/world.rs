//! The simulated world: nodes, network, faults and the checks, driven by one event queue in
//! virtual time.

use super::{
    Coverage, Kind,
    scenario::{
        Behaviour, EPOCH_MS, LIVENESS_BOUND_MS, LIVENESS_HEIGHTS, MAX_AHEAD_MS, Scenario, shuffle,
        state_root_after,
    },
};
use consensus::{
    Command, Engine, Event, Message, SignatureCheck, TendermintEngine, Timeouts,
    certificate_signatures, proposer, verify_proof,
};
use primitives::{
    Address, BlockHash, ConsensusProof, Hash, Header, PublicKey, SecretKey, Signature,
    SignedProposal, SignedVote, TimestampMs, Vote, VoteKind, encode,
};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use std::{
    cmp::Ordering,
    collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque},
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Mutex,
};

/// Every node sends its status (and, while stuck, re-sends its messages) this often.
const PERIOD_MS: u64 = 1000;
/// Most headers in one sync answer.
const SYNC_BATCH: u64 = 16;
/// Most proposals for future heights a node keeps.
const FUTURE_PROPOSALS: usize = 16;
/// Messages a replaying byzantine node remembers.
const REPLAY_MEMORY: usize = 64;
/// Others' messages a node keeps to relay.
const RELAY_MEMORY: usize = 512;
/// A run that handles more queue items than this is a livelock.
const MAX_ITEMS: u64 = 2_000_000;

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Digest of every event fed to an engine and every command it returned, in order.
    pub digest: Hash,
    /// What the run exercised.
    pub coverage: Coverage,
    /// The lowest height of an honest node at the end.
    pub min_height: u64,
    /// Virtual time at the end, in ms.
    pub end_ms: u64,
    /// Virtual time from the end of the faults until every honest node had added the required
    /// heights.
    pub recovery_ms: u64,
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
}

impl fmt::Display for Failure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "seed {} failed at virtual {} ms: {}\nreplay it with: JOULE_SIM_SEED={} cargo test -p testkit --test simulation -- --nocapture",
            self.seed, self.at_ms, self.message, self.seed
        )
    }
}

/// Runs the scenario of `seed` to its end. With `verbose`, prints every step to stderr.
pub fn run(seed: u64, verbose: bool) -> Result<Outcome, Failure> {
    let scenario = Scenario::from_seed(seed);
    match catch_unwind(AssertUnwindSafe(|| World::new(scenario, verbose).run())) {
        Ok(result) => result,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default();
            Err(Failure { seed, at_ms: 0, message: format!("panicked: {text}") })
        }
    }
}

/// What travels between nodes.
#[derive(Clone, Debug)]
enum Net {
    /// A consensus message; a proposal carries its block.
    Consensus(Message, Option<Box<Header>>),
    /// "My head is at this height."
    Status { height: u64 },
    /// "Send me your committed headers from this height on."
    SyncRequest { from: u64 },
    /// Committed headers, with their proofs, in order.
    SyncResponse { headers: Vec<Header> },
}

#[derive(Debug)]
enum Item {
    Deliver { to: usize, from: usize, net: Net },
    Wake { node: usize, incarnation: u64, token: u64 },
    Periodic { node: usize, incarnation: u64 },
    Crash(usize),
    Restart(usize),
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

/// Where a committed header came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    Engine,
    Sync,
}

struct Node {
    key: SecretKey,
    address: Address,
    offset: i64,
    byzantine: Option<Behaviour>,
    // The disk: survives crashes.
    chain: Vec<Header>,
    wal: Vec<Message>,
    wal_blocks: Vec<Header>,
    // Memory.
    up: bool,
    incarnation: u64,
    engine: Option<TendermintEngine>,
    wake_token: u64,
    inbox: VecDeque<Event>,
    busy: bool,
    known: BTreeMap<BlockHash, Header>,
    future: Vec<(SignedProposal, Header)>,
    seen: HashSet<Message>,
    peer_heights: Vec<u64>,
    syncing: bool,
    sync_wait_until: u64,
    pending_commit: Option<(BlockHash, ConsensusProof)>,
    last_progress: u64,
    recorded: VecDeque<(Message, Option<Box<Header>>)>,
    /// Others' messages for the next height, relayed while stuck (as gossip does).
    relay: Vec<(Message, Option<Box<Header>>)>,
    alt_block: Option<BlockHash>,
}

impl Node {
    fn head(&self) -> &Header {
        self.chain.last().expect("the chain starts at genesis")
    }

    fn height(&self) -> u64 {
        self.head().height.0
    }
}

struct World {
    s: Scenario,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    nodes: Vec<Node>,
    groups: Vec<u8>,
    lossy: bool,
    committed: BTreeMap<u64, (BlockHash, usize)>,
    verified: HashSet<(PublicKey, Hash, Signature)>,
    digest: Hash,
    coverage: Coverage,
    failure: Option<String>,
    verbose: bool,
    targets: Option<Vec<u64>>,
    signing_checked: bool,
    /// Shared by every engine of this world: each distinct signature is verified once (the
    /// engines check the same messages; verification is most of a seed's cost).
    signatures: SignatureCheck,
}

/// Key, message hash and signature bytes.
type SignedBy = ([u8; 32], Hash, [u8; 64]);

/// A signature check that remembers its answers.
fn memo_check() -> SignatureCheck {
    let memo: Mutex<HashMap<SignedBy, bool>> = Mutex::new(HashMap::new());
    SignatureCheck::new(move |key, message, signature| {
        let entry = (key.0, *message, signature.0);
        let mut memo = memo.lock().expect("one thread per world");
        *memo.entry(entry).or_insert_with(|| key.verify(message.as_bytes(), signature).is_ok())
    })
}

impl World {
    fn new(s: Scenario, verbose: bool) -> World {
        let rng = ChaCha8Rng::seed_from_u64(s.seed);
        let n = s.len();
        let nodes = (0..n)
            .map(|i| Node {
                key: s.keys[i].clone(),
                address: Address(s.keys[i].public_key()),
                offset: s.clock_offsets[i],
                byzantine: s.byzantine[i],
                chain: vec![s.genesis.clone()],
                wal: Vec::new(),
                wal_blocks: Vec::new(),
                up: false,
                incarnation: 0,
                engine: None,
                wake_token: 0,
                inbox: VecDeque::new(),
                busy: false,
                known: BTreeMap::new(),
                future: Vec::new(),
                seen: HashSet::new(),
                peer_heights: vec![0; n],
                syncing: false,
                sync_wait_until: 0,
                pending_commit: None,
                last_progress: 0,
                recorded: VecDeque::new(),
                relay: Vec::new(),
                alt_block: None,
            })
            .collect();
        let mut coverage = Coverage::default();
        if s.clock_offsets.iter().any(|offset| *offset != 0) {
            coverage.hit(Kind::ClockSkew);
        }
        if s.config.validators.iter().any(|v| v.power != s.config.validators[0].power) {
            coverage.hit(Kind::UnequalPower);
        }
        World {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            groups: vec![0; n],
            lossy: s.drop_ppm > 0,
            committed: BTreeMap::new(),
            verified: HashSet::new(),
            digest: Hash::ZERO,
            coverage,
            failure: None,
            verbose,
            targets: None,
            signing_checked: false,
            signatures: memo_check(),
            s,
        }
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if self.verbose {
            eprintln!("[{:>6} ms] {}", self.now, line());
        }
    }

    fn fail(&mut self, message: String) {
        if self.failure.is_none() {
            self.log(|| format!("FAILURE: {message}"));
            self.failure = Some(message);
        }
    }

    fn schedule(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.queue.push(Scheduled { at, seq: self.seq, item });
    }

    fn local(&self, node: usize) -> TimestampMs {
        let base = i64::try_from(EPOCH_MS + self.now).unwrap_or(i64::MAX);
        TimestampMs(u64::try_from(base + self.nodes[node].offset).unwrap_or(0))
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
        self.schedule(self.s.fault_end, Item::FaultEnd);
        for node in 0..n {
            self.start(node);
        }
        let deadline = self.s.fault_end + LIVENESS_BOUND_MS;
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
                return Err(Failure { seed: self.s.seed, at_ms: self.now, message });
            }
            if self.live() {
                let min_height = (0..n)
                    .filter(|&node| self.s.honest(node))
                    .map(|node| self.nodes[node].height())
                    .min()
                    .unwrap_or(0);
                return Ok(Outcome {
                    seed: self.s.seed,
                    digest: self.digest,
                    coverage: self.coverage,
                    min_height,
                    end_ms: self.now,
                    recovery_ms: self.now - self.s.fault_end,
                });
            }
        }
        let targets = self.targets.clone().unwrap_or_default();
        let lagging: Vec<String> = (0..n)
            .filter(|&node| self.s.honest(node) && self.nodes[node].height() < targets[node])
            .map(|node| {
                format!(
                    "node {node} at height {} (needed {}, up: {}, syncing: {})",
                    self.nodes[node].height(),
                    targets[node],
                    self.nodes[node].up,
                    self.nodes[node].syncing
                )
            })
            .collect();
        Err(Failure {
            seed: self.s.seed,
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
            Item::Deliver { to, from, net } => {
                if self.nodes[to].up {
                    self.receive(to, from, net);
                }
            }
            Item::Wake { node, incarnation, token } => {
                let state = &self.nodes[node];
                if state.up && state.incarnation == incarnation && state.wake_token == token {
                    self.feed(node, Event::Tick);
                }
            }
            Item::Periodic { node, incarnation } => {
                if self.nodes[node].up && self.nodes[node].incarnation == incarnation {
                    self.periodic(node);
                    self.schedule(self.now + PERIOD_MS, Item::Periodic { node, incarnation });
                }
            }
            Item::Crash(node) => self.crash(node),
            Item::Restart(node) => {
                if !self.nodes[node].up {
                    self.start(node);
                }
            }
            Item::PartitionStart(index) => {
                self.groups = self.s.partitions[index].groups.clone();
                self.coverage.hit(Kind::Partition);
                self.log(|| format!("partition {:?}", self.groups));
            }
            Item::PartitionEnd => {
                self.groups = vec![0; self.s.len()];
                self.log(|| "partition healed".into());
            }
            Item::FaultEnd => {
                self.groups = vec![0; self.s.len()];
                self.lossy = false;
                for node in 0..self.s.len() {
                    if self.s.honest(node) && !self.nodes[node].up {
                        self.start(node);
                    }
                }
                let targets: Vec<u64> =
                    self.nodes.iter().map(|node| node.height() + LIVENESS_HEIGHTS).collect();
                self.log(|| format!("faults over; liveness targets {targets:?}"));
                self.targets = Some(targets);
            }
        }
    }

    fn start(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        let next = state.height() + 1;
        let restored: Vec<Message> =
            state.wal.iter().filter(|message| message.height().0 == next).copied().collect();
        let restarted = state.incarnation > 0;
        state.incarnation += 1;
        state.up = true;
        state.last_progress = self.now;
        state.engine = Some(
            TendermintEngine::new(
                &self.s.config,
                Some(state.key.clone()),
                state.head(),
                restored.clone(),
                Timeouts::default(),
            )
            .with_signature_check(self.signatures.clone()),
        );
        let incarnation = state.incarnation;
        if restarted && !restored.is_empty() {
            self.coverage.hit(Kind::RestoredWal);
        }
        self.log(|| format!("node {node} starts at height {} with {restored:?}", next - 1));
        let phase = self.rng.random_range(0..PERIOD_MS);
        self.schedule(self.now + phase, Item::Periodic { node, incarnation });
        self.feed(node, Event::Tick);
    }

    fn crash(&mut self, node: usize) {
        self.coverage.hit(Kind::Crash);
        self.log(|| format!("node {node} crashes"));
        let n = self.s.len();
        let state = &mut self.nodes[node];
        state.up = false;
        state.engine = None;
        state.inbox.clear();
        state.known.clear();
        state.future.clear();
        state.seen.clear();
        state.peer_heights = vec![0; n];
        state.syncing = false;
        state.sync_wait_until = 0;
        state.pending_commit = None;
        state.recorded.clear();
        state.relay.clear();
        state.alt_block = None;
    }

    // ----- the engine -----

    fn feed(&mut self, node: usize, event: Event) {
        self.nodes[node].inbox.push_back(event);
        if self.nodes[node].busy {
            return;
        }
        self.nodes[node].busy = true;
        while let Some(event) = self.nodes[node].inbox.pop_front() {
            if !self.nodes[node].up || self.failure.is_some() {
                break;
            }
            let now = self.local(node);
            self.trace_event(node, now, &event);
            self.log(|| format!("node {node} <- {}", short_event(&event)));
            let Some(engine) = self.nodes[node].engine.as_mut() else { break };
            let commands = engine.handle(now, event);
            self.trace_commands(&commands);
            for command in commands {
                self.log(|| format!("node {node} -> {}", short_command(&command)));
                self.execute(node, command);
            }
        }
        self.nodes[node].inbox.clear();
        self.nodes[node].busy = false;
    }

    fn trace_event(&mut self, node: usize, now: TimestampMs, event: &Event) {
        let bytes = match event {
            Event::Tick => encode(&(0u8, node as u64, now.0)),
            Event::PendingChanged { ready } => encode(&(1u8, node as u64, now.0, *ready as u64)),
            Event::BlockBuilt { header } => encode(&(2u8, node as u64, now.0, header)),
            Event::Committed { header } => encode(&(3u8, node as u64, now.0, header)),
            Event::Proposal { proposal, valid } => {
                encode(&(4u8, node as u64, now.0, proposal, *valid))
            }
            Event::Vote(vote) => encode(&(5u8, node as u64, now.0, vote)),
            Event::Syncing { behind } => encode(&(6u8, node as u64, now.0, *behind)),
            Event::Validators { from, validators } => {
                encode(&(7u8, node as u64, now.0, from, validators))
            }
        };
        self.digest = Hash::digest(b"joule/sim/trace", &[self.digest.as_bytes(), &bytes]);
    }

    fn trace_commands(&mut self, commands: &[Command]) {
        for command in commands {
            let bytes = match command {
                Command::BuildBlock { height, timestamp } => encode(&(10u8, height, timestamp)),
                Command::Commit { hash, proof } => encode(&(11u8, hash, proof)),
                Command::WakeAt { at } => encode(&(12u8, at)),
                Command::Broadcast(message) => encode(&(13u8, message)),
            };
            self.digest = Hash::digest(b"joule/sim/trace", &[self.digest.as_bytes(), &bytes]);
        }
    }

    fn execute(&mut self, node: usize, command: Command) {
        match command {
            Command::BuildBlock { height, timestamp } => {
                let state = &self.nodes[node];
                if height.0 != state.height() + 1 {
                    self.log(|| format!("node {node}: ignoring BuildBlock for {height:?}"));
                    return;
                }
                let parent = state.head().hash();
                let poisoned =
                    state.byzantine.is_some_and(|b| b.poison) && self.rng.random_bool(0.7);
                let state_root =
                    if poisoned { random_hash(&mut self.rng) } else { state_root_after(&parent) };
                let header = Header {
                    height,
                    parent,
                    timestamp,
                    proposer: state.address,
                    tx_root: random_hash(&mut self.rng),
                    state_root,
                    proof: ConsensusProof::Genesis,
                };
                self.nodes[node].known.insert(header.hash(), header.clone());
                self.feed(node, Event::BlockBuilt { header });
            }
            Command::Broadcast(message) => self.broadcast(node, message),
            Command::Commit { hash, proof } => {
                let state = &self.nodes[node];
                if state.chain.iter().rev().take(4).any(|header| header.hash() == hash) {
                    return;
                }
                let header = state
                    .known
                    .get(&hash)
                    .or_else(|| state.wal_blocks.iter().find(|header| header.hash() == hash))
                    .cloned();
                match header {
                    Some(mut header) => {
                        header.proof = proof;
                        self.commit(node, header, Source::Engine);
                    }
                    None => {
                        self.coverage.hit(Kind::FetchedCommit);
                        self.nodes[node].pending_commit = Some((hash, proof));
                        self.request_sync_from_all(node);
                    }
                }
            }
            Command::WakeAt { at } => {
                let target = i64::try_from(at.0).unwrap_or(i64::MAX)
                    - i64::try_from(EPOCH_MS).unwrap_or(0)
                    - self.nodes[node].offset;
                let virtual_at = u64::try_from(target).unwrap_or(0).max(self.now);
                let state = &mut self.nodes[node];
                state.wake_token += 1;
                let item =
                    Item::Wake { node, incarnation: state.incarnation, token: state.wake_token };
                self.schedule(virtual_at, item);
            }
        }
    }

    // ----- committing -----

    /// Whether `header`'s proof holds. The structure of every proof is checked, but each
    /// distinct precommit signature is verified once per run (the same precommits appear in
    /// every node's certificates); [`verify_proof`] itself checks the first commit of each
    /// height.
    fn proof_holds(&mut self, header: &Header) -> bool {
        if !self.committed.contains_key(&header.height.0) {
            return verify_proof(&self.s.config, header).is_ok();
        }
        let Ok(signatures) = certificate_signatures(&self.s.config, header) else { return false };
        signatures.into_iter().all(|(key, message, signature)| {
            let triple = (key, message, signature);
            if self.verified.contains(&triple) {
                return true;
            }
            let holds = key.verify(message.as_bytes(), &signature).is_ok();
            if holds {
                self.verified.insert(triple);
            }
            holds
        })
    }

    fn commit(&mut self, node: usize, header: Header, source: Source) {
        let head = self.nodes[node].head().clone();
        let hash = header.hash();
        let height = header.height.0;
        if height <= head.height.0 {
            let ours = self.nodes[node].chain[height as usize].hash();
            if ours != hash {
                self.fail(format!(
                    "node {node} was asked to commit {hash:?} at height {height}, but it committed {ours:?} there already"
                ));
            }
            return;
        }
        let mut problems = Vec::new();
        if height != head.height.0 + 1 {
            problems.push(format!("height {height} is not head {} + 1", head.height.0));
        }
        if header.parent != head.hash() {
            problems.push("its parent is not the head".to_owned());
        }
        if header.timestamp <= head.timestamp {
            problems.push("its timestamp is not after its parent's".to_owned());
        }
        if header.state_root != state_root_after(&header.parent) {
            problems.push("it is poisoned (wrong state root)".to_owned());
        }
        if !self.proof_holds(&header) {
            let error = verify_proof(&self.s.config, &header).err();
            problems.push(format!("its proof does not verify: {error:?}"));
        }
        if !problems.is_empty() {
            if source == Source::Sync {
                self.log(|| format!("node {node}: refusing synced header {height}: {problems:?}"));
                return;
            }
            self.fail(format!(
                "validity: node {node} committed {hash:?} at height {height}: {}",
                problems.join(", ")
            ));
            return;
        }
        match self.committed.get(&height) {
            Some((other, by)) if *other != hash => {
                let message = format!(
                    "agreement: node {node} committed {hash:?} at height {height}, node {by} committed {other:?}"
                );
                self.fail(message);
                return;
            }
            Some(_) => {}
            None => {
                self.committed.insert(height, (hash, node));
            }
        }
        self.log(|| format!("node {node} commits {height} {hash:?} ({source:?})"));
        let state = &mut self.nodes[node];
        state.chain.push(header.clone());
        state.wal.retain(|message| message.height().0 > height);
        state.wal_blocks.retain(|block| block.height.0 > height);
        state.known.retain(|_, block| block.height.0 > height);
        state.seen.clear();
        state.relay.clear();
        state.last_progress = self.now;
        if state.pending_commit.as_ref().is_some_and(|(pending, _)| *pending == hash)
            || source == Source::Sync
        {
            state.pending_commit = None;
        }
        self.feed(node, Event::Committed { header });
        let future = std::mem::take(&mut self.nodes[node].future);
        let (now, later): (Vec<_>, Vec<_>) =
            future.into_iter().partition(|(proposal, _)| proposal.proposal.height.0 == height + 1);
        self.nodes[node].future =
            later.into_iter().filter(|(proposal, _)| proposal.proposal.height.0 > height).collect();
        for (proposal, block) in now {
            self.on_proposal(node, proposal, block);
        }
        self.update_syncing(node);
    }

    fn update_syncing(&mut self, node: usize) {
        let state = &self.nodes[node];
        let best = state.peer_heights.iter().copied().max().unwrap_or(0);
        let behind = best > state.height() + 1;
        if behind != state.syncing {
            self.nodes[node].syncing = behind;
            self.feed(node, Event::Syncing { behind });
        }
    }

    // ----- the network -----

    fn send(&mut self, from: usize, to: usize, net: Net) {
        if from == to {
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
        self.schedule(self.now + delay, Item::Deliver { to, from, net });
    }

    fn send_all(&mut self, from: usize, net: &Net) {
        for to in 0..self.s.len() {
            self.send(from, to, net.clone());
        }
    }

    fn request_sync_from_all(&mut self, node: usize) {
        let from = self.nodes[node].height() + 1;
        self.nodes[node].sync_wait_until = self.now + PERIOD_MS;
        self.send_all(node, &Net::SyncRequest { from });
    }

    fn periodic(&mut self, node: usize) {
        let height = self.nodes[node].height();
        self.send_all(node, &Net::Status { height });
        let state = &self.nodes[node];
        if self.now >= state.last_progress + PERIOD_MS {
            // Stuck: re-send our own messages for this height, as gossip would.
            let messages: Vec<Net> = state
                .wal
                .iter()
                .filter(|message| message.height().0 == height + 1)
                .map(|message| Net::Consensus(*message, self.block_of(node, message)))
                .collect();
            let relayed: Vec<Net> = state
                .relay
                .iter()
                .map(|(message, block)| Net::Consensus(*message, block.clone()))
                .collect();
            for net in messages.into_iter().chain(relayed) {
                self.send_all(node, &net);
            }
        }
        if self.nodes[node].pending_commit.is_some() && self.now >= self.nodes[node].sync_wait_until
        {
            self.request_sync_from_all(node);
        }
        if self.nodes[node].byzantine.is_some_and(|b| b.replay) {
            self.replay(node);
        }
    }

    fn block_of(&self, node: usize, message: &Message) -> Option<Box<Header>> {
        let Message::Proposal(signed) = message else { return None };
        let state = &self.nodes[node];
        state
            .wal_blocks
            .iter()
            .find(|header| header.hash() == signed.proposal.block)
            .or_else(|| state.known.get(&signed.proposal.block))
            .cloned()
            .map(Box::new)
    }

    fn receive(&mut self, node: usize, from: usize, net: Net) {
        match net {
            Net::Consensus(message, block) => {
                if self.nodes[node].byzantine.is_some_and(|b| b.replay) {
                    let recorded = &mut self.nodes[node].recorded;
                    if recorded.len() == REPLAY_MEMORY {
                        recorded.pop_front();
                    }
                    recorded.push_back((message, block.clone()));
                }
                match message {
                    Message::Proposal(proposal) => {
                        if let Some(block) = block {
                            self.on_proposal(node, proposal, *block);
                        }
                    }
                    Message::Vote(vote) => {
                        let next = self.nodes[node].height() + 1;
                        if vote.vote.height.0 == next {
                            if !self.nodes[node].seen.insert(message) {
                                return;
                            }
                            self.keep_for_relay(node, message, None);
                        }
                        self.feed(node, Event::Vote(vote));
                    }
                }
            }
            Net::Status { height } => {
                self.nodes[node].peer_heights[from] = height;
                let state = &self.nodes[node];
                if height > state.height() && self.now >= state.sync_wait_until {
                    self.nodes[node].sync_wait_until = self.now + PERIOD_MS;
                    let from_height = self.nodes[node].height() + 1;
                    self.send(node, from, Net::SyncRequest { from: from_height });
                }
                self.update_syncing(node);
            }
            Net::SyncRequest { from: first } => {
                let chain = &self.nodes[node].chain;
                let last = (first + SYNC_BATCH - 1).min(chain.len() as u64 - 1);
                if first <= last {
                    let headers = chain[first as usize..=last as usize].to_vec();
                    self.send(node, from, Net::SyncResponse { headers });
                }
            }
            Net::SyncResponse { headers } => {
                for header in headers {
                    if header.height.0 != self.nodes[node].height() + 1 {
                        continue;
                    }
                    self.coverage.hit(Kind::Synced);
                    self.commit(node, header, Source::Sync);
                    if self.failure.is_some() || !self.nodes[node].up {
                        return;
                    }
                }
                self.nodes[node].sync_wait_until = 0;
                let state = &self.nodes[node];
                if state.peer_heights[from] > state.height() {
                    self.nodes[node].sync_wait_until = self.now + PERIOD_MS;
                    let first = self.nodes[node].height() + 1;
                    self.send(node, from, Net::SyncRequest { from: first });
                }
            }
        }
    }

    fn on_proposal(&mut self, node: usize, proposal: SignedProposal, block: Header) {
        let state = &self.nodes[node];
        let next = state.height() + 1;
        let height = proposal.proposal.height.0;
        if height < next {
            return;
        }
        if height > next {
            if state.future.len() < FUTURE_PROPOSALS {
                self.coverage.hit(Kind::FutureProposal);
                self.nodes[node].future.push((proposal, block));
            }
            return;
        }
        let message = Message::Proposal(proposal);
        if state.seen.contains(&message) {
            return;
        }
        let expected =
            proposer(&self.s.config.validators, proposal.proposal.height, proposal.proposal.round);
        if expected.is_none_or(|validator| validator.key != proposal.proposer) {
            self.log(|| format!("node {node}: proposal not from the round's proposer"));
            return;
        }
        let hash = block.hash();
        if hash != proposal.proposal.block {
            self.log(|| format!("node {node}: proposal does not name the block it carries"));
            return;
        }
        let head = state.head();
        let valid = block.height.0 == next
            && block.parent == head.hash()
            && block.timestamp > head.timestamp
            && block.timestamp.0 <= self.local(node).0 + MAX_AHEAD_MS
            && block.state_root == state_root_after(&block.parent);
        self.nodes[node].seen.insert(message);
        self.keep_for_relay(node, message, Some(Box::new(block.clone())));
        self.nodes[node].known.insert(hash, block.clone());
        if let Some((pending, proof)) = self.nodes[node].pending_commit.clone()
            && pending == hash
        {
            let mut header = block;
            header.proof = proof;
            self.commit(node, header, Source::Engine);
            return;
        }
        self.feed(node, Event::Proposal { proposal, valid });
    }

    fn keep_for_relay(&mut self, node: usize, message: Message, block: Option<Box<Header>>) {
        let relay = &mut self.nodes[node].relay;
        if relay.len() < RELAY_MEMORY {
            relay.push((message, block));
        }
    }

    // ----- byzantine behaviour -----

    fn broadcast(&mut self, node: usize, message: Message) {
        let block = {
            let state = &mut self.nodes[node];
            state.wal.push(message);
            match message {
                Message::Proposal(signed) => {
                    let block = state.known.get(&signed.proposal.block).cloned();
                    if let Some(block) = &block {
                        state.wal_blocks.push(block.clone());
                    }
                    block.map(Box::new)
                }
                Message::Vote(_) => None,
            }
        };
        let Some(behaviour) = self.nodes[node].byzantine else {
            self.send_all(node, &Net::Consensus(message, block));
            return;
        };
        if behaviour.replay {
            let recorded = &mut self.nodes[node].recorded;
            if recorded.len() == REPLAY_MEMORY {
                recorded.pop_front();
            }
            recorded.push_back((message, block.clone()));
        }
        let mut peers: Vec<usize> = (0..self.s.len()).filter(|&peer| peer != node).collect();
        shuffle(&mut self.rng, &mut peers);
        let (first, second) = peers.split_at(peers.len() / 2);
        let (first, second) = (first.to_vec(), second.to_vec());
        let chain_id = self.s.config.chain_id.clone();
        let key = self.nodes[node].key.clone();
        let alternative = match message {
            Message::Proposal(signed) if behaviour.equivocate => block.as_ref().map(|block| {
                let mut other = (**block).clone();
                other.tx_root = random_hash(&mut self.rng);
                let mut proposal = signed.proposal;
                proposal.block = other.hash();
                self.nodes[node].alt_block = Some(proposal.block);
                let signature = key.sign(proposal.signing_hash(&chain_id).as_bytes());
                let alternative = SignedProposal { proposal, proposer: signed.proposer, signature };
                self.coverage.hit(Kind::Equivocation);
                Net::Consensus(Message::Proposal(alternative), Some(Box::new(other)))
            }),
            Message::Vote(signed) if behaviour.double_vote => {
                self.check_signing(&key, &signed);
                let block = match signed.vote.block {
                    Some(_) if self.rng.random_bool(0.5) => None,
                    _ => Some(
                        self.nodes[node]
                            .alt_block
                            .filter(|_| self.rng.random_bool(0.5))
                            .unwrap_or_else(|| BlockHash(random_hash(&mut self.rng))),
                    ),
                };
                let vote = Vote { block, ..signed.vote };
                self.coverage.hit(Kind::DoubleVote);
                Some(Net::Consensus(Message::Vote(sign_vote(&key, &chain_id, vote)), None))
            }
            _ => None,
        };
        let original = Net::Consensus(message, block.clone());
        match alternative {
            Some(alternative) => {
                for peer in first {
                    self.send(node, peer, original.clone());
                }
                for peer in second {
                    self.send(node, peer, alternative.clone());
                }
            }
            None => self.send_all(node, &original),
        }
        if let Message::Proposal(signed) = message
            && block.as_ref().is_some_and(|b| b.state_root != state_root_after(&b.parent))
        {
            let _ = signed;
            self.coverage.hit(Kind::Poison);
        }
        if behaviour.bad_signatures && self.rng.random_bool(0.5) {
            self.coverage.hit(Kind::BadSignature);
            let mut broken = message;
            match &mut broken {
                Message::Proposal(signed) => signed.signature.0[7] ^= 0x40,
                Message::Vote(signed) => signed.signature.0[7] ^= 0x40,
            }
            self.send_all(node, &Net::Consensus(broken, block));
            // A precommit forged in an honest validator's name, signed with our own key.
            let honest: Vec<usize> =
                (0..self.s.len()).filter(|&other| self.s.honest(other)).collect();
            if !honest.is_empty() {
                self.coverage.hit(Kind::ForgedVote);
                let victim = honest[self.rng.random_range(0..honest.len())];
                let vote = Vote {
                    height: message.height(),
                    round: message.round(),
                    kind: if self.rng.random_bool(0.5) {
                        VoteKind::Prevote
                    } else {
                        VoteKind::Precommit
                    },
                    block: Some(BlockHash(random_hash(&mut self.rng))),
                };
                let mut forged = sign_vote(&key, &chain_id, vote);
                forged.validator = self.s.keys[victim].public_key();
                self.send_all(node, &Net::Consensus(Message::Vote(forged), None));
            }
        }
    }

    /// The byzantine messages are only worth something if they are signed the way the engine
    /// signs: checked once per run against an honest vote of the engine.
    fn check_signing(&mut self, key: &SecretKey, signed: &SignedVote) {
        if self.signing_checked {
            return;
        }
        self.signing_checked = true;
        let ours = sign_vote(key, &self.s.config.chain_id, signed.vote);
        if ours.signature != signed.signature {
            self.fail("the harness signs votes differently from the engine".into());
        }
    }

    fn replay(&mut self, node: usize) {
        let state = &self.nodes[node];
        let next = state.height() + 1;
        let old: Vec<(Message, Option<Box<Header>>)> = state
            .recorded
            .iter()
            .filter(|(message, _)| message.height().0 < next || message.round() == 0)
            .cloned()
            .collect();
        if old.is_empty() {
            return;
        }
        for _ in 0..3 {
            let (message, block) = old[self.rng.random_range(0..old.len())].clone();
            let peer = self.rng.random_range(0..self.s.len());
            self.coverage.hit(Kind::Replay);
            self.send(node, peer, Net::Consensus(message, block));
        }
    }
}

fn sign_vote(key: &SecretKey, chain_id: &primitives::ChainId, vote: Vote) -> SignedVote {
    let signature = key.sign(vote.signing_hash(chain_id).as_bytes());
    SignedVote { vote, validator: key.public_key(), signature }
}

fn random_hash(rng: &mut ChaCha8Rng) -> Hash {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    Hash(bytes)
}

fn short_event(event: &Event) -> String {
    match event {
        Event::BlockBuilt { header } => {
            format!("BlockBuilt {} {:?}", header.height.0, header.hash())
        }
        Event::Committed { header } => format!("Committed {} {:?}", header.height.0, header.hash()),
        Event::Proposal { proposal, valid } => format!(
            "Proposal h{} r{} {:?} pol {:?} by {:?} valid {valid}",
            proposal.proposal.height.0,
            proposal.proposal.round,
            proposal.proposal.block,
            proposal.proposal.pol_round,
            proposal.proposer
        ),
        Event::Vote(vote) => format!(
            "{:?} h{} r{} {:?} by {:?}",
            vote.vote.kind, vote.vote.height.0, vote.vote.round, vote.vote.block, vote.validator
        ),
        other => format!("{other:?}"),
    }
}

fn short_command(command: &Command) -> String {
    match command {
        Command::Broadcast(Message::Proposal(proposal)) => format!(
            "Broadcast proposal h{} r{} {:?} pol {:?}",
            proposal.proposal.height.0,
            proposal.proposal.round,
            proposal.proposal.block,
            proposal.proposal.pol_round
        ),
        Command::Broadcast(Message::Vote(vote)) => format!(
            "Broadcast {:?} h{} r{} {:?}",
            vote.vote.kind, vote.vote.height.0, vote.vote.round, vote.vote.block
        ),
        Command::Commit { hash, .. } => format!("Commit {hash:?}"),
        other => format!("{other:?}"),
    }
}
