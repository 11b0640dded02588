//! Behaviour tests of the whole model: profiles look like what they model.

use crate::calendar::{DayType, LocalDay, days_from_civil};
use crate::meter::{Mode, event_moments};
use crate::profile::{LoadProfile, QUARTERS, dynamisation};
use crate::{Community, CommunityConfig, Error, Fate, MeterSim, Minute, Pricing, Side, Tariffs};
use crate::{forecast, plan_order, reading_fate, solar};

fn community() -> Community {
    Community::new(&CommunityConfig::default()).unwrap()
}

/// The local day of a date in the community's time zone.
fn day(community: &Community, year: i64, month: u32, date: u32) -> (LocalDay, u64) {
    let day = LocalDay::from_number(days_from_civil(year, month, date));
    (day, day.start_utc_ms(community.config.utc_offset_minutes) as u64)
}

fn minutes(community: &Community, household: usize, start_ms: u64, count: usize) -> Vec<Minute> {
    let mut meter = MeterSim::new(community, household, start_ms).unwrap();
    (0..count).map(|_| meter.next_minute()).collect()
}

fn kwh(minutes: &[Minute], field: fn(&Minute) -> u64) -> f64 {
    minutes.iter().map(field).sum::<u64>() as f64 / 1e6
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let (mean_a, mean_b) = (mean(a), mean(b));
    let covariance: f64 = a.iter().zip(b).map(|(x, y)| (x - mean_a) * (y - mean_b)).sum();
    let spread =
        |values: &[f64], mean: f64| values.iter().map(|x| (x - mean).powi(2)).sum::<f64>().sqrt();
    covariance / (spread(a, mean_a) * spread(b, mean_b))
}

#[test]
fn the_community_has_the_configured_make_up() {
    let community = community();
    let households = &community.households;
    assert_eq!(households.len(), 12);
    let names: std::collections::BTreeSet<&str> =
        households.iter().map(|each| each.name.as_str()).collect();
    assert_eq!(names.len(), 12);
    assert!(names.contains("house01") && names.contains("house12"));
    let prosumers: Vec<usize> =
        households.iter().filter(|each| each.pv.is_some()).map(|each| each.index).collect();
    assert_eq!(prosumers.len(), 6);
    assert_eq!(households.iter().filter(|each| each.battery.is_some()).count(), 3);
    assert!(households.iter().all(|each| each.battery.is_none() || each.pv.is_some()));
    assert!(households.iter().all(|each| (2_500.0..=5_000.0).contains(&each.annual_kwh)));
    // A third of the six consumers hold a contract, each with a prosumer, priced locally.
    assert_eq!(community.contracts.len(), 2);
    let (low, high) = community.config.tariffs.local_range();
    for contract in &community.contracts {
        assert!(households[contract.consumer].pv.is_none());
        assert!(prosumers.contains(&contract.prosumer));
        assert!((low..=high).contains(&contract.price));
        // Twice the consumer's mean power over a 15-minute slot.
        let mean_slot_wh = households[contract.consumer].annual_kwh * 1_000.0 / 8_760.0 / 4.0;
        assert!(
            (contract.max_energy_mwh_per_slot as f64 / 1_000.0 - 2.0 * mean_slot_wh).abs() <= 1.0
        );
    }
    // With no one producing, no one can hold a contract.
    let nobody =
        Community::new(&CommunityConfig { prosumer_share: 0.0, ..CommunityConfig::default() })
            .unwrap();
    assert!(nobody.contracts.is_empty() && nobody.households.iter().all(|each| each.pv.is_none()));
}

#[test]
fn the_same_seed_gives_the_same_community_and_minutes() {
    let (_, start) = day(&community(), 2025, 5, 14);
    let first = community();
    assert_eq!(first, community());
    let prosumer = first.households.iter().position(|each| each.battery.is_some()).unwrap();
    assert_eq!(
        minutes(&first, prosumer, start, 1_440),
        minutes(&community(), prosumer, start, 1_440)
    );
    let other = Community::new(&CommunityConfig { seed: 2, ..CommunityConfig::default() }).unwrap();
    assert_ne!(first.households, other.households);
    assert_ne!(minutes(&first, 0, start, 1_440), minutes(&other, 0, start, 1_440));
    // No two households of one community look alike.
    let loads: Vec<Vec<u64>> = (0..12)
        .map(|household| {
            minutes(&first, household, start, 1_440).iter().map(|minute| minute.load_mwh).collect()
        })
        .collect();
    for (index, load) in loads.iter().enumerate() {
        assert!(loads[index + 1..].iter().all(|other| other != load));
    }
}

