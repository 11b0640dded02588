//! Annual and monthly yield of a reference PV system (1 kWp, south, 30° tilt, PR 0.8) at the
//! default site, over the weather of eight seeds: the figure the cloud model is tuned to.
//!
//! `cargo run -p households --example pv_yield`

#![allow(clippy::print_stdout)]

use households::{Community, CommunityConfig, MeterSim, PvSystem};

fn main() {
    let config = CommunityConfig {
        households: 1,
        prosumer_share: 1.0,
        battery_share: 0.0,
        ..CommunityConfig::default()
    };
    // 2025-01-01T00:00 local time (UTC+01:00).
    let start = 1_735_686_000_000;
    let month_ends = [31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
    let seeds = 1..=8u64;
    let mut years = Vec::new();
    let mut months = [0.0; 12];
    for seed in seeds.clone() {
        let mut community =
            Community::new(&CommunityConfig { seed, ..config.clone() }).expect("a valid config");
        community.households[0].pv =
            Some(PvSystem { kwp: 1.0, azimuth_deg: 180.0, tilt_deg: 30.0, performance_ratio: 0.8 });
        let mut meter = MeterSim::new(&community, 0, start).expect("household 0");
        let mut year = 0.0;
        for minute in 0..365 * 1_440 {
            let kwh = meter.next_minute().pv_mwh as f64 / 1e6;
            year += kwh;
            let month = month_ends.iter().position(|end| minute / 1_440 < *end).unwrap_or(11);
            months[month] += kwh / seeds.clone().count() as f64;
        }
        years.push(year);
    }
    let rounded =
        |values: &[f64]| values.iter().map(|value| value.round() as i64).collect::<Vec<_>>();
    println!("kWh/kWp in 2025 for seeds 1–8: {:?}", rounded(&years));
    println!(
        "mean {:.0} kWh/kWp; by month {:?}",
        years.iter().sum::<f64>() / years.len() as f64,
        rounded(&months)
    );
}
