//! Proof of work: open mining, an absolutely scheduled difficulty (ASERT), the chain with the
//! most work as the head, reorganisations up to a maximum depth.
//!
//! - **Blocks.** A header's proof is `ConsensusProof::Pow { target, nonce }`; the proof hash is
//!   SHA-256 over the whole header (`primitives::pow`). Anyone whose node has a key may mine:
//!   the key's address is the header's proposer and collects the block reward and the fees.
//! - **Difficulty** ([`next_target`]): the target of a block is the first block's target times
//!   `2^((t_parent − start − T·h_parent) / (T·H))`, where `t_parent` and `h_parent` are the
//!   parent's timestamp and height, `start` the genesis time, `T` the target block time and `H`
//!   the half-life in blocks: a chain ahead of its schedule gets harder, one behind it easier,
//!   doubling or halving per `H` block times of lead or lag. The power of two is computed in
//!   integers, a whole-number shift and a cubic for the fraction (see `docs/design/consensus.md`).
//! - **Fork choice.** The engine keeps the headers of every block the node stored within the
//!   reorg depth, with their cumulative work. The head is the tip with the most work; on equal
//!   work the one seen first stays. A tip on another branch is reached with
//!   [`Command::SwitchBranch`] from the highest block the two branches share, if that block is
//!   at most `max_reorg_depth` blocks below the head; anything deeper is final, and a branch
//!   that forks off below it is never taken. A block found invalid when the node executes it
//!   ([`Event::Invalid`]) is struck off with everything built on it.
//! - **Mining.** While mining is on, the node has a key and is not catching up, the engine
//!   asks the node to build a block on the head, sets its target and hands it to the node's
//!   miner ([`Command::Mine`]); a new head, or transactions waiting while the template is
//!   older than [`REFRESH_MS`], gives a new template. A found block ([`Event::Mined`]) is
//!   appended and then broadcast with its header as the message (in that order: the node
//!   sends the block as sealed, proof included).
//!
//! The engine's message ([`announce`]) is the block's header: the node's relay check
//! (`PowRules`) verifies the work before anything else looks at the block.

use crate::{
    engine::{Command, Engine, EngineMessage, Event, Restored},
    rules::{HeaderError, Rules, ValidatorView, Verdict},
};
use primitives::{
    Address, BlockHash, ChainConfig, ChainId, ConsensusProof, EngineKind, Header, Height,
    PowParams, SecretKey, Target, TimeScale, TimestampMs, Validator, pow::proof_hash,
};
use std::collections::{HashMap, HashSet};

/// How old a mining template may get, in wall time, before transactions that are waiting make
/// the engine build a new one (scaled to chain time when the engine is made).
pub const REFRESH_MS: u64 = 1_000;

/// How many of the newest blocks a proof-of-work block's timestamp is checked against: it must
/// be later than the median of their timestamps (the parent's and the ten before it; fewer near
/// genesis). See `docs/design/consensus.md` for the choice.
pub const MEDIAN_TIME_BLOCKS: usize = 11;

