//! What can go wrong, worded so that the person at the keyboard knows what to do next.

use std::{io, path::PathBuf};

/// Why a keystore operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// A file or directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "read keystore file".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// The account name breaks the naming rule.
    #[error(
        "account name {name:?} is not allowed: use 1 to 32 characters from a-z, 0-9, '_' and '-'"
    )]
    InvalidName {
        /// The refused name.
        name: String,
    },

    /// An account with this name is already stored.
    #[error("an account named '{name}' already exists ({}); choose another name", path.display())]
    NameTaken {
        /// The name asked for.
        name: String,
        /// The existing account's file.
        path: PathBuf,
    },

    /// The key being imported is already stored under another name.
    #[error("address {address} is already stored as account '{existing}'")]
    AddressTaken {
        /// The address of the imported key.
        address: String,
        /// The name of the account that already holds it.
        existing: String,
    },

    /// No stored account matches a name or address.
    #[error("no account '{query}' in {}", dir.display())]
    NotFound {
        /// The name or address looked for.
        query: String,
        /// The keystore directory searched.
        dir: PathBuf,
    },

    /// A lookup string is neither a valid account name nor a valid address.
    #[error("'{query}' is neither an account name nor a valid address: {reason}")]
    BadQuery {
        /// The string given.
        query: String,
        /// Why it is not an address (e.g. a checksum typo).
        reason: String,
    },

    /// The recovery phrase does not have 24 words.
    #[error("the recovery phrase must have 24 words, found {found}")]
    MnemonicWordCount {
        /// How many words were given.
        found: usize,
    },

    /// A word of the recovery phrase is not in the BIP-39 English word list.
    #[error("word {position} of the recovery phrase is not in the BIP-39 English word list")]
    MnemonicUnknownWord {
        /// 1-based position of the bad word.
        position: usize,
    },

    /// The recovery phrase's checksum does not match.
    #[error(
        "the recovery phrase's checksum does not match: a word is wrong or the words are out of order"
    )]
    MnemonicChecksum,

    /// A derivation index that cannot be hardened.
    #[error("derivation index {index} is too large (must be below 2^31)")]
    InvalidIndex {
        /// The refused index.
        index: u32,
    },

    /// An empty password was given for a new account.
    #[error("the password must not be empty")]
    EmptyPassword,

    /// Decryption failed: the password is wrong, or the file was edited.
    #[error(
        "wrong password for account '{name}' ({}), or the file has been modified",
        path.display()
    )]
    WrongPassword {
        /// The account.
        name: String,
        /// Its keystore file.
        path: PathBuf,
    },

    /// Key-derivation parameters chosen by the caller are out of range.
    #[error("invalid key-derivation parameters: {0}")]
    KdfParams(#[source] KdfParamsError),

    /// A keystore file asks for key-derivation parameters outside the accepted range; it is
    /// refused before any memory is allocated.
    #[error("keystore file {} asks for unsafe key-derivation parameters: {source}", path.display())]
    FileKdfParams {
        /// The keystore file.
        path: PathBuf,
        /// What is out of range.
        source: KdfParamsError,
    },

    /// A keystore file is not in the expected format.
    #[error("keystore file {} is malformed: {reason}", path.display())]
    Malformed {
        /// The keystore file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A keystore file was written by a newer (or unknown) version of the format.
    #[error(
        "keystore file {} has format version {version}; this program reads version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        /// The keystore file.
        path: PathBuf,
        /// The version in the file.
        version: u64,
        /// The version this code reads and writes.
        supported: u32,
    },

    /// The file decrypted, but the key inside does not belong to the address on the outside.
    #[error(
        "keystore file {} decrypts to a key for {derived}, not the stored address {stored}",
        path.display()
    )]
    AddressMismatch {
        /// The keystore file.
        path: PathBuf,
        /// The address written in the file.
        stored: String,
        /// The address of the key inside.
        derived: String,
    },

    /// The account passed in no longer matches its file (renamed, replaced or edited since it
    /// was listed).
    #[error("keystore file {} no longer holds account '{name}' ({address})", path.display())]
    StaleAccount {
        /// The account's name as it was listed.
        name: String,
        /// The account's address as it was listed.
        address: String,
        /// Its keystore file.
        path: PathBuf,
    },

    /// A password file is empty or unreadable as text.
    #[error("password file {}: {reason}", path.display())]
    PasswordFile {
        /// The password file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Key derivation or encryption failed on inputs that passed validation (a bug).
    #[error("cryptographic operation failed unexpectedly: {0}")]
    Crypto(String),
}

/// Why a set of key-derivation parameters is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdfParamsError {
    /// The algorithm is not Argon2id.
    #[error("algorithm '{0}' is not supported (expected argon2id)")]
    Algorithm(String),
    /// Memory cost outside the accepted range.
    #[error("memory_kib {memory_kib} is outside {min}..={max}")]
    Memory {
        /// The requested memory, in KiB.
        memory_kib: u32,
        /// The least accepted (8 KiB per lane).
        min: u32,
        /// The most accepted.
        max: u32,
    },
    /// Iteration count outside the accepted range.
    #[error("iterations {iterations} is outside 1..={max}")]
    Iterations {
        /// The requested number of passes.
        iterations: u32,
        /// The most accepted.
        max: u32,
    },
    /// Parallelism outside the accepted range.
    #[error("parallelism {parallelism} is outside 1..={max}")]
    Parallelism {
        /// The requested number of lanes.
        parallelism: u32,
        /// The most accepted.
        max: u32,
    },
}
