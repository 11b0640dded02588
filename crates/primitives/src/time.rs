//! How chain time relates to wall time.
//!
//! A chain's time (block timestamps, slots, gate closures, reading deadlines) normally is the
//! wall clock. A devnet may run it faster: from an origin on which all its nodes agree, chain time
//! passes `speed` times as fast as wall time. Durations that exist for the network's sake
//! (block intervals, consensus and network timeouts) stay wall durations; the node converts them
//! with [`TimeScale::chain_span`] where they meet chain time. See `docs/design/time.md`.
//!
//! This is arithmetic only: the clock itself is read by the node.

use crate::TimestampMs;
use std::fmt;

/// The fastest a chain's time may run against the wall clock.
pub const MAX_SPEED: u32 = 100_000;

/// `chain = origin_chain + (wall − origin_wall) × speed`, in milliseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimeScale {
    /// How many chain milliseconds pass per wall millisecond (1 in production).
    pub speed: u32,
    /// A wall time …
    pub origin_wall: TimestampMs,
    /// … and the chain time it corresponds to.
    pub origin_chain: TimestampMs,
}

/// Why a time scale is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeScaleError {
    /// The speed is zero or above [`MAX_SPEED`].
    #[error("speed {0}: chain time may run 1 to {MAX_SPEED} times as fast as the wall clock")]
    Speed(u32),
}

impl TimeScale {
    /// Chain time is wall time.
    pub const REAL: TimeScale =
        TimeScale { speed: 1, origin_wall: TimestampMs(0), origin_chain: TimestampMs(0) };

    /// `speed` times as fast as the wall clock, chain time being `origin_chain` at wall time
    /// `origin_wall`.
    pub fn new(
        speed: u32,
        origin_wall: TimestampMs,
        origin_chain: TimestampMs,
    ) -> Result<TimeScale, TimeScaleError> {
        if !(1..=MAX_SPEED).contains(&speed) {
            return Err(TimeScaleError::Speed(speed));
        }
        Ok(TimeScale { speed, origin_wall, origin_chain })
    }

    /// Whether chain time is simply wall time.
    pub fn is_real(&self) -> bool {
        self.speed == 1 && self.origin_wall == self.origin_chain
    }

    /// The chain time at wall time `wall`.
    pub fn chain_time(&self, wall: TimestampMs) -> TimestampMs {
        let speed = u64::from(self.speed);
        if wall >= self.origin_wall {
            let ahead = (wall.0 - self.origin_wall.0).saturating_mul(speed);
            TimestampMs(self.origin_chain.0.saturating_add(ahead))
        } else {
            let behind = (self.origin_wall.0 - wall.0).saturating_mul(speed);
            TimestampMs(self.origin_chain.0.saturating_sub(behind))
        }
    }

    /// The first wall time at which chain time has reached `chain`.
    pub fn wall_time(&self, chain: TimestampMs) -> TimestampMs {
        let speed = u64::from(self.speed.max(1));
        if chain >= self.origin_chain {
            let ahead = (chain.0 - self.origin_chain.0).div_ceil(speed);
            TimestampMs(self.origin_wall.0.saturating_add(ahead))
        } else {
            let behind = (self.origin_chain.0 - chain.0) / speed;
            TimestampMs(self.origin_wall.0.saturating_sub(behind))
        }
    }

    /// How much chain time passes in `wall_ms` of wall time.
    pub fn chain_span(&self, wall_ms: u64) -> u64 {
        wall_ms.saturating_mul(u64::from(self.speed))
    }

    /// How much wall time `chain_ms` of chain time takes (rounded up).
    pub fn wall_span(&self, chain_ms: u64) -> u64 {
        chain_ms.div_ceil(u64::from(self.speed.max(1)))
    }
}

impl Default for TimeScale {
    fn default() -> TimeScale {
        TimeScale::REAL
    }
}

impl fmt::Display for TimeScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_real() {
            write!(f, "wall clock")
        } else {
            write!(
                f,
                "{}× from wall {} = chain {}",
                self.speed, self.origin_wall.0, self.origin_chain.0
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_is_the_identity() {
        for wall in [0, 1, 1_764_579_250_123, u64::MAX] {
            assert_eq!(TimeScale::REAL.chain_time(TimestampMs(wall)), TimestampMs(wall));
            assert_eq!(TimeScale::REAL.wall_time(TimestampMs(wall)), TimestampMs(wall));
        }
        assert!(TimeScale::REAL.is_real());
    }

    #[test]
    fn chain_time_runs_speed_times_faster_from_the_origin() {
        let scale = TimeScale::new(60, TimestampMs(1_000_000), TimestampMs(5_000_000)).unwrap();
        assert_eq!(scale.chain_time(TimestampMs(1_000_000)), TimestampMs(5_000_000));
        assert_eq!(scale.chain_time(TimestampMs(1_001_000)), TimestampMs(5_060_000));
        assert_eq!(scale.chain_time(TimestampMs(999_000)), TimestampMs(4_940_000));
        assert_eq!(scale.chain_span(1_000), 60_000);
        assert_eq!(scale.wall_span(60_000), 1_000);
        assert_eq!(scale.wall_span(60_001), 1_001);
        assert!(!scale.is_real());
    }

    #[test]
    fn wall_time_is_the_first_moment_chain_time_is_reached() {
        let scale = TimeScale::new(7, TimestampMs(1_000), TimestampMs(10_000)).unwrap();
        for chain in [9_000, 9_993, 9_999, 10_000, 10_001, 10_006, 10_007, 123_456] {
            let wall = scale.wall_time(TimestampMs(chain));
            assert!(scale.chain_time(wall).0 >= chain, "{chain}");
            assert!(scale.chain_time(TimestampMs(wall.0 - 1)).0 < chain, "{chain}");
        }
    }

    #[test]
    fn a_speed_out_of_range_is_refused() {
        assert_eq!(
            TimeScale::new(0, TimestampMs(0), TimestampMs(0)),
            Err(TimeScaleError::Speed(0))
        );
        assert!(TimeScale::new(MAX_SPEED + 1, TimestampMs(0), TimestampMs(0)).is_err());
        assert!(TimeScale::new(MAX_SPEED, TimestampMs(0), TimestampMs(0)).is_ok());
    }
}
