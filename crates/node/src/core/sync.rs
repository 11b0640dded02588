//! Catching up: a node whose peers are ahead downloads the blocks it lacks from the
//! lowest-latency peer that has them, checks their proofs in one signature batch, executes
//! them, and writes them many to a transaction. The engine is told it is behind, so it signs
//! nothing until it has caught up.
//!
//! A peer's head is only its word. One that was asked for the blocks it claims and sent none
//! that check out in time is doubted: its claim does not make the node "behind" (so a peer
//! that lies about its height cannot keep a validator silent) until it delivers a block or
//! [`DOUBT_MS`] have passed. It is still asked, last, for blocks no other peer has.

use super::{App, Core, Effect, PeerView};
use crate::{
    p2p::PeerId,
    wire::{MAX_BLOCKS_PER_MESSAGE, Wire},
};
use consensus::{Event, certificate_signatures};
use net::Misbehaviour;
use primitives::{Block, BlockHash, Height, TimestampMs, crypto::verify_batch};

/// How long an answer to a block request may take before another peer is asked (wall time).
pub(super) const REQUEST_TIMEOUT_MS: u64 = 3_000;
/// Most answers kept while a write is in progress.
const MAX_RECEIVED: usize = 4;
/// How long the height claimed by a peer that did not deliver is left out (wall time).
pub(super) const DOUBT_MS: u64 = 60_000;

/// Where catching up stands.
#[derive(Debug, Default)]
pub(super) struct SyncState {
    /// Whether the engine has been told that the node is behind.
    pub(super) behind: bool,
    /// The outstanding request: which peer, from which height, since when (chain time).
    in_flight: Option<(PeerId, Height, TimestampMs)>,
    /// Since when (chain time) a peer has been ahead of the head, and the head then.
    ahead_since: Option<(Height, TimestampMs)>,
    /// Peers that were asked for blocks and delivered none in time: until when (chain time)
    /// their claimed heights are left out.
    doubted: std::collections::BTreeMap<PeerId, TimestampMs>,
}

impl<A: App> Core<A> {
    /// A peer told us its head.
    pub fn peer_status(
        &mut self,
        now: TimestampMs,
        peer: PeerId,
        height: Height,
        hash: BlockHash,
        latency_ms: u64,
    ) -> Vec<Effect<A::Write>> {
        let before = self.peers.insert(peer, PeerView { height, latency_ms });
        if self.forks.is_some() {
            self.fork_peer_status(now, peer, height, hash);
            return self.take();
        }
        // A peer that has just caught up with the head could not use what this node signed for
        // the next height while it was behind (gossip is not repeated): repeat it, as to a peer
        // that connects.
        if before.is_some_and(|view| view.height < height) && height == self.head.height {
            self.repeat_own(peer);
        }
        self.maybe_sync(now);
        self.take()
    }

    /// A peer went away.
    pub fn peer_gone(&mut self, peer: PeerId) -> Vec<Effect<A::Write>> {
        self.peers.remove(&peer);
        self.sync.doubted.remove(&peer);
        if let Some(forks) = self.forks.as_mut() {
            forks.forget_peer(&peer);
        }
        self.take()
    }

    /// Now and then: ask again for blocks if an answer is overdue.
    pub fn housekeeping(&mut self, now: TimestampMs) -> Vec<Effect<A::Write>> {
        if self.forks.is_some() {
            if self.writing.is_none() {
                self.fork_sync(now);
            }
        } else {
            self.maybe_sync(now);
        }
        self.take()
    }

