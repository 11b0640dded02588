//! Fixtures for tests of this crate and the crates above it (enabled by the `testing` feature,
//! only ever in dev-dependencies): a community genesis with one-minute slots, and random blocks
//! of transfers, mints, redemptions and market activity (meters, readings, orders, contracts,
//! tariffs, certificates) that fit a given state.
//!
//! Every block the generator makes can be included: nonces are the senders' next ones, times
//! never go back. Many transactions fail on purpose (an overdraft, a used fiat reference, an
//! order on both sides, someone else's contract), as they would on a real chain. The same seed
//! and the same state give the same block.

// Test fixtures: a panic here is a broken test, not a broken chain.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use crate::State;
use primitives::{
    Address, Amount, ChainParams, ClearingRule, ContractId, Energy, FiatRef, Genesis, MarketParams,
    OrderId, Payload, Price, Side, Slot, Tariffs, TimestampMs, VerifiedTransaction, testing,
};
use std::collections::BTreeMap;

/// The chain id of [`genesis`].
pub const CHAIN: &str = "random-history";
/// Slot length of [`genesis`]: one minute.
pub const SLOT_MS: u64 = 60_000;
/// The members are `testing::address(1..=MEMBERS)`; member `m`'s meter is
/// `testing::address(m + 100)`.
pub const MEMBERS: u8 = 6;
/// The issuer and operator, `testing::address(0)`.
pub const OPERATOR: u8 = 0;
/// The validator's key seed.
pub const VALIDATOR: u8 = 99;

/// The key seed of member `member`'s meter.
pub const fn meter(member: u8) -> u8 {
    member + 100
}

/// A solo chain of [`MEMBERS`] members with 10,000 tokens each (the operator too), one-minute
/// slots and readings, gates closing at the start of the slot, settlement one slot after it
/// ends. Genesis is at the start of slot 1,000.
pub fn genesis(clearing: ClearingRule) -> Genesis {
    let balances: Vec<(u8, u128)> = (0..=MEMBERS).map(|member| (member, 10_000)).collect();
    let mut genesis = testing::genesis(
        CHAIN,
        VALIDATOR,
        OPERATOR,
        &balances,
        ChainParams::default(),
        TimestampMs(1_000 * SLOT_MS),
    );
    genesis.config.market = MarketParams {
        slot_minutes: 1,
        reading_minutes: 1,
        gate_lead_minutes: 0,
        settlement_delay_slots: 1,
        clearing,
        tariffs: Tariffs { retail: Price(30), feed_in: Price(8), grid_fee: Price(4) },
    };
    genesis
}

/// A generator of random blocks for a chain that started at [`genesis`].
#[derive(Clone, Debug)]
pub struct RandomBlocks {
    rng: u64,
}

impl RandomBlocks {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> RandomBlocks {
        RandomBlocks { rng: seed }
    }

