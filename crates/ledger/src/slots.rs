//! What happens at the start of every block: slots whose gate has closed are cleared, slots
//! whose settlement deadline has passed are settled, in slot order (`docs/design/market.md`).

use crate::{
    state::State,
    types::{ClearedSlot, MarketEvent},
};
use market::{
    book::{Order, clear_uniform},
    settlement::{ContractTerms, MeterSlot, SlotInput, settle},
};
use primitives::{
    Address, Amount, ClearingRule, Energy, EngineKind, OrderId, Side, Slot, TimestampMs,
};
use std::collections::HashMap;

impl State {
    /// [`State::begin_block_by`] for a block without a named proposer (tools and tests): its
    /// fees go to the operator.
    pub fn begin_block(&mut self, timestamp: TimestampMs) -> Vec<MarketEvent> {
        let operator = self.config.operator;
        self.begin_block_by(timestamp, operator)
    }

    /// Starts a block proposed (or mined) by `proposer`: advances chain time to `timestamp`,
    /// pays a proof-of-work block's reward to `proposer` (who also collects the fees of the
    /// block's transactions), and clears and settles every slot that is due, before the block's
    /// transactions run. Returns what the market did, for the store and the API.
    pub fn begin_block_by(
        &mut self,
        timestamp: TimestampMs,
        proposer: Address,
    ) -> Vec<MarketEvent> {
        self.proposer = Some(proposer);
        let mut cursor = self.cursor;
        cursor.time = cursor.time.max(timestamp);
        cursor.height = primitives::Height(cursor.height.0.saturating_add(1));
        self.set_cursor(cursor);
        self.hand_over_validators();
        self.pay_reward(proposer);
        let params = self.config.market.clone();
        let mut events = Vec::new();
        // Clear every slot whose gate has closed (skipping slots with nothing to clear).
        let first_open = params.first_open_slot(cursor.time);
        while self.cursor.next_clear < first_open {
            let slot = self.cursor.next_clear;
            if let Some(event) = self.clear_slot(slot) {
                events.push(event);
            }
            let next = self.next_slot_with_orders(Slot(slot.0.saturating_add(1))).min(first_open);
            let mut cursor = self.cursor;
            cursor.next_clear = next.max(Slot(slot.0.saturating_add(1)));
            self.set_cursor(cursor);
        }
        // Settle every cleared slot whose deadline has passed: those before `settle_bound`.
        // Slots with nothing to settle are skipped, but never past a slot whose deadline is still
        // ahead: its readings may yet arrive.
        let deadline_bound = Slot(
            params.slot_of(cursor.time).0.saturating_sub(u64::from(params.settlement_delay_slots)),
        );
        let settle_bound = self.confirmed_bound(deadline_bound);
        while self.cursor.next_settle < self.cursor.next_clear.min(settle_bound) {
            let slot = self.cursor.next_settle;
            if let Some(event) = self.settle_slot(slot) {
                events.push(event);
            }
            let next = self
                .next_slot_to_settle(Slot(slot.0.saturating_add(1)))
                .min(self.cursor.next_clear)
                .min(settle_bound);
            let mut cursor = self.cursor;
            cursor.next_settle = next.max(Slot(slot.0.saturating_add(1)));
            self.set_cursor(cursor);
        }
        events
    }

    /// A proof-of-work block creates its reward for its miner.
    fn pay_reward(&mut self, miner: Address) {
        let EngineKind::Pow(pow) = self.config.engine else { return };
        let Some(rewarded) = self.supply.rewarded.checked_add(pow.block_reward) else { return };
        if pow.block_reward.is_zero() || self.receive(miner, pow.block_reward).is_err() {
            // A balance at the largest amount takes nothing more: no reward is created.
            return;
        }
        let mut supply = self.supply;
        supply.rewarded = rewarded;
        self.set_supply(supply);
    }

