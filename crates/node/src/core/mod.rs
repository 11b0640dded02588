//! The node's decisions, as a pure state machine.
//!
//! [`Core`] is what a node decides, for any engine: when to build a block, which block a
//! peer's message carries and whether it is valid, what to do when the engine decides, which
//! blocks to ask peers for and whether those that come may be applied, what to log, send and
//! write, and in which order. It is driven by inputs (time, peers' messages, the end of a
//! write) and answers with [`Effect`]s for its shell to carry out. It does no I/O, reads no
//! clock, spawns nothing and never blocks: the tokio shell (`manager`) carries out the effects
//! in production, and the deterministic simulator (`testkit::sim`) drives the same code with
//! virtual time, so that the simulation exercises the node's real decisions.
//!
//! What blocks *contain* is the [`App`]'s business: it builds and executes them and keeps the
//! state (in production the ledger and the mempool, `app::LedgerApp`; in the simulator a
//! stand-in). What consensus *is* is the engine's: the core carries its messages without
//! knowing their shape, and asks the engine's [`consensus::Rules`] whether a header may be
//! proposed.
//!
//! Effects are carried out in order, and each before the next: in particular a message is
//! logged ([`Effect::Log`]) before it is sent, and a block is announced only once its write
//! ([`Effect::Persist`]) has finished and the shell has said so ([`Core::persisted`]).

mod forks;
mod proposals;
mod sync;

#[cfg(test)]
mod tests;

use crate::{p2p::PeerId, validators::ValidatorSchedule, wire::Wire};
use consensus::{Command, Engine, EngineMessage, EngineStatus, Event, HeaderError, Rules};
use net::Misbehaviour;
use primitives::{
    Block, BlockHash, ChainConfig, ConsensusProof, Header, Height, TimeScale, TimestampMs,
};
use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::Arc,
};

pub use proposals::MAX_CLOCK_DRIFT_MS;

