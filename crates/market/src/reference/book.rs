//! Reference clearing and matching.
//!
//! Both functions repeatedly scan every order for the best one of a side that still has energy
//! left, match it, and start over: quadratic, and obviously the rules of
//! `docs/design/market.md`.

use crate::book::{Clearing, Order, Side, Trade};
use primitives::{Energy, Price};

/// Uniform-price clearing, naively: while the best bid with energy left and the best ask with
/// energy left cross, match them for the smaller of what they have left. The price is the floor
/// of the mean of the last pair's prices; the volume is the sum of the trades, capped at
/// `u64::MAX`.
pub fn clear_uniform(orders: &[Order]) -> Clearing {
    let mut left: Vec<u64> = orders.iter().map(|order| order.energy.0).collect();
    // (bid index, ask index, energy)
    let mut matches: Vec<(usize, usize, u64)> = Vec::new();
    while let (Some(bid), Some(ask)) =
        (best(orders, &left, Side::Bid), best(orders, &left, Side::Ask))
    {
        if orders[bid].price < orders[ask].price {
            break;
        }
        let energy = left[bid].min(left[ask]);
        left[bid] -= energy;
        left[ask] -= energy;
        matches.push((bid, ask, energy));
    }

    let price = matches.last().map(|&(bid, ask, _)| {
        let sum = u128::from(orders[bid].price.0) + u128::from(orders[ask].price.0);
        Price((sum / 2) as u64)
    });
    let total: u128 = matches.iter().map(|&(_, _, energy)| u128::from(energy)).sum();
    let volume = Energy(total.min(u128::from(u64::MAX)) as u64);
    let trades = matches
        .iter()
        .map(|&(bid, ask, energy)| Trade {
            bid: orders[bid].id,
            ask: orders[ask].id,
            buyer: orders[bid].owner,
            seller: orders[ask].owner,
            energy: Energy(energy),
            price: price.unwrap(),
        })
        .collect();
    Clearing { price, volume, trades }
}

/// Pay-as-bid matching, naively: while the incoming order has energy left and the best resting
/// order of the other side with energy left crosses it, trade the smaller of the two at the
/// resting order's price.
pub fn match_incoming(incoming: &Order, resting: &[Order]) -> Vec<Trade> {
    let mut left: Vec<u64> = resting.iter().map(|order| order.energy.0).collect();
    let mut incoming_left = incoming.energy.0;
    let mut trades = Vec::new();
    while incoming_left > 0 {
        let other_side = match incoming.side {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        };
        let Some(best) = best(resting, &left, other_side) else {
            break;
        };
        let order = &resting[best];
        let crosses = match incoming.side {
            Side::Bid => incoming.price >= order.price,
            Side::Ask => order.price >= incoming.price,
        };
        if !crosses {
            break;
        }
        let energy = incoming_left.min(left[best]);
        incoming_left -= energy;
        left[best] -= energy;
        let (bid, ask) = match incoming.side {
            Side::Bid => (incoming, order),
            Side::Ask => (order, incoming),
        };
        trades.push(Trade {
            bid: bid.id,
            ask: ask.id,
            buyer: bid.owner,
            seller: ask.owner,
            energy: Energy(energy),
            price: order.price,
        });
    }
    trades
}

/// The index of the best order of `side` that has energy left: highest price for a bid, lowest
/// for an ask, then smallest id, then (only if ids repeat) the first in the slice.
fn best(orders: &[Order], left: &[u64], side: Side) -> Option<usize> {
    let mut best: Option<usize> = None;
    for index in 0..orders.len() {
        let order = &orders[index];
        if order.side != side || left[index] == 0 {
            continue;
        }
        let better = match best {
            None => true,
            Some(current) => {
                let current = &orders[current];
                let better_price = match side {
                    Side::Bid => order.price > current.price,
                    Side::Ask => order.price < current.price,
                };
                better_price || (order.price == current.price && order.id < current.id)
            }
        };
        if better {
            best = Some(index);
        }
    }
    best
}
