//! Undo data and unwinding: taking the newest blocks off the chain, with everything they
//! wrote, in one write transaction.
//!
//! For each of the last `undo_depth` blocks the store keeps a [`BlockUndo`], written in the
//! block's own transaction: the ledger's [`UndoData`] (every state entry the block changed, as
//! it was before) and the market rows the block wrote, as they were before. Everything else a
//! block wrote is keyed by its height or derived from its body (header, body, offsets, receipts,
//! block hash, index by hash, history), so unwinding finds it from the block itself.

use crate::{
    error::StoreError,
    tables,
    writer::{BlockWrite, Store, decode_height, leave_generation},
};
use borsh::{BorshDeserialize, BorshSerialize};
use ledger::UndoData;
use primitives::{Address, Block, Header, Height, SignedTransaction, decode, encode};
use redb::{ReadableTable, WriteTransaction};
use std::collections::BTreeSet;

/// What undoes one block in the store, as stored in [`tables::UNDO`].
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct BlockUndo {
    /// The state entries the block changed, as they were before it.
    pub(crate) state: UndoData,
    /// The market rows the block wrote, as they were before it, in the order written.
    pub(crate) rows: Vec<RowUndo>,
}

/// [`BlockUndo`] by reference, for writing without a copy (the same encoding).
#[derive(BorshSerialize)]
pub(crate) struct BlockUndoRef<'a> {
    pub(crate) state: &'a UndoData,
    pub(crate) rows: &'a [RowUndo],
}

/// One market row a block wrote, with what it held before (`None`: it did not exist).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub(crate) struct RowUndo {
    pub(crate) table: MarketTable,
    /// The row's key: a big-endian slot, or address ‖ slot.
    pub(crate) key: Vec<u8>,
    pub(crate) before: Option<Vec<u8>>,
}

/// The market tables a block writes from the ledger's market events.
#[derive(Clone, Copy, Debug, BorshSerialize, BorshDeserialize)]
pub(crate) enum MarketTable {
    /// [`tables::CLEARINGS`].
    Clearings,
    /// [`tables::ACCOUNT_TRADES`].
    AccountTrades,
    /// [`tables::SETTLEMENTS`].
    Settlements,
    /// [`tables::COMMUNITY`].
    Community,
    /// [`tables::SETTLED_AT`] (last: undo rows written before it existed decode the same).
    SettledAt,
}

impl MarketTable {
    /// Sets a row to `value` (`None` removes it).
    fn put(
        self,
        txn: &WriteTransaction,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let bad_key = || StoreError::Corrupt(format!("undo data names a bad {self:?} key"));
        match self {
            MarketTable::Clearings | MarketTable::Community | MarketTable::SettledAt => {
                let definition = match self {
                    MarketTable::Clearings => tables::CLEARINGS,
                    MarketTable::Community => tables::COMMUNITY,
                    _ => tables::SETTLED_AT,
                };
                let slot = u64::from_be_bytes(key.try_into().map_err(|_| bad_key())?);
                let mut table = txn.open_table(definition)?;
                match value {
                    Some(value) => table.insert(slot, value)?,
                    None => table.remove(slot)?,
                };
            }
            MarketTable::AccountTrades | MarketTable::Settlements => {
                let definition = match self {
                    MarketTable::AccountTrades => tables::ACCOUNT_TRADES,
                    _ => tables::SETTLEMENTS,
                };
                let key: &[u8; 40] = key.try_into().map_err(|_| bad_key())?;
                let mut table = txn.open_table(definition)?;
                match value {
                    Some(value) => table.insert(key, value)?,
                    None => table.remove(key)?,
                };
            }
        }
        Ok(())
    }
}

/// A block [`Store::unwind_to`] took off the chain, with what undoes its state changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnwoundBlock {
    /// The block, proof included.
    pub block: Block,
    /// Its state changes as they were before it: [`ledger::State::undo_block`] undoes it in
    /// memory.
    pub undo: UndoData,
}

impl Store {
    /// Takes every block above `target` off the chain in one write transaction, fsync'd once:
    /// headers, bodies, offsets, receipts, block hashes, index entries, history, market records
    /// (restored to what they held before) and state entries (restored from the undo data), and
    /// moves the head (and the last indexed height) down to `target`. Returns the blocks taken
    /// off, newest first, each with its undo data. A crash leaves the old chain or the new one.
    ///
    /// Refused, changing nothing: a target above the head, and one more than `undo_depth`
    /// blocks down or below a block written without undo data. The write-ahead log is left as it
    /// is: it holds what this validator signed, which stays true on any branch, and only final
    /// engines, which never unwind, write it.
    pub fn unwind_to(&self, target: Height) -> Result<Vec<UnwoundBlock>, StoreError> {
        self.switch_branch(target, &[])
    }

