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
pub(crate) use counter;

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
counter!(
    /// A delivery slot: slot `s` covers `[s·L, (s+1)·L)` of chain time for slot length `L`.
    Slot
);

/// Milliwatt-hours in one kilowatt-hour.
pub const MWH_PER_KWH: u64 = 1_000_000;

/// An amount of energy in milliwatt-hours.
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
pub struct Energy(pub u64);

impl Energy {
    /// No energy.
    pub const ZERO: Energy = Energy(0);

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Energy) -> Option<Energy> {
        self.0.checked_add(other.0).map(Energy)
    }

    /// `self - other`, or `None` below zero.
    pub fn checked_sub(self, other: Energy) -> Option<Energy> {
        self.0.checked_sub(other.0).map(Energy)
    }

    /// `self - other`, or zero.
    pub fn saturating_sub(self, other: Energy) -> Energy {
        Energy(self.0.saturating_sub(other.0))
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses kilowatt-hours written in decimal (`"1.5"`, `"0.000001"`, `"12"`) exactly, to
    /// the milliwatt-hour: at most six decimals.
    pub fn from_kwh_str(text: &str) -> Result<Energy, ParseEnergyError> {
        let error = || ParseEnergyError(text.to_owned());
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        let dangling_point = text.ends_with('.');
        if whole.is_empty()
            || dangling_point
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > 6
        {
            return Err(error());
        }
        let whole: u64 = whole.parse().map_err(|_| error())?;
        let fraction: u64 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<6}").parse().map_err(|_| error())?
        };
        whole
            .checked_mul(MWH_PER_KWH)
            .and_then(|mwh| mwh.checked_add(fraction))
            .map(Energy)
            .ok_or_else(error)
    }
}

impl fmt::Display for Energy {
    /// Kilowatt-hours with the milliwatt-hours as decimals, trailing zeros dropped.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / MWH_PER_KWH;
        let fraction = self.0 % MWH_PER_KWH;
        if fraction == 0 {
            return write!(formatter, "{whole}");
        }
        let fraction = format!("{fraction:06}");
        write!(formatter, "{whole}.{}", fraction.trim_end_matches('0'))
    }
}

/// Why a string is not an energy in kWh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("energy is written in kWh with at most six decimals (e.g. 1.5), got {0:?}")]
pub struct ParseEnergyError(pub String);

/// A price or tariff in tokens per kilowatt-hour.
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
pub struct Price(pub u64);

impl fmt::Display for Price {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

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
    fn energy_in_kwh_round_trips_exactly() {
        for (text, mwh) in
            [("0", 0), ("1", 1_000_000), ("1.5", 1_500_000), ("0.000001", 1), ("12.25", 12_250_000)]
        {
            assert_eq!(Energy::from_kwh_str(text), Ok(Energy(mwh)));
            assert_eq!(Energy(mwh).to_string(), text);
        }
        for bad in ["", ".5", "1.", "1.0000001", "-1", "1e3", "1,5", "99999999999999999999"] {
            assert!(Energy::from_kwh_str(bad).is_err(), "{bad:?}");
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
