//! Order books: uniform-price clearing of a slot and continuous pay-as-bid matching.

use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Address, Energy, Price};

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

/// An order's identity, assigned by the ledger in arrival order: a smaller id arrived earlier.
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
pub struct OrderId(pub u64);

/// An order as the matching rules see it.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Order {
    /// Identity and arrival order.
    pub id: OrderId,
    /// Who placed it.
    pub owner: Address,
    /// Buy or sell.
    pub side: Side,
    /// Energy still to be matched.
    pub energy: Energy,
    /// Limit price.
    pub price: Price,
}

/// A match between a bid and an ask.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Trade {
    /// The bid.
    pub bid: OrderId,
    /// The ask.
    pub ask: OrderId,
    /// The bid's owner.
    pub buyer: Address,
    /// The ask's owner.
    pub seller: Address,
    /// Energy traded.
    pub energy: Energy,
    /// Price per kWh.
    pub price: Price,
}

/// The result of clearing a slot.
#[derive(Clone, PartialEq, Eq, Debug, Default, BorshSerialize, BorshDeserialize)]
pub struct Clearing {
    /// The uniform clearing price, if anything matched.
    pub price: Option<Price>,
    /// Total energy matched.
    pub volume: Energy,
    /// The matches, in the order they were made.
    pub trades: Vec<Trade>,
}

/// Uniform-price clearing of one slot's orders (bids and asks mixed, in any order).
///
/// Bids are taken by price descending then id ascending, asks by price ascending then id
/// ascending; the current bid and ask match for the smaller remaining quantity while the bid
/// price is at least the ask price. The clearing price is `floor((bid + ask) / 2)` of the last
/// matched pair, and every trade is at that price.
pub fn clear_uniform(orders: &[Order]) -> Clearing {
    let _ = orders;
    Clearing::default()
}

/// Continuous pay-as-bid matching of an incoming order against the resting orders of its slot
/// (any order, either side; same-side orders are ignored). Resting orders are taken best price
/// first (asks ascending for an incoming bid, bids descending for an incoming ask), then by id,
/// while the prices cross; each trade is at the resting order's price. Returns the trades in the
/// order they were made; the incoming order's remainder is its energy minus their sum.
pub fn match_incoming(incoming: &Order, resting: &[Order]) -> Vec<Trade> {
    let _ = (incoming, resting);
    Vec::new()
}
