//! A scripted community: 3 prosumers, 5 consumers, one contract, 4 slots, a late and a missing
//! reading. Every settlement record is compared with a table computed by hand below.
//!
//! Rules: 15-minute slots (L = 900,000 ms) of three 5-minute readings; gates close 5 minutes
//! before a slot starts; a slot settles one slot after it ends; uniform-price clearing; retail
//! 30, feed-in 8, grid fee 4 tokens per kWh; `value(e, p) = floor(e_mWh · p / 1e6)`.

use ledger::{MarketEvent, Receipt, State};
use market::settlement::SettlementRecord;
use primitives::{
    Amount, ChainParams, ContractId, Energy, MarketParams, Payload, Price, Side, Slot, Tariffs,
    TimestampMs, VerifiedTransaction,
    testing::{self, address, chain_id},
};
use std::collections::BTreeMap;

const CHAIN: &str = "scenario";
const OPERATOR: u8 = 0;
const P1: u8 = 1;
const P2: u8 = 2;
const P3: u8 = 3;
const C1: u8 = 11;
const C2: u8 = 12;
const C3: u8 = 13;
const C4: u8 = 14;
const C5: u8 = 15;
const MEMBERS: [u8; 8] = [P1, P2, P3, C1, C2, C3, C4, C5];
/// Each member's meter has the member's seed plus 20.
const fn meter(member: u8) -> u8 {
    member + 20
}
const KWH: u64 = 1_000_000;

fn params() -> MarketParams {
    MarketParams {
        slot_minutes: 15,
        reading_minutes: 5,
        gate_lead_minutes: 5,
        settlement_delay_slots: 1,
        clearing: primitives::ClearingRule::UniformPrice,
        tariffs: Tariffs { retail: Price(30), feed_in: Price(8), grid_fee: Price(4) },
    }
}

/// Drives the ledger block by block, tracking nonces and collecting settlement records.
struct Community {
    state: State,
    nonces: BTreeMap<u8, u64>,
    records: BTreeMap<(u8, u64), SettlementRecord>,
    cleared: BTreeMap<u64, (Option<Price>, usize)>,
}

impl Community {
    fn new() -> Community {
        let mut balances: Vec<(u8, u128)> = MEMBERS.iter().map(|member| (*member, 1_000)).collect();
        balances.retain(|(member, _)| *member != C5);
        balances.push((C5, 10));
        let mut genesis = testing::genesis(
            CHAIN,
            99,
            OPERATOR,
            &balances,
            ChainParams::default(),
            TimestampMs(90_000_000),
        );
        genesis.config.market = params();
        Community {
            state: State::from_genesis(&genesis).unwrap(),
            nonces: BTreeMap::new(),
            records: BTreeMap::new(),
            cleared: BTreeMap::new(),
        }
    }

    fn tx(&mut self, sender: u8, payload: Payload) -> VerifiedTransaction {
        let nonce = self.nonces.entry(sender).or_default();
        let tx = testing::signed(CHAIN, sender, *nonce, payload).verify(&chain_id(CHAIN)).unwrap();
        *nonce += 1;
        tx
    }

    /// A block at `time` whose transactions must all succeed.
    fn block(&mut self, time: u64, txs: Vec<VerifiedTransaction>) {
        let outcome = self.state.apply_block(TimestampMs(time), &txs).unwrap();
        for (index, receipt) in outcome.receipts.iter().enumerate() {
            assert!(receipt.is_success(), "block at {time}, tx {index}: {receipt:?}");
        }
        for event in outcome.events {
            match event {
                MarketEvent::Cleared { slot, price, trades, .. } => {
                    self.cleared.insert(slot.0, (price, trades.len()));
                }
                MarketEvent::Settled { slot, records } => {
                    for record in records {
                        let member = MEMBERS
                            .into_iter()
                            .chain([OPERATOR])
                            .find(|member| address(*member) == record.account)
                            .expect("a member");
                        self.records.insert((member, slot.0), record);
                    }
                }
            }
        }
        assert_eq!(self.state.check_conservation(), Ok(()), "after the block at {time}");
    }

    fn order(
        &mut self,
        member: u8,
        slot: u64,
        side: Side,
        kwh_milli: u64,
        price: u64,
    ) -> VerifiedTransaction {
        self.tx(
            member,
            Payload::PlaceOrder {
                slot: Slot(slot),
                side,
                energy: Energy(kwh_milli * 1_000),
                price: Price(price),
            },
        )
    }

