//! The market's two heavy moments as the ledger runs them, state changes included: a gate
//! closure that clears 100,000 orders, and the settlement of a slot with 10,000 meters.
//!
//! `cargo run --release -p ledger --example market_bench -- [orders] [meters] [runs]`
//!
//! 10,000 members each own a meter; half sell and half buy, each with `orders / members`
//! orders in one slot. Each run builds the state afresh (not timed), then times
//! `State::begin_block` at the slot's gate closure and at its settlement deadline. Prints the
//! median, min and max of each, and the median with `State::finish_block` (the new state
//! root) included.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use ledger::{MarketEvent, State};
use primitives::{
    Address, Amount, ChainConfig, ChainId, ChainParams, ClearingRule, Energy, EngineKind, Genesis,
    MarketParams, Nonce, Payload, Price, SecretKey, Side, Slot, Tariffs, TimestampMs, Transaction,
    Validator, VerifiedTransaction,
};
use std::time::Instant;

const SLOT_MS: u64 = 60_000;

struct Setup {
    state: State,
    slot: u64,
}

fn key(index: u64) -> SecretKey {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&index.to_le_bytes());
    SecretKey::from_seed(seed)
}

fn setup(
    orders: u64,
    members: u64,
    chain_id: &ChainId,
    keys: &[SecretKey],
    meters: &[SecretKey],
) -> Setup {
    let operator = key(u64::MAX);
    let genesis = Genesis {
        config: ChainConfig {
            chain_id: chain_id.clone(),
            engine: EngineKind::Solo,
            validators: vec![Validator { name: "v".into(), key: operator.public_key(), power: 1 }],
            issuer: Address(operator.public_key()),
            operator: Address(operator.public_key()),
            params: ChainParams::default(),
            market: MarketParams {
                slot_minutes: 1,
                reading_minutes: 1,
                gate_lead_minutes: 0,
                settlement_delay_slots: 1,
                clearing: ClearingRule::UniformPrice,
                tariffs: Tariffs { retail: Price(30), feed_in: Price(8), grid_fee: Price(4) },
            },
        },
        genesis_time: TimestampMs(1_000 * SLOT_MS),
        balances: keys
            .iter()
            .map(|key| (Address(key.public_key()), Amount(1_000_000_000)))
            .collect(),
    };
    let mut state = State::from_genesis(&genesis).unwrap();
    let verified = |signed: primitives::SignedTransaction| -> VerifiedTransaction {
        signed.verify(chain_id).unwrap()
    };
    // Register every meter.
    let registrations: Vec<VerifiedTransaction> = (0..members)
        .map(|index| {
            verified(
                Transaction {
                    chain_id: chain_id.clone(),
                    sender: Address(operator.public_key()),
                    nonce: Nonce(index),
                    fee: primitives::Amount::ZERO,
                    payload: Payload::RegisterMeter {
                        meter: Address(meters[index as usize].public_key()),
                        owner: Address(keys[index as usize].public_key()),
                    },
                }
                .sign(&operator),
            )
        })
        .collect();
    state.apply_block(TimestampMs(1_000 * SLOT_MS + 1), &registrations).unwrap();
    // Orders for slot 1,002: even members sell, odd members buy, prices spread so that about
    // half the book matches.
    let slot = 1_002;
    let per_member = orders / members;
    let mut txs = Vec::with_capacity(orders as usize);
    let mut state_seed = 0x9e37_79b9_7f4a_7c15u64;
    for member in 0..members {
        for nonce in 0..per_member {
            state_seed ^= state_seed << 13;
            state_seed ^= state_seed >> 7;
            state_seed ^= state_seed << 17;
            let (side, price) = if member % 2 == 0 {
                (Side::Ask, 10 + state_seed % 35)
            } else {
                (Side::Bid, 15 + state_seed % 35)
            };
            txs.push(verified(
                Transaction {
                    chain_id: chain_id.clone(),
                    sender: Address(keys[member as usize].public_key()),
                    nonce: Nonce(nonce),
                    fee: primitives::Amount::ZERO,
                    payload: Payload::PlaceOrder {
                        slot: Slot(slot),
                        side,
                        energy: Energy(100_000 + state_seed % 900_000),
                        price: Price(price),
                    },
                }
                .sign(&keys[member as usize]),
            ));
        }
    }
    let outcome = state.apply_block(TimestampMs(1_000 * SLOT_MS + 2), &txs).unwrap();
    assert!(outcome.receipts.iter().all(ledger::Receipt::is_success));
    Setup { state, slot }
}