#[test]
fn a_meter_restarted_mid_day_gives_the_same_minutes() {
    let community = community();
    let (_, start) = day(&community, 2025, 6, 20);
    let minute_of_day = 14 * 60 + 37;
    let rest_of_day = 1_440 - minute_of_day;
    for household in 0..community.households.len() {
        let through = minutes(&community, household, start, 2 * 1_440);
        // 2025-06-21T14:37:12.345 local: the first minute is the one that contains it.
        let restart = start + (1_440 + minute_of_day as u64) * 60_000 + 12_345;
        let restarted = minutes(&community, household, restart, 600);
        assert_eq!(restarted[0].start_ms, restart - 12_345);
        assert_eq!(&through[1_440 + minute_of_day..], &restarted[..rest_of_day]);
        // The rest crosses midnight into a day that starts with an empty battery.
        let next_day =
            minutes(&community, household, start + 2 * 1_440 * 60_000, 600 - rest_of_day);
        assert_eq!(&restarted[rest_of_day..], &next_day[..]);
    }
}

#[test]
fn daily_energy_matches_the_annual_figure() {
    // 56 days spread evenly over 2025 (6 or 7 days apart from 5 January): all months, all weekdays.
    let community = community();
    let (mean_event, mean_square_event) = event_moments();
    let (first, _) = day(&community, 2025, 1, 5);
    let days: Vec<u64> = (0..56)
        .map(|k| {
            LocalDay::from_number(first.number + k * 365 / 56)
                .start_utc_ms(community.config.utc_offset_minutes) as u64
        })
        .collect();
    for household in &community.households {
        let day_kwh = |start: u64, mode: Mode| {
            let mut meter = MeterSim::start(&community, household.index, start, mode).unwrap();
            (0..1_440).map(|_| meter.next_minute().load_mwh).sum::<u64>() as f64 / 1e6
        };
        let simulated: f64 = days.iter().map(|start| day_kwh(*start, Mode::Actual)).sum();
        let expected: f64 = days.iter().map(|start| day_kwh(*start, Mode::Expected)).sum();
        let target = household.annual_kwh * days.len() as f64 / 365.0;
        // Which days were drawn moves the profile's mean a little (seasons, weekdays).
        assert!(
            (expected - target).abs() < 0.01 * target,
            "{}: {expected:.1} vs {target:.1}",
            household.name
        );
        // The day's appliance energy is a sum of N events of energy X, N = ⌊λ⌋ or ⌊λ⌋ + 1:
        // variance E[N]·Var(X) + Var(N)·E[X]². The smooth part's minute noise averages out
        // over 1,440 minutes (< 0.3 % a day) and is left out.
        let lambda =
            household.habits.event_share * household.annual_kwh * 1_000.0 / 365.0 / mean_event;
        let fraction = lambda.fract();
        let day_variance = lambda * (mean_square_event - mean_event.powi(2))
            + fraction * (1.0 - fraction) * mean_event.powi(2);
        let sigma = (days.len() as f64 * day_variance).sqrt() / 1_000.0;
        let tolerance = 3.5 * sigma + 0.01 * target;
        assert!(
            (simulated - target).abs() < tolerance,
            "{}: {simulated:.1} kWh in {} days, expected {target:.1} ± {tolerance:.1}",
            household.name,
            days.len()
        );
        assert!(
            tolerance < 0.07 * target,
            "{}: tolerance {tolerance:.1} of {target:.1} kWh",
            household.name
        );
    }
}

#[test]
fn the_expected_load_of_a_year_is_the_annual_figure() {
    let community = community();
    let (_, start) = day(&community, 2024, 1, 1); // a leap year
    for household in [0, 5] {
        let mut meter = MeterSim::start(&community, household, start, Mode::Expected).unwrap();
        let total: u64 = (0..366 * 1_440).map(|_| meter.next_minute().load_mwh).sum();
        let annual = community.households[household].annual_kwh;
        assert!(
            (total as f64 / 1e6 - annual).abs() < 0.001 * annual,
            "{total} mWh for {annual} kWh"
        );
    }
}

