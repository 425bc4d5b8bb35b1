//! In-memory runtime store: runtime records with their turn leases, durable runtime jobs
//! and health events.

mod health;
mod jobs;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::health::HealthEvent;
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::runtime::{RuntimeBinding, RuntimeJob, RuntimeRecord, RuntimeStatus};
use galaxy_core::domain::{GameId, HealthEventId, JobId, LeaseToken, Timestamp};
use galaxy_core::ports::{RuntimeRecordStore, StoreError, TurnUpdate};

use super::paging::{Order, paginate};
use super::queue::LeasedQueue;

/// Runtime records, runtime jobs and health events, behind one mutex so that every call
/// is atomic and no two claimers can receive the same game or job.
#[derive(Debug, Default)]
pub struct MemoryRuntimeStore {
    /// Everything; one lock keeps each call a transaction.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// One record per game, keyed by game.
    records: HashMap<GameId, RuntimeRecord>,
    /// Every job ever queued, as a leased queue (jobs are kept after they finish, as
    /// rows are).
    jobs: LeasedQueue<RuntimeJob>,
    /// Idempotency key -> job, so a repeated enqueue finds the first job.
    job_keys: HashMap<String, JobId>,
    /// Appended health events, keyed by id so a replayed append is caught.
    health_events: HashMap<HealthEventId, HealthEvent>,
}

impl State {
    fn record_mut(&mut self, game_id: GameId) -> Result<&mut RuntimeRecord, StoreError> {
        self.records
            .get_mut(&game_id)
            .ok_or_else(|| StoreError::not_found(RECORD, game_id))
    }
}

/// Entity name of runtime records in errors.
const RECORD: &str = "runtime record";

impl MemoryRuntimeStore {
    /// The state; a panic in another caller cannot leave it half-written (every method
    /// validates before it mutates), so a poisoned lock is safe to take over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to a game's record, stamps `updated_at` and returns the result.
    fn update(
        &self,
        game_id: GameId,
        at: Timestamp,
        change: impl FnOnce(&mut RuntimeRecord),
    ) -> Result<RuntimeRecord, StoreError> {
        let mut state = self.lock();
        let record = state.record_mut(game_id)?;
        change(record);
        record.updated_at = at;
        Ok(record.clone())
    }
}

#[async_trait]
impl RuntimeRecordStore for MemoryRuntimeStore {
    async fn insert_record(&self, record: &RuntimeRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.records.contains_key(&record.game_id) {
            return Err(StoreError::duplicate(RECORD, record.game_id));
        }
        state.records.insert(record.game_id, record.clone());
        Ok(())
    }

    async fn get_record(&self, game_id: GameId) -> Result<RuntimeRecord, StoreError> {
        let state = self.lock();
        let record = state.records.get(&game_id);
        record
            .cloned()
            .ok_or_else(|| StoreError::not_found(RECORD, game_id))
    }

    async fn list_records(
        &self,
        status: Option<RuntimeStatus>,
        page: &PageRequest,
    ) -> Result<Page<RuntimeRecord>, StoreError> {
        let state = self.lock();
        let rows = state
            .records
            .values()
            .filter(|r| status.is_none_or(|s| r.status == s));
        let key = |r: &RuntimeRecord| (r.created_at, r.game_id.as_uuid());
        paginate(rows, key, Order::Ascending, page)
    }

    async fn update_record_status(
        &self,
        game_id: GameId,
        expected: RuntimeStatus,
        to: RuntimeStatus,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        // The table is checked first: a change that can never be valid is refused the
        // same way whatever the stored status is.
        expected.check(to)?;
        let mut state = self.lock();
        let record = state.record_mut(game_id)?;
        if record.status != expected {
            let detail = format!("status is {}, expected {expected}", record.status);
            return Err(StoreError::conflict(RECORD, game_id, detail));
        }
        record.status = to;
        record.updated_at = at;
        Ok(record.clone())
    }

    async fn set_binding(
        &self,
        game_id: GameId,
        binding: Option<RuntimeBinding>,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.update(game_id, at, |r| r.binding = binding)
    }

    async fn set_healthy(
        &self,
        game_id: GameId,
        healthy: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.update(game_id, at, |r| r.healthy = healthy)
    }

    async fn set_schedule(
        &self,
        game_id: GameId,
        next_turn_at: Option<Timestamp>,
        skip_next_tick: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.update(game_id, at, |r| {
            r.next_turn_at = next_turn_at;
            r.skip_next_tick = skip_next_tick;
        })
    }

    async fn claim_due_turns(
        &self,
        claim: &ClaimRequest,
    ) -> Result<Vec<RuntimeRecord>, StoreError> {
        let mut state = self.lock();
        let mut due: Vec<_> = state
            .records
            .values()
            .filter(|r| r.is_due_at(claim.now))
            .map(|r| (r.next_turn_at, r.created_at, r.game_id))
            .collect();
        due.sort();
        due.truncate(claim.limit as usize);
        let lease = claim.lease();
        let mut claimed = Vec::with_capacity(due.len());
        for (_, _, game_id) in due {
            let record = state.record_mut(game_id)?;
            record.turn_lease = Some(lease);
            record.updated_at = claim.now;
            claimed.push(record.clone());
        }
        Ok(claimed)
    }

    async fn claim_turn(
        &self,
        game_id: GameId,
        claim: &ClaimRequest,
    ) -> Result<RuntimeRecord, StoreError> {
        let mut state = self.lock();
        let record = state.record_mut(game_id)?;
        if record.status != RuntimeStatus::Running {
            let detail = format!("status is {}, not running", record.status);
            return Err(StoreError::conflict(RECORD, game_id, detail));
        }
        if let Some(lease) = record.turn_lease
            && lease.token != claim.token
            && lease.is_held_at(claim.now)
        {
            let detail = format!("turn held by another claim until {}", lease.until);
            return Err(StoreError::conflict(RECORD, game_id, detail));
        }
        record.turn_lease = Some(claim.lease());
        record.updated_at = claim.now;
        Ok(record.clone())
    }

    async fn renew_turn_lease(
        &self,
        game_id: GameId,
        token: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        let mut state = self.lock();
        let record = state.record_mut(game_id)?;
        // Only the token is compared, as for `complete_turn`.
        match &mut record.turn_lease {
            Some(lease) if lease.token == token => lease.until = until,
            _ => {
                let detail = "turn lease not held by this token";
                return Err(StoreError::conflict(RECORD, game_id, detail));
            }
        }
        record.updated_at = at;
        Ok(record.clone())
    }

    async fn complete_turn(
        &self,
        game_id: GameId,
        token: LeaseToken,
        update: &TurnUpdate,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        let mut state = self.lock();
        let record = state.record_mut(game_id)?;
        // Only the token is compared: a lapsed lease nobody re-claimed still belongs to
        // its holder, exactly as the SQL `WHERE turn_lease_token = $token` behaves.
        if record.turn_lease.map(|l| l.token) != Some(token) {
            let detail = "turn lease not held by this token";
            return Err(StoreError::conflict(RECORD, game_id, detail));
        }
        record.current_turn = update.current_turn;
        record.next_turn_at = update.next_turn_at;
        record.skip_next_tick = update.skip_next_tick;
        record.turn_lease = None;
        record.updated_at = at;
        Ok(record.clone())
    }
}
