//! Admin routes: users, the mail outbox, notification dead letters. Every handler takes
//! an [`AdminUser`], so a non-admin is refused before any input is looked at; the
//! services check the role again.

use axum::Json;
use axum::extract::State;
use galaxy_core::domain::game::GameStatus;
use galaxy_core::domain::mail::MailStatus;
use galaxy_core::domain::user::Block;
use galaxy_core::domain::{MailId, RouteId, UserId};

use super::dto::{
    BlockRequest, DeadLetterPage, DeadLetterView, GamePage, GameQuery, MailDetailView, MailPage,
    MailQuery, MailView, PageQuery, RetriedView, UserPage, UserQuery, UserView, page_request,
};
use super::error::{ApiError, ErrorBody};
use super::extract::{AdminUser, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Lists every game by creation order, optionally of one status.
#[utoipa::path(
    get,
    path = "/api/v1/admin/games",
    tag = "admin",
    params(GameQuery),
    responses((status = 200, description = "One page of games.", body = GamePage))
)]
pub(crate) async fn list_games(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(query): ApiQuery<GameQuery>,
) -> Result<Json<GamePage>, ApiError> {
    let page = page_request(query.limit.as_deref(), query.after.as_deref())?;
    let statuses = match query.status.as_deref() {
        None => Vec::new(),
        Some(status) => vec![GameStatus::parse(status).ok_or_else(|| {
            ApiError::invalid_request(
                "status must be one of draft, enrollment_open, enrollment_closed, starting, \
                 start_failed, running, paused, finished, cancelled",
            )
            .with_field("status")
        })?],
    };
    let games = state
        .lobby
        .list_all_games(admin.actor, statuses, &page)
        .await?;
    Ok(Json(games.into()))
}

/// Lists users by creation order, optionally those matching a search text.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    params(UserQuery),
    responses(
        (status = 200, description = "One page of users.", body = UserPage),
        (status = 422, description = "`q` is over 256 bytes or holds control characters.", body = ErrorBody),
    )
)]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let page = page_request(query.limit.as_deref(), query.after.as_deref())?;
    let text = query.q.as_deref().unwrap_or_default();
    let users = state.users.search_users(&admin.actor, text, &page).await?;
    Ok(Json(users.into()))
}

/// Reads any user.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The user.")),
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 404, description = "No such user.", body = ErrorBody),
    )
)]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserView>, ApiError> {
    let user = state.users.get_user(&admin.actor, &id.to_string()).await?;
    Ok(Json(user.into()))
}

/// Blocks a user until an instant, or permanently (which revokes every session).
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/block",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The user.")),
    request_body = BlockRequest,
    responses(
        (status = 200, description = "The user, blocked.", body = UserView),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 409, description = "Already blocked permanently, or changed concurrently.", body = ErrorBody),
        (status = 422, description = "Neither or both of `until` and `permanent`, or `until` not in the future.", body = ErrorBody),
    )
)]
pub(crate) async fn block_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<BlockRequest>,
) -> Result<Json<UserView>, ApiError> {
    let block = match (body.until, body.permanent) {
        (Some(until), false) => Block::Until(until),
        (None, true) => Block::Permanent,
        _ => {
            return Err(ApiError::validation(
                "until",
                "give exactly one of `until` (a future instant) and `permanent: true`",
            ));
        }
    };
    let user = state
        .users
        .block(&admin.actor, &id.to_string(), block)
        .await?;
    Ok(Json(user.into()))
}

/// Lifts a block.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/unblock",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The user.")),
    responses(
        (status = 200, description = "The user, active.", body = UserView),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 409, description = "The user is not blocked.", body = ErrorBody),
    )
)]
pub(crate) async fn unblock_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<UserId>,
) -> Result<Json<UserView>, ApiError> {
    let user = state.users.unblock(&admin.actor, &id.to_string()).await?;
    Ok(Json(user.into()))
}

