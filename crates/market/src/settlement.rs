//! Settling a slot against metered energy (see `docs/design/market.md`, "Settlement of a
//! slot").

use crate::book::Trade;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Address, Amount, Energy, Slot, Tariffs};

pub use primitives::ContractId;

/// What settlement needs to know of a contract that runs in the slot.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ContractTerms {
    /// Identity; contracts are served in id order.
    pub id: ContractId,
    /// The buyer.
    pub consumer: Address,
    /// The seller.
    pub prosumer: Address,
    /// Price per kWh.
    pub price: primitives::Price,
    /// Most energy delivered in one slot.
    pub max_energy: Energy,
}

/// One meter's energy in the slot: the sums of its accepted readings (zero if none arrived).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct MeterSlot {
    /// The meter.
    pub meter: Address,
    /// The account it belongs to.
    pub owner: Address,
    /// Energy produced.
    pub produced: Energy,
    /// Energy consumed.
    pub consumed: Energy,
}

/// Everything that decides a slot's settlement.
#[derive(Clone, Debug)]
pub struct SlotInput<'a> {
    /// The slot.
    pub slot: Slot,
    /// Every meter with readings in the slot (any order).
    pub meters: &'a [MeterSlot],
    /// The contracts that run in the slot (any order; served in id order).
    pub contracts: &'a [ContractTerms],
    /// The slot's trades, in the order clearing made them.
    pub trades: &'a [Trade],
    /// The tariffs in force for the slot.
    pub tariffs: Tariffs,
}

/// One account's settlement of one slot: the lines of its statement.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SettlementRecord {
    /// The account.
    pub account: Address,
    /// The slot.
    pub slot: Slot,
    /// Gross production of its meters.
    pub produced: Energy,
    /// Gross consumption of its meters.
    pub consumed: Energy,
    /// Sum over its meters of `max(0, produced − consumed)`.
    pub exported: Energy,
    /// Sum over its meters of `max(0, consumed − produced)`.
    pub imported: Energy,
    /// Energy received under contracts.
    pub contract_bought: Energy,
    /// Paid for it (to prosumers).
    pub contract_paid: Amount,
    /// Grid fees on it (to the operator).
    pub contract_fees: Amount,
    /// Energy delivered under contracts.
    pub contract_sold: Energy,
    /// Received for it.
    pub contract_received: Amount,
    /// Energy received from auction trades.
    pub market_bought: Energy,
    /// Paid for it (to sellers), from the reservation.
    pub market_paid: Amount,
    /// Grid fees on it, from the reservation.
    pub market_fees: Amount,
    /// Energy delivered in auction trades.
    pub market_sold: Energy,
    /// Received for it.
    pub market_received: Amount,
    /// Energy bought from the grid (import left over).
    pub grid_bought: Energy,
    /// Paid for it, at the retail tariff.
    pub grid_paid: Amount,
    /// Energy sold to the grid (export left over).
    pub grid_sold: Energy,
    /// Received for it, at the feed-in tariff.
    pub grid_received: Amount,
    /// What the account could not pay and owes as arrears (set by the ledger when it applies
    /// the payments; settlement itself leaves it zero).
    pub arrears: Amount,
}

impl SettlementRecord {
    /// An empty record.
    pub fn new(account: Address, slot: Slot) -> SettlementRecord {
        SettlementRecord {
            account,
            slot,
            produced: Energy::ZERO,
            consumed: Energy::ZERO,
            exported: Energy::ZERO,
            imported: Energy::ZERO,
            contract_bought: Energy::ZERO,
            contract_paid: Amount::ZERO,
            contract_fees: Amount::ZERO,
            contract_sold: Energy::ZERO,
            contract_received: Amount::ZERO,
            market_bought: Energy::ZERO,
            market_paid: Amount::ZERO,
            market_fees: Amount::ZERO,
            market_sold: Energy::ZERO,
            market_received: Amount::ZERO,
            grid_bought: Energy::ZERO,
            grid_paid: Amount::ZERO,
            grid_sold: Energy::ZERO,
            grid_received: Amount::ZERO,
            arrears: Amount::ZERO,
        }
    }
}

