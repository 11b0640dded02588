//! Settlement of a slot, statements and key figures: hand-computed examples, then property tests
//! against the reference implementation and the conservation rules of
//! `docs/design/market.md`.

use market::book::{OrderId, Trade};
use market::reference;
use market::settlement::{
    ContractId, ContractTerms, MeterSlot, SettlementRecord, SlotInput, SlotSettlement, settle,
};
use market::statement::{KeyFigures, Totals, key_figures, totals};
use market::value;
use primitives::{Address, Amount, Energy, Price, PublicKey, Slot, Tariffs};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Account number `n`.
fn account(n: u8) -> Address {
    Address(PublicKey([n; 32]))
}

/// Meter number `n` (a different key space from accounts).
fn meter_address(n: usize) -> Address {
    let mut bytes = [0xee; 32];
    bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
    Address(PublicKey(bytes))
}

const SLOT: Slot = Slot(42);

/// Retail 30, feed-in 8, grid fee 4 tokens/kWh (the defaults).
const TARIFFS: Tariffs = Tariffs { retail: Price(30), feed_in: Price(8), grid_fee: Price(4) };

/// A slot under construction.
#[derive(Clone, Debug, Default)]
struct Case {
    meters: Vec<MeterSlot>,
    contracts: Vec<ContractTerms>,
    trades: Vec<Trade>,
    tariffs: Option<Tariffs>,
}

impl Case {
    fn meter(mut self, owner: u8, produced: u64, consumed: u64) -> Case {
        let meter = meter_address(self.meters.len());
        self.meters.push(MeterSlot {
            meter,
            owner: account(owner),
            produced: Energy(produced),
            consumed: Energy(consumed),
        });
        self
    }

    fn contract(mut self, id: u64, consumer: u8, prosumer: u8, price: u64, max: u64) -> Case {
        self.contracts.push(ContractTerms {
            id: ContractId(id),
            consumer: account(consumer),
            prosumer: account(prosumer),
            price: Price(price),
            max_energy: Energy(max),
        });
        self
    }

    fn trade(mut self, seller: u8, buyer: u8, energy: u64, price: u64) -> Case {
        let id = self.trades.len() as u64;
        self.trades.push(Trade {
            bid: OrderId(2 * id),
            ask: OrderId(2 * id + 1),
            buyer: account(buyer),
            seller: account(seller),
            energy: Energy(energy),
            price: Price(price),
        });
        self
    }

    fn input(&self) -> SlotInput<'_> {
        SlotInput {
            slot: SLOT,
            meters: &self.meters,
            contracts: &self.contracts,
            trades: &self.trades,
            tariffs: self.tariffs.unwrap_or(TARIFFS),
        }
    }

    /// Settles with the real implementation, checks it against the reference and the
    /// conservation rules, and returns it.
    fn settle(&self) -> SlotSettlement {
        let input = self.input();
        let settlement = settle(&input);
        assert_eq!(settlement, reference::settlement::settle(&input), "reference disagrees");
        check_rules(&input, &settlement).unwrap();
        settlement
    }
}

fn record(settlement: &SlotSettlement, n: u8) -> &SettlementRecord {
    settlement
        .records
        .iter()
        .find(|record| record.account == account(n))
        .unwrap_or_else(|| panic!("no record for account {n}"))
}

/// A record with the given lines; the rest zero.
fn blank(n: u8, slot: Slot) -> SettlementRecord {
    SettlementRecord::new(account(n), slot)
}

// ---------------------------------------------------------------------------------------------
// Hand-computed settlements (tariffs: retail 30, feed-in 8, grid fee 4; 1 kWh = 1,000,000 mWh)

#[test]
fn contract_capped_by_its_maximum() {
    // Prosumer 1 exports 5 − 1 = 4 kWh, consumer 2 imports 3 kWh; the contract allows 2 kWh.
    let settlement = Case::default()
        .meter(1, 5_000_000, 1_000_000)
        .meter(2, 0, 3_000_000)
        .contract(1, 2, 1, 20, 2_000_000)
        .settle();
    // delivered = min(2, 4, 3) kWh = 2 kWh.
    assert_eq!(settlement.contract_deliveries, vec![(ContractId(1), Energy(2_000_000))]);

    let prosumer = record(&settlement, 1);
    assert_eq!(prosumer.produced, Energy(5_000_000));
    assert_eq!(prosumer.consumed, Energy(1_000_000));
    assert_eq!(prosumer.exported, Energy(4_000_000));
    assert_eq!(prosumer.contract_sold, Energy(2_000_000));
    assert_eq!(prosumer.contract_received, Amount(40)); // 2 kWh × 20
    assert_eq!(prosumer.grid_sold, Energy(2_000_000)); // 4 − 2 kWh
    assert_eq!(prosumer.grid_received, Amount(16)); // 2 kWh × 8

    let consumer = record(&settlement, 2);
    assert_eq!(consumer.imported, Energy(3_000_000));
    assert_eq!(consumer.contract_bought, Energy(2_000_000));
    assert_eq!(consumer.contract_paid, Amount(40)); // 2 kWh × 20
    assert_eq!(consumer.contract_fees, Amount(8)); // 2 kWh × 4
    assert_eq!(consumer.grid_bought, Energy(1_000_000)); // 3 − 2 kWh
    assert_eq!(consumer.grid_paid, Amount(30)); // 1 kWh × 30
    assert_eq!(consumer.arrears, Amount::ZERO);
}

