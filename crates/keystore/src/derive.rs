//! Recovery phrases (BIP-39) and key derivation (SLIP-0010 for Ed25519).

use crate::KeystoreError;
use bip39::{Language, Mnemonic};
use hmac::{Hmac, KeyInit, Mac};
use primitives::SecretKey;
use rand_core::CryptoRng;
use sha2::Sha512;
use std::fmt::Write as _;
use zeroize::Zeroizing;

/// Words in every recovery phrase this crate creates or accepts.
pub const MNEMONIC_WORDS: usize = 24;

/// The SLIP-0044 coin type in Joule's derivation path.
pub const COIN_TYPE: u32 = 7475;

/// The hardened path above the account index: m/44'/7475'/0'/0'.
const PATH_PREFIX: [u32; 4] = [44, COIN_TYPE, 0, 0];

/// Bit set on a hardened child index.
const HARDENED: u32 = 0x8000_0000;

/// Longest phrase: 24 words of at most 8 letters, 23 spaces.
const MAX_PHRASE_BYTES: usize = MNEMONIC_WORDS * 8 + MNEMONIC_WORDS - 1;

/// A fresh 24-word English recovery phrase from 256 bits of `rng`.
pub(crate) fn generate_mnemonic(mut rng: impl CryptoRng) -> Mnemonic {
    let mut entropy = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(entropy.as_mut_slice());
    match Mnemonic::from_entropy_in(Language::English, entropy.as_slice()) {
        Ok(mnemonic) => mnemonic,
        // 32 bytes is a valid entropy length (128..=256 bits, a multiple of 32).
        Err(error) => unreachable!("32 bytes of entropy are always accepted: {error}"),
    }
}

/// Parses a 24-word English phrase, checking every word and the checksum. Case and runs of
/// whitespace are forgiven.
pub(crate) fn parse_mnemonic(phrase: &str) -> Result<Mnemonic, KeystoreError> {
    let found = phrase.split_whitespace().count();
    if found != MNEMONIC_WORDS {
        return Err(KeystoreError::MnemonicWordCount { found });
    }
    let mut normalized = Zeroizing::new(String::with_capacity(phrase.len()));
    for (position, word) in phrase.split_whitespace().enumerate() {
        if position > 0 {
            normalized.push(' ');
        }
        normalized.extend(word.chars().map(|character| character.to_ascii_lowercase()));
    }
    Mnemonic::parse_in_normalized(Language::English, &normalized).map_err(|error| match error {
        bip39::Error::BadWordCount(found) => KeystoreError::MnemonicWordCount { found },
        bip39::Error::UnknownWord(index) => {
            KeystoreError::MnemonicUnknownWord { position: index.saturating_add(1) }
        }
        // Checksum, and entropy/ambiguity errors that an English 24-word phrase cannot produce.
        _ => KeystoreError::MnemonicChecksum,
    })
}

/// The phrase as words separated by single spaces, in memory that is wiped on drop.
pub(crate) fn phrase_of(mnemonic: &Mnemonic) -> Zeroizing<String> {
    let mut phrase = Zeroizing::new(String::with_capacity(MAX_PHRASE_BYTES));
    // Writing into a String cannot fail; capacity is reserved so the buffer never moves.
    let _ = write!(phrase, "{mnemonic}");
    phrase
}

/// The Ed25519 key of account `index` for a recovery phrase: the BIP-39 seed (empty
/// passphrase), then SLIP-0010 along m/44'/7475'/0'/0'/`index`'.
///
/// The phrase must have 24 English words with a valid checksum; `index` must be below 2^31.
pub fn key_from_mnemonic(mnemonic: &str, index: u32) -> Result<SecretKey, KeystoreError> {
    key_for(&parse_mnemonic(mnemonic)?, index)
}

/// [`key_from_mnemonic`] for an already parsed phrase.
pub(crate) fn key_for(mnemonic: &Mnemonic, index: u32) -> Result<SecretKey, KeystoreError> {
    if index >= HARDENED {
        return Err(KeystoreError::InvalidIndex { index });
    }
    let seed = Zeroizing::new(mnemonic.to_seed_normalized(""));
    let mut path = [0u32; PATH_PREFIX.len() + 1];
    path[..PATH_PREFIX.len()].copy_from_slice(&PATH_PREFIX);
    path[PATH_PREFIX.len()] = index;
    let node = slip10_derive(seed.as_slice(), &path);
    Ok(SecretKey::from_seed(*node.private_key))
}

