//! Values as people read them on the command line: times in ISO 8601 (UTC) beside the raw
//! milliseconds, slots with the time they start, energy in kWh, and the parsers that turn what
//! people type into amounts, energy and prices with errors that say what was expected.

use primitives::{Amount, Energy};

/// A time in ms since the Unix epoch as ISO 8601 in UTC, to the second
/// (`2026-06-21T11:00:00Z`).
pub(crate) fn iso(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| format!("{ms} ms"), |time| format!("{time:.0}"))
}

/// A slot number with the chain time it starts: `29935192 (2026-12-01T12:52:00Z)`.
pub(crate) fn slot(slot: u64, slot_minutes: u32) -> String {
    let start = slot.saturating_mul(u64::from(slot_minutes)).saturating_mul(60_000);
    format!("{slot} ({})", iso(start))
}

/// Energy in mWh (as the API gives it) for people: `1.5 kWh`.
pub(crate) fn kwh(mwh: u64) -> String {
    format!("{} kWh", Energy(mwh))
}

/// A whole number of tokens, as typed.
pub(crate) fn tokens(text: &str) -> Result<Amount, String> {
    if text.starts_with('-') {
        return Err(format!(
            "{text}: an amount cannot be negative; give a whole number of tokens (1 token = the smallest fiat unit), e.g. 1200"
        ));
    }
    text.parse().map_err(|_| {
        format!(
            "{text:?} is not a whole number of tokens (digits only, no sign or decimals), e.g. 1200"
        )
    })
}

/// Energy in kWh, as typed (at most six decimals: the chain counts mWh).
pub(crate) fn energy(text: &str) -> Result<Energy, String> {
    if text.starts_with('-') {
        return Err(format!("{text}: energy cannot be negative; give kWh, e.g. 1.5"));
    }
    Energy::from_kwh_str(text)
        .map_err(|_| format!("{text:?} is not an energy in kWh (at most six decimals), e.g. 1.5"))
}

/// A price in whole tokens per kWh, as typed.
pub(crate) fn price(text: &str) -> Result<u64, String> {
    if text.starts_with('-') {
        return Err(format!(
            "{text}: a price cannot be negative; give whole tokens per kWh, e.g. 12"
        ));
    }
    text.parse().map_err(|_| format!("{text:?} is not a price in whole tokens per kWh, e.g. 12"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_slots() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_782_039_600_123), "2026-06-21T11:00:00Z");
        assert_eq!(slot(1_980_044, 15), "1980044 (2026-06-21T11:00:00Z)");
        assert_eq!(kwh(1_500_000), "1.5 kWh");
    }

    #[test]
    fn what_people_type() {
        assert_eq!(tokens("1200"), Ok(Amount(1200)));
        assert!(tokens("-5").unwrap_err().contains("cannot be negative"));
        assert!(tokens("1.5").unwrap_err().contains("whole number"));
        assert_eq!(energy("1.5"), Ok(Energy(1_500_000)));
        assert!(energy("-2").unwrap_err().contains("cannot be negative"));
        assert_eq!(price("12"), Ok(12));
        assert!(price("-1").unwrap_err().contains("cannot be negative"));
    }
}
