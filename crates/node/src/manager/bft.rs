//! Consensus messages from peers: checking proposed blocks by executing them, and sending this
//! validator's own messages once they are in the write-ahead log.

use super::{Built, MAX_AHEAD, MAX_CANDIDATES, Manager, NodeError, Persisting};
use crate::{
    p2p::{Misbehaviour, Outgoing, PeerId},
    wire::{WalEntry, Wire},
};
use consensus::{Event, Message};
use primitives::{
    Address, Block, SignedProposal, SignedTransaction, TxRejection, VerifiedTransaction,
};
use std::{sync::Arc, time::Instant};
use tracing::{debug, warn};

/// How far ahead of this node's clock a proposed block's timestamp may be, in wall time (at a
/// faster chain speed that many ms of wall time are worth more chain time).
pub(crate) const MAX_CLOCK_DRIFT_MS: u64 = 2_000;

impl Manager {
    /// A proposal or vote from a peer (its signature already checked).
    pub(super) fn on_consensus(
        &mut self,
        from: PeerId,
        message: Message,
        block: Option<Box<Block>>,
    ) -> Result<Option<Persisting>, NodeError> {
        match message {
            Message::Vote(vote) => self.drive(Event::Vote(vote)),
            Message::Proposal(proposal) => {
                let Some(block) = block else { return Ok(None) };
                let height = proposal.proposal.height;
                if height <= self.head.height {
                    return Ok(None);
                }
                if self.writing || self.head.height.next() != Some(height) {
                    if self.ahead.len() < MAX_AHEAD {
                        self.ahead.push((from, proposal, *block));
                    }
                    return Ok(None);
                }
                self.on_proposal(from, proposal, *block)
            }
        }
    }

    /// A proposal for the next height: check its block and tell the engine.
    fn on_proposal(
        &mut self,
        from: PeerId,
        proposal: SignedProposal,
        block: Block,
    ) -> Result<Option<Persisting>, NodeError> {
        let hash = block.hash();
        if hash != proposal.proposal.block {
            self.send(Outgoing::Report { peer: from, misbehaviour: Misbehaviour::InvalidMessage });
            return Ok(None);
        }
        let valid = if self.invalid.contains(&hash) {
            false
        } else if self.executed.as_ref().is_some_and(|built| built.block.hash() == hash) {
            true
        } else {
            let block = Arc::new(block);
            if self.candidates.len() < MAX_CANDIDATES {
                self.candidates.insert(hash, block.clone());
            }
            match self.execute_candidate(&block) {
                Ok(()) => true,
                Err(reason) => {
                    warn!(height = block.header.height.0, %hash, %reason, "proposed block is invalid");
                    self.invalid.insert(hash);
                    self.send(Outgoing::Report {
                        peer: from,
                        misbehaviour: Misbehaviour::InvalidBlock,
                    });
                    false
                }
            }
        };
        self.drive(Event::Proposal { proposal, valid })
    }

    /// Executes `block`, meant to be the next one, on top of the state (reverting any other
    /// executed block) and checks that it is a valid successor of the head. When it is, it stays
    /// executed until it is decided or another block is executed.
    pub(super) fn execute_candidate(&mut self, block: &Block) -> Result<(), String> {
        let started = Instant::now();
        self.check_successor(&self.head.clone(), block, true)?;
        let verified = self.verify_block_txs(&block.txs)?;
        self.revert_executed();
        self.executed = Some(self.apply_verified(block, &verified)?);
        debug!(
            height = block.header.height.0,
            txs = block.txs.len(),
            ms = started.elapsed().as_millis() as u64,
            "checked a proposed block"
        );
        Ok(())
    }

    /// Executes a checked block's verified transactions on the state and compares the state
    /// root with the header's; on a mismatch the block is reverted.
    pub(super) fn apply_verified(
        &mut self,
        block: &Block,
        verified: &[VerifiedTransaction],
    ) -> Result<Built, String> {
        let header = &block.header;
        let outcome = self
            .state
            .apply_block(header.timestamp, verified)
            .map_err(|(index, error)| format!("transaction {index} cannot be included: {error}"))?;
        if outcome.diff.root != header.state_root {
            self.state.revert_block();
            return Err(format!(
                "state root {} after execution, the header says {}",
                outcome.diff.root, header.state_root
            ));
        }
        Ok(Built {
            block: block.clone(),
            receipts: outcome.receipts,
            events: outcome.events,
            diff: outcome.diff,
            started: Instant::now(),
        })
    }

    /// The checks that need no execution: height, parent, time, proposer, transaction root.
    /// `proposed`: the block is a proposal, so its time must also be near this node's clock
    /// (a committed block downloaded later is history).
    pub(super) fn check_successor(
        &self,
        parent: &primitives::Header,
        block: &Block,
        proposed: bool,
    ) -> Result<(), String> {
        let header = &block.header;
        if parent.height.next() != Some(header.height) {
            return Err(format!("height {} does not follow {}", header.height, parent.height));
        }
        if header.parent != parent.hash() {
            return Err(format!("parent {} is not block {}", header.parent, parent.height));
        }
        if header.timestamp <= parent.timestamp {
            return Err("timestamp is not after the parent's".into());
        }
        let drift = self.clock.scale().chain_span(MAX_CLOCK_DRIFT_MS);
        if proposed && header.timestamp.0 > self.clock.now().0.saturating_add(drift) {
            return Err(format!(
                "timestamp {} is more than {MAX_CLOCK_DRIFT_MS} ms ahead of this node's clock",
                header.timestamp.0
            ));
        }
        if block.txs.len() > self.max_block_txs {
            return Err(format!(
                "{} transactions, at most {} allowed",
                block.txs.len(),
                self.max_block_txs
            ));
        }
        let validators = self.state.validators_at(header.height);
        if !validators.iter().any(|validator| Address(validator.key) == header.proposer) {
            return Err(format!("proposer {} is not a validator", header.proposer));
        }
        if Block::tx_root(&block.txs) != header.tx_root {
            return Err("the transactions do not match the header's root".into());
        }
        Ok(())
    }

