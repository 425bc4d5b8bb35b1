//! In-memory [`PbemStore`]: race records, seat applications, preferences and messages
//! behind one mutex, so each call is one atomic step as a transaction would be. A seat
//! application counts the applicant's active games in the lobby too (see
//! [`super::active_games`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::pbem::{
    GamePreferences, RaceMessage, RaceRecord, ReadyMark, SeatApplication, SeatApplicationStatus,
};
use galaxy_core::domain::{GameId, MessageId, SeatApplicationId, Timestamp, UserId};
use galaxy_core::ports::{
    OwedSeatNotice, PbemStore, SeatApplicationInsert, SeatHandover, StoreError, VacationOutcome,
};

use super::MemoryLobbyStore;
use super::active_games::{Ledger, active_games};
use super::paging::{Order, paginate};

const RACE: &str = "race";
const MESSAGE: &str = "message";
const SEAT: &str = "seat application";

/// The play-by-email record of every game.
///
/// Built [`beside`](Self::beside) a lobby store (as
/// [`InMemoryStores`](super::InMemoryStores) does), the active-games limit of a seat
/// application and of a lobby application counts what both stores hold; built alone
/// (`default`), it counts its own records only.
#[derive(Debug, Default)]
pub struct MemoryPbemStore {
    /// Everything; one lock keeps each call atomic. Shared with the lobby store for the
    /// active-games count.
    ledger: Arc<Ledger>,
}

/// Everything the play-by-email store keeps.
#[derive(Debug, Default)]
pub(super) struct PbemState {
    /// Race records by game, then race (so listing is in race order).
    races: HashMap<GameId, BTreeMap<String, RaceRecord>>,
    /// Turns already tallied.
    tallied: HashSet<(GameId, u32)>,
    /// Seat applications in arrival order.
    applications: Vec<SeatApplication>,
    /// Preferences by (game, user).
    preferences: HashMap<(GameId, UserId), GamePreferences>,
    /// Messages in arrival order.
    messages: Vec<RaceMessage>,
    /// Messages whose notice is still owed.
    owed_notices: BTreeSet<MessageId>,
    /// Handovers whose notice is still owed, in approval order.
    owed_seat_notices: Vec<(SeatApplicationId, UserId)>,
}

impl MemoryPbemStore {
    /// A store sharing `lobby`'s ledger, so that the active-games limit of an
    /// application to either counts the user's games in both.
    pub fn beside(lobby: &MemoryLobbyStore) -> Self {
        Self {
            ledger: Arc::clone(lobby.ledger()),
        }
    }

    /// The state.
    fn lock(&self) -> MutexGuard<'_, PbemState> {
        self.ledger.pbem()
    }
}

impl PbemState {
    /// Whether `race` of the game was handed from `user` to another player.
    pub(super) fn handed_away(&self, game_id: GameId, race: &str, user: UserId) -> bool {
        self.races
            .get(&game_id)
            .and_then(|races| races.get(race))
            .is_some_and(|r| r.user_id != user)
    }

    /// The races `user` plays, by game.
    pub(super) fn played(&self, user: UserId) -> impl Iterator<Item = &RaceRecord> {
        self.races
            .values()
            .flat_map(|races| races.values())
            .filter(move |r| r.user_id == user)
    }

    /// The games where `user` plays a race or waits on a seat application.
    pub(super) fn held_games(&self, user: UserId) -> impl Iterator<Item = GameId> {
        let playing = self.played(user).map(|r| r.game_id);
        let waiting = self
            .applications
            .iter()
            .filter(move |a| a.user_id == user && a.status == SeatApplicationStatus::Pending)
            .map(|a| a.game_id);
        playing.chain(waiting)
    }

    fn race_mut(&mut self, game_id: GameId, race: &str) -> Result<&mut RaceRecord, StoreError> {
        self.races
            .get_mut(&game_id)
            .and_then(|races| races.get_mut(race))
            .ok_or_else(|| StoreError::not_found(RACE, format!("{game_id}/{race}")))
    }

