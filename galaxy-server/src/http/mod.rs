//! The HTTP API of SPEC section 5: public, user, admin and internal routes under
//! `/api/v1`, the probes `/healthz` and `/readyz`, and the OpenAPI document.
//!
//! Every route is listed once in `routes.rs`; the router is built from that table and the
//! OpenAPI document is checked against it. Every failure answers
//! `{"error": {"code", "message", "details"}}` (see [`error`]), axum's own rejections
//! included. The listener adds the peer's address to every request (`ConnectInfo`) so
//! login-code rate limits and geo see the client's address ([`client_ip`]).

mod admin;
pub mod client_ip;
mod dto;
pub mod error;
pub mod extract;
mod games;
mod health;
mod internal;
pub(crate) mod layers;
mod mail_in;
pub mod openapi;
mod pbem;
mod play;
mod public;
mod routes;
mod runtime;
mod user;

use std::time::Duration;

use axum::Router;

pub use openapi::openapi;
pub use routes::{Access, RouteSpec, routes};

use crate::state::AppState;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request body in bytes (413 above), on every route but the orders route.
    pub body_limit: usize,
    /// Largest body of `PUT /user/games/{id}/orders`: the orders bound plus room for the
    /// envelope, so an `orders` value at the bound is judged by the service (422 with the
    /// sizes) rather than cut off by the transport.
    pub orders_body_limit: usize,
    /// Largest body of `POST /internal/mail-in`: the inbound message bound plus one
    /// byte, so a message over it is refused by the service with its own code.
    pub mail_in_body_limit: usize,
    /// Longest time a request may take (503 after).
    pub request_timeout: Duration,
    /// Event streams one user may hold open at once (429 above); they are the requests
    /// that take no timeout, so without this bound one account could hold every
    /// connection.
    pub streams_per_user: usize,
    /// Event streams open at once in all (429 above): a share of the connection cap, so
    /// that streams never leave no connection for other requests.
    pub streams_total: usize,
    /// How often an event stream tells the browser how far it has read (so a stream
    /// that drops resumes there, not at its page's older cursor) and checks that its
    /// session still holds: [`STREAM_MARK_EVERY`] unless a test needs it
    /// sooner.
    pub stream_mark_every: Duration,
}

/// How often a game page's live-update stream tells the browser how far it has read
/// when nothing it showed moved it on (an SSE event with only an `id`), and checks that
/// its session still holds: the default of [`HttpLimits::stream_mark_every`].
pub const STREAM_MARK_EVERY: Duration = Duration::from_secs(20);

/// The whole API router, state applied.
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    let mut router = Router::new();
    for def in routes::definitions() {
        let limit = if def.spec.path == routes::ORDERS_PATH {
            limits.orders_body_limit
        } else if def.spec.path == routes::MAIL_IN_PATH {
            limits.mail_in_body_limit
        } else {
            limits.body_limit
        };
        router = router.route(def.spec.path, layers::body_limit(def.handler, limit));
    }
    let router = router
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::route_not_found);
    layers::apply(router, limits).with_state(state)
}
