//! The community's sky: a seeded clear-sky index shared by all its households.
//!
//! Neighbours see the same clouds, so the weather belongs to the community, not to a house.
//! It has two layers:
//!
//! - **Day to day**: a latent `x_d` that follows an AR(1) process with lag-one correlation
//!   `ρ = 0.6` (a weather regime lasts a few days), computed for any day on its own as the
//!   truncated moving average `x_d = √(1-ρ²) · Σ_{k=0}^{20} ρ^k ε_{d-k}` of seeded standard
//!   normals. The day's mean clear-sky index is `0.15 + 0.85 · logistic(1.7 · (x_d + b))`, where
//!   the seasonal bias `b` is `-0.1 + 0.54 · cos(2π (doy - 172) / 365.25)` (half a year later in
//!   the southern hemisphere): sunnier summers, greyer winters. The constants are tuned so that
//!   a south-facing 30° system with PR 0.8 in Frankfurt yields about 940 kWh per kWp and year
//!   (860–1,000 over eight seeds; `cargo run -p households --example pv_yield`), in line with
//!   the 900–1,000 kWh/kWp typical of Germany (Fraunhofer ISE, "Recent Facts about
//!   Photovoltaics in Germany"); with a Gaussian latent mapped through a logistic curve the
//!   mean index is about 0.68 in June and 0.43 in December.
//! - **Within the day**: the minute's index is the day mean plus `σ_d · y_t`, where `y_t` is an
//!   AR(1) process with a 20-minute correlation time, restarted from a seeded value at each
//!   local midnight, and `σ_d = 1.3 · m_d · (1 - m_d)`: clear and overcast days are steady,
//!   broken-cloud days vary most. The index is kept within [0.05, 1.05].
//!
//! The day-ahead forecast of the index is the day mean plus a seeded error of 0.1 (one standard
//! deviation), which is roughly the skill of a day-ahead PV forecast.

use crate::random::{Rng, Stream};

/// Lag-one correlation of the day-to-day weather.
const DAY_CORRELATION: f64 = 0.6;
/// Days the moving average reaches back (ρ^21 < 2e-5).
const DAY_MEMORY: i64 = 20;
/// Correlation time of the minute-to-minute clouds, minutes.
const CLOUD_MINUTES: f64 = 20.0;
/// Standard deviation of the day-ahead forecast of the day's mean index.
const FORECAST_ERROR: f64 = 0.1;

/// One local day's weather.
#[derive(Clone, Debug)]
pub(crate) struct DayWeather {
    /// The day's mean clear-sky index.
    pub(crate) mean_index: f64,
    /// The day-ahead forecast of the mean index.
    pub(crate) forecast_index: f64,
    /// Standard deviation of the minute index around the mean.
    variability: f64,
    /// The cloud path through the day, restarted at local midnight.
    clouds: Rng,
    cloud_state: f64,
}

impl DayWeather {
    /// The weather of local day `day` (days since 1970-01-01) with day of year `day_of_year`.
    pub(crate) fn new(seed: u64, latitude_deg: f64, day: i64, day_of_year: u32) -> DayWeather {
        let innovation = |day: i64| Rng::new(seed, Stream::WeatherDay, &[day as u64]).normal();
        let scale = (1.0 - DAY_CORRELATION * DAY_CORRELATION).sqrt();
        let latent: f64 = (0..=DAY_MEMORY)
            .map(|lag| DAY_CORRELATION.powi(lag as i32) * innovation(day - lag))
            .sum::<f64>()
            * scale;
        let summer_day = if latitude_deg >= 0.0 { 172.0 } else { 355.0 };
        let season = (std::f64::consts::TAU * (f64::from(day_of_year) - summer_day) / 365.25).cos();
        let bias = -0.1 + 0.54 * season;
        let mean_index = 0.15 + 0.85 / (1.0 + (-1.7 * (latent + bias)).exp());
        let forecast_error = Rng::new(seed, Stream::WeatherForecast, &[day as u64]).normal();
        let forecast_index = (mean_index + FORECAST_ERROR * forecast_error).clamp(0.05, 1.0);
        let mut clouds = Rng::new(seed, Stream::CloudMinutes, &[day as u64]);
        let cloud_state = clouds.normal();
        DayWeather {
            mean_index,
            forecast_index,
            variability: 1.3 * mean_index * (1.0 - mean_index),
            clouds,
            cloud_state,
        }
    }

    /// The clear-sky index of the next minute of the day (call once per minute, from midnight).
    pub(crate) fn next_minute_index(&mut self) -> f64 {
        let index = (self.mean_index + self.variability * self.cloud_state).clamp(0.05, 1.05);
        let persistence = (-1.0 / CLOUD_MINUTES).exp();
        self.cloud_state = persistence * self.cloud_state
            + (1.0 - persistence * persistence).sqrt() * self.clouds.normal();
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summers_are_sunnier_and_days_persist() {
        let year = |range: std::ops::Range<i64>, day_of_year: u32| {
            range
                .map(|day| DayWeather::new(3, 50.0, day, day_of_year).mean_index)
                .collect::<Vec<_>>()
        };
        let summer = year(0..2_000, 172);
        let winter = year(0..2_000, 355);
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
        assert!(
            mean(&summer) > 0.55 && mean(&winter) < 0.45,
            "{} {}",
            mean(&summer),
            mean(&winter)
        );
        assert!(summer.iter().chain(&winter).all(|index| (0.15..=1.0).contains(index)));
        // Neighbouring days are correlated, days a fortnight apart hardly.
        let correlation = |lag: usize| {
            let (a, b) = (&summer[..summer.len() - lag], &summer[lag..]);
            let (mean_a, mean_b) = (mean(a), mean(b));
            let covariance: f64 = a.iter().zip(b).map(|(x, y)| (x - mean_a) * (y - mean_b)).sum();
            let variance_a: f64 = a.iter().map(|x| (x - mean_a).powi(2)).sum();
            let variance_b: f64 = b.iter().map(|y| (y - mean_b).powi(2)).sum();
            covariance / (variance_a * variance_b).sqrt()
        };
        assert!(correlation(1) > 0.45, "lag 1: {}", correlation(1));
        assert!(correlation(14).abs() < 0.1, "lag 14: {}", correlation(14));
        // Southern hemisphere: December is summer.
        let south = mean(
            &(0..2_000)
                .map(|day| DayWeather::new(3, -35.0, day, 355).mean_index)
                .collect::<Vec<_>>(),
        );
        assert!(south > 0.55);
    }

    #[test]
    fn minutes_persist_and_stay_in_range() {
        let mut weather = DayWeather::new(9, 50.0, 20_000, 120);
        let minutes: Vec<f64> = (0..1_440).map(|_| weather.next_minute_index()).collect();
        assert!(minutes.iter().all(|index| (0.05..=1.05).contains(index)));
        let steps: f64 =
            minutes.windows(2).map(|pair| (pair[1] - pair[0]).abs()).sum::<f64>() / 1_439.0;
        let spread =
            minutes.iter().map(|index| (index - weather.mean_index).abs()).sum::<f64>() / 1_440.0;
        assert!(
            steps < spread,
            "a minute's step {steps} is smaller than the day's spread {spread}"
        );
        assert_eq!(DayWeather::new(9, 50.0, 20_000, 120).next_minute_index(), minutes[0]);
    }
}
