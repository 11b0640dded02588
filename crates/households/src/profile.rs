//! The BDEW H25 standard household load profile (see `data/README.md`).
//!
//! The table gives, for each month and day type (workday, Saturday, Sunday), 96 quarter-hour
//! energies in kWh for a household using 1,000,000 kWh a year. The BDEW's dynamisation
//! polynomial of the day of the year multiplies each value (high in winter, low in summer).
//! We then scale each calendar year to exactly the household's annual consumption, so that
//! what the profile gives over a year is `annual_kwh` whatever the year's weekdays are.

use crate::calendar::{DayType, LocalDay};
use std::sync::OnceLock;

/// The H25 table as shipped in demandlib 0.2.2 (`demandlib/bdew/bdew_data/h25.csv`).
const H25_CSV: &str = include_str!("../data/h25.csv");

/// Quarter-hours in a day.
pub(crate) const QUARTERS: usize = 96;

const MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

/// The parsed table: `[month][day type][quarter]`, kWh per quarter-hour per 1,000,000 kWh/a.
#[derive(Debug)]
pub(crate) struct LoadProfile {
    values: [[[f64; QUARTERS]; 3]; 12],
}

fn type_index(day_type: DayType) -> usize {
    match day_type {
        DayType::Workday => 0,
        DayType::Saturday => 1,
        DayType::Sunday => 2,
    }
}

impl LoadProfile {
    /// The embedded H25 table, parsed once.
    pub(crate) fn h25() -> &'static LoadProfile {
        static PROFILE: OnceLock<LoadProfile> = OnceLock::new();
        PROFILE.get_or_init(|| {
            LoadProfile::parse(H25_CSV).expect("the embedded H25 table parses (a test checks it)")
        })
    }

    /// Parses the demandlib layout: a row of month names, a row of day types (`SA`, `FT`,
    /// `WT`), then 96 rows of a time range and 36 values.
    fn parse(csv: &str) -> Result<LoadProfile, String> {
        let mut lines = csv.lines();
        let months: Vec<&str> = lines.next().ok_or("no month row")?.split(',').skip(1).collect();
        let types: Vec<&str> = lines.next().ok_or("no day-type row")?.split(',').skip(1).collect();
        if months.len() != 36 || types.len() != 36 {
            return Err(format!("expected 36 columns, got {} and {}", months.len(), types.len()));
        }
        let mut columns = Vec::new();
        for (month, day_type) in months.iter().zip(&types) {
            let month =
                MONTHS.iter().position(|name| name == month).ok_or(format!("month {month}"))?;
            let day_type = match *day_type {
                "WT" => 0,
                "SA" => 1,
                "FT" => 2,
                other => return Err(format!("day type {other}")),
            };
            columns.push((month, day_type));
        }
        let mut values = [[[f64::NAN; QUARTERS]; 3]; 12];
        let mut rows = 0;
        for (quarter, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            if quarter >= QUARTERS || fields.len() != 37 {
                return Err(format!("unexpected row {}: {line}", quarter + 3));
            }
            for (&(month, day_type), field) in columns.iter().zip(&fields[1..]) {
                let value: f64 = field.parse().map_err(|_| format!("value {field}"))?;
                values[month][day_type][quarter] = value;
            }
            rows += 1;
        }
        if rows != QUARTERS || values.iter().flatten().flatten().any(|value| !value.is_finite()) {
            return Err(format!("expected every month and day type in {QUARTERS} rows"));
        }
        Ok(LoadProfile { values })
    }

    /// The 96 quarter-hour values of a month (1–12) and day type.
    pub(crate) fn day(&self, month: u32, day_type: DayType) -> &[f64; QUARTERS] {
        &self.values[(month - 1) as usize][type_index(day_type)]
    }

    /// The profile's energy on `day`, dynamised, in kWh per 1,000,000 kWh/a.
    pub(crate) fn day_energy(&self, day: &LocalDay) -> f64 {
        self.day(day.month, day.day_type()).iter().sum::<f64>() * dynamisation(day.day_of_year)
    }

    /// The dynamised profile summed over the calendar year `year`.
    pub(crate) fn year_energy(&self, first_day_of_year: &LocalDay) -> f64 {
        let start = first_day_of_year.number - i64::from(first_day_of_year.day_of_year) + 1;
        (0..i64::from(first_day_of_year.days_in_year))
            .map(|offset| self.day_energy(&LocalDay::from_number(start + offset)))
            .sum()
    }
}

/// The BDEW dynamisation factor of day `day_of_year` (1-based):
/// `-3.92e-10·t⁴ + 3.2e-7·t³ - 7.02e-5·t² + 2.1e-3·t + 1.24`.
pub(crate) fn dynamisation(day_of_year: u32) -> f64 {
    let t = f64::from(day_of_year);
    -3.92e-10 * t.powi(4) + 3.2e-7 * t.powi(3) - 7.02e-5 * t.powi(2) + 2.1e-3 * t + 1.24
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_parses_with_known_values() {
        let profile = LoadProfile::parse(H25_CSV).unwrap();
        // First and last rows of the file: January Saturday 00:00–00:15 and December workday
        // 23:45–24:00.
        assert_eq!(profile.day(1, DayType::Saturday)[0], 22.152);
        assert_eq!(profile.day(12, DayType::Workday)[95], 21.911);
        // Without dynamisation the table's year is close to 1,000,000 kWh.
        let january_first = LocalDay::from_number(20_089); // 2025-01-01
        assert_eq!((january_first.year, january_first.day_of_year), (2025, 1));
        let year = profile.year_energy(&january_first);
        assert!((year - 995_057.1).abs() < 1.0, "dynamised 2025 sums to {year}");
        // Evening peak above night trough.
        let workday = profile.day(1, DayType::Workday);
        assert!(workday[19 * 4] > 2.0 * workday[3 * 4]);
    }

    #[test]
    fn broken_tables_are_refused() {
        assert!(LoadProfile::parse("").is_err());
        let truncated: String = H25_CSV.lines().take(50).collect::<Vec<_>>().join("\n");
        assert!(LoadProfile::parse(&truncated).is_err());
        let garbled = H25_CSV.replacen("22.152", "x", 1);
        assert!(LoadProfile::parse(&garbled).is_err());
    }

    #[test]
    fn dynamisation_is_high_in_winter_and_low_in_summer() {
        assert!((dynamisation(1) - 1.2421).abs() < 1e-3);
        assert!(dynamisation(180) < 0.81 && dynamisation(180) > 0.78);
        assert!(dynamisation(365) > 1.2);
    }
}