    /// Asks a peer for blocks if the node is behind, and tells the engine when that changes.
    pub(super) fn maybe_sync(&mut self, now: TimestampMs) {
        let timeout = self.config.time.chain_span(REQUEST_TIMEOUT_MS);
        if let Some((peer, from, since)) = self.sync.in_flight
            && from > self.head.height
            && now.0 >= since.0.saturating_add(timeout)
        {
            // Asked, and nothing came in time.
            self.sync.in_flight = None;
            self.doubt(now, peer);
        }
        self.update_behind(now);
        // Blocks are still asked for from a doubted peer when no other has them (its answer
        // may only have been slow or dropped); its claim just does not make the node "behind".
        let best = self.peers.values().map(|peer| peer.height).max().unwrap_or(Height(0));
        let behind = best.0 > self.head.height.0.saturating_add(1);
        // A peer one block ahead is normal for a moment (it heard the decision first); one
        // that stays ahead means this node missed the decision (it was cut off when the
        // precommits went round), and it will not hear them again: its peers have moved on.
        let ahead = best > self.head.height;
        self.sync.ahead_since = match self.sync.ahead_since {
            Some((head, since)) if ahead && head == self.head.height => Some((head, since)),
            _ if ahead => Some((self.head.height, now)),
            _ => None,
        };
        let left_behind = self
            .sync
            .ahead_since
            .is_some_and(|(_, since)| now.0 >= since.0.saturating_add(timeout));
        let wants = behind || (ahead && (self.decided.is_some() || left_behind));
        // A request to a doubted peer does not stop one to a peer that is not.
        let waiting = self.sync.in_flight.is_some_and(|(peer, from, _)| {
            from > self.head.height
                && (self.trusted(now, &peer)
                    || !self.peers.iter().any(|(id, view)| {
                        view.height >= from && *id != peer && self.trusted(now, id)
                    }))
        });
        if waiting {
            return;
        }
        match &self.writing {
            None if wants => self.request_blocks(now, best),
            // Downloaded blocks are being written: the next ones are asked for meanwhile, so
            // that the answer comes while the write goes on (it waits in `received`; one that
            // is there already is enough). An engine with forks keeps its blocks its own way.
            Some(_)
                if self.forks.is_none() && self.received.is_empty() && best > self.sync_tip() =>
            {
                self.request_blocks(now, best)
            }
            _ => {}
        }
    }

    /// The highest block the node has executed: the last one being written, or the head.
    fn sync_tip(&self) -> Height {
        self.writing
            .as_ref()
            .and_then(|blocks| blocks.last())
            .map_or(self.head.height, |block| block.header.height)
    }

    /// Leaves `peer`'s claimed height out for a while: it was asked and did not deliver.
    fn doubt(&mut self, now: TimestampMs, peer: PeerId) {
        let until = TimestampMs(now.0.saturating_add(self.config.time.chain_span(DOUBT_MS)));
        tracing::info!(
            peer = %primitives::Address(peer),
            height = self.peers.get(&peer).map_or(0, |view| view.height.0),
            "a peer did not send the blocks it claims; its height is left out for a while"
        );
        self.counters.peers_doubted += 1;
        self.sync.doubted.insert(peer, until);
    }

    /// Whether `peer`'s claimed height counts at `now`.
    fn trusted(&self, now: TimestampMs, peer: &PeerId) -> bool {
        self.sync.doubted.get(peer).is_none_or(|until| now >= *until)
    }

    /// Whether the node is two or more blocks behind its best peer (and that peer's height);
    /// tells the engine when that changes.
    pub(super) fn update_behind(&mut self, now: TimestampMs) -> (Height, bool) {
        let best = match self.forks {
            Some(_) => self.fork_best_peer(),
            None => self
                .peers
                .iter()
                .filter(|(id, _)| self.trusted(now, id))
                .map(|(_, peer)| peer.height)
                .max(),
        }
        .unwrap_or(Height(0));
        let behind = best.0 > self.head.height.0.saturating_add(1);
        if behind != self.sync.behind {
            self.sync.behind = behind;
            tracing::info!(
                head = self.head.height.0,
                best = best.0,
                behind,
                "catching up with peers"
            );
            self.drive(now, Event::Syncing { behind });
        }
        (best, behind)
    }

    /// Asks the peer with the lowest latency among those that have the next block (after the
    /// ones being written).
    fn request_blocks(&mut self, now: TimestampMs, best: Height) {
        let tip = self.sync_tip();
        let Some(from) = tip.next() else { return };
        let stale = self.sync.in_flight.map(|(peer, ..)| peer);
        let Some((&peer, _)) =
            self.peers.iter().filter(|(_, view)| view.height >= from).min_by_key(|(id, view)| {
                (!self.trusted(now, id), Some(**id) == stale, view.latency_ms)
            })
        else {
            return;
        };
        let count = u32::try_from(best.0.saturating_sub(tip.0))
            .unwrap_or(u32::MAX)
            .clamp(1, MAX_BLOCKS_PER_MESSAGE);
        self.sync.in_flight = Some((peer, from, now));
        self.effects.push(Effect::Send { peer, wire: Wire::GetBlocks { from, count } });
    }

    /// The engine decided a block whose body never came: ask for it as a committed block.
    pub(super) fn request_decided(&mut self, now: TimestampMs) {
        if let Some(best) = self.peers.values().map(|peer| peer.height).max()
            && best > self.head.height
        {
            self.request_blocks(now, best);
        }
    }

    /// Committed blocks a peer sent in answer to our request.
    pub fn blocks(
        &mut self,
        now: TimestampMs,
        from: PeerId,
        blocks: Vec<Block>,
    ) -> Vec<Effect<A::Write>> {
        self.on_blocks(now, from, blocks);
        self.take()
    }

