//! Leases on claimed work: whoever claims an item from a work queue holds it until the
//! lease runs out; after that anyone may claim it again.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::{LeaseToken, Timestamp};

/// A claim on one work item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// Identifies the claim; completing the item requires it, so a worker whose lease
    /// expired (and whose item someone else claimed) cannot complete it twice.
    pub token: LeaseToken,
    /// When the claim lapses.
    pub until: Timestamp,
}

impl Lease {
    /// A lease of `length` from `now`.
    pub fn new(token: LeaseToken, now: Timestamp, length: TimeDelta) -> Self {
        Self {
            token,
            until: now + length,
        }
    }

    /// Whether the lease still holds at `now`.
    pub fn is_held_at(&self, now: Timestamp) -> bool {
        now < self.until
    }
}

/// How a worker asks a store for work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The token to stamp on every claimed item.
    pub token: LeaseToken,
    /// The current instant (items due at or before it are eligible).
    pub now: Timestamp,
    /// How long the claim holds.
    pub lease: TimeDelta,
    /// At most this many items.
    pub limit: u32,
}

impl ClaimRequest {
    /// The lease every claimed item gets.
    pub fn lease(&self) -> Lease {
        Lease::new(self.token, self.now, self.lease)
    }
}
