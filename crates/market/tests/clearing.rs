//! Uniform-price clearing and continuous pay-as-bid matching (`docs/design/market.md`): examples
//! computed by hand, the real functions against the naive ones in `market::reference`, the
//! invariants of the rules over random books, and long streams of extreme orders that must never
//! panic.

use market::book::{Clearing, Order, OrderId, Side, Trade, clear_uniform, match_incoming};
use market::reference;
use primitives::{Address, Energy, Price, PublicKey};
use proptest::prelude::*;
use std::collections::HashMap;

/// Milliwatt-hours in a kilowatt-hour.
const KWH: u64 = 1_000_000;

/// The owner of order `id` in the examples: each order has its own account.
fn owner(id: u64) -> Address {
    Address(PublicKey([id as u8; 32]))
}

fn order(side: Side, id: u64, energy_mwh: u64, price: u64) -> Order {
    Order {
        id: OrderId(id),
        owner: owner(id),
        side,
        energy: Energy(energy_mwh),
        price: Price(price),
    }
}

fn bid(id: u64, energy_mwh: u64, price: u64) -> Order {
    order(Side::Bid, id, energy_mwh, price)
}

fn ask(id: u64, energy_mwh: u64, price: u64) -> Order {
    order(Side::Ask, id, energy_mwh, price)
}

fn trade(bid: u64, ask: u64, energy_mwh: u64, price: u64) -> Trade {
    Trade {
        bid: OrderId(bid),
        ask: OrderId(ask),
        buyer: owner(bid),
        seller: owner(ask),
        energy: Energy(energy_mwh),
        price: Price(price),
    }
}

fn cleared(price: u64, volume_mwh: u64, trades: Vec<Trade>) -> Clearing {
    Clearing { price: Some(Price(price)), volume: Energy(volume_mwh), trades }
}

// ---------------------------------------------------------------------------------------------
// Uniform price, by hand.

#[test]
fn uniform_matches_until_the_prices_stop_crossing() {
    // Bids: #1 10 kWh @ 30, #2 5 kWh @ 25. Asks: #3 8 kWh @ 20, #4 10 kWh @ 28.
    // #1 vs #3: 30 >= 20, min(10, 8) = 8 kWh; #3 is used up, #1 has 2 kWh left.
    // #1 vs #4: 30 >= 28, min(2, 10) = 2 kWh; #1 is used up, #4 has 8 kWh left.
    // #2 vs #4: 25 < 28, stop. Last pair (30, 28): price floor(58 / 2) = 29. Volume 8 + 2 = 10.
    let orders =
        [ask(4, 10 * KWH, 28), bid(2, 5 * KWH, 25), ask(3, 8 * KWH, 20), bid(1, 10 * KWH, 30)];
    assert_eq!(
        clear_uniform(&orders),
        cleared(29, 10 * KWH, vec![trade(1, 3, 8 * KWH, 29), trade(1, 4, 2 * KWH, 29)])
    );
}

#[test]
fn uniform_breaks_price_ties_by_id_not_by_position() {
    // Bids #5 and #2 both 3 kWh @ 30, given #5 first; asks #8 and #3 both 2 kWh @ 10, #8 first.
    // Bids in order #2, #5; asks #3, #8.
    // #2 vs #3: 2 kWh (#3 done, #2 has 1 left). #2 vs #8: 1 kWh (#2 done, #8 has 1 left).
    // #5 vs #8: 1 kWh (#8 done), no ask left. Last pair (30, 10): price 20. Volume 4 kWh.
    let orders =
        [bid(5, 3 * KWH, 30), bid(2, 3 * KWH, 30), ask(8, 2 * KWH, 10), ask(3, 2 * KWH, 10)];
    assert_eq!(
        clear_uniform(&orders),
        cleared(
            20,
            4 * KWH,
            vec![trade(2, 3, 2 * KWH, 20), trade(2, 8, KWH, 20), trade(5, 8, KWH, 20)]
        )
    );
}