    /// Unwinds to `target` (as [`Store::unwind_to`]) and writes `blocks` on top, the first at
    /// `target + 1`, all in one write transaction: a node that moves to another branch never
    /// shows, even after a crash, a chain between the two.
    pub fn switch_branch(
        &self,
        target: Height,
        blocks: &[BlockWrite<'_>],
    ) -> Result<Vec<UnwoundBlock>, StoreError> {
        let txn = self.db.begin_write()?;
        let unwound = unwind(&txn, target, self.config().undo_depth)?;
        self.write_blocks(&txn, blocks)?;
        if unwound.is_empty() && blocks.is_empty() {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok(unwound)
    }
}

/// Unwinds to `target` inside `txn` (see [`Store::unwind_to`]).
fn unwind(
    txn: &WriteTransaction,
    target: Height,
    depth: u64,
) -> Result<Vec<UnwoundBlock>, StoreError> {
    let head = {
        let meta = txn.open_table(tables::META)?;
        let bytes = meta
            .get(tables::META_HEAD)?
            .ok_or_else(|| StoreError::Corrupt("no head: database not initialized".into()))?;
        decode_height(bytes.value())?
    };
    if target > head {
        return Err(StoreError::UnwindAboveHead { target: target.0, head: head.0 });
    }
    let lowest = lowest_reachable(txn, head, depth)?;
    if target < lowest {
        return Err(StoreError::UnwindTooDeep {
            target: target.0,
            head: head.0,
            lowest: lowest.0,
            depth,
        });
    }
    let mut unwound = Vec::new();
    for height in (target.0.saturating_add(1)..=head.0).rev() {
        let record = txn
            .open_table(tables::UNDO)?
            .remove(height)?
            .map(|bytes| decode::<BlockUndo>(bytes.value()))
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt(format!("undo data of block {height} vanished")))?;
        let block = remove_block(txn, Height(height))?;
        {
            let mut state = txn.open_table(tables::STATE)?;
            for (key, before) in &record.state.entries {
                match before {
                    Some(value) => state.insert(key.as_slice(), value.as_slice())?,
                    None => state.remove(key.as_slice())?,
                };
            }
        }
        for row in record.rows.iter().rev() {
            row.table.put(txn, &row.key, row.before.as_deref())?;
        }
        unwound.push(UnwoundBlock { block, undo: record.state });
    }
    let mut meta = txn.open_table(tables::META)?;
    meta.insert(tables::META_HEAD, target.0.to_be_bytes().as_slice())?;
    let indexed = meta.get(tables::META_INDEXED)?.map(|bytes| decode_height(bytes.value()));
    // Absent: written before the index was kept apart, every block is indexed.
    if indexed.transpose()?.is_none_or(|indexed| indexed > target) {
        meta.insert(tables::META_INDEXED, target.0.to_be_bytes().as_slice())?;
    }
    Ok(unwound)
}

/// The lowest height the chain can be unwound to: at most `depth` blocks down, and no lower
/// than the newest block without undo data (the genesis has none).
fn lowest_reachable(
    txn: &WriteTransaction,
    head: Height,
    depth: u64,
) -> Result<Height, StoreError> {
    let undo = txn.open_table(tables::UNDO)?;
    let floor = head.0.saturating_sub(depth);
    let mut lowest = head.0;
    while lowest > floor && undo.get(lowest)?.is_some() {
        lowest = lowest.saturating_sub(1);
    }
    Ok(Height(lowest))
}

/// Removes the block at `height` and everything keyed by it or derived from its body; returns
/// the block.
fn remove_block(txn: &WriteTransaction, height: Height) -> Result<Block, StoreError> {
    let missing = |what: &str| StoreError::Corrupt(format!("block {height} has no {what}"));
    let header: Header = txn
        .open_table(tables::HEADERS)?
        .remove(height.0)?
        .map(|bytes| decode(bytes.value()))
        .transpose()?
        .ok_or_else(|| missing("header"))?;
    let txs: Vec<SignedTransaction> = txn
        .open_table(tables::BODIES)?
        .remove(height.0)?
        .map(|bytes| decode(bytes.value()))
        .transpose()?
        .ok_or_else(|| missing("body"))?;
    txn.open_table(tables::TX_OFFSETS)?.remove(height.0)?;
    txn.open_table(tables::RECEIPTS)?.remove(height.0)?;
    let hash = header.hash();
    txn.open_table(tables::BLOCK_HASHES)?.remove(hash.0.as_bytes())?;
    // The same keys `write_block` and `index_blocks` derive from the body.
    let generation = tables::generation_of(&txn.open_table(tables::GENERATIONS)?, height)?
        .ok_or_else(|| missing("generation"))?;
    let mut touched: BTreeSet<Address> = BTreeSet::new();
    {
        let mut tx_index = txn.open_table(tables::TX_INDEX)?;
        for (index, signed) in txs.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            tx_index.remove(&tables::tx_index_key(generation, &signed.hash(), height, index))?;
            touched.extend(signed.tx.accounts());
        }
    }
    {
        let mut history = txn.open_table(tables::HISTORY)?;
        for account in &touched {
            history.remove(&tables::history_key(generation, account, height))?;
        }
    }
    leave_generation(txn, height, u64::try_from(txs.len()).unwrap_or(u64::MAX))?;
    Ok(Block { header, txs })
}

/// Encodes a block's undo record.
pub(crate) fn encode_undo(state: &UndoData, rows: &[RowUndo]) -> Vec<u8> {
    encode(&BlockUndoRef { state, rows })
}
