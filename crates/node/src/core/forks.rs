//! Chains with forks (proof of work): the blocks of every branch within the engine's reorg
//! depth, an orphan pool for blocks whose parent has not arrived, catching up with peers whose
//! head the node does not know, and carrying out the engine's `Extend`, `SwitchBranch` and
//! `Finalize` through the [`App`] and one store transaction.
//!
//! - **Keeping blocks.** A block that arrives (with a peer's announcement or in a download) is
//!   checked as far as it can be without its parent's state: size, transaction root, the
//!   engine's header rules (its proof of work), and against its parent (height, time, the
//!   engine's successor rules: its target). A block whose parent is unknown waits in the orphan
//!   pool, and the peer that sent it is asked for the blocks before it; one stamped ahead of
//!   this node's clock waits for the clock. A kept block is passed on to the other peers (the
//!   node's relay: a block whose target is wrong never leaves it) and the engine hears of it
//!   ([`consensus::Event::Stored`]).
//! - **Executing.** Only when the engine asks to append a block (or to switch to its branch)
//!   does the node execute it: every transaction's signature, the execution, the state root.
//!   A block that fails is struck off ([`consensus::Event::Invalid`]) and the node's state is
//!   exactly as before the command.
//! - **Switching.** The app undoes its state to the fork point ([`App::rewind`]), applies the
//!   other branch, and the shell writes the switch in one store transaction
//!   ([`Effect::Switch`]); once it is durable, the transactions of the undone blocks that the
//!   new branch does not contain go back to the pool ([`App::reverted`]) and to the peers.
//! - **Catching up.** A peer whose head the node does not know is asked for its blocks after
//!   the node's head; if the first of them does not connect, the peer is on another branch and
//!   is asked again from the lowest height a branch may fork off at. A peer whose chain does
//!   not connect even there forked off deeper than the reorg depth: its chain can never be
//!   taken, and it is no longer asked.

use super::{App, BlockError, Core, Effect, MAX_CLOCK_DRIFT_MS};
use crate::{
    p2p::PeerId,
    wire::{MAX_BLOCKS_PER_MESSAGE, Wire},
};
use consensus::{EngineMessage, Event};
use primitives::{Block, BlockHash, ConsensusProof, Header, Height, TimestampMs};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

/// Most blocks kept in the orphan pool.
const MAX_ORPHANS: usize = 256;
/// Most blocks held for the clock.
const MAX_FUTURE: usize = 64;
/// Most blocks of other branches kept, beyond the reorg window's pruning.
const MAX_SIDE: usize = 4096;
/// Most hashes remembered as invalid.
const MAX_INVALID: usize = 4096;
/// How long an answer to a block request may take before another peer is asked (wall time).
const REQUEST_TIMEOUT_MS: u64 = 3_000;

/// A switch (or append) the engine asked for while blocks were being written.
#[derive(Debug)]
enum Pending {
    Extend(BlockHash, ConsensusProof),
    Switch(Height, Vec<(BlockHash, ConsensusProof)>),
}

/// What the core keeps for an engine with forks.
#[derive(Debug, Default)]
pub(super) struct Forks {
    /// How many blocks below the head a branch may fork off.
    depth: u64,
    /// How many of the newest blocks a timestamp is checked against (the engine's
    /// `time_window`): the chain keeps that many headers below any block a branch may fork off.
    window: u64,
    /// The chain's newest headers, by height, from `depth + window − 1` below the head to the
    /// head.
    main: BTreeMap<Height, Header>,
    /// Blocks of other branches, by hash (bodies, with proofs).
    side: HashMap<BlockHash, Arc<Block>>,
    /// Blocks whose parent has not arrived, by parent hash, with who sent them and the
    /// announcement they came with.
    orphans: HashMap<BlockHash, Vec<(PeerId, Block, Option<EngineMessage>)>>,
    orphan_count: usize,
    /// Blocks stamped ahead of this node's clock, with when they may be looked at.
    future: Vec<(TimestampMs, PeerId, Block, Option<EngineMessage>)>,
    /// Blocks found invalid.
    invalid: HashSet<BlockHash>,
    /// What the engine asked for while a write was under way.
    pending: Option<Pending>,
    /// The write under way is a switch: the blocks it undoes, newest first.
    switching: Option<Vec<Arc<Block>>>,
    /// Peers whose chain forks off deeper than the reorg depth: never asked again.
    diverged: HashSet<PeerId>,
    /// Peers asked from the lowest height already for their current head.
    asked_deep: HashMap<PeerId, BlockHash>,
    /// The outstanding request: which peer, from which height, since when (chain time).
    in_flight: Option<(PeerId, Height, TimestampMs)>,
    /// The heads peers report.
    heads: HashMap<PeerId, (Height, BlockHash)>,
}