/// Why a block cannot follow its parent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Its height is not the parent's + 1.
    #[error("height {height} does not follow {parent}")]
    Height {
        /// The block's height.
        height: Height,
        /// The parent's.
        parent: Height,
    },
    /// It names another parent.
    #[error("its parent is not block {0}")]
    Parent(Height),
    /// Its timestamp is not after the median of the recent blocks' (the parent's alone, for
    /// engines other than proof of work: see `consensus::Rules::time_window`).
    #[error("its timestamp is not after the median of the blocks before it")]
    Time,
    /// It has more transactions than a block may.
    #[error("{count} transactions, at most {max} allowed")]
    TooManyTransactions {
        /// How many it has.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// Its transaction root is not that of its transactions.
    #[error("the transactions do not match the header's root")]
    TxRoot,
    /// The engine's rules refuse its header.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A transaction's signature does not check out.
    #[error("transaction {index}: {reason}")]
    Signature {
        /// Its position in the block.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A transaction cannot be in a block (a wrong nonce, …).
    #[error("transaction {index} cannot be included: {reason}")]
    Inclusion {
        /// Its position in the block.
        index: usize,
        /// Why.
        reason: String,
    },
    /// Executing it gives another state root than its header says.
    #[error("state root {computed} after execution, the header says {claimed}")]
    StateRoot {
        /// What execution gave.
        computed: primitives::Hash,
        /// What the header says.
        claimed: primitives::Hash,
    },
    /// Its commit proof does not hold.
    #[error("its proof: {0}")]
    Proof(String),
}

/// What a block is made of and what it does: the part of a node that knows transactions and
/// state. The core calls it synchronously; it must not block for long.
pub trait App {
    /// A block executed and sealed with its proof, ready to be written.
    type Write: Send + 'static;

    /// Builds block `height` with `timestamp` on top of `parent` (the head) from waiting
    /// transactions, executes it and keeps it as the candidate, undoing any earlier one.
    fn build(&mut self, parent: &Header, height: Height, timestamp: TimestampMs) -> Option<Block>;

    /// Executes `block` on top of `parent` (the head, or the last block sealed since) and keeps
    /// it as the candidate, undoing any earlier one. The core has checked the header's
    /// structure; the app checks signatures, execution and the state root.
    fn execute(&mut self, parent: &Header, block: &Block) -> Result<(), BlockError>;

    /// The candidate: the block executed on the state and not yet sealed.
    fn candidate(&self) -> Option<&Block>;

    /// Undoes the candidate, if there is one.
    fn discard_candidate(&mut self);

    /// Seals the candidate with `proof` for writing; the state stays advanced by it.
    fn seal(&mut self, proof: ConsensusProof) -> Option<(Arc<Block>, Self::Write)>;

    /// Blocks were written: forget what they used (the mempool drops their transactions).
    fn committed(&mut self, blocks: &[Arc<Block>]);

    /// Whether transactions are waiting to go into a block.
    fn has_ready(&self) -> bool;

    /// Who validates the heights after `head` (the state's last block).
    fn validators(&self, head: Height) -> ValidatorSchedule;

    /// Whether `block` changes the validator set (whether or not that succeeds).
    fn changes_validators(&self, block: &Block) -> bool;

    /// The chain's configuration as it applies to `height` (the state's next height or a
    /// later one): with that height's validators.
    fn config_at(&self, height: Height) -> ChainConfig;

    /// (Engines with forks.) Undoes the blocks the state has applied above `to` (written, or
    /// sealed since), newest first, and returns them, newest first: the state is then at `to`.
    /// The candidate has been discarded. Fails, changing nothing, if `to` is deeper than the
    /// undo data kept reaches.
    fn rewind(&mut self, to: Height) -> Result<Vec<Arc<Block>>, String> {
        let _ = to;
        Err("this application keeps final blocks only".into())
    }

    /// (Engines with forks.) `blocks` (newest first) were undone for good: a switch to another
    /// branch is durable. Their transactions that the state has not executed since go back to
    /// the pool where they are still valid; returns those, for passing on to peers.
    fn reverted(&mut self, blocks: &[Arc<Block>]) -> Vec<primitives::SignedTransaction> {
        let _ = blocks;
        Vec::new()
    }
}

/// What the shell must do, in order.
#[derive(Debug)]
pub enum Effect<W> {
    /// Append this own message (and the block it names) durably to the write-ahead log
    /// before carrying out any later effect.
    Log {
        /// The height it is for.
        height: Height,
        /// The message.
        message: EngineMessage,
        /// The block that goes with it.
        block: Option<Arc<Block>>,
    },
    /// Keep the engine's state durably (replacing the one kept before), before any later
    /// effect.
    SaveState(Vec<u8>),
    /// Send to one peer.
    Send {
        /// The peer.
        peer: PeerId,
        /// The message.
        wire: Wire,
    },
    /// Gossip to every peer but `except`, once.
    Gossip {
        /// The message.
        wire: Wire,
        /// Who it came from.
        except: Option<PeerId>,
    },
    /// Send to every connected peer, even if an identical message went before.
    SendAll {
        /// The message.
        wire: Wire,
    },
    /// A peer sent something invalid.
    Report {
        /// The peer.
        peer: PeerId,
        /// What it did.
        misbehaviour: Misbehaviour,
    },
    /// Write these blocks, in one durable transaction; then call [`Core::persisted`]. Only one
    /// write is under way at a time.
    Persist {
        /// The blocks and what to write for each.
        blocks: Vec<(Arc<Block>, W)>,
    },
    /// Who validates the next heights changed: publish it for the other tasks.
    Schedule(Arc<ValidatorSchedule>),
    /// (Engines with forks.) Take the blocks above `to` off the store and write these on top,
    /// in one durable transaction; then call [`Core::persisted`]. The state is already on the
    /// new branch.
    Switch {
        /// The height that stays.
        to: Height,
        /// The new branch's blocks and what to write for each.
        blocks: Vec<(Arc<Block>, W)>,
    },
    /// Search for the proof that completes `header` (the block built on the head, its target
    /// set) on a worker, replacing any search under way; report a find with [`Core::mined`].
    Mine {
        /// The header to complete.
        header: Header,
    },
    /// Stop searching.
    StopMining,
}

/// What the core needs to know of the chain and the node.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// The chain's configuration at genesis (its engine, its limits).
    pub chain: ChainConfig,
    /// How chain time relates to wall time: network timeouts are wall durations.
    pub time: TimeScale,
}