/// The median of `recent` timestamps (the newest blocks, in any order): the middle one, or of
/// an even count the later of the two middle ones; `None` if there are none. A block on top of
/// these must be stamped later than this.
pub fn median_time_past(recent: &[TimestampMs]) -> Option<TimestampMs> {
    let mut sorted = recent.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

/// Whether a block stamped `timestamp` may follow the blocks stamped `recent` (the newest,
/// ending with its parent): later than their median. Nothing to be later than before genesis.
pub fn after_median(recent: &[TimestampMs], timestamp: TimestampMs) -> bool {
    median_time_past(recent).is_none_or(|median| timestamp > median)
}

/// The message that announces a block: its header.
pub fn announce(header: &Header) -> EngineMessage {
    EngineMessage(primitives::encode(header))
}

/// The header an announcement carries; `None` if it is not one.
pub fn decode(message: &EngineMessage) -> Option<Header> {
    primitives::decode(&message.0).ok()
}

/// Whether `header` carries a proof of work that meets its target (and a target within the
/// bounds).
pub fn meets_target(header: &Header) -> bool {
    match header.proof {
        ConsensusProof::Pow { target, nonce } => {
            target == target.clamped()
                && target.is_met_by(&proof_hash(&header.hash(), target, nonce))
        }
        _ => false,
    }
}

/// The target of the block after `parent` (see the module documentation).
pub fn next_target(params: &PowParams, parent: &Header) -> Target {
    let spacing = i128::from(params.target_block_ms.max(1));
    let elapsed = i128::from(parent.timestamp.0) - i128::from(params.schedule_start.0);
    let scheduled = spacing.saturating_mul(i128::from(parent.height.0));
    let half_life = spacing.saturating_mul(i128::from(params.half_life_blocks.max(1)));
    // The exponent in half-lives, with 16 fractional bits, rounded towards minus infinity.
    let exponent = (elapsed - scheduled).saturating_mul(1 << 16).div_euclid(half_life);
    let shifts = exponent >> 16;
    let fraction = u128::try_from(exponent & 0xffff).unwrap_or(0);
    // 2^(fraction / 2^16) · 2^16 within 0.013 %, by the cubic of the aserti3-2d specification
    // (the difficulty rule of Bitcoin Cash since November 2020).
    let factor = 65_536
        + ((195_766_423_245_049 * fraction
            + 971_821_376 * fraction * fraction
            + 5_127 * fraction * fraction * fraction
            + (1 << 47))
            >> 48);
    let initial = params.initial_target().0;
    let scaled =
        if initial < 1 << 110 { (initial * factor) >> 16 } else { (initial >> 16) * factor };
    let target = match shifts {
        shifts if shifts >= 0 => {
            let shifts = u32::try_from(shifts).unwrap_or(u32::MAX);
            if shifts >= scaled.leading_zeros() { u128::MAX } else { scaled << shifts }
        }
        shifts => {
            let shifts = u32::try_from(-shifts).unwrap_or(u32::MAX);
            if shifts >= 128 { 0 } else { scaled >> shifts }
        }
    };
    Target(target).clamped()
}

/// The proof-of-work parameters of `config`, if it is a proof-of-work chain.
pub fn params(config: &ChainConfig) -> Option<PowParams> {
    match config.engine {
        EngineKind::Pow(params) => Some(params),
        EngineKind::Solo | EngineKind::Bft | EngineKind::Raft => None,
    }
}

/// What a proof-of-work node accepts, without running an engine.
pub(crate) struct PowRules;

impl Rules for PowRules {
    /// An announcement is worth giving to the node if its header's work meets its target; the
    /// node passes it on once it has checked the target against the parent.
    fn check_message(
        &self,
        _: &ChainId,
        _: &dyn ValidatorView,
        message: &EngineMessage,
    ) -> Verdict {
        match decode(message) {
            Some(header) if meets_target(&header) => Verdict::Deliver,
            _ => Verdict::Invalid,
        }
    }

    /// Anyone may mine: the header needs a proof of work that meets its target.
    fn check_header(&self, _: &[Validator], header: &Header) -> Result<(), HeaderError> {
        match header.proof {
            ConsensusProof::Pow { .. } if meets_target(header) => Ok(()),
            ConsensusProof::Pow { .. } => Err(HeaderError::InsufficientWork),
            _ => Err(HeaderError::WrongProof),
        }
    }

    fn check_successor(
        &self,
        config: &ChainConfig,
        parent: &Header,
        header: &Header,
    ) -> Result<(), HeaderError> {
        let (Some(params), ConsensusProof::Pow { target, .. }) = (params(config), &header.proof)
        else {
            return Err(HeaderError::WrongProof);
        };
        let expected = next_target(&params, parent);
        if *target == expected {
            Ok(())
        } else {
            Err(HeaderError::WrongTarget { expected, got: *target })
        }
    }

    fn reorg_depth(&self, config: &ChainConfig) -> u64 {
        params(config).map_or(0, |params| u64::from(params.max_reorg_depth))
    }

    /// The median of the last [`MEDIAN_TIME_BLOCKS`]: a miner's clock that runs ahead does not
    /// drag the timestamps of every later block with it, as a rule against the parent alone
    /// would.
    fn time_window(&self) -> usize {
        MEDIAN_TIME_BLOCKS
    }
}

/// A header the engine knows, with the work of its branch.
#[derive(Clone, Debug)]
struct Known {
    header: Header,
    /// Work from the oldest block the engine knows to this one, inclusive.
    work: u128,
    /// Order of arrival: the first seen of two tips with equal work stays.
    seen: u64,
    /// Found invalid, or built on a block that was.
    invalid: bool,
}

/// The block being built or mined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Template {
    /// Nothing asked for.
    None,
    /// Asked the node to build on `parent` at `at`.
    Building { parent: BlockHash, at: TimestampMs },
    /// Mining a block on `parent` built at `at`.
    Mining { parent: BlockHash, at: TimestampMs },
}