    /// Readings of `member`'s meter for the three intervals of `slot`, in thousandths of a kWh
    /// (`None` = not sent).
    fn readings(
        &mut self,
        member: u8,
        slot: u64,
        produced: [Option<u64>; 3],
        consumed: [u64; 3],
    ) -> Vec<VerifiedTransaction> {
        (0..3)
            .filter_map(|i| {
                let produced = produced[i]?;
                Some(self.tx(
                    meter(member),
                    Payload::Reading {
                        interval: slot * 3 + i as u64,
                        produced: Energy(produced * 1_000),
                        consumed: Energy(consumed[i] * 1_000),
                        estimated: false,
                    },
                ))
            })
            .collect()
    }
}

/// One line of the hand-computed table: energies in mWh, amounts in tokens.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    imported: u64,
    exported: u64,
    contract_bought: u64,
    contract_paid: u128,
    contract_fees: u128,
    contract_sold: u64,
    contract_received: u128,
    market_bought: u64,
    market_paid: u128,
    market_fees: u128,
    market_sold: u64,
    market_received: u128,
    grid_bought: u64,
    grid_paid: u128,
    grid_sold: u64,
    grid_received: u128,
    arrears: u128,
}

impl Line {
    fn of(record: &SettlementRecord) -> Line {
        Line {
            imported: record.imported.0,
            exported: record.exported.0,
            contract_bought: record.contract_bought.0,
            contract_paid: record.contract_paid.0,
            contract_fees: record.contract_fees.0,
            contract_sold: record.contract_sold.0,
            contract_received: record.contract_received.0,
            market_bought: record.market_bought.0,
            market_paid: record.market_paid.0,
            market_fees: record.market_fees.0,
            market_sold: record.market_sold.0,
            market_received: record.market_received.0,
            grid_bought: record.grid_bought.0,
            grid_paid: record.grid_paid.0,
            grid_sold: record.grid_sold.0,
            grid_received: record.grid_received.0,
            arrears: record.arrears.0,
        }
    }
}

const ZERO: Line = Line {
    imported: 0,
    exported: 0,
    contract_bought: 0,
    contract_paid: 0,
    contract_fees: 0,
    contract_sold: 0,
    contract_received: 0,
    market_bought: 0,
    market_paid: 0,
    market_fees: 0,
    market_sold: 0,
    market_received: 0,
    grid_bought: 0,
    grid_paid: 0,
    grid_sold: 0,
    grid_received: 0,
    arrears: 0,
};