#[test]
fn contract_capped_by_the_prosumers_export() {
    // Prosumer 1 exports 1.5 kWh; consumer 2 imports 3 kWh; the contract allows 2 kWh.
    let settlement = Case::default()
        .meter(1, 1_500_000, 0)
        .meter(2, 0, 3_000_000)
        .contract(1, 2, 1, 20, 2_000_000)
        .settle();
    // delivered = min(2, 1.5, 3) kWh = 1.5 kWh.
    assert_eq!(settlement.contract_deliveries, vec![(ContractId(1), Energy(1_500_000))]);
    let prosumer = record(&settlement, 1);
    assert_eq!(prosumer.contract_received, Amount(30)); // 1.5 × 20
    assert_eq!(prosumer.grid_sold, Energy::ZERO);
    let consumer = record(&settlement, 2);
    assert_eq!(consumer.contract_paid, Amount(30));
    assert_eq!(consumer.contract_fees, Amount(6)); // 1.5 × 4
    assert_eq!(consumer.grid_bought, Energy(1_500_000)); // 3 − 1.5 kWh
    assert_eq!(consumer.grid_paid, Amount(45)); // 1.5 × 30
}

#[test]
fn contract_capped_by_the_consumers_import() {
    // Prosumer 1 exports 4 kWh; consumer 2 imports 0.5 kWh; the contract allows 2 kWh at 25.
    let settlement = Case::default()
        .meter(1, 4_000_000, 0)
        .meter(2, 100_000, 600_000)
        .contract(7, 2, 1, 25, 2_000_000)
        .settle();
    // delivered = min(2, 4, 0.5) kWh = 0.5 kWh.
    assert_eq!(settlement.contract_deliveries, vec![(ContractId(7), Energy(500_000))]);
    let consumer = record(&settlement, 2);
    assert_eq!(consumer.produced, Energy(100_000));
    assert_eq!(consumer.imported, Energy(500_000));
    assert_eq!(consumer.contract_paid, Amount(12)); // floor(0.5 × 25 = 12.5)
    assert_eq!(consumer.contract_fees, Amount(2)); // 0.5 × 4
    assert_eq!(consumer.grid_bought, Energy::ZERO);
    let prosumer = record(&settlement, 1);
    assert_eq!(prosumer.contract_received, Amount(12));
    assert_eq!(prosumer.grid_sold, Energy(3_500_000));
    assert_eq!(prosumer.grid_received, Amount(28)); // 3.5 × 8
}

#[test]
fn contracts_are_served_in_id_order() {
    // Prosumer 1 exports 4 kWh. Contract 7 (listed first) to consumer 2, contract 3 to
    // consumer 3, both importing 5 kWh, each allowing 3 kWh.
    let settlement = Case::default()
        .meter(1, 4_000_000, 0)
        .meter(2, 0, 5_000_000)
        .meter(3, 0, 5_000_000)
        .contract(7, 2, 1, 10, 3_000_000)
        .contract(3, 3, 1, 10, 3_000_000)
        .settle();
    // Contract 3 first: min(3, 4, 5) = 3 kWh; then contract 7: min(3, 4 − 3, 5) = 1 kWh.
    assert_eq!(
        settlement.contract_deliveries,
        vec![(ContractId(3), Energy(3_000_000)), (ContractId(7), Energy(1_000_000))]
    );
    assert_eq!(record(&settlement, 3).contract_paid, Amount(30));
    assert_eq!(record(&settlement, 3).grid_bought, Energy(2_000_000));
    assert_eq!(record(&settlement, 2).contract_paid, Amount(10));
    assert_eq!(record(&settlement, 2).grid_bought, Energy(4_000_000));
    assert_eq!(record(&settlement, 1).contract_received, Amount(40));
    assert_eq!(record(&settlement, 1).grid_sold, Energy::ZERO);
}