/// A snapshot of the core, for status reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreStatus {
    /// The last durable block.
    pub head: Header,
    /// Whether it is downloading blocks it missed.
    pub syncing: bool,
    /// The highest head its peers report.
    pub best_peer_height: Option<Height>,
    /// What the engine says of its role, term and leader (nothing for engines without them).
    pub engine: EngineStatus,
    /// Whether its operator wants it to mine (engines with open block production).
    pub mining: bool,
    /// Blocks of other branches it keeps, and blocks waiting for their parent.
    pub side_blocks: usize,
    /// Blocks waiting for their parent.
    pub orphans: usize,
}

/// How often the core took its less common paths (for tests, the simulator's coverage and
/// debugging).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreCounters {
    /// Messages with a block held back because blocks were being written.
    pub held_during_write: u64,
    /// Messages with a block held back because the block is for a later height.
    pub held_for_later_height: u64,
    /// Messages with a block held back because its timestamp is ahead of this node's clock.
    pub held_for_clock: u64,
    /// Decisions for a block this node had not received (or could not execute) yet.
    pub decided_without_block: u64,
    /// Decisions that had to wait for a write to finish.
    pub decided_during_write: u64,
    /// Blocks downloaded from peers and applied.
    pub blocks_synced: u64,
    /// Downloaded batches cut short at a block that changes the validator set.
    pub sync_cut_at_validator_change: u64,
    /// Peers whose claimed height was left out for a while: asked for blocks, they sent none
    /// that checked out.
    pub peers_doubted: u64,
    /// Proposed blocks found invalid.
    pub invalid_blocks: u64,
    /// Switches to another branch that undid at least one block.
    pub reorgs: u64,
    /// Blocks undone by those switches.
    pub blocks_reverted: u64,
    /// Blocks that arrived before their parent.
    pub orphans: u64,
    /// Peers asked again from the lowest height a branch may fork off at.
    pub fork_searches: u64,
    /// Blocks this node mined that were still on its head when found.
    pub blocks_mined: u64,
}

/// What the core knows of a peer.
#[derive(Clone, Copy, Debug)]
struct PeerView {
    height: Height,
    latency_ms: u64,
}

/// Most proposed blocks kept for the next height.
const MAX_CANDIDATES: usize = 32;

/// The node's decisions.
pub struct Core<A: App> {
    app: A,
    engine: Box<dyn Engine + Send>,
    rules: &'static dyn Rules,
    config: CoreConfig,
    /// The last durable block.
    head: Header,
    /// The schedule last published, and the one the engine was last told of.
    schedule: Arc<ValidatorSchedule>,
    told_engine: Arc<ValidatorSchedule>,
    /// When the engine asked to be woken.
    engine_wake: Option<TimestampMs>,
    /// Whether the engine has been told that transactions are ready.
    ready: bool,
    /// Blocks proposed for `head + 1`, by hash.
    candidates: BTreeMap<BlockHash, Arc<Block>>,
    /// Proposed blocks for `head + 1` found invalid.
    invalid: HashSet<BlockHash>,
    /// Messages whose blocks are for a later height, or are ahead of this node's clock, or
    /// came while blocks were being written: held until they can be checked.
    held: Vec<proposals::Held>,
    /// A block the engine decided whose body has not arrived (or not been executed) yet.
    decided: Option<(Height, BlockHash, ConsensusProof)>,
    peers: BTreeMap<PeerId, PeerView>,
    sync: sync::SyncState,
    /// The blocks being written, if any.
    writing: Option<Vec<Arc<Block>>>,
    /// Blocks from peers that arrived while others were being written.
    received: Vec<(PeerId, Vec<Block>)>,
    /// This node's own messages for `head + 1`, as logged: repeated to a peer that connects.
    own: Vec<(EngineMessage, Option<Arc<Block>>)>,
    counters: CoreCounters,
    effects: Vec<Effect<A::Write>>,
    /// For engines with forks: the blocks of every branch within the reorg depth.
    forks: Option<forks::Forks>,
    /// Whether the operator wants this node to mine.
    mining: bool,
}

