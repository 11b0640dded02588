//! A simulated energy community as pure, seeded code.
//!
//! This crate owns the *model* of a living community for `joule devnet`: which households there
//! are ([`Community::new`]: annual consumption, PV system, battery, bilateral contracts), what
//! each household's meter measures minute by minute ([`MeterSim`]: BDEW H25 load profile with
//! per-household habits, appliance events and noise; PV from the sun's position, a clear-sky
//! model and the community's seeded clouds; a battery behind the meter), what happens to each
//! reading ([`reading_fate`]: on time, late, estimated or missing), what the trading agent
//! expects of a slot ([`forecast`]) and which order it places ([`plan_order`]). The formulas
//! and their sources are in `docs/design/households.md` and in the module docs.
//!
//! It deliberately does no I/O, reads no clock, starts no threads and has no global
//! randomness: everything is a function of the [`CommunityConfig`] (its seed included) and of
//! the times passed in, so the same config gives the same community and the same minutes, bit
//! for bit, on one machine. It knows nothing of keys, transactions or the chain: the driver in
//! the `joule` binary signs and submits what this crate computes. Floating point is used for
//! the physics; every value handed out for the chain is an integer: energy in mWh, prices in
//! tokens per kWh, times in ms since the Unix epoch (UTC).

mod agent;
mod calendar;
mod meter;
mod profile;
mod random;
mod solar;
mod weather;

#[cfg(test)]
mod tests;

pub use agent::{
    Fate, MIN_ORDER_MWH, OrderPlan, Side, SlotForecast, Tariffs, forecast, plan_order, reading_fate,
};
pub use meter::{MeterSim, Minute};

use random::{Rng, Stream};

/// What went wrong: a configuration or an argument the model cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A community needs at least one household, and at most [`MAX_HOUSEHOLDS`].
    #[error("a community has 1 to {MAX_HOUSEHOLDS} households, not {0}")]
    Households(usize),
    /// A share is a fraction in [0, 1].
    #[error("{name} must be within [0, 1], not {value}")]
    Share {
        /// Which share.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The late, estimated and missing shares together exceed 1.
    #[error("late, estimated and missing shares add up to {0}, more than 1")]
    Fates(f64),
    /// Latitude outside [-90, 90] or longitude outside [-180, 180] degrees.
    #[error("the site ({latitude_deg}, {longitude_deg}) is not a place on Earth")]
    Site {
        /// Degrees north.
        latitude_deg: f64,
        /// Degrees east.
        longitude_deg: f64,
    },
    /// The offset from UTC lies outside [-720, 840] minutes.
    #[error("a UTC offset of {0} minutes does not exist")]
    UtcOffset(i32),
    /// Slots last 1 to 60 minutes.
    #[error("slots last 1 to 60 minutes, not {0}")]
    SlotMinutes(u32),
    /// No household with this index.
    #[error("there is no household {index}; the community has {households}")]
    UnknownHousehold {
        /// The index asked for.
        index: usize,
        /// How many households there are.
        households: usize,
    },
    /// A forecast window must start on a whole minute and last 1 minute to 1 day.
    #[error(
        "a forecast window must start on a whole minute and last 1 minute to 1 day, in whole minutes: start {start_ms} ms, {length_ms} ms"
    )]
    Window {
        /// The window's start.
        start_ms: u64,
        /// Its length.
        length_ms: u64,
    },
    /// A time after the year 9999.
    #[error("{0} ms lies after the year 9999")]
    Time(u64),
    /// The progress towards gate closure is not a number.
    #[error("progress towards gate closure must be a number in [0, 1]")]
    Progress,
}

/// The largest community [`Community::new`] builds.
pub const MAX_HOUSEHOLDS: usize = 100_000;

/// How agents set their limit prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    /// Each agent keeps one limit price of its own for every slot.
    Fixed,
    /// Each agent starts at the price least attractive to the other side (sellers at the
    /// upper bound, buyers at the lower) and moves linearly to its own limit as the slot's
    /// gate closure nears, like the `fit_to_limit` agents of Grid Singularity's exchange. The
    /// driver must re-place orders as progress grows for this to trade.
    Moving,
}

/// Everything that decides a community.
#[derive(Debug, Clone, PartialEq)]
pub struct CommunityConfig {
    /// How many households.
    pub households: usize,
    /// The seed of every random choice.
    pub seed: u64,
    /// The site, degrees north.
    pub latitude_deg: f64,
    /// The site, degrees east.
    pub longitude_deg: f64,
    /// Local time of the load profiles and of the day boundaries, minutes ahead of UTC, all
    /// year (no daylight-saving switch).
    pub utc_offset_minutes: i32,
    /// Share of households with PV.
    pub prosumer_share: f64,
    /// Share of prosumers with a battery.
    pub battery_share: f64,
    /// Share of consumers that hold a contract with a prosumer.
    pub contract_share: f64,
    /// Share of readings that arrive late.
    pub late_share: f64,
    /// Share of readings that are estimated instead of measured.
    pub estimated_share: f64,
    /// Share of readings that never arrive.
    pub missing_share: f64,
    /// How agents price their orders.
    pub pricing: Pricing,
    /// The tariffs the contracts' prices are set against (the chain's tariffs at the start).
    pub tariffs: Tariffs,
    /// The chain's slot length, for the contracts' energy cap per slot.
    pub slot_minutes: u32,
}

