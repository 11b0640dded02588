//! Order books: uniform-price clearing of a slot and continuous pay-as-bid matching.

use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Address, Energy, Price};
use std::{cmp::Reverse, collections::BinaryHeap};

pub use primitives::{OrderId, Side};

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
///
/// Orders of zero energy take no part. Ids are unique on the chain; should two orders share an
/// id (and side and price), the one earlier in `orders` goes first, so the result is still a
/// function of the input. `volume` is the sum of the trades' energy, saturating at
/// `Energy(u64::MAX)` (18 billion kWh, far beyond any slot of a microgrid, but the orders' energy
/// is not bounded here). Sorts each side once: `O(n log n)` time, one allocation per side plus
/// the trades.
pub fn clear_uniform(orders: &[Order]) -> Clearing {
    let bid_count = orders.iter().filter(|order| order.side == Side::Bid).count();
    let mut bid_ranks = Vec::with_capacity(bid_count);
    let mut ask_ranks = Vec::with_capacity(orders.len().saturating_sub(bid_count));
    for (position, order) in orders.iter().enumerate() {
        if order.energy.is_zero() {
            continue;
        }
        match order.side {
            Side::Bid => bid_ranks.push(rank(order, position)),
            Side::Ask => ask_ranks.push(rank(order, position)),
        }
    }
    bid_ranks.sort_unstable();
    ask_ranks.sort_unstable();
    let mut bids = bid_ranks.iter().filter_map(|&(_, _, position)| orders.get(position));
    let mut asks = ask_ranks.iter().filter_map(|&(_, _, position)| orders.get(position));

    // The current order of each side with the energy it has left.
    let mut bid = bids.next().map(|order| (order, order.energy));
    let mut ask = asks.next().map(|order| (order, order.energy));
    let mut trades = Vec::new();
    let mut volume = Energy::ZERO;
    let mut last_pair = None;
    while let (Some((bid_order, bid_left)), Some((ask_order, ask_left))) = (bid, ask) {
        if bid_order.price < ask_order.price {
            break;
        }
        let energy = bid_left.min(ask_left);
        trades.push(Trade {
            bid: bid_order.id,
            ask: ask_order.id,
            buyer: bid_order.owner,
            seller: ask_order.owner,
            energy,
            // Not known until the last match; filled in below.
            price: Price(0),
        });
        volume = Energy(volume.0.saturating_add(energy.0));
        last_pair = Some((bid_order.price, ask_order.price));
        // `energy` is the smaller of the two, so neither subtraction saturates.
        let bid_left = bid_left.saturating_sub(energy);
        let ask_left = ask_left.saturating_sub(energy);
        bid = if bid_left.is_zero() {
            bids.next().map(|order| (order, order.energy))
        } else {
            Some((bid_order, bid_left))
        };
        ask = if ask_left.is_zero() {
            asks.next().map(|order| (order, order.energy))
        } else {
            Some((ask_order, ask_left))
        };
    }

    // `midpoint` rounds down and cannot overflow.
    let price = last_pair.map(|(bid_price, ask_price)| Price(bid_price.0.midpoint(ask_price.0)));
    if let Some(price) = price {
        for trade in &mut trades {
            trade.price = price;
        }
    }
    Clearing { price, volume, trades }
}

/// Continuous pay-as-bid matching of an incoming order against the resting orders of its slot
/// (any order, either side; same-side orders are ignored). Resting orders are taken best price
/// first (asks ascending for an incoming bid, bids descending for an incoming ask), then by id,
/// while the prices cross; each trade is at the resting order's price. Returns the trades in the
/// order they were made; the incoming order's remainder is its energy minus their sum.
///
/// Orders of zero energy take no part (an incoming order of zero energy makes no trade). The
/// incoming order's owner is not excluded: the ledger already refuses an account both sides in
/// a slot. Should two resting orders share an id (and price), the one earlier in `resting` goes
/// first. Only the crossing orders are ranked, in a heap, so the cost is `O(m + k log m)` for
/// `m` crossing orders of which `k` trade.
pub fn match_incoming(incoming: &Order, resting: &[Order]) -> Vec<Trade> {
    let mut trades = Vec::new();
    if incoming.energy.is_zero() {
        return trades;
    }
    let crosses = |order: &Order| match incoming.side {
        Side::Bid => order.side == Side::Ask && order.price <= incoming.price,
        Side::Ask => order.side == Side::Bid && order.price >= incoming.price,
    };
    let crossing: Vec<Reverse<Rank>> = resting
        .iter()
        .enumerate()
        .filter(|(_, order)| !order.energy.is_zero() && crosses(order))
        .map(|(position, order)| Reverse(rank(order, position)))
        .collect();
    // A max-heap of reversed ranks pops the best-ranked order first.
    let mut queue = BinaryHeap::from(crossing);
    let mut left = incoming.energy;
    while !left.is_zero() {
        let Some(Reverse((_, _, position))) = queue.pop() else {
            break;
        };
        let Some(order) = resting.get(position) else {
            continue;
        };
        let energy = left.min(order.energy);
        let (bid, ask) = match incoming.side {
            Side::Bid => (incoming, order),
            Side::Ask => (order, incoming),
        };
        trades.push(Trade {
            bid: bid.id,
            ask: ask.id,
            buyer: bid.owner,
            seller: ask.owner,
            energy,
            price: order.price,
        });
        left = left.saturating_sub(energy);
    }
    trades
}

/// Where an order stands among the orders of its side: the smaller rank goes first. Price first
/// (bids descending, as `u64::MAX - price` ascending; asks ascending), then id, then position in
/// the input, which only decides between orders that share an id.
type Rank = (u64, OrderId, usize);

fn rank(order: &Order, position: usize) -> Rank {
    let price_rank = match order.side {
        // Never saturates: `price <= u64::MAX`.
        Side::Bid => u64::MAX.saturating_sub(order.price.0),
        Side::Ask => order.price.0,
    };
    (price_rank, order.id, position)
}
