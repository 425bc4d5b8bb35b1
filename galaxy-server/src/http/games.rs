//! The lobby for signed-in users: hosting games, applying to them, deciding applications.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use galaxy_core::domain::{ApplicationId, GameId};

use super::dto::{ApplicationList, ApplicationView, ApplyRequest, CreateGameRequest, GameView};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use crate::state::AppState;

/// Creates a draft game hosted by the caller.
#[utoipa::path(
    post,
    path = "/api/v1/user/games",
    tag = "games",
    request_body = CreateGameRequest,
    responses(
        (status = 201, description = "The new draft.", body = GameView),
        (status = 422, description = "A setting is invalid; `details.field` names it.", body = ErrorBody),
    )
)]
pub(crate) async fn create_game(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<CreateGameRequest>,
) -> Result<(StatusCode, Json<GameView>), ApiError> {
    let game = state.lobby.create_game(caller.actor, body.into()).await?;
    Ok((StatusCode::CREATED, Json(game.into())))
}

/// Reads a game (a draft only for its host and admins).
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The game, with its turn, next turn time, result and status reason.", body = GameView),
        (status = 404, description = "No such game visible to the caller.", body = ErrorBody),
    )
)]
pub(crate) async fn get_game(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<GameView>, ApiError> {
    let game = state.lobby.get_game(Some(caller.actor), id).await?;
    let progress = state.runtime.progress(&game, Some(&caller.actor)).await?;
    let races = state.runtime.races(&game).await?;
    Ok(Json(
        GameView::from(game)
            .with_progress(progress)
            .with_races(races),
    ))
}

/// Opens enrollment (`draft -> enrollment_open`); host or admin.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/open",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The game, open.", body = GameView),
        (status = 404, description = "No such game visible to the caller.", body = ErrorBody),
        (status = 409, description = "The game's status does not allow it.", body = ErrorBody),
    )
)]
pub(crate) async fn open_game(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<GameView>, ApiError> {
    let game = state.lobby.open(caller.actor, id).await?;
    Ok(Json(game.into()))
}

/// Closes enrollment (`enrollment_open -> enrollment_closed`) once enough players are
/// approved; host or admin.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/close",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The game, closed (or starting, with auto-start).", body = GameView),
        (status = 404, description = "No such game visible to the caller.", body = ErrorBody),
        (status = 409, description = "Too few players (`no_quorum`) or wrong status.", body = ErrorBody),
    )
)]
pub(crate) async fn close_game(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<GameView>, ApiError> {
    let game = state.lobby.close(caller.actor, id).await?;
    Ok(Json(game.into()))
}

/// Starts the game (`enrollment_closed -> starting`), queueing its start job; host or
/// admin.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/start",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The game, starting.", body = GameView),
        (status = 404, description = "No such game visible to the caller.", body = ErrorBody),
        (status = 409, description = "The game's status does not allow it.", body = ErrorBody),
    )
)]
pub(crate) async fn start_game(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<GameView>, ApiError> {
    let game = state.lobby.start(caller.actor, id).await?;
    Ok(Json(game.into()))
}

/// Cancels a game not yet started; host or admin.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/cancel",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The game, cancelled.", body = GameView),
        (status = 404, description = "No such game visible to the caller.", body = ErrorBody),
        (status = 409, description = "The game's status does not allow it.", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_game(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<GameView>, ApiError> {
    let game = state.lobby.cancel(caller.actor, id).await?;
    Ok(Json(game.into()))
}

/// Applies to an open game under a race name.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/applications",
    tag = "applications",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    request_body = ApplyRequest,
    responses(
        (status = 201, description = "The application (approved at once with auto-approve).", body = ApplicationView),
        (status = 404, description = "No such game visible to the caller.", body = ErrorBody),
        (status = 409, description = "Not enrolling, already applied, or the race name is taken.", body = ErrorBody),
        (status = 422, description = "Not a valid race name.", body = ErrorBody),
    )
)]
pub(crate) async fn apply(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
    ApiJson(body): ApiJson<ApplyRequest>,
) -> Result<(StatusCode, Json<ApplicationView>), ApiError> {
    let application = state.lobby.apply(caller.actor, id, &body.race_name).await?;
    Ok((StatusCode::CREATED, Json(application.into())))
}

/// A game's applications: every one for its host or an admin, the caller's own for
/// anyone else.
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/applications",
    tag = "applications",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The applications.", body = ApplicationList),
        (status = 404, description = "No such game visible to the caller.", body = ErrorBody),
    )
)]
pub(crate) async fn list_applications(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<ApplicationList>, ApiError> {
    let applications = state.lobby.list_applications(caller.actor, id).await?;
    let items = applications
        .into_iter()
        .map(ApplicationView::from)
        .collect();
    Ok(Json(ApplicationList { items }))
}

/// Approves a pending application; host or admin. Reaching max players closes
/// enrollment.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/applications/{app_id}/approve",
    tag = "applications",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("app_id" = uuid::Uuid, Path, description = "The application."),
    ),
    responses(
        (status = 200, description = "The application, approved.", body = ApplicationView),
        (status = 404, description = "No such game or application.", body = ErrorBody),
        (status = 409, description = "Not pending, the game is full, or not enrolling.", body = ErrorBody),
    )
)]
pub(crate) async fn approve_application(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((game, application)): ApiPath<(GameId, ApplicationId)>,
) -> Result<Json<ApplicationView>, ApiError> {
    let approved = state.lobby.approve(caller.actor, game, application).await?;
    Ok(Json(approved.into()))
}

/// Rejects a pending application; host or admin.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/applications/{app_id}/reject",
    tag = "applications",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("app_id" = uuid::Uuid, Path, description = "The application."),
    ),
    responses(
        (status = 200, description = "The application, rejected.", body = ApplicationView),
        (status = 404, description = "No such game or application.", body = ErrorBody),
        (status = 409, description = "Not pending.", body = ErrorBody),
    )
)]
pub(crate) async fn reject_application(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((game, application)): ApiPath<(GameId, ApplicationId)>,
) -> Result<Json<ApplicationView>, ApiError> {
    let rejected = state.lobby.reject(caller.actor, game, application).await?;
    Ok(Json(rejected.into()))
}

/// Withdraws the caller's pending application to a game.
#[utoipa::path(
    delete,
    path = "/api/v1/user/games/{id}/applications/mine",
    tag = "applications",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The application, withdrawn.", body = ApplicationView),
        (status = 404, description = "No such game, or no live application of the caller.", body = ErrorBody),
        (status = 409, description = "The application is no longer pending.", body = ErrorBody),
    )
)]
pub(crate) async fn withdraw_application(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<ApplicationView>, ApiError> {
    let withdrawn = state.lobby.withdraw(caller.actor, id).await?;
    Ok(Json(withdrawn.into()))
}
