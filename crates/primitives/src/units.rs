//! Integer newtypes for the quantities Joule counts. Arithmetic on them is checked: an overflow
//! is an ordinary `None`, never a wrap-around or a panic.

use borsh::{BorshDeserialize, BorshSerialize};
use std::{fmt, str::FromStr};

/// A number of tokens. One token is the smallest fiat unit (a cent, an øre), so amounts are
/// whole numbers.
#[derive(
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Amount(pub u128);

impl Amount {
    /// No tokens.
    pub const ZERO: Amount = Amount(0);

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if it would go below zero.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// Why a string is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an amount is a whole number of tokens written in decimal digits, got {0:?}")]
pub struct ParseAmountError(pub String);

impl FromStr for Amount {
    type Err = ParseAmountError;

    /// Decimal digits only: no sign, no fraction, no separators.
    fn from_str(text: &str) -> Result<Amount, ParseAmountError> {
        if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ParseAmountError(text.to_owned()));
        }
        text.parse::<u128>().map(Amount).map_err(|_| ParseAmountError(text.to_owned()))
    }
}

macro_rules! counter {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Debug,
            BorshSerialize, BorshDeserialize,
        )]
        pub struct $name(pub u64);

        impl $name {
            /// The next value, or `None` on overflow.
            pub fn next(self) -> Option<$name> {
                self.0.checked_add(1).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}", self.0)
            }
        }
    };
}

counter!(
    /// A block height; the genesis block is height 0.
    Height
);
counter!(
    /// An account's transaction counter: the nonce of its next transaction.
    Nonce
);
counter!(
    /// Milliseconds since the Unix epoch, as chain time (block timestamps).
    TimestampMs
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_strictly() {
        assert_eq!("0".parse(), Ok(Amount(0)));
        assert_eq!("1234".parse(), Ok(Amount(1234)));
        for bad in
            ["", "-1", "+1", "1.5", "1e3", " 1", "1_000", "340282366920938463463374607431768211456"]
        {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn checked_arithmetic() {
        assert_eq!(Amount(5).checked_sub(Amount(6)), None);
        assert_eq!(Amount(u128::MAX).checked_add(Amount(1)), None);
        assert_eq!(Height(u64::MAX).next(), None);
        assert_eq!(Nonce(1).next(), Some(Nonce(2)));
    }
}
