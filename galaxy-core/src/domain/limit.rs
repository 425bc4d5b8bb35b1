//! Limits. Sliding-window limits: how much may happen per window in one bucket, and when
//! a full bucket has room again. Open limits: how many things (connections, event
//! streams) one process holds open at once, in all and per client.
//!
//! The stores count a rate bucket and write in one atomic step (see the ports that take a
//! [`RateLimit`]); the arithmetic lives here so every store computes the same answer.
//! [`OpenSlots`] count in memory: each replica bounds what it holds itself.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::TimeDelta;

use super::Timestamp;

/// The client an address-keyed limit counts: the address itself for IPv4 (an
/// IPv4-mapped IPv6 address counts as its IPv4 address), the /64 network for IPv6, since
/// one subscriber commonly holds a whole /64 and could otherwise spread over its
/// addresses to escape any per-address bound.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
    }
}

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

/// Bounds on what one process holds open at once (connections, event streams): at most
/// `total` in all and `per_key` for one key (a client address, a user). Without such a
/// bound one client could hold every connection a listener allows with requests that
/// never end. Each admitted one holds an [`OpenSlot`] that frees its place when it is
/// dropped, however its holder ends (done, cut off, panicked), so a place cannot leak.
///
/// Counted in memory, per process: behind a load balancer each replica bounds its own.
#[derive(Debug)]
pub struct OpenSlots<K: Eq + Hash> {
    /// Open at most in all.
    total: usize,
    /// Open at most per key.
    per_key: usize,
    /// What is open now.
    state: Mutex<Open<K>>,
}

/// What an [`OpenSlots`] holds now.
#[derive(Debug)]
struct Open<K> {
    /// Open per key; a key with none open has no entry, so the map stays as small as
    /// what is open.
    by_key: HashMap<K, usize>,
    /// Open in all.
    total: usize,
}

/// Why [`OpenSlots::admit`] refused: which bound is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotsFull {
    /// The key holds `per_key` already.
    #[error("{0} already open for this client, the most allowed")]
    PerKey(usize),
    /// The process holds `total` already.
    #[error("{0} already open in all, the most allowed")]
    Total(usize),
}

/// One admitted open thing's place in its [`OpenSlots`]; dropping it frees the place.
#[derive(Debug)]
#[must_use = "the place is freed as soon as the slot is dropped"]
pub struct OpenSlot<K: Eq + Hash> {
    /// Where the place is counted.
    slots: Arc<OpenSlots<K>>,
    /// Whose place it is.
    key: K,
}

impl<K: Eq + Hash + Clone> OpenSlots<K> {
    /// Bounds of `total` in all and `per_key` per key (each at least 1: a bound of 0
    /// would refuse everything, which validated settings rule out).
    pub fn new(total: usize, per_key: usize) -> Arc<Self> {
        Arc::new(Self {
            total: total.max(1),
            per_key: per_key.max(1),
            state: Mutex::new(Open {
                by_key: HashMap::new(),
                total: 0,
            }),
        })
    }

    /// Counts one more open for `key`, unless a bound is reached. The check and the
    /// count are one step under the lock, so concurrent callers never overshoot.
    pub fn admit(self: &Arc<Self>, key: K) -> Result<OpenSlot<K>, SlotsFull> {
        let mut open = self.lock();
        let of_key = open.by_key.get(&key).copied().unwrap_or(0);
        if of_key >= self.per_key {
            return Err(SlotsFull::PerKey(self.per_key));
        }
        if open.total >= self.total {
            return Err(SlotsFull::Total(self.total));
        }
        open.total += 1;
        *open.by_key.entry(key.clone()).or_default() += 1;
        Ok(OpenSlot {
            slots: Arc::clone(self),
            key,
        })
    }

    /// Open now for `key`.
    pub fn open_for(&self, key: &K) -> usize {
        self.lock().by_key.get(key).copied().unwrap_or(0)
    }

    /// Open now in all.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// The counts stay right even if a holder panicked while holding the lock: every
    /// change under it is a single step.
    fn lock(&self) -> MutexGuard<'_, Open<K>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<K: Eq + Hash> Drop for OpenSlot<K> {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_key.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_key.remove(&self.key);
            }
        }
    }
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

    #[test]
    fn open_slots_bound_each_key_and_the_total_and_free_on_drop() {
        let slots = OpenSlots::new(3, 2);
        let a1 = slots.admit("a");
        let a2 = slots.admit("a");
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(slots.admit("a").err(), Some(SlotsFull::PerKey(2)));
        let b1 = slots.admit("b");
        assert!(b1.is_ok());
        // Three open in all: another key is refused by the total.
        assert_eq!(slots.admit("c").err(), Some(SlotsFull::Total(3)));
        assert_eq!((slots.open(), slots.open_for(&"a")), (3, 2));
        drop(a1);
        assert_eq!((slots.open(), slots.open_for(&"a")), (2, 1));
        let c1 = slots.admit("c");
        assert!(c1.is_ok());
        drop((a2, b1, c1));
        assert_eq!(slots.open(), 0);
        // Keys with nothing open are forgotten.
        assert!(slots.lock().by_key.is_empty());
    }

    #[test]
    fn concurrent_admits_never_overshoot_a_bound() {
        let slots = OpenSlots::new(1000, 5);
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (slots, barrier) = (Arc::clone(&slots), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..50)
                        .filter_map(|_| slots.admit("one").ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut held = Vec::new();
        for handle in handles {
            match handle.join() {
                Ok(slots) => held.extend(slots),
                Err(_) => panic!("an admitting thread panicked"),
            }
        }
        assert_eq!(held.len(), 5);
        assert_eq!(slots.open_for(&"one"), 5);
        held.clear();
        assert_eq!(slots.open(), 0);
    }
}