    fn reject_pending(&mut self, game_id: GameId, race: &str) {
        for a in &mut self.applications {
            if a.game_id == game_id && a.race == race && a.status == SeatApplicationStatus::Pending
            {
                a.status = SeatApplicationStatus::Rejected;
            }
        }
    }
}

fn conflict(game_id: GameId, race: &str, detail: &str) -> StoreError {
    StoreError::Conflict {
        entity: RACE,
        id: format!("{game_id}/{race}"),
        detail: detail.to_owned(),
    }
}

#[async_trait]
impl PbemStore for MemoryPbemStore {
    async fn ensure_races(
        &self,
        game_id: GameId,
        seats: &[(String, UserId)],
    ) -> Result<Vec<RaceRecord>, StoreError> {
        let mut state = self.lock();
        let races = state.races.entry(game_id).or_default();
        for (race, user) in seats {
            let taken = races
                .values()
                .any(|r| r.user_id == *user && r.race != *race);
            if !races.contains_key(race) && !taken {
                races.insert(race.clone(), RaceRecord::new(game_id, race.clone(), *user));
            }
        }
        Ok(races.values().cloned().collect())
    }

    async fn list_races(&self, game_id: GameId) -> Result<Vec<RaceRecord>, StoreError> {
        let state = self.lock();
        Ok(state
            .races
            .get(&game_id)
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn races_of_user(&self, user_id: UserId) -> Result<Vec<RaceRecord>, StoreError> {
        let state = self.lock();
        let mut found: Vec<RaceRecord> = state
            .races
            .values()
            .flat_map(|races| races.values())
            .filter(|r| r.user_id == user_id)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.game_id, &a.race).cmp(&(b.game_id, &b.race)));
        Ok(found)
    }

    async fn mark_ready(
        &self,
        game_id: GameId,
        race: &str,
        player: UserId,
        mark: ReadyMark,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let record = owned(state.race_mut(game_id, race)?, player)?;
        mark.apply(record);
        Ok(())
    }

    async fn book_vacation(
        &self,
        game_id: GameId,
        race: &str,
        player: UserId,
        from: u32,
        turns: u32,
        budget: u32,
    ) -> Result<VacationOutcome, StoreError> {
        let mut state = self.lock();
        let record = owned(state.race_mut(game_id, race)?, player)?;
        let left = record.vacation_left(budget);
        if turns > left {
            return Ok(VacationOutcome::OverBudget { left });
        }
        let (start, end) = record.vacation_span(from, turns);
        record.vacation_from = Some(start);
        record.vacation_until = Some(end);
        record.vacation_used += turns;
        Ok(VacationOutcome::Booked(record.clone()))
    }

    async fn tally_turn(
        &self,
        game_id: GameId,
        turn: u32,
        ready: &[String],
        idle_after: u32,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut state = self.lock();
        if !state.tallied.insert((game_id, turn)) {
            return Ok(None);
        }
        let mut went_idle = Vec::new();
        for record in state.races.entry(game_id).or_default().values_mut() {
            if ready.contains(&record.race) {
                record.back_in_play();
            } else if !record.on_vacation(turn) {
                record.missed_turns = record.missed_turns.saturating_add(1);
                if !record.idle && record.missed_turns >= idle_after {
                    record.idle = true;
                    record.idle_notice = Some(turn);
                    went_idle.push(record.race.clone());
                }
            }
        }
        Ok(Some(went_idle))
    }

