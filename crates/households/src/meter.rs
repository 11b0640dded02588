//! One household's meter, minute by minute.
//!
//! **Load.** For local day `d` the H25 quarter-hour value of the day's month and day type,
//! times the dynamisation factor, scaled so that the calendar year sums to `annual_kwh`
//! ([`crate::profile`]), is spread evenly over its 15 minutes and shifted by the household's
//! `shift_minutes` (wrapping within the day). A share `event_share` of the energy is taken out
//! of that smooth part and drawn instead by appliance events: their mean number per day `λ`
//! returns that share on average (a day has `⌊λ⌋` events, plus one with probability `λ - ⌊λ⌋`);
//! each is an appliance of the table below, chosen uniformly, starting at a minute drawn in
//! proportion to the household's smooth load above the day's minimum (people use appliances
//! when they are at home and awake) and ending before midnight. Every minute the smooth part is
//! multiplied by log-normal noise `exp(σz - σ²/2)` (mean 1, never negative).
//!
//! **PV.** `kWp · POA / (1000 W/m²) · PR` at the middle of the minute, with the global
//! horizontal irradiance of the clear-sky model times the community's clear-sky index
//! ([`crate::solar`], [`crate::weather`]); zero while the sun is below the horizon.
//!
//! **Battery.** It charges from surplus (PV beyond load) and discharges into shortfall,
//! within its power and capacity; the round-trip loss is taken when charging (`stored =
//! floor(charge · efficiency)`). Every local day ends with the battery empty: whenever the
//! stored energy could not otherwise be delivered by midnight at full power, the battery
//! discharges at least what is needed, into the load first and the rest into the grid. So each
//! day starts from the same state (empty) whether the meter ran through the night or was
//! started that morning, and a restarted driver gets exactly the same minutes.
//!
//! **What the meter reports.** `consumed = load + battery charge` and `produced = PV + battery
//! discharge`: the household's sinks and sources, gross. `produced - consumed` is the net flow
//! into the grid in that minute, so the chain's per-slot `max(0, Σ produced - Σ consumed)`
//! (export) and `max(0, Σ consumed - Σ produced)` (import) are the household's true net flows
//! through the grid connection over the slot, battery included.

use crate::calendar::{DAY_MS, LocalDay, MINUTE_MS, MINUTES_PER_DAY};
use crate::profile::{LoadProfile, dynamisation};
use crate::random::{Rng, Stream};
use crate::weather::DayWeather;
use crate::{Battery, Community, Error, Household, solar};

/// Appliance events: (what, power in W, minutes). A rectangular approximation of each cycle's
/// mean draw, from typical appliance ratings.
const APPLIANCES: [(&str, f64, usize); 7] = [
    ("washing machine", 2_000.0, 25),
    ("dishwasher", 1_800.0, 30),
    ("oven", 2_400.0, 35),
    ("kettle", 2_000.0, 3),
    ("hob", 1_500.0, 20),
    ("tumble dryer", 2_500.0, 45),
    ("vacuum cleaner", 1_000.0, 15),
];

/// The mean energy of one appliance event and the mean of its square (Wh, Wh²).
pub(crate) fn event_moments() -> (f64, f64) {
    let energies = APPLIANCES.map(|(_, watts, minutes)| watts * minutes as f64 / 60.0);
    let count = energies.len() as f64;
    (energies.iter().sum::<f64>() / count, energies.iter().map(|wh| wh * wh).sum::<f64>() / count)
}

/// One minute of one household's meter. All energies in mWh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// Start of the minute, ms since the Unix epoch (UTC).
    pub start_ms: u64,
    /// Energy the household's appliances used.
    pub load_mwh: u64,
    /// Energy the PV system produced (0 without PV).
    pub pv_mwh: u64,
    /// Energy that went into the battery (before the round-trip loss).
    pub battery_charge_mwh: u64,
    /// Energy the battery delivered.
    pub battery_discharge_mwh: u64,
    /// Energy stored in the battery at the end of the minute.
    pub battery_soc_mwh: u64,
    /// What the meter reports as consumed: load plus battery charge.
    pub consumed_mwh: u64,
    /// What the meter reports as produced: PV plus battery discharge.
    pub produced_mwh: u64,
}

impl Minute {
    /// Energy drawn from the grid in this minute: `max(0, consumed - produced)`.
    pub fn import_mwh(&self) -> u64 {
        self.consumed_mwh.saturating_sub(self.produced_mwh)
    }

