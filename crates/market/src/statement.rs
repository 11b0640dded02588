//! Statements and key figures over settlement records.

use crate::settlement::SettlementRecord;
use primitives::{Amount, Energy};

/// The sums of a set of settlement records (one account's period, or the whole community's).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Totals {
    /// Gross production.
    pub produced: Energy,
    /// Gross consumption.
    pub consumed: Energy,
    /// Net export.
    pub exported: Energy,
    /// Net import.
    pub imported: Energy,
    /// Energy bought locally (contracts and market).
    pub bought_local: Energy,
    /// Paid for it (without grid fees).
    pub paid_local: Amount,
    /// Energy sold locally.
    pub sold_local: Energy,
    /// Received for it.
    pub received_local: Amount,
    /// Grid fees paid on local purchases.
    pub grid_fees: Amount,
    /// Energy bought from the grid.
    pub grid_bought: Energy,
    /// Paid for it.
    pub grid_paid: Amount,
    /// Energy sold to the grid.
    pub grid_sold: Energy,
    /// Received for it.
    pub grid_received: Amount,
    /// Arrears incurred.
    pub arrears: Amount,
    /// Received minus paid, in tokens (negative when the period cost money).
    pub net: i128,
}

/// Adds up records: `bought_local = contract_bought + market_bought`, `paid_local =
/// contract_paid + market_paid`, `sold_local` and `received_local` likewise, `grid_fees =
/// contract_fees + market_fees`, the grid lines, arrears and metered energy as they are, and
/// `net = received_local + grid_received − paid_local − grid_fees − grid_paid`.
///
/// Energy sums saturate at `u64::MAX` and token sums at `u128::MAX` (millions of records at
/// absurd prices); `net` is computed from the saturated sums and saturates at the `i128`
/// bounds.
pub fn totals(records: &[SettlementRecord]) -> Totals {
    let mut totals = Totals::default();
    for record in records {
        add_energy(&mut totals.produced, record.produced);
        add_energy(&mut totals.consumed, record.consumed);
        add_energy(&mut totals.exported, record.exported);
        add_energy(&mut totals.imported, record.imported);
        add_energy(&mut totals.bought_local, record.contract_bought);
        add_energy(&mut totals.bought_local, record.market_bought);
        add_amount(&mut totals.paid_local, record.contract_paid);
        add_amount(&mut totals.paid_local, record.market_paid);
        add_energy(&mut totals.sold_local, record.contract_sold);
        add_energy(&mut totals.sold_local, record.market_sold);
        add_amount(&mut totals.received_local, record.contract_received);
        add_amount(&mut totals.received_local, record.market_received);
        add_amount(&mut totals.grid_fees, record.contract_fees);
        add_amount(&mut totals.grid_fees, record.market_fees);
        add_energy(&mut totals.grid_bought, record.grid_bought);
        add_amount(&mut totals.grid_paid, record.grid_paid);
        add_energy(&mut totals.grid_sold, record.grid_sold);
        add_amount(&mut totals.grid_received, record.grid_received);
        add_amount(&mut totals.arrears, record.arrears);
    }
    let received = totals.received_local.0.saturating_add(totals.grid_received.0);
    let paid =
        totals.paid_local.0.saturating_add(totals.grid_fees.0).saturating_add(totals.grid_paid.0);
    totals.net = difference(received, paid);
    totals
}

fn add_energy(total: &mut Energy, energy: Energy) {
    *total = Energy(total.0.saturating_add(energy.0));
}

fn add_amount(total: &mut Amount, amount: Amount) {
    *total = Amount(total.0.saturating_add(amount.0));
}

/// `plus − minus` as an `i128`, saturating at its bounds.
fn difference(plus: u128, minus: u128) -> i128 {
    if plus >= minus {
        i128::try_from(plus.saturating_sub(minus)).unwrap_or(i128::MAX)
    } else {
        i128::try_from(minus.saturating_sub(plus)).map_or(i128::MIN, i128::saturating_neg)
    }
}

