//! The simulated node shell: one node's disk, its real [`Core`] while it is up, and the
//! carrying out of the core's effects in virtual time, as the tokio shell (`node`'s manager
//! and network task) carries them out in production.
//!
//! - `Log` and `SaveState` go to the node's disk at once (before any later effect), which
//!   survives crashes; `Persist` completes after a seeded delay of up to the scenario's
//!   `max_write_ms`, appends the blocks to the disk's chain (dropping the log entries they
//!   make obsolete) and then calls [`Core::persisted`]; a crash before then loses the write.
//! - `Send`, `Gossip` and `SendAll` go through the simulated network, to connected peers only.
//!   Gossip carries an id by which a receiver drops copies it has seen, and is not sent to a
//!   peer known to have it, as `net` does.
//! - What arrives goes through the p2p task's steps: a consensus message gets the engine's
//!   relay check ([`consensus::rules`]) against the node's published schedule, is relayed if
//!   it passes and only then reaches the core; `GetBlocks` is answered from the disk's chain;
//!   `Status` is the core's `peer_status`; `Blocks` its `blocks`.
//! - Every 500 ms the core gets `housekeeping`, as from the tokio shell's interval.
//!
//! What a real network does below the node also happens here, as a property of the simulated
//! network rather than of the node: every second a node sends its status to its peers, and
//! while it makes no progress re-sends what it gossiped since its last block (TCP's
//! retransmissions, after losses); peers connect when a node starts and when a partition
//! heals, and lose the connection when one side crashes or the network splits.

use super::{
    Kind,
    app::SimApp,
    scenario::{Behaviour, EPOCH_MS, Scenario},
    trace::{Input, describe_effect, describe_input},
    world::{Item, World},
};
use consensus::{EngineMessage, TendermintEngine, Timeouts, Verdict, tendermint};
use node::{
    PeerId, ValidatorSchedule,
    core::{App, Core, CoreConfig, Effect},
    wire::{MAX_BLOCKS_PER_MESSAGE, Wire},
};
use primitives::{
    Address, Block, BlockHash, EngineKind, Hash, Height, SecretKey, TimeScale, TimestampMs,
};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use std::{
    collections::{BTreeSet, HashSet, VecDeque},
    rc::Rc,
    sync::Arc,
};

/// How often the core gets `housekeeping` (as in the tokio shell).
pub(super) const HOUSEKEEPING_MS: u64 = 500;
/// How often a node sends its status and, while stuck, re-sends what it gossiped.
pub(super) const PERIOD_MS: u64 = 1000;
/// Gossiped messages a node keeps to re-send while stuck.
const RESEND_MEMORY: usize = 512;
/// Messages a replaying byzantine node remembers.
pub(super) const REPLAY_MEMORY: usize = 64;

/// One simulated node: what survives a crash, and the running node.
pub(super) struct SimNode {
    pub(super) key: SecretKey,
    pub(super) peer: PeerId,
    offset: i64,
    pub(super) byzantine: Option<Behaviour>,
    pub(super) disk: Disk,
    pub(super) running: Option<Running>,
    incarnation: u64,
}

/// What survives a crash.
pub(super) struct Disk {
    /// The blocks written, from genesis on.
    pub(super) chain: Vec<Arc<Block>>,
    /// The write-ahead log of own messages, by height, with their blocks.
    pub(super) wal: Vec<(Height, EngineMessage, Option<Arc<Block>>)>,
    /// The engine's state, as last kept (Raft's term and vote).
    engine_state: Option<Vec<u8>>,
}