/// Where a block from a peer ended up.
#[derive(Debug, PartialEq, Eq)]
enum Kept {
    /// Stored, with any orphans it connected (parents first).
    Stored(Vec<Header>),
    /// Already known, or refused.
    Nothing,
    /// Its parent is unknown: it waits in the orphan pool.
    Orphan,
}

impl Forks {
    pub(super) fn new(depth: u64, window: usize, head: &Header) -> Forks {
        Forks {
            depth,
            window: u64::try_from(window).unwrap_or(u64::MAX),
            main: BTreeMap::from([(head.height, head.clone())]),
            ..Forks::default()
        }
    }

    /// The timestamps of `parent` and the blocks before it, newest first, as many as the
    /// window holds (fewer near genesis).
    pub(super) fn recent_timestamps(&self, parent: &Header) -> Vec<TimestampMs> {
        let window = usize::try_from(self.window.max(1)).unwrap_or(usize::MAX);
        let mut recent = vec![parent.timestamp];
        let mut cursor = parent.clone();
        while recent.len() < window && cursor.height.0 > 0 {
            let Some(before) = cursor.height.0.checked_sub(1).map(Height) else { break };
            let ancestor = match self.main.get(&before) {
                Some(header) if header.hash() == cursor.parent => header.clone(),
                _ => match self.side.get(&cursor.parent) {
                    Some(block) => block.header.clone(),
                    None => break,
                },
            };
            recent.push(ancestor.timestamp);
            cursor = ancestor;
        }
        recent
    }

    /// Adds the chain's newest headers (oldest first), keeping those within the depth.
    pub(super) fn extend_main(&mut self, headers: Vec<Header>) {
        for header in headers {
            self.main.insert(header.height, header);
        }
        if let Some(head) = self.main.keys().next_back().copied() {
            self.prune(head);
        }
    }

    /// A peer went away.
    pub(super) fn forget_peer(&mut self, peer: &PeerId) {
        self.heads.remove(peer);
        self.asked_deep.remove(peer);
        if self.in_flight.is_some_and(|(asked, ..)| asked == *peer) {
            self.in_flight = None;
        }
    }

    /// The lowest height a branch may fork off at.
    fn floor(&self, head: Height) -> Height {
        Height(head.0.saturating_sub(self.depth))
    }

    /// The header of a block this node keeps (of the chain or another branch).
    fn header(&self, hash: &BlockHash) -> Option<Header> {
        if let Some(block) = self.side.get(hash) {
            return Some(block.header.clone());
        }
        self.main.values().rev().find(|header| header.hash() == *hash).cloned()
    }

    fn is_main(&self, hash: &BlockHash, height: Height) -> bool {
        self.main.get(&height).is_some_and(|header| header.hash() == *hash)
    }

    fn knows(&self, hash: &BlockHash, height: Height) -> bool {
        self.side.contains_key(hash) || self.is_main(hash, height) || self.invalid.contains(hash)
    }

    fn mark_invalid(&mut self, hash: BlockHash) {
        if self.invalid.len() >= MAX_INVALID {
            self.invalid.clear();
        }
        self.invalid.insert(hash);
        self.side.remove(&hash);
    }