fn median(times: &mut [f64]) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|arg| arg.parse().ok()).collect();
    let orders = args.first().copied().unwrap_or(100_000);
    let members = args.get(1).copied().unwrap_or(10_000);
    let runs = args.get(2).copied().unwrap_or(5);
    let chain_id = ChainId::new("bench").unwrap();
    let keys: Vec<SecretKey> = (0..members).map(key).collect();
    let meters: Vec<SecretKey> = (0..members).map(|index| key(index + 1_000_000)).collect();
    let mut clear_times = Vec::new();
    let mut settle_times = Vec::new();
    let mut clear_root_times = Vec::new();
    let mut settle_root_times = Vec::new();
    let mut trades = 0;
    let mut records = 0;
    for _ in 0..runs {
        let Setup { mut state, slot } = setup(orders, members, &chain_id, &keys, &meters);
        // Gate closure of the slot.
        let started = Instant::now();
        let events = state.begin_block(TimestampMs(slot * SLOT_MS));
        clear_times.push(started.elapsed().as_secs_f64() * 1e3);
        state.finish_block();
        clear_root_times.push(started.elapsed().as_secs_f64() * 1e3);
        for event in &events {
            if let MarketEvent::Cleared { trades: cleared, .. } = event {
                trades = cleared.len();
            }
        }
        // Every meter reports the slot once it has ended.
        let readings: Vec<VerifiedTransaction> = meters
            .iter()
            .enumerate()
            .map(|(index, meter)| {
                let produced = if index % 2 == 0 { 3_000_000 } else { 0 };
                Transaction {
                    chain_id: chain_id.clone(),
                    sender: Address(meter.public_key()),
                    nonce: Nonce(0),
                    fee: primitives::Amount::ZERO,
                    payload: Payload::Reading {
                        interval: slot,
                        produced: Energy(produced),
                        consumed: Energy(1_500_000),
                        estimated: false,
                    },
                }
                .sign(meter)
                .verify(&chain_id)
                .unwrap()
            })
            .collect();
        let outcome = state.apply_block(TimestampMs((slot + 1) * SLOT_MS), &readings).unwrap();
        assert!(outcome.receipts.iter().all(ledger::Receipt::is_success));
        // Settlement at the deadline.
        let started = Instant::now();
        let events = state.begin_block(TimestampMs((slot + 2) * SLOT_MS));
        settle_times.push(started.elapsed().as_secs_f64() * 1e3);
        state.finish_block();
        settle_root_times.push(started.elapsed().as_secs_f64() * 1e3);
        for event in &events {
            if let MarketEvent::Settled { records: settled, .. } = event {
                records = settled.len();
            }
        }
        assert_eq!(state.check_conservation(), Ok(()));
    }
    let (median_clear, min_clear, max_clear) = median(&mut clear_times);
    let (median_settle, min_settle, max_settle) = median(&mut settle_times);
    let (root_clear, _, _) = median(&mut clear_root_times);
    let (root_settle, _, _) = median(&mut settle_root_times);
    println!(
        "gate closure of {orders} orders ({trades} trades): median {median_clear:.1} ms (min {min_clear:.1}, max {max_clear:.1}) over {runs} runs; with the new state root {root_clear:.1} ms"
    );
    println!(
        "settlement of {members} meters ({records} records): median {median_settle:.1} ms (min {min_settle:.1}, max {max_settle:.1}) over {runs} runs; with the new state root {root_settle:.1} ms"
    );
}
