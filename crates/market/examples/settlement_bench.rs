//! Measures how long `market::settlement::settle` takes for a large slot.
//!
//! `cargo run --release -p market --example settlement_bench`
//!
//! Builds one slot of 10,000 meters, one per account (a third prosumers, the rest consumers),
//! 3,000 auction trades from prosumers to consumers and 200 contracts, from a fixed seed, then
//! settles it 11 times and prints the median, minimum and maximum time in milliseconds.

use market::book::{OrderId, Trade};
use market::settlement::{ContractId, ContractTerms, MeterSlot, SlotInput, settle};
use primitives::{Address, Energy, Price, PublicKey, Slot, Tariffs};
use std::hint::black_box;
use std::time::Instant;

const ACCOUNTS: u64 = 10_000;
const PROSUMERS: u64 = ACCOUNTS / 3;
const TRADES: u64 = 3_000;
const CONTRACTS: u64 = 200;
const RUNS: usize = 11;

/// xorshift64: small, seeded, good enough to spread the figures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `low..high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// A spread-out 32-byte key for number `n` in key space `space`.
fn key(space: u8, n: u64) -> Address {
    let mut bytes = [space; 32];
    bytes[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    Address(PublicKey(bytes))
}

fn account(n: u64) -> Address {
    key(1, n)
}

#[allow(clippy::print_stdout)]
fn main() {
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let prosumer = |rng: &mut Rng| rng.range(0, PROSUMERS);
    let consumer = |rng: &mut Rng| rng.range(PROSUMERS, ACCOUNTS);

    // A 15-minute slot: a prosumer produces up to 2 kWh and uses up to 0.5 kWh, a consumer uses
    // up to 1 kWh (some produce a little).
    let meters: Vec<MeterSlot> = (0..ACCOUNTS)
        .map(|n| {
            let (produced, consumed) = if n < PROSUMERS {
                (rng.range(0, 2_000_000), rng.range(0, 500_000))
            } else {
                (rng.range(0, 50_000), rng.range(0, 1_000_000))
            };
            MeterSlot {
                meter: key(2, n),
                owner: account(n),
                produced: Energy(produced),
                consumed: Energy(consumed),
            }
        })
        .collect();
    let contracts: Vec<ContractTerms> = (0..CONTRACTS)
        .map(|_| ContractTerms {
            id: ContractId(rng.range(0, 1_000_000)),
            consumer: account(consumer(&mut rng)),
            prosumer: account(prosumer(&mut rng)),
            price: Price(rng.range(10, 25)),
            max_energy: Energy(rng.range(0, 400_000)),
        })
        .collect();
    let trades: Vec<Trade> = (0..TRADES)
        .map(|n| Trade {
            bid: OrderId(2 * n),
            ask: OrderId(2 * n + 1),
            buyer: account(consumer(&mut rng)),
            seller: account(prosumer(&mut rng)),
            energy: Energy(rng.range(1, 600_000)),
            price: Price(rng.range(8, 30)),
        })
        .collect();
    let input = SlotInput {
        slot: Slot(1),
        meters: &meters,
        contracts: &contracts,
        trades: &trades,
        tariffs: Tariffs { retail: Price(30), feed_in: Price(8), grid_fee: Price(4) },
    };

    let mut times_ms = Vec::with_capacity(RUNS);
    let mut settlement = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let settled = settle(black_box(&input));
        times_ms.push(start.elapsed().as_secs_f64() * 1_000.0);
        settlement = Some(black_box(settled));
    }
    times_ms.sort_by(f64::total_cmp);

    let settlement = settlement.unwrap_or_default();
    let traded: u64 = settlement.trade_deliveries.iter().map(|energy| energy.0).sum();
    let short = trades
        .iter()
        .zip(&settlement.trade_deliveries)
        .filter(|(trade, delivered)| **delivered < trade.energy)
        .count();
    let contracted: u64 = settlement.contract_deliveries.iter().map(|(_, energy)| energy.0).sum();
    println!(
        "settle: {} meters, {} trades ({} delivered short, {} delivered), {} contracts ({} \
         delivered), {} records",
        meters.len(),
        trades.len(),
        short,
        Energy(traded),
        contracts.len(),
        Energy(contracted),
        settlement.records.len(),
    );
    println!(
        "{RUNS} runs: median {:.2} ms, min {:.2} ms, max {:.2} ms",
        times_ms[RUNS / 2],
        times_ms[0],
        times_ms[RUNS - 1],
    );
}
