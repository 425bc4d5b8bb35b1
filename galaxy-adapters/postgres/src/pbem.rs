//! [`PbemStore`] on `pbem_races`, `pbem_tallied_turns`, `seat_applications`,
//! `pbem_preferences` and `race_messages`. Each method is one transaction; the race row
//! (`FOR UPDATE`) serialises what must not interleave (a seat handover, a sender's rate
//! limit).

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
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::PgStore;
use crate::applications::lock_active_games;
use crate::error::db;
use crate::rows::{RowExt, cursor, page_limit, page_of, u32_param};

const RACE: &str = "race";
const SEAT: &str = "seat application";
const PREFS: &str = "preferences";
const MESSAGE: &str = "message";

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

fn application_from_row(row: &PgRow) -> Result<SeatApplication, StoreError> {
    Ok(SeatApplication {
        id: SeatApplicationId::from_uuid(row.col(SEAT, "id")?),
        game_id: GameId::from_uuid(row.col(SEAT, "game_id")?),
        race: row.col(SEAT, "race")?,
        user_id: UserId::from_uuid(row.col(SEAT, "user_id")?),
        status: row.col_name(SEAT, "status", SeatApplicationStatus::parse)?,
        created_at: row.col(SEAT, "created_at")?,
    })
}

fn message_from_row(row: &PgRow) -> Result<RaceMessage, StoreError> {
    Ok(RaceMessage {
        id: MessageId::from_uuid(row.col(MESSAGE, "id")?),
        game_id: GameId::from_uuid(row.col(MESSAGE, "game_id")?),
        turn: row.col_u32(MESSAGE, "turn")?,
        sender_user: UserId::from_uuid(row.col(MESSAGE, "sender_user")?),
        sender_race: row.col(MESSAGE, "sender_race")?,
        to_all: row.col(MESSAGE, "to_all")?,
        recipients: row.col(MESSAGE, "recipients")?,
        text: row.col(MESSAGE, "text")?,
        sent_at: row.col(MESSAGE, "sent_at")?,
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

async fn plays_in(
    tx: &mut Transaction<'static, Postgres>,
    game_id: GameId,
    user_id: UserId,
) -> Result<bool, StoreError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pbem_races WHERE game_id = $1 AND user_id = $2")
            .bind(game_id.as_uuid())
            .bind(user_id.as_uuid())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db(RACE))?;
    Ok(found.is_some())
}

async fn reject_pending(
    tx: &mut Transaction<'static, Postgres>,
    game_id: GameId,
    race: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE seat_applications SET status = 'rejected' \
         WHERE game_id = $1 AND race = $2 AND status = 'pending'",
    )
    .bind(game_id.as_uuid())
    .bind(race)
    .execute(&mut **tx)
    .await
    .map_err(db(SEAT))?;
    Ok(())
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
        let mut tx = self.pool.begin().await.map_err(db(RACE))?;
        let mut record = lock_race(&mut tx, game_id, race).await?;
        if !record.idle {
            return Err(conflict(game_id, race, "the race is not idle"));
        }
        if record.seat_open {
            return Err(conflict(game_id, race, "the seat is open already"));
        }
        record.seat_open = true;
        write_race(&mut tx, &record).await?;
        tx.commit().await.map_err(db(RACE))?;
        Ok(record)
    }

    async fn reclaim_seat(
        &self,
        game_id: GameId,
        race: &str,
        user_id: UserId,
    ) -> Result<RaceRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(RACE))?;
        let mut record = lock_race(&mut tx, game_id, race).await?;
        if !record.seat_open || record.user_id != user_id {
            return Err(conflict(
                game_id,
                race,
                "the seat is not open, or not yours",
            ));
        }
        record.back_in_play();
        write_race(&mut tx, &record).await?;
        reject_pending(&mut tx, game_id, race).await?;
        tx.commit().await.map_err(db(RACE))?;
        Ok(record)
    }

    async fn apply_for_seat(
        &self,
        application: &SeatApplication,
        max_active_games: u32,
    ) -> Result<SeatApplicationInsert, StoreError> {
        let (game_id, race) = (application.game_id, application.race.as_str());
        let mut tx = self.pool.begin().await.map_err(db(SEAT))?;
        let record = lock_race(&mut tx, game_id, race).await?;
        if !record.seat_open {
            return Err(conflict(game_id, race, "the seat is not open"));
        }
        if plays_in(&mut tx, game_id, application.user_id).await? {
            return Err(conflict(game_id, race, "the applicant plays in the game"));
        }
        // A second application for the seat is the duplicate it is, at the limit too.
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM seat_applications WHERE game_id = $1 AND race = $2 \
             AND user_id = $3 AND status = 'pending')",
        )
        .bind(game_id.as_uuid())
        .bind(race)
        .bind(application.user_id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(db(SEAT))?;
        if pending {
            return Err(StoreError::Duplicate {
                entity: SEAT,
                key: format!("{game_id}/{race}/{}", application.user_id),
            });
        }
        let live = lock_active_games(&mut tx, application.user_id, game_id).await?;
        if live >= max_active_games {
            return Ok(SeatApplicationInsert::TooManyActiveGames { live });
        }
        sqlx::query(
            "INSERT INTO seat_applications (id, game_id, race, user_id, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(application.id.as_uuid())
        .bind(game_id.as_uuid())
        .bind(race)
        .bind(application.user_id.as_uuid())
        .bind(application.status.as_str())
        .bind(application.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db(SEAT))?;
        tx.commit().await.map_err(db(SEAT))?;
        Ok(SeatApplicationInsert::Inserted)
    }

    async fn list_seat_applications(
        &self,
        game_id: GameId,
        race: &str,
    ) -> Result<Vec<SeatApplication>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM seat_applications WHERE game_id = $1 AND race = $2 \
             ORDER BY created_at, id",
        )
        .bind(game_id.as_uuid())
        .bind(race)
        .fetch_all(&self.pool)
        .await
        .map_err(db(SEAT))?;
        rows.iter().map(application_from_row).collect()
    }

    async fn approve_seat_application(
        &self,
        game_id: GameId,
        race: &str,
        application_id: SeatApplicationId,
    ) -> Result<SeatHandover, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(SEAT))?;
        let mut record = lock_race(&mut tx, game_id, race).await?;
        let row = sqlx::query(
            "SELECT * FROM seat_applications WHERE id = $1 AND game_id = $2 AND race = $3",
        )
        .bind(application_id.as_uuid())
        .bind(game_id.as_uuid())
        .bind(race)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(SEAT))?;
        let application = match row {
            Some(row) => application_from_row(&row)?,
            None => return Err(StoreError::not_found(SEAT, application_id)),
        };
        if application.status != SeatApplicationStatus::Pending {
            return Err(conflict(game_id, race, "the application is not pending"));
        }
        if !record.seat_open {
            return Err(conflict(game_id, race, "the seat is not open"));
        }
        if plays_in(&mut tx, game_id, application.user_id).await? {
            return Err(conflict(game_id, race, "the applicant plays in the game"));
        }
        let previous = record.hand_over(application.user_id);
        write_race(&mut tx, &record).await?;
        reject_pending(&mut tx, game_id, race).await?;
        // The handover's notice is owed from this write on.
        sqlx::query(
            "UPDATE seat_applications SET status = 'approved', previous_user = $2, \
             noticed = false, approved_at = clock_timestamp() WHERE id = $1",
        )
        .bind(application_id.as_uuid())
        .bind(previous.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db(SEAT))?;
        tx.commit().await.map_err(db(SEAT))?;
        Ok(SeatHandover { record, previous })
    }

    async fn owed_seat_notices(&self, limit: u32) -> Result<Vec<OwedSeatNotice>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM seat_applications WHERE status = 'approved' AND NOT noticed \
             ORDER BY approved_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(SEAT))?;
        rows.iter()
            .map(|row| {
                let previous: Option<Uuid> = row.col(SEAT, "previous_user")?;
                let previous = previous.ok_or_else(|| {
                    crate::error::corrupt(SEAT, "previous_user", "missing on an owed notice")
                })?;
                Ok(OwedSeatNotice {
                    application: application_from_row(row)?,
                    previous: UserId::from_uuid(previous),
                })
            })
            .collect()
    }

    async fn seat_notice_raised(&self, id: SeatApplicationId) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE seat_applications SET noticed = true WHERE id = $1")
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db(SEAT))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(SEAT, id));
        }
        Ok(())
    }

    async fn open_seats(
        &self,
        candidates: &[GameId],
    ) -> Result<Vec<(GameId, Vec<String>)>, StoreError> {
        let ids: Vec<Uuid> = candidates.iter().map(|g| g.as_uuid()).collect();
        let rows: Vec<(Uuid, Vec<String>)> = sqlx::query_as(
            "SELECT game_id, array_agg(race ORDER BY race COLLATE \"C\") FROM pbem_races \
             WHERE seat_open AND game_id = ANY($1) GROUP BY game_id",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db(RACE))?;
        let mut open: Vec<(GameId, Vec<String>)> = Vec::with_capacity(rows.len());
        for id in candidates {
            if let Some((_, races)) = rows.iter().find(|(g, _)| *g == id.as_uuid()) {
                open.push((*id, races.clone()));
            }
        }
        Ok(open)
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
        let mut tx = self.pool.begin().await.map_err(db(MESSAGE))?;
        // The sender's race row serialises their sends, so the count and the insert
        // are one step even with concurrent callers on several replicas.
        // It also holds the race to its player until the message is stored.
        owned(
            lock_race(&mut tx, message.game_id, &message.sender_race).await?,
            message.sender_user,
        )?;
        let seen: Vec<Timestamp> = sqlx::query_scalar(
            "SELECT sent_at FROM race_messages \
             WHERE game_id = $1 AND sender_user = $2 AND sent_at > $3",
        )
        .bind(message.game_id.as_uuid())
        .bind(message.sender_user.as_uuid())
        .bind(limit.window_start(message.sent_at))
        .fetch_all(&mut *tx)
        .await
        .map_err(db(MESSAGE))?;
        if let Some(until) = limit.full_until(message.sent_at, seen.into_iter().map(|t| (t, 1))) {
            return Ok(Some(until));
        }
        sqlx::query(
            "INSERT INTO race_messages (id, game_id, turn, sender_user, sender_race, to_all, \
             recipients, text, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(message.id.as_uuid())
        .bind(message.game_id.as_uuid())
        .bind(u32_param(message.turn))
        .bind(message.sender_user.as_uuid())
        .bind(&message.sender_race)
        .bind(message.to_all)
        .bind(&message.recipients)
        .bind(&message.text)
        .bind(message.sent_at)
        .execute(&mut *tx)
        .await
        .map_err(db(MESSAGE))?;
        tx.commit().await.map_err(db(MESSAGE))?;
        Ok(None)
    }

    async fn owed_message_notices(&self, limit: u32) -> Result<Vec<RaceMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM race_messages WHERE NOT noticed ORDER BY sent_at, seq LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(MESSAGE))?;
        rows.iter().map(message_from_row).collect()
    }

    async fn message_noticed(&self, id: MessageId) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE race_messages SET noticed = true WHERE id = $1")
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db(MESSAGE))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(MESSAGE, id));
        }
        Ok(())
    }

    async fn list_messages(
        &self,
        game_id: GameId,
        race: &str,
        page: &PageRequest,
    ) -> Result<Page<RaceMessage>, StoreError> {
        let (after_at, after_id) = cursor(page)?;
        let rows = sqlx::query(
            "SELECT * FROM race_messages WHERE game_id = $1 \
             AND (sender_race = $2 OR $2 = ANY(recipients)) \
             AND ($3::timestamptz IS NULL OR (sent_at, id) < ($3, $4)) \
             ORDER BY sent_at DESC, id DESC LIMIT $5",
        )
        .bind(game_id.as_uuid())
        .bind(race)
        .bind(after_at)
        .bind(after_id)
        .bind(page_limit(page))
        .fetch_all(&self.pool)
        .await
        .map_err(db(MESSAGE))?;
        let items = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(items, page, |m| (m.sent_at, m.id.as_uuid())))
    }
}