/// Lists outbox mail, optionally by status. Bodies are never shown.
#[utoipa::path(
    get,
    path = "/api/v1/admin/mail",
    tag = "admin",
    params(MailQuery),
    responses((status = 200, description = "One page of mail.", body = MailPage))
)]
pub(crate) async fn list_mail(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(query): ApiQuery<MailQuery>,
) -> Result<Json<MailPage>, ApiError> {
    let page = page_request(query.limit.as_deref(), query.after.as_deref())?;
    if let Some(status) = query.status.as_deref()
        && MailStatus::parse(status).is_none()
    {
        return Err(ApiError::invalid_request(
            "status must be one of pending, sending, sent, retrying, dead",
        )
        .with_field("status"));
    }
    let mail = state
        .mail_admin
        .list(&admin.actor, query.status.as_deref(), &page)
        .await?;
    Ok(Json(mail.into()))
}

/// One mail with its delivery attempts.
#[utoipa::path(
    get,
    path = "/api/v1/admin/mail/{id}",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The mail.")),
    responses(
        (status = 200, description = "The mail and its attempts.", body = MailDetailView),
        (status = 404, description = "No such mail.", body = ErrorBody),
    )
)]
pub(crate) async fn get_mail(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<MailId>,
) -> Result<Json<MailDetailView>, ApiError> {
    let (mail, attempts) = state.mail_admin.get(&admin.actor, &id.to_string()).await?;
    Ok(Json(MailDetailView {
        mail: mail.into(),
        attempts: attempts.into_iter().map(Into::into).collect(),
    }))
}

/// Re-queues a dead mail with a fresh attempt budget.
#[utoipa::path(
    post,
    path = "/api/v1/admin/mail/{id}/retry",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The mail.")),
    responses(
        (status = 200, description = "The mail, pending again.", body = MailView),
        (status = 404, description = "No such mail.", body = ErrorBody),
        (status = 409, description = "The mail is not dead.", body = ErrorBody),
    )
)]
pub(crate) async fn retry_mail(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<MailId>,
) -> Result<Json<MailView>, ApiError> {
    let mail = state
        .mail_admin
        .retry(&admin.actor, &id.to_string())
        .await?;
    Ok(Json(mail.into()))
}

/// Re-queues every dead mail with a fresh attempt budget (after a relay outage is fixed).
#[utoipa::path(
    post,
    path = "/api/v1/admin/mail/retry-dead",
    tag = "admin",
    responses(
        (status = 200, description = "How many dead mails were queued again.", body = RetriedView),
    )
)]
pub(crate) async fn retry_all_dead_mail(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Json<RetriedView>, ApiError> {
    let retried = state.mail_admin.retry_all_dead(&admin.actor).await?;
    Ok(Json(RetriedView { retried }))
}

/// Lists notification routes that exhausted their attempts.
#[utoipa::path(
    get,
    path = "/api/v1/admin/notifications/dead-letters",
    tag = "admin",
    params(PageQuery),
    responses((status = 200, description = "One page of dead letters.", body = DeadLetterPage))
)]
pub(crate) async fn list_dead_letters(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let page = query.to_request()?;
    let routes = state
        .notifications
        .dead_letters(&admin.actor, &page)
        .await?;
    Ok(Json(routes.into()))
}

/// Re-queues a dead letter.
#[utoipa::path(
    post,
    path = "/api/v1/admin/notifications/dead-letters/{id}/retry",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The notification route.")),
    responses(
        (status = 200, description = "The route, pending again.", body = DeadLetterView),
        (status = 404, description = "No such route.", body = ErrorBody),
        (status = 409, description = "The route is not a dead letter.", body = ErrorBody),
    )
)]
pub(crate) async fn retry_dead_letter(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<RouteId>,
) -> Result<Json<DeadLetterView>, ApiError> {
    let route = state
        .notifications
        .retry_dead_letter(&admin.actor, &id.to_string())
        .await?;
    Ok(Json(route.into()))
}
