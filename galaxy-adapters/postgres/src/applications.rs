//! [`ApplicationStore`] on `applications`, sharing the `games` rows so that approval
//! changes both in one transaction. Inserting counts the user's active games under the
//! user's advisory lock in the same transaction (see [`crate::locks`]).

use async_trait::async_trait;
use galaxy_core::domain::application::{Application, ApplicationStatus, MAX_APPLICATIONS_PER_GAME};
use galaxy_core::domain::game::GameStatus;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::race_name::{RaceName, RaceNameStatus};
use galaxy_core::domain::{ApplicationId, GameId, InvalidTransition, Timestamp, UserId};
use galaxy_core::ports::{
    ApplicationInsert, ApplicationStore, ApprovalOutcome, StoreError, UserGame, UserGamesFilter,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::PgStore;
use crate::error::{corrupt, db, is_foreign_key_violation, store_error};
use crate::games::{GAME, game_from_row};
use crate::locks::{self, Bucket};
use crate::race_names::RACE_NAME;
use crate::rows::{RowExt, cursor, page_limit, page_of};

const APPLICATION: &str = "application";

fn application_from_row(row: &PgRow) -> Result<Application, StoreError> {
    Ok(Application {
        id: ApplicationId::from_uuid(row.col(APPLICATION, "id")?),
        game_id: GameId::from_uuid(row.col(APPLICATION, "game_id")?),
        user_id: UserId::from_uuid(row.col(APPLICATION, "user_id")?),
        race_name: row.col_parse(APPLICATION, "race_name", RaceName::parse)?,
        status: row.col_name(APPLICATION, "status", ApplicationStatus::parse)?,
        created_at: row.col(APPLICATION, "created_at")?,
        decided_at: row.col(APPLICATION, "decided_at")?,
    })
}

/// How many games the user is active in (what the active-games entitlement counts, as
/// [`ApplicationStore::count_active_games`] says): games not known to have finished or
/// been cancelled where they hold a live application for a race not handed over to
/// another player, play a race, or wait on a seat application; leaving out `besides`
/// (the game an application is for: being active in it already, it adds no game).
async fn active_games(
    connection: &mut PgConnection,
    user_id: UserId,
    besides: Option<GameId>,
) -> Result<u32, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT held.game_id) FROM ( \
             SELECT a.game_id FROM applications a \
              WHERE a.user_id = $1 AND a.status IN ('pending', 'approved') \
                AND NOT EXISTS (SELECT 1 FROM pbem_races r WHERE r.game_id = a.game_id \
                                AND r.race = a.race_name AND r.user_id <> $1) \
             UNION ALL SELECT r.game_id FROM pbem_races r WHERE r.user_id = $1 \
             UNION ALL SELECT s.game_id FROM seat_applications s \
              WHERE s.user_id = $1 AND s.status = 'pending' \
         ) held \
         WHERE held.game_id IS DISTINCT FROM $2 \
           AND NOT EXISTS (SELECT 1 FROM games g WHERE g.id = held.game_id \
                           AND g.status IN ('finished', 'cancelled'))",
    )
    .bind(user_id.as_uuid())
    .bind(besides.map(|g| g.as_uuid()))
    .fetch_one(connection)
    .await
    .map_err(db(APPLICATION))?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Takes the user's active-games lock for the rest of the transaction and counts their
/// active games besides `game`: every write that makes a user active in one more game
/// (an application to a game, an application for an open seat) does this first, so
/// that concurrent ones queue and each counts what its predecessors committed (see
/// [`crate::locks`]).
pub(crate) async fn lock_active_games(
    tx: &mut Transaction<'static, Postgres>,
    user_id: UserId,
    game: GameId,
) -> Result<u32, StoreError> {
    let key = locks::key(Bucket::ActiveGames, &user_id.to_string());
    locks::lock(tx, APPLICATION, vec![key]).await?;
    active_games(tx, user_id, Some(game)).await
}

