//! Table layout. Integers in composite keys are big-endian so that byte order is numeric order.
//!
//! The indexes are shaped by what a B-tree does with them. A key that lands at a random place
//! copies one page per insert once the table is large. The index by transaction hash and the
//! account history are keyed at random (by hash, by address), so their keys start with the
//! *generation* they were written in: a run of consecutive blocks holding up to
//! [`crate::StoreConfig::generation_txs`] transactions ([`GENERATIONS`]). A commit then only
//! lands in the newest generation's part of each table, whose size is bounded, and a lookup
//! probes each generation. Everything else is keyed so that a block appends: one row per block.

use crate::error::StoreError;
use primitives::{Address, Height, Slot, TxHash};
use redb::{ReadableTable, TableDefinition};

/// `"genesis"` → borsh(Genesis); `"head"` → height (8 bytes, big-endian).
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// height → borsh(Header).
pub(crate) const HEADERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("headers");
/// height → borsh(Vec<SignedTransaction>).
pub(crate) const BODIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("bodies");
/// height → where each transaction starts in the body (u32 little-endian each), so that one
/// transaction can be read without decoding the whole block.
pub(crate) const TX_OFFSETS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("tx_offsets");
/// height → borsh(Vec<Receipt>).
pub(crate) const RECEIPTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("receipts");
/// block hash → height.
pub(crate) const BLOCK_HASHES: TableDefinition<'_, &[u8; 32], u64> =
    TableDefinition::new("block_hashes");
/// generation ‖ first 8 bytes of the tx hash ‖ height ‖ index → nothing. A lookup scans, in each
/// generation, the (almost always no or one) entry with the hash's prefix and checks the full
/// hash of the transaction it names.
pub(crate) const TX_INDEX: TableDefinition<'_, &[u8; 24], ()> = TableDefinition::new("tx_index_v2");
/// generation ‖ address ‖ height → positions (u32 big-endian each, ascending) of the block's
/// transactions that touched the account.
pub(crate) const HISTORY: TableDefinition<'_, &[u8; 44], &[u8]> =
    TableDefinition::new("account_history_v2");
/// height of a generation's first block → (generation, transactions in it so far). The last row
/// is the generation new blocks join.
pub(crate) const GENERATIONS: TableDefinition<'_, u64, (u32, u64)> =
    TableDefinition::new("generations");
/// The index by hash of layout 1: first 8 bytes of the tx hash ‖ height ‖ index → nothing. Only
/// read, to migrate it.
pub(crate) const OLD_TX_INDEX: TableDefinition<'_, &[u8; 20], ()> =
    TableDefinition::new("tx_index");
/// The account history of layout 1: address ‖ height → positions. Only read, to migrate it.
pub(crate) const OLD_HISTORY: TableDefinition<'_, &[u8; 40], &[u8]> =
    TableDefinition::new("account_history");
/// slot → borsh(ClearingRecord): what the slot's gate closure produced.
pub(crate) const CLEARINGS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("clearings");
/// address ‖ slot → borsh(Vec<Trade>): the account's trades in the slot.
pub(crate) const ACCOUNT_TRADES: TableDefinition<'_, &[u8; 40], &[u8]> =
    TableDefinition::new("account_trades");
/// address ‖ slot → borsh(SettlementRecord).
pub(crate) const SETTLEMENTS: TableDefinition<'_, &[u8; 40], &[u8]> =
    TableDefinition::new("settlements");
/// slot → borsh(SettlementRecord): the sums over every account settled in the slot.
pub(crate) const COMMUNITY: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("community");
/// slot → the height of the block that settled it (8 bytes, big-endian): how deep a statement's
/// lines are.
pub(crate) const SETTLED_AT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("settled_at");
/// The consensus write-ahead log: the messages this validator signed for heights not yet
/// committed, keyed by height (8 bytes, big-endian) and sequence number (4 bytes).
pub(crate) const WAL: TableDefinition<'_, &[u8; 12], &[u8]> = TableDefinition::new("consensus_wal");
/// ledger state key → value: the state entries.
pub(crate) const STATE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("state");
/// height → borsh(BlockUndo): what undoes the block, kept for the last `undo_depth` blocks
/// only (none on a final chain).
pub(crate) const UNDO: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("undo");