    /// Forgets what lies below the floor of `head`.
    fn prune(&mut self, head: Height) {
        let floor = self.floor(head);
        // A branch may fork off at the floor: its first block's timestamp is checked against
        // the floor and the blocks before it.
        let kept = Height(floor.0.saturating_sub(self.window.saturating_sub(1)));
        self.main.retain(|height, _| *height >= kept);
        self.side.retain(|_, block| block.header.height > floor);
        self.orphans.retain(|_, waiting| {
            waiting.retain(|(_, block, _)| block.header.height > floor);
            !waiting.is_empty()
        });
        self.orphan_count = self.orphans.values().map(Vec::len).sum();
        if self.side.len() > MAX_SIDE {
            // Keep the highest blocks: the branches that could still win.
            let mut heights: Vec<u64> =
                self.side.values().map(|block| block.header.height.0).collect();
            heights.sort_unstable();
            let cut = heights[heights.len() - MAX_SIDE];
            self.side.retain(|_, block| block.header.height.0 >= cut);
        }
    }
}

impl<A: App> Core<A> {
    fn forks(&mut self) -> &mut Forks {
        self.forks.as_mut().expect("only called for engines with forks")
    }

    /// A peer's announcement with its block.
    pub(super) fn fork_block_message(
        &mut self,
        now: TimestampMs,
        from: PeerId,
        message: EngineMessage,
        block: Block,
    ) {
        let kept = self.keep(now, from, block, Some(message));
        self.after_keeping(now, from, kept);
    }

    /// Blocks a peer sent in answer to a request.
    pub(super) fn fork_blocks(&mut self, now: TimestampMs, from: PeerId, blocks: Vec<Block>) {
        let forks = self.forks();
        let asked = forks.in_flight.filter(|(peer, ..)| *peer == from).map(|(_, first, _)| first);
        if asked.is_some() {
            forks.in_flight = None;
        }
        let last = blocks.last().map(|block| block.header.height);
        let mut stored = Vec::new();
        let mut unconnected = false;
        for block in blocks {
            match self.keep(now, from, block, None) {
                Kept::Stored(headers) => stored.extend(headers),
                Kept::Orphan => {
                    unconnected = true;
                    break;
                }
                Kept::Nothing => {}
            }
        }
        self.counters.blocks_synced += stored.len() as u64;
        if !stored.is_empty() {
            self.drive(now, Event::Stored { headers: stored });
        }
        let head = self.head.height;
        let floor = self.forks().floor(head);
        if unconnected {
            let deep = asked.is_some_and(|first| first <= Height(floor.0.saturating_add(1)));
            if deep {
                tracing::info!(peer = %primitives::Address(from), "a peer's chain forks off deeper than the reorg depth; not following it");
                self.forks().diverged.insert(from);
            } else {
                self.counters.fork_searches += 1;
                let from_height = Height(floor.0.saturating_add(1));
                self.request_from(now, from, from_height, last);
                return;
            }
        } else if let (Some(last), Some((peer_height, _))) =
            (last, self.forks().heads.get(&from).copied())
            && peer_height > last
        {
            // More to come from this peer.
            self.request_from(now, from, Height(last.0.saturating_add(1)), Some(peer_height));
            return;
        }
        self.fork_sync(now);
    }