/// A node that is up: its core and what its shell and its network layer keep in memory.
pub(super) struct Running {
    pub(super) core: Core<SimApp>,
    /// The validator schedule the core last published (for the relay check).
    schedule: Arc<ValidatorSchedule>,
    /// Gossip ids seen.
    seen: HashSet<Hash>,
    /// Gossip ids each peer is known to have.
    known: HashSet<(usize, Hash)>,
    /// What this node gossiped since its last block, to re-send while it is stuck.
    resend: Vec<(Hash, Rc<Wire>)>,
    /// Peers it is connected to.
    connected: BTreeSet<usize>,
    /// The wake-up asked for, and the token of its queue item.
    wake: Option<TimestampMs>,
    wake_token: u64,
    /// The blocks being written, and for a switch the height above which the chain is
    /// replaced.
    writing: Option<Vec<Arc<Block>>>,
    switching: Option<Height>,
    /// Virtual time of the last block written (or of the start).
    last_progress: u64,
    /// Periodic duties done.
    periods: u64,
    /// A replaying byzantine node's memory of messages.
    pub(super) recorded: VecDeque<Rc<Wire>>,
    /// The block of an equivocating node's second proposal.
    pub(super) alt_block: Option<BlockHash>,
}

impl Running {
    pub(super) fn connected(&self) -> impl Iterator<Item = usize> + '_ {
        self.connected.iter().copied()
    }

    /// Notes that `peer` has (or is being sent) gossip `id`; whether it was not known to.
    pub(super) fn mark_known(&mut self, peer: usize, id: Hash) -> bool {
        self.known.insert((peer, id))
    }

    /// Notes gossip `id` as seen and keeps `wire` to re-send while stuck.
    pub(super) fn keep(&mut self, id: Hash, wire: &Rc<Wire>) {
        self.seen.insert(id);
        if self.resend.len() < RESEND_MEMORY {
            self.resend.push((id, wire.clone()));
        }
    }
}

impl SimNode {
    pub(super) fn new(scenario: &Scenario, index: usize) -> SimNode {
        let key = scenario.keys[index].clone();
        SimNode {
            peer: key.public_key(),
            key,
            offset: scenario.clock_offsets[index],
            byzantine: scenario.byzantine[index],
            disk: Disk {
                chain: vec![Arc::new(Block { header: scenario.genesis.clone(), txs: Vec::new() })],
                wal: Vec::new(),
                engine_state: None,
            },
            running: None,
            incarnation: 0,
        }
    }

    pub(super) fn is_up(&self) -> bool {
        self.running.is_some()
    }

    /// How many times it has started (what tells a stale event from a current one).
    pub(super) fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub(super) fn is_connected(&self, peer: usize) -> bool {
        self.running.as_ref().is_some_and(|running| running.connected.contains(&peer))
    }

    /// The height of the last block written to disk.
    pub(super) fn height(&self) -> u64 {
        self.disk.chain.last().map_or(0, |block| block.header.height.0)
    }

    /// Where the node stands, for a failure message.
    pub(super) fn describe(&self) -> String {
        match &self.running {
            None => format!("at height {}, down", self.height()),
            Some(running) => {
                let status = running.core.status();
                format!(
                    "at height {}, up, writing: {}, syncing: {}, best peer: {:?}, peers: {:?}",
                    self.height(),
                    running.core.is_writing(),
                    status.syncing,
                    status.best_peer_height.map(|height| height.0),
                    running.connected
                )
            }
        }
    }
}

/// The id by which gossip is de-duplicated.
pub(super) fn gossip_id(wire: &Wire) -> Hash {
    Hash::digest(b"joule/sim/gossip", &[&wire.encode()])
}

impl World {
    /// Node `node`'s chain time now.
    pub(super) fn local(&self, node: usize) -> TimestampMs {
        let base = i64::try_from(EPOCH_MS + self.now).unwrap_or(i64::MAX);
        TimestampMs(u64::try_from(base + self.nodes[node].offset).unwrap_or(0))
    }

    /// The virtual time at which node `node`'s clock shows `at` (now, if it has passed).
    fn virtual_time(&self, node: usize, at: TimestampMs) -> u64 {
        let target = i64::try_from(at.0).unwrap_or(i64::MAX)
            - i64::try_from(EPOCH_MS).unwrap_or(0)
            - self.nodes[node].offset;
        u64::try_from(target).unwrap_or(0).max(self.now)
    }

