//! Table layout. Integers in composite keys are big-endian so that byte order is numeric order.
//!
//! The indexes are shaped by what a B-tree does with them. A key that lands at a random place
//! copies one page per insert once the table is large, so the only randomly keyed index, the one
//! by transaction hash, keeps its entries small (20 bytes, no value). Everything else is keyed so
//! that a block appends: one row per block, or one row per account per block.

use primitives::{Address, Height, Slot, TxHash};
use redb::TableDefinition;

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
/// first 8 bytes of the tx hash ‖ height ‖ index → nothing. A lookup scans the (almost always
/// single) entry with the hash's prefix and checks the full hash of the transaction it names.
pub(crate) const TX_INDEX: TableDefinition<'_, &[u8; 20], ()> = TableDefinition::new("tx_index");
/// address ‖ height → positions (u32 big-endian each, ascending) of the block's transactions
/// that touched the account.
pub(crate) const HISTORY: TableDefinition<'_, &[u8; 40], &[u8]> =
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

pub(crate) fn tx_index_key(hash: &TxHash, height: Height, index: u32) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..8].copy_from_slice(&hash.0.0[..8]);
    key[8..16].copy_from_slice(&height.0.to_be_bytes());
    key[16..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The first and last possible index keys for a hash.
pub(crate) fn tx_index_range(hash: &TxHash) -> ([u8; 20], [u8; 20]) {
    let mut first = [0u8; 20];
    first[..8].copy_from_slice(&hash.0.0[..8]);
    let mut last = [0xffu8; 20];
    last[..8].copy_from_slice(&hash.0.0[..8]);
    (first, last)
}

pub(crate) fn tx_index_position(key: &[u8; 20]) -> (Height, u32) {
    let mut height = [0u8; 8];
    height.copy_from_slice(&key[8..16]);
    let mut index = [0u8; 4];
    index.copy_from_slice(&key[16..]);
    (Height(u64::from_be_bytes(height)), u32::from_be_bytes(index))
}

/// address ‖ slot, for the per-account market tables.
pub(crate) fn account_slot_key(address: &Address, slot: Slot) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(address.as_bytes());
    key[32..].copy_from_slice(&slot.0.to_be_bytes());
    key
}

pub(crate) fn history_key(address: &Address, height: Height) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(address.as_bytes());
    key[32..].copy_from_slice(&height.0.to_be_bytes());
    key
}

pub(crate) fn history_height(key: &[u8; 40]) -> Height {
    let mut height = [0u8; 8];
    height.copy_from_slice(&key[32..]);
    Height(u64::from_be_bytes(height))
}

/// Decodes a list of big-endian u32.
pub(crate) fn positions(bytes: &[u8]) -> impl DoubleEndedIterator<Item = u32> + '_ {
    bytes.chunks_exact(4).map(|chunk| u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
}
