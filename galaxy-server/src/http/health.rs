//! Liveness, readiness and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Alive: answers 200 as long as the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is alive.", body = HealthView))
)]
pub(crate) async fn healthz() -> Json<HealthView> {
    Json(HealthView { status: "ok" })
}

/// Ready: every cache is warm, the store answers, and shutdown has not begun.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready for traffic.", body = HealthView),
        (status = 503, description = "Store unreachable, or draining (a starting replica warms its caches before it listens at all).", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<HealthView>, ApiError> {
    let unavailable =
        |why: &str| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why);
    if state.readiness.draining() {
        return Err(unavailable("shutting down"));
    }
    if !state.readiness.caches_warm() {
        return Err(unavailable("caches are warming up"));
    }
    if !state.readiness.store_reachable() {
        return Err(unavailable("the store is unreachable"));
    }
    Ok(Json(HealthView { status: "ready" }))
}

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json"))
)]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(super::openapi::openapi())
}