    fn index_of(&self, peer: &PeerId) -> Option<usize> {
        self.nodes.iter().position(|node| node.peer == *peer)
    }

    // ----- starting, crashing, connecting -----

    /// Starts node `node` from its disk: the engine with the logged messages for the height
    /// after the head, the core with them and their blocks.
    pub(super) fn start(&mut self, node: usize) {
        let scenario = self.s.clone();
        let signatures = self.signatures.check();
        let poison_seed = scenario.seed ^ ((node as u64) << 32) ^ self.nodes[node].incarnation;
        let state = &mut self.nodes[node];
        state.incarnation += 1;
        let restarted = state.incarnation > 1;
        let head = state
            .disk
            .chain
            .last()
            .map(|block| block.header.clone())
            .unwrap_or_else(|| scenario.genesis.clone());
        let next = Height(head.height.0 + 1);
        let own: Vec<(EngineMessage, Option<Block>)> = state
            .disk
            .wal
            .iter()
            .filter(|(height, ..)| *height == next)
            .map(|(_, message, block)| (message.clone(), block.as_deref().cloned()))
            .collect();
        let pow = matches!(scenario.config.engine, EngineKind::Pow(_));
        let engine: Box<dyn consensus::Engine + Send> = match scenario.config.engine {
            EngineKind::Pow(_) => Box::new(super::pow::engine(&state.key, &state.disk.chain)),
            EngineKind::Raft => {
                let logged: Vec<EngineMessage> =
                    own.iter().map(|(message, _)| message.clone()).collect();
                let state_bytes = state.disk.engine_state.as_deref();
                let key = state.key.clone();
                Box::new(super::raft::engine(
                    &scenario,
                    key,
                    &head,
                    state_bytes,
                    &logged,
                    signatures,
                ))
            }
            _ => {
                let restored =
                    own.iter().filter_map(|(message, _)| tendermint::decode(message)).collect();
                Box::new(
                    TendermintEngine::new(
                        &scenario.config_at(next),
                        Some(state.key.clone()),
                        &head,
                        restored,
                        Timeouts::default(),
                    )
                    .with_signature_check(signatures),
                )
            }
        };
        let poison = state
            .byzantine
            .is_some_and(|behaviour| behaviour.poison)
            .then(|| ChaCha8Rng::seed_from_u64(poison_seed));
        let mut app = SimApp::new(scenario.clone(), Address(state.peer), head.clone(), poison);
        if pow {
            app = app.with_chain(&state.disk.chain);
        }
        let config = CoreConfig { chain: scenario.config.clone(), time: TimeScale::REAL };
        let logged = own.len();
        let mut core = Core::new(config, app, engine, head, own);
        if pow {
            core = core.with_chain(super::pow::recent_headers(&state.disk.chain));
        }
        state.running = Some(Running {
            schedule: core.schedule().clone(),
            core,
            seen: HashSet::new(),
            known: HashSet::new(),
            resend: Vec::new(),
            connected: BTreeSet::new(),
            wake: None,
            wake_token: 0,
            writing: None,
            switching: None,
            last_progress: self.now,
            periods: 0,
            recorded: VecDeque::new(),
            alt_block: None,
        });
        let incarnation = state.incarnation;
        let saved = state.disk.engine_state.as_ref().map(Vec::len);
        if restarted && logged > 0 {
            self.coverage.hit(Kind::RestoredWal);
        }
        self.log(|| {
            format!(
                "node {node} starts at height {} with {logged} logged messages (engine state: {saved:?} bytes)",
                next.0 - 1
            )
        });
        let phase = self.rng.random_range(0..HOUSEKEEPING_MS);
        self.schedule(self.now + phase, Item::Periodic { node, incarnation });
        self.feed(node, Input::Start);
        if self.pow.as_ref().is_some_and(|pow| pow.mining(node)) {
            self.feed(node, Input::Mining(true));
        }
        for peer in 0..self.s.len() {
            if self.reachable(node, peer) && !self.nodes[node].is_connected(peer) {
                self.connect(node, peer);
            }
        }
    }

