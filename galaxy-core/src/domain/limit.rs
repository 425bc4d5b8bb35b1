//! Sliding-window limits: how much may happen per window in one bucket, and when a full
//! bucket has room again.
//!
//! The stores count the bucket and write in one atomic step (see the ports that take a
//! [`RateLimit`]); the arithmetic lives here so every store computes the same answer.

use chrono::TimeDelta;

use super::Timestamp;

/// At most `max` per sliding `window` in one bucket (one e-mail address, one client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// What one bucket may hold per window.
    pub max: u32,
    /// Length of the sliding window.
    pub window: TimeDelta,
}

impl RateLimit {
    /// The start of the window ending at `now`. Something that happened at `t` counts
    /// while `t` is strictly after the start, i.e. for exactly `window` after `t`.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        now - self.window
    }

    /// Whether something that happened at `at` still counts at `now`.
    pub fn counts(&self, at: Timestamp, now: Timestamp) -> bool {
        at > self.window_start(now)
    }

    /// When a bucket that saw `events` (instant, weight) has room again at `now`, or
    /// `None` when it has room now. Events outside the window are ignored, so a store
    /// may hand over a superset.
    pub fn full_until(
        &self,
        now: Timestamp,
        events: impl IntoIterator<Item = (Timestamp, u32)>,
    ) -> Option<Timestamp> {
        let counted = events
            .into_iter()
            .filter(|(at, _)| self.counts(*at, now))
            .map(|(at, weight)| (at + self.window, weight));
        bucket_frees_at(self.max, counted)
    }
}

/// When a bucket holding `entries` is below `max` again, so one more fits.
///
/// Each entry is the instant it leaves the bucket and its weight (1 for a counted event,
/// or e.g. the wrong codes one challenge collected). `None` when the total is already
/// below `max`; otherwise the earliest instant by which enough entries have left. The
/// entries may come in any order.
pub fn bucket_frees_at(
    max: u32,
    entries: impl IntoIterator<Item = (Timestamp, u32)>,
) -> Option<Timestamp> {
    let mut entries: Vec<(Timestamp, u32)> = entries.into_iter().collect();
    let mut total: u64 = entries.iter().map(|(_, weight)| u64::from(*weight)).sum();
    let max = u64::from(max);
    if total < max {
        return None;
    }
    entries.sort_unstable();
    for (leaves_at, weight) in entries {
        total -= u64::from(weight);
        if total < max {
            return Some(leaves_at);
        }
    }
    // Only reachable with `max == 0`, which validated settings rule out: such a bucket
    // never has room, so report the latest instant there is.
    Some(Timestamp::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_timestamp(1_893_456_000 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_bucket_below_its_max_has_room_now() {
        assert_eq!(bucket_frees_at(3, []), None);
        assert_eq!(bucket_frees_at(3, [(at(5), 1), (at(9), 1)]), None);
        assert_eq!(bucket_frees_at(10, [(at(5), 4), (at(9), 5)]), None);
    }

    #[test]
    fn a_full_bucket_frees_when_enough_entries_left() {
        // Full at exactly the max: the oldest leaving makes room.
        let full = [(at(30), 1), (at(10), 1), (at(20), 1)];
        assert_eq!(bucket_frees_at(3, full), Some(at(10)));
        // Over the max (the limit was lowered): two must leave.
        let over = [(at(30), 1), (at(10), 1), (at(20), 1), (at(40), 1)];
        assert_eq!(bucket_frees_at(3, over), Some(at(20)));
        // Weighted: 6 + 3 + 2 = 11 against 10; the first leaving is enough.
        assert_eq!(
            bucket_frees_at(10, [(at(7), 3), (at(5), 6), (at(9), 2)]),
            Some(at(5))
        );
        // 1 + 10 = 11 against 10: the light oldest leaving is not enough.
        assert_eq!(bucket_frees_at(10, [(at(5), 1), (at(8), 10)]), Some(at(8)));
        assert_eq!(bucket_frees_at(0, []), Some(Timestamp::MAX_UTC));
    }

    #[test]
    fn an_event_counts_for_exactly_the_window() {
        let limit = RateLimit {
            max: 5,
            window: TimeDelta::seconds(60),
        };
        assert!(limit.counts(at(0), at(59)));
        assert!(!limit.counts(at(0), at(60)));
        assert_eq!(limit.window_start(at(60)), at(0));
        // Five in the window (one more, at 0, has left it): full until the one at 10
        // leaves, 60 s after it.
        let seen = [0, 10, 20, 30, 40, 50].map(|secs| (at(secs), 1));
        assert_eq!(limit.full_until(at(60), seen), Some(at(70)));
        assert_eq!(limit.full_until(at(70), seen), None);
        // Weighted: 3 + 2 = 5.
        assert_eq!(
            limit.full_until(at(45), [(at(0), 3), (at(30), 2)]),
            Some(at(60))
        );
    }
}