    /// Energy fed into the grid in this minute: `max(0, produced - consumed)`.
    pub fn export_mwh(&self) -> u64 {
        self.produced_mwh.saturating_sub(self.consumed_mwh)
    }
}

/// Whether a simulation gives what happens or what the household's agent expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The actual minutes: noise, appliance events, the cloud path.
    Actual,
    /// The expectation: the smooth load with the events' mean, the forecast clear-sky index.
    Expected,
}

/// Everything the simulation needs about one local day.
struct Day {
    day: LocalDay,
    start_ms: i64,
    /// Smooth load per minute of the day, Wh (without noise).
    smooth_wh: Vec<f64>,
    /// Appliance events per minute (actual) or their expectation (expected), Wh.
    events_wh: Vec<f64>,
    weather: DayWeather,
    noise: Rng,
}

/// What a simulation needs to know, apart from where it is.
struct Params {
    household: Household,
    seed: u64,
    latitude_deg: f64,
    longitude_deg: f64,
    utc_offset_minutes: i32,
    mode: Mode,
}

/// One household's meter, minute by minute. Deterministic in (community seed, household,
/// time): [`MeterSim::new`] starts at local midnight of the day that contains `start_ms` with
/// an empty battery and steps forward to `start_ms`, so a driver that restarts mid-day gets the
/// same minutes as one that ran through.
pub struct MeterSim {
    params: Params,
    /// Start of the next minute, UTC ms.
    now_ms: i64,
    soc_mwh: u64,
    today: Day,
    /// (year, the dynamised profile's energy over that year).
    year_energy: (i64, f64),
}

/// The latest time the simulation accepts: 10000-01-01T00:00Z.
pub(crate) const MAX_TIME_MS: u64 = 253_402_300_800_000;

impl MeterSim {
    /// The meter of `household`, about to report the minute that contains `start_ms`.
    pub fn new(community: &Community, household: usize, start_ms: u64) -> Result<MeterSim, Error> {
        MeterSim::start(community, household, start_ms, Mode::Actual)
    }

    pub(crate) fn start(
        community: &Community,
        household: usize,
        start_ms: u64,
        mode: Mode,
    ) -> Result<MeterSim, Error> {
        let household = community.household(household)?.clone();
        if start_ms > MAX_TIME_MS {
            return Err(Error::Time(start_ms));
        }
        let config = &community.config;
        let params = Params {
            household,
            seed: config.seed,
            latitude_deg: config.latitude_deg,
            longitude_deg: config.longitude_deg,
            utc_offset_minutes: config.utc_offset_minutes,
            mode,
        };
        let start_ms = start_ms as i64;
        let day = LocalDay::containing(start_ms, config.utc_offset_minutes);
        let mut year_energy = (i64::MIN, 0.0);
        let today = plan_day(&params, &mut year_energy, day);
        let target = start_ms - (start_ms - today.start_ms).rem_euclid(MINUTE_MS);
        let mut sim = MeterSim { now_ms: today.start_ms, soc_mwh: 0, today, year_energy, params };
        // Without a battery the expectation has no state to carry from one minute to the next.
        if mode == Mode::Expected && sim.params.household.battery.is_none() {
            sim.now_ms = target;
        }
        while sim.now_ms < target {
            sim.next_minute();
        }
        Ok(sim)
    }

    /// The household this meter belongs to.
    pub fn household(&self) -> &Household {
        &self.params.household
    }

