//! The keystore file: its JSON layout, the password-derived key and the sealed secret.

use crate::{KdfParamsError, KeystoreError};
use argon2::{Algorithm, Argon2, Version};
use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use primitives::Address;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::Zeroizing;

/// The format version this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The only key-derivation function written or accepted.
const KDF_ALGORITHM: &str = "argon2id";

/// The only cipher written or accepted.
const CIPHER_ALGORITHM: &str = "xchacha20poly1305";

/// Salt length, in bytes.
const SALT_BYTES: usize = 16;

/// Nonce length of XChaCha20-Poly1305, in bytes.
const NONCE_BYTES: usize = 24;

/// Poly1305 tag length, in bytes.
const TAG_BYTES: usize = 16;

/// Bytes of the derivation index at the start of the plaintext.
const INDEX_BYTES: usize = 4;

/// Largest plaintext: the index and a 24-word phrase (at most 215 bytes).
const MAX_PLAINTEXT_BYTES: usize = INDEX_BYTES + 256;

/// Domain separator at the start of the associated data.
const AAD_DOMAIN: &[u8] = b"joule-keystore";

/// Argon2id cost parameters, stored in each file so that a file can always be opened with the
/// parameters it was written with.
///
/// Use [`KdfParams::standard`] for real accounts. [`KdfParams::light`] exists for devnets (where
/// dozens of nodes on one machine each unlock a key at start-up) and tests; it protects
/// nothing against an attacker who has the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes over the memory.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// Most memory accepted, from a caller or from a file: 1 GiB (16 times
    /// [`KdfParams::standard`]). A file asking for more is refused before anything is allocated.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// Most passes accepted (a hostile file could otherwise ask for hours of work).
    pub const MAX_ITERATIONS: u32 = 64;
    /// Most lanes accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Parameters for real accounts: Argon2id with 64 MiB, 3 passes, 1 lane. About 0.35 s per
    /// unlock on one core of a 2-core development machine (measured with
    /// `cargo test -p keystore standard_parameters_work`, which runs it twice); the cost is the
    /// point: it is what each password guess costs an attacker holding the file.
    pub const fn standard() -> KdfParams {
        KdfParams { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 }
    }

    /// Cheap parameters, for devnets and tests only: 256 KiB, 1 pass, 1 lane. A password
    /// protected with these falls quickly to guessing.
    pub const fn light() -> KdfParams {
        KdfParams { memory_kib: 256, iterations: 1, parallelism: 1 }
    }

    /// Checks the parameters against the accepted ranges.
    pub fn validate(&self) -> Result<(), KdfParamsError> {
        if self.parallelism == 0 || self.parallelism > Self::MAX_PARALLELISM {
            return Err(KdfParamsError::Parallelism {
                parallelism: self.parallelism,
                max: Self::MAX_PARALLELISM,
            });
        }
        // Argon2 needs at least 8 KiB per lane.
        let min_memory = self.parallelism.saturating_mul(8);
        if self.memory_kib < min_memory || self.memory_kib > Self::MAX_MEMORY_KIB {
            return Err(KdfParamsError::Memory {
                memory_kib: self.memory_kib,
                min: min_memory,
                max: Self::MAX_MEMORY_KIB,
            });
        }
        if self.iterations == 0 || self.iterations > Self::MAX_ITERATIONS {
            return Err(KdfParamsError::Iterations {
                iterations: self.iterations,
                max: Self::MAX_ITERATIONS,
            });
        }
        Ok(())
    }

    /// The 32-byte encryption key for `password` and `salt`. The parameters must have passed
    /// [`KdfParams::validate`].
    fn derive_key(
        &self,
        password: &str,
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|error| KeystoreError::Crypto(error.to_string()))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password.as_bytes(), salt, key.as_mut_slice())
            .map_err(|error| KeystoreError::Crypto(error.to_string()))?;
        Ok(key)
    }
}

/// The JSON document of one account. Hand-written so the on-disk format is visible here and
/// does not change when an internal type does.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeystoreFile {
    pub(crate) version: u32,
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) kdf: KdfSection,
    pub(crate) cipher: CipherSection,
    pub(crate) ciphertext: String,
    pub(crate) created_ms: u64,
}

/// The `kdf` object of a keystore file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KdfSection {
    pub(crate) algorithm: String,
    pub(crate) memory_kib: u32,
    pub(crate) iterations: u32,
    pub(crate) parallelism: u32,
    pub(crate) salt: String,
}

/// The `cipher` object of a keystore file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CipherSection {
    pub(crate) algorithm: String,
    pub(crate) nonce: String,
}

/// Only the version, read first so that a file from a newer format gets a version error rather
/// than a confusing parse error.
#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

/// What is encrypted in a keystore file.
pub(crate) struct Secret {
    /// The recovery phrase, words separated by single spaces.
    pub(crate) phrase: Zeroizing<String>,
    /// The account index in the derivation path.
    pub(crate) index: u32,
}

/// The associated data: binds the version, name and address to the ciphertext, so that editing
/// any of them makes decryption fail.
fn associated_data(version: u32, name: &str, address: &Address) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 4 + 1 + name.len() + 32);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(&version.to_be_bytes());
    // Names are at most 32 bytes, so one length byte keeps the encoding unambiguous.
    aad.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(name.as_bytes());
    aad.extend_from_slice(address.as_bytes());
    aad
}

