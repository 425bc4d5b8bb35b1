//! [`PbemStore`] on `pbem_races`, `pbem_tallied_turns`, `seat_applications`,
//! `pbem_preferences` and `race_messages`. Each method is one transaction; the race row
//! (`FOR UPDATE`) serialises what must not interleave (a seat handover, a sender's rate
//! limit). The races, their turns and preferences are here; open seats and their
//! applications in `seats`, the races' messages in `messages`.

use async_trait::async_trait;
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::pbem::{
    GamePreferences, RaceMessage, RaceRecord, ReadyMark, SeatApplication,
};
use galaxy_core::domain::{GameId, MessageId, SeatApplicationId, Timestamp, UserId};
use galaxy_core::ports::{
    OwedSeatNotice, PbemStore, SeatApplicationInsert, SeatHandover, StoreError, VacationOutcome,
};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::PgStore;
use crate::error::db;
use crate::rows::{RowExt, u32_param};

mod messages;
mod seats;

const RACE: &str = "race";
const PREFS: &str = "preferences";

fn opt_u32(row: &PgRow, column: &'static str) -> Result<Option<u32>, StoreError> {
    let value: Option<i64> = row.col(RACE, column)?;
    value
        .map(|v| u32::try_from(v).map_err(|e| crate::error::corrupt(RACE, column, e)))
        .transpose()
}

fn race_from_row(row: &PgRow) -> Result<RaceRecord, StoreError> {
    Ok(RaceRecord {
        game_id: GameId::from_uuid(row.col(RACE, "game_id")?),
        race: row.col(RACE, "race")?,
        user_id: UserId::from_uuid(row.col(RACE, "user_id")?),
        missed_turns: row.col_u32(RACE, "missed_turns")?,
        idle: row.col(RACE, "idle")?,
        idle_notice: opt_u32(row, "idle_notice")?,
        ready_turn: opt_u32(row, "ready_turn")?,
        ready_at: row.col(RACE, "ready_at")?,
        vacation_from: opt_u32(row, "vacation_from")?,
        vacation_until: opt_u32(row, "vacation_until")?,
        vacation_used: row.col_u32(RACE, "vacation_used")?,
        seat_open: row.col(RACE, "seat_open")?,
    })
}

fn conflict(game_id: GameId, race: &str, detail: &str) -> StoreError {
    StoreError::Conflict {
        entity: RACE,
        id: format!("{game_id}/{race}"),
        detail: detail.to_owned(),
    }
}

/// The race row, locked for the rest of the transaction.
async fn lock_race(
    tx: &mut Transaction<'static, Postgres>,
    game_id: GameId,
    race: &str,
) -> Result<RaceRecord, StoreError> {
    let row = sqlx::query("SELECT * FROM pbem_races WHERE game_id = $1 AND race = $2 FOR UPDATE")
        .bind(game_id.as_uuid())
        .bind(race)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db(RACE))?;
    match row {
        Some(row) => race_from_row(&row),
        None => Err(StoreError::not_found(RACE, format!("{game_id}/{race}"))),
    }
}

/// `record` (locked by the caller) if `player` plays it; `Conflict` when the seat changed
/// hands since the service checked it.
fn owned(record: RaceRecord, player: UserId) -> Result<RaceRecord, StoreError> {
    if record.user_id == player {
        Ok(record)
    } else {
        Err(StoreError::conflict(
            RACE,
            format!("{}/{}", record.game_id, record.race),
            "the race is played by someone else now",
        ))
    }
}

/// Writes the mutable columns of a race record.
async fn write_race(
    tx: &mut Transaction<'static, Postgres>,
    record: &RaceRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE pbem_races SET user_id = $3, missed_turns = $4, idle = $5, ready_turn = $6, \
         vacation_from = $7, vacation_until = $8, vacation_used = $9, seat_open = $10, \
         ready_at = $11, idle_notice = $12 WHERE game_id = $1 AND race = $2",
    )
    .bind(record.game_id.as_uuid())
    .bind(&record.race)
    .bind(record.user_id.as_uuid())
    .bind(u32_param(record.missed_turns))
    .bind(record.idle)
    .bind(record.ready_turn.map(u32_param))
    .bind(record.vacation_from.map(u32_param))
    .bind(record.vacation_until.map(u32_param))
    .bind(u32_param(record.vacation_used))
    .bind(record.seat_open)
    .bind(record.ready_at)
    .bind(record.idle_notice.map(u32_param))
    .execute(&mut **tx)
    .await
    .map_err(db(RACE))?;
    Ok(())
}

