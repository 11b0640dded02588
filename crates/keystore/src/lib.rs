//! The wallet's encrypted key storage.
//!
//! This crate owns Joule's accounts at rest: it creates 24-word BIP-39 recovery phrases,
//! derives Ed25519 account keys from them, and keeps each account in its own password-encrypted
//! JSON file in a keystore directory ([`Keystore`]).
//!
//! It deliberately does not: prompt for or read passwords from a terminal (the binary does; see
//! [`read_password_file`] for the non-interactive case), sign transactions (it hands out a
//! [`primitives::SecretKey`]), talk to a node, cache unlocked keys, or lock the directory
//! against concurrent writers (two processes creating the *same name* at once are safe — one
//! loses with [`KeystoreError::NameTaken`] — but two importing the same phrase under different
//! names at the same instant are not caught).
//!
//! # Keys
//!
//! A recovery phrase is 24 English words (256 bits of entropy from the caller's RNG). The
//! BIP-39 seed is computed with an empty passphrase, and the account key is derived with
//! SLIP-0010 for Ed25519 (HMAC-SHA512 keyed with `"ed25519 seed"` for the master node,
//! hardened children only) along
//!
//! ```text
//! m / 44' / 7475' / 0' / 0' / index'
//! ```
//!
//! with `index` 0 for the accounts this crate creates and imports. The 32-byte SLIP-0010 key is
//! the Ed25519 seed of [`primitives::SecretKey::from_seed`]; the address is its public key
//! ([`primitives::Address`], `joule1…`). [`key_from_mnemonic`] computes it without a keystore.
//!
//! # Files
//!
//! Account `alice` lives in `<dir>/alice.json` (mode 0600, directory 0700 when this crate
//! creates it; an existing directory's mode is left alone):
//!
//! ```json
//! {
//!   "version": 1,
//!   "name": "alice",
//!   "address": "joule1…",
//!   "kdf": {
//!     "algorithm": "argon2id",
//!     "memory_kib": 65536,
//!     "iterations": 3,
//!     "parallelism": 1,
//!     "salt": "<16 random bytes, hex>"
//!   },
//!   "cipher": { "algorithm": "xchacha20poly1305", "nonce": "<24 random bytes, hex>" },
//!   "ciphertext": "<hex>",
//!   "created_ms": 1760000000000
//! }
//! ```
//!
//! The encryption key is Argon2id (version 0x13, 32-byte output) of the password with the
//! file's parameters and salt. The plaintext is the derivation index (4 bytes, big-endian)
//! followed by the recovery phrase (UTF-8, single spaces); the ciphertext is the
//! XChaCha20-Poly1305 output with its 16-byte tag at the end. The associated data is
//! `"joule-keystore" ‖ version (u32 big-endian) ‖ name length (1 byte) ‖ name ‖ address (32
//! bytes)`, so editing the version, name or address makes decryption fail; the KDF parameters,
//! salt and nonce are bound because they determine the key. `created_ms` is informational and
//! not authenticated. After decrypting, the key is re-derived and checked against the address.
//!
//! KDF parameters are read from the file but must lie within [`KdfParams::validate`]'s bounds,
//! so a hostile file cannot make the wallet allocate gigabytes or spin for hours. Files are
//! written to a temporary file in the same directory, synced, then renamed into place without
//! overwriting anything, and the directory is synced.

mod derive;
mod error;
mod format;

pub use derive::{COIN_TYPE, MNEMONIC_WORDS, key_from_mnemonic};
pub use error::{KdfParamsError, KeystoreError};
pub use format::KdfParams;
pub use zeroize::Zeroizing;

use bip39::Mnemonic;
use format::{KeystoreFile, Secret};
use primitives::{Address, SecretKey};
use rand_core::CryptoRng;
use std::{
    fs::{self, File},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

/// Longest account name, in characters.
pub const MAX_NAME_LEN: usize = 32;

/// Largest keystore or password file read; anything bigger is refused unread.
const MAX_FILE_BYTES: usize = 64 * 1024;

/// A directory of encrypted account files.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

/// An account as listed from its file, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The account's name, also its file name without `.json`.
    pub name: String,
    /// The account's address.
    pub address: Address,
    /// Its keystore file.
    pub path: PathBuf,
}

