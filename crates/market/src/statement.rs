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

/// Adds up records.
pub fn totals(records: &[SettlementRecord]) -> Totals {
    let _ = records;
    Totals::default()
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
pub fn key_figures(
    records: &[SettlementRecord],
    tariffs_for: impl Fn(primitives::Slot) -> primitives::Tariffs,
) -> KeyFigures {
    let _ = (records, tariffs_for);
    KeyFigures::default()
}
