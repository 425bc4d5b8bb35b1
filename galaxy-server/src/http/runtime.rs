//! Runtime routes: the admins' view of engines (runtime records, health events) and
//! actions on running games. The players' routes are in `play.rs`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use galaxy_core::domain::GameId;
use galaxy_core::domain::health::HealthEvent;
use galaxy_core::domain::page::Page;
use galaxy_core::domain::runtime::RuntimeRecord;
use galaxy_core::service::runtime::RuntimeError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::dto::{GameView, PageQuery, page_request};
use super::error::{ApiError, ErrorBody};
use super::extract::{AdminUser, ApiPath, ApiQuery, parse_id};
use crate::state::AppState;

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        let api = Self::from_service(&error);
        match &error {
            RuntimeError::OrdersTooLarge { .. }
            | RuntimeError::InvalidRequest(_)
            | RuntimeError::EngineRefused {
                status: 400 | 422, ..
            } => api.with_field("orders"),
            RuntimeError::Validation { field, .. } => api.with_field(field),
            _ => api,
        }
    }
}

/// One game's engine, as the runtime records it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuntimeRecordView {
    /// The game.
    pub game_id: Uuid,
    /// `pending`, `starting`, `running`, `stopping`, `stopped`, `removed` or `failed`.
    pub status: String,
    /// The registered engine that runs the game.
    pub engine: String,
    /// The container (or process) id, once created.
    pub container_id: Option<String>,
    /// Base URL of the engine, once created.
    pub engine_endpoint: Option<String>,
    /// The last turn the engine completed (0 after init).
    pub current_turn: u32,
    /// When the scheduler runs the next turn.
    pub next_turn_at: Option<DateTime<Utc>>,
    /// Whether the next scheduled tick is skipped (set by force-next-turn).
    pub skip_next_tick: bool,
    /// The last health verdict.
    pub healthy: bool,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<RuntimeRecord> for RuntimeRecordView {
    fn from(record: RuntimeRecord) -> Self {
        let (container_id, engine_endpoint) = match record.binding {
            Some(b) => (Some(b.container_id), Some(b.engine_endpoint)),
            None => (None, None),
        };
        Self {
            game_id: record.game_id.as_uuid(),
            status: record.status.as_str().to_owned(),
            engine: record.engine.as_str().to_owned(),
            container_id,
            engine_endpoint,
            current_turn: record.current_turn,
            next_turn_at: record.next_turn_at,
            skip_next_tick: record.skip_next_tick,
            healthy: record.healthy,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// One stored health event.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthEventView {
    /// The event.
    pub id: Uuid,
    /// The game observed.
    pub game_id: Uuid,
    /// `probe_failed`, `probe_recovered`, `inspect_unhealthy`, `container_disappeared` or
    /// `turn_failed`.
    pub kind: String,
    /// Kind-specific facts.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// When it was observed.
    pub occurred_at: DateTime<Utc>,
}

impl From<HealthEvent> for HealthEventView {
    fn from(event: HealthEvent) -> Self {
        Self {
            id: event.id.as_uuid(),
            game_id: event.game_id.as_uuid(),
            kind: event.kind.as_str().to_owned(),
            detail: event.detail,
            occurred_at: event.occurred_at,
        }
    }
}

/// One page of runtime records.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuntimeRecordPage {
    /// The records.
    pub items: Vec<RuntimeRecordView>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<String>,
}

/// One page of health events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthEventPage {
    /// The events.
    pub items: Vec<HealthEventView>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<String>,
}

fn page_of<T, V: From<T>>(page: Page<T>) -> (Vec<V>, Option<String>) {
    (
        page.items.into_iter().map(V::from).collect(),
        page.next_after,
    )
}

/// `?game_id=&limit=&after=` on `GET /admin/health-events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HealthEventQuery {
    /// Only this game's events; every game's when absent.
    #[param(value_type = Option<Uuid>)]
    pub game_id: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
}