impl Keystore {
    /// The keystore in `dir`, creating the directory (mode 0700) if it is missing.
    pub fn open(dir: &Path) -> Result<Keystore, KeystoreError> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io_error("create keystore directory", dir))?;
        Ok(Keystore { dir: dir.to_owned() })
    }

    /// The keystore directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates account `name` with a fresh recovery phrase drawn from `rng`, encrypted with
    /// `password`. Returns the account and the phrase, which the caller must show to the user
    /// once: it is the only way to restore the account if the file or password is lost.
    pub fn create(
        &self,
        name: &str,
        password: &str,
        kdf: KdfParams,
        mut rng: impl CryptoRng,
    ) -> Result<(StoredAccount, Zeroizing<String>), KeystoreError> {
        self.check_new_account(name, password, kdf)?;
        let mnemonic = derive::generate_mnemonic(&mut rng);
        let account = self.store(name, &mnemonic, password, kdf, rng)?;
        Ok((account, derive::phrase_of(&mnemonic)))
    }

    /// Stores an existing recovery phrase as account `name`, encrypted with `password`. The
    /// phrase must be 24 English words with a valid checksum; an address already in the
    /// keystore is refused.
    pub fn import(
        &self,
        name: &str,
        mnemonic: &str,
        password: &str,
        kdf: KdfParams,
        rng: impl CryptoRng,
    ) -> Result<StoredAccount, KeystoreError> {
        self.check_new_account(name, password, kdf)?;
        let mnemonic = derive::parse_mnemonic(mnemonic)?;
        self.store(name, &mnemonic, password, kdf, rng)
    }

    /// Every account, sorted by name. A `.json` file that cannot be read or parsed is an
    /// error, not skipped; other files are ignored.
    pub fn list(&self) -> Result<Vec<StoredAccount>, KeystoreError> {
        let entries =
            fs::read_dir(&self.dir).map_err(io_error("list keystore directory", &self.dir))?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_error("list keystore directory", &self.dir))?.path();
            let is_json = path.extension().is_some_and(|extension| extension == "json");
            let is_hidden = path
                .file_name()
                .and_then(|file_name| file_name.to_str())
                .is_some_and(|file_name| file_name.starts_with('.'));
            if is_json && !is_hidden {
                paths.push(path);
            }
        }
        let mut accounts = paths
            .iter()
            .map(|path| read_account(path).map(|(account, _)| account))
            .collect::<Result<Vec<_>, _>>()?;
        accounts.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(accounts)
    }

    /// The account called `name_or_address`, or holding that `joule1…` address.
    pub fn find(&self, name_or_address: &str) -> Result<StoredAccount, KeystoreError> {
        let query = name_or_address.trim();
        let not_found =
            || KeystoreError::NotFound { query: query.to_owned(), dir: self.dir.clone() };
        if validate_name(query).is_ok() {
            let path = self.path_for(query);
            return match fs::symlink_metadata(&path) {
                Ok(_) => read_account(&path).map(|(account, _)| account),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Err(not_found()),
                Err(error) => Err(io_error("read keystore file", &path)(error)),
            };
        }
        match query.parse::<Address>() {
            Ok(address) => self
                .list()?
                .into_iter()
                .find(|account| account.address == address)
                .ok_or_else(not_found),
            Err(error) => {
                Err(KeystoreError::BadQuery { query: query.to_owned(), reason: error.to_string() })
            }
        }
    }

    /// Decrypts `account` with `password` and returns its signing key.
    pub fn unlock(
        &self,
        account: &StoredAccount,
        password: &str,
    ) -> Result<SecretKey, KeystoreError> {
        self.decrypt(account, password).map(|(_, key)| key)
    }

    /// Decrypts `account` with `password` and returns its recovery phrase, e.g. to move it to
    /// another machine with [`Keystore::import`].
    pub fn export_mnemonic(
        &self,
        account: &StoredAccount,
        password: &str,
    ) -> Result<Zeroizing<String>, KeystoreError> {
        self.decrypt(account, password).map(|(secret, _)| secret.phrase)
    }

    fn path_for(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The checks that need no secret, done before any expensive work.
    fn check_new_account(
        &self,
        name: &str,
        password: &str,
        kdf: KdfParams,
    ) -> Result<(), KeystoreError> {
        validate_name(name)?;
        if password.is_empty() {
            return Err(KeystoreError::EmptyPassword);
        }
        kdf.validate().map_err(KeystoreError::KdfParams)?;
        let path = self.path_for(name);
        if fs::symlink_metadata(&path).is_ok() {
            return Err(KeystoreError::NameTaken { name: name.to_owned(), path });
        }
        Ok(())
    }

    fn store(
        &self,
        name: &str,
        mnemonic: &Mnemonic,
        password: &str,
        kdf: KdfParams,
        rng: impl CryptoRng,
    ) -> Result<StoredAccount, KeystoreError> {
        let index = 0;
        let address = Address(derive::key_for(mnemonic, index)?.public_key());
        if let Some(existing) = self.list()?.into_iter().find(|account| account.address == address)
        {
            return Err(KeystoreError::AddressTaken {
                address: address.to_string(),
                existing: existing.name,
            });
        }
        let secret = Secret { phrase: derive::phrase_of(mnemonic), index };
        let file = format::seal(name, &address, &secret, password, kdf, now_ms(), rng)?;
        let path = self.path_for(name);
        let mut json = serde_json::to_vec_pretty(&file)
            .map_err(|error| io_error("encode keystore file", &path)(io::Error::other(error)))?;
        json.push(b'\n');
        self.write_new_file(name, &path, &json)?;
        Ok(StoredAccount { name: name.to_owned(), address, path })
    }

    /// Writes `contents` to `path` atomically and without replacing an existing file: a
    /// temporary file (mode 0600) in the same directory, synced, renamed into place, then the
    /// directory synced so the rename survives a crash.
    fn write_new_file(
        &self,
        name: &str,
        path: &Path,
        contents: &[u8],
    ) -> Result<(), KeystoreError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".").suffix(".tmp");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        let mut temporary = builder
            .tempfile_in(&self.dir)
            .map_err(io_error("create a temporary file in", &self.dir))?;
        temporary.write_all(contents).map_err(io_error("write", temporary.path()))?;
        temporary.as_file().sync_all().map_err(io_error("sync", temporary.path()))?;
        temporary.persist_noclobber(path).map_err(|error| {
            if error.error.kind() == io::ErrorKind::AlreadyExists {
                KeystoreError::NameTaken { name: name.to_owned(), path: path.to_owned() }
            } else {
                io_error("write keystore file", path)(error.error)
            }
        })?;
        File::open(&self.dir)
            .and_then(|directory| directory.sync_all())
            .map_err(io_error("sync keystore directory", &self.dir))
    }

    /// The secret and key of `account`, checked against the address outside.
    fn decrypt(
        &self,
        account: &StoredAccount,
        password: &str,
    ) -> Result<(Secret, SecretKey), KeystoreError> {
        let path = &account.path;
        let (file, address) = read_file(path)?;
        if file.name != account.name || address != account.address {
            return Err(KeystoreError::StaleAccount {
                name: account.name.clone(),
                address: account.address.to_string(),
                path: path.clone(),
            });
        }
        let secret = format::open(path, &file, &address, password)?;
        let malformed = |error: KeystoreError| KeystoreError::Malformed {
            path: path.clone(),
            reason: format!("the encrypted recovery phrase is unusable: {error}"),
        };
        let mnemonic = derive::parse_mnemonic(&secret.phrase).map_err(malformed)?;
        let key = derive::key_for(&mnemonic, secret.index).map_err(malformed)?;
        let derived = Address(key.public_key());
        if derived != address {
            return Err(KeystoreError::AddressMismatch {
                path: path.clone(),
                stored: address.to_string(),
                derived: derived.to_string(),
            });
        }
        Ok((secret, key))
    }
}