impl Default for CommunityConfig {
    /// A dozen households in Frankfurt am Main (UTC+01:00), half of them with PV, half of
    /// those with a battery, a third of the consumers under contract, 3 % late, 2 % estimated
    /// and 1 % missing readings, fixed prices, the chain's default tariffs and 15-minute slots.
    fn default() -> CommunityConfig {
        CommunityConfig {
            households: 12,
            seed: 1,
            latitude_deg: 50.11,
            longitude_deg: 8.68,
            utc_offset_minutes: 60,
            prosumer_share: 0.5,
            battery_share: 0.5,
            contract_share: 1.0 / 3.0,
            late_share: 0.03,
            estimated_share: 0.02,
            missing_share: 0.01,
            pricing: Pricing::Fixed,
            tariffs: Tariffs { retail: 30, feed_in: 8, grid_fee: 4 },
            slot_minutes: 15,
        }
    }
}

impl CommunityConfig {
    fn validate(&self) -> Result<(), Error> {
        if self.households == 0 || self.households > MAX_HOUSEHOLDS {
            return Err(Error::Households(self.households));
        }
        let shares = [
            ("prosumer_share", self.prosumer_share),
            ("battery_share", self.battery_share),
            ("contract_share", self.contract_share),
            ("late_share", self.late_share),
            ("estimated_share", self.estimated_share),
            ("missing_share", self.missing_share),
        ];
        for (name, value) in shares {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::Share { name, value });
            }
        }
        let fates = self.late_share + self.estimated_share + self.missing_share;
        if fates > 1.0 {
            return Err(Error::Fates(fates));
        }
        if !(-90.0..=90.0).contains(&self.latitude_deg)
            || !(-180.0..=180.0).contains(&self.longitude_deg)
        {
            return Err(Error::Site {
                latitude_deg: self.latitude_deg,
                longitude_deg: self.longitude_deg,
            });
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(Error::UtcOffset(self.utc_offset_minutes));
        }
        if !(1..=60).contains(&self.slot_minutes) {
            return Err(Error::SlotMinutes(self.slot_minutes));
        }
        Ok(())
    }
}

/// A rooftop PV system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PvSystem {
    /// Peak power, kWp.
    pub kwp: f64,
    /// Orientation, degrees clockwise from north (180 = south).
    pub azimuth_deg: f64,
    /// Tilt from horizontal, degrees.
    pub tilt_deg: f64,
    /// AC output over plane-of-array irradiance × kWp (wiring, inverter, heat, soiling).
    pub performance_ratio: f64,
}

/// A home battery behind the meter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Battery {
    /// Usable capacity, Wh.
    pub capacity_wh: u64,
    /// Most charging or discharging power, W.
    pub max_power_w: u64,
    /// Round-trip efficiency, applied when charging.
    pub efficiency: f64,
}

/// How one household departs from the standard profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Habits {
    /// The household runs this many minutes later (negative: earlier) than the profile.
    pub shift_minutes: i32,
    /// Standard deviation of the minute-level multiplicative noise (log-normal, mean 1).
    pub noise_sigma: f64,
    /// Share of the energy drawn by appliance events (washing machine, oven, …).
    pub event_share: f64,
}

/// How one household's agent prices, as fractions of the range from the feed-in tariff to
/// retail minus grid fee.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentTraits {
    /// Where its asks' limit lies (0 = feed-in).
    pub ask_fraction: f64,
    /// Where its bids' limit lies (1 = retail minus grid fee).
    pub bid_fraction: f64,
}

/// One household of the community.
#[derive(Debug, Clone, PartialEq)]
pub struct Household {
    /// Its position in [`Community::households`].
    pub index: usize,
    /// A short unique name: `house01`, `house02`, …
    pub name: String,
    /// Annual consumption, kWh.
    pub annual_kwh: f64,
    /// Its PV system, if it is a prosumer.
    pub pv: Option<PvSystem>,
    /// Its battery, if it has one.
    pub battery: Option<Battery>,
    /// Its load's departures from the standard profile.
    pub habits: Habits,
    /// Its trading agent's prices.
    pub agent: AgentTraits,
}

/// A bilateral contract a consumer holds with a prosumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractPlan {
    /// The consumer's household index.
    pub consumer: usize,
    /// The prosumer's household index.
    pub prosumer: usize,
    /// Tokens per kWh.
    pub price: u64,
    /// The most energy per slot, mWh: twice the consumer's mean power over one slot.
    pub max_energy_mwh_per_slot: u64,
}

/// A whole community: its households and the contracts among them.
#[derive(Debug, Clone, PartialEq)]
pub struct Community {
    /// The configuration it was built from.
    pub config: CommunityConfig,
    /// The households, by index.
    pub households: Vec<Household>,
    /// The contracts, one per consumer that holds one.
    pub contracts: Vec<ContractPlan>,
}