#[test]
fn a_seller_short_of_export_delivers_pro_rata_and_the_first_trade_gets_the_leftover() {
    // Seller 1 exports 1 kWh but sold 0.7 kWh to buyer 2 and 0.6 kWh to buyer 3 at 20.
    // Both buyers import 2 kWh.
    let settlement = Case::default()
        .meter(1, 1_000_000, 0)
        .meter(2, 0, 2_000_000)
        .meter(3, 0, 2_000_000)
        .trade(1, 2, 700_000, 20)
        .trade(1, 3, 600_000, 20)
        .settle();
    // Shares: floor(700,000 × 1,000,000 / 1,300,000) = floor(538,461.5) = 538,461 and
    //         floor(600,000 × 1,000,000 / 1,300,000) = floor(461,538.5) = 461,538;
    // 1,000,000 − 999,999 = 1 mWh left over goes to the first trade: 538,462.
    assert_eq!(settlement.trade_deliveries, vec![Energy(538_462), Energy(461_538)]);

    let seller = record(&settlement, 1);
    assert_eq!(seller.market_sold, Energy(1_000_000));
    // floor(538,462 × 20 / 10^6) = floor(10.77) = 10, floor(461,538 × 20 / 10^6) = 9.
    assert_eq!(seller.market_received, Amount(19));
    assert_eq!(seller.grid_sold, Energy::ZERO);

    let first = record(&settlement, 2);
    assert_eq!(first.market_bought, Energy(538_462));
    assert_eq!(first.market_paid, Amount(10));
    assert_eq!(first.market_fees, Amount(2)); // floor(538,462 × 4 / 10^6 = 2.15)
    assert_eq!(first.grid_bought, Energy(1_461_538)); // 2,000,000 − 538,462
    assert_eq!(first.grid_paid, Amount(43)); // floor(1,461,538 × 30 / 10^6 = 43.85)

    let second = record(&settlement, 3);
    assert_eq!(second.market_bought, Energy(461_538));
    assert_eq!(second.market_paid, Amount(9));
    assert_eq!(second.market_fees, Amount(1)); // floor(1.85)
    assert_eq!(second.grid_bought, Energy(1_538_462));
    assert_eq!(second.grid_paid, Amount(46)); // floor(46.15)
}

#[test]
fn leftover_mwh_skip_trades_without_energy() {
    // Seller 1 exports 1,000 mWh and sold 0, 700 and 600 mWh to buyer 2 (importing plenty).
    let settlement = Case::default()
        .meter(1, 1_000, 0)
        .meter(2, 0, 10_000)
        .trade(1, 2, 0, 20)
        .trade(1, 2, 700, 20)
        .trade(1, 2, 600, 20)
        .settle();
    // Shares 0, floor(538.46) = 538, floor(461.54) = 461; the 1 mWh left over cannot go to the
    // empty first trade, so the second gets it.
    assert_eq!(settlement.trade_deliveries, vec![Energy(0), Energy(539), Energy(461)]);
}

#[test]
fn a_buyer_short_of_import_takes_pro_rata_and_each_trade_takes_the_smaller_share() {
    // Buyer 3 imports 1 kWh but bought 0.3 kWh from seller 1 and 0.9 kWh from seller 2 at 12.
    // Seller 1 exports 2 kWh; seller 2 only 0.6 kWh.
    let settlement = Case::default()
        .meter(1, 2_000_000, 0)
        .meter(2, 600_000, 0)
        .meter(3, 0, 1_000_000)
        .trade(1, 3, 300_000, 12)
        .trade(2, 3, 900_000, 12)
        .settle();
    // Buyer shares: 300,000 × 1,000,000 / 1,200,000 = 250,000 and 900,000 × ... = 750,000.
    // Seller shares: 300,000 (seller 1 has enough) and 600,000 (all seller 2 has).
    // Deliveries: min(300,000, 250,000) = 250,000 and min(600,000, 750,000) = 600,000; the
    // 150,000 mWh the second trade could not take are not offered to the first.
    assert_eq!(settlement.trade_deliveries, vec![Energy(250_000), Energy(600_000)]);

    let buyer = record(&settlement, 3);
    assert_eq!(buyer.market_bought, Energy(850_000));
    assert_eq!(buyer.market_paid, Amount(3 + 7)); // 0.25 × 12 = 3; floor(0.6 × 12 = 7.2) = 7
    assert_eq!(buyer.market_fees, Amount(1 + 2)); // 0.25 × 4 = 1; floor(0.6 × 4 = 2.4) = 2
    assert_eq!(buyer.grid_bought, Energy(150_000));
    assert_eq!(buyer.grid_paid, Amount(4)); // floor(0.15 × 30 = 4.5)

    let first_seller = record(&settlement, 1);
    assert_eq!(first_seller.market_sold, Energy(250_000));
    assert_eq!(first_seller.market_received, Amount(3));
    assert_eq!(first_seller.grid_sold, Energy(1_750_000));
    assert_eq!(first_seller.grid_received, Amount(14)); // 1.75 × 8

    let second_seller = record(&settlement, 2);
    assert_eq!(second_seller.market_sold, Energy(600_000));
    assert_eq!(second_seller.market_received, Amount(7));
    assert_eq!(second_seller.grid_sold, Energy::ZERO);
}

