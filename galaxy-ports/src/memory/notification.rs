//! In-memory notification store: intents, their routes and dead letters.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Leased};
use galaxy_core::domain::notification::{NotificationIntent, NotificationRoute, RouteStatus};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::{IntentId, LeaseToken, RouteId, Timestamp};
use galaxy_core::ports::{
    BatchFinished, IntentInsert, NotificationStore, RouteFinish, RouteNext, StoreError,
};

use super::paging::{Order, paginate};
use super::queue::LeasedQueue;

/// Entity name of routes in errors.
const ROUTE: &str = NotificationRoute::ENTITY;

/// Intents and routes behind one mutex, so an intent and its routes are stored
/// atomically and no two claimers can receive the same route.
#[derive(Debug, Default)]
pub struct MemoryNotificationStore {
    /// Everything; one lock keeps each call a transaction.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every stored intent.
    intents: HashMap<IntentId, NotificationIntent>,
    /// Idempotency key -> intent, so a replayed notification is recognised.
    keys: HashMap<String, IntentId>,
    /// Every route of every intent, as a leased queue; dead letters are routes in
    /// `dead_letter`.
    routes: LeasedQueue<NotificationRoute>,
}

impl MemoryNotificationStore {
    /// The state; every method validates before it mutates, so a lock poisoned by a
    /// panicking caller holds no half-written change and is safe to take over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl NotificationStore for MemoryNotificationStore {
    async fn insert_intent(
        &self,
        intent: &NotificationIntent,
        routes: &[NotificationRoute],
    ) -> Result<IntentInsert, StoreError> {
        let mut state = self.lock();
        if let Some(existing) = state.keys.get(&intent.idempotency_key) {
            return Ok(IntentInsert::Duplicate(*existing));
        }
        if state.intents.contains_key(&intent.id) {
            return Err(StoreError::duplicate("notification intent", intent.id));
        }
        // Every route is checked before anything is written: all or nothing.
        let mut fresh = HashSet::with_capacity(routes.len());
        for route in routes {
            if state.routes.contains(route.id) || !fresh.insert(route.id) {
                return Err(StoreError::duplicate(ROUTE, route.id));
            }
        }
        state.keys.insert(intent.idempotency_key.clone(), intent.id);
        state.intents.insert(intent.id, intent.clone());
        for route in routes {
            state.routes.insert(route.clone());
        }
        Ok(IntentInsert::Inserted)
    }

    async fn get_intent(&self, id: IntentId) -> Result<NotificationIntent, StoreError> {
        let state = self.lock();
        let intent = state.intents.get(&id).cloned();
        intent.ok_or_else(|| StoreError::not_found("notification intent", id))
    }

    async fn list_routes(
        &self,
        status: Option<RouteStatus>,
        page: &PageRequest,
    ) -> Result<Page<NotificationRoute>, StoreError> {
        let state = self.lock();
        let rows = state
            .routes
            .values()
            .filter(|r| status.is_none_or(|s| r.status == s));
        let key = |r: &NotificationRoute| (r.created_at, r.id.as_uuid());
        paginate(rows, key, Order::Ascending, page)
    }

    async fn claim_routes(
        &self,
        claim: &ClaimRequest,
    ) -> Result<Vec<NotificationRoute>, StoreError> {
        Ok(self.lock().routes.claim(claim))
    }

    async fn finish_route(
        &self,
        id: RouteId,
        token: LeaseToken,
        next: &RouteNext,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        let mut state = self.lock();
        state
            .routes
            .finish(id, token, at, |route| end_dispatch(route, next))
    }

    async fn finish_routes(&self, finishes: &[RouteFinish]) -> BatchFinished<NotificationRoute> {
        let mut state = self.lock();
        Ok(state
            .routes
            .finish_all(finishes, |route, next, _| end_dispatch(route, next)))
    }

    async fn retry_dead_letter(
        &self,
        id: RouteId,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        let mut state = self.lock();
        let route = state.routes.get_mut(id)?;
        if route.status != RouteStatus::DeadLetter {
            let detail = format!(
                "status is {}, only dead letters can be retried",
                route.status
            );
            return Err(StoreError::conflict(ROUTE, id, detail));
        }
        route.status = RouteStatus::Pending;
        route.attempts = 0;
        route.next_attempt_at = at;
        route.lease = None;
        route.updated_at = at;
        Ok(route.clone())
    }

    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let open: HashSet<IntentId> = state
            .routes
            .values()
            .filter(|r| r.status != RouteStatus::Delivered)
            .map(|r| r.intent_id)
            .collect();
        let empty = serde_json::json!({});
        let compacted: HashSet<IntentId> = state
            .intents
            .values()
            .filter(|i| i.created_at < before && i.payload != empty && !open.contains(&i.id))
            .map(|i| i.id)
            .collect();
        let routes: Vec<RouteId> = state
            .routes
            .values()
            .filter(|r| compacted.contains(&r.intent_id))
            .map(|r| r.id)
            .collect();
        for id in routes {
            state.routes.remove(id);
        }
        for id in &compacted {
            if let Some(intent) = state.intents.get_mut(id) {
                intent.payload = empty.clone();
            }
        }
        Ok(compacted.len() as u64)
    }
}

/// Applies how a dispatch ended to a route its token holds (the queue frees the lease).
fn end_dispatch(route: &mut NotificationRoute, next: &RouteNext) {
    match next {
        RouteNext::Delivered => route.status = RouteStatus::Delivered,
        RouteNext::Retry { at: due, error } => {
            route.status = RouteStatus::Retrying;
            route.next_attempt_at = *due;
            route.last_error = Some(error.clone());
        }
        RouteNext::DeadLetter { error } => {
            route.status = RouteStatus::DeadLetter;
            route.last_error = Some(error.clone());
        }
    }
}