/// `part · 10^6 / whole` (floor), `None` when `whole` is zero; `part` is capped at `whole`.
fn parts_per_million(part: u128, whole: u128) -> Option<u64> {
    const MILLION: u128 = 1_000_000;
    // part ≤ whole ≤ Σ of u64 values, far below u128::MAX / 10^6 for any real slice of
    // records; the saturation is never reached in practice.
    let ratio = part.min(whole).saturating_mul(MILLION).checked_div(whole)?;
    // ratio ≤ 10^6.
    Some(u64::try_from(ratio).unwrap_or(u64::MAX))
}

/// Key figures of a period.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct KeyFigures {
    /// Share of consumption not bought from the grid, in parts per million; `None` without
    /// consumption.
    pub self_sufficiency_ppm: Option<u64>,
    /// Share of production not sold to the grid, in parts per million; `None` without
    /// production.
    pub self_consumption_ppm: Option<u64>,
    /// What the net import and export would have cost with the grid alone:
    /// `value(imported, retail) − value(exported, feed_in)` summed per slot.
    pub grid_only_cost: i128,
    /// What they cost: everything paid minus everything received.
    pub actual_cost: i128,
    /// `grid_only_cost − actual_cost`.
    pub savings: i128,
}

/// Key figures of records; `tariffs_for(slot)` gives the tariffs in force for each record's
/// slot (for the grid-only comparison).
///
/// - `self_sufficiency_ppm = (Σ consumed − Σ grid_bought) · 10^6 / Σ consumed` (floor);
/// - `self_consumption_ppm = (Σ produced − Σ grid_sold) · 10^6 / Σ produced` (floor);
/// - `grid_only_cost = Σ (value(imported, retail) − value(exported, feed_in))`, each record at
///   its own slot's tariffs;
/// - `actual_cost = Σ (contract_paid + contract_fees + market_paid + market_fees + grid_paid −
///   contract_received − market_received − grid_received)`;
/// - `savings = grid_only_cost − actual_cost`.
///
/// Energy sums are kept in `u128` (exact); the grid line cannot exceed the metered energy it is
/// part of, but should a record say otherwise the share saturates at zero. Token sums saturate
/// at the `i128` bounds, which a real set of records does not reach.
pub fn key_figures(
    records: &[SettlementRecord],
    tariffs_for: impl Fn(primitives::Slot) -> primitives::Tariffs,
) -> KeyFigures {
    let mut consumed = 0u128;
    let mut grid_bought = 0u128;
    let mut produced = 0u128;
    let mut grid_sold = 0u128;
    let mut grid_only_cost = 0i128;
    let mut actual_cost = 0i128;
    for record in records {
        // Sums of u64 values in a u128: not reachable with fewer than 2^64 records.
        consumed = consumed.saturating_add(u128::from(record.consumed.0));
        grid_bought = grid_bought.saturating_add(u128::from(record.grid_bought.0));
        produced = produced.saturating_add(u128::from(record.produced.0));
        grid_sold = grid_sold.saturating_add(u128::from(record.grid_sold.0));

        let tariffs = tariffs_for(record.slot);
        let grid_only = difference(
            crate::value(record.imported, tariffs.retail).0,
            crate::value(record.exported, tariffs.feed_in).0,
        );
        grid_only_cost = grid_only_cost.saturating_add(grid_only);

        let paid = [
            record.contract_paid,
            record.contract_fees,
            record.market_paid,
            record.market_fees,
            record.grid_paid,
        ]
        .iter()
        .fold(0u128, |sum, amount| sum.saturating_add(amount.0));
        let received = [record.contract_received, record.market_received, record.grid_received]
            .iter()
            .fold(0u128, |sum, amount| sum.saturating_add(amount.0));
        actual_cost = actual_cost.saturating_add(difference(paid, received));
    }
    KeyFigures {
        self_sufficiency_ppm: parts_per_million(consumed.saturating_sub(grid_bought), consumed),
        self_consumption_ppm: parts_per_million(produced.saturating_sub(grid_sold), produced),
        grid_only_cost,
        actual_cost,
        savings: grid_only_cost.saturating_sub(actual_cost),
    }
}