    pub(super) fn crash(&mut self, node: usize) {
        if !self.nodes[node].is_up() {
            return;
        }
        self.coverage.hit(Kind::Crash);
        self.log(|| format!("node {node} crashes"));
        self.count_core_paths(node);
        self.pow_stop(node);
        let peers: Vec<usize> = self.nodes[node]
            .running
            .as_ref()
            .map(|running| running.connected().collect())
            .unwrap_or_default();
        self.nodes[node].running = None;
        for peer in peers {
            self.disconnect(peer, node);
        }
    }

    /// Adds what node `node`'s core counted of its rarer paths to the coverage (once per core:
    /// when it crashes, or at the end of the run).
    pub(super) fn count_core_paths(&mut self, node: usize) {
        let Some(running) = &self.nodes[node].running else { return };
        let counters = running.core.counters();
        self.coverage.add(Kind::Synced, counters.blocks_synced);
        self.coverage.add(Kind::DecidedWithoutBlock, counters.decided_without_block);
        self.coverage.add(Kind::HeldForLaterHeight, counters.held_for_later_height);
        self.coverage.add(Kind::HeldDuringWrite, counters.held_during_write);
        self.coverage.add(Kind::HeldForClock, counters.held_for_clock);
        self.coverage.add(Kind::SyncCut, counters.sync_cut_at_validator_change);
        self.coverage.add(Kind::OrphanPool, counters.orphans);
    }

    /// `a` and `b` connect: each core hears of the other.
    pub(super) fn connect(&mut self, a: usize, b: usize) {
        for (node, peer) in [(a, b), (b, a)] {
            let id = self.nodes[peer].peer;
            if let Some(running) = self.nodes[node].running.as_mut() {
                running.connected.insert(peer);
                self.feed(node, Input::PeerConnected(id));
            }
        }
    }

    /// `node` loses its connection to `peer`.
    pub(super) fn disconnect(&mut self, node: usize, peer: usize) {
        let id = self.nodes[peer].peer;
        if let Some(running) = self.nodes[node].running.as_mut()
            && running.connected.remove(&peer)
        {
            self.feed(node, Input::PeerGone(id));
        }
        let id = self.nodes[node].peer;
        if let Some(running) = self.nodes[peer].running.as_mut()
            && running.connected.remove(&node)
        {
            self.feed(peer, Input::PeerGone(id));
        }
    }

    // ----- the core's inputs and effects -----

    /// Feeds one input to node `node`'s core and carries out the effects it returns.
    pub(super) fn feed(&mut self, node: usize, input: Input) {
        if self.failed() || !self.nodes[node].is_up() {
            return;
        }
        let now = self.local(node);
        self.trace.input(node, now, &input);
        if self.verbose() {
            self.log(|| format!("node {node} <- {}", describe_input(&input)));
        }
        let Some(running) = self.nodes[node].running.as_mut() else { return };
        let core = &mut running.core;
        let effects = match input {
            Input::Start => core.start(now),
            Input::Tick => core.tick(now),
            Input::Housekeeping => core.housekeeping(now),
            Input::Persisted => core.persisted(now),
            Input::Message { from, message, block } => {
                core.message(now, from, message, block.map(|block| *block))
            }
            Input::PeerConnected(peer) => core.peer_connected(peer),
            Input::PeerStatus { peer, height, hash, latency_ms } => {
                core.peer_status(now, peer, height, hash, latency_ms)
            }
            Input::PeerGone(peer) => core.peer_gone(peer),
            Input::Blocks { from, blocks } => core.blocks(now, from, blocks),
            Input::Mined(header) => core.mined(now, header),
            Input::Mining(on) => core.set_mining(now, on),
            Input::Txs(txs) => {
                let new = core.app_mut().admit(&txs);
                let ready = core.app().has_ready();
                let mut effects = core.pending(now, ready);
                if !new.is_empty() {
                    effects.push(Effect::Gossip { wire: Wire::Txs(new), except: None });
                }
                effects
            }
        };
        self.trace.effects(&effects);
        for effect in effects {
            if self.verbose() {
                self.log(|| format!("node {node} -> {}", describe_effect(&effect)));
            }
            self.carry_out(node, effect);
        }
        self.schedule_wake(node);
        self.raft_observe(node);
    }

