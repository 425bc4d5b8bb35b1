//! In-memory record of play: the turn archive and the orders submissions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::lease::Lease;
use galaxy_core::domain::play::{OrdersSubmission, PlayedTurn, TurnReport};
use galaxy_core::domain::{GameId, LeaseToken, SubmissionId, Timestamp};
use galaxy_core::ports::{OrdersCount, OrdersStore, StoreError, TurnArchiveStore};

/// Archived turns with their reports, and orders submissions, behind one mutex so that a
/// turn and its reports are stored in one step, as a database transaction would.
#[derive(Debug, Default)]
pub struct MemoryPlayStore {
    /// Everything; one lock keeps each call atomic.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Played turns by game, then turn number (so listing is in turn order).
    turns: HashMap<GameId, BTreeMap<u32, PlayedTurn>>,
    /// When each announced turn was announced, by (game, turn); a turn absent here is
    /// still owed its effects.
    announced: HashMap<(GameId, u32), Timestamp>,
    /// Reports by (game, turn, race).
    reports: HashMap<(GameId, u32, String), TurnReport>,
    /// Submissions in arrival order; the order breaks ties of equal timestamps.
    submissions: Vec<OrdersSubmission>,
    /// Ids already stored, to refuse a replayed append.
    submission_ids: HashSet<SubmissionId>,
    /// The orders lease of each (game, race) that has one.
    orders_leases: HashMap<(GameId, String), Lease>,
}

impl MemoryPlayStore {
    /// The state; every method validates before it mutates, so a poisoned lock is safe to
    /// take over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TurnArchiveStore for MemoryPlayStore {
    async fn archive_turn(
        &self,
        turn: &PlayedTurn,
        reports: &[TurnReport],
    ) -> Result<bool, StoreError> {
        turn.check_reports(reports).map_err(StoreError::internal)?;
        let mut state = self.lock();
        let turns = state.turns.entry(turn.game_id).or_default();
        if turns.contains_key(&turn.turn) {
            return Ok(false);
        }
        turns.insert(turn.turn, turn.clone());
        for report in reports {
            let key = (report.game_id, report.turn, report.race.clone());
            state.reports.insert(key, report.clone());
        }
        Ok(true)
    }