#[test]
fn uniform_fills_the_marginal_bid_in_part_and_rounds_the_price_down() {
    // Bids: #1 6 kWh @ 40, #2 6 kWh @ 35. Asks: #3 4 kWh @ 20, #4 5 kWh @ 32, #5 10 kWh @ 36.
    // #1 vs #3: 4 kWh (#3 done, #1 has 2 left). #1 vs #4: 40 >= 32, 2 kWh (#1 done, #4 has 3).
    // #2 vs #4: 35 >= 32, 3 kWh (#4 done, #2 has 3 left: the marginal bid, partly filled).
    // #2 vs #5: 35 < 36, stop. Last pair (35, 32): floor(67 / 2) = 33. Volume 4 + 2 + 3 = 9.
    let orders = [
        bid(1, 6 * KWH, 40),
        bid(2, 6 * KWH, 35),
        ask(3, 4 * KWH, 20),
        ask(4, 5 * KWH, 32),
        ask(5, 10 * KWH, 36),
    ];
    assert_eq!(
        clear_uniform(&orders),
        cleared(
            33,
            9 * KWH,
            vec![trade(1, 3, 4 * KWH, 33), trade(1, 4, 2 * KWH, 33), trade(2, 4, 3 * KWH, 33)]
        )
    );
}

#[test]
fn uniform_advances_both_sides_on_equal_quantities_and_matches_equal_prices() {
    // Bids #1 5 kWh @ 30, #2 5 kWh @ 26; asks #3 5 kWh @ 20, #4 5 kWh @ 26.
    // #1 vs #3: 5 kWh, both used up. #2 vs #4: 26 >= 26 (equal prices cross), 5 kWh.
    // Last pair (26, 26): price 26. Volume 10 kWh.
    let orders =
        [bid(1, 5 * KWH, 30), bid(2, 5 * KWH, 26), ask(3, 5 * KWH, 20), ask(4, 5 * KWH, 26)];
    assert_eq!(
        clear_uniform(&orders),
        cleared(26, 10 * KWH, vec![trade(1, 3, 5 * KWH, 26), trade(2, 4, 5 * KWH, 26)])
    );
}

#[test]
fn uniform_skips_orders_of_zero_energy() {
    // #1 (0 kWh @ 100) and #4 (0 kWh @ 0) take no part; had #1 been the "last pair" with #3 the
    // price would have been 50. Only #2 (5 kWh @ 30) vs #3 (5 kWh @ 10): price floor(40/2) = 20.
    let orders = [bid(1, 0, 100), bid(2, 5 * KWH, 30), ask(3, 5 * KWH, 10), ask(4, 0, 0)];
    assert_eq!(clear_uniform(&orders), cleared(20, 5 * KWH, vec![trade(2, 3, 5 * KWH, 20)]));
}

#[test]
fn uniform_without_crossing_prices_makes_no_trade() {
    // Best bid 20 < best ask 21.
    let orders = [bid(1, 5 * KWH, 20), bid(2, 5 * KWH, 19), ask(3, 5 * KWH, 21)];
    assert_eq!(clear_uniform(&orders), Clearing::default());
    assert_eq!(clear_uniform(&orders).price, None);
}

#[test]
fn uniform_of_an_empty_or_one_sided_book_makes_no_trade() {
    assert_eq!(clear_uniform(&[]), Clearing::default());
    assert_eq!(clear_uniform(&[bid(1, KWH, 30), bid(2, KWH, 40)]), Clearing::default());
    assert_eq!(clear_uniform(&[ask(1, KWH, 0)]), Clearing::default());
}

#[test]
fn uniform_price_at_the_extremes_does_not_overflow() {
    // floor((u64::MAX + (u64::MAX - 1)) / 2) = u64::MAX - 1: the sum itself does not fit in u64.
    let orders = [bid(1, KWH, u64::MAX), ask(2, KWH, u64::MAX - 1)];
    assert_eq!(
        clear_uniform(&orders),
        cleared(u64::MAX - 1, KWH, vec![trade(1, 2, KWH, u64::MAX - 1)])
    );
    // floor((u64::MAX + 0) / 2) = 2^63 - 1.
    let orders = [bid(1, KWH, u64::MAX), ask(2, KWH, 0)];
    assert_eq!(clear_uniform(&orders).price, Some(Price((1 << 63) - 1)));
}

#[test]
fn uniform_volume_saturates() {
    // Two trades of u64::MAX mWh each: the volume saturates at u64::MAX.
    let orders =
        [bid(1, u64::MAX, 10), bid(2, u64::MAX, 10), ask(3, u64::MAX, 5), ask(4, u64::MAX, 5)];
    let clearing = clear_uniform(&orders);
    // floor((10 + 5) / 2) = 7.
    assert_eq!(
        clearing,
        cleared(7, u64::MAX, vec![trade(1, 3, u64::MAX, 7), trade(2, 4, u64::MAX, 7)])
    );
}