    /// splitmix64.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn member(&mut self) -> u8 {
        1 + self.below(u64::from(MEMBERS)) as u8
    }

    /// The next block on top of `state`: its timestamp and its transactions, signed and
    /// verified.
    pub fn next_block(&mut self, state: &State) -> (TimestampMs, Vec<VerifiedTransaction>) {
        // Mostly a slot or more later, so that slots clear and settle; sometimes the same time.
        let advance = match self.below(6) {
            0 => 0,
            1 => 1 + self.below(SLOT_MS / 2),
            2 | 3 => SLOT_MS,
            4 => 2 * SLOT_MS,
            _ => 3 * SLOT_MS + self.below(SLOT_MS),
        };
        let time = TimestampMs(state.cursor().time.0 + advance);
        let mut nonces: BTreeMap<u8, u64> = BTreeMap::new();
        let mut txs = Vec::new();
        let mut sign = |sender: u8, payload: Payload| {
            let nonce =
                nonces.entry(sender).or_insert_with(|| state.nonce(&testing::address(sender)).0);
            let signed = testing::signed(CHAIN, sender, *nonce, payload);
            *nonce += 1;
            txs.push(signed.verify(&testing::chain_id(CHAIN)).expect("signed here"));
        };
        // Meters come first: without them there is nothing to trade.
        for member in 1..=MEMBERS {
            let meter = testing::address(meter(member));
            if state.meter(&meter).is_none() {
                sign(OPERATOR, Payload::RegisterMeter { meter, owner: testing::address(member) });
            }
        }
        let slot = state.config().market.slot_of(time).0;
        let count = self.below(7);
        for _ in 0..count {
            let (sender, payload) = self.payload(state, slot);
            sign(sender, payload);
        }
        (time, txs)
    }

    /// One random transaction for a block in slot `slot`.
    fn payload(&mut self, state: &State, slot: u64) -> (u8, Payload) {
        let member = self.member();
        let other = self.member();
        let cursor = state.cursor();
        match self.below(20) {
            0..=3 => {
                // Mostly affordable; sometimes an overdraft that fails.
                let amount = if self.chance(10) { 50_000 } else { 1 + self.below(800) };
                (
                    member,
                    Payload::Transfer {
                        to: testing::address(other),
                        amount: Amount(amount.into()),
                    },
                )
            }
            4 => (
                OPERATOR,
                Payload::Mint {
                    to: testing::address(member),
                    amount: Amount((1 + self.below(2_000)).into()),
                    fiat_ref: self.fiat_ref(),
                },
            ),
            5 => (
                OPERATOR,
                Payload::Redeem {
                    amount: Amount((1 + self.below(500)).into()),
                    fiat_ref: self.fiat_ref(),
                },
            ),
            6..=8 => {
                // A reading for an interval that has ended, now and then one already reported.
                let interval = slot.saturating_sub(1 + self.below(2));
                (
                    meter(member),
                    Payload::Reading {
                        interval,
                        produced: Energy(self.below(3_000) * 1_000),
                        consumed: Energy(self.below(3_000) * 1_000),
                        estimated: self.chance(20),
                    },
                )
            }
            9..=12 => {
                let side = if self.chance(50) { Side::Bid } else { Side::Ask };
                (
                    member,
                    Payload::PlaceOrder {
                        slot: Slot(slot + 1 + self.below(3)),
                        side,
                        energy: Energy((1 + self.below(4_000)) * 1_000),
                        price: Price(self.below(40)),
                    },
                )
            }
            13 => {
                // Withdraw an open order, by its owner when there is one.
                let id = OrderId(self.below(cursor.next_order.max(1)));
                let owner = state.order(id).map_or(member, |(_, order)| seed_of(order.owner));
                (owner, Payload::CancelOrder { order: id })
            }
            14 => {
                let first = slot + 2 + self.below(2);
                (
                    member,
                    Payload::ProposeContract {
                        prosumer: testing::address(other),
                        price: Price(1 + self.below(40)),
                        max_energy: Energy((1 + self.below(3_000)) * 1_000),
                        first_slot: Slot(first),
                        last_slot: Slot(first + self.below(4)),
                    },
                )
            }
            15 => {
                let id = ContractId(self.below(cursor.next_contract.max(1)));
                let prosumer =
                    state.contract(id).map_or(member, |contract| seed_of(contract.prosumer));
                (prosumer, Payload::AcceptContract { contract: id })
            }
            16 => {
                let id = ContractId(self.below(cursor.next_contract.max(1)));
                let consumer =
                    state.contract(id).map_or(member, |contract| seed_of(contract.consumer));
                (consumer, Payload::EndContract { contract: id })
            }
            17 => (
                OPERATOR,
                Payload::SetTariffs {
                    from_slot: Slot(slot + 2),
                    tariffs: Tariffs {
                        retail: Price(20 + self.below(20)),
                        feed_in: Price(self.below(10)),
                        grid_fee: Price(self.below(6)),
                    },
                },
            ),
            18 => (member, Payload::TransferCertificates { to: testing::address(other), count: 1 }),
            _ => {
                if self.chance(10) {
                    (member, Payload::DeregisterMeter { meter: testing::address(meter(member)) })
                } else {
                    (member, Payload::RetireCertificates { count: 1 })
                }
            }
        }
    }

    /// One of a few fiat references, so that some are used twice (and refused).
    fn fiat_ref(&mut self) -> FiatRef {
        FiatRef::new(&format!("bank-{}", self.below(40))).expect("a valid reference")
    }
}

/// The key seed of a member (or the operator) by address.
fn seed_of(address: Address) -> u8 {
    (0..=MEMBERS).find(|seed| testing::address(*seed) == address).expect("a known account")
}
