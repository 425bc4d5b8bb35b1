//! Internal routes for the gateway, behind the `x-internal-token` header.

use axum::Json;
use axum::extract::State;
use galaxy_core::domain::UserId;

use super::dto::{ResolveSessionRequest, ResolvedSessionView, UserView};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, InternalCaller};
use crate::state::AppState;

/// Resolves a bearer token a client presented to the gateway.
#[utoipa::path(
    post,
    path = "/api/v1/internal/sessions/resolve",
    tag = "internal",
    request_body = ResolveSessionRequest,
    responses(
        (status = 200, description = "The session and its user.", body = ResolvedSessionView),
        (status = 403, description = "The user is blocked.", body = ErrorBody),
    )
)]
pub(crate) async fn resolve_session(
    State(state): State<AppState>,
    _caller: InternalCaller,
    ApiJson(body): ApiJson<ResolveSessionRequest>,
) -> Result<Json<ResolvedSessionView>, ApiError> {
    let resolved = state.auth.authenticate(&body.token).await?;
    Ok(Json(ResolvedSessionView {
        session_id: resolved.session.id.as_uuid(),
        expires_at: resolved.session.expires_at,
        user: resolved.user.into(),
    }))
}

/// Reads a user for the gateway.
#[utoipa::path(
    get,
    path = "/api/v1/internal/users/{id}",
    operation_id = "internal_get_user",
    tag = "internal",
    params(("id" = uuid::Uuid, Path, description = "The user.")),
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 404, description = "No such user.", body = ErrorBody),
    )
)]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    _caller: InternalCaller,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserView>, ApiError> {
    let user = state.users.get_user_trusted(&id.to_string()).await?;
    Ok(Json(user.into()))
}