// ---------------------------------------------------------------------------------------------
// Continuous pay-as-bid, by hand.

#[test]
fn incoming_bid_takes_the_cheapest_asks_at_their_prices() {
    // Incoming #10: bid 10 kWh @ 30. Resting asks #1 4 kWh @ 25, #2 3 kWh @ 20, #3 5 kWh @ 30,
    // #4 9 kWh @ 31; resting bid #5 @ 40 is on the same side and ignored.
    // Cheapest first: #2 3 kWh @ 20 (7 left), #1 4 kWh @ 25 (3 left), #3 3 of its 5 kWh @ 30
    // (30 <= 30 crosses; nothing left). #4 would not cross (31 > 30). Remainder 10 - 10 = 0.
    let resting = [
        ask(1, 4 * KWH, 25),
        ask(2, 3 * KWH, 20),
        ask(3, 5 * KWH, 30),
        ask(4, 9 * KWH, 31),
        bid(5, 9 * KWH, 40),
    ];
    assert_eq!(
        match_incoming(&bid(10, 10 * KWH, 30), &resting),
        vec![trade(10, 2, 3 * KWH, 20), trade(10, 1, 4 * KWH, 25), trade(10, 3, 3 * KWH, 30)]
    );
}

#[test]
fn incoming_ask_takes_the_dearest_bids_by_id_and_leaves_a_remainder() {
    // Incoming #10: ask 20 kWh @ 20. Resting bids #7 4 kWh @ 25, #3 4 kWh @ 25, #5 5 kWh @ 22,
    // #6 5 kWh @ 19; resting ask #2 is ignored.
    // Dearest first, ties by id: #3 4 kWh @ 25, #7 4 kWh @ 25, #5 5 kWh @ 22; #6 does not cross
    // (19 < 20). Matched 13 kWh; 20 - 13 = 7 kWh rest.
    let resting = [
        bid(7, 4 * KWH, 25),
        bid(3, 4 * KWH, 25),
        bid(5, 5 * KWH, 22),
        bid(6, 5 * KWH, 19),
        ask(2, KWH, 1),
    ];
    let trades = match_incoming(&ask(10, 20 * KWH, 20), &resting);
    assert_eq!(
        trades,
        vec![trade(3, 10, 4 * KWH, 25), trade(7, 10, 4 * KWH, 25), trade(5, 10, 5 * KWH, 22)]
    );
    let matched: u64 = trades.iter().map(|trade| trade.energy.0).sum();
    assert_eq!(20 * KWH - matched, 7 * KWH);
}

#[test]
fn incoming_or_resting_orders_of_zero_energy_make_no_trade() {
    let resting = [ask(1, 0, 10), ask(2, KWH, 20)];
    assert_eq!(match_incoming(&bid(10, 0, 30), &resting), vec![]);
    // #1 has nothing left and is skipped although cheaper.
    assert_eq!(match_incoming(&bid(10, 5 * KWH, 30), &resting), vec![trade(10, 2, KWH, 20)]);
}

#[test]
fn incoming_order_without_a_crossing_counterpart_makes_no_trade() {
    assert_eq!(match_incoming(&bid(10, KWH, 30), &[]), vec![]);
    assert_eq!(match_incoming(&bid(10, KWH, 30), &[bid(1, KWH, 10), ask(2, KWH, 31)]), vec![]);
    assert_eq!(match_incoming(&ask(10, KWH, 30), &[ask(1, KWH, 40), bid(2, KWH, 29)]), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// Energies: none, a few mWh (so remainders collide), whole kWh (so quantities tie), any mWh up
/// to 20 kWh, and near `u64::MAX / 4` (so sums overflow).
fn energy() -> impl Strategy<Value = Energy> {
    prop_oneof![
        1 => Just(0u64),
        1 => 1..=5u64,
        3 => (1..=20u64).prop_map(|kwh| kwh * KWH),
        3 => 1..=20 * KWH,
        1 => (u64::MAX / 4 - 1_000)..=u64::MAX / 4,
    ]
    .prop_map(Energy)
}

/// Prices in a small range, so that ties are common, and now and then at the top of `u64`.
fn price() -> impl Strategy<Value = Price> {
    prop_oneof![9 => 0..=20u64, 1 => (u64::MAX - 3)..=u64::MAX].prop_map(Price)
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Bid), Just(Side::Ask)]
}