#[async_trait]
impl ApplicationStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn insert_application(
        &self,
        application: &Application,
        max_active_games: u32,
    ) -> Result<ApplicationInsert, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(APPLICATION))?;
        if application.status == ApplicationStatus::Pending {
            // The game row first (game-then-application, as approvals lock), shared:
            // applications to one game go side by side, while a status change (closing,
            // cancelling) waits for them or makes them find it changed.
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM games WHERE id = $1 FOR SHARE")
                    .bind(application.game_id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db(GAME))?;
            let Some(status) = status else {
                return Err(StoreError::not_found(GAME, application.game_id));
            };
            let status = GameStatus::parse(&status)
                .ok_or_else(|| corrupt(GAME, "status", "not a game status"))?;
            if status != GameStatus::EnrollmentOpen {
                return Ok(ApplicationInsert::NotEnrolling(status));
            }
        }
        if application.status.is_live() {
            // Under the user's lock: one of their applications at a time is counted and
            // written, so concurrent ones cannot pass either bound together.
            let live = lock_active_games(&mut tx, application.user_id, application.game_id).await?;
            if live >= max_active_games {
                return Ok(ApplicationInsert::TooManyActiveGames { live });
            }
            if application.status == ApplicationStatus::Pending {
                let made: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM applications WHERE game_id = $1 AND user_id = $2",
                )
                .bind(application.game_id.as_uuid())
                .bind(application.user_id.as_uuid())
                .fetch_one(&mut *tx)
                .await
                .map_err(db(APPLICATION))?;
                let made = u32::try_from(made).unwrap_or(u32::MAX);
                if made >= MAX_APPLICATIONS_PER_GAME {
                    return Ok(ApplicationInsert::TooManyApplications { made });
                }
            }
            // The name's entry, shared-locked to the commit: a release of it (which locks
            // it for update, then looks for the owner's live applications) either went
            // first, and this finds it released, or waits and then finds this one.
            let held: Option<(uuid::Uuid, String)> =
                sqlx::query_as("SELECT owner, status FROM race_names WHERE key = $1 FOR SHARE")
                    .bind(application.race_name.key().as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db(RACE_NAME))?;
            if let Some((owner, status)) = held
                && (owner != application.user_id.as_uuid()
                    || status == RaceNameStatus::Released.as_str())
            {
                return Ok(ApplicationInsert::RaceNameNotHeld);
            }
        }
        sqlx::query(
            "INSERT INTO applications (id, game_id, user_id, race_name, status, created_at, \
             decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(application.id.as_uuid())
        .bind(application.game_id.as_uuid())
        .bind(application.user_id.as_uuid())
        .bind(application.race_name.as_str())
        .bind(application.status.as_str())
        .bind(application.created_at)
        .bind(application.decided_at)
        .execute(&mut *tx)
        .await
        .map_err(|error| {
            if is_foreign_key_violation(&error) {
                StoreError::not_found(GAME, application.game_id)
            } else {
                store_error(APPLICATION, error)
            }
        })?;
        tx.commit().await.map_err(db(APPLICATION))?;
        Ok(ApplicationInsert::Inserted)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_application(&self, id: ApplicationId) -> Result<Application, StoreError> {
        let row = sqlx::query("SELECT * FROM applications WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(APPLICATION))?;
        match row {
            Some(row) => application_from_row(&row),
            None => Err(StoreError::not_found(APPLICATION, id)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_applications(&self, game_id: GameId) -> Result<Vec<Application>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM applications WHERE game_id = $1 ORDER BY created_at, id")
                .bind(game_id.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db(APPLICATION))?;
        rows.iter().map(application_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_user_applications(
        &self,
        user_id: UserId,
    ) -> Result<Vec<Application>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM applications WHERE user_id = $1 ORDER BY created_at, id")
                .bind(user_id.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db(APPLICATION))?;
        rows.iter().map(application_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn find_live_application(
        &self,
        game_id: GameId,
        user_id: UserId,
    ) -> Result<Option<Application>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM applications WHERE game_id = $1 AND user_id = $2 \
             AND status IN ('pending', 'approved')",
        )
        .bind(game_id.as_uuid())
        .bind(user_id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db(APPLICATION))?;
        row.as_ref().map(application_from_row).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_user_games(
        &self,
        user_id: UserId,
        filter: UserGamesFilter,
        page: &PageRequest,
    ) -> Result<Page<UserGame>, StoreError> {
        let (after_at, after_id) = cursor(page)?;
        // The race each game is played as: the record's, else the approved application's
        // (before the start, or before the records were made) unless that race was
        // handed over to another player. Then the page of those games and the hosted
        // ones, newest first.
        let rows = sqlx::query(
            "WITH played AS ( \
                 SELECT game_id, race FROM pbem_races WHERE $2 AND user_id = $1 \
             ), mine AS ( \
                 SELECT game_id, race FROM played \
                 UNION ALL \
                 SELECT a.game_id, a.race_name FROM applications a \
                  WHERE $2 AND a.user_id = $1 AND a.status = 'approved' \
                    AND NOT EXISTS (SELECT 1 FROM played p WHERE p.game_id = a.game_id) \
                    AND NOT EXISTS (SELECT 1 FROM pbem_races r WHERE r.game_id = a.game_id \
                                    AND r.race = a.race_name AND r.user_id <> $1) \
             ), ids AS ( \
                 SELECT game_id FROM mine UNION SELECT id FROM games WHERE $3 AND host = $1 \
             ) \
             SELECT g.*, m.race AS my_race FROM ids JOIN games g ON g.id = ids.game_id \
               LEFT JOIN mine m ON m.game_id = g.id \
              WHERE ($4::boolean IS NULL \
                     OR (g.status IN ('finished', 'cancelled')) = $4) \
                AND ($5::timestamptz IS NULL OR (g.created_at, g.id) < ($5, $6)) \
              ORDER BY g.created_at DESC, g.id DESC LIMIT $7",
        )
        .bind(user_id.as_uuid())
        .bind(filter.plays)
        .bind(filter.hosts)
        .bind(filter.ended)
        .bind(after_at)
        .bind(after_id)
        .bind(page_limit(page))
        .fetch_all(&self.pool)
        .await
        .map_err(db(GAME))?;
        let games = rows
            .iter()
            .map(|row| {
                Ok(UserGame {
                    game: game_from_row(row)?,
                    race: row.col(GAME, "my_race")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page_of(games, page, |g| {
            (g.game.created_at, g.game.id.as_uuid())
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn count_active_games(&self, user_id: UserId) -> Result<u32, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(db(APPLICATION))?;
        active_games(&mut connection, user_id, None).await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn decide_application(
        &self,
        id: ApplicationId,
        to: ApplicationStatus,
        at: Timestamp,
    ) -> Result<Application, StoreError> {
        // Approval must go through `approve_application`, which keeps the count exact.
        if !matches!(
            to,
            ApplicationStatus::Rejected | ApplicationStatus::Withdrawn
        ) {
            let from = ApplicationStatus::Pending;
            return Err(InvalidTransition::new(APPLICATION, from, to, "decision").into());
        }
        let row = sqlx::query(
            "UPDATE applications SET status = $2, decided_at = $3 \
             WHERE id = $1 AND status = 'pending' RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(to.as_str())
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(APPLICATION))?;
        if let Some(row) = row {
            return application_from_row(&row);
        }
        let stored = self.get_application(id).await?;
        Err(StoreError::conflict(
            APPLICATION,
            id,
            format!("status is {}, expected pending", stored.status),
        ))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn approve_application(
        &self,
        id: ApplicationId,
        at: Timestamp,
    ) -> Result<ApprovalOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(APPLICATION))?;
        // The game row is locked first and for the whole transaction: concurrent
        // approvals for one game queue here, and each sees the count its predecessor
        // committed. Locking always game-then-application rules out deadlocks.
        let game_row = sqlx::query(
            "SELECT g.* FROM games g \
             WHERE g.id = (SELECT game_id FROM applications WHERE id = $1) FOR UPDATE",
        )
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(GAME))?;
        let application_row = sqlx::query("SELECT * FROM applications WHERE id = $1 FOR UPDATE")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(APPLICATION))?;
        let application = match application_row {
            Some(row) => application_from_row(&row)?,
            None => return Err(StoreError::not_found(APPLICATION, id)),
        };
        if application.status != ApplicationStatus::Pending {
            return Ok(ApprovalOutcome::NotPending(application.status));
        }
        let game = match game_row {
            Some(row) => game_from_row(&row)?,
            None => return Err(StoreError::not_found(GAME, application.game_id)),
        };
        if game.id != application.game_id {
            return Err(corrupt(APPLICATION, "game_id", "changed during approval"));
        }
        if game.status != GameStatus::EnrollmentOpen {
            return Ok(ApprovalOutcome::NotEnrolling(game.status));
        }
        if game.is_full() {
            return Ok(ApprovalOutcome::GameFull);
        }
        let application_row = sqlx::query(
            "UPDATE applications SET status = 'approved', decided_at = $2 WHERE id = $1 \
             RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db(APPLICATION))?;
        let game_row = sqlx::query(
            "UPDATE games SET approved_count = approved_count + 1, updated_at = $2 \
             WHERE id = $1 RETURNING *",
        )
        .bind(game.id.as_uuid())
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db(GAME))?;
        let outcome = ApprovalOutcome::Approved {
            application: application_from_row(&application_row)?,
            game: game_from_row(&game_row)?,
        };
        tx.commit().await.map_err(db(APPLICATION))?;
        Ok(outcome)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn unannounced_applications(&self, limit: u32) -> Result<Vec<Application>, StoreError> {
        // `withdrawn` is the one status not announced (`ApplicationStatus::is_announced`).
        let rows = sqlx::query(
            "SELECT * FROM applications \
             WHERE announced_status IS DISTINCT FROM status AND status <> 'withdrawn' \
             ORDER BY created_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(APPLICATION))?;
        rows.iter().map(application_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn mark_application_announced(
        &self,
        id: ApplicationId,
        status: ApplicationStatus,
    ) -> Result<(), StoreError> {
        let found = sqlx::query("UPDATE applications SET announced_status = $2 WHERE id = $1")
            .bind(id.as_uuid())
            .bind(status.as_str())
            .execute(&self.pool)
            .await
            .map_err(db(APPLICATION))?
            .rows_affected();
        if found == 0 {
            return Err(StoreError::not_found(APPLICATION, id));
        }
        Ok(())
    }
}