#[test]
fn grid_purchase_and_feed_in() {
    // Account 1 has two meters: one exports 3 − 1 = 2 kWh, the other imports 1.5 kWh; an
    // account's export and import are sums over its meters, not netted.
    // Account 2 imports 0.333333 kWh.
    let settlement =
        Case::default().meter(1, 3_000_000, 1_000_000).meter(1, 0, 1_500_000).meter(2, 0, 333_333);
    let settlement = settlement.settle();
    let both = record(&settlement, 1);
    assert_eq!(both.produced, Energy(3_000_000));
    assert_eq!(both.consumed, Energy(2_500_000));
    assert_eq!(both.exported, Energy(2_000_000));
    assert_eq!(both.imported, Energy(1_500_000));
    assert_eq!(both.grid_bought, Energy(1_500_000));
    assert_eq!(both.grid_paid, Amount(45)); // 1.5 × 30
    assert_eq!(both.grid_sold, Energy(2_000_000));
    assert_eq!(both.grid_received, Amount(16)); // 2 × 8
    let small = record(&settlement, 2);
    assert_eq!(small.grid_paid, Amount(9)); // floor(0.333333 × 30 = 9.99999)
    assert_eq!(small.grid_received, Amount::ZERO);
}

#[test]
fn a_buyer_without_readings_takes_nothing_and_pays_nothing() {
    // Seller 1 exports 2 kWh and sold 1 kWh to buyer 5, who has no meter readings.
    let settlement = Case::default().meter(1, 2_000_000, 0).trade(1, 5, 1_000_000, 20).settle();
    assert_eq!(settlement.trade_deliveries, vec![Energy::ZERO]);
    assert_eq!(settlement.records.len(), 2);
    assert_eq!(*record(&settlement, 5), blank(5, SLOT));
    let seller = record(&settlement, 1);
    assert_eq!(seller.market_sold, Energy::ZERO);
    assert_eq!(seller.grid_sold, Energy(2_000_000));
    assert_eq!(seller.grid_received, Amount(16));
}

#[test]
fn records_cover_meter_owners_and_all_parties_sorted_by_account() {
    // Owners 9 and 4; trade parties 6 and 2; contract parties 8 and 4.
    let settlement = Case::default()
        .meter(9, 1_000, 0)
        .meter(4, 0, 1_000)
        .trade(6, 2, 500, 10)
        .contract(1, 8, 4, 10, 500)
        .settle();
    let accounts: Vec<Address> = settlement.records.iter().map(|record| record.account).collect();
    assert_eq!(accounts, [2, 4, 6, 8, 9].map(account));
    assert!(settlement.records.iter().all(|record| record.slot == SLOT));
    assert_eq!(settlement.contract_deliveries, vec![(ContractId(1), Energy::ZERO)]);
}

#[test]
fn an_empty_slot_settles_to_nothing() {
    assert_eq!(Case::default().settle(), SlotSettlement::default());
}

// ---------------------------------------------------------------------------------------------
// Totals and key figures

/// A prosumer's record in slot 1: 5 kWh produced, 1 consumed, 4 exported; 2 kWh sold by
/// contract for 40, 1 kWh in the market for 20, 1 kWh to the grid for 8.
fn prosumer_record() -> SettlementRecord {
    SettlementRecord {
        produced: Energy(5_000_000),
        consumed: Energy(1_000_000),
        exported: Energy(4_000_000),
        contract_sold: Energy(2_000_000),
        contract_received: Amount(40),
        market_sold: Energy(1_000_000),
        market_received: Amount(20),
        grid_sold: Energy(1_000_000),
        grid_received: Amount(8),
        ..blank(1, Slot(1))
    }
}

