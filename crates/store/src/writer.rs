//! Opening the database and writing blocks.

use crate::{
    error::StoreError,
    reader::Reader,
    tables,
    unwind::{MarketTable, RowUndo, encode_undo},
};
use ledger::{MarketEvent, Receipt, StateDiff};
use market::{book::Trade, settlement::SettlementRecord};
use primitives::{Address, Block, Energy, Genesis, Height, Price, PublicKey, encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableHandle};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// The chain database of one node. Cheap to share behind an `Arc`: any number of readers run
/// beside the one writer.
#[derive(Debug)]
pub struct Store {
    pub(crate) db: Database,
    path: PathBuf,
    config: StoreConfig,
}

/// How a store is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// How many of the newest blocks can be unwound ([`Store::unwind_to`]): each block's commit
    /// writes what undoes it and drops that of the block `undo_depth` below it. 0 (the default)
    /// for final chains (BFT, solo), which never unwind and so pay nothing for it.
    pub undo_depth: u64,
    /// How many transactions a generation of the index by hash and the account history holds
    /// at most (a larger block has one to itself). Smaller makes a commit on a long chain
    /// cheaper, larger makes a lookup probe fewer generations. The boundaries are stored, so
    /// changing it only moves those still to come.
    pub generation_txs: u64,
    /// Bytes of database pages the store keeps in memory (redb's cache; the operating system
    /// caches the file as well). redb's own default, 1 GiB, fills as the chain grows and made
    /// most of a node's memory.
    pub cache_bytes: usize,
}

impl StoreConfig {
    /// The default generation size: 2^16 transactions (see `docs/design/storage.md`).
    pub const GENERATION_TXS: u64 = 1 << 16;
    /// The default page cache: 64 MiB.
    pub const CACHE_BYTES: usize = 64 << 20;
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            undo_depth: 0,
            generation_txs: StoreConfig::GENERATION_TXS,
            cache_bytes: StoreConfig::CACHE_BYTES,
        }
    }
}