    /// The first slot not to settle yet. Slots settle once their deadline has passed
    /// (`deadline_bound` is the first slot whose deadline has not); on a chain that waits for
    /// confirmations, only once the block that passed the deadline has that many blocks on top:
    /// the bound this block may use is the one the block `settlement_confirmations` below it
    /// saw. Each block that raises the bound records it with its height.
    fn confirmed_bound(&mut self, deadline_bound: Slot) -> Slot {
        let confirmations = match self.config.engine {
            EngineKind::Pow(pow) => u64::from(pow.settlement_confirmations),
            EngineKind::Solo | EngineKind::Bft | EngineKind::Raft => 0,
        };
        if confirmations == 0 {
            return deadline_bound;
        }
        let height = self.cursor.height;
        let mut bounds = self.settle_bounds.clone();
        if bounds.last().is_none_or(|(_, bound)| *bound < deadline_bound) {
            bounds.push((height, deadline_bound));
        }
        let confirmed_at = height.0.saturating_sub(confirmations);
        // The newest bound recorded at or below the confirmed height, and everything after it.
        let base = bounds.iter().rposition(|(at, _)| at.0 <= confirmed_at);
        let bound = base.and_then(|index| bounds.get(index)).map_or(Slot(0), |(_, bound)| *bound);
        if let Some(index) = base {
            bounds.drain(..index);
        }
        if bounds != self.settle_bounds {
            self.set_settle_bounds(bounds);
        }
        bound
    }

    fn next_slot_with_orders(&self, from: Slot) -> Slot {
        self.orders
            .range((from, OrderId(0))..)
            .next()
            .map(|((slot, _), _)| *slot)
            .into_iter()
            .chain(self.cleared.range(from..).next().map(|(slot, _)| *slot))
            .min()
            .unwrap_or(Slot(u64::MAX))
    }

    fn next_slot_to_settle(&self, from: Slot) -> Slot {
        let readings =
            self.readings.range((from, lowest_address())..).next().map(|((slot, _), _)| *slot);
        let cleared = self.cleared.range(from..).next().map(|(slot, _)| *slot);
        let contracts = self
            .contracts
            .values()
            .filter(|contract| {
                contract.status == crate::types::ContractStatus::Active
                    && contract.last_slot >= from
            })
            .map(|contract| contract.first_slot.max(from))
            .min();
        [readings, cleared, contracts].into_iter().flatten().min().unwrap_or(Slot(u64::MAX))
    }

    /// Gate closure of `slot`: uniform-price clearing of its book (or, with pay-as-bid, the
    /// expiry of what did not match); unmatched bids get their reservations back.
    fn clear_slot(&mut self, slot: Slot) -> Option<MarketEvent> {
        let book: Vec<(OrderId, crate::types::OpenOrder)> = self
            .orders
            .range((slot, OrderId(0))..=(slot, OrderId(u64::MAX)))
            .map(|((_, id), order)| (*id, *order))
            .collect();
        for (id, _) in &book {
            self.set_order(slot, *id, None);
        }
        let fee = self.tariffs_for(slot).grid_fee;
        let mut cleared = self.cleared.get(&slot).cloned().unwrap_or_default();
        let mut new_trades = Vec::new();
        if self.config.market.clearing == ClearingRule::UniformPrice {
            let orders: Vec<Order> = book
                .iter()
                .map(|(id, order)| Order {
                    id: *id,
                    owner: order.owner,
                    side: order.side,
                    energy: order.energy,
                    price: order.price,
                })
                .collect();
            let clearing = clear_uniform(&orders);
            cleared.price = clearing.price;
            new_trades = clearing.trades;
        }
        // What each bid's trades will cost moves to the slot's reservation; the rest of the bid's
        // reservation goes back.
        let mut cost_by_bid: HashMap<OrderId, Amount> = HashMap::new();
        for trade in &new_trades {
            let cost = market::value(trade.energy, trade.price)
                .checked_add(market::value(trade.energy, fee))
                .unwrap_or(Amount(u128::MAX));
            let total = cost_by_bid.entry(trade.bid).or_insert(Amount::ZERO);
            *total = Amount(total.0.saturating_add(cost.0));
        }
        for (id, order) in &book {
            if order.side != Side::Bid {
                continue;
            }
            let needed = cost_by_bid.get(id).copied().unwrap_or(Amount::ZERO).min(order.reserved);
            if !needed.is_zero() {
                add_reserved(&mut cleared, order.owner, needed);
            }
            self.release(order.owner, order.reserved.checked_sub(needed).unwrap_or(Amount::ZERO));
        }
        cleared.trades.extend(new_trades);
        if book.is_empty() && cleared.trades.is_empty() {
            return None;
        }
        let volume = cleared
            .trades
            .iter()
            .fold(Energy::ZERO, |sum, trade| Energy(sum.0.saturating_add(trade.energy.0)));
        let event = MarketEvent::Cleared {
            slot,
            price: cleared.price,
            volume,
            trades: cleared.trades.clone(),
        };
        let keep = !cleared.trades.is_empty() || !cleared.reserved.is_empty();
        self.set_cleared(slot, keep.then_some(cleared));
        Some(event)
    }

