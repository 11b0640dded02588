//! The node's application: the ledger state and the mempool, behind the core's [`App`].
//!
//! It builds blocks from the mempool, executes proposed and downloaded blocks (checking the
//! signatures of transactions the mempool has not seen), keeps the one executed block not yet
//! decided, and seals decided blocks for the store.

use crate::{
    core::{App, BlockError},
    mempool::Mempool,
    metrics::NodeMetrics,
    validators::{ValidatorSchedule, config_at},
};
use ledger::{MarketEvent, Receipt, State, StateDiff, UndoData};
use primitives::{
    Address, Block, ChainConfig, ConsensusProof, Header, Height, Payload, SignedTransaction,
    TimestampMs, TxRejection, VerifiedTransaction,
};
use std::{sync::Arc, time::Instant};
use store::Store;
use tracing::{debug, warn};

/// A block executed on the state: what the store must write for it.
pub(crate) struct Executed {
    pub(crate) receipts: Vec<Receipt>,
    pub(crate) events: Vec<MarketEvent>,
    pub(crate) diff: StateDiff,
    /// When its building or checking began (for the commit-time metric).
    pub(crate) started: Instant,
}

/// The ledger and the mempool.
pub(crate) struct LedgerApp {
    pub(crate) state: State,
    pub(crate) mempool: Mempool,
    /// This node's validator address, if it has a key: the proposer of the blocks it builds.
    proposer: Option<Address>,
    max_block_txs: usize,
    metrics: NodeMetrics,
    /// The block executed on the state and not yet sealed.
    candidate: Option<(Block, Executed)>,
    /// The chain's store, read for the undo data of written blocks (chains with forks).
    store: Option<Arc<Store>>,
    /// Blocks sealed since the last write finished, oldest first, with what undoes each: the
    /// store does not have them yet.
    sealed: Vec<(Arc<Block>, Arc<UndoData>)>,
}

impl LedgerApp {
    pub(crate) fn new(
        state: State,
        mempool: Mempool,
        proposer: Option<Address>,
        metrics: NodeMetrics,
        store: Option<Arc<Store>>,
    ) -> LedgerApp {
        let max_block_txs =
            usize::try_from(state.config().params.max_block_txs).unwrap_or(usize::MAX);
        LedgerApp {
            state,
            mempool,
            proposer,
            max_block_txs,
            metrics,
            candidate: None,
            store,
            sealed: Vec::new(),
        }
    }

    /// The block at `height` the state has applied, with what undoes it: sealed and not yet
    /// written, or from the store.
    fn applied(&self, height: Height) -> Result<(Arc<Block>, Arc<UndoData>), String> {
        if let Some((block, undo)) =
            self.sealed.iter().rev().find(|(block, _)| block.header.height == height)
        {
            return Ok((block.clone(), undo.clone()));
        }
        let store = self.store.as_ref().ok_or("no store to read undo data from")?;
        let reader = store.read().map_err(|error| error.to_string())?;
        let block = reader
            .block(height)
            .map_err(|error| error.to_string())?
            .ok_or_else(|| format!("block {height} is not stored"))?;
        let undo = reader
            .undo_data(height)
            .map_err(|error| error.to_string())?
            .ok_or_else(|| format!("no undo data is kept for block {height}"))?;
        Ok((Arc::new(block), Arc::new(undo)))
    }

    /// The address of this node's key: who its blocks pay.
    pub(crate) fn proposer(&self) -> Option<Address> {
        self.proposer
    }

    /// Whether this node's key validates `height`, by `schedule`.
    pub(crate) fn validates(&self, schedule: &ValidatorSchedule, height: Height) -> bool {
        self.proposer.is_some_and(|address| schedule.is_validator(height, &address.0))
    }

    /// Checks the signatures of a block's transactions. Those already waiting in the mempool
    /// with the same signature were checked on admission; the rest are checked in one batch.
    fn verify_block_txs(
        &self,
        txs: &[SignedTransaction],
    ) -> Result<Vec<VerifiedTransaction>, BlockError> {
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
                    Some(Err(rejection)) => {
                        Err(BlockError::Signature { index, reason: rejection.to_string() })
                    }
                    None => Err(BlockError::Signature {
                        index,
                        reason: TxRejection::BadSignature.to_string(),
                    }),
                },
            })
            .collect()
    }
}

impl App for LedgerApp {
    type Write = Executed;

