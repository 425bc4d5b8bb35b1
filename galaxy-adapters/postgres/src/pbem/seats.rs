//! The seats of [`PbemStore`](galaxy_core::ports::PbemStore): an idle race's seat opened
//! to replacement players, their applications (counted against the active-games limit),
//! the handover to the one approved and the notices owed for it. Each function is one
//! transaction under the race row's lock.

use galaxy_core::domain::pbem::{RaceRecord, SeatApplication, SeatApplicationStatus};
use galaxy_core::domain::{GameId, SeatApplicationId, UserId};
use galaxy_core::ports::{OwedSeatNotice, SeatApplicationInsert, SeatHandover, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{RACE, conflict, lock_race, write_race};
use crate::PgStore;
use crate::applications::lock_active_games;
use crate::error::db;
use crate::rows::RowExt;

const SEAT: &str = "seat application";

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

pub(super) async fn open_seat(
    store: &PgStore,
    game_id: GameId,
    race: &str,
) -> Result<RaceRecord, StoreError> {
    let mut tx = store.pool.begin().await.map_err(db(RACE))?;
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

pub(super) async fn reclaim_seat(
    store: &PgStore,
    game_id: GameId,
    race: &str,
    user_id: UserId,
) -> Result<RaceRecord, StoreError> {
    let mut tx = store.pool.begin().await.map_err(db(RACE))?;
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

pub(super) async fn apply_for_seat(
    store: &PgStore,
    application: &SeatApplication,
    max_active_games: u32,
) -> Result<SeatApplicationInsert, StoreError> {
    let (game_id, race) = (application.game_id, application.race.as_str());
    let mut tx = store.pool.begin().await.map_err(db(SEAT))?;
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

pub(super) async fn list_seat_applications(
    store: &PgStore,
    game_id: GameId,
    race: &str,
) -> Result<Vec<SeatApplication>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM seat_applications WHERE game_id = $1 AND race = $2 \
         ORDER BY created_at, id",
    )
    .bind(game_id.as_uuid())
    .bind(race)
    .fetch_all(&store.pool)
    .await
    .map_err(db(SEAT))?;
    rows.iter().map(application_from_row).collect()
}

pub(super) async fn approve_seat_application(
    store: &PgStore,
    game_id: GameId,
    race: &str,
    application_id: SeatApplicationId,
) -> Result<SeatHandover, StoreError> {
    let mut tx = store.pool.begin().await.map_err(db(SEAT))?;
    let mut record = lock_race(&mut tx, game_id, race).await?;
    let row =
        sqlx::query("SELECT * FROM seat_applications WHERE id = $1 AND game_id = $2 AND race = $3")
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

pub(super) async fn owed_seat_notices(
    store: &PgStore,
    limit: u32,
) -> Result<Vec<OwedSeatNotice>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM seat_applications WHERE status = 'approved' AND NOT noticed \
         ORDER BY approved_at, id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
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

pub(super) async fn seat_notice_raised(
    store: &PgStore,
    id: SeatApplicationId,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE seat_applications SET noticed = true WHERE id = $1")
        .bind(id.as_uuid())
        .execute(&store.pool)
        .await
        .map_err(db(SEAT))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found(SEAT, id));
    }
    Ok(())
}

pub(super) async fn open_seats(
    store: &PgStore,
    candidates: &[GameId],
) -> Result<Vec<(GameId, Vec<String>)>, StoreError> {
    let ids: Vec<Uuid> = candidates.iter().map(|g| g.as_uuid()).collect();
    let rows: Vec<(Uuid, Vec<String>)> = sqlx::query_as(
        "SELECT game_id, array_agg(race ORDER BY race COLLATE \"C\") FROM pbem_races \
         WHERE seat_open AND game_id = ANY($1) GROUP BY game_id",
    )
    .bind(&ids)
    .fetch_all(&store.pool)
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
