//! What a member signs to log in to a node's API.
//!
//! The node hands out a random challenge; the member signs the text below with their account
//! key (or the operator with the operator's key), and the node checks the signature against the
//! address. The text names its purpose, the chain, the account, the challenge and when it
//! expires, so a signature is good for one login on one chain only. It is always longer than
//! 32 bytes, while transactions, votes and proposals are signed over 32-byte hashes: a login
//! signature can never pass for one of those, nor the other way round.
//!
//! ```text
//! joule login v1
//! chain: joule-devnet
//! account: joule1…
//! challenge: <64 hex characters>
//! expires: <ms since the Unix epoch>
//! ```
//!
//! Lines end with `\n`, the last one too; the text is UTF-8 (in fact ASCII).

use crate::{
    address::Address,
    crypto::{Signature, SignatureError},
    tx::ChainId,
    units::TimestampMs,
};

/// The first line of every login text.
pub const LOGIN_PURPOSE: &str = "joule login v1";

/// One login challenge for one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginChallenge {
    /// The chain the node runs.
    pub chain_id: ChainId,
    /// The account that logs in.
    pub account: Address,
    /// The node's random challenge.
    pub challenge: [u8; 32],
    /// After this the node no longer accepts the signature.
    pub expires: TimestampMs,
}

impl LoginChallenge {
    /// The text the account signs.
    pub fn text(&self) -> String {
        format!(
            "{LOGIN_PURPOSE}\nchain: {}\naccount: {}\nchallenge: {}\nexpires: {}\n",
            self.chain_id,
            self.account,
            hex::encode(self.challenge),
            self.expires.0
        )
    }

    /// Checks that `signature` is the account's over [`LoginChallenge::text`].
    pub fn verify(&self, signature: &Signature) -> Result<(), SignatureError> {
        self.account.public_key().verify(self.text().as_bytes(), signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    fn challenge(key: &SecretKey) -> LoginChallenge {
        LoginChallenge {
            chain_id: ChainId::new("joule-devnet").unwrap(),
            account: Address(key.public_key()),
            challenge: [7; 32],
            expires: TimestampMs(1_760_000_000_000),
        }
    }

    #[test]
    fn the_text_names_purpose_chain_account_challenge_and_expiry() {
        let key = SecretKey::from_seed([1; 32]);
        let login = challenge(&key);
        let text = login.text();
        assert_eq!(
            text,
            format!(
                "joule login v1\nchain: joule-devnet\naccount: {}\nchallenge: {}\nexpires: 1760000000000\n",
                login.account,
                "07".repeat(32)
            )
        );
        assert!(text.len() > 32, "never the length of a signed hash");
    }

    #[test]
    fn only_the_accounts_signature_over_this_text_verifies() {
        let key = SecretKey::from_seed([1; 32]);
        let login = challenge(&key);
        assert_eq!(login.verify(&key.sign(login.text().as_bytes())), Ok(()));
        let other = SecretKey::from_seed([2; 32]);
        assert!(login.verify(&other.sign(login.text().as_bytes())).is_err(), "another key");
        let mut later = login.clone();
        later.expires = TimestampMs(login.expires.0 + 1);
        assert!(later.verify(&key.sign(login.text().as_bytes())).is_err(), "another expiry");
        let mut elsewhere = login.clone();
        elsewhere.chain_id = ChainId::new("other-chain").unwrap();
        assert!(elsewhere.verify(&key.sign(login.text().as_bytes())).is_err(), "another chain");
    }
}