/// A SLIP-0010 node: a private key and the chain code its children are derived with.
struct ExtendedKey {
    private_key: Zeroizing<[u8; 32]>,
    chain_code: Zeroizing<[u8; 32]>,
}

/// HMAC-SHA512 of `parts` under `key`, split into (left half, right half).
fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> ExtendedKey {
    let mut mac = match Hmac::<Sha512>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(error) => unreachable!("HMAC accepts every key length: {error}"),
    };
    for part in parts {
        mac.update(part);
    }
    let output = mac.finalize();
    let bytes = output.as_bytes();
    let mut node =
        ExtendedKey { private_key: Zeroizing::new([0; 32]), chain_code: Zeroizing::new([0; 32]) };
    node.private_key.copy_from_slice(&bytes[..32]);
    node.chain_code.copy_from_slice(&bytes[32..]);
    node
}

/// SLIP-0010 master node for Ed25519.
fn slip10_master(seed: &[u8]) -> ExtendedKey {
    hmac_sha512(b"ed25519 seed", &[seed])
}

/// SLIP-0010 hardened child (Ed25519 has no other kind): `index` is hardened here.
fn slip10_child(parent: &ExtendedKey, index: u32) -> ExtendedKey {
    let hardened = (index | HARDENED).to_be_bytes();
    hmac_sha512(parent.chain_code.as_slice(), &[&[0u8], parent.private_key.as_slice(), &hardened])
}