#[async_trait]
impl PbemStore for PgStore {
    async fn ensure_races(
        &self,
        game_id: GameId,
        seats: &[(String, UserId)],
    ) -> Result<Vec<RaceRecord>, StoreError> {
        let races: Vec<&str> = seats.iter().map(|(r, _)| r.as_str()).collect();
        let users: Vec<Uuid> = seats.iter().map(|(_, u)| u.as_uuid()).collect();
        // A player who already plays another race (a replacement) gets no second row:
        // `ON CONFLICT DO NOTHING` covers both the race key and the per-user index.
        sqlx::query(
            "INSERT INTO pbem_races (game_id, race, user_id) \
             SELECT $1, race, user_id FROM UNNEST($2::text[], $3::uuid[]) AS s(race, user_id) \
             ON CONFLICT DO NOTHING",
        )
        .bind(game_id.as_uuid())
        .bind(&races)
        .bind(&users)
        .execute(&self.pool)
        .await
        .map_err(db(RACE))?;
        self.list_races(game_id).await
    }

    async fn list_races(&self, game_id: GameId) -> Result<Vec<RaceRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM pbem_races WHERE game_id = $1 ORDER BY race COLLATE \"C\"")
                .bind(game_id.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db(RACE))?;
        rows.iter().map(race_from_row).collect()
    }

    async fn races_of_user(&self, user_id: UserId) -> Result<Vec<RaceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM pbem_races WHERE user_id = $1 ORDER BY game_id, race COLLATE \"C\"",
        )
        .bind(user_id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db(RACE))?;
        rows.iter().map(race_from_row).collect()
    }

    async fn mark_ready(
        &self,
        game_id: GameId,
        race: &str,
        player: UserId,
        mark: ReadyMark,
    ) -> Result<(), StoreError> {
        // `ReadyMark::apply` in SQL: set the turn and time (keeping the earlier time of a
        // mark of the same turn), or clear the mark only when it is that turn's (every
        // `CASE` reads the row as it was; `LEAST` ignores a NULL time).
        let (turn, at) = match mark {
            ReadyMark::Set(turn, at) => (turn, Some(at)),
            ReadyMark::Clear(turn) => (turn, None),
        };
        let done = sqlx::query(
            "UPDATE pbem_races SET \
             ready_turn = CASE WHEN $4::timestamptz IS NOT NULL THEN $5 \
             WHEN ready_turn = $5 THEN NULL ELSE ready_turn END, \
             ready_at = CASE WHEN $4::timestamptz IS NOT NULL AND ready_turn = $5 \
             THEN LEAST(ready_at, $4) WHEN $4::timestamptz IS NOT NULL THEN $4 \
             WHEN ready_turn = $5 THEN NULL ELSE ready_at END \
             WHERE game_id = $1 AND race = $2 AND user_id = $3",
        )
        .bind(game_id.as_uuid())
        .bind(race)
        .bind(player.as_uuid())
        .bind(at)
        .bind(u32_param(turn))
        .execute(&self.pool)
        .await
        .map_err(db(RACE))?;
        if done.rows_affected() == 0 {
            // No such race, or another player's now: say which.
            let mut tx = self.pool.begin().await.map_err(db(RACE))?;
            owned(lock_race(&mut tx, game_id, race).await?, player)?;
            return Err(StoreError::conflict(
                RACE,
                format!("{game_id}/{race}"),
                "the race changed while it was marked",
            ));
        }
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
        let mut tx = self.pool.begin().await.map_err(db(RACE))?;
        let mut record = owned(lock_race(&mut tx, game_id, race).await?, player)?;
        let left = record.vacation_left(budget);
        if turns > left {
            return Ok(VacationOutcome::OverBudget { left });
        }
        let (start, end) = record.vacation_span(from, turns);
        record.vacation_from = Some(start);
        record.vacation_until = Some(end);
        record.vacation_used += turns;
        write_race(&mut tx, &record).await?;
        tx.commit().await.map_err(db(RACE))?;
        Ok(VacationOutcome::Booked(record))
    }

    async fn tally_turn(
        &self,
        game_id: GameId,
        turn: u32,
        ready: &[String],
        idle_after: u32,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(RACE))?;
        let marked = sqlx::query(
            "INSERT INTO pbem_tallied_turns (game_id, turn) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(game_id.as_uuid())
        .bind(u32_param(turn))
        .execute(&mut *tx)
        .await
        .map_err(db(RACE))?;
        if marked.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE pbem_races SET missed_turns = 0, idle = false, idle_notice = NULL, \
             seat_open = false WHERE game_id = $1 AND race = ANY($2)",
        )
        .bind(game_id.as_uuid())
        .bind(ready)
        .execute(&mut *tx)
        .await
        .map_err(db(RACE))?;
        sqlx::query(
            "UPDATE pbem_races SET missed_turns = LEAST(missed_turns + 1, 4294967295) \
             WHERE game_id = $1 AND NOT (race = ANY($2)) \
             AND NOT COALESCE($3 BETWEEN vacation_from AND vacation_until, false)",
        )
        .bind(game_id.as_uuid())
        .bind(ready)
        .bind(u32_param(turn))
        .execute(&mut *tx)
        .await
        .map_err(db(RACE))?;
        let mut idle: Vec<String> = sqlx::query_scalar(
            "UPDATE pbem_races SET idle = true, idle_notice = $3 \
             WHERE game_id = $1 AND NOT idle AND missed_turns >= $2 RETURNING race",
        )
        .bind(game_id.as_uuid())
        .bind(u32_param(idle_after))
        .bind(u32_param(turn))
        .fetch_all(&mut *tx)
        .await
        .map_err(db(RACE))?;
        tx.commit().await.map_err(db(RACE))?;
        idle.sort();
        Ok(Some(idle))
    }

    async fn owed_idle_notices(&self, limit: u32) -> Result<Vec<RaceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM pbem_races WHERE idle_notice IS NOT NULL \
             ORDER BY game_id, race COLLATE \"C\" LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(RACE))?;
        rows.iter().map(race_from_row).collect()
    }

    async fn idle_notice_raised(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE pbem_races SET idle_notice = CASE WHEN idle_notice = $3 THEN NULL \
             ELSE idle_notice END WHERE game_id = $1 AND race = $2",
        )
        .bind(game_id.as_uuid())
        .bind(race)
        .bind(u32_param(turn))
        .execute(&self.pool)
        .await
        .map_err(db(RACE))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(RACE, format!("{game_id}/{race}")));
        }
        Ok(())
    }

    async fn open_seat(&self, game_id: GameId, race: &str) -> Result<RaceRecord, StoreError> {
        seats::open_seat(self, game_id, race).await
    }

    async fn reclaim_seat(
        &self,
        game_id: GameId,
        race: &str,
        user_id: UserId,
    ) -> Result<RaceRecord, StoreError> {
        seats::reclaim_seat(self, game_id, race, user_id).await
    }

    async fn apply_for_seat(
        &self,
        application: &SeatApplication,
        max_active_games: u32,
    ) -> Result<SeatApplicationInsert, StoreError> {
        seats::apply_for_seat(self, application, max_active_games).await
    }

    async fn list_seat_applications(
        &self,
        game_id: GameId,
        race: &str,
    ) -> Result<Vec<SeatApplication>, StoreError> {
        seats::list_seat_applications(self, game_id, race).await
    }

    async fn approve_seat_application(
        &self,
        game_id: GameId,
        race: &str,
        application_id: SeatApplicationId,
    ) -> Result<SeatHandover, StoreError> {
        seats::approve_seat_application(self, game_id, race, application_id).await
    }

    async fn owed_seat_notices(&self, limit: u32) -> Result<Vec<OwedSeatNotice>, StoreError> {
        seats::owed_seat_notices(self, limit).await
    }

    async fn seat_notice_raised(&self, id: SeatApplicationId) -> Result<(), StoreError> {
        seats::seat_notice_raised(self, id).await
    }

    async fn open_seats(
        &self,
        candidates: &[GameId],
    ) -> Result<Vec<(GameId, Vec<String>)>, StoreError> {
        seats::open_seats(self, candidates).await
    }

    async fn preferences(
        &self,
        game_id: GameId,
        user_id: UserId,
    ) -> Result<GamePreferences, StoreError> {
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT reminders, message_mail FROM pbem_preferences \
             WHERE game_id = $1 AND user_id = $2",
        )
        .bind(game_id.as_uuid())
        .bind(user_id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db(PREFS))?;
        Ok(
            row.map_or_else(GamePreferences::default, |(reminders, message_mail)| {
                GamePreferences {
                    reminders,
                    message_mail,
                }
            }),
        )
    }

    async fn set_preferences(
        &self,
        game_id: GameId,
        user_id: UserId,
        preferences: GamePreferences,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pbem_preferences (game_id, user_id, reminders, message_mail) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (game_id, user_id) \
             DO UPDATE SET reminders = EXCLUDED.reminders, message_mail = EXCLUDED.message_mail",
        )
        .bind(game_id.as_uuid())
        .bind(user_id.as_uuid())
        .bind(preferences.reminders)
        .bind(preferences.message_mail)
        .execute(&self.pool)
        .await
        .map_err(db(PREFS))?;
        Ok(())
    }

    async fn post_message(
        &self,
        message: &RaceMessage,
        limit: RateLimit,
    ) -> Result<Option<Timestamp>, StoreError> {
        messages::post_message(self, message, limit).await
    }

    async fn owed_message_notices(&self, limit: u32) -> Result<Vec<RaceMessage>, StoreError> {
        messages::owed_message_notices(self, limit).await
    }

    async fn message_noticed(&self, id: MessageId) -> Result<(), StoreError> {
        messages::message_noticed(self, id).await
    }

    async fn list_messages(
        &self,
        game_id: GameId,
        race: &str,
        page: &PageRequest,
    ) -> Result<Page<RaceMessage>, StoreError> {
        messages::list_messages(self, game_id, race, page).await
    }
}
