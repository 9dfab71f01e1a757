//! The wait estimate of DESIGN.md "Waiting line": measured, not a constant.
//!
//! A [`ServiceWindow`] keeps the service samples (how long a chat lasted,
//! in ms, taken when it ended) of the last 15 minutes, at most the 1024 most
//! recent, with their running sum. With `m` their mean and `S` the slots
//! (agents taking visitors x `max_sessions`), the visitor at position `P`
//! is estimated to wait
//!
//! ```text
//! estimate(P) = ceil(P * m / S / 1000) seconds, at most 24 h
//! ```
//!
//! Why: each of the S slots ends a chat every `m` on average, so the desk
//! frees `S / m` slots per unit of time, and the P-th in line waits for P of
//! them. Computed in integers, `ceil(P * sum / (count * S * 1000))`, so no
//! rounding of the mean can make it drift. No samples, or no slots (nobody
//! is taking visitors): there is nothing to measure from, so `None` (the
//! estimate is left out rather than invented). Rounded up: a visitor would
//! rather be served early than late. Capped at a day: beyond that a number
//! means nothing, and the cap keeps it an ordinary integer.
//!
//! The window slides so that the estimate follows the desk as it is now (a
//! quiet morning says little about a busy afternoon); the sample cap bounds
//! the memory and keeps the busiest hours as current as the quiet ones.
//! Every operation is O(1) amortised (a sample is added once and expires
//! once).

use std::collections::VecDeque;

/// How long a sample counts: it expires once it ended this long ago.
pub const WINDOW_MS: u64 = 15 * 60 * 1000;
/// The most samples kept: the most recent.
pub const MAX_SAMPLES: usize = 1024;
/// The longest estimate, in seconds.
pub const MAX_ESTIMATE_S: u64 = 24 * 60 * 60;

#[derive(Debug, Default)]
pub struct ServiceWindow {
    /// (ended at, lasted) in ms, oldest first.
    samples: VecDeque<(u64, u64)>,
    /// Sum of the `lasted` of `samples`: u128, so that 1024 of any u64 fit.
    sum_ms: u128,
}

impl ServiceWindow {
    pub fn new() -> Self {
        ServiceWindow::default()
    }

    /// A chat ended at `now_ms` after lasting `duration_ms`.
    pub fn record(&mut self, now_ms: u64, duration_ms: u64) {
        self.expire(now_ms);
        self.samples.push_back((now_ms, duration_ms));
        self.sum_ms += u128::from(duration_ms);
        if self.samples.len() > MAX_SAMPLES {
            self.drop_oldest();
        }
    }

    /// Drops the samples that ended `WINDOW_MS` or more before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        while let Some(&(ended_ms, _)) = self.samples.front() {
            if ended_ms.saturating_add(WINDOW_MS) > now_ms {
                break;
            }
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some((_, lasted)) = self.samples.pop_front() {
            self.sum_ms -= u128::from(lasted);
        }
    }

    /// How many samples count (as of the last `record` or `expire`).
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Seconds the visitor at `position` should wait with `slots` slots (see
    /// the module's documentation), as of the last `record` or `expire`.
    pub fn estimate(&self, position: u64, slots: u64) -> Option<u64> {
        if self.samples.is_empty() || slots == 0 {
            return None;
        }
        let per_second = self.samples.len() as u128 * u128::from(slots) * 1000;
        let seconds = u128::from(position)
            .checked_mul(self.sum_ms)
            .map_or(u128::MAX, |waited| waited.div_ceil(per_second));
        Some(seconds.min(u128::from(MAX_ESTIMATE_S)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_without_samples_or_slots() {
        let mut window = ServiceWindow::new();
        assert_eq!(window.estimate(1, 5), None);
        window.record(0, 60_000);
        assert_eq!(window.estimate(1, 0), None);
        assert!(window.estimate(1, 1).is_some());
    }

    #[test]
    fn formula_on_known_samples() {
        let mut window = ServiceWindow::new();
        // Mean 120 s.
        for (at, lasted) in [(1_000, 60_000), (2_000, 180_000), (3_000, 120_000)] {
            window.record(at, lasted);
        }
        // 4 slots free one every 30 s: the 1st waits 30 s, the 3rd 90 s.
        assert_eq!(window.estimate(1, 4), Some(30));
        assert_eq!(window.estimate(3, 4), Some(90));
        // 120 * 5 / 7 = 85.7 s: rounded up.
        assert_eq!(window.estimate(5, 7), Some(86));
        // A 1 ms mean still waits a whole second.
        let mut quick = ServiceWindow::new();
        quick.record(0, 1);
        assert_eq!(quick.estimate(1, 1000), Some(1));
        // Chats that take no time: no wait.
        let mut instant = ServiceWindow::new();
        instant.record(0, 0);
        assert_eq!(instant.estimate(10, 1), Some(0));
    }

    #[test]
    fn samples_expire_after_the_window() {
        let mut window = ServiceWindow::new();
        window.record(0, 600_000);
        window.record(WINDOW_MS / 2, 60_000);
        assert_eq!(window.estimate(1, 1), Some(330));
        window.expire(WINDOW_MS - 1);
        assert_eq!(window.len(), 2);
        window.expire(WINDOW_MS);
        assert_eq!(window.len(), 1, "the first ended 15 minutes ago");
        assert_eq!(window.estimate(1, 1), Some(60));
        window.expire(WINDOW_MS * 3 / 2);
        assert!(window.is_empty());
        assert_eq!(window.estimate(1, 1), None);
    }

    #[test]
    fn keeps_the_most_recent_samples() {
        let mut window = ServiceWindow::new();
        window.record(0, 1_000_000);
        for _ in 0..MAX_SAMPLES {
            window.record(1, 2_000);
        }
        assert_eq!(window.len(), MAX_SAMPLES);
        assert_eq!(
            window.estimate(1, 1),
            Some(2),
            "the long first sample is gone"
        );
    }

    #[test]
    fn capped_at_a_day() {
        let mut window = ServiceWindow::new();
        window.record(0, 3_600_000);
        assert_eq!(window.estimate(24, 1), Some(MAX_ESTIMATE_S));
        assert_eq!(window.estimate(25, 1), Some(MAX_ESTIMATE_S));
        for _ in 0..MAX_SAMPLES {
            window.record(0, u64::MAX);
        }
        assert_eq!(window.estimate(u64::MAX, 1), Some(MAX_ESTIMATE_S));
        assert_eq!(window.estimate(1, u64::MAX), Some(1));
    }

    #[test]
    fn time_going_back_expires_nothing() {
        let mut window = ServiceWindow::new();
        window.record(WINDOW_MS * 2, 1_000);
        window.expire(0);
        assert_eq!(window.len(), 1);
    }
}