/// The node at `path` (every element hardened) below the master node of `seed`.
fn slip10_derive(seed: &[u8], path: &[u32]) -> ExtendedKey {
    path.iter().fold(slip10_master(seed), |node, index| slip10_child(&node, *index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    /// SLIP-0010, "Test vector 1 for ed25519": (path, chain code, private key, public key).
    const VECTOR_1: [(&[u32], &str, &str, Option<&str>); 6] = [
        (
            &[],
            "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb",
            "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7",
            Some("a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed"),
        ),
        (
            &[0],
            "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69",
            "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3",
            Some("8c8a13df77a28f3445213a0f432fde644acaa215fc72dcdf300d5efaa85d350c"),
        ),
        (
            &[0, 1],
            "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14",
            "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2",
            None,
        ),
        (
            &[0, 1, 2],
            "2e69929e00b5ab250f49c3fb1c12f252de4fed2c1db88387094a0f8c4c9ccd6c",
            "92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9",
            None,
        ),
        (
            &[0, 1, 2, 2],
            "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc",
            "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662",
            None,
        ),
        (
            &[0, 1, 2, 2, 1_000_000_000],
            "68789923a0cac2cd5a29172a475fe9e0fb14cd6adb5ad98a3fa70333e7afa230",
            "8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793",
            None,
        ),
    ];

    #[test]
    fn slip10_ed25519_test_vector_1() {
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        for (path, chain_code, private_key, public_key) in VECTOR_1 {
            let node = slip10_derive(&seed, path);
            assert_eq!(hex::encode(node.chain_code.as_slice()), chain_code, "chain code {path:?}");
            assert_eq!(hex::encode(node.private_key.as_slice()), private_key, "key {path:?}");
            if let Some(public_key) = public_key {
                let key = SecretKey::from_seed(*node.private_key);
                assert_eq!(hex::encode(key.public_key().0), public_key, "public key {path:?}");
            }
        }
    }

    #[test]
    fn the_account_path_is_m_44h_7475h_0h_0h_index_h() {
        let mnemonic = generate_mnemonic(StdRng::seed_from_u64(1));
        let seed = mnemonic.to_seed_normalized("");
        for index in [0, 1, 7] {
            let by_hand = slip10_child(
                &slip10_child(
                    &slip10_child(&slip10_child(&slip10_child(&slip10_master(&seed), 44), 7475), 0),
                    0,
                ),
                index,
            );
            let key = key_for(&mnemonic, index).unwrap();
            assert_eq!(key.seed(), *by_hand.private_key, "index {index}");
        }
        assert_ne!(key_for(&mnemonic, 0).unwrap().seed(), key_for(&mnemonic, 1).unwrap().seed());
    }

    #[test]
    fn a_fixed_phrase_always_gives_the_same_address() {
        // BIP-39's all-zero 256-bit entropy. The expected values were computed independently
        // (Python: hashlib PBKDF2 and HMAC-SHA512, `cryptography` for Ed25519, a reference
        // bech32m encoder). If this test fails, every user's restored addresses have changed.
        let phrase = ["abandon"; 23].join(" ") + " art";
        let key = key_from_mnemonic(&phrase, 0).unwrap();
        assert_eq!(
            hex::encode(key.seed()),
            "0a916f0c46dfac173ccf957ecfbec6f875cef822fe6e0cb00120a2f27eeb3fe1"
        );
        assert_eq!(
            hex::encode(key.public_key().0),
            "a1ed176c77fc8771c93ef8a3f06781f2640cdd96df23acef67bf22a0cecab208"
        );
        assert_eq!(
            primitives::Address(key.public_key()).to_string(),
            "joule158k3wmrhljrhrjf7lz3lqeup7fjqehvkmu36emm8hu32pnk2kgyqntz7kd"
        );
    }

    #[test]
    fn generated_phrases_have_24_words_and_parse_back() {
        let mut rng = StdRng::seed_from_u64(2);
        let first = phrase_of(&generate_mnemonic(&mut rng));
        let second = phrase_of(&generate_mnemonic(&mut rng));
        assert_ne!(first, second);
        assert_eq!(first.split(' ').count(), MNEMONIC_WORDS);
        let parsed = parse_mnemonic(&first).unwrap();
        assert_eq!(phrase_of(&parsed), first);
        // Case and extra whitespace are forgiven.
        let shouted = format!("  {}\n", first.to_uppercase().replace(' ', "\t "));
        assert_eq!(phrase_of(&parse_mnemonic(&shouted).unwrap()), first);
    }

    #[test]
    fn bad_phrases_are_refused_with_the_reason() {
        let phrase = phrase_of(&generate_mnemonic(StdRng::seed_from_u64(3)));
        let mut words: Vec<&str> = phrase.split(' ').collect();

        // Another valid word in place of the last one breaks the checksum (with 24 words, the
        // last word carries 8 checksum bits, so some replacement must fail; try a few).
        let replacements = ["abandon", "ability", "able", "about", "above"];
        let original_last = words[23];
        let mut checksum_failures = 0;
        for replacement in replacements.iter().filter(|word| **word != original_last) {
            words[23] = replacement;
            if let Err(error) = key_from_mnemonic(&words.join(" "), 0) {
                assert!(matches!(error, KeystoreError::MnemonicChecksum), "{error}");
                checksum_failures += 1;
            }
        }
        assert!(checksum_failures > 0);
        words[23] = original_last;

        // Two words swapped.
        let mut swapped = words.clone();
        swapped.swap(0, 1);
        if swapped != words {
            assert!(matches!(
                key_from_mnemonic(&swapped.join(" "), 0),
                Err(KeystoreError::MnemonicChecksum)
            ));
        }

        // A word that is not in the list.
        let mut typo = words.clone();
        typo[6] = "notaword";
        let error = key_from_mnemonic(&typo.join(" "), 0).unwrap_err();
        assert!(matches!(error, KeystoreError::MnemonicUnknownWord { position: 7 }), "{error}");
        assert!(error.to_string().contains("word 7"), "{error}");

        // Too short.
        let error = key_from_mnemonic(&words[..12].join(" "), 0).unwrap_err();
        assert!(matches!(error, KeystoreError::MnemonicWordCount { found: 12 }), "{error}");

        // An index that cannot be hardened.
        assert!(matches!(
            key_from_mnemonic(&phrase, HARDENED),
            Err(KeystoreError::InvalidIndex { .. })
        ));
    }
}