#[test]
fn the_daily_load_shape_follows_the_standard_profile() {
    // The standard profile for a set of days is the sum of each day's month and day-type
    // column, dynamised; a household's mean day over the same days must follow it.
    let community = community();
    let profile = LoadProfile::h25();
    let (first, _) = day(&community, 2025, 1, 1);
    let year: Vec<LocalDay> =
        (0..365).map(|offset| LocalDay::from_number(first.number + offset)).collect();
    let seasons: [(&str, &[u32], DayType); 3] = [
        ("winter workdays", &[11, 12, 1, 2], DayType::Workday),
        ("summer workdays", &[5, 6, 7, 8], DayType::Workday),
        ("Sundays", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], DayType::Sunday),
    ];
    for (name, months, day_type) in seasons {
        let days: Vec<&LocalDay> = year
            .iter()
            .filter(|each| months.contains(&each.month) && each.day_type() == day_type)
            .collect();
        let mut standard = [0.0; QUARTERS];
        for each in &days {
            for (quarter, value) in profile.day(each.month, each.day_type()).iter().enumerate() {
                standard[quarter] += value * dynamisation(each.day_of_year);
            }
        }
        for household in &community.households {
            let mut quarters = [0.0; QUARTERS];
            for each in &days {
                let start = each.start_utc_ms(community.config.utc_offset_minutes) as u64;
                for (minute, value) in
                    minutes(&community, household.index, start, 1_440).iter().enumerate()
                {
                    quarters[minute / 15] += value.load_mwh as f64;
                }
            }
            let correlation = pearson(&quarters, &standard);
            assert!(
                correlation > 0.9,
                "{} over {} {name}: r = {correlation:.3}",
                household.name,
                days.len()
            );
        }
    }
}

#[test]
fn pv_is_dark_at_night_peaks_near_noon_and_is_larger_in_june() {
    let community = community();
    let (latitude, longitude) = (community.config.latitude_deg, community.config.longitude_deg);
    let elevation = |ms: u64| {
        90.0 - solar::sun(latitude, longitude, ms as i64)
            .cos_zenith
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees()
    };
    let (_, june) = day(&community, 2025, 6, 1);
    let (_, december) = day(&community, 2025, 12, 1);
    for household in community.households.iter().filter(|each| each.pv.is_some()) {
        let pv = household.pv.unwrap();
        let june_minutes = minutes(&community, household.index, june, 30 * 1_440);
        let december_minutes = minutes(&community, household.index, december, 31 * 1_440);
        for minute in june_minutes.iter().chain(&december_minutes) {
            let (start, end) = (elevation(minute.start_ms), elevation(minute.start_ms + 60_000));
            if start < 0.0 && end < 0.0 {
                assert_eq!(minute.pv_mwh, 0, "{} produces at night", household.name);
            }
            if start > 10.0 && end > 10.0 {
                assert!(minute.pv_mwh > 0, "{} is dark in daylight", household.name);
            }
        }
        let (june_kwh, december_kwh) =
            (kwh(&june_minutes, |m| m.pv_mwh), kwh(&december_minutes, |m| m.pv_mwh));
        assert!(
            june_kwh > 2.0 * december_kwh,
            "{}: June {june_kwh:.0}, December {december_kwh:.0}",
            household.name
        );
        // June: 90–200 kWh per kWp in central Europe.
        assert!(
            (90.0..200.0).contains(&(june_kwh / pv.kwp)),
            "{}: {june_kwh:.0} kWh in June",
            household.name
        );
        // On a clear day the peak lies within 1.5 h of solar noon, and a clear June day gives
        // 4–7 kWh per kWp.
        for date in [(3, 21), (6, 21), (9, 21), (12, 21)] {
            let (_, start) = day(&community, 2025, date.0, date.1);
            let power: Vec<f64> = (0..1_440)
                .map(|minute| {
                    solar::pv_power_w(
                        latitude,
                        longitude,
                        &pv,
                        start as i64 + minute * 60_000 + 30_000,
                        1.0,
                    )
                })
                .collect();
            let peak = (0..1_440).max_by(|a, b| power[*a].total_cmp(&power[*b])).unwrap() as i64;
            let noon = solar::solar_noon_ms(longitude, start as i64 + 43_200_000);
            let offset_minutes = (start as i64 + peak * 60_000 - noon) / 60_000;
            assert!(
                offset_minutes.abs() <= 90,
                "{} peaks {offset_minutes} min from noon",
                household.name
            );
            if date.0 == 6 {
                let clear_kwh_per_kwp = power.iter().sum::<f64>() / 60.0 / 1_000.0 / pv.kwp;
                assert!(
                    (4.0..7.5).contains(&clear_kwh_per_kwp),
                    "clear June day {clear_kwh_per_kwp:.2}"
                );
            }
        }
    }
}