    async fn list_turns(&self, game_id: GameId) -> Result<Vec<PlayedTurn>, StoreError> {
        let state = self.lock();
        Ok(state
            .turns
            .get(&game_id)
            .map(|turns| turns.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn latest_turn(&self, game_id: GameId) -> Result<Option<PlayedTurn>, StoreError> {
        let state = self.lock();
        Ok(state
            .turns
            .get(&game_id)
            .and_then(|turns| turns.values().next_back().cloned()))
    }

    async fn unannounced_turns(
        &self,
        after: Option<PlayedTurn>,
        limit: u32,
    ) -> Result<Vec<PlayedTurn>, StoreError> {
        let state = self.lock();
        let key = |t: &PlayedTurn| (t.played_at, t.game_id, t.turn);
        let mut owed: Vec<&PlayedTurn> = state
            .turns
            .values()
            .flat_map(|turns| turns.values())
            .filter(|t| !state.announced.contains_key(&(t.game_id, t.turn)))
            .filter(|t| after.as_ref().is_none_or(|after| key(t) > key(after)))
            .collect();
        owed.sort_by_key(|t| (t.played_at, t.game_id, t.turn));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(owed.into_iter().take(limit).cloned().collect())
    }

    async fn mark_announced(
        &self,
        game_id: GameId,
        turn: u32,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let archived = state
            .turns
            .get(&game_id)
            .is_some_and(|turns| turns.contains_key(&turn));
        if !archived {
            return Err(StoreError::not_found(
                "played turn",
                format!("{game_id}/{turn}"),
            ));
        }
        state.announced.entry((game_id, turn)).or_insert(at);
        Ok(())
    }

    async fn get_report(
        &self,
        game_id: GameId,
        turn: u32,
        race: &str,
    ) -> Result<TurnReport, StoreError> {
        let state = self.lock();
        state
            .reports
            .get(&(game_id, turn, race.to_owned()))
            .cloned()
            .ok_or_else(|| StoreError::not_found("turn report", format!("{race}/{turn}")))
    }
}

#[async_trait]
impl OrdersStore for MemoryPlayStore {
    async fn lease_orders(
        &self,
        game_id: GameId,
        race: &str,
        lease: Lease,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let key = (game_id, race.to_owned());
        let free = state
            .orders_leases
            .get(&key)
            .is_none_or(|held| held.token == lease.token || !held.is_held_at(now));
        if free {
            state.orders_leases.insert(key, lease);
        }
        Ok(free)
    }

    async fn renew_orders(
        &self,
        game_id: GameId,
        race: &str,
        lease: Lease,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let key = (game_id, race.to_owned());
        match state.orders_leases.get_mut(&key) {
            Some(held) if held.token == lease.token => {
                held.until = lease.until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_orders(
        &self,
        game_id: GameId,
        race: &str,
        token: LeaseToken,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let key = (game_id, race.to_owned());
        if state
            .orders_leases
            .get(&key)
            .is_some_and(|held| held.token == token)
        {
            state.orders_leases.remove(&key);
        }
        Ok(())
    }

    async fn record_orders(
        &self,
        submission: &OrdersSubmission,
        holder: LeaseToken,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let key = (submission.game_id, submission.race.clone());
        if state
            .orders_leases
            .get(&key)
            .is_none_or(|held| held.token != holder)
        {
            return Err(orders_lease_lost(submission));
        }
        if !state.submission_ids.insert(submission.id) {
            return Err(StoreError::duplicate("orders submission", submission.id));
        }
        state.submissions.push(submission.clone());
        Ok(())
    }

    async fn list_orders(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<Vec<OrdersSubmission>, StoreError> {
        let state = self.lock();
        let mut list: Vec<(usize, &OrdersSubmission)> = state
            .submissions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.game_id == game_id && s.race == race && s.turn == turn)
            .collect();
        list.sort_by(|(ia, a), (ib, b)| b.submitted_at.cmp(&a.submitted_at).then(ib.cmp(ia)));
        Ok(list.into_iter().map(|(_, s)| s.clone()).collect())
    }

    async fn races_with_orders_in(
        &self,
        game_id: GameId,
        turn: u32,
        count: OrdersCount,
    ) -> Result<Vec<String>, StoreError> {
        let state = self.lock();
        let of_turn = state
            .submissions
            .iter()
            .filter(|s| s.game_id == game_id && s.turn == turn);
        if let OrdersCount::PlayedAt(at) = count {
            let races: BTreeSet<&str> = of_turn
                .filter(|s| s.accepted && s.submitted_at <= at)
                .map(|s| s.race.as_str())
                .collect();
            return Ok(races.into_iter().map(str::to_owned).collect());
        }
        // The latest submission per race: later arrivals win ties of equal timestamps.
        let mut latest: BTreeMap<&str, &OrdersSubmission> = BTreeMap::new();
        for submission in of_turn {
            let newer = latest
                .get(submission.race.as_str())
                .is_none_or(|held| submission.submitted_at >= held.submitted_at);
            if newer {
                latest.insert(submission.race.as_str(), submission);
            }
        }
        Ok(latest
            .into_iter()
            .filter(|(_, s)| s.accepted)
            .map(|(race, _)| race.to_owned())
            .collect())
    }
}

/// The refusal of a submission whose orders lease is not its holder's any more.
fn orders_lease_lost(submission: &OrdersSubmission) -> StoreError {
    StoreError::conflict(
        "orders lease",
        format!("{}/{}", submission.game_id, submission.race),
        "held by another submission now",
    )
}