impl Store {
    /// Opens the database at `path` with the default [`StoreConfig`] (no undo data), creating it
    /// if it does not exist. Fails with [`StoreError::InUse`] if another process has it open,
    /// and with [`StoreError::Damaged`] if the file is not a database or its pages do not check
    /// out (redb panics on some damage; that is caught and reported the same way).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, StoreConfig::default())
    }

    /// Opens the database at `path` with `config`, as [`Store::open`] does.
    pub fn open_with(path: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        match std::panic::catch_unwind(|| Store::open_unchecked(path, config)) {
            Ok(result) => result,
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unreadable".into());
                Err(StoreError::Damaged {
                    path: path.display().to_string(),
                    reason: format!("reading it failed ({reason})"),
                })
            }
        }
    }

    fn open_unchecked(path: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        let db = Database::builder()
            .set_cache_size(config.cache_bytes)
            .create(path)
            .map_err(|error| StoreError::opening(path, error))?;
        // Create every table up front so that readers never meet a missing one.
        let txn = db.begin_write()?;
        txn.open_table(tables::META)?;
        txn.open_table(tables::HEADERS)?;
        txn.open_table(tables::BODIES)?;
        txn.open_table(tables::TX_OFFSETS)?;
        txn.open_table(tables::CLEARINGS)?;
        txn.open_table(tables::ACCOUNT_TRADES)?;
        txn.open_table(tables::SETTLEMENTS)?;
        txn.open_table(tables::COMMUNITY)?;
        txn.open_table(tables::SETTLED_AT)?;
        txn.open_table(tables::RECEIPTS)?;
        txn.open_table(tables::BLOCK_HASHES)?;
        txn.open_table(tables::TX_INDEX)?;
        txn.open_table(tables::HISTORY)?;
        txn.open_table(tables::GENERATIONS)?;
        txn.open_table(tables::STATE)?;
        txn.open_table(tables::WAL)?;
        txn.open_table(tables::UNDO)?;
        upgrade_layout(&txn, path)?;
        txn.commit()?;
        let store = Store { db, path: path.to_owned(), config };
        store.complete_index()?;
        Ok(store)
    }

    /// Indexes the transactions of committed blocks that a crash left unindexed.
    fn complete_index(&self) -> Result<(), StoreError> {
        let reader = self.read()?;
        let Some(head) = reader.head_height()? else { return Ok(()) };
        let indexed = reader.indexed_height()?;
        let mut blocks = Vec::new();
        for height in indexed.0.saturating_add(1)..=head.0 {
            let block = reader.block(Height(height))?.ok_or_else(|| {
                StoreError::Corrupt(format!("block {height} is missing below the head"))
            })?;
            blocks.push(block);
        }
        drop(reader);
        if !blocks.is_empty() {
            self.index_blocks(&blocks.iter().collect::<Vec<_>>())?;
        }
        Ok(())
    }

    /// Adds committed blocks' transactions to the index by hash, in their own transaction: the
    /// index is derived from the blocks, so a block is durable and may be announced before it
    /// is indexed. Until then [`Reader::transaction`] finds its transactions by reading the
    /// block. Blocks come in height order; each is indexed only if it follows the last indexed
    /// one and is still the stored block at its height (one unwound meanwhile is skipped, and so
    /// is any after a gap: [`Store::open`] indexes what is left).
    pub fn index_blocks(&self, blocks: &[&Block]) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            let mut indexed = match meta.get(tables::META_INDEXED)? {
                Some(bytes) => decode_height(bytes.value())?,
                // Written before the index was kept apart: everything is indexed.
                None => return Ok(()),
            };
            let hashes = txn.open_table(tables::BLOCK_HASHES)?;
            let generations = txn.open_table(tables::GENERATIONS)?;
            let mut tx_index = txn.open_table(tables::TX_INDEX)?;
            for block in blocks {
                let height = block.header.height;
                if indexed.next() != Some(height)
                    || hashes.get(block.hash().0.as_bytes())?.map(|stored| stored.value())
                        != Some(height.0)
                {
                    continue;
                }
                let generation = tables::generation_of(&generations, height)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("block {height} is in no generation"))
                })?;
                for (index, signed) in block.txs.iter().enumerate() {
                    let index = u32::try_from(index).unwrap_or(u32::MAX);
                    let key = tables::tx_index_key(generation, &signed.hash(), height, index);
                    tx_index.insert(&key, ())?;
                }
                indexed = height;
            }
            meta.insert(tables::META_INDEXED, indexed.0.to_be_bytes().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the store is kept.
    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader::new(self.db.begin_read()?))
    }

    /// Writes the genesis, block 0 and the genesis state, unless the database already holds
    /// this chain. Refuses a database that holds another chain.
    pub fn initialize(
        &self,
        genesis: &Genesis,
        block: &Block,
        entries: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        if let Some(stored) = self.read()?.header(Height(0))? {
            if stored.hash() != block.hash() {
                return Err(StoreError::GenesisMismatch {
                    stored: stored.hash().to_string(),
                    offered: block.hash().to_string(),
                });
            }
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            meta.insert(tables::META_GENESIS, encode(genesis).as_slice())?;
            meta.insert(tables::META_INDEXED, 0u64.to_be_bytes().as_slice())?;
            let mut state = txn.open_table(tables::STATE)?;
            for (key, value) in entries {
                state.insert(key.as_slice(), value.as_slice())?;
            }
        }
        write_block(&txn, block, &[], self.config.generation_txs)?;
        txn.commit()?;
        Ok(())
    }

    /// Writes a block, its receipts, what the market did at its start, its state changes and its
    /// account history in one atomic, durable transaction (the index by transaction hash follows
    /// with [`Store::index_blocks`]). The block must extend the stored head.
    /// Write-ahead-log entries up to its height are dropped in the same transaction.
    pub fn commit_block(
        &self,
        block: &Block,
        receipts: &[Receipt],
        events: &[MarketEvent],
        diff: &StateDiff,
    ) -> Result<(), StoreError> {
        self.commit_blocks(&[BlockWrite { block, receipts, events, diff }])
    }

    /// Writes consecutive blocks in one atomic, durable transaction (a node catching up writes
    /// many blocks per fsync). The first must extend the stored head.
    pub fn commit_blocks(&self, blocks: &[BlockWrite<'_>]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        self.write_blocks(&txn, blocks)?;
        txn.commit()?;
        Ok(())
    }

    /// Writes consecutive blocks inside `txn`, each with its undo data when the store keeps it,
    /// and drops the log entries and the undo data the new head no longer needs.
    pub(crate) fn write_blocks(
        &self,
        txn: &redb::WriteTransaction,
        blocks: &[BlockWrite<'_>],
    ) -> Result<(), StoreError> {
        let keep_undo = self.config.undo_depth > 0;
        for BlockWrite { block, receipts, events, diff } in blocks {
            let height = block.header.height;
            {
                let meta = txn.open_table(tables::META)?;
                let head = match meta.get(tables::META_HEAD)? {
                    Some(bytes) => decode_height(bytes.value())?,
                    None => {
                        return Err(StoreError::Corrupt(
                            "no head: database not initialized".into(),
                        ));
                    }
                };
                if head.next() != Some(height) {
                    return Err(StoreError::NotNextBlock { height: height.0, head: head.0 });
                }
                if keep_undo
                    && !diff
                        .undo
                        .entries
                        .iter()
                        .map(|(key, _)| key)
                        .eq(diff.changes.iter().map(|(key, _)| key))
                {
                    return Err(StoreError::UndoMismatch { height: height.0 });
                }
                let mut state = txn.open_table(tables::STATE)?;
                for (key, value) in &diff.changes {
                    match value {
                        Some(value) => state.insert(key.as_slice(), value.as_slice())?,
                        None => state.remove(key.as_slice())?,
                    };
                }
            }
            write_block(txn, block, receipts, self.config.generation_txs)?;
            let mut rows = Vec::new();
            write_market_events(txn, height, events, keep_undo.then_some(&mut rows))?;
            if keep_undo {
                txn.open_table(tables::UNDO)?
                    .insert(height.0, encode_undo(&diff.undo, &rows).as_slice())?;
            }
        }
        if let Some(last) = blocks.last() {
            let last = last.block.header.height.0;
            let mut wal = txn.open_table(tables::WAL)?;
            let end = wal_key(last.saturating_add(1), 0);
            wal.retain_in::<&[u8; 12], _>(..&end, |_, _| false)?;
            // Undo data is kept for the last `undo_depth` blocks: heights above this.
            let kept_above = last.saturating_sub(self.config.undo_depth);
            let mut undo = txn.open_table(tables::UNDO)?;
            undo.retain_in(..=kept_above, |_, _| false)?;
        }
        Ok(())
    }

    /// Keeps the consensus engine's state durably, replacing what was kept before.
    pub fn save_engine_state(&self, state: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            meta.insert(tables::META_ENGINE_STATE, state)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Appends a message this validator signed for `height` to the consensus write-ahead log,
    /// durably, before it is sent to anyone.
    pub fn append_wal(&self, height: Height, message: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut wal = txn.open_table(tables::WAL)?;
            let (start, end) = (wal_key(height.0, 0), wal_key(height.0, u32::MAX));
            let next = match wal.range::<&[u8; 12]>(&start..=&end)?.next_back() {
                Some(entry) => {
                    let entry = entry?;
                    let key = entry.0.value();
                    let mut seq = [0u8; 4];
                    seq.copy_from_slice(&key[8..]);
                    u32::from_be_bytes(seq).saturating_add(1)
                }
                None => 0,
            };
            wal.insert(&wal_key(height.0, next), message)?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// The key of a write-ahead-log entry.
pub(crate) fn wal_key(height: u64, seq: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// One block to write with [`Store::commit_blocks`], with everything it changes.
#[derive(Clone, Copy)]
pub struct BlockWrite<'a> {
    /// The block, proof included.
    pub block: &'a Block,
    /// Its receipts, one per transaction.
    pub receipts: &'a [Receipt],
    /// What the market did at its start.
    pub events: &'a [MarketEvent],
    /// Its state changes.
    pub diff: &'a StateDiff,
}

/// What a slot's gate closure produced, as stored.
#[derive(Clone, PartialEq, Eq, Debug, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct ClearingRecord {
    /// The block at whose start the slot was cleared.
    pub height: Height,
    /// The uniform clearing price, if any.
    pub price: Option<Price>,
    /// Energy matched.
    pub volume: Energy,
    /// The trades.
    pub trades: Vec<Trade>,
}

/// Writes the market tables from a block's events; with `undo`, records what each row held
/// before.
fn write_market_events(
    txn: &redb::WriteTransaction,
    height: Height,
    events: &[MarketEvent],
    mut undo: Option<&mut Vec<RowUndo>>,
) -> Result<(), StoreError> {
    let mut record_undo = |table: MarketTable, key: &[u8], before: Option<Vec<u8>>| {
        if let Some(undo) = undo.as_mut() {
            undo.push(RowUndo { table, key: key.to_vec(), before });
        }
    };
    for event in events {
        match event {
            MarketEvent::Cleared { slot, price, volume, trades } => {
                let record = ClearingRecord {
                    height,
                    price: *price,
                    volume: *volume,
                    trades: trades.clone(),
                };
                let before = txn
                    .open_table(tables::CLEARINGS)?
                    .insert(slot.0, encode(&record).as_slice())?
                    .map(|old| old.value().to_vec());
                record_undo(MarketTable::Clearings, &slot.0.to_be_bytes(), before);
                let mut by_account: BTreeMap<Address, Vec<Trade>> = BTreeMap::new();
                for trade in trades {
                    by_account.entry(trade.buyer).or_default().push(trade.clone());
                    if trade.seller != trade.buyer {
                        by_account.entry(trade.seller).or_default().push(trade.clone());
                    }
                }
                let mut table = txn.open_table(tables::ACCOUNT_TRADES)?;
                for (account, trades) in by_account {
                    let key = tables::account_slot_key(&account, *slot);
                    let before = table
                        .insert(&key, encode(&trades).as_slice())?
                        .map(|old| old.value().to_vec());
                    record_undo(MarketTable::AccountTrades, &key, before);
                }
            }
            MarketEvent::Settled { slot, records } => {
                let mut table = txn.open_table(tables::SETTLEMENTS)?;
                let mut community = SettlementRecord::new(Address(PublicKey([0; 32])), *slot);
                for record in records {
                    let key = tables::account_slot_key(&record.account, *slot);
                    let before = table
                        .insert(&key, encode(record).as_slice())?
                        .map(|old| old.value().to_vec());
                    record_undo(MarketTable::Settlements, &key, before);
                    add_record(&mut community, record);
                }
                let before = txn
                    .open_table(tables::COMMUNITY)?
                    .insert(slot.0, encode(&community).as_slice())?
                    .map(|old| old.value().to_vec());
                record_undo(MarketTable::Community, &slot.0.to_be_bytes(), before);
                let before = txn
                    .open_table(tables::SETTLED_AT)?
                    .insert(slot.0, height.0.to_be_bytes().as_slice())?
                    .map(|old| old.value().to_vec());
                record_undo(MarketTable::SettledAt, &slot.0.to_be_bytes(), before);
            }
        }
    }
    Ok(())
}

/// Adds `record`'s lines to `total`.
pub fn add_record(total: &mut SettlementRecord, record: &SettlementRecord) {
    fn energy(total: &mut Energy, part: Energy) {
        *total = Energy(total.0.saturating_add(part.0));
    }
    fn amount(total: &mut primitives::Amount, part: primitives::Amount) {
        *total = primitives::Amount(total.0.saturating_add(part.0));
    }
    energy(&mut total.produced, record.produced);
    energy(&mut total.consumed, record.consumed);
    energy(&mut total.exported, record.exported);
    energy(&mut total.imported, record.imported);
    energy(&mut total.contract_bought, record.contract_bought);
    amount(&mut total.contract_paid, record.contract_paid);
    amount(&mut total.contract_fees, record.contract_fees);
    energy(&mut total.contract_sold, record.contract_sold);
    amount(&mut total.contract_received, record.contract_received);
    energy(&mut total.market_bought, record.market_bought);
    amount(&mut total.market_paid, record.market_paid);
    amount(&mut total.market_fees, record.market_fees);
    energy(&mut total.market_sold, record.market_sold);
    amount(&mut total.market_received, record.market_received);
    energy(&mut total.grid_bought, record.grid_bought);
    amount(&mut total.grid_paid, record.grid_paid);
    energy(&mut total.grid_sold, record.grid_sold);
    amount(&mut total.grid_received, record.grid_received);
    amount(&mut total.arrears, record.arrears);
}

pub(crate) fn decode_height(bytes: &[u8]) -> Result<Height, StoreError> {
    let bytes: [u8; 8] =
        bytes.try_into().map_err(|_| StoreError::Corrupt("head is not 8 bytes".into()))?;
    Ok(Height(u64::from_be_bytes(bytes)))
}

/// Header, body, receipts, history, the block's generation and the new head.
fn write_block(
    txn: &redb::WriteTransaction,
    block: &Block,
    receipts: &[Receipt],
    generation_txs: u64,
) -> Result<(), StoreError> {
    let height = block.header.height;
    let hash = block.hash();
    let txs = u64::try_from(block.txs.len()).unwrap_or(u64::MAX);
    let generation = join_generation(txn, height, txs, generation_txs)?;

    // The body is borsh(Vec<SignedTransaction>): a u32 count, then each transaction. Encoding it
    // by hand records where each transaction starts.
    let mut body = Vec::with_capacity(4 + block.txs.len() * 180);
    body.extend_from_slice(&u32::try_from(block.txs.len()).unwrap_or(u32::MAX).to_le_bytes());
    let mut offsets = Vec::with_capacity(block.txs.len() * 4);
    for signed in &block.txs {
        offsets.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        borsh::BorshSerialize::serialize(signed, &mut body)
            .map_err(|error| StoreError::Database(error.to_string()))?;
    }

    txn.open_table(tables::HEADERS)?.insert(height.0, encode(&block.header).as_slice())?;
    txn.open_table(tables::BODIES)?.insert(height.0, body.as_slice())?;
    txn.open_table(tables::TX_OFFSETS)?.insert(height.0, offsets.as_slice())?;
    txn.open_table(tables::RECEIPTS)?.insert(height.0, encode(receipts).as_slice())?;
    txn.open_table(tables::BLOCK_HASHES)?.insert(hash.0.as_bytes(), height.0)?;
    {
        let mut touched: BTreeMap<Address, Vec<u8>> = BTreeMap::new();
        for (index, signed) in block.txs.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            for account in signed.tx.accounts() {
                touched.entry(account).or_default().extend_from_slice(&index.to_be_bytes());
            }
        }
        let mut history = txn.open_table(tables::HISTORY)?;
        for (account, positions) in &touched {
            let key = tables::history_key(generation, account, height);
            history.insert(&key, positions.as_slice())?;
        }
    }
    txn.open_table(tables::META)?.insert(tables::META_HEAD, height.0.to_be_bytes().as_slice())?;
    Ok(())
}

/// Puts the block at `height`, holding `txs` transactions, into the newest generation, or into a
/// new one if that would take the newest past `generation_txs` transactions; returns it. The
/// genesis opens generation 0; an empty block never opens one, and a generation's first block
/// may be larger than `generation_txs`.
fn join_generation(
    txn: &redb::WriteTransaction,
    height: Height,
    txs: u64,
    generation_txs: u64,
) -> Result<u32, StoreError> {
    let mut generations = txn.open_table(tables::GENERATIONS)?;
    let newest = generations.last()?.map(|(first, row)| (first.value(), row.value()));
    match newest {
        None => {
            generations.insert(height.0, (0, txs))?;
            Ok(0)
        }
        Some((_, (generation, held)))
            if txs > 0 && held > 0 && held.saturating_add(txs) > generation_txs =>
        {
            let next = generation
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt("too many generations".into()))?;
            generations.insert(height.0, (next, txs))?;
            Ok(next)
        }
        Some((first, (generation, held))) => {
            if txs > 0 {
                generations.insert(first, (generation, held.saturating_add(txs)))?;
            }
            Ok(generation)
        }
    }
}

/// Takes the block at `height`, holding `txs` transactions, out of the newest generation (the
/// inverse of [`join_generation`]), removing the generation if the block opened it.
pub(crate) fn leave_generation(
    txn: &redb::WriteTransaction,
    height: Height,
    txs: u64,
) -> Result<(), StoreError> {
    let mut generations = txn.open_table(tables::GENERATIONS)?;
    let newest = generations.last()?.map(|(first, row)| (first.value(), row.value()));
    let corrupt = || StoreError::Corrupt(format!("block {height} is not in the newest generation"));
    let (first, (generation, held)) = newest.ok_or_else(corrupt)?;
    if first == height.0 {
        generations.remove(first)?;
    } else if first < height.0 {
        if txs > 0 {
            let held = held.checked_sub(txs).ok_or_else(corrupt)?;
            generations.insert(first, (generation, held))?;
        }
    } else {
        return Err(corrupt());
    }
    Ok(())
}

/// Brings the indexes of a database written by an earlier version to [`tables::LAYOUT`], in the
/// opening transaction (a crash leaves the old layout, to be upgraded at the next open), and
/// refuses one written by a later version.
///
/// Layout 1 had no generations: its index by hash and history become generation 0 as they are
/// (their order is kept, so this appends), holding every block up to the head; the next block
/// opens generation 1.
fn upgrade_layout(txn: &redb::WriteTransaction, path: &Path) -> Result<(), StoreError> {
    let mut meta = txn.open_table(tables::META)?;
    let layout = match meta.get(tables::META_LAYOUT)? {
        Some(bytes) => Some(decode_height(bytes.value())?.0),
        None => None,
    };
    let old_tables = txn
        .list_tables()?
        .filter(|table| {
            [tables::OLD_TX_INDEX.name(), tables::OLD_HISTORY.name()].contains(&table.name())
        })
        .count();
    match layout {
        Some(tables::LAYOUT) if old_tables == 0 => return Ok(()),
        Some(tables::LAYOUT) => {
            return Err(StoreError::Layout {
                path: path.display().to_string(),
                reason: "it also holds indexes in the previous layout, written by an older \
                         version after this one; move the file away and resync the node"
                    .into(),
            });
        }
        Some(other) if other > tables::LAYOUT => {
            return Err(StoreError::Layout {
                path: path.display().to_string(),
                reason: format!(
                    "it was written by a newer version (layout {other}; this one reads up to \
                     {}): run the newer version",
                    tables::LAYOUT
                ),
            });
        }
        _ => {}
    }
    if old_tables > 0 {
        let mut held = 0u64;
        for row in txn.open_table(tables::TX_OFFSETS)?.iter()? {
            let (_, offsets) = row?;
            held = held.saturating_add(offsets.value().len() as u64 / 4);
        }
        let mut generations = txn.open_table(tables::GENERATIONS)?;
        if meta.get(tables::META_HEAD)?.is_some() {
            generations.insert(0, (0u32, held))?;
        }
        {
            let old = txn.open_table(tables::OLD_TX_INDEX)?;
            let mut new = txn.open_table(tables::TX_INDEX)?;
            for row in old.iter()? {
                let (key, _) = row?;
                new.insert(&tables::tx_index_key_from_old(0, key.value()), ())?;
            }
        }
        {
            let old = txn.open_table(tables::OLD_HISTORY)?;
            let mut new = txn.open_table(tables::HISTORY)?;
            for row in old.iter()? {
                let (key, value) = row?;
                new.insert(&tables::history_key_from_old(0, key.value()), value.value())?;
            }
        }
        txn.delete_table(tables::OLD_TX_INDEX)?;
        txn.delete_table(tables::OLD_HISTORY)?;
    }
    meta.insert(tables::META_LAYOUT, tables::LAYOUT.to_be_bytes().as_slice())?;
    Ok(())
}
