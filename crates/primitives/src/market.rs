//! Identifiers of the energy market that transactions name. The rules live in the `market`
//! crate.

use crate::units::counter;
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;

/// Buy or sell.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, BorshSerialize, BorshDeserialize,
)]
pub enum Side {
    /// A buy order.
    Bid,
    /// A sell order.
    Ask,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Side::Bid => "bid",
            Side::Ask => "ask",
        })
    }
}

counter!(
    /// An order's identity, assigned by the ledger in arrival order: a smaller id arrived earlier.
    OrderId
);
counter!(
    /// A bilateral contract's identity, assigned by the ledger in proposal order.
    ContractId
);
