//! Storage errors. Any of them is fatal to a node: it stops rather than run on a store it cannot
//! trust.

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened (missing directory, permissions, disk errors).
    #[error("cannot open the chain database {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Another process holds the database open (a node running on it).
    #[error(
        "the chain database {path} is in use by another process (is a node still running on it?)"
    )]
    InUse {
        /// The file.
        path: String,
    },
    /// The file is not a database this version can read, or its pages do not check out: it
    /// was damaged (a disk fault, a partial copy, an edit by hand).
    #[error("the chain database {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds the chain in a layout this version cannot read or upgrade.
    #[error("the chain database {path} cannot be used by this version: {reason}")]
    Layout {
        /// The file.
        path: String,
        /// Why, and what to do.
        reason: String,
    },
    /// An I/O or database error while reading or writing.
    #[error("chain database error: {0}")]
    Database(String),
    /// Stored bytes do not decode: the file is damaged or from another version.
    #[error("the chain database is damaged: {0}")]
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

impl StoreError {
    /// Whether the stored bytes themselves are bad (the file is damaged or was altered), as
    /// opposed to the file being unreachable or in use: a node may then start over from its
    /// peers (`joule node --resync`).
    pub fn is_damaged(&self) -> bool {
        matches!(self, StoreError::Damaged { .. } | StoreError::Corrupt(_))
    }

    /// Sorts out why redb could not open the file at `path`.
    pub(crate) fn opening(path: &std::path::Path, error: redb::DatabaseError) -> StoreError {
        let path = path.display().to_string();
        match error {
            redb::DatabaseError::DatabaseAlreadyOpen
            | redb::DatabaseError::LockProtocolMismatch => StoreError::InUse { path },
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => {
                StoreError::Damaged { path, reason }
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                StoreError::Damaged { path, reason: error.to_string() }
            }
            redb::DatabaseError::RepairAborted => {
                StoreError::Damaged { path, reason: "it cannot be repaired".into() }
            }
            other => StoreError::Open { path, reason: other.to_string() },
        }
    }
}

/// A storage error, with pages that fail their checks reported as corruption.
impl From<redb::StorageError> for StoreError {
    fn from(error: redb::StorageError) -> StoreError {
        match error {
            redb::StorageError::Corrupted(reason) => StoreError::Corrupt(reason),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<redb::Error> for StoreError {
    fn from(error: redb::Error) -> StoreError {
        match error {
            redb::Error::Corrupted(reason) => StoreError::Corrupt(reason),
            other => StoreError::Database(other.to_string()),
        }
    }
}

macro_rules! database_errors {
    ($($error:ident),*) => {
        $(impl From<redb::$error> for StoreError {
            fn from(error: redb::$error) -> StoreError {
                match error {
                    redb::$error::Storage(storage) => storage.into(),
                    other => StoreError::Database(other.to_string()),
                }
            }
        })*
    };
}

database_errors!(TransactionError, TableError, CommitError);

impl From<primitives::DecodeError> for StoreError {
    fn from(error: primitives::DecodeError) -> StoreError {
        StoreError::Corrupt(error.0)
    }
}
