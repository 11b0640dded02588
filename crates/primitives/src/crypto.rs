//! Ed25519 keys and signatures.
//!
//! Verification follows the ZIP-215 rules (via `ed25519-zebra`): single and batch verification
//! accept exactly the same signatures, so a block that one node accepts with a batch check is
//! accepted by every other node whatever method it uses.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_zebra::{SigningKey, VerificationKey, VerificationKeyBytes, batch};
use rand_core::CryptoRng;
use std::fmt;
use zeroize::Zeroize;

/// An Ed25519 public key (32 bytes, not necessarily a valid curve point until verified).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid signature")]
pub struct SignatureError;

/// An Ed25519 signing key. Its bytes are wiped from memory when it is dropped.
#[derive(Clone)]
pub struct SecretKey {
    inner: SigningKey,
}

impl SecretKey {
    /// The key whose 32-byte seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        let mut seed = seed;
        let inner = SigningKey::from(seed);
        seed.zeroize();
        SecretKey { inner }
    }

    /// A fresh random key.
    pub fn generate<R: CryptoRng>(rng: R) -> SecretKey {
        SecretKey { inner: SigningKey::new(rng) }
    }

    /// The 32-byte seed; handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(VerificationKeyBytes::from(&self.inner).into())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.inner.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SecretKey({:?})", self.public_key())
    }
}

impl PublicKey {
    /// Verifies `signature` over `message` with the ZIP-215 rules.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key = VerificationKey::try_from(self.0).map_err(|_| SignatureError)?;
        key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
            .map_err(|_| SignatureError)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PublicKey({})", hex::encode(&self.0[..8]))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

/// Verifies many `(key, message, signature)` triples at once and reports, for each, whether it
/// is valid. A batch that verifies costs about half as much per signature as single checks; when
/// the batch fails, each item is checked alone to find the bad ones.
pub fn verify_batch<R: CryptoRng>(
    items: &[(PublicKey, &[u8], Signature)],
    rng: R,
) -> Vec<Result<(), SignatureError>> {
    let mut verifier = batch::Verifier::new();
    for (key, message, signature) in items {
        let signature = ed25519_zebra::Signature::from_bytes(&signature.0);
        verifier.queue((VerificationKeyBytes::from(key.0), signature, message));
    }
    if verifier.verify(rng).is_ok() {
        return vec![Ok(()); items.len()];
    }
    items.iter().map(|(key, message, signature)| key.verify(message, signature)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = SecretKey::from_seed([7; 32]);
        let signature = key.sign(b"hello");
        assert_eq!(key.public_key().verify(b"hello", &signature), Ok(()));
        assert_eq!(key.public_key().verify(b"hullo", &signature), Err(SignatureError));
        let other = SecretKey::from_seed([8; 32]);
        assert_eq!(other.public_key().verify(b"hello", &signature), Err(SignatureError));
    }

    #[test]
    fn batch_finds_the_bad_signature() {
        let keys: Vec<SecretKey> = (0..8u8).map(|i| SecretKey::from_seed([i; 32])).collect();
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let mut items: Vec<(PublicKey, &[u8], Signature)> = keys
            .iter()
            .zip(&messages)
            .map(|(key, message)| (key.public_key(), message.as_slice(), key.sign(message)))
            .collect();
        let all_good = verify_batch(&items, rand::rng());
        assert!(all_good.iter().all(Result::is_ok));
        items[5].2 = keys[4].sign(&messages[5]);
        let results = verify_batch(&items, rand::rng());
        for (index, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), index != 5, "item {index}");
        }
    }

    #[test]
    fn a_non_point_key_is_rejected_not_a_panic() {
        let key = PublicKey([0xff; 32]);
        assert_eq!(key.verify(b"m", &Signature([0; 64])), Err(SignatureError));
    }
}
