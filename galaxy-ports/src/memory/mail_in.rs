//! In-memory orders by e-mail: the inbound queue, orders addresses and send budgets.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Leased};
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::mail_in::{
    InboundMail, InboundOutcome, InboundStatus, OrdersAddress, ReportDelivery, TokenDigest,
    TokenRecord,
};
use galaxy_core::domain::{GameId, InboundMailId, Timestamp, UserId};
use galaxy_core::ports::{InboundFinish, InboundInsert, InboundMailStore, StoreError};

use super::queue::LeasedQueue;

/// Entity name of orders addresses in errors.
const ADDRESS: &str = "orders address";

/// Everything behind one mutex, so each call is atomic like a transaction.
#[derive(Debug, Default)]
pub struct MemoryMailInStore {
    /// The state.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every received message, as a leased queue.
    inbound: LeasedQueue<InboundMail>,
    /// Dedupe key -> message.
    keys: HashMap<String, InboundMailId>,
    /// Orders addresses by player and game.
    addresses: BTreeMap<(UserId, GameId), OrdersAddress>,
    /// Sends taken per bucket: (key, when).
    sends: HashMap<String, Vec<(String, Timestamp)>>,
}

impl MemoryMailInStore {
    /// The state; every method checks before it mutates, so a poisoned lock holds no
    /// half-written change.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Whether another address holds a token of `digest`.
    fn token_taken(&self, digest: &TokenDigest, by: (UserId, GameId)) -> bool {
        self.addresses
            .iter()
            .any(|(owner, a)| *owner != by && &a.token.digest == digest)
    }
}

#[async_trait]
impl InboundMailStore for MemoryMailInStore {
    async fn insert_inbound(&self, mail: &InboundMail) -> Result<InboundInsert, StoreError> {
        let mut state = self.lock();
        if let Some(first) = state.keys.get(&mail.dedupe_key) {
            return Ok(InboundInsert::Duplicate(*first));
        }
        if state.inbound.contains(mail.id) {
            return Err(StoreError::duplicate(InboundMail::ENTITY, mail.id));
        }
        state.keys.insert(mail.dedupe_key.clone(), mail.id);
        state.inbound.insert(mail.clone());
        Ok(InboundInsert::Stored)
    }

    async fn get_inbound(&self, id: InboundMailId) -> Result<InboundMail, StoreError> {
        let state = self.lock();
        state
            .inbound
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::not_found(InboundMail::ENTITY, id))
    }

    async fn claim_inbound(&self, claim: &ClaimRequest) -> Result<Vec<InboundMail>, StoreError> {
        Ok(self.lock().inbound.claim(claim))
    }

    async fn finish_inbound(&self, finish: &InboundFinish) -> Result<InboundMail, StoreError> {
        let mut state = self.lock();
        state
            .inbound
            .finish(finish.id, finish.token, finish.at, |mail| {
                mail.status = InboundStatus::Done;
                mail.outcome = Some(finish.outcome.outcome);
                mail.detail = Some(finish.outcome.detail.clone());
                // Handled: the message and its recipients (an orders token) go.
                mail.raw = Vec::new();
                mail.envelope_to = Vec::new();
            })
    }

    async fn count_inbound(&self) -> Result<Vec<(Option<InboundOutcome>, u64)>, StoreError> {
        let state = self.lock();
        let mut counts: BTreeMap<Option<&'static str>, u64> = BTreeMap::new();
        for mail in state.inbound.values() {
            *counts.entry(mail.outcome.map(|o| o.as_str())).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|(name, n)| (name.and_then(InboundOutcome::parse), n))
            .collect())
    }

    async fn inbound_pending(
        &self,
        after: Timestamp,
        through: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let state = self.lock();
        Ok(state.inbound.values().any(|mail| {
            let untried = mail.status == InboundStatus::Received && mail.attempts == 0;
            let in_hand = mail.status == InboundStatus::Processing
                && mail.lease.as_ref().is_some_and(|lease| lease.until > now);
            (untried || in_hand) && mail.received_at > after && mail.received_at <= through
        }))
    }

    async fn purge_inbound(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let old: Vec<(InboundMailId, String)> = state
            .inbound
            .values()
            .filter(|m| m.status == InboundStatus::Done && m.updated_at < before)
            .map(|m| (m.id, m.dedupe_key.clone()))
            .collect();
        for (id, key) in &old {
            state.inbound.remove(*id);
            state.keys.remove(key);
        }
        for sends in state.sends.values_mut() {
            sends.retain(|(_, at)| *at >= before);
        }
        state.sends.retain(|_, sends| !sends.is_empty());
        Ok(old.len() as u64)
    }

    async fn orders_address(
        &self,
        user_id: UserId,
        game_id: GameId,
    ) -> Result<Option<OrdersAddress>, StoreError> {
        Ok(self.lock().addresses.get(&(user_id, game_id)).cloned())
    }

    async fn ensure_orders_address(
        &self,
        address: &OrdersAddress,
    ) -> Result<OrdersAddress, StoreError> {
        let mut state = self.lock();
        let owner = (address.user_id, address.game_id);
        if let Some(existing) = state.addresses.get(&owner) {
            return Ok(existing.clone());
        }
        if state.token_taken(&address.token.digest, owner) {
            return Err(StoreError::duplicate(ADDRESS, address.token.digest));
        }
        state.addresses.insert(owner, address.clone());
        Ok(address.clone())
    }

    async fn rotate_orders_address(
        &self,
        user_id: UserId,
        game_id: GameId,
        token: &TokenRecord,
        replacing: Option<TokenDigest>,
        at: Timestamp,
    ) -> Result<OrdersAddress, StoreError> {
        let mut state = self.lock();
        let owner = (user_id, game_id);
        if state.token_taken(&token.digest, owner) {
            return Err(StoreError::duplicate(ADDRESS, token.digest));
        }
        let address = state
            .addresses
            .get_mut(&owner)
            .ok_or_else(|| StoreError::not_found(ADDRESS, format!("{user_id}/{game_id}")))?;
        if replacing.is_some_and(|old| old != address.token.digest) {
            return Ok(address.clone());
        }
        address.token = *token;
        address.rotated_at = at;
        Ok(address.clone())
    }

    async fn set_report_delivery(
        &self,
        user_id: UserId,
        game_id: GameId,
        delivery: ReportDelivery,
    ) -> Result<OrdersAddress, StoreError> {
        let mut state = self.lock();
        let address = state
            .addresses
            .get_mut(&(user_id, game_id))
            .ok_or_else(|| StoreError::not_found(ADDRESS, format!("{user_id}/{game_id}")))?;
        address.report_delivery = delivery;
        Ok(address.clone())
    }

    async fn find_orders_address(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<OrdersAddress>, StoreError> {
        let state = self.lock();
        Ok(state
            .addresses
            .values()
            .find(|a| &a.token.digest == digest)
            .cloned())
    }

    async fn take_send(
        &self,
        bucket: &str,
        key: &str,
        limit: RateLimit,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let sends = state.sends.entry(bucket.to_owned()).or_default();
        if sends.iter().any(|(k, _)| k == key) {
            return Ok(true);
        }
        let full = limit
            .full_until(now, sends.iter().map(|(_, at)| (*at, 1)))
            .is_some();
        if full {
            return Ok(false);
        }
        sends.retain(|(_, at)| limit.counts(*at, now));
        sends.push((key.to_owned(), now));
        Ok(true)
    }
}
