//! The market through the ledger: bad input is refused with a reason and changes nothing;
//! random order books clear on chain exactly as the reference does; random trading and
//! settlement conserve tokens and never settle more energy than was metered.

use ledger::{MarketEvent, Receipt, State, TxError};
use market::{
    book::{Order, Trade},
    reference,
};
use primitives::{
    Amount, ChainParams, ContractId, Energy, MarketParams, OrderId, Payload, Price, Side, Slot,
    Tariffs, TimestampMs, Transaction, VerifiedTransaction,
    testing::{self, address, chain_id},
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const CHAIN: &str = "market-test";
const OPERATOR: u8 = 0;
const SLOT_MS: u64 = 60_000;
/// Genesis at the start of slot 1,000 (one-minute slots).
const GENESIS: u64 = 1_000 * SLOT_MS;

fn params() -> MarketParams {
    MarketParams {
        slot_minutes: 1,
        reading_minutes: 1,
        gate_lead_minutes: 0,
        settlement_delay_slots: 1,
        clearing: primitives::ClearingRule::UniformPrice,
        tariffs: Tariffs { retail: Price(30), feed_in: Price(8), grid_fee: Price(4) },
    }
}

/// Members 1..=members, each with 10,000 tokens and a meter (seed + 100), registered in the
/// first block.
struct Chain {
    state: State,
    nonces: BTreeMap<u8, u64>,
    time: u64,
}

impl Chain {
    fn new(members: u8, clearing: primitives::ClearingRule) -> Chain {
        let balances: Vec<(u8, u128)> = (1..=members).map(|member| (member, 10_000)).collect();
        let mut genesis = testing::genesis(
            CHAIN,
            99,
            OPERATOR,
            &balances,
            ChainParams::default(),
            TimestampMs(GENESIS),
        );
        genesis.config.market = MarketParams { clearing, ..params() };
        let mut chain = Chain {
            state: State::from_genesis(&genesis).unwrap(),
            nonces: BTreeMap::new(),
            time: GENESIS,
        };
        let registrations: Vec<_> = (1..=members)
            .map(|member| {
                chain.tx(
                    OPERATOR,
                    Payload::RegisterMeter { meter: address(member + 100), owner: address(member) },
                )
            })
            .collect();
        chain.block(1, registrations);
        chain
    }

    fn tx(&mut self, sender: u8, payload: Payload) -> VerifiedTransaction {
        let nonce = self.nonces.entry(sender).or_default();
        let tx = testing::signed(CHAIN, sender, *nonce, payload).verify(&chain_id(CHAIN)).unwrap();
        *nonce += 1;
        tx
    }

    /// A block `advance_ms` after the previous one.
    fn block(
        &mut self,
        advance_ms: u64,
        txs: Vec<VerifiedTransaction>,
    ) -> (Vec<Receipt>, Vec<MarketEvent>) {
        self.time += advance_ms;
        let outcome = self.state.apply_block(TimestampMs(self.time), &txs).unwrap();
        assert_eq!(self.state.check_conservation(), Ok(()), "tokens conserved at {}", self.time);
        (outcome.receipts, outcome.events)
    }

    fn now_slot(&self) -> u64 {
        self.time / SLOT_MS
    }
}

/// A transaction refused at admission with `reason`, and, when forced into a block, failing with
/// the same reason and changing nothing but the sender's nonce.
fn assert_refused(chain: &mut Chain, sender: u8, payload: Payload, reason: &str) {
    let tx = chain.tx(sender, payload);
    let before = chain.state.clone();
    let now = TimestampMs(chain.time);
    let checked = chain.state.check(tx.tx(), now);
    assert_eq!(
        checked.as_ref().map_err(TxError::code),
        Err(reason),
        "admission of {:?}",
        tx.tx().payload
    );
    assert_eq!(chain.state.entries(), before.entries(), "a refused check changes nothing");
    let (receipts, _) = chain.block(0, vec![tx]);
    match &receipts[0] {
        Receipt::Failed(error) => assert_eq!(error.code(), reason),
        other => panic!("expected a failure, got {other:?}"),
    }
    let sender_before = before.account(&address(sender));
    let mut after_entries = chain.state.entries();
    let mut before_entries = before.entries();
    let sender_key = ledger::keys::account(&address(sender));
    after_entries.retain(|(key, _)| *key != sender_key && *key != ledger::keys::cursor());
    before_entries.retain(|(key, _)| *key != sender_key && *key != ledger::keys::cursor());
    assert_eq!(after_entries, before_entries, "{reason}: only the sender's nonce changed");
    let sender_after = chain.state.account(&address(sender));
    assert_eq!(sender_after.balance, sender_before.balance);
    assert_eq!(sender_after.nonce.0, sender_before.nonce.0 + 1);
}

#[test]
fn bad_input_is_refused_with_a_reason_and_changes_nothing() {
    let mut chain = Chain::new(3, primitives::ClearingRule::UniformPrice);
    let open = chain.now_slot() + 2;

    // A reading from an account that is not a meter.
    let reading = Payload::Reading {
        interval: chain.now_slot() - 1,
        produced: Energy(1),
        consumed: Energy(0),
        estimated: false,
    };
    assert_refused(&mut chain, 1, reading.clone(), "unregistered_meter");

    // A reading signed by a key other than the meter's never gets that far: the signature
    // does not verify for the meter's address.
    let forged = Transaction {
        chain_id: chain_id(CHAIN),
        sender: address(101),
        nonce: primitives::Nonce(0),
        fee: primitives::Amount::ZERO,
        payload: reading.clone(),
    }
    .sign(&testing::key(1));
    assert_eq!(forged.verify(&chain_id(CHAIN)).unwrap_err(), primitives::TxRejection::BadSignature);

    // A duplicate reading.
    chain.block(SLOT_MS, vec![]);
    let interval = chain.now_slot() - 1;
    let first = chain.tx(
        101,
        Payload::Reading { interval, produced: Energy(500), consumed: Energy(0), estimated: false },
    );
    let (receipts, _) = chain.block(0, vec![first]);
    assert!(receipts[0].is_success());
    assert_refused(
        &mut chain,
        101,
        Payload::Reading { interval, produced: Energy(7), consumed: Energy(0), estimated: true },
        "duplicate_reading",
    );
    // A reading for an interval that has not ended.
    let future = chain.now_slot() + 5;
    assert_refused(
        &mut chain,
        101,
        Payload::Reading {
            interval: future,
            produced: Energy(1),
            consumed: Energy(0),
            estimated: false,
        },
        "reading_too_early",
    );

    // An order after gate closure, and one with nothing in it.
    let closed = chain.now_slot();
    assert_refused(
        &mut chain,
        1,
        Payload::PlaceOrder {
            slot: Slot(closed),
            side: Side::Ask,
            energy: Energy(1_000),
            price: Price(5),
        },
        "gate_closed",
    );
    assert_refused(
        &mut chain,
        1,
        Payload::PlaceOrder {
            slot: Slot(open + 5),
            side: Side::Ask,
            energy: Energy(0),
            price: Price(5),
        },
        "energy_out_of_range",
    );
    // A bid beyond the balance: 10,000 kWh at 30 + 4 reserves 340,000 tokens.
    assert_refused(
        &mut chain,
        2,
        Payload::PlaceOrder {
            slot: Slot(open + 5),
            side: Side::Bid,
            energy: Energy(10_000_000_000),
            price: Price(30),
        },
        "insufficient_balance",
    );
    // Trading without a meter.
    assert_refused(
        &mut chain,
        50,
        Payload::PlaceOrder {
            slot: Slot(open + 5),
            side: Side::Ask,
            energy: Energy(1_000),
            price: Price(5),
        },
        "no_meter",
    );

    // A contract with oneself.
    let contract = |prosumer| Payload::ProposeContract {
        prosumer: address(prosumer),
        price: Price(20),
        max_energy: Energy(1_000),
        first_slot: Slot(open + 5),
        last_slot: Slot(open + 9),
    };
    assert_refused(&mut chain, 2, contract(2), "self_contract");
    // Accepting one's own proposal: only the prosumer accepts.
    let proposal = chain.tx(2, contract(3));
    let (receipts, _) = chain.block(0, vec![proposal]);
    let Receipt::Success(ledger::Outcome::Contract(id)) = receipts[0] else {
        panic!("{receipts:?}")
    };
    assert_refused(&mut chain, 2, Payload::AcceptContract { contract: id }, "not_contract_party");
    assert_refused(
        &mut chain,
        3,
        Payload::AcceptContract { contract: ContractId(99) },
        "unknown_contract",
    );
    // A consumer bound by a contract may not bid for its slots.
    assert_refused(
        &mut chain,
        2,
        Payload::PlaceOrder {
            slot: Slot(open + 6),
            side: Side::Bid,
            energy: Energy(1_000),
            price: Price(5),
        },
        "under_contract",
    );

    // Operator actions by a non-operator.
    assert_refused(
        &mut chain,
        1,
        Payload::RegisterMeter { meter: address(120), owner: address(1) },
        "not_operator",
    );
    let tariffs = Tariffs { retail: Price(40), feed_in: Price(9), grid_fee: Price(4) };
    assert_refused(
        &mut chain,
        1,
        Payload::SetTariffs { from_slot: Slot(open + 50), tariffs },
        "not_operator",
    );
    assert_refused(
        &mut chain,
        1,
        Payload::Mint {
            to: address(1),
            amount: Amount(5),
            fiat_ref: primitives::FiatRef::new("x").unwrap(),
        },
        "not_issuer",
    );
    // The operator's own change goes through, from a later slot.
    let change = chain.tx(OPERATOR, Payload::SetTariffs { from_slot: Slot(open + 50), tariffs });
    let (receipts, _) = chain.block(0, vec![change]);
    assert!(receipts[0].is_success());
    assert_eq!(chain.state.tariffs_for(Slot(open + 50)), tariffs);
    assert_eq!(chain.state.tariffs_for(Slot(open + 49)), params().tariffs);
    // A bid reserved the grid fee of its slot: the fee of that slot is fixed from then on, the
    // other tariffs are not.
    let bid = chain.tx(
        2,
        Payload::PlaceOrder {
            slot: Slot(open + 60),
            side: Side::Bid,
            energy: Energy(1_000),
            price: Price(5),
        },
    );
    let (receipts, _) = chain.block(0, vec![bid]);
    assert!(receipts[0].is_success());
    let dearer_fee = Tariffs { grid_fee: Price(6), ..tariffs };
    assert_refused(
        &mut chain,
        OPERATOR,
        Payload::SetTariffs { from_slot: Slot(open + 55), tariffs: dearer_fee },
        "fee_fixed",
    );
    let dearer_retail = Tariffs { retail: Price(45), ..tariffs };
    let change = chain
        .tx(OPERATOR, Payload::SetTariffs { from_slot: Slot(open + 55), tariffs: dearer_retail });
    let (receipts, _) = chain.block(0, vec![change]);
    assert!(receipts[0].is_success());
    assert_eq!(chain.state.tariffs_for(Slot(open + 60)), dearer_retail);

    // Cancelling someone else's order, and certificates one does not hold.
    let ask = chain.tx(
        1,
        Payload::PlaceOrder {
            slot: Slot(open + 5),
            side: Side::Ask,
            energy: Energy(1_000),
            price: Price(5),
        },
    );
    let (receipts, _) = chain.block(0, vec![ask]);
    let Receipt::Success(ledger::Outcome::Order(order)) = receipts[0] else {
        panic!("{receipts:?}")
    };
    assert_refused(&mut chain, 3, Payload::CancelOrder { order }, "not_order_owner");
    assert_refused(
        &mut chain,
        1,
        Payload::PlaceOrder {
            slot: Slot(open + 5),
            side: Side::Bid,
            energy: Energy(1_000),
            price: Price(5),
        },
        "opposite_order",
    );
    assert_refused(
        &mut chain,
        3,
        Payload::TransferCertificates { to: address(1), count: 1 },
        "insufficient_certificates",
    );
}

/// An order as the property tests generate it: member, side, energy in Wh, price.
#[derive(Clone, Debug)]
struct RandomOrder {
    member: u8,
    side: Side,
    wh: u64,
    price: u64,
}

fn random_order(members: u8) -> impl Strategy<Value = RandomOrder> {
    (1..=members, prop_oneof![Just(Side::Bid), Just(Side::Ask)], 1u64..5_000, 0u64..40)
        .prop_map(|(member, side, wh, price)| RandomOrder { member, side, wh, price })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Orders placed on chain clear exactly as the reference clears the same book.
    #[test]
    fn chain_clearing_equals_the_reference(orders in proptest::collection::vec(random_order(12), 1..80)) {
        let mut chain = Chain::new(12, primitives::ClearingRule::UniformPrice);
        let slot = chain.now_slot() + 3;
        let mut txs = Vec::new();
        let mut book = Vec::new();
        let mut sides: BTreeMap<u8, Side> = BTreeMap::new();
        for order in &orders {
            // The chain refuses an account on both sides of a slot; keep the book to what it takes.
            if *sides.entry(order.member).or_insert(order.side) != order.side {
                continue;
            }
            let id = OrderId(book.len() as u64);
            book.push(Order { id, owner: address(order.member), side: order.side, energy: Energy(order.wh * 1_000), price: Price(order.price) });
            txs.push(chain.tx(order.member, Payload::PlaceOrder { slot: Slot(slot), side: order.side, energy: Energy(order.wh * 1_000), price: Price(order.price) }));
        }
        let (receipts, _) = chain.block(0, txs);
        prop_assert!(receipts.iter().all(Receipt::is_success), "{:?}", receipts);
        let mut cleared = None;
        for _ in 0..4 {
            let (_, events) = chain.block(SLOT_MS, vec![]);
            for event in events {
                if let MarketEvent::Cleared { slot: cleared_slot, price, trades, .. } = event
                    && cleared_slot == Slot(slot)
                {
                    cleared = Some((price, trades));
                }
            }
        }
        let (price, trades) = cleared.expect("the slot was cleared");
        let expected = reference::book::clear_uniform(&book);
        prop_assert_eq!(price, expected.price);
        prop_assert_eq!(trades, expected.trades);
    }

    /// Random trading, contracts and readings over several slots: tokens are conserved after
    /// every block (checked inside `Chain::block`), nothing stays reserved once everything has
    /// settled, only the grid's balance may be negative, and no account is settled more energy
    /// than its meters measured.
    #[test]
    fn trading_and_settlement_conserve_tokens_and_energy(
        orders in proptest::collection::vec(random_order(8), 0..60),
        readings in proptest::collection::vec((1u8..=8, 0u64..4, 0u64..3_000, 0u64..3_000), 0..60),
        contract in proptest::option::of((1u8..=8, 1u8..=8, 1u64..40, 1u64..3_000)),
        pay_as_bid in any::<bool>(),
    ) {
        let clearing = if pay_as_bid { primitives::ClearingRule::PayAsBid } else { primitives::ClearingRule::UniformPrice };
        let mut chain = Chain::new(8, clearing);
        let first = chain.now_slot() + 2;
        let mut txs = Vec::new();
        if let Some((consumer, prosumer, price, wh)) = contract
            && consumer != prosumer
        {
                txs.push(chain.tx(consumer, Payload::ProposeContract { prosumer: address(prosumer), price: Price(price), max_energy: Energy(wh * 1_000), first_slot: Slot(first), last_slot: Slot(first + 3) }));
                txs.push(chain.tx(prosumer, Payload::AcceptContract { contract: ContractId(0) }));
        }
        for (index, order) in orders.iter().enumerate() {
            let slot = first + (index as u64 % 4);
            txs.push(chain.tx(order.member, Payload::PlaceOrder { slot: Slot(slot), side: order.side, energy: Energy(order.wh * 1_000), price: Price(order.price) }));
        }
        // Some of these fail (bids under contract, both sides of a slot): that is fine.
        chain.block(0, txs);
        let mut metered: BTreeMap<(u8, u64), (u64, u64)> = BTreeMap::new();
        let mut settled: Vec<market::settlement::SettlementRecord> = Vec::new();
        for step in 0..8u64 {
            let (_, events) = chain.block(SLOT_MS, vec![]);
            settled.extend(events.into_iter().flat_map(|event| match event {
                MarketEvent::Settled { records, .. } => records,
                MarketEvent::Cleared { .. } => vec![],
            }));
            // Readings for the slot that just ended.
            let ended = chain.now_slot() - 1;
            let mut txs = Vec::new();
            for (member, slot_offset, produced, consumed) in &readings {
                if first + slot_offset == ended && !metered.contains_key(&(*member, ended)) {
                    metered.insert((*member, ended), (*produced * 1_000, *consumed * 1_000));
                    txs.push(chain.tx(member + 100, Payload::Reading { interval: ended, produced: Energy(produced * 1_000), consumed: Energy(consumed * 1_000), estimated: false }));
                }
            }
            let (receipts, _) = chain.block(1, txs);
            prop_assert!(receipts.iter().all(Receipt::is_success), "step {}: {:?}", step, receipts);
        }
        for account in (1..=8).map(address) {
            prop_assert_eq!(chain.state.account(&account).reserved, Amount::ZERO);
        }
        for (member, slot) in metered.keys() {
            prop_assert!(
                settled.iter().any(|record| record.account == address(*member) && record.slot == Slot(*slot)),
                "member {} was settled for slot {}", member, slot
            );
        }
        for record in &settled {
            let member = (1..=8u8).find(|member| address(*member) == record.account).expect("a member");
            let (produced, consumed) = metered.get(&(member, record.slot.0)).copied().unwrap_or((0, 0));
            let export = produced.saturating_sub(consumed);
            let import = consumed.saturating_sub(produced);
            prop_assert_eq!(record.exported.0, export);
            prop_assert_eq!(record.imported.0, import);
            let sold = record.contract_sold.0 + record.market_sold.0 + record.grid_sold.0;
            let bought = record.contract_bought.0 + record.market_bought.0 + record.grid_bought.0;
            prop_assert_eq!(sold, export, "everything exported is settled, and no more");
            prop_assert_eq!(bought, import, "everything imported is settled, and no more");
        }
    }
}

/// Trades made at placement with pay-as-bid are at the resting order's price.
#[test]
fn pay_as_bid_trades_at_once_at_the_resting_price() {
    let mut chain = Chain::new(3, primitives::ClearingRule::PayAsBid);
    let slot = Slot(chain.now_slot() + 3);
    let ask = chain.tx(
        1,
        Payload::PlaceOrder { slot, side: Side::Ask, energy: Energy(2_000_000), price: Price(10) },
    );
    let bid = chain.tx(
        2,
        Payload::PlaceOrder { slot, side: Side::Bid, energy: Energy(1_000_000), price: Price(25) },
    );
    let (receipts, _) = chain.block(0, vec![ask, bid]);
    assert!(receipts.iter().all(Receipt::is_success));
    // The bid reserved 1 kWh at 25 + 4 = 29; it traded at 10, so it keeps 10 + 4 for the trade.
    let buyer = chain.state.account(&address(2));
    assert_eq!((buyer.balance, buyer.reserved), (Amount(10_000 - 14), Amount(14)));
    let (_, events) = chain.block(4 * SLOT_MS, vec![]);
    let trades: Vec<Trade> = events
        .into_iter()
        .flat_map(|event| match event {
            MarketEvent::Cleared { trades, .. } => trades,
            MarketEvent::Settled { .. } => vec![],
        })
        .collect();
    assert_eq!(trades.len(), 1);
    assert_eq!((trades[0].energy, trades[0].price), (Energy(1_000_000), Price(10)));
}

/// A chain that runs faster than its blocks (a devnet at high speed) can close several slots in
/// one block: each is cleared once and settled once, in slot order, with the same results as a
/// chain that had a block in every slot.
#[test]
fn several_slots_closing_in_one_block_are_each_cleared_and_settled_once_in_order() {
    let orders = |chain: &mut Chain, first: u64| {
        let mut txs = Vec::new();
        for offset in 0..4u64 {
            let slot = Slot(first + offset);
            txs.push(chain.tx(
                1,
                Payload::PlaceOrder {
                    slot,
                    side: Side::Ask,
                    energy: Energy(2_000_000 + offset * 100_000),
                    price: Price(10),
                },
            ));
            txs.push(chain.tx(
                2,
                Payload::PlaceOrder {
                    slot,
                    side: Side::Bid,
                    energy: Energy(1_500_000),
                    price: Price(20 + offset),
                },
            ));
            txs.push(chain.tx(
                3,
                Payload::PlaceOrder {
                    slot,
                    side: Side::Bid,
                    energy: Energy(1_000_000),
                    price: Price(12),
                },
            ));
        }
        txs
    };
    let collect =
        |events: Vec<MarketEvent>,
         cleared: &mut Vec<(u64, Option<Price>, Vec<Trade>)>,
         settled: &mut Vec<(u64, Vec<market::settlement::SettlementRecord>)>| {
            for event in events {
                match event {
                    MarketEvent::Cleared { slot, price, trades, .. } => {
                        cleared.push((slot.0, price, trades))
                    }
                    MarketEvent::Settled { slot, records } => settled.push((slot.0, records)),
                }
            }
        };

    // One block a slot.
    let mut stepping = Chain::new(4, primitives::ClearingRule::UniformPrice);
    let first = stepping.now_slot() + 2;
    let txs = orders(&mut stepping, first);
    let (receipts, _) = stepping.block(0, txs);
    assert!(receipts.iter().all(Receipt::is_success), "{receipts:?}");
    let (mut step_cleared, mut step_settled) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let (_, events) = stepping.block(SLOT_MS, vec![]);
        collect(events, &mut step_cleared, &mut step_settled);
    }

    // The same orders, then one block that jumps over all four slots' gates, and one that jumps
    // past all their deadlines.
    let mut jumping = Chain::new(4, primitives::ClearingRule::UniformPrice);
    assert_eq!(jumping.now_slot() + 2, first);
    let txs = orders(&mut jumping, first);
    jumping.block(0, txs);
    let (mut cleared, mut settled) = (Vec::new(), Vec::new());
    // From inside slot first - 2 to inside slot first + 3: the gates of all four have closed.
    let (_, events) = jumping.block(5 * SLOT_MS, vec![]);
    collect(events, &mut cleared, &mut settled);
    assert_eq!(
        cleared.iter().map(|(slot, ..)| *slot).collect::<Vec<_>>(),
        (first..first + 4).collect::<Vec<_>>(),
        "four slots cleared in one block, in order"
    );
    let (_, events) = jumping.block(4 * SLOT_MS, vec![]);
    collect(events, &mut cleared, &mut settled);
    let (_, events) = jumping.block(4 * SLOT_MS, vec![]);
    collect(events, &mut cleared, &mut settled);

    assert_eq!(cleared.len(), 4, "each slot cleared once");
    assert_eq!(cleared, step_cleared, "the same trades at the same prices");
    let slots: Vec<u64> = settled.iter().map(|(slot, _)| *slot).collect();
    assert_eq!(
        slots,
        step_settled.iter().map(|(slot, _)| *slot).collect::<Vec<_>>(),
        "each settled once, in order"
    );
    assert!(slots.windows(2).all(|pair| pair[0] < pair[1]), "{slots:?}");
    assert!((first..first + 4).all(|slot| slots.contains(&slot)), "{slots:?}");
    assert_eq!(settled, step_settled, "the same settlement records");
    for member in 1..=4 {
        assert_eq!(
            jumping.state.account(&address(member)),
            stepping.state.account(&address(member))
        );
    }
}