/// The proof-of-work engine.
#[derive(Debug)]
pub struct PowEngine {
    params: PowParams,
    /// The address that collects what this node mines, if it has a key.
    miner: Option<Address>,
    /// Whether the operator wants this node to mine.
    mining: bool,
    syncing: bool,
    ready: bool,
    /// How old a template may get while transactions wait (chain time).
    refresh: u64,
    known: HashMap<BlockHash, Known>,
    /// The highest height told final: it never goes down, also when a heavier branch with
    /// fewer blocks lowers the head.
    floor: Height,
    head: BlockHash,
    next_seen: u64,
    /// The tip asked for (appended or switched to) and not yet committed.
    in_flight: Option<BlockHash>,
    template: Template,
    wake: Option<TimestampMs>,
}

impl PowEngine {
    /// An engine resuming at the last of `restored.chain` (or `head` alone, if that is empty).
    /// With `key` it mines when `mining` is on; `time` scales [`REFRESH_MS`] to chain time.
    pub fn new(
        params: PowParams,
        key: Option<&SecretKey>,
        head: &Header,
        restored: &Restored,
        mining: bool,
        time: &TimeScale,
    ) -> PowEngine {
        let mut engine = PowEngine {
            params,
            miner: key.map(|key| Address(key.public_key())),
            mining,
            syncing: false,
            ready: false,
            refresh: time.chain_span(REFRESH_MS),
            known: HashMap::new(),
            floor: Height(0),
            head: head.hash(),
            next_seen: 0,
            in_flight: None,
            template: Template::None,
            wake: None,
        };
        let chain = if restored.chain.last().is_some_and(|last| last.hash() == head.hash()) {
            restored.chain.clone()
        } else {
            vec![head.clone()]
        };
        for header in chain {
            engine.insert(header);
        }
        engine.prune();
        engine
    }

    /// The head: the tip with the most work the node has appended.
    pub fn head(&self) -> Option<&Header> {
        self.known.get(&self.head).map(|known| &known.header)
    }

    /// Whether this engine mines now.
    pub fn is_mining(&self) -> bool {
        self.mining && self.miner.is_some() && !self.syncing
    }

    /// The target of the next block on the head.
    pub fn next_target(&self) -> Option<Target> {
        self.head().map(|head| next_target(&self.params, head))
    }

    /// Adds a header whose parent is known (or the first one); returns whether it is new.
    fn insert(&mut self, header: Header) -> bool {
        let hash = header.hash();
        if self.known.contains_key(&hash) {
            return false;
        }
        let work = block_work(&header);
        let (work, invalid) = match self.known.get(&header.parent) {
            Some(parent) => (parent.work.saturating_add(work), parent.invalid),
            None if self.known.is_empty() => (work, false),
            None => return false,
        };
        let seen = self.next_seen;
        self.next_seen += 1;
        self.known.insert(hash, Known { header, work, seen, invalid });
        true
    }

    /// Whether `header` is a valid child of a block the engine knows.
    fn checks_out(&self, header: &Header) -> bool {
        let Some(parent) = self.known.get(&header.parent) else { return false };
        let target_ok = matches!(header.proof, ConsensusProof::Pow { target, .. }
            if target == next_target(&self.params, &parent.header));
        parent.header.height.next() == Some(header.height) && target_ok && meets_target(header)
    }

    /// The hashes of the head's chain the engine knows, by hash.
    fn main_chain(&self) -> HashSet<BlockHash> {
        let mut main = HashSet::new();
        let mut cursor = Some(self.head);
        while let Some(hash) = cursor {
            let Some(known) = self.known.get(&hash) else { break };
            main.insert(hash);
            cursor = Some(known.header.parent);
        }
        main
    }

