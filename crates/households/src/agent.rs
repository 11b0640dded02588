//! What each household's agent sees and does: reading fates, slot forecasts, orders.

use crate::calendar::{DAY_MS, MINUTE_MS};
use crate::meter::{MAX_TIME_MS, MeterSim, Mode};
use crate::random::{Rng, Stream};
use crate::{Community, Error, Pricing};

/// The smallest order an agent places: 10 Wh. Orders are whole Wh, rounded down.
pub const MIN_ORDER_MWH: u64 = 10_000;
/// Mean delay of a late reading beyond the first minute, ms.
const MEAN_EXTRA_DELAY_MS: f64 = 600_000.0;
/// The longest delay of a late reading, ms (two hours).
const MAX_DELAY_MS: u64 = 7_200_000;

/// What happens to the reading of one household's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Sent as soon as the interval ends.
    OnTime,
    /// Sent `delay_ms` of chain time after the interval's end: one minute plus an exponential
    /// delay with a mean of ten minutes, at most two hours, so some late readings miss the
    /// chain's settlement deadline.
    Late {
        /// Chain time after the interval's end.
        delay_ms: u64,
    },
    /// Sent on time but flagged as estimated; the driver reports the [`forecast`] of the
    /// interval instead of the measured value, as a head-end system substitutes a profile value.
    Estimated,
    /// Never sent.
    Missing,
}

/// The fate of `household`'s reading for the interval starting at `interval_start_ms`, seeded
/// per household and interval, with the community's late, estimated and missing shares.
pub fn reading_fate(
    community: &Community,
    household: usize,
    interval_start_ms: u64,
) -> Result<Fate, Error> {
    community.household(household)?;
    let config = &community.config;
    let mut rng =
        Rng::new(config.seed, Stream::ReadingFate, &[household as u64, interval_start_ms]);
    let draw = rng.uniform();
    let fate = if draw < config.missing_share {
        Fate::Missing
    } else if draw < config.missing_share + config.estimated_share {
        Fate::Estimated
    } else if draw < config.missing_share + config.estimated_share + config.late_share {
        let extra = -(1.0 - rng.uniform()).ln() * MEAN_EXTRA_DELAY_MS;
        Fate::Late { delay_ms: (MINUTE_MS as u64 + extra.round() as u64).min(MAX_DELAY_MS) }
    } else {
        Fate::OnTime
    };
    Ok(fate)
}

/// The agent's view of a window (a slot) before it happens. Energies in mWh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotForecast {
    /// Start of the window, ms since the Unix epoch (UTC).
    pub slot_start_ms: u64,
    /// Length of the window, ms.
    pub slot_ms: u64,
    /// Expected load.
    pub load_mwh: u64,
    /// Expected PV production.
    pub pv_mwh: u64,
    /// Expected meter consumption (load plus battery charge).
    pub consumed_mwh: u64,
    /// Expected meter production (PV plus battery discharge).
    pub produced_mwh: u64,
}

impl SlotForecast {
    /// Expected net export (positive) or import (negative) through the grid connection.
    pub fn net_mwh(&self) -> i128 {
        i128::from(self.produced_mwh) - i128::from(self.consumed_mwh)
    }
}

/// The forecast of `household`'s energy in `[slot_start_ms, slot_start_ms + slot_ms)`: the
/// expectation of the load model (no noise, appliance events at their mean), PV under the
/// day-ahead forecast of the clear-sky index instead of the actual cloud path, and the battery
/// run on those expected minutes from midnight. The forecast error is what the actual minutes
/// add: noise, events, clouds and the weather forecast's own seeded error.
pub fn forecast(
    community: &Community,
    household: usize,
    slot_start_ms: u64,
    slot_ms: u64,
) -> Result<SlotForecast, Error> {
    community.household(household)?;
    let minute = MINUTE_MS as u64;
    let valid = slot_start_ms.is_multiple_of(minute)
        && slot_ms.is_multiple_of(minute)
        && (minute..=DAY_MS as u64).contains(&slot_ms);
    if !valid || slot_start_ms > MAX_TIME_MS {
        return Err(Error::Window { start_ms: slot_start_ms, length_ms: slot_ms });
    }
    let mut sim = MeterSim::start(community, household, slot_start_ms, Mode::Expected)?;
    let mut total = SlotForecast {
        slot_start_ms,
        slot_ms,
        load_mwh: 0,
        pv_mwh: 0,
        consumed_mwh: 0,
        produced_mwh: 0,
    };
    for _ in 0..slot_ms / minute {
        let minute = sim.next_minute();
        total.load_mwh += minute.load_mwh;
        total.pv_mwh += minute.pv_mwh;
        total.consumed_mwh += minute.consumed_mwh;
        total.produced_mwh += minute.produced_mwh;
    }
    Ok(total)
}

