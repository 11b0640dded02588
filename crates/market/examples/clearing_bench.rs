//! Times uniform-price clearing of one slot's book of 100,000 orders (11 runs; median, min, max).
//!
//! `cargo run --release -p market --example clearing_bench`
//!
//! The book is the same on every run and every machine: about half bids and half asks, prices
//! spread over 10–50 tokens/kWh around a common range so that about half the orders cross, and
//! energies of 0.1–10 kWh, all from a seeded xorshift generator.

#![allow(clippy::print_stdout)]

use market::book::{Order, OrderId, Side, clear_uniform};
use primitives::{Address, Energy, Price, PublicKey};
use std::time::{Duration, Instant};

const ORDERS: u64 = 100_000;
const RUNS: usize = 11;

/// Marsaglia's xorshift64: enough randomness for a benchmark book, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn book() -> Vec<Order> {
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    (0..ORDERS)
        .map(|id| {
            let side = if random.next() & 1 == 0 { Side::Bid } else { Side::Ask };
            // Bids mostly above asks at the top of the book, overlapping in the middle.
            let price = match side {
                Side::Bid => random.between(15, 50),
                Side::Ask => random.between(10, 45),
            };
            let mut owner = [0u8; 32];
            owner[..8].copy_from_slice(&random.next().to_le_bytes());
            Order {
                id: OrderId(id),
                owner: Address(PublicKey(owner)),
                side,
                energy: Energy(random.between(100_000, 10_000_000)),
                price: Price(price),
            }
        })
        .collect()
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn main() {
    let orders = book();
    let bids = orders.iter().filter(|order| order.side == Side::Bid).count();
    let mut times = Vec::with_capacity(RUNS);
    let mut clearing = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let result = clear_uniform(std::hint::black_box(&orders));
        times.push(start.elapsed());
        clearing = Some(std::hint::black_box(result));
    }
    times.sort();
    let clearing = clearing.unwrap_or_default();
    println!(
        "clear_uniform: {} orders ({} bids, {} asks), {RUNS} runs",
        orders.len(),
        bids,
        orders.len() - bids
    );
    println!(
        "  median {:.2} ms, min {:.2} ms, max {:.2} ms",
        milliseconds(times[RUNS / 2]),
        milliseconds(times[0]),
        milliseconds(times[RUNS - 1])
    );
    println!(
        "  {} trades, {} kWh, clearing price {}",
        clearing.trades.len(),
        clearing.volume,
        clearing.price.map_or_else(|| "none".to_owned(), |price| price.to_string())
    );
}
