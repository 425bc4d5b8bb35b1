//! The HTTP API of SPEC section 5 (being written).

use std::time::Duration;

use axum::Router;

use crate::state::AppState;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request body in bytes (413 above).
    pub body_limit: usize,
    /// Longest time a request may take (503 after).
    pub request_timeout: Duration,
}

/// The whole API router, state applied.
pub fn router(state: AppState, _limits: HttpLimits) -> Router {
    Router::new().with_state(state)
}