    /// The valid tip with the most work (the first seen among equals).
    fn best_tip(&self) -> Option<BlockHash> {
        self.known
            .iter()
            .filter(|(_, known)| !known.invalid)
            .max_by(|(_, a), (_, b)| a.work.cmp(&b.work).then(b.seen.cmp(&a.seen)))
            .map(|(hash, _)| *hash)
    }

    /// Moves the node to the best tip, if that is not the head and nothing is in flight.
    fn choose(&mut self) -> Vec<Command> {
        if self.in_flight.is_some() {
            return vec![];
        }
        let Some(best) = self.best_tip() else { return vec![] };
        if best == self.head {
            return vec![];
        }
        let main = self.main_chain();
        let mut path = Vec::new();
        let mut cursor = best;
        while !main.contains(&cursor) {
            let Some(known) = self.known.get(&cursor) else { return vec![] };
            path.push(known.header.clone());
            cursor = known.header.parent;
        }
        path.reverse();
        let (Some(fork), Some(head)) = (self.known.get(&cursor), self.head()) else {
            return vec![];
        };
        let fork_height = fork.header.height;
        let undone = head.height.0.saturating_sub(fork_height.0);
        if undone > u64::from(self.params.max_reorg_depth) {
            // Pruning keeps only branches within the depth; this is a safeguard.
            return vec![];
        }
        self.in_flight = Some(best);
        let blocks: Vec<(BlockHash, ConsensusProof)> =
            path.iter().map(|header| (header.hash(), header.proof.clone())).collect();
        match blocks.as_slice() {
            [(hash, proof)] if undone == 0 => {
                vec![Command::Extend { hash: *hash, proof: proof.clone() }]
            }
            _ => vec![Command::SwitchBranch { to: fork_height, blocks }],
        }
    }

    /// Marks `hash` and everything built on it invalid.
    fn strike(&mut self, hash: BlockHash) {
        let mut bad: HashSet<BlockHash> = HashSet::from([hash]);
        // Children come after their parents in arrival order.
        let mut order: Vec<(u64, BlockHash)> =
            self.known.iter().map(|(hash, known)| (known.seen, *hash)).collect();
        order.sort();
        for (_, candidate) in order {
            let Some(known) = self.known.get_mut(&candidate) else { continue };
            if bad.contains(&candidate) || bad.contains(&known.header.parent) {
                known.invalid = true;
                bad.insert(candidate);
            }
        }
        if self.in_flight.is_some_and(|tip| bad.contains(&tip)) {
            self.in_flight = None;
        }
    }

    /// Forgets blocks more than the reorg depth below the head, and branches that fork off
    /// below that; returns the new lowest final height. The floor stays where it was if the
    /// head went down (a heavier branch with fewer blocks): the blocks below it are gone, and
    /// a lower floor would take the oldest kept block for one whose branch forks off below it.
    fn prune(&mut self) -> Option<Height> {
        let head_height = self.head()?.height;
        let floor = Height(head_height.0.saturating_sub(u64::from(self.params.max_reorg_depth)))
            .max(self.floor);
        self.floor = floor;
        let main = self.main_chain();
        let before = self.known.len();
        self.known.retain(|hash, known| {
            known.header.height > floor || (known.header.height == floor && main.contains(hash))
        });
        // Blocks whose parent went: their branch forks off below the floor.
        loop {
            let orphaned: Vec<BlockHash> = self
                .known
                .iter()
                .filter(|(_, known)| {
                    known.header.height > floor && !self.known.contains_key(&known.header.parent)
                })
                .map(|(hash, _)| *hash)
                .collect();
            if orphaned.is_empty() {
                break;
            }
            for hash in orphaned {
                self.known.remove(&hash);
            }
        }
        (self.known.len() < before || floor.0 > 0).then_some(floor)
    }

    /// Asks for a new template on the head if this node mines and has none for it.
    fn build(&mut self, now: TimestampMs) -> Vec<Command> {
        let Some(head) = self.head().cloned() else { return vec![] };
        if !self.is_mining() {
            return match self.template {
                Template::None => vec![],
                _ => {
                    self.template = Template::None;
                    vec![Command::StopMining]
                }
            };
        }
        let Some(height) = head.height.next() else { return vec![] };
        let hash = head.hash();
        let due = match self.template {
            Template::Mining { parent, at } if parent == hash => {
                self.ready && now.0 >= at.0.saturating_add(self.refresh)
            }
            Template::Building { parent, at } if parent == hash => {
                now.0 >= at.0.saturating_add(self.refresh)
            }
            _ => true,
        };
        if !due {
            return vec![];
        }
        self.template = Template::Building { parent: hash, at: now };
        // The node's clock: the node raises it to just after the median of the recent blocks
        // if it is behind that (it keeps those blocks; the engine may not, with a shallow
        // reorg depth).
        vec![Command::BuildBlock { height, timestamp: now }]
    }