    /// Checks the signatures of a block's transactions. Those already waiting in the mempool
    /// with the same signature were checked on admission; the rest are checked in one batch.
    pub(super) fn verify_block_txs(
        &self,
        txs: &[SignedTransaction],
    ) -> Result<Vec<VerifiedTransaction>, String> {
        let mut known: Vec<Option<VerifiedTransaction>> = Vec::with_capacity(txs.len());
        let mut unknown = Vec::new();
        for tx in txs {
            match self.mempool.get(&tx.hash()) {
                Some(verified) if verified.signed().signature == tx.signature => {
                    known.push(Some(verified.clone()));
                }
                _ => {
                    known.push(None);
                    unknown.push(tx.clone());
                }
            }
        }
        if !unknown.is_empty() {
            debug!(
                txs = txs.len(),
                unknown = unknown.len(),
                "checking signatures of a block's new transactions"
            );
        }
        let checked = if unknown.is_empty() {
            Vec::new()
        } else {
            SignedTransaction::verify_batch(unknown, &self.state.config().chain_id, rand::rng())
        };
        let mut checked = checked.into_iter();
        known
            .into_iter()
            .enumerate()
            .map(|(index, slot)| match slot {
                Some(verified) => Ok(verified),
                None => match checked.next() {
                    Some(Ok(verified)) => Ok(verified),
                    Some(Err(rejection)) => Err(format!("transaction {index}: {rejection}")),
                    None => Err(format!("transaction {index}: {}", TxRejection::BadSignature)),
                },
            })
            .collect()
    }

    /// Sends a message this validator signed, after writing it durably to the write-ahead log.
    pub(super) fn broadcast(&mut self, message: Message) -> Result<(), NodeError> {
        let block = match &message {
            Message::Proposal(proposal) => self.block_named(&proposal.proposal.block),
            Message::Vote(_) => None,
        };
        let started = Instant::now();
        let entry = WalEntry { message, block: block.as_deref().cloned() };
        self.store.append_wal(message.height(), &primitives::encode(&entry))?;
        debug!(
            height = message.height().0,
            round = message.round(),
            ms = started.elapsed().as_millis() as u64,
            "logged an own message"
        );
        match Wire::consensus(message, block) {
            Some(wire) => self.send(Outgoing::Gossip { wire, from: None }),
            None => debug!("not resending a proposal whose block is gone"),
        }
        Ok(())
    }

    /// The block with this hash, if this node has it for the next height.
    fn block_named(&self, hash: &primitives::BlockHash) -> Option<Box<Block>> {
        if let Some(built) = self.executed.as_ref().filter(|built| built.block.hash() == *hash) {
            return Some(Box::new(built.block.clone()));
        }
        self.candidates.get(hash).map(|block| Box::new((**block).clone()))
    }

    /// A peer connected: tell it our head, and repeat what we signed for the next height so
    /// that a validator that was away can vote in this round.
    pub(super) fn on_peer_connected(&mut self, peer: PeerId) -> Result<(), NodeError> {
        self.send(Outgoing::Send {
            peer,
            wire: Wire::Status { height: self.head.height, hash: self.head.hash() },
        });
        let Some(next) = self.head.height.next() else { return Ok(()) };
        for bytes in self.store.read()?.wal(next)? {
            let Ok(WalEntry { message, block }) = primitives::decode(&bytes) else { continue };
            if let Some(wire) = Wire::consensus(message, block.map(Box::new)) {
                self.send(Outgoing::Send { peer, wire });
            }
        }
        Ok(())
    }

    /// After a write: proposals that were waiting for this height, blocks from peers that
    /// arrived meanwhile, and a decision whose write had to wait.
    pub(super) fn resume_after_write(&mut self) -> Result<Option<Persisting>, NodeError> {
        let next = self.head.height.next();
        let ahead = std::mem::take(&mut self.ahead);
        let mut started = None;
        for (from, proposal, block) in ahead {
            let height = proposal.proposal.height;
            if height <= self.head.height {
                continue;
            }
            if Some(height) != next || self.writing {
                self.ahead.push((from, proposal, block));
                continue;
            }
            if let Some(write) = self.on_proposal(from, proposal, block)? {
                started = Some(write);
            }
        }
        if started.is_none()
            && let Some((height, hash, proof)) = self.decided.take()
            && Some(height) == next
        {
            started = self.commit_decided(hash, proof);
        }
        if started.is_none() {
            let received = std::mem::take(&mut self.received);
            for (from, blocks) in received {
                if self.writing {
                    break;
                }
                if let Some(write) = self.on_blocks(from, blocks)? {
                    started = Some(write);
                }
            }
        }
        if started.is_none() {
            started = self.maybe_sync()?;
        }
        Ok(started)
    }
}
