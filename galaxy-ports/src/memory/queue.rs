//! The one in-memory leased work queue, used by the mail outbox, the notification routes
//! and the runtime jobs: the claim, lease and finish rules of
//! [`Leased`](galaxy_core::domain::lease::Leased), written once.
//!
//! The queue holds no lock of its own: each store keeps it inside the state behind its
//! one mutex, so a claim or a batch finish is atomic with the store's other tables (the
//! mail attempts, the idempotency keys).

use std::collections::HashMap;
use std::collections::hash_map::Values;

use galaxy_core::domain::lease::{ClaimRequest, Finish, Leased};
use galaxy_core::domain::{LeaseToken, Timestamp};
use galaxy_core::ports::StoreError;

/// Items of one queue by id.
#[derive(Debug)]
pub(crate) struct LeasedQueue<T: Leased> {
    /// Every item ever queued (finished ones stay, as rows do, until a store purges them).
    items: HashMap<T::Id, T>,
}

impl<T: Leased> Default for LeasedQueue<T> {
    fn default() -> Self {
        Self {
            items: HashMap::new(),
        }
    }
}

impl<T: Leased + Clone> LeasedQueue<T> {
    /// One item.
    pub(crate) fn get(&self, id: T::Id) -> Option<&T> {
        self.items.get(&id)
    }

    /// One item, for an admin change outside the claim rules; `NotFound` when unknown.
    pub(crate) fn get_mut(&mut self, id: T::Id) -> Result<&mut T, StoreError> {
        self.items
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found(T::ENTITY, id))
    }

    /// Whether the id is taken.
    pub(crate) fn contains(&self, id: T::Id) -> bool {
        self.items.contains_key(&id)
    }

    /// Adds (or replaces) an item; callers check ids and idempotency keys first.
    pub(crate) fn insert(&mut self, item: T) {
        self.items.insert(item.id(), item);
    }

    /// Removes an item (retention purges).
    pub(crate) fn remove(&mut self, id: T::Id) -> Option<T> {
        self.items.remove(&id)
    }

    /// Every item, in no particular order.
    pub(crate) fn values(&self) -> Values<'_, T::Id, T> {
        self.items.values()
    }

    /// Claims up to `claim.limit` claimable items, smallest claim key first, and returns
    /// them as claimed. The caller's mutex makes it atomic, so two claimers never receive
    /// the same item.
    pub(crate) fn claim(&mut self, claim: &ClaimRequest) -> Vec<T> {
        let mut due: Vec<_> = self
            .items
            .values()
            .filter(|item| item.is_claimable_at(claim.now))
            .map(|item| (item.claim_key(), item.id()))
            .collect();
        due.sort_unstable();
        due.truncate(claim.limit as usize);
        let lease = claim.lease();
        let mut claimed = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some(item) = self.items.get_mut(&id) {
                item.take_claim(lease, claim.now);
                claimed.push(item.clone());
            }
        }
        claimed
    }

    /// The item `token` holds: `NotFound` when unknown, `Conflict` when the token does not
    /// hold its lease (see [`Leased::check_held`]).
    pub(crate) fn held_mut(&mut self, id: T::Id, token: LeaseToken) -> Result<&mut T, StoreError> {
        let item = self.get_mut(id)?;
        item.check_held(token)
            .map_err(|lost| StoreError::conflict(T::ENTITY, id, lost.to_string()))?;
        Ok(item)
    }

    /// Finishes one item under `token`: checks the lease, applies the queue's own
    /// `outcome`, then frees the lease and stamps `at`.
    pub(crate) fn finish(
        &mut self,
        id: T::Id,
        token: LeaseToken,
        at: Timestamp,
        outcome: impl FnOnce(&mut T),
    ) -> Result<T, StoreError> {
        let item = self.held_mut(id, token)?;
        outcome(item);
        item.end_lease(at);
        Ok(item.clone())
    }

    /// Finishes a batch, each item under its own token, in order (so an item listed
    /// twice finishes once and its later entries are `Conflict`, its lease being gone).
    pub(crate) fn finish_all<O>(
        &mut self,
        finishes: &[Finish<T::Id, O>],
        mut outcome: impl FnMut(&mut T, &O, Timestamp),
    ) -> Vec<Result<T, StoreError>> {
        finishes
            .iter()
            .map(|f| {
                let apply = |item: &mut T| outcome(item, &f.outcome, f.at);
                self.finish(f.id, f.token, f.at, apply)
            })
            .collect()
    }

    /// Extends the lease `token` holds to `until` (a long job still running); the caller
    /// stamps the change.
    pub(crate) fn renew(
        &mut self,
        id: T::Id,
        token: LeaseToken,
        until: Timestamp,
    ) -> Result<&mut T, StoreError> {
        let item = self.held_mut(id, token)?;
        if let Some(lease) = item.lease_mut() {
            lease.until = until;
        }
        Ok(item)
    }
}