/// The table, computed by hand (see the comments for the arithmetic).
fn expected() -> Vec<((u8, u64), Line)> {
    vec![
        // Slot 102. Contract C1←P1 (max 2 kWh, price 20): P1 exports 3 − 0.5 = 2.5, C1 imports
        // 1.5, so 1.5 kWh are delivered: 30 tokens, fee 6. P1's other 1 kWh goes to the grid: 8.
        (
            (P1, 102),
            Line {
                exported: 2_500_000,
                contract_sold: 1_500_000,
                contract_received: 30,
                grid_sold: KWH,
                grid_received: 8,
                ..ZERO
            },
        ),
        (
            (C1, 102),
            Line {
                imported: 1_500_000,
                contract_bought: 1_500_000,
                contract_paid: 30,
                contract_fees: 6,
                ..ZERO
            },
        ),
        // Clearing: bids C2 2@20, C3 2@12, C4 1@9; asks P2 3@10, P3 2@14. C2 takes 2 from P2,
        // C3 takes 1 from P2, then 12 < 14 stops: price floor((12 + 10) / 2) = 11.
        // P2's third reading is missing: it exported 2 of the 3 kWh it sold. Seller shares:
        // floor(2·2/3 kWh) = 1,333,333 and floor(1·2/3) = 666,666 mWh, the leftover 1 mWh to the
        // first trade: 1,333,334 and 666,666. C3 imported only 0.5 kWh: its share is 500,000.
        // Deliveries: 1,333,334 to C2 (14 tokens, fee 5) and 500,000 to C3 (5, fee 2).
        // P2 receives 19 and sells the remaining 166,666 mWh to the grid: floor(1.33) = 1.
        (
            (P2, 102),
            Line {
                exported: 2 * KWH,
                market_sold: 1_833_334,
                market_received: 19,
                grid_sold: 166_666,
                grid_received: 1,
                ..ZERO
            },
        ),
        // P3 produced and consumed 1 kWh: nothing to settle, but it has a record.
        ((P3, 102), ZERO),
        // C2's third reading (0.5 kWh) arrived late but before the deadline: imports 2.5,
        // 1,166,666 mWh of them from the grid: floor(34.99998) = 34.
        (
            (C2, 102),
            Line {
                imported: 2_500_000,
                market_bought: 1_333_334,
                market_paid: 14,
                market_fees: 5,
                grid_bought: 1_166_666,
                grid_paid: 34,
                ..ZERO
            },
        ),
        (
            (C3, 102),
            Line {
                imported: 500_000,
                market_bought: 500_000,
                market_paid: 5,
                market_fees: 2,
                ..ZERO
            },
        ),
        // C4's bid at 9 did not match: 1 kWh from the grid.
        ((C4, 102), Line { imported: KWH, grid_bought: KWH, grid_paid: 30, ..ZERO }),
        // C5 sent no reading for slot 102 and had no trade: no record.

        // Slot 103. Contract: P1 exports 1, C1 imports 3: 1 kWh delivered (20, fee 4); C1 buys
        // 2 kWh from the grid (60).
        ((P1, 103), Line { exported: KWH, contract_sold: KWH, contract_received: 20, ..ZERO }),
        (
            (C1, 103),
            Line {
                imported: 3 * KWH,
                contract_bought: KWH,
                contract_paid: 20,
                contract_fees: 4,
                grid_bought: 2 * KWH,
                grid_paid: 60,
                ..ZERO
            },
        ),
        // Clearing: bids C2 3@15, C4 3@10; ask P2 4@8: C2 takes 3, C4 takes 1, price
        // floor((10 + 8) / 2) = 9. C2 imported only 2: takes 2 (18, fee 8); C4 takes 1 (9, fee 4)
        // and buys its remaining 0.5 kWh from the grid (15). P2 sold 3 kWh of its 4 (27) and
        // feeds 1 kWh in (8).
        (
            (P2, 103),
            Line {
                exported: 4 * KWH,
                market_sold: 3 * KWH,
                market_received: 27,
                grid_sold: KWH,
                grid_received: 8,
                ..ZERO
            },
        ),
        ((P3, 103), Line { exported: 1_500_000, grid_sold: 1_500_000, grid_received: 12, ..ZERO }),
        (
            (C2, 103),
            Line {
                imported: 2 * KWH,
                market_bought: 2 * KWH,
                market_paid: 18,
                market_fees: 8,
                ..ZERO
            },
        ),
        ((C3, 103), Line { imported: KWH, grid_bought: KWH, grid_paid: 30, ..ZERO }),
        (
            (C4, 103),
            Line {
                imported: 1_500_000,
                market_bought: KWH,
                market_paid: 9,
                market_fees: 4,
                grid_bought: 500_000,
                grid_paid: 15,
                ..ZERO
            },
        ),
        // C5 holds 3 tokens by now (10, less 8 reserved for its bid on slot 105, plus 1 released
        // when that slot cleared): it owes 9 for 0.3 kWh of grid energy and is 6 in arrears.
        (
            (C5, 103),
            Line { imported: 300_000, grid_bought: 300_000, grid_paid: 9, arrears: 6, ..ZERO },
        ),
        // Slot 104, no orders. Contract: P1 exports 2, C1 imports 2.5: 2 kWh (40, fee 8), 0.5
        // kWh from the grid (15). Only P1, P2, C1 and C5 reported.
        (
            (P1, 104),
            Line { exported: 2 * KWH, contract_sold: 2 * KWH, contract_received: 40, ..ZERO },
        ),
        ((P2, 104), Line { exported: KWH, grid_sold: KWH, grid_received: 8, ..ZERO }),
        (
            (C1, 104),
            Line {
                imported: 2_500_000,
                contract_bought: 2 * KWH,
                contract_paid: 40,
                contract_fees: 8,
                grid_bought: 500_000,
                grid_paid: 15,
                ..ZERO
            },
        ),
        // C5 has nothing left: the whole 30 becomes arrears.
        ((C5, 104), Line { imported: KWH, grid_bought: KWH, grid_paid: 30, arrears: 30, ..ZERO }),
        // Slot 105. Contract: P1 exports 0.5, C1 imports 1: 0.5 kWh (10, fee 2), 0.5 from the grid
        // (15). Clearing: C5 0.5@12 against P3 2@10: 0.5 kWh at floor(22 / 2) = 11. C5 pays 5 and
        // fee 2 from its reservation; P3 feeds its other 1.5 kWh in (12).
        (
            (P1, 105),
            Line { exported: 500_000, contract_sold: 500_000, contract_received: 10, ..ZERO },
        ),
        (
            (P3, 105),
            Line {
                exported: 2 * KWH,
                market_sold: 500_000,
                market_received: 5,
                grid_sold: 1_500_000,
                grid_received: 12,
                ..ZERO
            },
        ),
        (
            (C1, 105),
            Line {
                imported: KWH,
                contract_bought: 500_000,
                contract_paid: 10,
                contract_fees: 2,
                grid_bought: 500_000,
                grid_paid: 15,
                ..ZERO
            },
        ),
        (
            (C5, 105),
            Line {
                imported: 500_000,
                market_bought: 500_000,
                market_paid: 5,
                market_fees: 2,
                ..ZERO
            },
        ),
    ]
}