/// A consumer's record in slot 2: 3 kWh consumed and imported; 2 kWh by contract for 40 + 8
/// fees, 0.5 kWh in the market for 10 + 2 fees, 0.5 kWh from the grid for 15; 5 in arrears.
fn consumer_record() -> SettlementRecord {
    SettlementRecord {
        consumed: Energy(3_000_000),
        imported: Energy(3_000_000),
        contract_bought: Energy(2_000_000),
        contract_paid: Amount(40),
        contract_fees: Amount(8),
        market_bought: Energy(500_000),
        market_paid: Amount(10),
        market_fees: Amount(2),
        grid_bought: Energy(500_000),
        grid_paid: Amount(15),
        arrears: Amount(5),
        ..blank(2, Slot(2))
    }
}

#[test]
fn totals_add_up_the_lines() {
    let both = totals(&[prosumer_record(), consumer_record()]);
    assert_eq!(
        both,
        Totals {
            produced: Energy(5_000_000),
            consumed: Energy(4_000_000),
            exported: Energy(4_000_000),
            imported: Energy(3_000_000),
            bought_local: Energy(2_500_000), // 2 + 0.5 kWh
            paid_local: Amount(50),          // 40 + 10
            sold_local: Energy(3_000_000),   // 2 + 1 kWh
            received_local: Amount(60),      // 40 + 20
            grid_fees: Amount(10),           // 8 + 2
            grid_bought: Energy(500_000),
            grid_paid: Amount(15),
            grid_sold: Energy(1_000_000),
            grid_received: Amount(8),
            arrears: Amount(5),
            net: -7, // 60 + 8 − 50 − 10 − 15
        }
    );
    assert_eq!(totals(&[prosumer_record()]).net, 68); // 40 + 20 + 8
    assert_eq!(totals(&[consumer_record()]).net, -75); // −(40 + 10 + 8 + 2 + 15)
    assert_eq!(totals(&[]), Totals::default());
}

#[test]
fn totals_saturate_instead_of_overflowing() {
    let huge = SettlementRecord {
        produced: Energy(u64::MAX),
        grid_paid: Amount(u128::MAX),
        contract_received: Amount(u128::MAX),
        ..blank(1, Slot(1))
    };
    let sums = totals(&[huge.clone(), huge]);
    assert_eq!(sums.produced, Energy(u64::MAX));
    assert_eq!(sums.grid_paid, Amount(u128::MAX));
    assert_eq!(sums.net, 0); // u128::MAX received − u128::MAX paid, both saturated
    let only_paid = SettlementRecord { grid_paid: Amount(u128::MAX), ..blank(1, Slot(1)) };
    assert_eq!(totals(&[only_paid]).net, i128::MIN); // −u128::MAX saturates
}

/// Slot 1 at the default tariffs, slot 2 with retail 40 and feed-in 10.
fn tariffs_for(slot: Slot) -> Tariffs {
    if slot == Slot(2) {
        Tariffs { retail: Price(40), feed_in: Price(10), grid_fee: Price(4) }
    } else {
        TARIFFS
    }
}

#[test]
fn key_figures_of_a_period() {
    let figures = key_figures(&[prosumer_record(), consumer_record()], tariffs_for);
    assert_eq!(
        figures,
        KeyFigures {
            // consumed 4 kWh, 0.5 from the grid: 3.5 / 4 = 875,000 ppm.
            self_sufficiency_ppm: Some(875_000),
            // produced 5 kWh, 1 to the grid: 4 / 5 = 800,000 ppm.
            self_consumption_ppm: Some(800_000),
            // slot 1: 0 × 30 − 4 × 8 = −32; slot 2: 3 × 40 − 0 × 10 = 120; total 88.
            grid_only_cost: 88,
            // prosumer: −(40 + 20 + 8) = −68; consumer: 40 + 8 + 10 + 2 + 15 = 75; total 7.
            actual_cost: 7,
            savings: 81, // 88 − 7
        }
    );
}

#[test]
fn key_figures_round_down_and_handle_empty_periods() {
    assert_eq!(
        key_figures(&[], tariffs_for),
        KeyFigures {
            self_sufficiency_ppm: None,
            self_consumption_ppm: None,
            grid_only_cost: 0,
            actual_cost: 0,
            savings: 0,
        }
    );
    // 3 mWh consumed, 1 from the grid: floor(2 × 10^6 / 3) = 666,666 ppm; nothing produced.
    let record = SettlementRecord {
        consumed: Energy(3),
        imported: Energy(3),
        grid_bought: Energy(1),
        ..blank(1, Slot(1))
    };
    let figures = key_figures(&[record], tariffs_for);
    assert_eq!(figures.self_sufficiency_ppm, Some(666_666));
    assert_eq!(figures.self_consumption_ppm, None);
    assert_eq!(figures.grid_only_cost, 0); // floor(3 × 30 / 10^6)

    // A record claiming more from the grid than it consumed saturates at zero.
    let odd = SettlementRecord {
        consumed: Energy(1),
        produced: Energy(2),
        grid_bought: Energy(5),
        grid_sold: Energy(9),
        ..blank(1, Slot(1))
    };
    let figures = key_figures(&[odd], tariffs_for);
    assert_eq!(figures.self_sufficiency_ppm, Some(0));
    assert_eq!(figures.self_consumption_ppm, Some(0));
}

