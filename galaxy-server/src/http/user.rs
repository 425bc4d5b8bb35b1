//! The caller's own account: profile, sessions, race names.

use axum::Json;
use axum::extract::State;

use super::dto::{ProfilePatch, RaceNameList, RaceNameView, SessionList, SessionView, UserView};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use crate::state::AppState;
use galaxy_core::domain::SessionId;
use galaxy_core::service::user::ProfileUpdate;

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/v1/user/me",
    tag = "users",
    responses((status = 200, description = "The account.", body = UserView))
)]
pub(crate) async fn get_me(caller: CurrentUser) -> Json<UserView> {
    Json(caller.user.into())
}

/// Changes the caller's profile; absent fields stay as they are.
#[utoipa::path(
    patch,
    path = "/api/v1/user/me",
    tag = "users",
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "The updated account.", body = UserView),
        (status = 422, description = "A field is invalid; nothing changed.", body = ErrorBody),
    )
)]
pub(crate) async fn patch_me(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<ProfilePatch>,
) -> Result<Json<UserView>, ApiError> {
    let update = ProfileUpdate {
        display_name: body.display_name,
        locale: body.locale,
        email_notifications: body.email_notifications,
    };
    let user = state.users.update_profile(&caller.actor, update).await?;
    Ok(Json(user.into()))
}

/// The caller's active sessions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/user/sessions",
    tag = "users",
    responses((status = 200, description = "The sessions.", body = SessionList))
)]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.auth.list_sessions(&caller.actor).await?;
    let items = sessions
        .iter()
        .map(|s| SessionView::of(s, caller.session_id))
        .collect();
    Ok(Json(SessionList { items }))
}

/// Revokes one of the caller's sessions.
#[utoipa::path(
    delete,
    path = "/api/v1/user/sessions/{id}",
    tag = "users",
    params(("id" = uuid::Uuid, Path, description = "The session.")),
    responses(
        (status = 200, description = "The session, revoked.", body = SessionView),
        (status = 404, description = "No such session of the caller.", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<Json<SessionView>, ApiError> {
    let session = state.auth.revoke_session(&caller.actor, id).await?;
    Ok(Json(SessionView::of(&session, caller.session_id)))
}

/// Logs out: revokes the session making the request.
#[utoipa::path(
    delete,
    path = "/api/v1/user/sessions/current",
    tag = "users",
    responses((status = 200, description = "The session, revoked.", body = SessionView))
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<SessionView>, ApiError> {
    let session = state
        .auth
        .revoke_session(&caller.actor, caller.session_id)
        .await?;
    Ok(Json(SessionView::of(&session, caller.session_id)))
}

/// The caller's pending and registered race names.
#[utoipa::path(
    get,
    path = "/api/v1/user/race-names",
    tag = "race-names",
    responses((status = 200, description = "The names.", body = RaceNameList))
)]
pub(crate) async fn list_race_names(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<RaceNameList>, ApiError> {
    let names = state.lobby.my_race_names(caller.actor).await?;
    let items = names.into_iter().map(RaceNameView::from).collect();
    Ok(Json(RaceNameList { items }))
}

/// Releases one of the caller's registered race names.
#[utoipa::path(
    delete,
    path = "/api/v1/user/race-names/{name}",
    tag = "race-names",
    params(("name" = String, Path, description = "The race name.")),
    responses(
        (status = 200, description = "The name, released.", body = RaceNameView),
        (status = 404, description = "The caller holds no such name.", body = ErrorBody),
        (status = 409, description = "The name is in use by a live application.", body = ErrorBody),
        (status = 422, description = "Not a valid race name.", body = ErrorBody),
    )
)]
pub(crate) async fn release_race_name(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RaceNameView>, ApiError> {
    let released = state.lobby.release_race_name(caller.actor, &name).await?;
    Ok(Json(released.into()))
}
