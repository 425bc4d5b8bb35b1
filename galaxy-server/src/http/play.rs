//! The players' routes: orders (forwarded to the game's engine for the caller's own race,
//! every answered submission recorded) and their read-back, reports and the turn history
//! from the turn archive (so they outlive the engine), and "my games".

use axum::Json;
use axum::extract::State;
use galaxy_core::domain::GameId;
use galaxy_core::ports::StoreError;
use galaxy_core::service::runtime::{MyGamesFilter, MyGamesRole, RuntimeError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::dto::{
    MyGamePage, MyGameView, MyGamesQuery, OrdersReadBackView, ReportQuery, TurnList, page_request,
};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use crate::state::AppState;

/// `PUT /user/games/{id}/orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrdersRequest {
    /// The turn the orders are for: the engine's current turn + 1.
    pub turn: u32,
    /// Whatever the game's engine understands (structured JSON, or plain text for a
    /// classic engine); passed through untouched, at most `GALAXY_MAX_ORDERS_BYTES`.
    #[schema(value_type = Object)]
    pub orders: Value,
}

/// The engine's verdict on submitted orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrdersVerdictView {
    /// Whether the engine took the orders.
    pub accepted: bool,
    /// Why not (or warnings).
    pub errors: Vec<String>,
}

/// Submits the caller's orders for a turn and records them; the engine's verdict is
/// returned as is.
#[utoipa::path(
    put,
    path = "/api/v1/user/games/{id}/orders",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    request_body = OrdersRequest,
    responses(
        (status = 200, description = "The engine's verdict (`accepted: false` with its errors when it refused the orders).", body = OrdersVerdictView),
        (status = 404, description = "No such game, the caller does not play in it, or the engine knows no such race (`engine_not_found`).", body = ErrorBody),
        (status = 409, description = "The game is not in play (`invalid_status`), the caller's race is out of the game (`race_eliminated`), or the engine refused the turn (`engine_conflict`).", body = ErrorBody),
        (status = 422, description = "The orders are too large (`orders_too_large`) or the engine refused the request (`engine_refused`), with its message.", body = ErrorBody),
        (status = 503, description = "The engine is unreachable, timed out or failed (`engine_unavailable`), or another submission of the race's orders was in flight for ten seconds (`orders_busy`, with `Retry-After`).", body = ErrorBody),
    )
)]
pub(crate) async fn submit_orders(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
    ApiJson(body): ApiJson<OrdersRequest>,
) -> Result<Json<OrdersVerdictView>, ApiError> {
    let verdict = state
        .runtime
        .submit_orders(caller.actor, id, body.turn, &body.orders)
        .await?;
    Ok(Json(OrdersVerdictView {
        accepted: verdict.accepted,
        errors: verdict.errors,
    }))
}

/// The caller's orders for a turn: the latest submission and the earlier ones.
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/orders/{turn}",
    tag = "games",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("turn" = u32, Path, description = "The turn the orders are for."),
    ),
    responses(
        (status = 200, description = "The caller's submissions (`latest: null` when none).", body = OrdersReadBackView),
        (status = 404, description = "No such game, or the caller does not play in it.", body = ErrorBody),
    )
)]
pub(crate) async fn get_orders(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((id, turn)): ApiPath<(GameId, u32)>,
) -> Result<Json<OrdersReadBackView>, ApiError> {
    let read = state.runtime.orders(caller.actor, id, turn).await?;
    Ok(Json(read.into()))
}

/// A report of a turn, from the archive: the caller's own, or another race's (`?race=`)
/// once the game is finished and its host left the reveal on.
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/reports/{turn}",
    tag = "games",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("turn" = u32, Path, description = "The turn (0 is the start)."),
        ReportQuery,
    ),
    responses(
        (status = 200, description = "The report as the engine wrote it: `{race, turn, text, ...}`.", body = Object),
        (status = 404, description = "No such game, the caller does not play in it, a race the caller may not read (`not_found`), or a turn not played yet (`turn_not_played`).", body = ErrorBody),
    )
)]
pub(crate) async fn get_report(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((id, turn)): ApiPath<(GameId, u32)>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    let report = state
        .runtime
        .report(caller.actor, id, turn, query.race.as_deref())
        .await?;
    Ok(Json(report.report))
}

/// Every played turn of a game, turn 0 first, with its time and standings.
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/turns",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The turns (empty before the start).", body = TurnList),
        (status = 404, description = "No such game visible to the caller.", body = ErrorBody),
    )
)]
pub(crate) async fn list_turns(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<TurnList>, ApiError> {
    let turns = state.runtime.turns(Some(caller.actor), id).await?;
    Ok(Json(TurnList {
        items: turns.into_iter().map(Into::into).collect(),
    }))
}

/// The caller's games, newest first: those they play in and those they host (or one
/// kind with `?role=`; only ended games, or only the others, with `?ended=`), each with
/// its race, turn, next turn time and whether the caller's orders are in.
#[utoipa::path(
    get,
    path = "/api/v1/user/games",
    tag = "games",
    params(MyGamesQuery),
    responses(
        (status = 200, description = "One page of the caller's games.", body = MyGamePage),
        (status = 400, description = "A bad `role`, `ended`, `limit` or `after`.", body = ErrorBody),
    )
)]
pub(crate) async fn list_my_games(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiQuery(query): ApiQuery<MyGamesQuery>,
) -> Result<Json<MyGamePage>, ApiError> {
    let role = match query.role.as_deref() {
        None => None,
        Some("player") => Some(MyGamesRole::Player),
        Some("host") => Some(MyGamesRole::Host),
        Some(_) => {
            return Err(ApiError::invalid_request("role must be player or host").with_field("role"));
        }
    };
    let ended = match query.ended.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(
                ApiError::invalid_request("ended must be true or false").with_field("ended")
            );
        }
    };
    let page = page_request(query.limit.as_deref(), query.after.as_deref())?;
    let filter = MyGamesFilter { role, ended };
    let games = state
        .runtime
        .my_games(caller.actor, filter, &page)
        .await
        .map_err(|error| match error {
            RuntimeError::Store(StoreError::InvalidCursor(_)) => {
                ApiError::invalid_request("after is not a cursor of this list").with_field("after")
            }
            error => ApiError::from(error),
        })?;
    let mut items = Vec::with_capacity(games.items.len());
    for game in games.items {
        let plays = game.race.is_some();
        let id = game.game.id;
        let mut view = MyGameView::from(game);
        if let (true, Some(mail_in)) = (plays, &state.mail_in) {
            let address = mail_in
                .ensure(caller.user.id, id)
                .await
                .map_err(galaxy_core::service::mail_in::MailInError::from)?;
            view.orders_address = Some(address.address);
        }
        items.push(view);
    }
    Ok(Json(MyGamePage {
        items,
        next_after: games.next_after,
    }))
}
