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

/// Where an item of a leased work queue stands, as far as the queue is concerned: each
/// queue maps its own statuses onto these three (mail `pending`/`retrying` are waiting,
/// `sending` is leased, `sent`/`dead` are done).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueState {
    /// Waiting for its due instant ([`Leased::due_at`]); claimable from then on.
    Waiting,
    /// Claimed: held while its lease holds, claimable again once it lapsed (its worker
    /// died mid-item).
    Leased,
    /// Finished for good; never claimed again (an admin action may re-queue it).
    Done,
}

/// The order in which claims hand out items: the smallest key first, so every store
/// (and every claimer of one store) agrees on "oldest first".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaimKey {
    /// The primary instant: when the item is due (mail, routes), or when it was created
    /// (jobs, which run in creation order).
    pub first: Timestamp,
    /// When the item was created (the tie-break of equal due instants).
    pub created_at: Timestamp,
    /// The item's id as a UUID (the final tie-break, so the order is total).
    pub id: uuid::Uuid,
}

/// A claim's token no longer holds the item (it finished, was never claimed, or its
/// lease lapsed and another claim took it): the worker's result must not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status is {status}, lease not held by this token")]
pub struct LeaseNotHeld {
    /// The item's stored status (its own name, e.g. `sent`), for the error message.
    pub status: &'static str,
}

/// The one claim/lease/finish shape every leased work queue shares (mail deliveries,
/// notification routes, runtime jobs): what is claimable, what a claim does to an item,
/// and what finishing under a token means. The in-memory queue and the Postgres claim
/// builder implement exactly these rules, and one conformance suite checks them on every
/// queue of every store.
///
/// The rules:
/// - an item is claimable when waiting and due, or leased with a lapsed lease;
/// - a claim stamps the claim's lease, makes the item leased and counts one attempt;
/// - only the token of the lease finishes (or renews) it, even after the lease lapsed,
///   as long as nobody claimed it again; any other token gets [`LeaseNotHeld`], which
///   stores report as `Conflict`;
/// - finishing frees the lease (what else it changes is the queue's own outcome).
pub trait Leased {
    /// The item's id.
    type Id: Copy
        + Eq
        + std::hash::Hash
        + Ord
        + std::fmt::Display
        + std::fmt::Debug
        + Send
        + Sync
        + 'static;
    /// What the item is called in errors (`mail`, `notification route`, `runtime job`).
    const ENTITY: &'static str;

    /// The item's id.
    fn id(&self) -> Self::Id;
    /// Where the item stands in the queue.
    fn queue_state(&self) -> QueueState;
    /// The item's own status name, for error messages.
    fn status_name(&self) -> &'static str;
    /// When a waiting item becomes claimable.
    fn due_at(&self) -> Timestamp;
    /// The claim order (smallest first).
    fn claim_key(&self) -> ClaimKey;
    /// The claim holding the item, if any.
    fn lease(&self) -> Option<Lease>;
    /// The lease, for renewal.
    fn lease_mut(&mut self) -> Option<&mut Lease>;
    /// Claims made so far (a lapsed lease shows as one more).
    fn attempts(&self) -> u32;
    /// Applies a claim: leased status, the lease, one more attempt, `updated_at = now`.
    fn take_claim(&mut self, lease: Lease, now: Timestamp);
    /// Frees the lease at the end of a finish and stamps `updated_at` (the outcome's own
    /// changes are applied before).
    fn end_lease(&mut self, at: Timestamp);

    /// Whether a worker may claim the item at `now`: waiting and due, or leased with a
    /// lapsed (or missing) lease.
    fn is_claimable_at(&self, now: Timestamp) -> bool {
        match self.queue_state() {
            QueueState::Waiting => self.due_at() <= now,
            QueueState::Leased => self.lease().is_none_or(|l| !l.is_held_at(now)),
            QueueState::Done => false,
        }
    }

    /// Checks that `token` may finish or renew the item. Only the token decides: a lapsed
    /// lease nobody claimed again still belongs to its holder (as the SQL `WHERE status =
    /// <leased> AND lease_token = $token` behaves), so a slow worker's result is kept
    /// unless someone else took the item over.
    fn check_held(&self, token: LeaseToken) -> Result<(), LeaseNotHeld> {
        let held = self.queue_state() == QueueState::Leased
            && self.lease().is_some_and(|l| l.token == token);
        if held {
            Ok(())
        } else {
            Err(LeaseNotHeld {
                status: self.status_name(),
            })
        }
    }
}

/// One item to finish under a lease: the batch element of `finish_*` calls. Finishing a
/// batch checks every item against its own token, so one lost lease fails that item only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish<I, O> {
    /// The item.
    pub id: I,
    /// The token of the claim that holds it.
    pub token: LeaseToken,
    /// The queue's own outcome (where the item goes next).
    pub outcome: O,
    /// When it finished (`updated_at`).
    pub at: Timestamp,
}
