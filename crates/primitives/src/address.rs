//! Account addresses: an Ed25519 public key written as a checksummed bech32m string
//! (`joule1…`), so that a mistyped character is caught before any token moves.

use crate::crypto::PublicKey;
use bech32::{Bech32m, Hrp, primitives::decode::CheckedHrpstring};
use borsh::{BorshDeserialize, BorshSerialize};
use std::{fmt, str::FromStr};

/// The human-readable prefix of every address.
pub const ADDRESS_PREFIX: &str = "joule";

/// An account address: the account's Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct Address(pub PublicKey);

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not bech32m, or the checksum does not match (a typo).
    #[error("not a valid address (bad characters or checksum): {0}")]
    Checksum(String),
    /// A bech32m string with another prefix.
    #[error("address must start with '{ADDRESS_PREFIX}1', found prefix '{0}'")]
    Prefix(String),
    /// The payload is not 32 bytes.
    #[error("address must encode 32 bytes, found {0}")]
    Length(usize),
}

impl Address {
    /// The address whose key is `key`.
    pub fn from_public_key(key: PublicKey) -> Address {
        Address(key)
    }

    /// The account's public key.
    pub fn public_key(&self) -> PublicKey {
        self.0
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
}

fn prefix() -> Hrp {
    Hrp::parse_unchecked(ADDRESS_PREFIX)
}

impl fmt::Display for Address {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        bech32::encode_lower_to_fmt::<Bech32m, _>(formatter, prefix(), &self.0.0)
            .map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{self}")
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Address, AddressError> {
        let checked = CheckedHrpstring::new::<Bech32m>(text.trim())
            .map_err(|error| AddressError::Checksum(error.to_string()))?;
        if checked.hrp() != prefix() {
            return Err(AddressError::Prefix(checked.hrp().to_string()));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let key: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| AddressError::Length(bytes.len()))?;
        Ok(Address(PublicKey(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    #[test]
    fn round_trip_and_typo_detection() {
        let address = Address(SecretKey::from_seed([3; 32]).public_key());
        let text = address.to_string();
        assert!(text.starts_with("joule1"), "{text}");
        assert_eq!(text.parse::<Address>(), Ok(address));
        assert_eq!(text.to_uppercase().parse::<Address>(), Ok(address));

        // Change one character in the data part: the checksum must catch it.
        let mut chars: Vec<char> = text.chars().collect();
        let position = 10;
        chars[position] = if chars[position] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(typo.parse::<Address>(), Err(AddressError::Checksum(_))));
    }

    #[test]
    fn wrong_prefix_and_length() {
        let other = bech32::encode::<Bech32m>(Hrp::parse_unchecked("other"), &[1; 32]).unwrap();
        assert_eq!(other.parse::<Address>(), Err(AddressError::Prefix("other".into())));
        let short = bech32::encode::<Bech32m>(prefix(), &[1; 20]).unwrap();
        assert_eq!(short.parse::<Address>(), Err(AddressError::Length(20)));
        assert!(matches!("".parse::<Address>(), Err(AddressError::Checksum(_))));
    }
}
