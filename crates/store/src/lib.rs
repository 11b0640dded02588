//! Joule's persistence.
//!
//! One redb file holds the chain: headers, transaction lists, receipts, the ledger state as
//! key/value entries, an index of transactions by hash and an index of each account's history.
//! A block and everything it changes are written in **one** write transaction, fsync'd once
//! ([`Store::commit_block`]), so a node killed at any instant restarts with every committed
//! block, its receipts and indexes, and the state those blocks produced, and nothing of a block
//! that was not committed.
//!
//! A chain whose engine may undo blocks opens the store with an undo depth
//! ([`StoreConfig::undo_depth`]): each commit then also keeps what undoes the block, and
//! [`Store::unwind_to`] takes the newest blocks off again, with everything they wrote, in one
//! transaction. Final chains keep no undo data.
//!
//! The store does not interpret blocks beyond what its indexes need, does not execute anything,
//! and holds no state in memory: readers ([`Store::read`]) see a consistent snapshot (redb MVCC)
//! while the node keeps writing.

mod error;
mod reader;
mod tables;
mod unwind;
mod writer;

pub use error::StoreError;
pub use reader::{HistoryEntry, Reader, StateEntry, TableRows, TxRecord};
pub use unwind::UnwoundBlock;
pub use writer::{BlockWrite, ClearingRecord, Store, StoreConfig, add_record};