/// An order without its id: side, energy, price, owner.
fn parts() -> impl Strategy<Value = (Side, Energy, Price, u8)> {
    (side(), energy(), price(), 0..8u8)
}

fn assemble(parts: Vec<(Side, Energy, Price, u8)>, ids: Vec<u64>) -> Vec<Order> {
    parts
        .into_iter()
        .zip(ids)
        .map(|((side, energy, price, owner), id)| Order {
            id: OrderId(id),
            owner: Address(PublicKey([owner; 32])),
            side,
            energy,
            price,
        })
        .collect()
}

/// Up to 300 orders with unique ids, unrelated to their position.
fn book() -> impl Strategy<Value = Vec<Order>> {
    (0..=300usize).prop_flat_map(|count| {
        let ids: Vec<u64> = (0..count as u64).map(|index| 3 * index + 1).collect();
        (prop::collection::vec(parts(), count), Just(ids).prop_shuffle())
            .prop_map(|(parts, ids)| assemble(parts, ids))
    })
}

/// Up to 100 orders whose ids repeat (which the ledger never allows).
fn book_with_repeated_ids() -> impl Strategy<Value = Vec<Order>> {
    prop::collection::vec((parts(), 0..4u64), 0..=100).prop_map(|orders| {
        let (parts, ids) = orders.into_iter().unzip();
        assemble(parts, ids)
    })
}

/// A book and an incoming order whose id is not in it.
fn incoming_and_resting() -> impl Strategy<Value = (Order, Vec<Order>)> {
    (parts(), book()).prop_map(|(incoming, resting)| {
        // Book ids are 3k + 1, never 0.
        (assemble(vec![incoming], vec![0]).remove(0), resting)
    })
}

/// A book and the same orders in another order.
fn book_and_shuffled() -> impl Strategy<Value = (Vec<Order>, Vec<Order>)> {
    book().prop_flat_map(|orders| (Just(orders.clone()), Just(orders).prop_shuffle()))
}

/// An incoming order, a book, and the same book in another order.
fn incoming_resting_and_shuffled() -> impl Strategy<Value = (Order, Vec<Order>, Vec<Order>)> {
    incoming_and_resting().prop_flat_map(|(incoming, resting)| {
        (Just(incoming), Just(resting.clone()), Just(resting).prop_shuffle())
    })
}

fn by_id(orders: &[Order]) -> HashMap<OrderId, &Order> {
    orders.iter().map(|order| (order.id, order)).collect()
}

/// Energy traded per order id, in u128 so that nothing overflows.
fn filled(trades: &[Trade]) -> HashMap<OrderId, u128> {
    let mut filled = HashMap::new();
    for trade in trades {
        *filled.entry(trade.bid).or_insert(0) += u128::from(trade.energy.0);
        *filled.entry(trade.ask).or_insert(0) += u128::from(trade.energy.0);
    }
    filled
}

fn left(order: &Order, filled: &HashMap<OrderId, u128>) -> u128 {
    u128::from(order.energy.0) - filled.get(&order.id).copied().unwrap_or(0)
}

/// The invariants of a uniform-price clearing of `orders` (ids unique).
fn check_uniform(orders: &[Order], clearing: &Clearing) {
    let orders_by_id = by_id(orders);
    let filled = filled(&clearing.trades);
    for trade in &clearing.trades {
        let bid = orders_by_id[&trade.bid];
        let ask = orders_by_id[&trade.ask];
        assert!(trade.energy.0 > 0, "a trade of no energy: {trade:?}");
        assert_eq!((bid.side, ask.side), (Side::Bid, Side::Ask));
        assert_eq!((trade.buyer, trade.seller), (bid.owner, ask.owner));
        assert_eq!(Some(trade.price), clearing.price, "every trade at the clearing price");
        // Every matched bid is at or above the price, every matched ask at or below.
        assert!(bid.price >= trade.price && trade.price >= ask.price, "{bid:?} {ask:?} {trade:?}");
    }
    for order in orders {
        assert!(filled.get(&order.id).copied().unwrap_or(0) <= u128::from(order.energy.0));
    }
    match clearing.trades.last() {
        None => assert_eq!(clearing.price, None),
        Some(last) => {
            // The price is the floor of the mean of the last pair's prices.
            let (bid, ask) = (orders_by_id[&last.bid], orders_by_id[&last.ask]);
            let mean = (u128::from(bid.price.0) + u128::from(ask.price.0)) / 2;
            assert_eq!(clearing.price.map(|price| u128::from(price.0)), Some(mean));
        }
    }
    let total: u128 = clearing.trades.iter().map(|trade| u128::from(trade.energy.0)).sum();
    assert_eq!(u128::from(clearing.volume.0), total.min(u128::from(u64::MAX)));
    // Nothing left over still crosses: the best remaining bid is below the best remaining ask.
    let best_bid_left = orders
        .iter()
        .filter(|o| o.side == Side::Bid && left(o, &filled) > 0)
        .map(|o| o.price)
        .max();
    let best_ask_left = orders
        .iter()
        .filter(|o| o.side == Side::Ask && left(o, &filled) > 0)
        .map(|o| o.price)
        .min();
    if let (Some(bid), Some(ask)) = (best_bid_left, best_ask_left) {
        assert!(bid < ask, "the remainders still cross: bid {bid:?} >= ask {ask:?}");
    }
}