    /// Checks a block as far as it can be without its parent's state, and keeps it if it is
    /// worth keeping; then connects the orphans that were waiting for it.
    fn keep(
        &mut self,
        now: TimestampMs,
        from: PeerId,
        block: Block,
        message: Option<EngineMessage>,
    ) -> Kept {
        let head = self.head.clone();
        let hash = block.hash();
        let height = block.header.height;
        let forks = self.forks();
        if height <= forks.floor(head.height) || forks.knows(&hash, height) {
            return Kept::Nothing;
        }
        if forks.invalid.contains(&block.header.parent) {
            forks.mark_invalid(hash);
            return Kept::Nothing;
        }
        if let Err(error) = self.check_alone(&block) {
            // The block hash covers neither the proof nor the body: a peer that sends a wrong
            // proof or wrong transactions does not make the block with this hash invalid.
            tracing::warn!(height = height.0, %hash, %error, "a block from a peer is invalid");
            self.counters.invalid_blocks += 1;
            self.report(from, &error);
            return Kept::Nothing;
        }
        let drift = self.config.time.chain_span(MAX_CLOCK_DRIFT_MS);
        if block.header.timestamp.0 > now.0.saturating_add(drift) {
            self.counters.held_for_clock += 1;
            let release = TimestampMs(block.header.timestamp.0.saturating_sub(drift));
            let forks = self.forks();
            if forks.future.len() < MAX_FUTURE {
                forks.future.push((release, from, block, message));
            }
            return Kept::Nothing;
        }
        let Some(parent) = self.forks().header(&block.header.parent) else {
            self.counters.orphans += 1;
            let forks = self.forks();
            if forks.orphan_count >= MAX_ORPHANS {
                // Make room: drop the lowest waiting blocks.
                let lowest = forks
                    .orphans
                    .iter()
                    .min_by_key(|(_, waiting)| {
                        waiting.iter().map(|(_, b, _)| b.header.height).min()
                    })
                    .map(|(parent, _)| *parent);
                if let Some(parent) = lowest {
                    forks.orphans.remove(&parent);
                }
            }
            forks.orphans.entry(block.header.parent).or_default().push((from, block, message));
            forks.orphan_count = forks.orphans.values().map(Vec::len).sum();
            return Kept::Orphan;
        };
        if let Err(error) = self.check_after(&parent, &block) {
            tracing::warn!(height = height.0, %hash, %error, "a block from a peer does not follow its parent");
            self.counters.invalid_blocks += 1;
            // Height and time are in the hashed header: no block with this hash can follow
            // its parent. The target is part of the proof, which the hash does not cover.
            if !matches!(error, BlockError::Header(_)) {
                self.forks().mark_invalid(hash);
            }
            self.report(from, &error);
            return Kept::Nothing;
        }
        let header = block.header.clone();
        let block = Arc::new(block);
        self.forks().side.insert(hash, block.clone());
        if let Some(message) = message {
            // Pass it on: this node has checked its work against its parent.
            let wire = Wire::Consensus { message, block: Some(Box::new((*block).clone())) };
            self.effects.push(Effect::Gossip { wire, except: Some(from) });
        }
        let mut stored = vec![header];
        if let Some(waiting) = self.forks().orphans.remove(&hash) {
            let forks = self.forks();
            forks.orphan_count = forks.orphan_count.saturating_sub(waiting.len());
            for (sender, orphan, announcement) in waiting {
                if let Kept::Stored(more) = self.keep(now, sender, orphan, announcement) {
                    stored.extend(more);
                }
            }
        }
        Kept::Stored(stored)
    }

    /// The checks that need nothing but the block: size, transaction root, the engine's rules
    /// for its header (its proof).
    fn check_alone(&self, block: &Block) -> Result<(), BlockError> {
        let max = usize::try_from(self.config.chain.params.max_block_txs).unwrap_or(usize::MAX);
        if block.txs.len() > max {
            return Err(BlockError::TooManyTransactions { count: block.txs.len(), max });
        }
        if Block::tx_root(&block.txs) != block.header.tx_root {
            return Err(BlockError::TxRoot);
        }
        let validators = self.app.config_at(block.header.height).validators;
        self.rules.check_header(&validators, &block.header)?;
        Ok(())
    }

    /// The checks against the parent: height, time (later than the median of the recent
    /// blocks), the engine's rules for a successor (its
    /// target).
    fn check_after(&self, parent: &Header, block: &Block) -> Result<(), BlockError> {
        let header = &block.header;
        if parent.height.next() != Some(header.height) {
            return Err(BlockError::Height { height: header.height, parent: parent.height });
        }
        if !self.after_median(parent, header.timestamp) {
            return Err(BlockError::Time);
        }
        let config = self.app.config_at(header.height);
        self.rules.check_successor(&config, parent, header)?;
        Ok(())
    }