#[test]
fn key_figures_of_a_settled_slot_match_its_lines() {
    // A settled slot: everything paid and received locally cancels out community-wide, so the
    // community's actual cost is grid purchases + fees − feed-in.
    let settlement = Case::default()
        .meter(1, 5_000_000, 1_000_000)
        .meter(2, 0, 3_000_000)
        .contract(1, 2, 1, 20, 2_000_000)
        .trade(1, 2, 500_000, 12)
        .settle();
    let figures = key_figures(&settlement.records, |_| TARIFFS);
    let sums = totals(&settlement.records);
    // Contract 2 kWh (fees 8), trade 0.5 kWh (fee 2), grid: bought 0.5 kWh (15), sold 1.5 kWh
    // (12): actual cost = 15 + 8 + 2 − 12 = 13; grid only: 3 × 30 − 4 × 8 = 58.
    assert_eq!(figures.actual_cost, 13);
    assert_eq!(figures.actual_cost, -sums.net);
    assert_eq!(figures.grid_only_cost, 58);
    assert_eq!(figures.savings, 45);
    // consumed 4 kWh, 0.5 from the grid; produced 5 kWh, 1.5 to the grid.
    assert_eq!(figures.self_sufficiency_ppm, Some(875_000));
    assert_eq!(figures.self_consumption_ppm, Some(700_000));
}

// ---------------------------------------------------------------------------------------------
// Rules every settlement obeys

fn owners_and_parties(input: &SlotInput<'_>) -> BTreeSet<Address> {
    let mut accounts: BTreeSet<Address> = input.meters.iter().map(|m| m.owner).collect();
    accounts.extend(input.trades.iter().flat_map(|t| [t.buyer, t.seller]));
    accounts.extend(input.contracts.iter().flat_map(|c| [c.consumer, c.prosumer]));
    accounts
}

fn add(sum: &mut u128, amount: Amount) -> Result<(), TestCaseError> {
    *sum = sum.checked_add(amount.0).ok_or_else(|| TestCaseError::fail("sum overflows"))?;
    Ok(())
}