/// The outcome of settling a slot.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SlotSettlement {
    /// One record per account with meters or trades in the slot, sorted by account.
    pub records: Vec<SettlementRecord>,
    /// Energy delivered under each contract, in id order.
    pub contract_deliveries: Vec<(ContractId, Energy)>,
    /// Energy delivered in each trade, aligned with `SlotInput::trades`.
    pub trade_deliveries: Vec<Energy>,
}

/// Settles one slot (`docs/design/market.md`, "Settlement of a slot").
///
/// 1. Each meter exports `max(0, produced − consumed)` and imports `max(0, consumed −
///    produced)`; an account's figures are the sums over its meters.
/// 2. Contracts, in id order, deliver `min(max_energy, prosumer's remaining export, consumer's
///    remaining import)`; the consumer pays the price and the grid fee on it.
/// 3. Each auction trade gets a seller share and a buyer share: its full energy when the
///    party's remaining export (import) covers all its trades, otherwise
///    `floor(energy · available / total)`, with the mWh lost to rounding handed out one each to
///    the party's trades in trade order (a trade never gets more than its energy). A trade
///    delivers the smaller share; the buyer pays the price and the grid fee on it.
/// 4. What is left of an account's import is bought from the grid at the retail tariff, what is
///    left of its export sold to it at the feed-in tariff.
///
/// Records exist for every account that owns a meter of `input.meters` or is a party to a trade
/// or a contract, sorted by account; `arrears` stays zero. Each entry of `input.meters` is one
/// meter (entries are not merged). Contracts with the same id are served in the order of their
/// other terms, so the result never depends on the order of `meters` or `contracts`.
///
/// Per-account energy sums saturate at `u64::MAX` (only reachable with absurd readings); every
/// delivery is carved out of those sums, so an account never settles more than it metered.
/// Payment sums cannot overflow: each is below `u64::MAX² / 10^6`.
pub fn settle(input: &SlotInput<'_>) -> SlotSettlement {
    let accounts = accounts_of(input);
    let mut states: Vec<AccountState> = accounts
        .iter()
        .map(|account| AccountState::new(SettlementRecord::new(*account, input.slot)))
        .collect();

    for meter in input.meters {
        if let Some(state) = position(&accounts, &meter.owner).and_then(|i| states.get_mut(i)) {
            state.add_meter(meter);
        }
    }

    let contract_deliveries = settle_contracts(input, &accounts, &mut states);
    let trade_deliveries = settle_trades(input, &accounts, &mut states);

    let tariffs = input.tariffs;
    let records = states
        .into_iter()
        .map(|state| {
            let mut record = state.record;
            record.grid_bought = Energy(state.import_left);
            record.grid_paid = crate::value(record.grid_bought, tariffs.retail);
            record.grid_sold = Energy(state.export_left);
            record.grid_received = crate::value(record.grid_sold, tariffs.feed_in);
            record
        })
        .collect();

    SlotSettlement { records, contract_deliveries, trade_deliveries }
}

/// An account's record being filled in, with what is left of its export and import.
struct AccountState {
    record: SettlementRecord,
    /// Export not yet delivered (by contract or trade).
    export_left: u64,
    /// Import not yet covered (by contract or trade).
    import_left: u64,
}

impl AccountState {
    fn new(record: SettlementRecord) -> AccountState {
        AccountState { record, export_left: 0, import_left: 0 }
    }

    /// Adds one meter's energy. Sums saturate at `u64::MAX`.
    fn add_meter(&mut self, meter: &MeterSlot) {
        let (produced, consumed) = (meter.produced.0, meter.consumed.0);
        let export = produced.saturating_sub(consumed);
        let import = consumed.saturating_sub(produced);
        let record = &mut self.record;
        record.produced = Energy(record.produced.0.saturating_add(produced));
        record.consumed = Energy(record.consumed.0.saturating_add(consumed));
        record.exported = Energy(record.exported.0.saturating_add(export));
        record.imported = Energy(record.imported.0.saturating_add(import));
        self.export_left = record.exported.0;
        self.import_left = record.imported.0;
    }
}

