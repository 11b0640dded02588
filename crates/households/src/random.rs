//! Seeded randomness: SplitMix64 streams keyed by what they are for.
//!
//! Every random choice in the crate comes from a stream named by a list of words: the community
//! seed, a stream tag and whatever the choice belongs to (a household, a day, an interval). A
//! stream depends on nothing else, so a day, a household or an interval can be computed on its
//! own, in any order, and always gives the same numbers. The generator is Steele, Lea and
//! Flood's SplitMix64 ("Fast splittable pseudorandom number generators", OOPSLA 2014) with the
//! finaliser of Java's `SplittableRandom`; it is not cryptographic and need not be.

/// The golden-ratio increment of SplitMix64.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// What a stream is for; one tag per kind of choice keeps streams apart.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    /// Which households get PV, batteries and contracts.
    Roles = 1,
    /// One household's own traits.
    Household = 2,
    /// One household's appliance events and minute noise on one day.
    LoadDay = 3,
    /// The community's weather on one day (shared by all households).
    WeatherDay = 4,
    /// The community's cloud path through one day.
    CloudMinutes = 5,
    /// The weather forecast of one day.
    WeatherForecast = 6,
    /// The fate of one household's reading for one interval.
    ReadingFate = 7,
    /// The prices of one bilateral contract.
    Contract = 8,
}

/// The SplitMix64 finaliser: a bijection of `u64` that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// The stream for `seed`, `stream` and the words that name what it is for.
    pub(crate) fn new(seed: u64, stream: Stream, words: &[u64]) -> Rng {
        let mut state = mix(seed.wrapping_add(GOLDEN)) ^ mix(stream as u64);
        for word in words {
            state = mix(state.wrapping_add(GOLDEN) ^ mix(*word));
        }
        Rng { state }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1), with 53 random bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [low, high).
    pub(crate) fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform in 0..count (count > 0); the tiny modulo bias does not matter here.
    pub(crate) fn below(&mut self, count: usize) -> usize {
        (self.next_u64() % count.max(1) as u64) as usize
    }

    /// Standard normal, by the Box–Muller transform.
    pub(crate) fn normal(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.uniform()).cos()
    }

    /// The indices 0..count in a random order (Fisher–Yates).
    pub(crate) fn permutation(&mut self, count: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..count).collect();
        for last in (1..count).rev() {
            order.swap(last, self.below(last + 1));
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |seed, stream, words: &[u64]| Rng::new(seed, stream, words).next_u64();
        assert_eq!(draw(1, Stream::LoadDay, &[2, 3]), draw(1, Stream::LoadDay, &[2, 3]));
        assert_ne!(draw(1, Stream::LoadDay, &[2, 3]), draw(1, Stream::LoadDay, &[3, 2]));
        assert_ne!(draw(1, Stream::LoadDay, &[2, 3]), draw(2, Stream::LoadDay, &[2, 3]));
        assert_ne!(draw(1, Stream::LoadDay, &[2, 3]), draw(1, Stream::WeatherDay, &[2, 3]));
    }

    #[test]
    fn distributions_have_their_moments() {
        let mut rng = Rng::new(7, Stream::Household, &[]);
        let count = 100_000;
        let uniform: Vec<f64> = (0..count).map(|_| rng.uniform()).collect();
        assert!(uniform.iter().all(|value| (0.0..1.0).contains(value)));
        let mean = uniform.iter().sum::<f64>() / count as f64;
        assert!((mean - 0.5).abs() < 0.005, "uniform mean {mean}");
        let normal: Vec<f64> = (0..count).map(|_| rng.normal()).collect();
        let mean = normal.iter().sum::<f64>() / count as f64;
        let variance =
            normal.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / count as f64;
        assert!(mean.abs() < 0.02 && (variance - 1.0).abs() < 0.02, "normal {mean} {variance}");
        let mut order = rng.permutation(10);
        order.sort_unstable();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }
}
