//! Local days of the community: dates, weekdays and BDEW day types.
//!
//! The community keeps one fixed offset from UTC all year (no daylight-saving switch), so a
//! local day always has 1,440 minutes. Dates use the proleptic Gregorian calendar; the
//! conversion from a day count is H. Hinnant's `civil_from_days` ("chrono-Compatible Low-Level
//! Date Algorithms").

/// One minute in milliseconds.
pub(crate) const MINUTE_MS: i64 = 60_000;
/// One day in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Minutes in a day.
pub(crate) const MINUTES_PER_DAY: usize = 1_440;

/// The day types of the BDEW profiles: workday (WT, Monday to Friday), Saturday (SA) and
/// Sunday (FT, which the BDEW also uses for public holidays; we treat holidays as the
/// weekdays they fall on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DayType {
    Workday,
    Saturday,
    Sunday,
}

/// One local day of the community.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalDay {
    /// Days since 1970-01-01 in local time.
    pub(crate) number: i64,
    pub(crate) year: i64,
    /// 1 to 12.
    pub(crate) month: u32,
    /// 1 to 365 or 366.
    pub(crate) day_of_year: u32,
    pub(crate) days_in_year: u32,
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub(crate) weekday: u32,
}

impl LocalDay {
    /// The local day with this number (days since 1970-01-01).
    pub(crate) fn from_number(number: i64) -> LocalDay {
        let (year, month, _) = civil_from_days(number);
        let day_of_year = (number - days_from_civil(year, 1, 1) + 1) as u32;
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        // 1970-01-01 was a Thursday (ISO 4).
        let weekday = (number + 3).rem_euclid(7) as u32 + 1;
        LocalDay { number, year, month, day_of_year, days_in_year: 365 + u32::from(leap), weekday }
    }

    /// The local day that contains `utc_ms`, for a community `utc_offset_minutes` ahead of UTC.
    pub(crate) fn containing(utc_ms: i64, utc_offset_minutes: i32) -> LocalDay {
        let local_ms = utc_ms + i64::from(utc_offset_minutes) * MINUTE_MS;
        LocalDay::from_number(local_ms.div_euclid(DAY_MS))
    }

    /// The UTC instant of this day's local midnight.
    pub(crate) fn start_utc_ms(&self, utc_offset_minutes: i32) -> i64 {
        self.number * DAY_MS - i64::from(utc_offset_minutes) * MINUTE_MS
    }

    /// The BDEW day type (public holidays are not observed).
    pub(crate) fn day_type(&self) -> DayType {
        match self.weekday {
            6 => DayType::Saturday,
            7 => DayType::Sunday,
            _ => DayType::Workday,
        }
    }

    /// The next local day.
    pub(crate) fn next(&self) -> LocalDay {
        LocalDay::from_number(self.number + 1)
    }
}

/// (year, month, day) of the day `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to (year, month, day); the inverse of `civil_from_days`.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_index + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2024-02-29 (a leap day) is day 19,782; 2025-06-21 is a Saturday.
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        let solstice = LocalDay::from_number(days_from_civil(2025, 6, 21));
        assert_eq!((solstice.month, solstice.day_of_year, solstice.weekday), (6, 172, 6));
        assert_eq!(solstice.day_type(), DayType::Saturday);
        let new_year = LocalDay::from_number(days_from_civil(2024, 12, 31));
        assert_eq!((new_year.day_of_year, new_year.days_in_year), (366, 366));
        assert_eq!(LocalDay::from_number(-1).year, 1969);
        for days in [-800_000, -1, 0, 59, 10_956, 19_782, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn local_midnight_follows_the_offset() {
        // 2025-01-01T00:30 in UTC+01:00 is 2024-12-31T23:30Z.
        let utc_ms = 1_735_687_800_000;
        let day = LocalDay::containing(utc_ms, 60);
        assert_eq!((day.year, day.month, day.day_of_year), (2025, 1, 1));
        assert_eq!(day.start_utc_ms(60), 1_735_686_000_000);
        assert_eq!(day.next().start_utc_ms(60) - day.start_utc_ms(60), DAY_MS);
    }
}