    /// Carries out one effect, as the tokio shell does.
    fn carry_out(&mut self, node: usize, effect: Effect<()>) {
        match effect {
            Effect::Log { height, message, block } => {
                self.raft_logged(node, &message);
                self.nodes[node].disk.wal.push((height, message, block));
            }
            Effect::SaveState(state) => self.nodes[node].disk.engine_state = Some(state),
            Effect::Send { peer, wire } => {
                if let Some(to) = self.index_of(&peer) {
                    self.send_direct(node, to, Rc::new(wire));
                }
            }
            Effect::Gossip { wire, except } => {
                let except = except.and_then(|peer| self.index_of(&peer));
                match self.nodes[node].byzantine {
                    Some(behaviour) if except.is_none() => {
                        self.byzantine_gossip(node, behaviour, wire)
                    }
                    _ => self.gossip(node, Rc::new(wire), None, except),
                }
            }
            Effect::SendAll { wire } => {
                let wire = Rc::new(wire);
                let peers: Vec<usize> = self.nodes[node]
                    .running
                    .as_ref()
                    .map(|running| running.connected().collect())
                    .unwrap_or_default();
                for peer in peers {
                    self.send(node, peer, wire.clone(), None);
                }
            }
            // The network lowers the peer's score; a simulated peer is never banned.
            Effect::Report { .. } => {}
            Effect::Persist { blocks } => self.start_write(node, blocks, None),
            Effect::Switch { to, blocks } => self.start_write(node, blocks, Some(to)),
            Effect::Mine { header } => self.pow_mine(node, header),
            Effect::StopMining => self.pow_stop(node),
            Effect::Schedule(schedule) => {
                if let Some(running) = self.nodes[node].running.as_mut() {
                    running.schedule = schedule;
                }
            }
        }
    }

    /// A write (of `blocks`, replacing the chain above `switch` if that is given) that
    /// completes after a seeded delay, or is lost in a crash.
    fn start_write(&mut self, node: usize, blocks: Vec<(Arc<Block>, ())>, switch: Option<Height>) {
        let delay = self.rng.random_range(1..=self.s.max_write_ms);
        let state = &mut self.nodes[node];
        if let Some(running) = state.running.as_mut() {
            running.writing = Some(blocks.into_iter().map(|(block, ())| block).collect());
            running.switching = switch;
            let item = Item::Written { node, incarnation: state.incarnation };
            self.schedule(self.now + delay, item);
        }
    }

    /// Asks for a tick at the time the core wants one (each change replaces the last).
    fn schedule_wake(&mut self, node: usize) {
        let Some(running) = self.nodes[node].running.as_ref() else { return };
        let wake = running.core.wake();
        if wake == running.wake {
            return;
        }
        let at = wake.map(|at| self.virtual_time(node, at));
        let incarnation = self.nodes[node].incarnation;
        let Some(running) = self.nodes[node].running.as_mut() else { return };
        running.wake = wake;
        running.wake_token += 1;
        let token = running.wake_token;
        if let Some(at) = at {
            self.schedule(at, Item::Wake { node, incarnation, token });
        }
    }

    pub(super) fn woken(&mut self, node: usize, incarnation: u64, token: u64) {
        let current = self.nodes[node].incarnation == incarnation;
        let Some(running) = self.nodes[node].running.as_mut() else { return };
        if !current || running.wake_token != token {
            return;
        }
        running.wake = None;
        self.feed(node, Input::Tick);
    }

