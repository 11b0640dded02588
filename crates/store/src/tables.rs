//! Table layout. Integers in composite keys are big-endian so that byte order is numeric order.

use primitives::{Address, Height};
use redb::TableDefinition;

/// `"genesis"` → borsh(Genesis); `"head"` → height (8 bytes, big-endian).
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// height → borsh(Header).
pub(crate) const HEADERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("headers");
/// height → borsh(Vec<SignedTransaction>).
pub(crate) const BODIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("bodies");
/// height → borsh(Vec<Receipt>).
pub(crate) const RECEIPTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("receipts");
/// block hash → height.
pub(crate) const BLOCK_HASHES: TableDefinition<'_, &[u8; 32], u64> =
    TableDefinition::new("block_hashes");
/// tx hash → location (see [`TxLocation`]).
pub(crate) const TX_INDEX: TableDefinition<'_, &[u8; 32], &[u8; 20]> =
    TableDefinition::new("tx_index");
/// address ‖ height ‖ index → tx hash: every transaction that touched the account.
pub(crate) const HISTORY: TableDefinition<'_, &[u8; 44], &[u8; 32]> =
    TableDefinition::new("account_history");
/// ledger state key → value.
pub(crate) const STATE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("state");

pub(crate) const META_GENESIS: &str = "genesis";
pub(crate) const META_HEAD: &str = "head";

/// Where a transaction is: its block, its position, and its byte range in the stored body, so
/// that one transaction can be read without decoding the whole block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxLocation {
    pub(crate) height: Height,
    pub(crate) index: u32,
    pub(crate) offset: u32,
    pub(crate) len: u32,
}

impl TxLocation {
    pub(crate) fn to_bytes(self) -> [u8; 20] {
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&self.height.0.to_be_bytes());
        bytes[8..12].copy_from_slice(&self.index.to_be_bytes());
        bytes[12..16].copy_from_slice(&self.offset.to_be_bytes());
        bytes[16..].copy_from_slice(&self.len.to_be_bytes());
        bytes
    }

    pub(crate) fn from_bytes(bytes: &[u8; 20]) -> TxLocation {
        let word = |range: std::ops::Range<usize>| -> u32 {
            u32::from_be_bytes(bytes[range].try_into().unwrap_or_default())
        };
        TxLocation {
            height: Height(u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default())),
            index: word(8..12),
            offset: word(12..16),
            len: word(16..20),
        }
    }
}

pub(crate) fn history_key(address: &Address, height: Height, index: u32) -> [u8; 44] {
    let mut key = [0u8; 44];
    key[..32].copy_from_slice(address.as_bytes());
    key[32..40].copy_from_slice(&height.0.to_be_bytes());
    key[40..].copy_from_slice(&index.to_be_bytes());
    key
}

pub(crate) fn history_position(key: &[u8; 44]) -> (Height, u32) {
    (
        Height(u64::from_be_bytes(key[32..40].try_into().unwrap_or_default())),
        u32::from_be_bytes(key[40..].try_into().unwrap_or_default()),
    )
}
