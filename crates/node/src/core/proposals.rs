//! Peers' consensus messages: the block that comes with one is checked by executing it before
//! the engine hears of the message; a block for a later height, one from the future by this
//! node's clock, or one that comes while blocks are being written is held back with its message
//! until it can be checked.

use super::{App, BlockError, Core, Effect, MAX_CANDIDATES};
use crate::{p2p::PeerId, wire::Wire};
use consensus::{BlockCheck, EngineMessage, Event};
use net::Misbehaviour;
use primitives::{Block, TimestampMs};
use std::sync::Arc;

/// How far ahead of this node's clock a proposed block's timestamp may be, in wall time (at a
/// faster chain speed that many ms of wall time are worth more chain time). A block further
/// ahead is held until this node's clock is that close: a skewed clock delays a block, it
/// does not make it invalid.
pub const MAX_CLOCK_DRIFT_MS: u64 = 2_000;

/// Most messages held back.
const MAX_HELD: usize = 64;

/// A peer's message held back with its block.
#[derive(Debug)]
pub(super) struct Held {
    from: PeerId,
    message: EngineMessage,
    block: Block,
    /// Held for the clock: when it may be looked at again.
    pub(super) release_at: Option<TimestampMs>,
}

impl<A: App> Core<A> {
    /// A peer's consensus message (the engine's rules found it worth relaying), with the
    /// block that came with it.
    pub fn message(
        &mut self,
        now: TimestampMs,
        from: PeerId,
        message: EngineMessage,
        block: Option<Block>,
    ) -> Vec<Effect<A::Write>> {
        match block {
            Some(block) if self.forks.is_some() => {
                self.fork_block_message(now, from, message, block)
            }
            None => self.drive(now, Event::Message { message, block: None }),
            Some(block) => self.on_block_message(now, from, message, block),
        }
        self.take()
    }

    fn on_block_message(
        &mut self,
        now: TimestampMs,
        from: PeerId,
        message: EngineMessage,
        block: Block,
    ) {
        let height = block.header.height;
        if height <= self.head.height {
            return;
        }
        let drift = self.config.time.chain_span(MAX_CLOCK_DRIFT_MS);
        let early = block.header.timestamp.0 > now.0.saturating_add(drift);
        if self.writing.is_some() || self.head.height.next() != Some(height) || early {
            if self.writing.is_some() {
                self.counters.held_during_write += 1;
            } else if self.head.height.next() != Some(height) {
                self.counters.held_for_later_height += 1;
            } else {
                self.counters.held_for_clock += 1;
            }
            if self.held.len() < MAX_HELD {
                let release_at =
                    early.then(|| TimestampMs(block.header.timestamp.0.saturating_sub(drift)));
                self.held.push(Held { from, message, block, release_at });
            }
            return;
        }
        let hash = block.hash();
        let valid = if self.invalid.contains(&hash) {
            false
        } else if self.app.candidate().is_some_and(|candidate| candidate.hash() == hash) {
            true
        } else {
            let block = Arc::new(block);
            if self.candidates.len() < MAX_CANDIDATES {
                self.candidates.insert(hash, block.clone());
            }
            match self.execute_candidate(&block) {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(height = height.0, %hash, %error, "a proposed block is invalid");
                    self.invalid.insert(hash);
                    self.counters.invalid_blocks += 1;
                    self.report(from, &error);
                    false
                }
            }
        };
        self.drive(now, Event::Message { message, block: Some(BlockCheck { hash, valid }) });
    }

    /// Says what a peer did wrong: a block that cannot be valid anywhere. (A block that fails
    /// only on this node's state is not held against the peer.)
    pub(super) fn report(&mut self, peer: PeerId, error: &BlockError) {
        let misbehaviour = match error {
            BlockError::Time | BlockError::Parent(_) | BlockError::Height { .. } => return,
            _ => Misbehaviour::InvalidBlock,
        };
        self.effects.push(Effect::Report { peer, misbehaviour });
    }

    /// When the earliest message held for the clock alone may be looked at. Messages that also
    /// wait for their height, or for a write to finish, are looked at when that happens (after
    /// the write, [`Core::persisted`]), not at a time: a wake-up for them would come back at
    /// once, again and again, until then.
    pub(super) fn held_release(&self) -> Option<TimestampMs> {
        if self.writing.is_some() {
            return None;
        }
        let next = self.head.height.next();
        self.held
            .iter()
            .filter(|held| Some(held.block.header.height) == next)
            .filter_map(|held| held.release_at)
            .min()
    }

    /// Messages held back that can be looked at now: their height came, no write is under
    /// way, and this node's clock has caught up with their block.
    pub(super) fn release_held(&mut self, now: TimestampMs) {
        if self.held.is_empty() || self.writing.is_some() {
            return;
        }
        let head = self.head.height;
        let held = std::mem::take(&mut self.held);
        for mut entry in held {
            let height = entry.block.header.height;
            if height <= head {
                continue;
            }
            let ready = head.next() == Some(height)
                && self.writing.is_none()
                && entry.release_at.is_none_or(|at| at <= now);
            if ready {
                entry.release_at = None;
                self.on_block_message(now, entry.from, entry.message, entry.block);
            } else {
                self.held.push(entry);
            }
        }
    }

    /// A peer connected: tell it our head, and repeat what we signed for the next height so
    /// that a validator that was away can take part in this round.
    pub fn peer_connected(&mut self, peer: PeerId) -> Vec<Effect<A::Write>> {
        self.effects.push(Effect::Send {
            peer,
            wire: Wire::Status { height: self.head.height, hash: self.head.hash() },
        });
        self.repeat_own(peer);
        self.take()
    }

    /// Sends `peer` what this node signed for the next height.
    pub(super) fn repeat_own(&mut self, peer: PeerId) {
        for (message, block) in self.own.clone() {
            let wire =
                Wire::Consensus { message, block: block.map(|block| Box::new((*block).clone())) };
            self.effects.push(Effect::Send { peer, wire });
        }
    }
}