    /// The minute starting at the current time; advances the time by 60,000 ms.
    pub fn next_minute(&mut self) -> Minute {
        if self.now_ms >= self.today.start_ms + DAY_MS {
            self.today = plan_day(&self.params, &mut self.year_energy, self.today.day.next());
        }
        let params = &self.params;
        let minute_of_day = ((self.now_ms - self.today.start_ms) / MINUTE_MS) as usize;
        let smooth = self.today.smooth_wh[minute_of_day];
        let noise_draw = self.today.noise.normal();
        let load_wh = match params.mode {
            Mode::Actual => {
                let sigma = params.household.habits.noise_sigma;
                smooth * (sigma * noise_draw - sigma * sigma / 2.0).exp()
            }
            Mode::Expected => smooth,
        } + self.today.events_wh[minute_of_day];
        let pv_wh = match &params.household.pv {
            Some(pv) => {
                let clear_sky_index = match params.mode {
                    Mode::Actual => self.today.weather.next_minute_index(),
                    Mode::Expected => self.today.weather.forecast_index,
                };
                let middle = self.now_ms + MINUTE_MS / 2;
                solar::pv_power_w(
                    params.latitude_deg,
                    params.longitude_deg,
                    pv,
                    middle,
                    clear_sky_index,
                ) / 60.0
            }
            None => 0.0,
        };
        let load_mwh = (load_wh * 1_000.0).round().max(0.0) as u64;
        let pv_mwh = (pv_wh * 1_000.0).round().max(0.0) as u64;
        let minutes_left = (MINUTES_PER_DAY - minute_of_day) as u64;
        let (charge, discharge, soc) = match &params.household.battery {
            Some(battery) => battery_minute(battery, self.soc_mwh, load_mwh, pv_mwh, minutes_left),
            None => (0, 0, 0),
        };
        self.soc_mwh = soc;
        let start_ms = self.now_ms.max(0) as u64;
        self.now_ms += MINUTE_MS;
        Minute {
            start_ms,
            load_mwh,
            pv_mwh,
            battery_charge_mwh: charge,
            battery_discharge_mwh: discharge,
            battery_soc_mwh: soc,
            consumed_mwh: load_mwh + charge,
            produced_mwh: pv_mwh + discharge,
        }
    }
}

/// The household's smooth load, appliance events and weather for `day`.
fn plan_day(params: &Params, year_energy: &mut (i64, f64), day: LocalDay) -> Day {
    let profile = LoadProfile::h25();
    if year_energy.0 != day.year {
        *year_energy = (day.year, profile.year_energy(&day));
    }
    let household = &params.household;
    let habits = household.habits;
    let annual_wh = household.annual_kwh * 1_000.0;
    let quarters = profile.day(day.month, day.day_type());
    let scale = (1.0 - habits.event_share) * annual_wh / year_energy.1
        * dynamisation(day.day_of_year)
        / 15.0;
    let smooth_wh: Vec<f64> = (0..MINUTES_PER_DAY as i64)
        .map(|minute| {
            let profile_minute =
                (minute - i64::from(habits.shift_minutes)).rem_euclid(MINUTES_PER_DAY as i64);
            quarters[profile_minute as usize / 15] * scale
        })
        .collect();
    let event_wh = habits.event_share * annual_wh / f64::from(day.days_in_year);
    // Appliances run when people are up: in proportion to the load above the night's minimum.
    let night = smooth_wh.iter().copied().fold(f64::INFINITY, f64::min);
    let awake: Vec<f64> = smooth_wh.iter().map(|wh| wh - night).collect();
    let awake_total: f64 = awake.iter().sum();
    let mut noise =
        Rng::new(params.seed, Stream::LoadDay, &[household.index as u64, day.number as u64]);
    let events_wh = match params.mode {
        Mode::Expected => awake.iter().map(|wh| event_wh * wh / awake_total).collect(),
        Mode::Actual => {
            let mut events = vec![0.0; MINUTES_PER_DAY];
            // The mean number of events, split into its whole part and one more with the
            // probability of its fraction: a few events every day, not a Poisson lottery.
            let mean_count = event_wh / event_moments().0;
            let count =
                mean_count.floor() as usize + usize::from(noise.uniform() < mean_count.fract());
            for _ in 0..count {
                let (_, watts, minutes) = APPLIANCES[noise.below(APPLIANCES.len())];
                let start = minute_at_share(&awake, noise.uniform() * awake_total);
                let start = start.min(MINUTES_PER_DAY - minutes);
                for slot in &mut events[start..start + minutes] {
                    *slot += watts / 60.0;
                }
            }
            events
        }
    };
    Day {
        start_ms: day.start_utc_ms(params.utc_offset_minutes),
        weather: DayWeather::new(params.seed, params.latitude_deg, day.number, day.day_of_year),
        day,
        smooth_wh,
        events_wh,
        noise,
    }
}

/// The first minute by which the running sum of `values` reaches `share`.
fn minute_at_share(values: &[f64], share: f64) -> usize {
    let mut sum = 0.0;
    for (minute, value) in values.iter().enumerate() {
        sum += value;
        if sum > share {
            return minute;
        }
    }
    values.len() - 1
}