/// Encrypts `secret` for `password` into a complete keystore document.
pub(crate) fn seal(
    name: &str,
    address: &Address,
    secret: &Secret,
    password: &str,
    kdf: KdfParams,
    created_ms: u64,
    mut rng: impl CryptoRng,
) -> Result<KeystoreFile, KeystoreError> {
    kdf.validate().map_err(KeystoreError::KdfParams)?;
    let mut salt = [0u8; SALT_BYTES];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; NONCE_BYTES];
    rng.fill_bytes(&mut nonce);

    let key = kdf.derive_key(password, &salt)?;
    let cipher = cipher_for(&key)?;

    // Reserve room for the tag so the buffer never reallocates and leaves a copy behind.
    let mut buffer =
        Zeroizing::new(Vec::with_capacity(INDEX_BYTES + secret.phrase.len() + TAG_BYTES));
    buffer.extend_from_slice(&secret.index.to_be_bytes());
    buffer.extend_from_slice(secret.phrase.as_bytes());
    cipher
        .encrypt_in_place(
            &XNonce::from(nonce),
            &associated_data(FORMAT_VERSION, name, address),
            &mut *buffer,
        )
        .map_err(|_| KeystoreError::Crypto("encryption failed".into()))?;

    Ok(KeystoreFile {
        version: FORMAT_VERSION,
        name: name.to_owned(),
        address: address.to_string(),
        kdf: KdfSection {
            algorithm: KDF_ALGORITHM.to_owned(),
            memory_kib: kdf.memory_kib,
            iterations: kdf.iterations,
            parallelism: kdf.parallelism,
            salt: hex::encode(salt),
        },
        cipher: CipherSection { algorithm: CIPHER_ALGORITHM.to_owned(), nonce: hex::encode(nonce) },
        ciphertext: hex::encode(buffer.as_slice()),
        created_ms,
    })
}

fn cipher_for(key: &Zeroizing<[u8; 32]>) -> Result<XChaCha20Poly1305, KeystoreError> {
    XChaCha20Poly1305::new_from_slice(key.as_slice())
        .map_err(|_| KeystoreError::Crypto("cipher key has the wrong length".into()))
}

/// Parses a keystore document and checks everything that can be checked without the password.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<(KeystoreFile, Address), KeystoreError> {
    let malformed = |reason: String| KeystoreError::Malformed { path: path.to_owned(), reason };
    let probe: VersionProbe =
        serde_json::from_slice(bytes).map_err(|error| malformed(error.to_string()))?;
    if probe.version != u64::from(FORMAT_VERSION) {
        return Err(KeystoreError::UnsupportedVersion {
            path: path.to_owned(),
            version: probe.version,
            supported: FORMAT_VERSION,
        });
    }
    let file: KeystoreFile =
        serde_json::from_slice(bytes).map_err(|error| malformed(error.to_string()))?;
    let address: Address =
        file.address.parse().map_err(|error| malformed(format!("field 'address': {error}")))?;
    if file.cipher.algorithm != CIPHER_ALGORITHM {
        return Err(malformed(format!(
            "cipher '{}' is not supported (expected {CIPHER_ALGORITHM})",
            file.cipher.algorithm
        )));
    }
    Ok((file, address))
}

/// Decrypts the secret of a parsed keystore document. Refuses unsafe KDF parameters before
/// running the KDF; a failed authentication is [`KeystoreError::WrongPassword`].
pub(crate) fn open(
    path: &Path,
    file: &KeystoreFile,
    address: &Address,
    password: &str,
) -> Result<Secret, KeystoreError> {
    let malformed = |reason: String| KeystoreError::Malformed { path: path.to_owned(), reason };
    let file_kdf = |source| KeystoreError::FileKdfParams { path: path.to_owned(), source };
    if file.kdf.algorithm != KDF_ALGORITHM {
        return Err(file_kdf(KdfParamsError::Algorithm(file.kdf.algorithm.clone())));
    }
    let kdf = KdfParams {
        memory_kib: file.kdf.memory_kib,
        iterations: file.kdf.iterations,
        parallelism: file.kdf.parallelism,
    };
    kdf.validate().map_err(file_kdf)?;
    let salt: [u8; SALT_BYTES] = decode_hex_array(&file.kdf.salt)
        .ok_or_else(|| malformed(format!("kdf.salt must be {SALT_BYTES} bytes of hex")))?;
    let nonce: [u8; NONCE_BYTES] = decode_hex_array(&file.cipher.nonce)
        .ok_or_else(|| malformed(format!("cipher.nonce must be {NONCE_BYTES} bytes of hex")))?;
    let mut buffer = Zeroizing::new(
        hex::decode(&file.ciphertext)
            .map_err(|error| malformed(format!("ciphertext is not hex: {error}")))?,
    );
    if buffer.len() < INDEX_BYTES + TAG_BYTES || buffer.len() > MAX_PLAINTEXT_BYTES + TAG_BYTES {
        return Err(malformed(format!("ciphertext has an impossible length ({})", buffer.len())));
    }

    let key = kdf.derive_key(password, &salt)?;
    let cipher = cipher_for(&key)?;
    cipher
        .decrypt_in_place(
            &XNonce::from(nonce),
            &associated_data(file.version, &file.name, address),
            &mut *buffer,
        )
        .map_err(|_| KeystoreError::WrongPassword {
            name: file.name.clone(),
            path: path.to_owned(),
        })?;

    // Authenticated, so the content is what we wrote; still parse it without panicking.
    let (index_bytes, phrase_bytes) = buffer.split_at(INDEX_BYTES);
    let index_bytes: [u8; INDEX_BYTES] =
        index_bytes.try_into().map_err(|_| malformed("decrypted secret is too short".into()))?;
    let phrase_text = std::str::from_utf8(phrase_bytes)
        .map_err(|_| malformed("decrypted recovery phrase is not text".into()))?;
    let mut phrase = Zeroizing::new(String::with_capacity(phrase_text.len()));
    phrase.push_str(phrase_text);
    Ok(Secret { phrase, index: u32::from_be_bytes(index_bytes) })
}

fn decode_hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}