    /// Node `node`'s write is durable: the blocks go to its disk (checked), then the core hears.
    pub(super) fn written(&mut self, node: usize, incarnation: u64) {
        if self.nodes[node].incarnation != incarnation {
            return;
        }
        let Some(blocks) =
            self.nodes[node].running.as_mut().and_then(|running| running.writing.take())
        else {
            return;
        };
        let switch = self.nodes[node].running.as_mut().and_then(|running| running.switching.take());
        let switched = switch.is_some();
        if let Some(to) = switch {
            self.pow_unwind(node, to);
        }
        for block in &blocks {
            let parent = self.nodes[node].disk.chain.last().cloned();
            let Some(parent) = parent else { return };
            let valid = if self.pow.is_some() {
                self.pow_validity(&self.nodes[node].disk.chain, block)
            } else {
                self.checks.validity(&self.s, &parent, block)
            };
            let checked = valid
                .map_err(|problems| {
                    format!(
                        "validity: node {node} wrote {:?} at height {}: {problems}",
                        block.hash(),
                        block.header.height.0
                    )
                })
                .and_then(|()| self.checks.safety(node, block));
            if let Err(message) = checked {
                self.fail(message);
                return;
            }
            if let Some(change) =
                self.s.validator_change.as_ref().filter(|change| change.from == block.header.height)
            {
                self.coverage.hit(Kind::ValidatorChange);
                let keys = |set: &[primitives::Validator]| -> Vec<_> {
                    set.iter().map(|validator| validator.key).collect()
                };
                if keys(&change.validators) != keys(&self.s.config.validators) {
                    self.coverage.hit(Kind::MembershipChange);
                }
            }
            self.raft_wrote(node, &block.header);
            self.log(|| format!("node {node} wrote {} {:?}", block.header.height.0, block.hash()));
            self.nodes[node].disk.chain.push(block.clone());
        }
        self.pow_after_write(node, &blocks, switched);
        let head = self.nodes[node].height();
        let now = self.now;
        let state = &mut self.nodes[node];
        state.disk.wal.retain(|(height, ..)| height.0 > head);
        if let Some(running) = state.running.as_mut() {
            running.last_progress = now;
            running.resend.clear();
        }
        self.feed(node, Input::Persisted);
    }

    /// The node's periodic duties: the core's housekeeping, and every second the network's:
    /// its status to its peers, re-sending while stuck, and a replaying node's replays.
    pub(super) fn periodic(&mut self, node: usize, incarnation: u64) {
        if self.nodes[node].incarnation != incarnation || !self.nodes[node].is_up() {
            return;
        }
        self.feed(node, Input::Housekeeping);
        self.schedule(self.now + HOUSEKEEPING_MS, Item::Periodic { node, incarnation });
        let now = self.now;
        let Some(running) = self.nodes[node].running.as_mut() else { return };
        running.periods += 1;
        if running.periods % (PERIOD_MS / HOUSEKEEPING_MS) != 0 {
            return;
        }
        let head = running.core.head();
        let status = Rc::new(Wire::Status { height: head.height, hash: head.hash() });
        let peers: Vec<usize> = running.connected().collect();
        let resend = if now >= running.last_progress + PERIOD_MS {
            running.resend.clone()
        } else {
            Vec::new()
        };
        for &peer in &peers {
            self.send(node, peer, status.clone(), None);
        }
        for (id, wire) in resend {
            for &peer in &peers {
                self.send(node, peer, wire.clone(), Some(id));
            }
        }
        if self.nodes[node].byzantine.is_some_and(|behaviour| behaviour.replay) {
            self.replay(node);
        }
    }

    // ----- the network layer -----

    /// Sends to one connected peer (a message for a peer that is not connected is dropped,
    /// as `net` does).
    pub(super) fn send_direct(&mut self, from: usize, to: usize, wire: Rc<Wire>) {
        if self.nodes[from].is_connected(to) {
            self.send(from, to, wire, None);
        }
    }