/// Conservation and bookkeeping rules that hold for any input, extreme values included.
fn check_rules(input: &SlotInput<'_>, settlement: &SlotSettlement) -> Result<(), TestCaseError> {
    // Records: exactly the owners and parties, sorted, in the slot, without arrears.
    let accounts: Vec<Address> = settlement.records.iter().map(|r| r.account).collect();
    let expected: Vec<Address> = owners_and_parties(input).into_iter().collect();
    prop_assert_eq!(&accounts, &expected);

    // Metered energy: saturating sums over the owner's meters (= min(exact sum, u64::MAX)).
    let mut metered: BTreeMap<Address, [u128; 4]> = BTreeMap::new();
    for meter in input.meters {
        let (p, c) = (u128::from(meter.produced.0), u128::from(meter.consumed.0));
        let sums = metered.entry(meter.owner).or_default();
        for (sum, part) in sums.iter_mut().zip([p, c, p.saturating_sub(c), c.saturating_sub(p)]) {
            *sum += part;
        }
    }
    let capped = |sum: u128| Energy(u64::try_from(sum).unwrap_or(u64::MAX));
    for record in &settlement.records {
        let [p, c, e, i] = metered.get(&record.account).copied().unwrap_or_default();
        prop_assert_eq!(record.produced, capped(p));
        prop_assert_eq!(record.consumed, capped(c));
        prop_assert_eq!(record.exported, capped(e));
        prop_assert_eq!(record.imported, capped(i));
        prop_assert_eq!(record.slot, input.slot);
        prop_assert_eq!(record.arrears, Amount::ZERO);
    }

    // Energy settled is exactly energy metered, line by line.
    for record in &settlement.records {
        let bought = u128::from(record.contract_bought.0)
            + u128::from(record.market_bought.0)
            + u128::from(record.grid_bought.0);
        prop_assert_eq!(bought, u128::from(record.imported.0), "import of {:?}", record.account);
        let sold = u128::from(record.contract_sold.0)
            + u128::from(record.market_sold.0)
            + u128::from(record.grid_sold.0);
        prop_assert_eq!(sold, u128::from(record.exported.0), "export of {:?}", record.account);
        prop_assert_eq!(record.grid_paid, value(record.grid_bought, input.tariffs.retail));
        prop_assert_eq!(record.grid_received, value(record.grid_sold, input.tariffs.feed_in));
    }

    // Contracts: one delivery each, in id order, within the maximum; per party the sums of the
    // deliveries are its contract lines, and the payments are the sums of the values.
    prop_assert_eq!(settlement.contract_deliveries.len(), input.contracts.len());
    let ids: Vec<ContractId> = settlement.contract_deliveries.iter().map(|(id, _)| *id).collect();
    prop_assert!(ids.windows(2).all(|pair| pair[0] <= pair[1]));
    let mut sorted_ids: Vec<ContractId> = input.contracts.iter().map(|c| c.id).collect();
    sorted_ids.sort();
    prop_assert_eq!(ids, sorted_ids);

    // Trades: one delivery each, never more than traded.
    prop_assert_eq!(settlement.trade_deliveries.len(), input.trades.len());
    let mut market_sold: BTreeMap<Address, u128> = BTreeMap::new();
    let mut market_bought: BTreeMap<Address, u128> = BTreeMap::new();
    let mut market_paid: BTreeMap<Address, u128> = BTreeMap::new();
    let mut market_fees: BTreeMap<Address, u128> = BTreeMap::new();
    for (trade, delivered) in input.trades.iter().zip(&settlement.trade_deliveries) {
        prop_assert!(delivered <= &trade.energy, "{:?} delivered of {:?}", delivered, trade);
        *market_sold.entry(trade.seller).or_default() += u128::from(delivered.0);
        *market_bought.entry(trade.buyer).or_default() += u128::from(delivered.0);
        add(market_paid.entry(trade.buyer).or_default(), value(*delivered, trade.price))?;
        add(
            market_fees.entry(trade.buyer).or_default(),
            value(*delivered, input.tariffs.grid_fee),
        )?;
    }
    for record in &settlement.records {
        let account = record.account;
        // Per seller: Σ deliveries = market_sold ≤ export left after contracts.
        let sold = market_sold.get(&account).copied().unwrap_or(0);
        prop_assert_eq!(sold, u128::from(record.market_sold.0));
        prop_assert!(
            sold + u128::from(record.contract_sold.0) <= u128::from(record.exported.0),
            "{:?} delivered more than it exported",
            account
        );
        let bought = market_bought.get(&account).copied().unwrap_or(0);
        prop_assert_eq!(bought, u128::from(record.market_bought.0));
        prop_assert!(
            bought + u128::from(record.contract_bought.0) <= u128::from(record.imported.0)
        );
        prop_assert_eq!(market_paid.get(&account).copied().unwrap_or(0), record.market_paid.0);
        prop_assert_eq!(market_fees.get(&account).copied().unwrap_or(0), record.market_fees.0);
    }

    // Contracts, per party, with the served order recovered from ids (equal ids: the delivered
    // energies of a party still add up).
    let mut contract_sold: BTreeMap<Address, u128> = BTreeMap::new();
    let mut contract_bought: BTreeMap<Address, u128> = BTreeMap::new();
    let mut by_id: BTreeMap<ContractId, Vec<Energy>> = BTreeMap::new();
    for (id, delivered) in &settlement.contract_deliveries {
        by_id.entry(*id).or_default().push(*delivered);
    }
    for contract in input.contracts {
        let deliveries = &by_id[&contract.id];
        if deliveries.len() == 1 {
            let delivered = deliveries[0];
            prop_assert!(delivered <= contract.max_energy);
            *contract_sold.entry(contract.prosumer).or_default() += u128::from(delivered.0);
            *contract_bought.entry(contract.consumer).or_default() += u128::from(delivered.0);
        }
    }
    let unique_ids = by_id.values().all(|deliveries| deliveries.len() == 1);
    if unique_ids {
        for record in &settlement.records {
            let account = record.account;
            prop_assert_eq!(
                contract_sold.get(&account).copied().unwrap_or(0),
                u128::from(record.contract_sold.0)
            );
            prop_assert_eq!(
                contract_bought.get(&account).copied().unwrap_or(0),
                u128::from(record.contract_bought.0)
            );
        }
    }

    // Money: every token paid for energy is received by someone.
    let (mut contract_paid, mut contract_received) = (0u128, 0u128);
    let (mut paid, mut received) = (0u128, 0u128);
    for record in &settlement.records {
        add(&mut contract_paid, record.contract_paid)?;
        add(&mut contract_received, record.contract_received)?;
        add(&mut paid, record.market_paid)?;
        add(&mut received, record.market_received)?;
    }
    prop_assert_eq!(contract_paid, contract_received);
    prop_assert_eq!(paid, received);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Random slots

const ACCOUNTS: u8 = 6;

/// Energies: often tiny (rounding), otherwise up to a few kWh (shortfalls).
fn energy() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![0..=20u64, 0..=3_000_000u64]
}