/// The invariants of matching `incoming` against `resting` (ids unique, the incoming's not among
/// them).
fn check_pay_as_bid(incoming: &Order, resting: &[Order], trades: &[Trade]) {
    let resting_by_id = by_id(resting);
    let filled = filled(trades);
    let mut previous: Option<&Order> = None;
    for trade in trades {
        let (own_id, other_id) = match incoming.side {
            Side::Bid => (trade.bid, trade.ask),
            Side::Ask => (trade.ask, trade.bid),
        };
        assert_eq!(own_id, incoming.id);
        let other = resting_by_id[&other_id];
        assert_ne!(other.side, incoming.side, "matched an order of its own side");
        assert!(trade.energy.0 > 0, "a trade of no energy: {trade:?}");
        assert_eq!(trade.price, other.price, "pay-as-bid trades at the resting price");
        let (buyer, seller) = match incoming.side {
            Side::Bid => (incoming.owner, other.owner),
            Side::Ask => (other.owner, incoming.owner),
        };
        assert_eq!((trade.buyer, trade.seller), (buyer, seller));
        // Never beyond the incoming order's limit, and best price first.
        match incoming.side {
            Side::Bid => assert!(trade.price <= incoming.price),
            Side::Ask => assert!(trade.price >= incoming.price),
        }
        if let Some(previous) = previous {
            match incoming.side {
                Side::Bid => assert!(previous.price <= other.price),
                Side::Ask => assert!(previous.price >= other.price),
            }
            if previous.price == other.price {
                assert!(previous.id < other.id, "ties taken by id");
            }
        }
        previous = Some(other);
    }
    for order in resting {
        assert!(filled.get(&order.id).copied().unwrap_or(0) <= u128::from(order.energy.0));
    }
    let matched: u128 = trades.iter().map(|trade| u128::from(trade.energy.0)).sum();
    let remainder = u128::from(incoming.energy.0)
        .checked_sub(matched)
        .expect("the incoming order is not over-filled");
    // A remainder means every crossing resting order was used up.
    if remainder > 0 {
        for order in resting {
            let crosses = match incoming.side {
                Side::Bid => order.side == Side::Ask && order.price <= incoming.price,
                Side::Ask => order.side == Side::Bid && order.price >= incoming.price,
            };
            assert!(!crosses || left(order, &filled) == 0, "{order:?} could still trade");
        }
    }
}

proptest! {
    #[test]
    fn uniform_equals_reference(orders in book()) {
        prop_assert_eq!(clear_uniform(&orders), reference::book::clear_uniform(&orders));
    }

    #[test]
    fn uniform_equals_reference_with_repeated_ids(orders in book_with_repeated_ids()) {
        prop_assert_eq!(clear_uniform(&orders), reference::book::clear_uniform(&orders));
    }

    #[test]
    fn uniform_invariants_hold(orders in book()) {
        let clearing = clear_uniform(&orders);
        check_uniform(&orders, &clearing);
        prop_assert_eq!(clearing.volume, reference::book::clear_uniform(&orders).volume);
    }

    #[test]
    fn uniform_does_not_depend_on_the_order_of_the_orders(
        (orders, shuffled) in book_and_shuffled()
    ) {
        prop_assert_eq!(clear_uniform(&orders), clear_uniform(&shuffled));
    }

    #[test]
    fn pay_as_bid_equals_reference((incoming, resting) in incoming_and_resting()) {
        prop_assert_eq!(
            match_incoming(&incoming, &resting),
            reference::book::match_incoming(&incoming, &resting)
        );
    }

    #[test]
    fn pay_as_bid_equals_reference_with_repeated_ids(
        incoming in parts(), resting in book_with_repeated_ids()
    ) {
        let incoming = assemble(vec![incoming], vec![1]).remove(0);
        prop_assert_eq!(
            match_incoming(&incoming, &resting),
            reference::book::match_incoming(&incoming, &resting)
        );
    }

    #[test]
    fn pay_as_bid_invariants_hold((incoming, resting) in incoming_and_resting()) {
        let trades = match_incoming(&incoming, &resting);
        check_pay_as_bid(&incoming, &resting, &trades);
    }

    #[test]
    fn pay_as_bid_does_not_depend_on_the_order_of_the_resting_orders(
        (incoming, resting, shuffled) in incoming_resting_and_shuffled()
    ) {
        prop_assert_eq!(match_incoming(&incoming, &resting), match_incoming(&incoming, &shuffled));
    }
}