    /// Gossips `wire` from `node` to its connected peers but `except` and those known to have
    /// it, marking it seen.
    pub(super) fn gossip(
        &mut self,
        node: usize,
        wire: Rc<Wire>,
        id: Option<Hash>,
        except: Option<usize>,
    ) {
        let id = id.unwrap_or_else(|| gossip_id(&wire));
        let Some(running) = self.nodes[node].running.as_mut() else { return };
        running.keep(id, &wire);
        let peers: Vec<usize> = running.connected().filter(|peer| Some(*peer) != except).collect();
        let targets: Vec<usize> =
            peers.into_iter().filter(|peer| running.mark_known(*peer, id)).collect();
        for peer in targets {
            self.send(node, peer, wire.clone(), Some(id));
        }
    }

    /// Something arrives at node `to`, and goes through what the p2p task does with it.
    pub(super) fn deliver(&mut self, to: usize, from: usize, wire: Rc<Wire>, gossip: Option<Hash>) {
        let Some(running) = self.nodes[to].running.as_mut() else { return };
        if let Some(id) = gossip {
            running.mark_known(from, id);
            if !running.seen.insert(id) {
                return;
            }
        }
        let peer = self.nodes[from].peer;
        match &*wire {
            Wire::Txs(txs) => self.feed(to, Input::Txs(txs.clone())),
            Wire::Consensus { message, block } => {
                if self.nodes[to].byzantine.is_some_and(|behaviour| behaviour.replay) {
                    self.record(to, &wire);
                }
                match self.relay_check(to, message) {
                    Verdict::Relay => {
                        self.gossip(to, wire.clone(), gossip, Some(from));
                        let block = block.clone();
                        self.feed(
                            to,
                            Input::Message { from: peer, message: message.clone(), block },
                        );
                    }
                    // The core passes it on itself once it has checked it (as p2p does).
                    Verdict::Deliver => {
                        let block = block.clone();
                        self.feed(
                            to,
                            Input::Message { from: peer, message: message.clone(), block },
                        );
                    }
                    Verdict::Drop => {}
                    Verdict::Invalid => {
                        self.log(|| {
                            format!("node {to}: invalid message from node {from}, not relayed")
                        });
                    }
                }
            }
            Wire::Status { height, hash } => {
                let latency_ms = self.latency[to][from];
                let (height, hash) = (*height, *hash);
                self.feed(to, Input::PeerStatus { peer, height, hash, latency_ms });
            }
            Wire::GetBlocks { from: first, count } => {
                let chain = &self.nodes[to].disk.chain;
                let start = usize::try_from(first.0).unwrap_or(usize::MAX).min(chain.len());
                let count = usize::try_from((*count).min(MAX_BLOCKS_PER_MESSAGE)).unwrap_or(0);
                let end = start.saturating_add(count).min(chain.len());
                if start < end {
                    let blocks = chain[start..end].iter().map(|block| (**block).clone()).collect();
                    self.send_direct(to, from, Rc::new(Wire::Blocks(blocks)));
                }
            }
            Wire::Blocks(blocks) => {
                if blocks.len() <= MAX_BLOCKS_PER_MESSAGE as usize {
                    self.feed(to, Input::Blocks { from: peer, blocks: blocks.clone() });
                }
            }
        }
    }

    /// The engine's relay check of a peer's message against node `node`'s published schedule.
    fn relay_check(&mut self, node: usize, message: &EngineMessage) -> Verdict {
        let Some(running) = self.nodes[node].running.as_ref() else { return Verdict::Drop };
        let schedule = running.schedule.clone();
        let key = (message.clone(), schedule.next_height);
        if let Some(verdict) = self.verdicts.get(&key) {
            return *verdict;
        }
        let rules = consensus::rules(self.s.config.engine);
        let verdict = rules.check_message(&self.s.config.chain_id, schedule.as_ref(), message);
        self.verdicts.insert(key, verdict);
        verdict
    }

    /// A replaying byzantine node remembers `wire`.
    pub(super) fn record(&mut self, node: usize, wire: &Rc<Wire>) {
        if let Some(running) = self.nodes[node].running.as_mut() {
            if running.recorded.len() == REPLAY_MEMORY {
                running.recorded.pop_front();
            }
            running.recorded.push_back(wire.clone());
        }
    }
}