    fn build(&mut self, parent: &Header, height: Height, timestamp: TimestampMs) -> Option<Block> {
        self.discard_candidate();
        let started = Instant::now();
        let proposer = self.proposer.unwrap_or(parent.proposer);
        let events = self.state.begin_block_by(timestamp, proposer);
        let selected = self.mempool.select_block(&self.state, self.max_block_txs);
        let mut txs = Vec::with_capacity(selected.len());
        let mut receipts = Vec::with_capacity(selected.len());
        for tx in selected {
            match self.state.execute(&tx) {
                Ok(receipt) => {
                    receipts.push(receipt);
                    txs.push(tx.into_signed());
                }
                Err(error) => {
                    warn!(tx = %tx.hash(), %error, "leaving out a transaction that cannot be included")
                }
            }
        }
        let diff = self.state.finish_block();
        let header = Header {
            height,
            parent: parent.hash(),
            timestamp,
            proposer,
            tx_root: Block::tx_root(&txs),
            state_root: diff.root,
            proof: ConsensusProof::Genesis,
        };
        self.metrics.block_build_seconds.observe(started.elapsed().as_secs_f64());
        debug!(
            height = height.0,
            txs = txs.len(),
            ms = started.elapsed().as_millis() as u64,
            "built a block"
        );
        let block = Block { header, txs };
        self.candidate = Some((block.clone(), Executed { receipts, events, diff, started }));
        Some(block)
    }

    fn execute(&mut self, _parent: &Header, block: &Block) -> Result<(), BlockError> {
        let started = Instant::now();
        let verified = self.verify_block_txs(&block.txs)?;
        self.discard_candidate();
        let header = &block.header;
        let outcome = self
            .state
            .apply_block_by(header.timestamp, header.proposer, &verified)
            .map_err(|(index, error)| BlockError::Inclusion { index, reason: error.to_string() })?;
        if outcome.diff.root != header.state_root {
            self.state.revert_block();
            return Err(BlockError::StateRoot {
                computed: outcome.diff.root,
                claimed: header.state_root,
            });
        }
        debug!(
            height = header.height.0,
            txs = block.txs.len(),
            ms = started.elapsed().as_millis() as u64,
            "executed a block"
        );
        let executed = Executed {
            receipts: outcome.receipts,
            events: outcome.events,
            diff: outcome.diff,
            started,
        };
        self.candidate = Some((block.clone(), executed));
        Ok(())
    }

    fn candidate(&self) -> Option<&Block> {
        self.candidate.as_ref().map(|(block, _)| block)
    }

    fn discard_candidate(&mut self) {
        if self.candidate.take().is_some() {
            self.state.revert_block();
        }
    }

    fn seal(&mut self, proof: ConsensusProof) -> Option<(Arc<Block>, Executed)> {
        let (mut block, executed) = self.candidate.take()?;
        block.header.proof = proof;
        let block = Arc::new(block);
        if self.store.is_some() {
            self.sealed.push((block.clone(), executed.diff.undo.clone()));
        }
        Some((block, executed))
    }

    fn committed(&mut self, _blocks: &[Arc<Block>]) {
        self.sealed.clear();
        self.mempool.prune(&self.state);
        self.metrics.mempool_size.set(self.mempool.len() as i64);
    }

    fn rewind(&mut self, to: Height) -> Result<Vec<Arc<Block>>, String> {
        self.discard_candidate();
        let height = self.state.cursor().height;
        if to > height {
            return Err(format!("the state is at {height}, below {to}"));
        }
        // Everything needed, checked to fit together, before anything changes.
        let mut undone = Vec::new();
        let mut root = self.state.root();
        for at in (to.0.saturating_add(1)..=height.0).rev() {
            let (block, undo) = self.applied(Height(at))?;
            if undo.root_after != root || block.header.state_root != root {
                return Err(format!("the undo data of block {at} is not for this state"));
            }
            root = undo.root_before;
            undone.push((block, undo));
        }
        for (block, undo) in &undone {
            self.state
                .undo_block(undo)
                .map_err(|error| format!("undoing block {}: {error}", block.header.height))?;
        }
        self.sealed.retain(|(block, _)| block.header.height <= to);
        Ok(undone.into_iter().map(|(block, _)| block).collect())
    }

    fn reverted(&mut self, blocks: &[Arc<Block>]) -> Vec<SignedTransaction> {
        let txs: Vec<SignedTransaction> =
            blocks.iter().rev().flat_map(|block| block.txs.iter().cloned()).collect();
        if txs.is_empty() {
            return Vec::new();
        }
        let chain_id = self.state.config().chain_id.clone();
        let now = self.state.cursor().time;
        let mut readmitted = Vec::new();
        for verified in
            SignedTransaction::verify_batch(txs, &chain_id, rand::rng()).into_iter().flatten()
        {
            let signed = verified.signed().clone();
            if self.mempool.admit(verified, &mut self.state, now).is_ok() {
                readmitted.push(signed);
            }
        }
        self.metrics.mempool_size.set(self.mempool.len() as i64);
        debug!(
            readmitted = readmitted.len(),
            "returned the transactions of undone blocks to the mempool"
        );
        readmitted
    }

    fn has_ready(&self) -> bool {
        self.mempool.has_ready(&self.state)
    }

    fn validators(&self, head: Height) -> ValidatorSchedule {
        ValidatorSchedule::of(&self.state, head)
    }

    fn changes_validators(&self, block: &Block) -> bool {
        block.txs.iter().any(|tx| matches!(tx.tx.payload, Payload::SetValidators { .. }))
    }

    fn config_at(&self, height: Height) -> ChainConfig {
        config_at(&self.state, height).into_owned()
    }
}
