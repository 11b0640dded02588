//! Voting power: totals and the BFT thresholds, in `u128` so that no sum of `u64` powers can
//! overflow.

use primitives::{PublicKey, Validator};

/// The total voting power of `validators`.
pub(crate) fn total_power(validators: &[Validator]) -> u128 {
    validators.iter().fold(0u128, |sum, validator| sum.saturating_add(u128::from(validator.power)))
}

/// The voting power of `key`, if it is a validator (the first entry, should the list repeat it).
pub(crate) fn power_of(validators: &[Validator], key: &PublicKey) -> Option<u64> {
    validators.iter().find(|validator| validator.key == *key).map(|validator| validator.power)
}

/// Whether `part` is more than two thirds of `total` (Tendermint's "2f+1").
pub(crate) fn more_than_two_thirds(part: u128, total: u128) -> bool {
    part.saturating_mul(3) > total.saturating_mul(2)
}

/// Whether `part` is more than half of `total` (a Raft majority).
pub(crate) fn more_than_half(part: u128, total: u128) -> bool {
    part.saturating_mul(2) > total
}

/// Whether `part` is more than one third of `total` (Tendermint's "f+1").
pub(crate) fn more_than_one_third(part: u128, total: u128) -> bool {
    part.saturating_mul(3) > total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_strict() {
        assert!(!more_than_two_thirds(2, 3));
        assert!(more_than_two_thirds(3, 4));
        assert!(!more_than_two_thirds(6, 9));
        assert!(more_than_two_thirds(7, 9));
        assert!(!more_than_one_third(1, 3));
        assert!(more_than_one_third(2, 4));
        assert!(!more_than_one_third(0, 0));
        assert!(!more_than_half(2, 4));
        assert!(more_than_half(3, 5));
        assert!(more_than_half(1, 1));
        assert!(!more_than_half(0, 0));
    }
}