// ---------------------------------------------------------------------------------------------
// Long streams of arbitrary orders.

/// Bytes per decoded order.
const RECORD: usize = 10;

/// Decodes orders from arbitrary bytes, ten bytes an order, with extreme values often: ids from
/// two bytes (so they repeat), energies and prices picked among zero, one, the raw bytes, and
/// the top of `u64`.
fn decode_orders(bytes: &[u8]) -> Vec<Order> {
    bytes
        .chunks_exact(RECORD)
        .map(|record| {
            let word = |range: std::ops::Range<usize>| {
                record[range].iter().fold(0u64, |word, byte| (word << 8) | u64::from(*byte))
            };
            let control = record[0];
            let raw_energy = word(3..7);
            let energy = match (control >> 1) & 7 {
                0 => 0,
                1 => 1,
                2 => u64::MAX,
                3 => u64::MAX - raw_energy,
                4 => raw_energy << 32,
                _ => raw_energy,
            };
            let raw_price = word(7..9);
            let price = match (control >> 4) & 3 {
                0 => u64::MAX - raw_price,
                1 => u64::MAX,
                _ => raw_price & 63,
            };
            Order {
                id: OrderId(word(1..3)),
                owner: Address(PublicKey([record[9]; 32])),
                side: if control & 1 == 0 { Side::Bid } else { Side::Ask },
                energy: Energy(energy),
                price: Price(price),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn long_streams_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4_000 * RECORD)) {
        let orders = decode_orders(&bytes);

        // Uniform price over the whole stream as one book, ids repeating.
        let clearing = clear_uniform(&orders);
        prop_assert!(clearing.trades.iter().all(|trade| trade.energy.0 > 0));
        let total: u128 = clearing.trades.iter().map(|trade| u128::from(trade.energy.0)).sum();
        prop_assert_eq!(u128::from(clearing.volume.0), total.min(u128::from(u64::MAX)));
        let prefix = &orders[..orders.len().min(1_000)];
        prop_assert_eq!(clear_uniform(prefix), reference::book::clear_uniform(prefix));

        // The same stream as continuous trading: each order, renumbered in arrival order as the
        // ledger does, matches against what rests, and its remainder rests in turn.
        let mut resting: Vec<Order> = Vec::new();
        for (arrival, order) in orders.iter().enumerate() {
            let incoming = Order { id: OrderId(arrival as u64), ..order.clone() };
            let trades = match_incoming(&incoming, &resting);
            check_pay_as_bid(&incoming, &resting, &trades);
            for trade in &trades {
                let resting_id = if incoming.side == Side::Bid { trade.ask } else { trade.bid };
                // Resting orders stay in arrival order, which is id order.
                let position = resting.binary_search_by_key(&resting_id, |order| order.id).unwrap();
                resting[position].energy.0 -= trade.energy.0;
            }
            resting.retain(|order| order.energy.0 > 0);
            let matched: u128 = trades.iter().map(|trade| u128::from(trade.energy.0)).sum();
            let remainder = u128::from(incoming.energy.0) - matched;
            if remainder > 0 {
                resting.push(Order { energy: Energy(remainder as u64), ..incoming });
            }
        }
        // What rests never crosses.
        let best_bid = resting.iter().filter(|o| o.side == Side::Bid).map(|o| o.price).max();
        let best_ask = resting.iter().filter(|o| o.side == Side::Ask).map(|o| o.price).min();
        if let (Some(bid), Some(ask)) = (best_bid, best_ask) {
            prop_assert!(bid < ask);
        }
    }
}
