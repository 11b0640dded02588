//! Catching up: a node whose peers are ahead downloads the blocks it lacks from the
//! lowest-latency peer that has them, checks their commit certificates in one signature batch,
//! executes them, and writes them many to a transaction. The engine is told it is behind, so it
//! signs nothing until it has caught up.

use super::{Built, Manager, NodeError, Persisting};
use crate::{
    p2p::{Misbehaviour, Outgoing, PeerId},
    validators::config_at,
    wire::{MAX_BLOCKS_PER_MESSAGE, Wire},
};
use consensus::{Event, certificate_signatures};
use primitives::{Block, Height, Payload, crypto::verify_batch};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long an answer to a block request may take before another peer is asked.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Most answers kept while a write is in progress.
const MAX_RECEIVED: usize = 4;

/// Where catching up stands.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    /// Whether the engine has been told that the node is behind.
    pub(crate) behind: bool,
    /// The outstanding request: which peer, from which height, since when.
    in_flight: Option<(PeerId, Height, Instant)>,
}

impl Manager {
    /// Asks a peer for blocks if the node is behind, and tells the engine when that changes.
    pub(super) fn maybe_sync(&mut self) -> Result<Option<Persisting>, NodeError> {
        let best = self.peers.values().map(|peer| peer.height).max().unwrap_or(Height(0));
        let behind = best.0 > self.head.height.0.saturating_add(1);
        let mut started = None;
        if behind != self.sync.behind {
            self.sync.behind = behind;
            info!(head = self.head.height.0, best = best.0, behind, "catching up with peers");
            started = self.drive(Event::Syncing { behind })?;
        }
        let wants = behind || (self.decided.is_some() && best > self.head.height);
        let waiting = self.sync.in_flight.is_some_and(|(_, from, since)| {
            from > self.head.height && since.elapsed() < REQUEST_TIMEOUT
        });
        if wants && !waiting && !self.writing {
            self.request_blocks(best);
        }
        Ok(started)
    }

    /// Asks the peer with the lowest latency among those that have the next block.
    fn request_blocks(&mut self, best: Height) {
        let Some(from) = self.head.height.next() else { return };
        let stale = self.sync.in_flight.map(|(peer, ..)| peer);
        let Some((&peer, _)) = self
            .peers
            .iter()
            .filter(|(_, view)| view.height >= from)
            .min_by_key(|(id, view)| (Some(**id) == stale, view.latency_ms))
        else {
            return;
        };
        let count = u32::try_from(best.0.saturating_sub(self.head.height.0))
            .unwrap_or(u32::MAX)
            .clamp(1, MAX_BLOCKS_PER_MESSAGE);
        self.sync.in_flight = Some((peer, from, Instant::now()));
        self.send(Outgoing::Send { peer, wire: Wire::GetBlocks { from, count } });
    }

    /// The engine decided a block whose body never came: ask for it as a committed block.
    pub(super) fn request_decided(&mut self) {
        if let Some(best) = self.peers.values().map(|peer| peer.height).max()
            && best > self.head.height
        {
            self.request_blocks(best);
        }
    }

    /// Committed blocks from a peer: check certificates, execute, write.
    pub(super) fn on_blocks(
        &mut self,
        from: PeerId,
        blocks: Vec<Block>,
    ) -> Result<Option<Persisting>, NodeError> {
        if self.writing {
            if self.received.len() < MAX_RECEIVED {
                self.received.push((from, blocks));
            }
            return Ok(None);
        }
        if self.sync.in_flight.is_some_and(|(peer, ..)| peer == from) {
            self.sync.in_flight = None;
        }
        let mut blocks: Vec<Block> = blocks
            .into_iter()
            .skip_while(|block| block.header.height <= self.head.height)
            .collect();
        // The validators of a height are known two heights ahead: a block that changes them
        // ends the batch, and the blocks after it are asked for again once it is applied.
        if let Some(changer) = blocks.iter().position(changes_validators) {
            blocks.truncate(changer.saturating_add(1));
        }
        let checked = self.check_certificates(&blocks);
        if checked < blocks.len() {
            self.send(Outgoing::Report { peer: from, misbehaviour: Misbehaviour::InvalidBlock });
            blocks.truncate(checked);
        }
        if blocks.is_empty() {
            return self.maybe_sync();
        }
        self.revert_executed();
        let mut built = Vec::with_capacity(blocks.len());
        let mut parent = self.head.clone();
        for block in blocks {
            match self.apply_synced(&parent, &block) {
                Ok(done) => {
                    parent = block.header.clone();
                    built.push(done);
                }
                Err(reason) => {
                    warn!(height = block.header.height.0, %reason, "a downloaded block does not check out");
                    self.send(Outgoing::Report {
                        peer: from,
                        misbehaviour: Misbehaviour::InvalidBlock,
                    });
                    break;
                }
            }
        }
        if built.is_empty() {
            return self.maybe_sync();
        }
        Ok(Some(self.persist(built)))
    }

    /// How many of `blocks`, from the first, are consecutive after the head and carry valid
    /// commit certificates. All their signatures are checked in one batch. None of the blocks
    /// but the last may change the validator set.
    fn check_certificates(&self, blocks: &[Block]) -> usize {
        let current = self.state.config();
        // The configuration as of a waiting validator set's first height.
        let upcoming = self
            .state
            .next_validators()
            .map(|change| (change.from, config_at(&self.state, change.from)));
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
                _ => current,
            };
            match certificate_signatures(config, &block.header) {
                Ok(signatures) => {
                    for signature in signatures {
                        items.push(signature);
                        owners.push(index);
                    }
                }
                Err(error) => {
                    warn!(height = expected, %error, "a downloaded block's certificate is invalid");
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

    /// Executes a downloaded block on top of `parent` (already executed).
    fn apply_synced(
        &mut self,
        parent: &primitives::Header,
        block: &Block,
    ) -> Result<Built, String> {
        self.check_successor(parent, block, false)?;
        let verified = self.verify_block_txs(&block.txs)?;
        self.apply_verified(block, &verified)
    }
}

/// Whether a block carries a transaction that installs a validator set (whether or not it
/// succeeds).
fn changes_validators(block: &Block) -> bool {
    block.txs.iter().any(|tx| matches!(tx.tx.payload, Payload::SetValidators { .. }))
}