#[test]
fn the_battery_keeps_its_limits_and_the_books_balance() {
    let community = community();
    for household in community.households.iter() {
        let (_, start) = day(&community, 2025, 1, 3);
        // Two days in each season.
        for offset in [0, 90, 91, 180, 181, 270, 271] {
            let start = start + offset * 86_400_000;
            let day_minutes = minutes(&community, household.index, start, 1_440);
            let mut soc = 0;
            for minute in &day_minutes {
                assert_eq!(minute.consumed_mwh, minute.load_mwh + minute.battery_charge_mwh);
                assert_eq!(minute.produced_mwh, minute.pv_mwh + minute.battery_discharge_mwh);
                let Some(battery) = household.battery else {
                    assert_eq!(
                        minute.battery_charge_mwh
                            + minute.battery_discharge_mwh
                            + minute.battery_soc_mwh,
                        0
                    );
                    continue;
                };
                let power = battery.max_power_w * 1_000 / 60;
                assert!(minute.battery_soc_mwh <= battery.capacity_wh * 1_000);
                assert!(
                    minute.battery_charge_mwh <= power && minute.battery_discharge_mwh <= power
                );
                assert!(minute.battery_charge_mwh == 0 || minute.battery_discharge_mwh == 0);
                // It charges from surplus only, so it never draws from the grid to charge.
                assert!(minute.battery_charge_mwh <= minute.pv_mwh.saturating_sub(minute.load_mwh));
                let stored = (minute.battery_charge_mwh as f64 * battery.efficiency).floor() as u64;
                assert_eq!(minute.battery_soc_mwh, soc + stored - minute.battery_discharge_mwh);
                soc = minute.battery_soc_mwh;
            }
            assert_eq!(day_minutes[1_439].battery_soc_mwh, 0, "the day ends empty");
            if household.battery.is_some() && offset == 180 {
                assert!(
                    day_minutes.iter().any(|minute| minute.battery_soc_mwh > 1_000_000),
                    "it is used in summer"
                );
            }
        }
    }
}

#[test]
fn reading_fates_follow_the_configured_shares() {
    let config = CommunityConfig {
        late_share: 0.1,
        estimated_share: 0.05,
        missing_share: 0.02,
        ..CommunityConfig::default()
    };
    let community = Community::new(&config).unwrap();
    let (_, start) = day(&community, 2025, 3, 1);
    let mut counts = [0usize; 4];
    let mut delays = Vec::new();
    let intervals = 20_000;
    for household in 0..12 {
        for interval in 0..intervals {
            let interval_start = start + interval * 60_000;
            let fate = reading_fate(&community, household, interval_start).unwrap();
            assert_eq!(fate, reading_fate(&community, household, interval_start).unwrap());
            match fate {
                Fate::OnTime => counts[0] += 1,
                Fate::Late { delay_ms } => {
                    counts[1] += 1;
                    delays.push(delay_ms);
                }
                Fate::Estimated => counts[2] += 1,
                Fate::Missing => counts[3] += 1,
            }
        }
    }
    let total = (12 * intervals) as f64;
    for (count, share) in counts.iter().zip([0.83, 0.1, 0.05, 0.02]) {
        // 240,000 draws: one standard deviation is at most 0.001.
        assert!(
            (*count as f64 / total - share).abs() < 0.003,
            "{count} of {total} for share {share}"
        );
    }
    assert!(delays.iter().all(|delay| (60_000..=7_200_000).contains(delay)));
    let mean_delay = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
    assert!((mean_delay - 660_000.0).abs() < 20_000.0, "mean delay {mean_delay}");
    assert!(delays.iter().any(|delay| *delay > 45 * 60_000), "some miss a 30-minute deadline");
    let punctual = Community::new(&CommunityConfig {
        late_share: 0.0,
        estimated_share: 0.0,
        missing_share: 0.0,
        ..config
    })
    .unwrap();
    assert!(
        (0..1_000).all(|interval| reading_fate(&punctual, 3, start + interval * 60_000).unwrap()
            == Fate::OnTime)
    );
}