/// A seeded value in [low, high) rounded to a multiple of `step` (a fraction of one is divided
/// out rather than multiplied in, so that 73 tenths is exactly the double nearest 7.3).
fn rounded(rng: &mut Rng, low: f64, high: f64, step: f64) -> f64 {
    let steps = (rng.between(low, high) / step).round();
    if step < 1.0 { steps / (1.0 / step).round() } else { steps * step }
}

impl Community {
    /// Builds the community `config` describes, or says what is wrong with it.
    pub fn new(config: &CommunityConfig) -> Result<Community, Error> {
        config.validate()?;
        let count = config.households;
        let order = Rng::new(config.seed, Stream::Roles, &[]).permutation(count);
        let prosumer_count = (config.prosumer_share * count as f64).round() as usize;
        let battery_count = (config.battery_share * prosumer_count as f64).round() as usize;
        let (prosumers, consumers) = order.split_at(prosumer_count);
        let width = count.to_string().len().max(2);
        let mut rank = vec![0; count];
        for (position, &index) in order.iter().enumerate() {
            rank[index] = position;
        }
        let households: Vec<Household> = (0..count)
            .map(|index| {
                household(
                    config,
                    index,
                    width,
                    rank[index] < prosumer_count,
                    rank[index] < battery_count,
                )
            })
            .collect();
        let contract_count = (config.contract_share * consumers.len() as f64).round() as usize;
        let contracts = if prosumers.is_empty() {
            Vec::new()
        } else {
            consumers[..contract_count]
                .iter()
                .enumerate()
                .map(|(number, &consumer)| {
                    let prosumer = prosumers[number % prosumers.len()];
                    contract(config, &households[consumer], prosumer)
                })
                .collect()
        };
        Ok(Community { config: config.clone(), households, contracts })
    }

    /// The household at `index`, or [`Error::UnknownHousehold`].
    pub fn household(&self, index: usize) -> Result<&Household, Error> {
        self.households
            .get(index)
            .ok_or(Error::UnknownHousehold { index, households: self.households.len() })
    }

    /// The contract `household` holds as a consumer, if any.
    pub fn contract_of(&self, household: usize) -> Option<&ContractPlan> {
        self.contracts.iter().find(|contract| contract.consumer == household)
    }
}

/// Household `index`'s seeded traits. Every trait is drawn whether or not it is used, so a
/// household keeps its habits when the shares change.
fn household(
    config: &CommunityConfig,
    index: usize,
    width: usize,
    pv: bool,
    battery: bool,
) -> Household {
    let mut rng = Rng::new(config.seed, Stream::Household, &[index as u64]);
    let annual_kwh = rounded(&mut rng, 2_500.0, 5_000.0, 10.0);
    let habits = Habits {
        shift_minutes: rng.between(-30.0, 30.0).round() as i32,
        noise_sigma: rng.between(0.2, 0.4),
        event_share: rng.between(0.1, 0.2),
    };
    let agent =
        AgentTraits { ask_fraction: rng.between(0.1, 0.5), bid_fraction: rng.between(0.5, 0.9) };
    // South-facing in the north, north-facing in the south, give or take 45 degrees.
    let facing = if config.latitude_deg >= 0.0 { 180.0 } else { 0.0 };
    let system = PvSystem {
        kwp: rounded(&mut rng, 3.0, 9.0, 0.1),
        azimuth_deg: (facing + rounded(&mut rng, -45.0, 45.0, 1.0)).rem_euclid(360.0),
        tilt_deg: rounded(&mut rng, 20.0, 40.0, 1.0),
        performance_ratio: rounded(&mut rng, 0.75, 0.85, 0.01),
    };
    let capacity_wh = rounded(&mut rng, 5_000.0, 10_000.0, 500.0) as u64;
    let storage = Battery { capacity_wh, max_power_w: capacity_wh / 2, efficiency: 0.9 };
    Household {
        index,
        name: format!("house{:0width$}", index + 1),
        annual_kwh,
        pv: pv.then_some(system),
        battery: (pv && battery).then_some(storage),
        habits,
        agent,
    }
}

/// A contract between `consumer` and `prosumer` at a seeded price inside the local range.
fn contract(config: &CommunityConfig, consumer: &Household, prosumer: usize) -> ContractPlan {
    let mut rng = Rng::new(config.seed, Stream::Contract, &[consumer.index as u64]);
    let (low, high) = config.tariffs.local_range();
    let price = low + (rng.between(0.35, 0.65) * high.saturating_sub(low) as f64).round() as u64;
    let mean_power_mw = consumer.annual_kwh * 1e6 / 8_760.0;
    let slot_hours = f64::from(config.slot_minutes) / 60.0;
    let max_wh = (2.0 * mean_power_mw * slot_hours / 1_000.0).round() as u64;
    ContractPlan {
        consumer: consumer.index,
        prosumer,
        price,
        max_energy_mwh_per_slot: max_wh * 1_000,
    }
}
