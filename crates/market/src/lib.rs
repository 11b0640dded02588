//! Joule's energy market rules, as pure integer functions.
//!
//! This crate owns what every node and every user must compute identically from the chain
//! (`docs/design/market.md`): the value of energy at a price, uniform-price clearing of a slot's
//! order book and continuous pay-as-bid matching ([`book`]), the settlement of a slot against
//! metered energy with bilateral contracts, pro-rata shortfalls and the grid as the market maker
//! of last resort ([`settlement`]), and statements and key figures over settlement records
//! ([`statement`]). [`reference`](mod@reference) holds deliberately naive implementations that the property
//! tests compare against.
//!
//! It deliberately keeps no state and moves no tokens: the ledger stores orders, contracts and
//! readings, calls these functions at gate closure and at the settlement deadline, and applies
//! the payments they compute (reservations, balances, arrears). No I/O, no clock, no panics:
//! arithmetic is checked or saturating and documented.

#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod book;
pub mod reference;
pub mod settlement;
pub mod statement;

use primitives::{Amount, Energy, MWH_PER_KWH, Price};

/// The value of `energy` at `price` tokens per kWh: `floor(energy_mwh · price / 1,000,000)`.
/// It cannot overflow: the product of two `u64` fits in a `u128`.
pub fn value(energy: Energy, price: Price) -> Amount {
    const MWH_PER_KWH_WIDE: u128 = MWH_PER_KWH as u128;
    let product = u128::from(energy.0).saturating_mul(u128::from(price.0));
    Amount(product / MWH_PER_KWH_WIDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_rounds_down() {
        assert_eq!(value(Energy(1_000_000), Price(30)), Amount(30));
        assert_eq!(value(Energy(1_500_000), Price(3)), Amount(4));
        assert_eq!(value(Energy(33_333), Price(30)), Amount(0));
        assert_eq!(
            value(Energy(u64::MAX), Price(u64::MAX)).0,
            u128::from(u64::MAX) * u128::from(u64::MAX) / 1_000_000
        );
    }
}
