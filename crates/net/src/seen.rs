//! Bounded sets of payload hashes with expiry, and the per-peer token bucket.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A set of hashes that forgets the oldest beyond `capacity` and anything older than `ttl`.
pub(crate) struct SeenSet {
    inserted: HashMap<[u8; 32], Instant>,
    order: VecDeque<([u8; 32], Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl SeenSet {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> SeenSet {
        SeenSet { inserted: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1), ttl }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((hash, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.ttl && self.order.len() <= self.capacity {
                break;
            }
            self.inserted.remove(hash);
            self.order.pop_front();
        }
    }

    /// Adds `hash`; true when it was not there.
    pub(crate) fn insert(&mut self, hash: [u8; 32], now: Instant) -> bool {
        self.expire(now);
        if self.inserted.contains_key(&hash) {
            return false;
        }
        self.inserted.insert(hash, now);
        self.order.push_back((hash, now));
        self.expire(now);
        true
    }

    /// Whether `hash` is there (and not expired).
    pub(crate) fn contains(&mut self, hash: &[u8; 32], now: Instant) -> bool {
        self.expire(now);
        self.inserted.contains_key(hash)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inserted.len()
    }
}

/// A token bucket: `rate` tokens per second, holding at most one second's worth.
pub(crate) struct TokenBucket {
    tokens: f64,
    capacity: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(rate.max(1));
        TokenBucket { tokens: rate, capacity: rate, rate, last: now }
    }

    /// Takes a token; false when the bucket is empty.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_set_is_bounded_and_expires() {
        let start = Instant::now();
        let mut seen = SeenSet::new(3, Duration::from_secs(10));
        assert!(seen.insert([1; 32], start));
        assert!(!seen.insert([1; 32], start));
        for byte in 2..=4 {
            assert!(seen.insert([byte; 32], start));
        }
        assert_eq!(seen.len(), 3);
        assert!(!seen.contains(&[1; 32], start), "the oldest is forgotten beyond capacity");
        assert!(seen.contains(&[4; 32], start));
        let later = start + Duration::from_secs(11);
        assert!(!seen.contains(&[4; 32], later), "entries expire");
        assert_eq!(seen.len(), 0);
    }

    #[test]
    fn token_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, start);
        assert_eq!((0..20).filter(|_| bucket.take(start)).count(), 10);
        let later = start + Duration::from_millis(500);
        assert_eq!((0..20).filter(|_| bucket.take(later)).count(), 5);
    }
}
