//! Prints one day of one household of the default community, hour by hour, and optionally its
//! year.
//!
//! `cargo run -p households --example day -- [YYYY-MM-DD] [household index] [--year]`
//! (defaults: 2025-06-21, the first prosumer with a battery).

#![allow(clippy::print_stdout)]

use households::{Community, CommunityConfig, MeterSim, Minute};

/// ms since the epoch of local midnight of `date` (YYYY-MM-DD) in a community at `offset` minutes.
fn midnight_ms(date: &str, offset_minutes: i32) -> Option<u64> {
    let mut parts = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    let leap = |year: i64| (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days: i64 = (1970..year).map(|each| if leap(each) { 366 } else { 365 }).sum::<i64>()
        + month_days.iter().take(usize::try_from(month - 1).ok()?).sum::<i64>()
        + day
        - 1;
    u64::try_from(days * 86_400_000 - i64::from(offset_minutes) * 60_000).ok()
}

fn kwh(mwh: u64) -> f64 {
    mwh as f64 / 1e6
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let config = CommunityConfig::default();
    let community = Community::new(&config).expect("the default config is valid");
    let date =
        arguments.iter().find(|argument| argument.contains('-') && !argument.starts_with("--"));
    let date = date.map_or("2025-06-21", String::as_str);
    let household = arguments
        .iter()
        .find_map(|argument| argument.parse::<usize>().ok())
        .or_else(|| community.households.iter().position(|each| each.battery.is_some()))
        .unwrap_or(0);
    let start = midnight_ms(date, config.utc_offset_minutes).expect("a date as YYYY-MM-DD");
    let mut meter =
        MeterSim::new(&community, household, start).expect("a household of the community");
    println!("{:#?}", meter.household());
    println!("{date}, local time UTC{:+}min; kWh per hour", config.utc_offset_minutes);
    println!("hour   load     pv  charge  disch.  soc_end  consumed produced  import  export");
    let mut day = Vec::new();
    for hour in 0..24 {
        let minutes: Vec<Minute> = (0..60).map(|_| meter.next_minute()).collect();
        let sum = |field: fn(&Minute) -> u64| kwh(minutes.iter().map(field).sum());
        println!(
            "{hour:>4} {:>6.3} {:>6.3} {:>7.3} {:>7.3} {:>8.3} {:>9.3} {:>8.3} {:>7.3} {:>7.3}",
            sum(|minute| minute.load_mwh),
            sum(|minute| minute.pv_mwh),
            sum(|minute| minute.battery_charge_mwh),
            sum(|minute| minute.battery_discharge_mwh),
            kwh(minutes[59].battery_soc_mwh),
            sum(|minute| minute.consumed_mwh),
            sum(|minute| minute.produced_mwh),
            sum(Minute::import_mwh),
            sum(Minute::export_mwh),
        );
        day.extend(minutes);
    }
    let total = |field: fn(&Minute) -> u64| kwh(day.iter().map(field).sum());
    println!(
        "day: load {:.2} kWh, PV {:.2} kWh, import {:.2} kWh, export {:.2} kWh, peak PV {:.2} kW",
        total(|minute| minute.load_mwh),
        total(|minute| minute.pv_mwh),
        total(Minute::import_mwh),
        total(Minute::export_mwh),
        day.iter().map(|minute| minute.pv_mwh).max().unwrap_or(0) as f64 * 60.0 / 1e6,
    );
    if arguments.iter().any(|argument| argument == "--year") {
        let year = &date[..4];
        let start =
            midnight_ms(&format!("{year}-01-01"), config.utc_offset_minutes).expect("a year");
        let end = midnight_ms(
            &format!("{}-01-01", year.parse::<i64>().unwrap_or(2025) + 1),
            config.utc_offset_minutes,
        );
        let minutes = (end.unwrap_or(start) - start) / 60_000;
        let mut meter = MeterSim::new(&community, household, start).expect("a household");
        let (mut load, mut pv) = (0u64, 0u64);
        for _ in 0..minutes {
            let minute = meter.next_minute();
            load += minute.load_mwh;
            pv += minute.pv_mwh;
        }
        let kwp = meter.household().pv.map_or(0.0, |pv| pv.kwp);
        println!(
            "year {year}: load {:.0} kWh, PV {:.0} kWh ({:.0} kWh/kWp)",
            kwh(load),
            kwh(pv),
            kwh(pv) / kwp
        );
    }
}