fn random_case(
    energy: impl Strategy<Value = u64> + Clone,
    price: impl Strategy<Value = u64> + Clone,
) -> impl Strategy<Value = Case> {
    let meters = proptest::collection::vec((0..ACCOUNTS, energy.clone(), energy.clone()), 0..10);
    let contracts = proptest::collection::vec(
        (0..6u64, 0..ACCOUNTS, 0..ACCOUNTS, price.clone(), energy.clone()),
        0..5,
    );
    let trades =
        proptest::collection::vec((0..ACCOUNTS, 0..ACCOUNTS, energy, price.clone()), 0..12);
    let tariffs = (price.clone(), price.clone(), price);
    (meters, contracts, trades, tariffs).prop_map(|(meters, contracts, trades, tariffs)| {
        let mut case = Case {
            tariffs: Some(Tariffs {
                retail: Price(tariffs.0),
                feed_in: Price(tariffs.1),
                grid_fee: Price(tariffs.2),
            }),
            ..Case::default()
        };
        for (owner, produced, consumed) in meters {
            case = case.meter(owner, produced, consumed);
        }
        for (id, consumer, prosumer, price, max) in contracts {
            case = case.contract(id, consumer, prosumer, price, max);
        }
        for (seller, buyer, energy, price) in trades {
            case = case.trade(seller, buyer, energy, price);
        }
        case
    })
}

fn moderate_case() -> impl Strategy<Value = Case> {
    random_case(energy(), 0..=100u64)
}

/// Energies and prices at the ends of the range.
fn extreme_case() -> impl Strategy<Value = Case> {
    let extreme = prop_oneof![u64::MAX - 3..=u64::MAX, any::<u64>(), 0..=3u64];
    random_case(extreme.clone(), extreme)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn settlement_equals_the_reference(case in moderate_case()) {
        let input = case.input();
        prop_assert_eq!(settle(&input), reference::settlement::settle(&input));
    }

    #[test]
    fn settlement_conserves_energy_and_tokens(case in moderate_case()) {
        let input = case.input();
        check_rules(&input, &settle(&input))?;
    }

    #[test]
    fn settlement_ignores_the_order_of_meters_and_contracts(
        (case, meters, contracts) in moderate_case().prop_flat_map(|case| {
            let meters = Just(case.meters.clone()).prop_shuffle();
            let contracts = Just(case.contracts.clone()).prop_shuffle();
            (Just(case), meters, contracts)
        })
    ) {
        let shuffled = Case { meters, contracts, ..case.clone() };
        prop_assert_eq!(settle(&case.input()), settle(&shuffled.input()));
    }

    #[test]
    fn settlement_never_panics_on_extreme_values(case in extreme_case()) {
        let input = case.input();
        let settlement = settle(&input);
        check_rules(&input, &settlement)?;
        let sums = totals(&settlement.records);
        prop_assert_eq!(sums.arrears, Amount::ZERO);
        let _ = key_figures(&settlement.records, |_| input.tariffs);
    }

    #[test]
    fn local_payments_cancel_out_in_community_totals(case in moderate_case()) {
        // Community-wide, local payments move tokens between members: what is left of the net
        // is the grid (feed-in minus purchases) and the fees.
        let settlement = settle(&case.input());
        let sums = totals(&settlement.records);
        prop_assert_eq!(sums.paid_local, sums.received_local);
        prop_assert_eq!(sums.bought_local, sums.sold_local);
        let grid = i128::try_from(sums.grid_received.0).unwrap()
            - i128::try_from(sums.grid_paid.0).unwrap()
            - i128::try_from(sums.grid_fees.0).unwrap();
        prop_assert_eq!(sums.net, grid);
        let figures = key_figures(&settlement.records, |_| case.input().tariffs);
        prop_assert_eq!(figures.actual_cost, -sums.net);
        prop_assert_eq!(figures.savings, figures.grid_only_cost - figures.actual_cost);
    }
}