#[test]
fn forecasts_are_close_to_but_not_the_actual_slots() {
    let community = community();
    for date in [(4, 14), (8, 2), (11, 20)] {
        let (_, start) = day(&community, 2025, date.0, date.1);
        for household in &community.households {
            let actual = minutes(&community, household.index, start, 1_440);
            let (mut error, mut energy, mut exact) = (0.0, 0.0, 0);
            let (mut forecast_day, mut actual_day) = (0.0, 0.0);
            for slot in 0..96 {
                let slot_start = start + slot * 900_000;
                let expected = forecast(&community, household.index, slot_start, 900_000).unwrap();
                let slot_minutes = &actual[slot as usize * 15..][..15];
                let consumed: u64 = slot_minutes.iter().map(|minute| minute.consumed_mwh).sum();
                let produced: u64 = slot_minutes.iter().map(|minute| minute.produced_mwh).sum();
                error += expected.consumed_mwh.abs_diff(consumed) as f64
                    + expected.produced_mwh.abs_diff(produced) as f64;
                energy += (consumed + produced) as f64;
                exact += usize::from(
                    expected.consumed_mwh == consumed && expected.produced_mwh == produced,
                );
                forecast_day += expected.load_mwh as f64;
                actual_day += slot_minutes.iter().map(|minute| minute.load_mwh).sum::<u64>() as f64;
            }
            let relative = error / energy;
            assert!(
                relative > 0.05 && relative < 0.7,
                "{} {date:?}: slot error {relative:.2}",
                household.name
            );
            assert!(exact < 10, "{}: {exact} slots forecast exactly", household.name);
            assert!(
                (forecast_day / actual_day - 1.0).abs() < 0.25,
                "{}: day load {forecast_day} vs {actual_day}",
                household.name
            );
        }
    }
}