    /// When the template should be looked at again.
    fn wake_command(&mut self) -> Option<Command> {
        let at = match self.template {
            Template::Mining { at, .. } if self.ready && self.is_mining() => at,
            _ => return None,
        };
        let at = TimestampMs(at.0.saturating_add(self.refresh));
        if self.wake == Some(at) {
            return None;
        }
        self.wake = Some(at);
        Some(Command::WakeAt { at })
    }

    fn on_built(&mut self, now: TimestampMs, mut header: Header) -> Vec<Command> {
        let Some(head) = self.head().cloned() else { return vec![] };
        let expected =
            matches!(self.template, Template::Building { parent, .. } if parent == head.hash());
        if !expected
            || !self.is_mining()
            || header.parent != head.hash()
            || Some(header.proposer) != self.miner
        {
            return vec![];
        }
        header.proof = ConsensusProof::Pow { target: next_target(&self.params, &head), nonce: 0 };
        self.template = Template::Mining { parent: head.hash(), at: now };
        vec![Command::Mine { header }]
    }

    fn on_mined(&mut self, header: Header) -> Vec<Command> {
        if header.parent != self.head || !self.checks_out(&header) {
            return vec![];
        }
        self.template = Template::None;
        let hash = header.hash();
        let message = announce(&header);
        self.insert(header);
        // Appended first, then announced: the node sends the block sealed with its proof.
        let mut commands = self.choose();
        commands.push(Command::Broadcast { message, block: Some(hash) });
        commands
    }

    fn on_committed(&mut self, header: Header) -> Vec<Command> {
        let hash = header.hash();
        if !self.known.contains_key(&hash) && !self.insert(header.clone()) {
            // A block the engine could not connect: start again from it.
            self.known.clear();
            self.insert(header);
        }
        self.head = hash;
        if self.in_flight == Some(hash) {
            self.in_flight = None;
        }
        let mut commands = Vec::new();
        if self.in_flight.is_none() {
            if let Some(floor) = self.prune() {
                commands.push(Command::Finalize { height: floor });
            }
            commands.extend(self.choose());
        }
        commands
    }
}

/// The work of one block: what its target asks for.
fn block_work(header: &Header) -> u128 {
    match header.proof {
        ConsensusProof::Pow { target, .. } => target.work(),
        _ => 0,
    }
}

impl Engine for PowEngine {
    fn handle(&mut self, now: TimestampMs, event: Event) -> Vec<Command> {
        let mut commands = match event {
            Event::Tick => {
                if self.wake.is_some_and(|at| at <= now) {
                    self.wake = None;
                }
                vec![]
            }
            Event::PendingChanged { ready } => {
                self.ready = ready > 0;
                vec![]
            }
            Event::BlockBuilt { header } => self.on_built(now, header),
            Event::Committed { header } => self.on_committed(header),
            Event::Stored { headers } => {
                for header in headers {
                    if self.checks_out(&header) {
                        self.insert(header);
                    }
                }
                self.choose()
            }
            Event::Invalid { hash } => {
                self.strike(hash);
                self.choose()
            }
            Event::Mining { on } => {
                self.mining = on;
                vec![]
            }
            Event::Mined { header } => self.on_mined(header),
            Event::Syncing { behind } => {
                self.syncing = behind;
                vec![]
            }
            Event::Message { .. } | Event::Validators { .. } => vec![],
        };
        // A head the node is still appending is no place to mine, and no time to look at the
        // template again: a wake-up for it would come due at once, again and again, until the
        // block is committed (which looks at the template anyway).
        if self.in_flight.is_none() {
            commands.extend(self.build(now));
            commands.extend(self.wake_command());
        }
        commands
    }
}

#[cfg(test)]
mod tests;