impl<A: App> Core<A> {
    /// A core resuming after `head` (durable), with `app` at `head`'s state and `engine` made
    /// for the height after it. `own` are the messages the node logged for that height before
    /// a restart, with their blocks (candidates again).
    pub fn new(
        config: CoreConfig,
        app: A,
        engine: Box<dyn Engine + Send>,
        head: Header,
        own: Vec<(EngineMessage, Option<Block>)>,
    ) -> Core<A> {
        let schedule = Arc::new(app.validators(head.height));
        let own: Vec<(EngineMessage, Option<Arc<Block>>)> =
            own.into_iter().map(|(message, block)| (message, block.map(Arc::new))).collect();
        let candidates = own
            .iter()
            .filter_map(|(_, block)| block.clone())
            .map(|block| (block.hash(), block))
            .collect();
        let rules = consensus::rules(config.chain.engine);
        let depth = rules.reorg_depth(&config.chain);
        let window = rules.time_window();
        let forks = (depth > 0).then(|| forks::Forks::new(depth, window, &head));
        Core {
            rules,
            forks,
            mining: false,
            app,
            engine,
            config,
            head,
            // The engine starts with the set of the next height; told of later ones when the
            // core starts.
            told_engine: Arc::new(ValidatorSchedule { upcoming: None, ..(*schedule).clone() }),
            schedule,
            engine_wake: None,
            ready: false,
            candidates,
            invalid: HashSet::new(),
            held: Vec::new(),
            decided: None,
            peers: BTreeMap::new(),
            sync: sync::SyncState::default(),
            writing: None,
            received: Vec::new(),
            own,
            counters: CoreCounters::default(),
            effects: Vec::new(),
        }
    }

    /// For engines with forks: the newest headers of the durable chain, oldest first, ending
    /// with the head (as many as the reorg depth allows to undo, and the one below). Without
    /// them the node can only switch to branches that fork off at its head.
    pub fn with_chain(mut self, headers: Vec<Header>) -> Core<A> {
        if let Some(forks) = self.forks.as_mut()
            && headers.last().is_some_and(|last| last.hash() == self.head.hash())
        {
            let depth = self.rules.reorg_depth(&self.config.chain);
            *forks = forks::Forks::new(depth, self.rules.time_window(), &self.head);
            forks.extend_main(headers);
        }
        self
    }

    /// Whether the chain's engine has forks (proof of work).
    pub fn has_forks(&self) -> bool {
        self.forks.is_some()
    }

    /// Turns mining on or off (for engines with open block production; others ignore it).
    pub fn set_mining(&mut self, now: TimestampMs, on: bool) -> Vec<Effect<A::Write>> {
        self.mining = on;
        self.drive(now, Event::Mining { on });
        self.take()
    }