#[test]
fn agents_trade_on_the_right_side_within_the_tariffs() {
    let tariffs = Tariffs { retail: 30, feed_in: 8, grid_fee: 4 };
    let (low, high) = tariffs.local_range();
    for pricing in [Pricing::Fixed, Pricing::Moving] {
        let community =
            Community::new(&CommunityConfig { pricing, ..CommunityConfig::default() }).unwrap();
        let (_, start) = day(&community, 2025, 6, 18);
        let (mut asks, mut bids) = (0, 0);
        for household in &community.households {
            let under_contract = community.contract_of(household.index).is_some();
            for slot in 0..96 {
                let slot_forecast =
                    forecast(&community, household.index, start + slot * 900_000, 900_000).unwrap();
                let mut last_price = None;
                for progress in [0.0, 0.5, 1.0] {
                    let order =
                        plan_order(&community, household.index, &slot_forecast, &tariffs, progress)
                            .unwrap();
                    let Some(order) = order else { continue };
                    assert!(!under_contract, "a consumer under contract does not bid");
                    assert!((low..=high).contains(&order.price));
                    assert!(order.energy_mwh >= 10_000 && order.energy_mwh % 1_000 == 0);
                    match order.side {
                        Side::Ask => {
                            assert!(slot_forecast.net_mwh() >= order.energy_mwh as i128);
                            asks += 1;
                        }
                        Side::Bid => {
                            assert!(-slot_forecast.net_mwh() >= order.energy_mwh as i128);
                            bids += 1;
                        }
                    }
                    if pricing == Pricing::Moving {
                        // Asks come down from the upper bound, bids go up from the lower.
                        let start_price = if order.side == Side::Ask { high } else { low };
                        if progress == 0.0 {
                            assert_eq!(order.price, start_price);
                        }
                        if let Some(last) = last_price {
                            assert!(
                                order.price.abs_diff(start_price)
                                    >= u64::abs_diff(last, start_price)
                            );
                        }
                        last_price = Some(order.price);
                    }
                }
            }
        }
        assert!(asks > 50 && bids > 50, "{pricing:?}: {asks} asks and {bids} bids in a June day");
    }
    // A prosumer with surplus at noon asks, a consumer without contract bids in the evening.
    let community = community();
    let (_, start) = day(&community, 2025, 6, 18);
    let noon = start + 12 * 3_600_000;
    let prosumer = community
        .households
        .iter()
        .find(|each| each.pv.is_some() && each.battery.is_none())
        .unwrap()
        .index;
    let at_noon = forecast(&community, prosumer, noon, 900_000).unwrap();
    assert_eq!(
        plan_order(&community, prosumer, &at_noon, &tariffs, 0.5).unwrap().map(|order| order.side),
        Some(Side::Ask)
    );
    let consumer = community
        .households
        .iter()
        .find(|each| each.pv.is_none() && community.contract_of(each.index).is_none())
        .unwrap()
        .index;
    let evening = forecast(&community, consumer, start + 20 * 3_600_000, 900_000).unwrap();
    assert_eq!(
        plan_order(&community, consumer, &evening, &tariffs, 0.5).unwrap().map(|order| order.side),
        Some(Side::Bid)
    );
    // No room between feed-in and retail minus fee: nothing to trade.
    let squeezed = Tariffs { retail: 10, feed_in: 8, grid_fee: 4 };
    assert_eq!(plan_order(&community, consumer, &evening, &squeezed, 0.5), Ok(None));
    assert_eq!(
        plan_order(&community, consumer, &evening, &tariffs, f64::NAN),
        Err(Error::Progress)
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let valid = CommunityConfig::default();
    let cases: Vec<(CommunityConfig, Error)> = vec![
        (CommunityConfig { households: 0, ..valid.clone() }, Error::Households(0)),
        (
            CommunityConfig { prosumer_share: 1.5, ..valid.clone() },
            Error::Share { name: "prosumer_share", value: 1.5 },
        ),
        (
            CommunityConfig { missing_share: -0.1, ..valid.clone() },
            Error::Share { name: "missing_share", value: -0.1 },
        ),
        (
            CommunityConfig { late_share: 0.6, estimated_share: 0.5, ..valid.clone() },
            Error::Fates(0.6 + 0.5 + 0.01),
        ),
        (
            CommunityConfig { latitude_deg: 91.0, ..valid.clone() },
            Error::Site { latitude_deg: 91.0, longitude_deg: 8.68 },
        ),
        (CommunityConfig { utc_offset_minutes: 900, ..valid.clone() }, Error::UtcOffset(900)),
        (CommunityConfig { slot_minutes: 0, ..valid.clone() }, Error::SlotMinutes(0)),
    ];
    for (config, error) in cases {
        assert_eq!(Community::new(&config), Err(error));
    }
    let nan = Community::new(&CommunityConfig { battery_share: f64::NAN, ..valid });
    assert!(matches!(nan, Err(Error::Share { name: "battery_share", .. })), "{nan:?}");
    let community = community();
    let unknown = Error::UnknownHousehold { index: 12, households: 12 };
    assert_eq!(MeterSim::new(&community, 12, 0).err(), Some(unknown.clone()));
    assert_eq!(reading_fate(&community, 12, 0), Err(unknown.clone()));
    assert_eq!(forecast(&community, 12, 0, 900_000), Err(unknown.clone()));
    let window = forecast(&community, 0, 0, 900_000).unwrap();
    assert_eq!(plan_order(&community, 12, &window, &community.config.tariffs, 0.0), Err(unknown));
    for (start_ms, length_ms) in [(30_000, 900_000), (0, 0), (0, 90_000_000), (0, 61_000)] {
        assert_eq!(
            forecast(&community, 0, start_ms, length_ms),
            Err(Error::Window { start_ms, length_ms })
        );
    }
    assert_eq!(MeterSim::new(&community, 0, u64::MAX).err(), Some(Error::Time(u64::MAX)));
}