/// Every account of the slot (meter owners, trade and contract parties), sorted, without
/// duplicates.
fn accounts_of(input: &SlotInput<'_>) -> Vec<Address> {
    let mut accounts: Vec<Address> = Vec::with_capacity(
        input
            .meters
            .len()
            .saturating_add(input.trades.len().saturating_mul(2))
            .saturating_add(input.contracts.len().saturating_mul(2)),
    );
    accounts.extend(input.meters.iter().map(|meter| meter.owner));
    for trade in input.trades {
        accounts.push(trade.buyer);
        accounts.push(trade.seller);
    }
    for contract in input.contracts {
        accounts.push(contract.consumer);
        accounts.push(contract.prosumer);
    }
    accounts.sort_unstable();
    accounts.dedup();
    accounts
}

/// The index of `account` in the sorted `accounts`. Every account of the slot is there, so
/// `None` does not happen; callers treat it as "nothing to settle".
fn position(accounts: &[Address], account: &Address) -> Option<usize> {
    accounts.binary_search(account).ok()
}

/// Adds a payment to a running total. A total is at most what one account pays or receives in
/// a slot: a sum of `floor(e_i · p_i / 10^6)` with `Σ e_i ≤ u64::MAX` and `p_i ≤ u64::MAX`, so
/// below `u64::MAX² / 10^6`, far from `u128::MAX`; the saturation is never reached.
fn add_amount(total: &mut Amount, payment: Amount) {
    *total = Amount(total.0.saturating_add(payment.0));
}

/// Adds delivered energy to a running total. The total is at most the account's metered export
/// or import, so the saturation is never reached.
fn add_energy(total: &mut Energy, delivered: u64) {
    *total = Energy(total.0.saturating_add(delivered));
}

/// Step 2: contracts in id order (ties broken by the other terms, for order independence).
fn settle_contracts(
    input: &SlotInput<'_>,
    accounts: &[Address],
    states: &mut [AccountState],
) -> Vec<(ContractId, Energy)> {
    let mut contracts: Vec<&ContractTerms> = input.contracts.iter().collect();
    contracts.sort_unstable_by_key(|contract| {
        (contract.id, contract.consumer, contract.prosumer, contract.price, contract.max_energy)
    });
    let grid_fee = input.tariffs.grid_fee;
    let mut deliveries = Vec::with_capacity(contracts.len());
    for contract in contracts {
        let consumer = position(accounts, &contract.consumer);
        let prosumer = position(accounts, &contract.prosumer);
        let export_left = prosumer.and_then(|i| states.get(i)).map_or(0, |s| s.export_left);
        let import_left = consumer.and_then(|i| states.get(i)).map_or(0, |s| s.import_left);
        let delivered = contract.max_energy.0.min(export_left).min(import_left);
        let payment = crate::value(Energy(delivered), contract.price);
        if let Some(state) = prosumer.and_then(|i| states.get_mut(i)) {
            state.export_left = state.export_left.saturating_sub(delivered);
            add_energy(&mut state.record.contract_sold, delivered);
            add_amount(&mut state.record.contract_received, payment);
        }
        if let Some(state) = consumer.and_then(|i| states.get_mut(i)) {
            state.import_left = state.import_left.saturating_sub(delivered);
            add_energy(&mut state.record.contract_bought, delivered);
            add_amount(&mut state.record.contract_paid, payment);
            add_amount(&mut state.record.contract_fees, crate::value(Energy(delivered), grid_fee));
        }
        deliveries.push((contract.id, Energy(delivered)));
    }
    deliveries
}