    /// Committed blocks from a peer: check proofs, execute, write.
    pub(super) fn on_blocks(&mut self, now: TimestampMs, from: PeerId, blocks: Vec<Block>) {
        if self.forks.is_some() {
            // Keeping blocks needs no state: they are stored at once, written or not.
            self.fork_blocks(now, from, blocks);
            return;
        }
        let asked = self.sync.in_flight.is_some_and(|(peer, ..)| peer == from);
        if asked {
            self.sync.in_flight = None;
        }
        if self.writing.is_some() {
            if self.received.len() < MAX_RECEIVED {
                self.received.push((from, blocks));
            }
            return;
        }
        // An answer to our request that is empty, or whose new blocks do not check out,
        // leaves the sender doubted; one that brings a block clears the doubt.
        let empty_answer = asked && blocks.is_empty();
        let ahead_of_head = blocks.iter().any(|block| block.header.height > self.head.height);
        let mut blocks: Vec<Block> = blocks
            .into_iter()
            .skip_while(|block| block.header.height <= self.head.height)
            .collect();
        // The validators of a height are known two heights ahead: a block that changes them
        // ends the batch, and the blocks after it are asked for again once it is applied.
        if let Some(changer) = blocks.iter().position(|block| self.app.changes_validators(block))
            && changer.saturating_add(1) < blocks.len()
        {
            self.counters.sync_cut_at_validator_change += 1;
            blocks.truncate(changer.saturating_add(1));
        }
        let checked = self.check_proofs(&blocks);
        if checked < blocks.len() {
            self.effects
                .push(Effect::Report { peer: from, misbehaviour: Misbehaviour::InvalidBlock });
            blocks.truncate(checked);
        }
        if blocks.is_empty() {
            if empty_answer || ahead_of_head {
                self.doubt(now, from);
            }
            self.maybe_sync(now);
            return;
        }
        self.app.discard_candidate();
        let mut sealed = Vec::with_capacity(blocks.len());
        let mut parent = self.head.clone();
        for block in blocks {
            let applied = self
                .check_successor(&parent, &block)
                .and_then(|()| self.app.execute(&parent, &block));
            match applied {
                Ok(()) => {
                    self.counters.blocks_synced += 1;
                    parent = block.header.clone();
                    if let Some(done) = self.app.seal(block.header.proof.clone()) {
                        sealed.push(done);
                    }
                }
                Err(error) => {
                    tracing::warn!(height = block.header.height.0, %error, "a downloaded block does not check out");
                    self.effects.push(Effect::Report {
                        peer: from,
                        misbehaviour: Misbehaviour::InvalidBlock,
                    });
                    break;
                }
            }
        }
        if sealed.is_empty() {
            self.doubt(now, from);
            self.maybe_sync(now);
            return;
        }
        self.sync.doubted.remove(&from);
        self.persist(sealed);
        self.maybe_sync(now);
    }

    /// How many of `blocks`, from the first, are consecutive after the head and carry valid
    /// proofs. All their signatures are checked in one batch. None of the blocks but the last
    /// may change the validator set.
    fn check_proofs(&self, blocks: &[Block]) -> usize {
        let next = Height(self.head.height.0.saturating_add(1));
        let current = self.app.config_at(next);
        // The configuration as of a waiting validator set's first height.
        let upcoming = self
            .schedule
            .upcoming
            .as_ref()
            .map(|change| (change.from, self.app.config_at(change.from)));
        let mut items = Vec::new();
        let mut owners = Vec::new();
        let mut structural = blocks.len();
        for (index, block) in blocks.iter().enumerate() {
            let expected = self.head.height.0.saturating_add(1).saturating_add(index as u64);
            if block.header.height.0 != expected {
                structural = index;
                break;
            }
            let config = match &upcoming {
                Some((from, config)) if block.header.height >= *from => config,
                _ => &current,
            };
            match certificate_signatures(config, &block.header) {
                Ok(signatures) => {
                    for signature in signatures {
                        items.push(signature);
                        owners.push(index);
                    }
                }
                Err(error) => {
                    tracing::warn!(height = expected, %error, "a downloaded block's proof is invalid");
                    structural = index;
                    break;
                }
            }
        }
        let batch: Vec<_> = items
            .iter()
            .map(|(key, hash, signature)| (*key, hash.as_bytes().as_slice(), *signature))
            .collect();
        let results = verify_batch(&batch, rand::rng());
        let first_bad = results
            .iter()
            .zip(&owners)
            .find(|(result, _)| result.is_err())
            .map_or(structural, |(_, owner)| *owner);
        first_bad.min(structural)
    }
}