    /// The miner found the proof for the header it was given ([`Effect::Mine`]).
    pub fn mined(&mut self, now: TimestampMs, header: Header) -> Vec<Effect<A::Write>> {
        if self.forks.is_some() {
            self.fork_mined(now, header);
        }
        self.take()
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, to change (admitting transactions). Tell the core with
    /// [`Core::pending`] when transactions became ready.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// The last durable block.
    pub fn head(&self) -> &Header {
        &self.head
    }

    /// Whether blocks are being written.
    pub fn is_writing(&self) -> bool {
        self.writing.is_some()
    }

    /// Who validates the next heights.
    pub fn schedule(&self) -> &Arc<ValidatorSchedule> {
        &self.schedule
    }

    /// How often the less common paths were taken.
    pub fn counters(&self) -> CoreCounters {
        self.counters
    }

    /// Where the node stands.
    pub fn status(&self) -> CoreStatus {
        let (side_blocks, orphans) = self.fork_counts();
        CoreStatus {
            head: self.head.clone(),
            syncing: self.sync.behind,
            best_peer_height: self.peers.values().map(|peer| peer.height).max(),
            engine: self.engine.status(),
            mining: self.mining,
            side_blocks,
            orphans,
        }
    }

    /// What the engine says of its role, term and leader.
    pub fn engine_status(&self) -> EngineStatus {
        self.engine.status()
    }

    /// When the core wants to be woken with [`Core::tick`] (chain time).
    pub fn wake(&self) -> Option<TimestampMs> {
        let held = match (self.held_release(), self.future_release()) {
            (Some(held), Some(future)) => Some(held.min(future)),
            (held, future) => held.or(future),
        };
        match (self.engine_wake, held) {
            (Some(engine), Some(held)) => Some(engine.min(held)),
            (engine, held) => engine.or(held),
        }
    }

    /// Starts: publishes the schedule, tells the engine of later validator sets, and lets it
    /// run.
    pub fn start(&mut self, now: TimestampMs) -> Vec<Effect<A::Write>> {
        self.effects.push(Effect::Schedule(self.schedule.clone()));
        self.tell_validators(now);
        self.drive(now, Event::Tick);
        self.take()
    }

    /// Time passed (the wake-up asked for came).
    pub fn tick(&mut self, now: TimestampMs) -> Vec<Effect<A::Write>> {
        if self.engine_wake.is_some_and(|at| at <= now) {
            self.engine_wake = None;
            self.drive(now, Event::Tick);
        }
        if self.forks.is_some() {
            self.release_future(now);
        } else {
            self.release_held(now);
        }
        self.take()
    }

    /// Transactions were admitted: whether any is ready for a block.
    pub fn pending(&mut self, now: TimestampMs, ready: bool) -> Vec<Effect<A::Write>> {
        if ready && !self.ready {
            self.ready = true;
            self.drive(now, Event::PendingChanged { ready: 1 });
        }
        self.take()
    }

    /// The blocks of the last [`Effect::Persist`] are durable.
    pub fn persisted(&mut self, now: TimestampMs) -> Vec<Effect<A::Write>> {
        let Some(blocks) = self.writing.take() else { return self.take() };
        self.app.committed(&blocks);
        let Some(last) = blocks.last() else { return self.take() };
        self.head = last.header.clone();
        if self.forks.is_some() {
            self.fork_persisted(&blocks);
        }
        self.candidates.clear();
        self.invalid.clear();
        self.own.clear();
        if self.decided.as_ref().is_some_and(|(height, ..)| *height <= self.head.height) {
            self.decided = None;
        }
        self.effects.push(Effect::SendAll {
            wire: Wire::Status { height: self.head.height, hash: self.head.hash() },
        });
        self.schedule = Arc::new(self.app.validators(self.head.height));
        self.effects.push(Effect::Schedule(self.schedule.clone()));
        self.tell_validators(now);
        // Whether it has caught up, before the engine starts the next height: an engine told
        // only later would take that height's first steps (a proposal held for it comes at
        // once) without signing, and not sign them again.
        self.update_behind(now);
        self.drive(now, Event::Committed { header: self.head.clone() });
        let ready = self.app.has_ready();
        if ready != self.ready || ready {
            self.ready = ready;
            self.drive(now, Event::PendingChanged { ready: usize::from(ready) });
        }
        if self.writing.is_none() {
            if self.forks.is_some() {
                self.fork_resume(now);
            } else {
                self.resume_after_write(now);
            }
        }
        self.take()
    }

    fn take(&mut self) -> Vec<Effect<A::Write>> {
        std::mem::take(&mut self.effects)
    }

    /// Tells the engine of any change of the validator schedule (before it hears of the
    /// commit, so that it starts the next height with the right set).
    fn tell_validators(&mut self, now: TimestampMs) {
        let schedule = self.schedule.clone();
        let told = &self.told_engine;
        if (&told.current, &told.upcoming) == (&schedule.current, &schedule.upcoming) {
            return;
        }
        self.drive(
            now,
            Event::Validators { from: schedule.next_height, validators: schedule.current.clone() },
        );
        if let Some(change) = &schedule.upcoming {
            self.drive(
                now,
                Event::Validators { from: change.from, validators: change.validators.clone() },
            );
        }
        self.told_engine = schedule;
    }

    /// Feeds an event to the engine and carries out its commands, including those that follow
    /// from them.
    fn drive(&mut self, now: TimestampMs, event: Event) {
        let mut commands: VecDeque<Command> = self.engine.handle(now, event).into();
        while let Some(command) = commands.pop_front() {
            match command {
                Command::WakeAt { at } => self.engine_wake = Some(at),
                Command::BuildBlock { height, timestamp } => {
                    if let Some(header) = self.build(height, timestamp) {
                        commands.extend(self.engine.handle(now, Event::BlockBuilt { header }));
                    }
                }
                Command::Extend { hash, proof } if self.forks.is_some() => {
                    self.fork_extend(now, hash, proof)
                }
                Command::Commit { hash, proof } | Command::Extend { hash, proof } => {
                    self.commit_decided(now, hash, proof)
                }
                Command::SwitchBranch { to, blocks } if self.forks.is_some() => {
                    self.fork_switch(now, to, blocks)
                }
                // Engines whose blocks are final never ask for these.
                Command::SwitchBranch { to, .. } => {
                    tracing::error!(
                        to = to.0,
                        "the engine asked to switch branches, but its blocks are final"
                    )
                }
                Command::Finalize { .. } => {
                    if self.forks.is_some() {
                        self.fork_finalize();
                    }
                }
                Command::Mine { header } => self.effects.push(Effect::Mine { header }),
                Command::StopMining => self.effects.push(Effect::StopMining),
                // An engine with forks signs nothing that must not be signed twice: its
                // announcements are not logged, only sent.
                Command::Broadcast { message, block } if self.forks.is_some() => {
                    let block = block.and_then(|hash| self.block_named(&hash));
                    let wire = Wire::Consensus {
                        message,
                        block: block.map(|block| Box::new((*block).clone())),
                    };
                    self.effects.push(Effect::Gossip { wire, except: None });
                }
                Command::Broadcast { message, block } => {
                    let block = block.and_then(|hash| self.block_named(&hash));
                    let height = self.head.height.next().unwrap_or(self.head.height);
                    self.own.push((message.clone(), block.clone()));
                    self.effects.push(Effect::Log {
                        height,
                        message: message.clone(),
                        block: block.clone(),
                    });
                    let wire = Wire::Consensus {
                        message,
                        block: block.map(|block| Box::new((*block).clone())),
                    };
                    self.effects.push(Effect::Gossip { wire, except: None });
                }
                // Logged only: not repeated to peers that connect, as it is not this node's.
                Command::Log { message, block } => {
                    let block = block.and_then(|hash| self.block_named(&hash));
                    let height = self.head.height.next().unwrap_or(self.head.height);
                    self.effects.push(Effect::Log { height, message, block });
                }
                Command::Send { to, message, block } => {
                    let block = block.and_then(|hash| self.block_named(&hash));
                    let wire = Wire::Consensus {
                        message,
                        block: block.map(|block| Box::new((*block).clone())),
                    };
                    self.effects.push(Effect::Send { peer: to, wire });
                }
                Command::SaveState(state) => self.effects.push(Effect::SaveState(state)),
            }
        }
    }

    /// Builds block `height` from waiting transactions.
    fn build(&mut self, height: Height, timestamp: TimestampMs) -> Option<Header> {
        if self.writing.is_some() || self.head.height.next() != Some(height) {
            return None;
        }
        // Later than the median of the recent blocks, whatever this node's clock says.
        let head = self.head.clone();
        let timestamp = match consensus::pow::median_time_past(&self.recent_timestamps(&head)) {
            Some(median) if timestamp <= median => TimestampMs(median.0.saturating_add(1)),
            _ => timestamp,
        };
        let block = self.app.build(&head, height, timestamp)?;
        Some(block.header)
    }

    /// The timestamps of `parent` and the blocks before it that a block on it is checked
    /// against (the engine's `time_window`), newest first.
    fn recent_timestamps(&self, parent: &Header) -> Vec<TimestampMs> {
        match &self.forks {
            Some(forks) if self.rules.time_window() > 1 => forks.recent_timestamps(parent),
            _ => vec![parent.timestamp],
        }
    }

    /// Whether a block stamped `timestamp` may follow `parent`: later than the median of the
    /// recent blocks (the parent alone, for engines without forks).
    fn after_median(&self, parent: &Header, timestamp: TimestampMs) -> bool {
        consensus::pow::after_median(&self.recent_timestamps(parent), timestamp)
    }

    /// The block with this hash, if this node has it for the next height (or, on a chain with
    /// forks, is writing it, sealed).
    fn block_named(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        if self.forks.is_some()
            && let Some(block) = self.writing.iter().flatten().find(|block| block.hash() == *hash)
        {
            return Some(block.clone());
        }
        if let Some(block) = self.app.candidate().filter(|block| block.hash() == *hash) {
            return Some(Arc::new(block.clone()));
        }
        self.candidates.get(hash).cloned().or_else(|| self.fork_block(hash))
    }

    /// The engine decided `hash` for the next height: seal it with `proof` and write it. The
    /// block may still have to be executed, or even to arrive.
    fn commit_decided(&mut self, now: TimestampMs, hash: BlockHash, proof: ConsensusProof) {
        let Some(height) = self.head.height.next() else { return };
        if self.writing.is_some() {
            self.counters.decided_during_write += 1;
            self.decided = Some((height, hash, proof));
            return;
        }
        let executed = self.app.candidate().is_some_and(|block| block.hash() == hash);
        if !executed {
            let Some(block) = self.candidates.get(&hash).cloned() else {
                self.counters.decided_without_block += 1;
                self.decided = Some((height, hash, proof));
                self.request_decided(now);
                return;
            };
            if self.execute_candidate(&block).is_err() {
                // More than two thirds of the voting power accepted it: our state disagrees
                // with theirs. Follow the network through sync rather than fork.
                self.decided = Some((height, hash, proof));
                return;
            }
        }
        self.decided = None;
        if let Some(sealed) = self.app.seal(proof) {
            self.persist(vec![sealed]);
        }
    }

    /// Starts writing sealed blocks in one store transaction.
    fn persist(&mut self, blocks: Vec<(Arc<Block>, A::Write)>) {
        self.writing = Some(blocks.iter().map(|(block, _)| block.clone()).collect());
        self.effects.push(Effect::Persist { blocks });
    }

    /// Executes `block`, meant to be the next one, on top of the state (discarding any other
    /// executed block) after checking that it may follow the head.
    fn execute_candidate(&mut self, block: &Block) -> Result<(), BlockError> {
        let head = self.head.clone();
        self.check_successor(&head, block)?;
        self.app.execute(&head, block)
    }

    /// The checks that need no execution: height, parent, time, size, transaction root, and
    /// the engine's rules for its header.
    fn check_successor(&self, parent: &Header, block: &Block) -> Result<(), BlockError> {
        let header = &block.header;
        if parent.height.next() != Some(header.height) {
            return Err(BlockError::Height { height: header.height, parent: parent.height });
        }
        if header.parent != parent.hash() {
            return Err(BlockError::Parent(parent.height));
        }
        if !self.after_median(parent, header.timestamp) {
            return Err(BlockError::Time);
        }
        let max = usize::try_from(self.config.chain.params.max_block_txs).unwrap_or(usize::MAX);
        if block.txs.len() > max {
            return Err(BlockError::TooManyTransactions { count: block.txs.len(), max });
        }
        let config = self.app.config_at(header.height);
        self.rules.check_header(&config.validators, header)?;
        self.rules.check_successor(&config, parent, header)?;
        if Block::tx_root(&block.txs) != header.tx_root {
            return Err(BlockError::TxRoot);
        }
        Ok(())
    }

    /// After a write: messages held back, a decision whose write had to wait, blocks from peers
    /// that arrived meanwhile, catching up.
    fn resume_after_write(&mut self, now: TimestampMs) {
        self.release_held(now);
        if self.writing.is_none()
            && let Some((height, hash, proof)) = self.decided.take()
            && Some(height) == self.head.height.next()
        {
            self.commit_decided(now, hash, proof);
        }
        if self.writing.is_none() {
            let received = std::mem::take(&mut self.received);
            for (from, blocks) in received {
                if self.writing.is_some() {
                    break;
                }
                self.on_blocks(now, from, blocks);
            }
        }
        if self.writing.is_none() {
            self.maybe_sync(now);
        }
    }
}
