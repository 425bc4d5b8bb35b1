//! [`GameStore`] on `games` and its history table `game_transitions`.

use async_trait::async_trait;
use galaxy_core::domain::game::{
    CANCELLED_KEEPS_SLOT, EngineName, EngineSettings, Game, GameName, GameSettings, GameStatus,
    GameTransition, GameTrigger, Visibility,
};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::pbem::PbemSettings;
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::{GameId, Timestamp, UserId};
use galaxy_core::ports::{GameFilter, GameStatusChange, GameStore, StoreError};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::PgStore;
use crate::error::{corrupt, db};
use crate::locks::{self, Bucket};
use crate::rows::{RowExt, contains_pattern, cursor, limit_param, page_limit, page_of, u32_param};

pub(crate) const GAME: &str = "game";
const TRANSITION: &str = "game transition";

/// Maps a `games` row.
pub(crate) fn game_from_row(row: &PgRow) -> Result<Game, StoreError> {
    let settings = GameSettings {
        name: row.col_parse(GAME, "name", GameName::parse_stored)?,
        min_players: row.col_u32(GAME, "min_players")?,
        max_players: row.col_u32(GAME, "max_players")?,
        enrollment_deadline: row.col(GAME, "enrollment_deadline")?,
        schedule: row.col_parse(GAME, "schedule", TurnSchedule::parse)?,
        engine: row.col_parse(GAME, "engine", EngineName::parse)?,
        auto_approve: row.col(GAME, "auto_approve")?,
        visibility: row.col_name(GAME, "visibility", Visibility::parse)?,
        engine_settings: {
            let Json(value): Json<serde_json::Value> = row.col(GAME, "engine_settings")?;
            EngineSettings::parse(value).map_err(|e| corrupt(GAME, "engine_settings", e))?
        },
        reveal_reports_after_finish: row.col(GAME, "reveal_reports_after_finish")?,
        pbem: {
            let Json(value): Json<serde_json::Value> = row.col(GAME, "pbem")?;
            PbemSettings::from_json(value).map_err(|e| corrupt(GAME, "pbem", e))?
        },
    };
    Ok(Game {
        id: GameId::from_uuid(row.col(GAME, "id")?),
        host: UserId::from_uuid(row.col(GAME, "host")?),
        settings,
        status: row.col_name(GAME, "status", GameStatus::parse)?,
        approved_count: row.col_u32(GAME, "approved_count")?,
        created_at: row.col(GAME, "created_at")?,
        updated_at: row.col(GAME, "updated_at")?,
    })
}

fn games_from_rows(rows: &[PgRow]) -> Result<Vec<Game>, StoreError> {
    rows.iter().map(game_from_row).collect()
}

fn transition_from_row(row: &PgRow) -> Result<GameTransition, StoreError> {
    let actor: Option<Uuid> = row.col(TRANSITION, "actor")?;
    Ok(GameTransition {
        game_id: GameId::from_uuid(row.col(TRANSITION, "game_id")?),
        from: row.col_name(TRANSITION, "from_status", GameStatus::parse)?,
        to: row.col_name(TRANSITION, "to_status", GameStatus::parse)?,
        trigger: row.col_name(TRANSITION, "trigger", GameTrigger::parse)?,
        actor: actor.map(UserId::from_uuid),
        reason: row.col(TRANSITION, "reason")?,
        at: row.col(TRANSITION, "at")?,
    })
}

impl PgStore {
    /// The stored status of a game; `NotFound` when there is no such game.
    pub(crate) async fn game_status(&self, id: GameId) -> Result<GameStatus, StoreError> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM games WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(GAME))?;
        let status = status.ok_or_else(|| StoreError::not_found(GAME, id))?;
        GameStatus::parse(&status)
            .ok_or_else(|| crate::error::corrupt(GAME, "status", format!("unknown {status:?}")))
    }
}

/// The one `INSERT` of a game row, on the pool or inside a transaction.
async fn insert_game_row<'e, E>(executor: E, game: &Game) -> Result<(), StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let s = &game.settings;
    sqlx::query(
        "INSERT INTO games (id, host, name, min_players, max_players, enrollment_deadline, \
         schedule, engine, auto_approve, visibility, status, approved_count, created_at, \
         updated_at, engine_settings, reveal_reports_after_finish, pbem) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(game.id.as_uuid())
    .bind(game.host.as_uuid())
    .bind(s.name.as_str())
    .bind(u32_param(s.min_players))
    .bind(u32_param(s.max_players))
    .bind(s.enrollment_deadline)
    .bind(s.schedule.as_str())
    .bind(s.engine.as_str())
    .bind(s.auto_approve)
    .bind(s.visibility.as_str())
    .bind(game.status.as_str())
    .bind(u32_param(game.approved_count))
    .bind(game.created_at)
    .bind(game.updated_at)
    .bind(Json(s.engine_settings.as_map()))
    .bind(s.reveal_reports_after_finish)
    .bind(Json(s.pbem.to_json()))
    .execute(executor)
    .await
    .map_err(db(GAME))?;
    Ok(())
}