/// Lists every runtime record, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/admin/runtime/records",
    tag = "admin",
    params(PageQuery),
    responses((status = 200, description = "One page of runtime records.", body = RuntimeRecordPage))
)]
pub(crate) async fn list_records(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<RuntimeRecordPage>, ApiError> {
    let page = query.to_request()?;
    let (items, next_after) = page_of(state.runtime.records(admin.actor, &page).await?);
    Ok(Json(RuntimeRecordPage { items, next_after }))
}

/// Reads one game's runtime record.
#[utoipa::path(
    get,
    path = "/api/v1/admin/runtime/records/{game_id}",
    tag = "admin",
    params(("game_id" = Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The record.", body = RuntimeRecordView),
        (status = 404, description = "The game has no runtime record.", body = ErrorBody),
    )
)]
pub(crate) async fn get_record(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<RuntimeRecordView>, ApiError> {
    Ok(Json(state.runtime.record(admin.actor, id).await?.into()))
}

/// Lists health events, newest first, of one game or of all.
#[utoipa::path(
    get,
    path = "/api/v1/admin/health-events",
    tag = "admin",
    params(HealthEventQuery),
    responses((status = 200, description = "One page of health events.", body = HealthEventPage))
)]
pub(crate) async fn list_health_events(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(query): ApiQuery<HealthEventQuery>,
) -> Result<Json<HealthEventPage>, ApiError> {
    let page = page_request(query.limit.as_deref(), query.after.as_deref())?;
    let game = query
        .game_id
        .as_deref()
        .map(|raw| parse_id::<GameId>(raw, "game id", "game_id"))
        .transpose()?;
    let events = state
        .runtime
        .health_events(admin.actor, game, &page)
        .await?;
    let (items, next_after) = page_of(events);
    Ok(Json(HealthEventPage { items, next_after }))
}

/// Declares one admin action on a game that answers the game.
macro_rules! game_action {
    ($name:ident, $path:literal, $method:ident, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(
            post,
            path = $path,
            tag = "admin",
            params(("id" = Uuid, Path, description = "The game.")),
            responses(
                (status = 200, description = "The game after the change.", body = GameView),
                (status = 404, description = "No such game.", body = ErrorBody),
                (status = 409, description = "The game's status (or health) does not allow it.", body = ErrorBody),
            )
        )]
        pub(crate) async fn $name(
            State(state): State<AppState>,
            AdminUser(admin): AdminUser,
            ApiPath(id): ApiPath<GameId>,
        ) -> Result<Json<GameView>, ApiError> {
            let game = state.runtime.$method(admin.actor, id).await?;
            Ok(Json(game.into()))
        }
    };
}

game_action!(
    pause_game,
    "/api/v1/admin/games/{id}/pause",
    pause,
    "Pauses a running game (`running -> paused`): no turn runs until it resumes."
);
game_action!(
    resume_game,
    "/api/v1/admin/games/{id}/resume",
    resume,
    "Resumes a paused game whose engine is healthy (`paused -> running`)."
);
game_action!(
    stop_game,
    "/api/v1/admin/games/{id}/stop",
    stop,
    "Stops a game for good (`cancelled`); its engine is stopped by a queued job."
);
game_action!(
    recreate_engine,
    "/api/v1/admin/games/{id}/recreate-engine",
    recreate_engine,
    "Creates a paused game's engine again when its container is gone (its runtime record is `removed`): a queued job creates the container under the same name, so the engine resumes from its kept data; the game stays paused until resumed."
);
game_action!(
    retry_start,
    "/api/v1/admin/games/{id}/retry-start",
    retry_start,
    "Retries a failed start (`start_failed -> starting`) with a fresh start job."
);

/// `?turn=` on `POST /admin/games/{id}/force-next-turn`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForceTurnQuery {
    /// The turn to run, which must be the game's next (`current_turn + 1`); refused with
    /// 409 `turn_not_next` otherwise. Send it so that repeating a request whose answer
    /// was lost (a timeout: the turn runs on without it) plays no second turn.
    #[param(value_type = Option<u32>, minimum = 1)]
    pub turn: Option<String>,
}

/// Runs the next turn now and skips the next scheduled tick.
#[utoipa::path(
    post,
    path = "/api/v1/admin/games/{id}/force-next-turn",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The game."), ForceTurnQuery),
    responses(
        (status = 200, description = "The runtime record after the turn.", body = RuntimeRecordView),
        (status = 404, description = "No such game.", body = ErrorBody),
        (status = 409, description = "The game is not running, a turn is running, or `turn` is not the next turn.", body = ErrorBody),
        (status = 503, description = "The engine failed; the game was paused.", body = ErrorBody),
    )
)]
pub(crate) async fn force_next_turn(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<GameId>,
    ApiQuery(query): ApiQuery<ForceTurnQuery>,
) -> Result<Json<RuntimeRecordView>, ApiError> {
    let turn = query
        .turn
        .as_deref()
        .map(|raw| {
            raw.parse::<u32>().map_err(|_| {
                ApiError::invalid_request("turn must be a turn number").with_field("turn")
            })
        })
        .transpose()?;
    let record = state.runtime.force_turn(admin.actor, id, turn).await?;
    Ok(Json(record.into()))
}
