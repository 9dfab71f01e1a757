//! Registrations per client address per minute (DESIGN.md: 429 beyond
//! `max_registrations_per_minute`). A token bucket per address: a full bucket
//! holds a minute's allowance and refills continuously, so a burst up to the
//! limit passes and the sustained rate is the limit.
//!
//! Memory is bounded: buckets that have refilled completely carry no
//! information and are swept, and at most `MAX_TRACKED` addresses are kept
//! (past that, new addresses are refused until the sweep frees room, which
//! fails closed under an address-spraying flood).

use std::collections::HashMap;

const UNITS_PER_TOKEN: u64 = 60_000;

/// Most addresses tracked at once.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens in units of 1/60 000, so that a refill of `per_minute` tokens
    /// a minute is exactly `per_minute` units a millisecond.
    units: u64,
    last_ms: u64,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u64,
    buckets: HashMap<String, Bucket>,
    last_sweep_ms: u64,
}

impl RateLimiter {
    /// `per_minute` 0 means no limit.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: u64::from(per_minute),
            buckets: HashMap::new(),
            last_sweep_ms: 0,
        }
    }

    /// Takes one registration for `address` at `now_ms` (a monotonic clock in
    /// milliseconds); false if the address is over its limit.
    pub fn allow(&mut self, address: &str, now_ms: u64) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let full = self.per_minute * UNITS_PER_TOKEN;
        if now_ms.saturating_sub(self.last_sweep_ms) >= 60_000 || self.buckets.len() >= MAX_TRACKED
        {
            self.sweep(now_ms);
        }
        if !self.buckets.contains_key(address) && self.buckets.len() >= MAX_TRACKED {
            return false;
        }
        let bucket = self.buckets.entry(address.to_owned()).or_insert(Bucket {
            units: full,
            last_ms: now_ms,
        });
        let refill = now_ms
            .saturating_sub(bucket.last_ms)
            .saturating_mul(self.per_minute);
        bucket.units = bucket.units.saturating_add(refill).min(full);
        bucket.last_ms = bucket.last_ms.max(now_ms);
        if bucket.units >= UNITS_PER_TOKEN {
            bucket.units -= UNITS_PER_TOKEN;
            true
        } else {
            false
        }
    }

    /// Drops the buckets that are full again by `now_ms`.
    fn sweep(&mut self, now_ms: u64) {
        let full = self.per_minute * UNITS_PER_TOKEN;
        let per_minute = self.per_minute;
        self.buckets.retain(|_, b| {
            let refill = now_ms.saturating_sub(b.last_ms).saturating_mul(per_minute);
            b.units.saturating_add(refill) < full
        });
        self.last_sweep_ms = now_ms;
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minutes_allowance_then_refused_then_refilled() {
        let mut limiter = RateLimiter::new(3);
        assert!((0..3).all(|_| limiter.allow("10.0.0.1", 1000)));
        assert!(!limiter.allow("10.0.0.1", 1000));
        assert!(limiter.allow("10.0.0.2", 1000), "addresses are independent");
        assert!(
            !limiter.allow("10.0.0.1", 20_999),
            "one token takes 20 s at 3/min"
        );
        assert!(limiter.allow("10.0.0.1", 21_000));
        assert!(!limiter.allow("10.0.0.1", 21_001));
        assert!((0..3).all(|_| limiter.allow("10.0.0.1", 200_000)));
    }

    #[test]
    fn zero_means_unlimited() {
        let mut limiter = RateLimiter::new(0);
        assert!((0..10_000).all(|_| limiter.allow("a", 0)));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn full_buckets_are_swept_and_the_table_is_bounded() {
        let mut limiter = RateLimiter::new(60);
        for i in 0..1000 {
            assert!(limiter.allow(&format!("a{i}"), 0));
        }
        assert_eq!(limiter.tracked(), 1000);
        // A minute later every bucket is full again: swept on the next call.
        assert!(limiter.allow("b", 60_000));
        assert_eq!(limiter.tracked(), 1);

        let mut limiter = RateLimiter::new(60);
        for i in 0..MAX_TRACKED {
            limiter.allow(&i.to_string(), 1);
        }
        assert!(
            !limiter.allow("one more", 2),
            "fails closed when full of live buckets"
        );
        assert!(
            limiter.allow("0", 2),
            "known addresses still have their own allowance"
        );
        assert!(limiter.tracked() <= MAX_TRACKED);
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let mut limiter = RateLimiter::new(1);
        assert!(limiter.allow("a", 100_000));
        assert!(!limiter.allow("a", 50));
    }
}