/// Reads the password in the first line of `path`, without its line ending. An empty first
/// line is refused.
pub fn read_password_file(path: &Path) -> Result<Zeroizing<String>, KeystoreError> {
    let refuse = |reason| KeystoreError::PasswordFile { path: path.to_owned(), reason };
    let bytes = read_bounded(path, "read password file")?
        .ok_or_else(|| refuse("larger than 64 KiB; expected one line"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| refuse("not valid UTF-8 text"))?;
    let line = text.split('\n').next().unwrap_or_default();
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(refuse("the first line is empty; put the password on it"));
    }
    let mut password = Zeroizing::new(String::with_capacity(line.len()));
    password.push_str(line);
    Ok(password)
}

/// Whether `name` is 1 to 32 characters of `[a-z0-9_-]`.
fn validate_name(name: &str) -> Result<(), KeystoreError> {
    let allowed = |character: char| {
        character.is_ascii_lowercase()
            || character.is_ascii_digit()
            || character == '_'
            || character == '-'
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(allowed) {
        return Err(KeystoreError::InvalidName { name: name.to_owned() });
    }
    Ok(())
}

/// The listing of the file at `path`, with its parsed document.
fn read_account(path: &Path) -> Result<(StoredAccount, KeystoreFile), KeystoreError> {
    let (file, address) = read_file(path)?;
    let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
    if validate_name(&file.name).is_err() || file.name != stem {
        return Err(KeystoreError::Malformed {
            path: path.to_owned(),
            reason: format!("account name '{}' does not match the file name", file.name),
        });
    }
    let account = StoredAccount { name: file.name.clone(), address, path: path.to_owned() };
    Ok((account, file))
}

fn read_file(path: &Path) -> Result<(KeystoreFile, Address), KeystoreError> {
    let bytes = read_bounded(path, "read keystore file")?.ok_or_else(|| {
        KeystoreError::Malformed { path: path.to_owned(), reason: "larger than 64 KiB".into() }
    })?;
    format::parse(path, &bytes)
}

/// The whole file, or `None` if it is larger than [`MAX_FILE_BYTES`]. The buffer is reserved up
/// front so that it never moves and leaves copies of a secret behind.
fn read_bounded(
    path: &Path,
    action: &'static str,
) -> Result<Option<Zeroizing<Vec<u8>>>, KeystoreError> {
    let file = File::open(path).map_err(io_error(action, path))?;
    let limit = MAX_FILE_BYTES.saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(limit));
    file.take(limit as u64).read_to_end(&mut bytes).map_err(io_error(action, path))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Ok(None);
    }
    Ok(Some(bytes))
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeystoreError {
    let path = path.to_owned();
    move |source| KeystoreError::Io { action, path, source }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