/// One minute of the battery with `soc` mWh stored, `load` and `pv` mWh in the minute and
/// `minutes_left` minutes to local midnight (this one included): (charge, discharge, new soc).
pub(crate) fn battery_minute(
    battery: &Battery,
    soc: u64,
    load: u64,
    pv: u64,
    minutes_left: u64,
) -> (u64, u64, u64) {
    let power = battery.max_power_w * 1_000 / 60;
    let capacity = battery.capacity_wh * 1_000;
    // The most the battery may hold after this minute and still be empty at midnight.
    let ceiling = capacity.min(minutes_left.saturating_sub(1).saturating_mul(power));
    let shortfall = load.saturating_sub(pv);
    if soc > ceiling {
        let discharge = (soc - ceiling).max(shortfall).min(power).min(soc);
        return (0, discharge, soc - discharge);
    }
    let surplus = pv.saturating_sub(load);
    if surplus > 0 {
        let room = ceiling - soc;
        let charge = surplus.min(power).min((room as f64 / battery.efficiency).floor() as u64);
        let stored = ((charge as f64 * battery.efficiency).floor() as u64).min(room);
        return (charge, 0, soc + stored);
    }
    let discharge = shortfall.min(power).min(soc);
    (0, discharge, soc - discharge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any day of any loads and PV: the battery stays within capacity and power, never
        /// charges and discharges at once, charges from surplus only, discharges beyond the
        /// shortfall only when it must to be empty by midnight, keeps its books in whole mWh
        /// and ends the day empty.
        #[test]
        fn the_battery_keeps_its_limits(
            capacity_wh in 1u64..20_000,
            max_power_w in 1u64..10_000,
            efficiency in 0.5f64..=1.0,
            flows in proptest::collection::vec((0u64..200_000, 0u64..200_000), MINUTES_PER_DAY),
        ) {
            let battery = Battery { capacity_wh, max_power_w, efficiency };
            let power = max_power_w * 1_000 / 60;
            let mut soc = 0;
            for (minute, (load, pv)) in flows.iter().enumerate() {
                let minutes_left = (MINUTES_PER_DAY - minute) as u64;
                let (charge, discharge, next) = battery_minute(&battery, soc, *load, *pv, minutes_left);
                prop_assert!(next <= capacity_wh * 1_000);
                prop_assert!(charge <= power && discharge <= power);
                prop_assert!(charge == 0 || discharge == 0);
                prop_assert!(charge <= pv.saturating_sub(*load));
                if discharge > load.saturating_sub(*pv) {
                    prop_assert!(soc > (minutes_left - 1) * power, "forced only when it must");
                }
                prop_assert_eq!(next, soc + (charge as f64 * efficiency).floor() as u64 - discharge);
                prop_assert!(next <= (minutes_left - 1) * power, "it can still be empty by midnight");
                soc = next;
            }
            prop_assert_eq!(soc, 0);
        }
    }

    #[test]
    fn a_full_battery_covers_the_shortfall_and_empties_before_midnight() {
        let battery = Battery { capacity_wh: 6_000, max_power_w: 3_000, efficiency: 0.9 };
        // Power: 50,000 mWh per minute. With 1,000 minutes left it simply covers the load.
        assert_eq!(battery_minute(&battery, 6_000_000, 20_000, 0, 1_000), (0, 20_000, 5_980_000));
        // With 100 minutes left it may hold at most 99 × 50,000 = 4,950,000 mWh after this
        // minute: holding 4,990,000 it sheds 40,000, half into the load, half into the grid.
        assert_eq!(battery_minute(&battery, 4_990_000, 20_000, 0, 100), (0, 40_000, 4_950_000));
        // Holding more than it could ever shed, it discharges at full power.
        assert_eq!(battery_minute(&battery, 6_000_000, 20_000, 0, 100), (0, 50_000, 5_950_000));
        // Surplus charges at 90 %, but not beyond what it can shed by midnight.
        assert_eq!(battery_minute(&battery, 0, 10_000, 40_000, 1_000), (30_000, 0, 27_000));
        assert_eq!(
            battery_minute(&battery, 4_940_000, 10_000, 40_000, 100),
            (11_111, 0, 4_949_999)
        );
        // Last minute: whatever is left goes out.
        assert_eq!(battery_minute(&battery, 30_000, 0, 0, 1), (0, 30_000, 0));
    }
}
