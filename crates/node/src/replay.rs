//! Re-executing a stored chain from its genesis and checking everything it claims.
//!
//! This is what "anyone can recompute the chain" means in practice: every block's parent link,
//! consensus proof, transaction root, signatures, nonces, receipts and state root are recomputed
//! from block 0, the transaction index is checked against the blocks, and the final state must
//! equal the stored one, with balances adding up to the supply.

use crate::chain::genesis_block;
use consensus::verify_proof;
use ledger::State;
use primitives::{Amount, Block, Height, SignedTransaction};
use std::collections::{HashSet, VecDeque};
use store::Store;

/// What a successful replay saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// The head height.
    pub height: Height,
    /// Transactions in all blocks.
    pub transactions: u64,
    /// Of those, how many have a failed receipt.
    pub failed: u64,
    /// Accounts in the final state.
    pub accounts: usize,
    /// The circulating supply: the sum of all balances and reservations, plus the grid's
    /// balance, minus all arrears.
    pub supply: Amount,
}

/// Why a stored chain does not check out.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A check failed.
    #[error("block {height}: {problem}")]
    Block {
        /// The block.
        height: u64,
        /// What is wrong.
        problem: String,
    },
    /// The final state is wrong.
    #[error("final state: {0}")]
    State(String),
}

fn problem(height: Height, problem: impl Into<String>) -> ReplayError {
    ReplayError::Block { height: height.0, problem: problem.into() }
}

/// Replays the chain in `store`, calling `progress(height, head)` after every block.
pub fn replay_chain(
    store: &Store,
    mut progress: impl FnMut(Height, Height),
) -> Result<ReplayReport, ReplayError> {
    let reader = store.read()?;
    let genesis = reader.genesis()?.ok_or_else(|| ReplayError::State("no genesis".into()))?;
    let head = reader.head_height()?.ok_or_else(|| ReplayError::State("no head".into()))?;
    let mut state = State::from_genesis(&genesis)
        .map_err(|error| ReplayError::State(format!("genesis: {error}")))?;
    let block0 = genesis_block(&genesis, &state);
    let stored0 = reader.block(Height(0))?.ok_or_else(|| problem(Height(0), "missing"))?;
    if stored0 != block0 {
        return Err(problem(Height(0), "does not match the stored genesis"));
    }
    let chain_id = genesis.config.chain_id.clone();
    let mut parent = block0.header;
    let mut seen = HashSet::new();
    let mut transactions = 0u64;
    let mut failed = 0u64;
    let mut height = Height(0);
    // The newest timestamps, newest first, that the next block's is checked against.
    let window = consensus::rules(genesis.config.engine).time_window().max(1);
    let mut recent = VecDeque::from([parent.timestamp]);
    while height < head {
        height = height.next().ok_or_else(|| problem(height, "height overflow"))?;
        let Block { header, txs } =
            reader.block(height)?.ok_or_else(|| problem(height, "missing"))?;
        if header.height != height || header.parent != parent.hash() {
            return Err(problem(height, "does not extend the previous block"));
        }
        if !consensus::pow::after_median(recent.make_contiguous(), header.timestamp) {
            return Err(problem(
                height,
                "timestamp is not after the median of the blocks before it",
            ));
        }
        if recent.len() == window {
            recent.pop_back();
        }
        recent.push_front(header.timestamp);
        verify_proof(&crate::validators::config_at(&state, height), &header)
            .map_err(|error| problem(height, error.to_string()))?;
        if Block::tx_root(&txs) != header.tx_root {
            return Err(problem(height, "transaction root does not match"));
        }
        let verified = SignedTransaction::verify_batch(txs.clone(), &chain_id, rand::rng())
            .into_iter()
            .enumerate()
            .map(|(index, result)| {
                result.map_err(|error| problem(height, format!("transaction {index}: {error}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for tx in &verified {
            if !seen.insert(tx.hash()) {
                return Err(problem(height, format!("transaction {} appears twice", tx.hash())));
            }
        }
        let outcome = state
            .apply_block_by(header.timestamp, header.proposer, &verified)
            .map_err(|(index, error)| problem(height, format!("transaction {index}: {error}")))?;
        if outcome.diff.root != header.state_root {
            return Err(problem(height, "state root does not match re-execution"));
        }
        for event in &outcome.events {
            match event {
                ledger::MarketEvent::Cleared { slot, price, volume, trades } => {
                    let stored = reader.clearing(*slot)?.ok_or_else(|| {
                        problem(height, format!("no stored clearing of slot {slot}"))
                    })?;
                    if (stored.height, stored.price, stored.volume, &stored.trades)
                        != (height, *price, *volume, trades)
                    {
                        return Err(problem(
                            height,
                            format!("stored clearing of slot {slot} differs from re-execution"),
                        ));
                    }
                }
                ledger::MarketEvent::Settled { slot, records } => {
                    for record in records {
                        let stored = reader.settlements(&record.account, *slot..=*slot)?;
                        if stored.as_slice() != std::slice::from_ref(record) {
                            return Err(problem(
                                height,
                                format!(
                                    "stored settlement of {} in slot {slot} differs from re-execution",
                                    record.account
                                ),
                            ));
                        }
                    }
                }
            }
        }
        let stored_receipts =
            reader.receipts(height)?.ok_or_else(|| problem(height, "receipts missing"))?;
        if stored_receipts != outcome.receipts {
            return Err(problem(height, "stored receipts differ from re-execution"));
        }
        for (index, tx) in verified.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if !reader.is_indexed_at(&tx.hash(), height, index)? {
                return Err(problem(height, format!("transaction {} is not indexed", tx.hash())));
            }
        }
        transactions += verified.len() as u64;
        failed += outcome
            .receipts
            .iter()
            .filter(|receipt| matches!(receipt, ledger::Receipt::Failed(_)))
            .count() as u64;
        parent = header;
        progress(height, head);
    }
    let stored = reader.state()?;
    if stored.root() != state.root() || stored.entries() != state.entries() {
        return Err(ReplayError::State("the stored state differs from re-execution".into()));
    }
    if let Err((held, issued)) = state.check_conservation() {
        return Err(ReplayError::State(format!(
            "balances, reservations and the grid's balance less arrears add up to {held}, the supply is {issued}"
        )));
    }
    let supply = state.supply().circulating();
    Ok(ReplayReport {
        height: head,
        transactions,
        failed,
        accounts: state.accounts().count(),
        supply,
    })
}