pub(crate) const META_GENESIS: &str = "genesis";
pub(crate) const META_HEAD: &str = "head";
/// The last height whose transactions are in [`TX_INDEX`] (absent: all of them, as written
/// before the index was written apart).
pub(crate) const META_INDEXED: &str = "indexed";
/// The consensus engine's durable state (a Raft term and vote), as the engine encoded it.
pub(crate) const META_ENGINE_STATE: &str = "engine_state";
/// The layout of the indexes (8 bytes, big-endian; absent: layout 1, without generations).
pub(crate) const META_LAYOUT: &str = "layout";
/// The layout this version writes: the index by hash and the history keyed by generation.
pub(crate) const LAYOUT: u64 = 2;

/// The generation that holds `height` (`None` before the genesis is written).
pub(crate) fn generation_of(
    generations: &impl ReadableTable<u64, (u32, u64)>,
    height: Height,
) -> Result<Option<u32>, StoreError> {
    match generations.range(..=height.0)?.next_back() {
        Some(row) => Ok(Some(row?.1.value().0)),
        None => Ok(None),
    }
}

/// Every generation that holds a block at or below `height`, newest first.
pub(crate) fn generations_down_from(
    generations: &impl ReadableTable<u64, (u32, u64)>,
    height: Height,
) -> Result<Vec<u32>, StoreError> {
    let mut found = Vec::new();
    for row in generations.range(..=height.0)?.rev() {
        found.push(row?.1.value().0);
    }
    Ok(found)
}

pub(crate) fn tx_index_key(generation: u32, hash: &TxHash, height: Height, index: u32) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..4].copy_from_slice(&generation.to_be_bytes());
    key[4..12].copy_from_slice(&hash.0.0[..8]);
    key[12..20].copy_from_slice(&height.0.to_be_bytes());
    key[20..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The first and last possible index keys for a hash in a generation.
pub(crate) fn tx_index_range(generation: u32, hash: &TxHash) -> ([u8; 24], [u8; 24]) {
    let first = tx_index_key(generation, hash, Height(0), 0);
    let last = tx_index_key(generation, hash, Height(u64::MAX), u32::MAX);
    (first, last)
}

pub(crate) fn tx_index_position(key: &[u8; 24]) -> (Height, u32) {
    let mut height = [0u8; 8];
    height.copy_from_slice(&key[12..20]);
    let mut index = [0u8; 4];
    index.copy_from_slice(&key[20..]);
    (Height(u64::from_be_bytes(height)), u32::from_be_bytes(index))
}

/// A layout-1 index key in `generation`.
pub(crate) fn tx_index_key_from_old(generation: u32, old: &[u8; 20]) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..4].copy_from_slice(&generation.to_be_bytes());
    key[4..].copy_from_slice(old);
    key
}

/// address ‖ slot, for the per-account market tables.
pub(crate) fn account_slot_key(address: &Address, slot: Slot) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(address.as_bytes());
    key[32..].copy_from_slice(&slot.0.to_be_bytes());
    key
}

pub(crate) fn history_key(generation: u32, address: &Address, height: Height) -> [u8; 44] {
    let mut key = [0u8; 44];
    key[..4].copy_from_slice(&generation.to_be_bytes());
    key[4..36].copy_from_slice(address.as_bytes());
    key[36..].copy_from_slice(&height.0.to_be_bytes());
    key
}

pub(crate) fn history_height(key: &[u8; 44]) -> Height {
    let mut height = [0u8; 8];
    height.copy_from_slice(&key[36..]);
    Height(u64::from_be_bytes(height))
}

/// A layout-1 history key in `generation`.
pub(crate) fn history_key_from_old(generation: u32, old: &[u8; 40]) -> [u8; 44] {
    let mut key = [0u8; 44];
    key[..4].copy_from_slice(&generation.to_be_bytes());
    key[4..].copy_from_slice(old);
    key
}

/// The slot of an address ‖ slot key.
pub(crate) fn account_slot(key: &[u8; 40]) -> Slot {
    let mut slot = [0u8; 8];
    slot.copy_from_slice(&key[32..]);
    Slot(u64::from_be_bytes(slot))
}

/// Decodes a list of big-endian u32.
pub(crate) fn positions(bytes: &[u8]) -> impl DoubleEndedIterator<Item = u32> + '_ {
    bytes.chunks_exact(4).map(|chunk| u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
}