/// Step 3: auction trades. Both sides' shares are computed from what is left after the
/// contracts, before any trade delivers.
fn settle_trades(
    input: &SlotInput<'_>,
    accounts: &[Address],
    states: &mut [AccountState],
) -> Vec<Energy> {
    let trades = input.trades;
    let sellers: Vec<Option<usize>> =
        trades.iter().map(|trade| position(accounts, &trade.seller)).collect();
    let buyers: Vec<Option<usize>> =
        trades.iter().map(|trade| position(accounts, &trade.buyer)).collect();
    let export_left: Vec<u64> = states.iter().map(|state| state.export_left).collect();
    let import_left: Vec<u64> = states.iter().map(|state| state.import_left).collect();
    let seller_shares = shares(trades, &sellers, &export_left);
    let buyer_shares = shares(trades, &buyers, &import_left);

    let grid_fee = input.tariffs.grid_fee;
    let mut deliveries = Vec::with_capacity(trades.len());
    let sides = sellers.iter().zip(&buyers).zip(seller_shares.iter().zip(&buyer_shares));
    for (trade, ((seller, buyer), (seller_share, buyer_share))) in trades.iter().zip(sides) {
        let delivered = (*seller_share).min(*buyer_share);
        let payment = crate::value(Energy(delivered), trade.price);
        if let Some(state) = seller.and_then(|i| states.get_mut(i)) {
            state.export_left = state.export_left.saturating_sub(delivered);
            add_energy(&mut state.record.market_sold, delivered);
            add_amount(&mut state.record.market_received, payment);
        }
        if let Some(state) = buyer.and_then(|i| states.get_mut(i)) {
            state.import_left = state.import_left.saturating_sub(delivered);
            add_energy(&mut state.record.market_bought, delivered);
            add_amount(&mut state.record.market_paid, payment);
            add_amount(&mut state.record.market_fees, crate::value(Energy(delivered), grid_fee));
        }
        deliveries.push(Energy(delivered));
    }
    deliveries
}

/// One side's share of every trade (aligned with `trades`). `parties[t]` is the account index
/// of trade `t`'s party on that side, `available[a]` what account `a` can still deliver (its
/// export) or take (its import).
///
/// A party whose available energy covers the total of its trades gives each trade its full
/// energy. Otherwise each trade gets `floor(energy · available / total)`, which is below its
/// energy, and the `available − Σ shares` mWh left over (fewer than the party's trades with
/// energy) go one each to its trades in trade order, skipping trades already at their energy
/// (those without energy).
fn shares(trades: &[Trade], parties: &[Option<usize>], available: &[u64]) -> Vec<u64> {
    // Σ energy of each party's trades; a sum of at most `usize::MAX` values below 2^64 fits in
    // a u128, so the saturation is never reached.
    let mut totals = vec![0u128; available.len()];
    for (trade, party) in trades.iter().zip(parties) {
        if let Some(total) = party.and_then(|i| totals.get_mut(i)) {
            *total = total.saturating_add(u128::from(trade.energy.0));
        }
    }

    // Rounded-down shares, and what each short party has handed out so far.
    let mut handed = vec![0u64; available.len()];
    let mut shares = Vec::with_capacity(trades.len());
    for (trade, party) in trades.iter().zip(parties) {
        let energy = trade.energy.0;
        let share = match party {
            Some(i) => {
                let available = available.get(*i).copied().unwrap_or(0);
                let total = totals.get(*i).copied().unwrap_or(0);
                let share = floor_share(energy, available, total);
                if let Some(handed) = handed.get_mut(*i) {
                    // Σ shares ≤ available ≤ u64::MAX when short, ≤ total ≤ available when not.
                    *handed = handed.saturating_add(share);
                }
                share
            }
            None => 0,
        };
        shares.push(share);
    }

    // The mWh lost to rounding, one each, first trades first.
    let mut left_over: Vec<u64> =
        available
            .iter()
            .zip(&totals)
            .zip(&handed)
            .map(|((available, total), handed)| {
                if u128::from(*available) >= *total { 0 } else { available.saturating_sub(*handed) }
            })
            .collect();
    for ((trade, party), share) in trades.iter().zip(parties).zip(shares.iter_mut()) {
        if let Some(left) = party.and_then(|i| left_over.get_mut(i))
            && *left > 0
            && *share < trade.energy.0
        {
            *share = share.saturating_add(1);
            *left = left.saturating_sub(1);
        }
    }
    shares
}

/// `energy` if `available` covers `total`, else `floor(energy · available / total)`: the
/// product of two u64 fits in a u128, and the quotient is below `energy`.
fn floor_share(energy: u64, available: u64, total: u128) -> u64 {
    if u128::from(available) >= total {
        return energy;
    }
    let share =
        u128::from(energy).saturating_mul(u128::from(available)).checked_div(total).unwrap_or(0);
    u64::try_from(share).unwrap_or(energy)
}