/// The grid's tariffs, tokens per kWh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tariffs {
    /// What the grid charges for energy it sells.
    pub retail: u64,
    /// What the grid pays for energy it buys.
    pub feed_in: u64,
    /// What the operator charges per kWh traded locally (paid by the buyer).
    pub grid_fee: u64,
}

impl Tariffs {
    /// The range of limit prices at which local trading beats the grid for both sides: from
    /// the feed-in tariff to retail minus grid fee (a buyer pays price plus fee). Empty when
    /// the upper end is below the lower.
    pub fn local_range(&self) -> (u64, u64) {
        (self.feed_in, self.retail.saturating_sub(self.grid_fee))
    }
}

/// Which side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A buy order.
    Bid,
    /// A sell order.
    Ask,
}

/// The order an agent places for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderPlan {
    /// Buy or sell.
    pub side: Side,
    /// Energy, mWh: a whole number of Wh, at least [`MIN_ORDER_MWH`].
    pub energy_mwh: u64,
    /// Limit price, tokens per kWh, within [`Tariffs::local_range`].
    pub price: u64,
}

/// The order `household`'s agent places for the forecast's slot, or `None` when there is
/// nothing worth trading: a forecast surplus of at least 10 Wh is offered (less what the
/// household's contracts are expected to take), a forecast shortfall of at least 10 Wh is bid
/// for, unless the household is a consumer under contract (the chain lets it buy from no one
/// else) or the tariffs leave no room for local trading. `progress` in [0, 1] is how far the
/// agent is from its first chance to trade towards gate closure; values outside are clamped,
/// `Fixed` pricing ignores it.
pub fn plan_order(
    community: &Community,
    household: usize,
    forecast: &SlotForecast,
    tariffs: &Tariffs,
    progress: f64,
) -> Result<Option<OrderPlan>, Error> {
    let agent = community.household(household)?.agent;
    if progress.is_nan() {
        return Err(Error::Progress);
    }
    let progress = progress.clamp(0.0, 1.0);
    let (low, high) = tariffs.local_range();
    if high < low || community.contract_of(household).is_some() {
        return Ok(None);
    }
    let net = forecast.net_mwh();
    let (side, energy) = if net > 0 {
        let mut promised: i128 = 0;
        for contract in community.contracts.iter().filter(|contract| contract.prosumer == household)
        {
            let consumer = crate::forecast(
                community,
                contract.consumer,
                forecast.slot_start_ms,
                forecast.slot_ms,
            )?;
            promised +=
                (-consumer.net_mwh()).clamp(0, i128::from(contract.max_energy_mwh_per_slot));
        }
        (Side::Ask, net - promised)
    } else {
        (Side::Bid, -net)
    };
    let energy_mwh = u64::try_from(energy.max(0)).unwrap_or(u64::MAX) / 1_000 * 1_000;
    if energy_mwh < MIN_ORDER_MWH {
        return Ok(None);
    }
    let span = (high - low) as f64;
    let limit = match side {
        Side::Ask => low as f64 + agent.ask_fraction * span,
        Side::Bid => low as f64 + agent.bid_fraction * span,
    };
    let price = match (community.config.pricing, side) {
        (Pricing::Fixed, _) => limit,
        (Pricing::Moving, Side::Ask) => high as f64 - progress * (high as f64 - limit),
        (Pricing::Moving, Side::Bid) => low as f64 + progress * (limit - low as f64),
    };
    let price = (price.round() as u64).clamp(low, high);
    Ok(Some(OrderPlan { side, energy_mwh, price }))
}