#[async_trait]
impl GameStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn insert_game(&self, game: &Game) -> Result<(), StoreError> {
        insert_game_row(&self.pool, game).await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn insert_hosted_game(
        &self,
        game: &Game,
        max_unfinished: u32,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(GAME))?;
        // One host's creations take turns (see `locks`).
        let key = locks::key(Bucket::HostedGames, &game.host.to_string());
        locks::lock(&mut tx, GAME, vec![key]).await?;
        // As `Game::holds_hosting_slot_at`.
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM games g WHERE g.host = $1 \
             AND (g.status NOT IN ('finished', 'cancelled') \
             OR (g.status = 'cancelled' AND g.updated_at > $2 AND EXISTS (\
                 SELECT 1 FROM game_transitions t WHERE t.game_id = g.id \
                 AND t.to_status = 'cancelled' AND t.trigger = 'host')))",
        )
        .bind(game.host.as_uuid())
        .bind(game.created_at - CANCELLED_KEEPS_SLOT)
        .fetch_one(&mut *tx)
        .await
        .map_err(db(GAME))?;
        if unfinished >= i64::from(max_unfinished) {
            tx.rollback().await.map_err(db(GAME))?;
            return Ok(false);
        }
        insert_game_row(&mut *tx, game).await?;
        tx.commit().await.map_err(db(GAME))?;
        Ok(true)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_game(&self, id: GameId) -> Result<Game, StoreError> {
        let row = sqlx::query("SELECT * FROM games WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(GAME))?;
        match row {
            Some(row) => game_from_row(&row),
            None => Err(StoreError::not_found(GAME, id)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_games(
        &self,
        filter: &GameFilter,
        page: &PageRequest,
    ) -> Result<Page<Game>, StoreError> {
        let (after_at, after_id) = cursor(page)?;
        let statuses: Vec<&str> = filter.statuses.iter().map(GameStatus::as_str).collect();
        let name = filter.name_contains.as_deref().map(contains_pattern);
        let rows = sqlx::query(
            "SELECT * FROM games \
             WHERE (cardinality($1::text[]) = 0 OR status = ANY($1)) \
             AND ($2::text IS NULL OR visibility = $2) \
             AND ($3::uuid IS NULL OR host = $3) \
             AND ($7::text IS NULL OR name ILIKE $7 ESCAPE '\\') \
             AND (NOT $8 OR approved_count < max_players) \
             AND (created_at, id) > (COALESCE($4, '-infinity'::timestamptz), \
                                     COALESCE($5, '00000000-0000-0000-0000-000000000000'::uuid)) \
             ORDER BY created_at, id LIMIT $6",
        )
        .bind(statuses)
        .bind(filter.visibility.map(|v| v.as_str()))
        .bind(filter.host.map(|h| h.as_uuid()))
        .bind(after_at)
        .bind(after_id)
        .bind(page_limit(page))
        .bind(name)
        .bind(filter.free_seat)
        .fetch_all(&self.pool)
        .await
        .map_err(db(GAME))?;
        let games = games_from_rows(&rows)?;
        Ok(page_of(games, page, |g| (g.created_at, g.id.as_uuid())))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn update_game_status(
        &self,
        id: GameId,
        expected_from: GameStatus,
        change: &GameStatusChange,
    ) -> Result<Game, StoreError> {
        expected_from.check(change.to, change.trigger)?;
        // One statement: the compare-and-set and the history row commit together, and a
        // concurrent loser re-checks the status after the winner commits (0 rows).
        let row = sqlx::query(
            "WITH updated AS ( \
                 UPDATE games SET status = $3, updated_at = $7 \
                 WHERE id = $1 AND status = $2 \
                 AND ($9::bigint IS NULL OR approved_count = $9) RETURNING * \
             ), history AS ( \
                 INSERT INTO game_transitions \
                     (game_id, from_status, to_status, trigger, actor, reason, at, announced_at) \
                 SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM updated \
             ) SELECT * FROM updated",
        )
        .bind(id.as_uuid())
        .bind(expected_from.as_str())
        .bind(change.to.as_str())
        .bind(change.trigger.as_str())
        .bind(change.actor.map(|a| a.as_uuid()))
        .bind(change.reason.as_deref())
        .bind(change.at)
        // A transition owing lobby effects is stored unannounced: it is their outbox.
        .bind((!change.to.owes_lobby_effects()).then_some(change.at))
        .bind(change.expected_approved.map(u32_param))
        .fetch_optional(&self.pool)
        .await
        .map_err(db(GAME))?;
        if let Some(row) = row {
            return game_from_row(&row);
        }
        let stored = self.get_game(id).await?;
        let detail = match change.expected_approved {
            Some(expected) if stored.status == expected_from => format!(
                "approved count is {}, expected {expected}",
                stored.approved_count
            ),
            _ => format!("status is {}, expected {expected_from}", stored.status),
        };
        Err(StoreError::conflict(GAME, id, detail))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn game_transitions(&self, id: GameId) -> Result<Vec<GameTransition>, StoreError> {
        self.game_status(id).await?;
        let rows = sqlx::query("SELECT * FROM game_transitions WHERE game_id = $1 ORDER BY seq")
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db(TRANSITION))?;
        rows.iter().map(transition_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn unannounced_transitions(&self, limit: u32) -> Result<Vec<GameTransition>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM game_transitions WHERE announced_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(TRANSITION))?;
        rows.iter().map(transition_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn mark_transition_announced(
        &self,
        id: GameId,
        to: GameStatus,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        // `coalesce` keeps the first announcement: a repeat changes nothing.
        let found = sqlx::query(
            "UPDATE game_transitions SET announced_at = coalesce(announced_at, $3) \
             WHERE game_id = $1 AND to_status = $2",
        )
        .bind(id.as_uuid())
        .bind(to.as_str())
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(db(TRANSITION))?
        .rows_affected();
        if found == 0 {
            return Err(StoreError::not_found(TRANSITION, format!("{id}/{to}")));
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn games_past_deadline(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Game>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM games WHERE status IN ('draft', 'enrollment_open') \
             AND enrollment_deadline <= $1 ORDER BY enrollment_deadline, id LIMIT $2",
        )
        .bind(now)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(GAME))?;
        games_from_rows(&rows)
    }
}