    /// Settlement of `slot` against its readings: contracts, trades, the grid; tokens move and
    /// a record per account is reported.
    fn settle_slot(&mut self, slot: Slot) -> Option<MarketEvent> {
        let readings: Vec<(primitives::Address, crate::types::SlotReadings)> = self
            .readings
            .range((slot, lowest_address())..)
            .take_while(|((reading_slot, _), _)| *reading_slot == slot)
            .map(|((_, meter), readings)| (*meter, *readings))
            .collect();
        let meters: Vec<MeterSlot> = readings
            .iter()
            .filter_map(|(meter, readings)| {
                let owner = self.meters.get(meter)?.owner;
                Some(MeterSlot {
                    meter: *meter,
                    owner,
                    produced: readings.produced,
                    consumed: readings.consumed,
                })
            })
            .collect();
        for (meter, _) in &readings {
            self.set_readings(slot, *meter, None);
        }
        let contracts: Vec<ContractTerms> = self
            .contracts
            .iter()
            .filter(|(_, contract)| contract.delivers(slot))
            .map(|(id, contract)| ContractTerms {
                id: *id,
                consumer: contract.consumer,
                prosumer: contract.prosumer,
                price: contract.price,
                max_energy: contract.max_energy,
            })
            .collect();
        let cleared = self.cleared.get(&slot).cloned().unwrap_or_default();
        if meters.is_empty()
            && contracts.is_empty()
            && cleared.trades.is_empty()
            && cleared.reserved.is_empty()
        {
            return None;
        }
        self.set_cleared(slot, None);
        let tariffs = self.tariffs_for(slot);
        let input = SlotInput {
            slot,
            meters: &meters,
            contracts: &contracts,
            trades: &cleared.trades,
            tariffs,
        };
        let mut settlement = settle(&input);

        // Receipts first: what an account receives repays its arrears before it is charged (the
        // order does not change the outcome, see docs/design/market.md).
        let mut fees = Amount::ZERO;
        let mut grid: i128 = self.cursor.grid;
        for record in &settlement.records {
            let received =
                sum(&[record.contract_received, record.market_received, record.grid_received]);
            let _ = self.receive(record.account, received);
            fees = sum(&[fees, record.contract_fees, record.market_fees]);
            grid = grid
                .saturating_add(i128::try_from(record.grid_paid.0).unwrap_or(i128::MAX))
                .saturating_sub(i128::try_from(record.grid_received.0).unwrap_or(i128::MAX));
        }
        // Trades are paid from the buyers' reservations; the rest of a reservation goes back.
        let market_paid: HashMap<primitives::Address, Amount> = settlement
            .records
            .iter()
            .map(|record| (record.account, sum(&[record.market_paid, record.market_fees])))
            .collect();
        for (buyer, reserved) in &cleared.reserved {
            let paid = market_paid.get(buyer).copied().unwrap_or(Amount::ZERO).min(*reserved);
            self.pay_from_reservation(*buyer, paid);
            self.release(*buyer, reserved.checked_sub(paid).unwrap_or(Amount::ZERO));
        }
        // Contracts and grid energy are charged to the balance; what it cannot cover is arrears.
        for record in &mut settlement.records {
            let owed = sum(&[record.contract_paid, record.contract_fees, record.grid_paid]);
            record.arrears = self.charge(record.account, owed);
        }
        let operator = self.config.operator;
        let _ = self.receive(operator, fees);
        let mut cursor = self.cursor;
        cursor.grid = grid;
        self.set_cursor(cursor);
        Some(MarketEvent::Settled { slot, records: settlement.records })
    }
}

fn lowest_address() -> primitives::Address {
    primitives::Address(primitives::PublicKey([0; 32]))
}

fn sum(amounts: &[Amount]) -> Amount {
    amounts.iter().fold(Amount::ZERO, |total, amount| Amount(total.0.saturating_add(amount.0)))
}

/// Adds to a buyer's reservation for a cleared slot (kept in address order).
pub(crate) fn add_reserved(cleared: &mut ClearedSlot, buyer: primitives::Address, amount: Amount) {
    match cleared.reserved.binary_search_by(|(address, _)| address.cmp(&buyer)) {
        Ok(position) => {
            if let Some((_, reserved)) = cleared.reserved.get_mut(position) {
                *reserved = Amount(reserved.0.saturating_add(amount.0));
            }
        }
        Err(position) => cleared.reserved.insert(position, (buyer, amount)),
    }
}