    /// What follows keeping a block from `from`: an orphan makes the node ask for what is
    /// missing, stored blocks go to the engine.
    fn after_keeping(&mut self, now: TimestampMs, from: PeerId, kept: Kept) {
        match kept {
            Kept::Stored(headers) => self.drive(now, Event::Stored { headers }),
            Kept::Orphan => {
                if self.forks().in_flight.is_none() {
                    let start = Height(self.head.height.0.saturating_add(1));
                    self.request_from(now, from, start, None);
                }
            }
            Kept::Nothing => {}
        }
    }

    /// Blocks held for the clock whose time has come.
    pub(super) fn release_future(&mut self, now: TimestampMs) {
        let forks = self.forks();
        if forks.future.is_empty() {
            return;
        }
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut forks.future).into_iter().partition(|(at, ..)| *at <= now);
        forks.future = waiting;
        for (_, from, block, message) in due {
            let kept = self.keep(now, from, block, message);
            self.after_keeping(now, from, kept);
        }
    }

    /// When the earliest block held for the clock may be looked at.
    pub(super) fn future_release(&self) -> Option<TimestampMs> {
        self.forks.as_ref()?.future.iter().map(|(at, ..)| *at).min()
    }

    /// The engine wants block `hash` appended to the head.
    pub(super) fn fork_extend(&mut self, now: TimestampMs, hash: BlockHash, proof: ConsensusProof) {
        if self.writing.is_some() {
            self.forks().pending = Some(Pending::Extend(hash, proof));
            return;
        }
        let executed = self.app.candidate().is_some_and(|block| block.hash() == hash);
        if !executed {
            let Some(block) = self.forks().side.get(&hash).cloned() else {
                tracing::error!(%hash, "the engine asked to append a block this node does not have");
                self.drive(now, Event::Invalid { hash });
                return;
            };
            let head = self.head.clone();
            let checked =
                self.check_successor(&head, &block).and_then(|()| self.app.execute(&head, &block));
            if let Err(error) = checked {
                tracing::warn!(height = block.header.height.0, %hash, %error, "a block does not execute on its parent");
                self.counters.invalid_blocks += 1;
                self.forks().mark_invalid(hash);
                self.drive(now, Event::Invalid { hash });
                return;
            }
        }
        if let Some(sealed) = self.app.seal(proof) {
            self.persist(vec![sealed]);
        }
    }

    /// The engine wants the blocks above `to` replaced by `blocks`.
    pub(super) fn fork_switch(
        &mut self,
        now: TimestampMs,
        to: Height,
        blocks: Vec<(BlockHash, ConsensusProof)>,
    ) {
        if self.writing.is_some() {
            self.forks().pending = Some(Pending::Switch(to, blocks));
            return;
        }
        let head = self.head.clone();
        let forks = self.forks();
        let Some(fork) = forks.main.get(&to).cloned().filter(|_| to >= forks.floor(head.height))
        else {
            tracing::error!(
                to = to.0,
                head = head.height.0,
                "the engine asked to switch from a height this node cannot undo to"
            );
            if let Some((hash, _)) = blocks.first() {
                self.drive(now, Event::Invalid { hash: *hash });
            }
            return;
        };
        let mut branch = Vec::with_capacity(blocks.len());
        for (hash, proof) in blocks {
            match self.forks().side.get(&hash) {
                Some(block) => branch.push((block.clone(), proof)),
                None => {
                    tracing::error!(%hash, "the engine asked to switch to a block this node does not have");
                    self.drive(now, Event::Invalid { hash });
                    return;
                }
            }
        }
        self.app.discard_candidate();
        let undone = match self.app.rewind(to) {
            Ok(undone) => undone,
            Err(error) => {
                tracing::error!(to = to.0, %error, "cannot undo the state to switch branches");
                if let Some((block, _)) = branch.first() {
                    self.drive(now, Event::Invalid { hash: block.hash() });
                }
                return;
            }
        };
        let mut parent = fork.clone();
        let mut sealed = Vec::with_capacity(branch.len());
        let mut failure = None;
        for (block, proof) in &branch {
            let applied = self
                .check_successor(&parent, block)
                .and_then(|()| self.app.execute(&parent, block));
            match applied.map(|()| self.app.seal(proof.clone())) {
                Ok(Some(done)) => sealed.push(done),
                Ok(None) => {
                    failure = Some((block.hash(), "nothing to seal".to_owned()));
                    break;
                }
                Err(error) => {
                    failure = Some((block.hash(), error.to_string()));
                    break;
                }
            }
            parent = block.header.clone();
        }
        if let Some((bad, error)) = failure {
            tracing::warn!(%bad, %error, "a block of another branch does not execute; staying on this branch");
            self.counters.invalid_blocks += 1;
            drop(sealed);
            self.restore(to, &fork, &undone);
            self.forks().mark_invalid(bad);
            self.drive(now, Event::Invalid { hash: bad });
            return;
        }
        let reverted = undone.len();
        tracing::info!(
            from = head.height.0,
            to = to.0,
            reverted,
            applied = sealed.len(),
            "switching to a branch with more work"
        );
        if reverted > 0 {
            self.counters.reorgs += 1;
            self.counters.blocks_reverted += reverted as u64;
        }
        self.forks().switching = Some(undone);
        self.writing = Some(sealed.iter().map(|(block, _)| block.clone()).collect());
        self.effects.push(Effect::Switch { to, blocks: sealed });
    }

    /// Puts the app's state back on this node's chain after a failed switch: undo what was
    /// applied of the other branch, apply the undone blocks again.
    fn restore(&mut self, to: Height, fork: &Header, undone: &[Arc<Block>]) {
        if let Err(error) = self.app.rewind(to) {
            tracing::error!(%error, "cannot undo a failed switch");
        }
        let mut parent = fork.clone();
        for block in undone.iter().rev() {
            let applied = self
                .app
                .execute(&parent, block)
                .map(|()| self.app.seal(block.header.proof.clone()));
            if let Err(error) = applied {
                tracing::error!(height = block.header.height.0, %error, "a block of this node's own chain no longer executes");
                return;
            }
            parent = block.header.clone();
        }
    }

    /// After a write (an append or a switch): the chain's headers, the blocks of other
    /// branches, the mempool; then what the engine asked for meanwhile.
    pub(super) fn fork_persisted(&mut self, blocks: &[Arc<Block>]) {
        let switching = self.forks().switching.take();
        if let Some(undone) = &switching {
            let to = blocks
                .first()
                .map(|block| Height(block.header.height.0.saturating_sub(1)))
                .unwrap_or(self.head.height);
            let readmitted = self.app.reverted(undone);
            if !readmitted.is_empty() {
                self.effects.push(Effect::Gossip { wire: Wire::Txs(readmitted), except: None });
            }
            let forks = self.forks();
            forks.main.retain(|height, _| *height <= to);
            for block in undone {
                forks.side.insert(block.hash(), block.clone());
            }
        }
        let forks = self.forks();
        for block in blocks {
            forks.side.remove(&block.hash());
            forks.main.insert(block.header.height, block.header.clone());
        }
        let head = self.head.height;
        self.forks().prune(head);
    }

    /// Carries out what the engine asked for while a write was under way.
    pub(super) fn fork_resume(&mut self, now: TimestampMs) {
        match self.forks().pending.take() {
            Some(Pending::Extend(hash, proof)) => self.fork_extend(now, hash, proof),
            Some(Pending::Switch(to, blocks)) => self.fork_switch(now, to, blocks),
            None => {}
        }
        if self.writing.is_none() {
            self.release_future(now);
            self.fork_sync(now);
        }
    }

    /// Blocks up to `height` are final: forget what lies below.
    pub(super) fn fork_finalize(&mut self) {
        let head = self.head.height;
        self.forks().prune(head);
    }

    /// A peer reported its head.
    pub(super) fn fork_peer_status(
        &mut self,
        now: TimestampMs,
        peer: PeerId,
        height: Height,
        hash: BlockHash,
    ) {
        let forks = self.forks();
        if forks.heads.get(&peer) != Some(&(height, hash)) {
            forks.asked_deep.remove(&peer);
            if height > forks.main.keys().next_back().copied().unwrap_or(Height(0)) {
                forks.diverged.remove(&peer);
            }
        }
        forks.heads.insert(peer, (height, hash));
        self.fork_sync(now);
    }

    /// Asks a peer for blocks if one reports a head this node does not know.
    pub(super) fn fork_sync(&mut self, now: TimestampMs) {
        self.update_behind(now);
        let head = self.head.clone();
        let timeout = self.config.time.chain_span(REQUEST_TIMEOUT_MS);
        let forks = self.forks();
        if forks.in_flight.is_some_and(|(_, _, since)| now.0 < since.0.saturating_add(timeout)) {
            return;
        }
        let floor = forks.floor(head.height);
        let stale = forks.in_flight.map(|(peer, ..)| peer);
        forks.in_flight = None;
        let latency = |peer: &PeerId| self.peers.get(peer).map_or(u64::MAX, |view| view.latency_ms);
        let forks = self.forks.as_ref().expect("forks");
        let candidate = forks
            .heads
            .iter()
            .filter(|(peer, (height, hash))| {
                !forks.diverged.contains(peer)
                    && *height > floor
                    && !forks.knows(hash, *height)
                    && self.peers.contains_key(peer)
            })
            .min_by_key(|(peer, (height, _))| {
                (Some(**peer) == stale, std::cmp::Reverse(*height), latency(peer))
            })
            .map(|(peer, (height, hash))| (*peer, *height, *hash));
        let Some((peer, height, hash)) = candidate else { return };
        // A peer not ahead of this node is on another branch: ask from the floor.
        let start = if height > head.height && forks.asked_deep.get(&peer) != Some(&hash) {
            Height(head.height.0.saturating_add(1))
        } else {
            self.forks().asked_deep.insert(peer, hash);
            Height(floor.0.saturating_add(1))
        };
        self.request_from(now, peer, start, Some(height));
    }

    /// Asks `peer` for blocks from `start` up to `until` (or as many as a message holds).
    fn request_from(
        &mut self,
        now: TimestampMs,
        peer: PeerId,
        start: Height,
        until: Option<Height>,
    ) {
        let count = until
            .map_or(MAX_BLOCKS_PER_MESSAGE as u64, |until| {
                until.0.saturating_sub(start.0).saturating_add(1)
            })
            .clamp(1, u64::from(MAX_BLOCKS_PER_MESSAGE));
        let count = u32::try_from(count).unwrap_or(MAX_BLOCKS_PER_MESSAGE);
        self.forks().in_flight = Some((peer, start, now));
        self.effects.push(Effect::Send { peer, wire: Wire::GetBlocks { from: start, count } });
    }

    /// The best height among peers this node may follow.
    pub(super) fn fork_best_peer(&self) -> Option<Height> {
        let forks = self.forks.as_ref()?;
        forks
            .heads
            .iter()
            .filter(|(peer, _)| !forks.diverged.contains(peer) && self.peers.contains_key(peer))
            .map(|(_, (height, _))| *height)
            .max()
    }

    /// The block this node mined: if it is still the template on the head, the engine hears.
    pub(super) fn fork_mined(&mut self, now: TimestampMs, header: Header) {
        let current = self.writing.is_none()
            && header.parent == self.head.hash()
            && self.app.candidate().is_some_and(|block| block.hash() == header.hash());
        if current {
            self.counters.blocks_mined += 1;
            self.drive(now, Event::Mined { header });
        }
    }

    /// Blocks of other branches and orphans kept, for status reports.
    pub(super) fn fork_counts(&self) -> (usize, usize) {
        self.forks.as_ref().map_or((0, 0), |forks| (forks.side.len(), forks.orphan_count))
    }

    /// A block of the chain or another branch this node keeps, by hash, for the engine's
    /// broadcasts.
    pub(super) fn fork_block(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        self.forks.as_ref()?.side.get(hash).cloned()
    }
}

#[cfg(test)]
mod tests;