    async fn owed_idle_notices(&self, limit: u32) -> Result<Vec<RaceRecord>, StoreError> {
        let state = self.lock();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(state
            .races
            .values()
            .flat_map(|races| races.values())
            .filter(|r| r.idle_notice.is_some())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn idle_notice_raised(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let record = state.race_mut(game_id, race)?;
        if record.idle_notice == Some(turn) {
            record.idle_notice = None;
        }
        Ok(())
    }

    async fn open_seat(&self, game_id: GameId, race: &str) -> Result<RaceRecord, StoreError> {
        let mut state = self.lock();
        let record = state.race_mut(game_id, race)?;
        if !record.idle {
            return Err(conflict(game_id, race, "the race is not idle"));
        }
        if record.seat_open {
            return Err(conflict(game_id, race, "the seat is open already"));
        }
        record.seat_open = true;
        Ok(record.clone())
    }

    async fn reclaim_seat(
        &self,
        game_id: GameId,
        race: &str,
        user_id: UserId,
    ) -> Result<RaceRecord, StoreError> {
        let mut state = self.lock();
        let record = state.race_mut(game_id, race)?;
        if !record.seat_open || record.user_id != user_id {
            return Err(conflict(
                game_id,
                race,
                "the seat is not open, or not yours",
            ));
        }
        record.back_in_play();
        let record = record.clone();
        state.reject_pending(game_id, race);
        Ok(record)
    }

    async fn apply_for_seat(
        &self,
        application: &SeatApplication,
        max_active_games: u32,
    ) -> Result<SeatApplicationInsert, StoreError> {
        let lobby = self.ledger.lobby();
        let mut state = self.lock();
        let (game_id, race) = (application.game_id, application.race.as_str());
        let races = state.races.get(&game_id);
        let record = races
            .and_then(|r| r.get(race))
            .ok_or_else(|| StoreError::not_found(RACE, format!("{game_id}/{race}")))?;
        if !record.seat_open {
            return Err(conflict(game_id, race, "the seat is not open"));
        }
        if races.is_some_and(|r| r.values().any(|r| r.user_id == application.user_id)) {
            return Err(conflict(game_id, race, "the applicant plays in the game"));
        }
        if state.applications.iter().any(|a| {
            a.game_id == game_id
                && a.race == race
                && a.user_id == application.user_id
                && a.status == SeatApplicationStatus::Pending
        }) {
            return Err(StoreError::Duplicate {
                entity: SEAT,
                key: format!("{game_id}/{race}/{}", application.user_id),
            });
        }
        let live = active_games(&lobby, &state, application.user_id, Some(game_id));
        if live >= max_active_games {
            return Ok(SeatApplicationInsert::TooManyActiveGames { live });
        }
        state.applications.push(application.clone());
        Ok(SeatApplicationInsert::Inserted)
    }

    async fn list_seat_applications(
        &self,
        game_id: GameId,
        race: &str,
    ) -> Result<Vec<SeatApplication>, StoreError> {
        let state = self.lock();
        Ok(state
            .applications
            .iter()
            .filter(|a| a.game_id == game_id && a.race == race)
            .cloned()
            .collect())
    }

    async fn approve_seat_application(
        &self,
        game_id: GameId,
        race: &str,
        application_id: SeatApplicationId,
    ) -> Result<SeatHandover, StoreError> {
        let mut state = self.lock();
        let application = state
            .applications
            .iter()
            .find(|a| a.id == application_id && a.game_id == game_id && a.race == race)
            .cloned()
            .ok_or_else(|| StoreError::not_found(SEAT, application_id))?;
        if application.status != SeatApplicationStatus::Pending {
            return Err(conflict(game_id, race, "the application is not pending"));
        }
        let plays = state
            .races
            .get(&game_id)
            .is_some_and(|r| r.values().any(|r| r.user_id == application.user_id));
        if plays {
            return Err(conflict(game_id, race, "the applicant plays in the game"));
        }
        let record = state.race_mut(game_id, race)?;
        if !record.seat_open {
            return Err(conflict(game_id, race, "the seat is not open"));
        }
        let previous = record.hand_over(application.user_id);
        let record = record.clone();
        state.reject_pending(game_id, race);
        for a in &mut state.applications {
            if a.id == application_id {
                a.status = SeatApplicationStatus::Approved;
            }
        }
        state.owed_seat_notices.push((application_id, previous));
        Ok(SeatHandover { record, previous })
    }

    async fn owed_seat_notices(&self, limit: u32) -> Result<Vec<OwedSeatNotice>, StoreError> {
        let state = self.lock();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(state
            .owed_seat_notices
            .iter()
            .filter_map(|(id, previous)| {
                let application = state.applications.iter().find(|a| a.id == *id)?;
                Some(OwedSeatNotice {
                    application: application.clone(),
                    previous: *previous,
                })
            })
            .take(limit)
            .collect())
    }

    async fn seat_notice_raised(&self, id: SeatApplicationId) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.applications.iter().any(|a| a.id == id) {
            return Err(StoreError::not_found(SEAT, id));
        }
        state.owed_seat_notices.retain(|(owed, _)| *owed != id);
        Ok(())
    }

    async fn open_seats(
        &self,
        candidates: &[GameId],
    ) -> Result<Vec<(GameId, Vec<String>)>, StoreError> {
        let state = self.lock();
        Ok(candidates
            .iter()
            .filter_map(|game_id| {
                let open: Vec<String> = state
                    .races
                    .get(game_id)?
                    .values()
                    .filter(|r| r.seat_open)
                    .map(|r| r.race.clone())
                    .collect();
                (!open.is_empty()).then_some((*game_id, open))
            })
            .collect())
    }

    async fn preferences(
        &self,
        game_id: GameId,
        user_id: UserId,
    ) -> Result<GamePreferences, StoreError> {
        let state = self.lock();
        Ok(state
            .preferences
            .get(&(game_id, user_id))
            .copied()
            .unwrap_or_default())
    }

    async fn set_preferences(
        &self,
        game_id: GameId,
        user_id: UserId,
        preferences: GamePreferences,
    ) -> Result<(), StoreError> {
        self.lock()
            .preferences
            .insert((game_id, user_id), preferences);
        Ok(())
    }

    async fn post_message(
        &self,
        message: &RaceMessage,
        limit: RateLimit,
    ) -> Result<Option<Timestamp>, StoreError> {
        let mut state = self.lock();
        owned(
            state.race_mut(message.game_id, &message.sender_race)?,
            message.sender_user,
        )?;
        let now = message.sent_at;
        let seen = state
            .messages
            .iter()
            .filter(|m| m.game_id == message.game_id && m.sender_user == message.sender_user)
            .map(|m| (m.sent_at, 1));
        if let Some(until) = limit.full_until(now, seen) {
            return Ok(Some(until));
        }
        if state.messages.iter().any(|m| m.id == message.id) {
            return Err(StoreError::Duplicate {
                entity: "message",
                key: message.id.to_string(),
            });
        }
        state.messages.push(message.clone());
        state.owed_notices.insert(message.id);
        Ok(None)
    }

    async fn owed_message_notices(&self, limit: u32) -> Result<Vec<RaceMessage>, StoreError> {
        let state = self.lock();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(state
            .messages
            .iter()
            .filter(|m| state.owed_notices.contains(&m.id))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn message_noticed(&self, id: MessageId) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.messages.iter().any(|m| m.id == id) {
            return Err(StoreError::not_found(MESSAGE, id));
        }
        state.owed_notices.remove(&id);
        Ok(())
    }

    async fn list_messages(
        &self,
        game_id: GameId,
        race: &str,
        page: &PageRequest,
    ) -> Result<Page<RaceMessage>, StoreError> {
        let state = self.lock();
        let mine = state
            .messages
            .iter()
            .filter(|m| m.game_id == game_id && m.involves(race));
        paginate(
            mine,
            |m| (m.sent_at, m.id.as_uuid()),
            Order::Descending,
            page,
        )
    }
}

/// `record` if `player` plays it; `Conflict` when the seat changed hands (as the SQL's
/// `user_id = $player`).
fn owned(record: &mut RaceRecord, player: UserId) -> Result<&mut RaceRecord, StoreError> {
    if record.user_id == player {
        Ok(record)
    } else {
        Err(StoreError::conflict(
            "race",
            format!("{}/{}", record.game_id, record.race),
            "the race is played by someone else now",
        ))
    }
}