#[test]
fn a_community_settles_as_computed_by_hand() {
    let mut community = Community::new();
    let slot_start = |slot: u64| slot * 900_000;

    // Slot 100: meters, the contract, the orders.
    let mut txs: Vec<VerifiedTransaction> = MEMBERS
        .iter()
        .map(|member| Payload::RegisterMeter {
            meter: address(meter(*member)),
            owner: address(*member),
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|payload| community.tx(OPERATOR, payload))
        .collect();
    txs.push(community.tx(
        C1,
        Payload::ProposeContract {
            prosumer: address(P1),
            price: Price(20),
            max_energy: Energy(2 * KWH),
            first_slot: Slot(102),
            last_slot: Slot(105),
        },
    ));
    community.block(90_000_001, txs);
    let accept = community.tx(P1, Payload::AcceptContract { contract: ContractId(0) });
    community.block(90_000_002, vec![accept]);
    let orders = vec![
        community.order(P2, 102, Side::Ask, 3_000, 10),
        community.order(P3, 102, Side::Ask, 2_000, 14),
        community.order(C2, 102, Side::Bid, 2_000, 20),
        community.order(C3, 102, Side::Bid, 2_000, 12),
        community.order(C4, 102, Side::Bid, 1_000, 9),
        community.order(P2, 103, Side::Ask, 4_000, 8),
        community.order(C2, 103, Side::Bid, 3_000, 15),
        community.order(C4, 103, Side::Bid, 3_000, 10),
        community.order(P3, 105, Side::Ask, 2_000, 10),
        community.order(C5, 105, Side::Bid, 500, 12),
    ];
    community.block(90_000_003, orders);

    // Gates of slots 102 and 103 close.
    community.block(slot_start(102) - 300_000, vec![]);
    assert_eq!(community.cleared[&102], (Some(Price(11)), 2));
    community.block(slot_start(103) - 300_000, vec![]);
    assert_eq!(community.cleared[&103], (Some(Price(9)), 2));

    // Readings of slot 102 once it has ended: P2's third is missing, C2's third comes late, C5
    // sends none.
    let mut txs = Vec::new();
    txs.extend(community.readings(P1, 102, [Some(1_000), Some(1_000), Some(1_000)], [500, 0, 0]));
    txs.extend(community.readings(P2, 102, [Some(1_000), Some(1_000), None], [0, 0, 0]));
    txs.extend(community.readings(P3, 102, [Some(1_000), Some(0), Some(0)], [0, 500, 500]));
    txs.extend(community.readings(C1, 102, [Some(0); 3], [500, 500, 500]));
    txs.extend(community.readings(C2, 102, [Some(0), Some(0), None], [1_000, 1_000, 0]));
    txs.extend(community.readings(C3, 102, [Some(0); 3], [500, 0, 0]));
    txs.extend(community.readings(C4, 102, [Some(0); 3], [500, 500, 0]));
    community.block(slot_start(103), txs);
    let late = community.tx(
        meter(C2),
        Payload::Reading {
            interval: 102 * 3 + 2,
            produced: Energy(0),
            consumed: Energy(500_000),
            estimated: true,
        },
    );
    community.block(slot_start(103) + 300_000, vec![late]);
    community.block(slot_start(104) - 300_000, vec![]);

    // Slot 102 settles; readings of slot 103.
    let mut txs = Vec::new();
    txs.extend(community.readings(P1, 103, [Some(500), Some(500), Some(0)], [0, 0, 0]));
    txs.extend(community.readings(P2, 103, [Some(2_000), Some(1_000), Some(1_000)], [0, 0, 0]));
    txs.extend(community.readings(P3, 103, [Some(1_000), Some(1_000), Some(0)], [0, 0, 500]));
    txs.extend(community.readings(C1, 103, [Some(0); 3], [1_000, 1_000, 1_000]));
    txs.extend(community.readings(C2, 103, [Some(0); 3], [1_000, 500, 500]));
    txs.extend(community.readings(C3, 103, [Some(0); 3], [500, 500, 0]));
    txs.extend(community.readings(C4, 103, [Some(0); 3], [500, 500, 500]));
    txs.extend(community.readings(C5, 103, [Some(0); 3], [100, 100, 100]));
    community.block(slot_start(104), txs);

    // The gate of slot 105 closes.
    community.block(slot_start(105) - 300_000, vec![]);
    assert_eq!(community.cleared[&105], (Some(Price(11)), 1));

    // Slot 103 settles; readings of slot 104 (only four meters report).
    let mut txs = Vec::new();
    txs.extend(community.readings(P1, 104, [Some(1_000); 3], [500, 500, 0]));
    txs.extend(community.readings(P2, 104, [Some(500), Some(500), Some(0)], [0, 0, 0]));
    txs.extend(community.readings(C1, 104, [Some(0); 3], [1_000, 1_000, 500]));
    txs.extend(community.readings(C5, 104, [Some(0); 3], [500, 500, 0]));
    community.block(slot_start(105), txs);

    // Slot 104 settles; readings of slot 105.
    let mut txs = Vec::new();
    txs.extend(community.readings(P1, 105, [Some(500), Some(0), Some(0)], [0, 0, 0]));
    txs.extend(community.readings(P3, 105, [Some(1_000), Some(1_000), Some(0)], [0, 0, 0]));
    txs.extend(community.readings(C1, 105, [Some(0); 3], [500, 500, 0]));
    txs.extend(community.readings(C5, 105, [Some(0); 3], [500, 0, 0]));
    community.block(slot_start(106), txs);

    // Slot 105 settles.
    community.block(slot_start(107), vec![]);

    let actual: Vec<((u8, u64), Line)> =
        community.records.iter().map(|(key, record)| (*key, Line::of(record))).collect();
    let mut expected = expected();
    expected.sort_by_key(|(key, _)| *key);
    for ((key, want), (actual_key, got)) in expected.iter().zip(&actual) {
        assert_eq!(key, actual_key, "the same accounts and slots have records");
        assert_eq!(want, got, "member {} slot {}", key.0, key.1);
    }
    assert_eq!(actual.len(), expected.len());

    // Balances: what each member paid and received, by hand.
    let state = &community.state;
    let balance = |member| state.account(&address(member)).balance.0;
    assert_eq!(balance(P1), 1_000 + 30 + 8 + 20 + 40 + 10);
    assert_eq!(balance(P2), 1_000 + 19 + 1 + 27 + 8 + 8);
    assert_eq!(balance(P3), 1_000 + 12 + 5 + 12);
    assert_eq!(balance(C1), 1_000 - 36 - 84 - 63 - 27);
    assert_eq!(balance(C2), 1_000 - 19 - 34 - 26);
    assert_eq!(balance(C3), 1_000 - 7 - 30);
    assert_eq!(balance(C4), 1_000 - 30 - 13 - 15);
    assert_eq!(balance(C5), 0);
    assert_eq!(state.account(&address(C5)).arrears, Amount(36));
    assert_eq!(balance(OPERATOR), 13 + 16 + 8 + 4, "grid fees");
    assert_eq!(state.cursor().grid, 55 + 94 + 37 + 3, "grid energy sold minus bought");
    for member in MEMBERS {
        assert_eq!(
            state.account(&address(member)).reserved,
            Amount::ZERO,
            "{member}: nothing left reserved"
        );
    }
    // Certificates: one per whole kWh produced, per meter: P1 7.5 kWh, P2 7, P3 5.
    let certificates = |member| state.account(&address(member)).certificates;
    assert_eq!(
        (certificates(P1), certificates(P2), certificates(P3), certificates(C1)),
        (7, 7, 5, 0)
    );
    assert_eq!(state.check_conservation(), Ok(()));

    // A member in arrears may not spend.
    let refused = community.tx(C5, Payload::Transfer { to: address(C1), amount: Amount(1) });
    let outcome =
        community.state.apply_block(TimestampMs(slot_start(107) + 1), &[refused]).unwrap();
    assert_eq!(outcome.receipts, vec![Receipt::Failed(ledger::TxError::InArrears(Amount(36)))]);
}
