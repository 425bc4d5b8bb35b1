//! A batch of finishes as the queue's finishing statement binds it ([`FinishPlan`]), and
//! the single-item wrappers ([`one`], [`single`]) through which the one-item finishes of
//! the ports share the batched statement.

use std::collections::HashSet;

use galaxy_core::domain::lease::Finish;
use galaxy_core::domain::{LeaseToken, Timestamp};
use galaxy_core::ports::StoreError;
use uuid::Uuid;

/// A batch of finishes, ready to bind: the common arrays of its distinct items (an item
/// listed twice is sent once; [`QueueTable::settle`] reports its later entries).
pub(crate) struct FinishPlan<'a, I, O> {
    /// What the caller asked for, in order.
    pub(super) finishes: &'a [Finish<I, O>],
    /// The first entry of each distinct item, in order.
    first: Vec<&'a Finish<I, O>>,
    /// How an id becomes the row's UUID.
    uuid: fn(I) -> Uuid,
}

impl<'a, I: Copy + Eq + std::hash::Hash, O> FinishPlan<'a, I, O> {
    /// Plans `finishes`.
    pub(crate) fn new(finishes: &'a [Finish<I, O>], uuid: fn(I) -> Uuid) -> Self {
        let mut seen = HashSet::with_capacity(finishes.len());
        let first = finishes.iter().filter(|f| seen.insert(f.id)).collect();
        Self {
            finishes,
            first,
            uuid,
        }
    }

    /// The distinct items to send, in order.
    pub(crate) fn items(&self) -> &[&'a Finish<I, O>] {
        &self.first
    }

    /// The row UUID of an id.
    pub(super) fn uuid_of(&self, id: I) -> Uuid {
        (self.uuid)(id)
    }

    /// The distinct items with their UUIDs.
    pub(super) fn unique(&self) -> impl Iterator<Item = (&'a Finish<I, O>, Uuid)> + '_ {
        self.first.iter().map(|f| (*f, (self.uuid)(f.id)))
    }

    /// `$1`: the ids.
    pub(crate) fn ids(&self) -> Vec<Uuid> {
        self.unique().map(|(_, uuid)| uuid).collect()
    }

    /// `$2`: the tokens.
    pub(crate) fn tokens(&self) -> Vec<Uuid> {
        self.first.iter().map(|f| f.token.as_uuid()).collect()
    }

    /// `$4`: the instants.
    pub(crate) fn ats(&self) -> Vec<Timestamp> {
        self.first.iter().map(|f| f.at).collect()
    }

    /// `$3` and onwards: one value per distinct item.
    pub(crate) fn column<T>(&self, value: impl Fn(&'a O) -> T) -> Vec<T> {
        self.first.iter().map(|f| value(&f.outcome)).collect()
    }
}

/// One finish of a single item, as a batch of one.
pub(crate) fn one<I, O>(id: I, token: LeaseToken, outcome: O, at: Timestamp) -> [Finish<I, O>; 1] {
    [Finish {
        id,
        token,
        outcome,
        at,
    }]
}

/// The single result of a batch of one.
pub(crate) fn single<T>(results: Vec<Result<T, StoreError>>) -> Result<T, StoreError> {
    results.into_iter().next().unwrap_or_else(|| {
        Err(StoreError::internal(
            "a finish of one item returned nothing",
        ))
    })
}
