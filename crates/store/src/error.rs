//! Storage errors. Any of them is fatal to a node: it stops rather than run on a store it cannot
//! trust.

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened (missing directory, permissions, or another
    /// process holds it).
    #[error("cannot open the chain database {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// An I/O or database error while reading or writing.
    #[error("chain database error: {0}")]
    Database(String),
    /// Stored bytes do not decode: the file is damaged or from another version.
    #[error("chain database is corrupt: {0}")]
    Corrupt(String),
    /// A block was offered out of order.
    #[error("block {height} does not extend the stored head {head}")]
    NotNextBlock {
        /// The block offered.
        height: u64,
        /// The stored head.
        head: u64,
    },
    /// Unwinding to a height above the head.
    #[error("cannot unwind to height {target}: the head is at {head}")]
    UnwindAboveHead {
        /// The height asked for.
        target: u64,
        /// The stored head.
        head: u64,
    },
    /// Unwinding further than the undo data reaches.
    #[error(
        "cannot unwind from {head} to height {target}: undo data reaches down to height {lowest} (the store keeps it for the last {depth} blocks)"
    )]
    UnwindTooDeep {
        /// The height asked for.
        target: u64,
        /// The stored head.
        head: u64,
        /// The lowest height the store can unwind to.
        lowest: u64,
        /// The configured undo depth.
        depth: u64,
    },
    /// A block's state diff does not carry undo data for exactly the entries it changes.
    #[error("the state diff of block {height} carries no undo data for the entries it changes")]
    UndoMismatch {
        /// The block.
        height: u64,
    },
    /// The database already holds a chain with another genesis.
    #[error("the database holds another chain (genesis {stored}), not genesis {offered}")]
    GenesisMismatch {
        /// Stored genesis block hash.
        stored: String,
        /// Offered genesis block hash.
        offered: String,
    },
}

macro_rules! database_errors {
    ($($error:ty),*) => {
        $(impl From<$error> for StoreError {
            fn from(error: $error) -> StoreError {
                StoreError::Database(error.to_string())
            }
        })*
    };
}

database_errors!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<primitives::DecodeError> for StoreError {
    fn from(error: primitives::DecodeError) -> StoreError {
        StoreError::Corrupt(error.0)
    }
}
