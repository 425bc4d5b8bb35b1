//! The one table of routes: the router is built from it, and the OpenAPI document is
//! checked against it (and told by it which routes need which credentials).

use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::{admin, games, health, internal, mail_in, pbem, play, public, runtime, user};
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A signed-in, unblocked user (`Authorization: Bearer <token>`).
    User,
    /// A signed-in user with the admin role.
    Admin,
    /// The gateway (`x-internal-token`).
    Internal,
}

/// One route of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The HTTP method.
    pub method: Method,
    /// The path, with `{param}` placeholders as in OpenAPI.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// A route with its handler.
pub(super) struct RouteDef {
    /// What the route is.
    pub(super) spec: RouteSpec,
    /// What serves it.
    pub(super) handler: MethodRouter<AppState>,
}

/// Builds a [`RouteDef`] from one method name, so the method recorded in the table and the
/// method the handler is mounted on cannot differ.
macro_rules! route {
    ($method:ident $path:literal, $access:ident, $handler:path) => {
        RouteDef {
            spec: RouteSpec {
                method: Method::$method,
                path: $path,
                access: Access::$access,
            },
            handler: on(MethodFilter::$method, $handler),
        }
    };
}

/// The orders route, whose body limit is the orders bound plus the envelope.
pub(super) const ORDERS_PATH: &str = "/api/v1/user/games/{id}/orders";

/// The intake of orders by e-mail, whose body limit is the inbound message bound.
pub(super) const MAIL_IN_PATH: &str = "/api/v1/internal/mail-in";

/// Every route, with its handler.
pub(super) fn definitions() -> Vec<RouteDef> {
    vec![
        route!(GET "/healthz", Public, health::healthz),
        route!(GET "/readyz", Public, health::readyz),
        route!(GET "/api/v1/openapi.json", Public, health::openapi_json),
        // public
        route!(POST "/api/v1/public/auth/login-codes", Public, public::request_login_code),
        route!(POST "/api/v1/public/auth/sessions", Public, public::create_session),
        route!(GET "/api/v1/public/games", Public, public::list_public_games),
        route!(GET "/api/v1/public/games/{id}", Public, public::get_public_game),
        // user: account
        route!(GET "/api/v1/user/me", User, user::get_me),
        route!(PATCH "/api/v1/user/me", User, user::patch_me),
        route!(GET "/api/v1/user/sessions", User, user::list_sessions),
        route!(DELETE "/api/v1/user/sessions/current", User, user::logout),
        route!(DELETE "/api/v1/user/sessions/{id}", User, user::revoke_session),
        route!(GET "/api/v1/user/race-names", User, user::list_race_names),
        route!(DELETE "/api/v1/user/race-names/{name}", User, user::release_race_name),
        // user: lobby
        route!(GET "/api/v1/user/games", User, play::list_my_games),
        route!(POST "/api/v1/user/games", User, games::create_game),
        route!(GET "/api/v1/user/games/{id}", User, games::get_game),
        route!(POST "/api/v1/user/games/{id}/open", User, games::open_game),
        route!(POST "/api/v1/user/games/{id}/close", User, games::close_game),
        route!(POST "/api/v1/user/games/{id}/start", User, games::start_game),
        route!(POST "/api/v1/user/games/{id}/cancel", User, games::cancel_game),
        route!(POST "/api/v1/user/games/{id}/applications", User, games::apply),
        route!(GET "/api/v1/user/games/{id}/applications", User, games::list_applications),
        route!(POST "/api/v1/user/games/{id}/applications/{app_id}/approve", User, games::approve_application),
        route!(POST "/api/v1/user/games/{id}/applications/{app_id}/reject", User, games::reject_application),
        route!(DELETE "/api/v1/user/games/{id}/applications/mine", User, games::withdraw_application),
        // user: play
        route!(PUT "/api/v1/user/games/{id}/orders", User, play::submit_orders),
        route!(GET "/api/v1/user/games/{id}/orders/{turn}", User, play::get_orders),
        route!(GET "/api/v1/user/games/{id}/reports/{turn}", User, play::get_report),
        route!(GET "/api/v1/user/games/{id}/turns", User, play::list_turns),
        route!(POST "/api/v1/user/games/{id}/ready", User, pbem::mark_ready),
        route!(GET "/api/v1/user/games/{id}/preferences", User, pbem::get_preferences),
        route!(PUT "/api/v1/user/games/{id}/preferences", User, pbem::put_preferences),
        route!(GET "/api/v1/user/games/{id}/vacation", User, pbem::get_vacation),
        route!(POST "/api/v1/user/games/{id}/vacation", User, pbem::take_vacation),
        route!(POST "/api/v1/user/games/{id}/seats/{race}/open", User, pbem::open_seat),
        route!(POST "/api/v1/user/games/{id}/seats/{race}/reclaim", User, pbem::reclaim_seat),
        route!(POST "/api/v1/user/games/{id}/seats/{race}/applications", User, pbem::apply_for_seat),
        route!(GET "/api/v1/user/games/{id}/seats/{race}/applications", User, pbem::list_seat_applications),
        route!(POST "/api/v1/user/games/{id}/seats/{race}/applications/{application_id}/approve", User, pbem::approve_seat_application),
        route!(POST "/api/v1/user/games/{id}/messages", User, pbem::send_message),
        route!(GET "/api/v1/user/games/{id}/messages", User, pbem::list_messages),
        route!(GET "/api/v1/user/games/{id}/orders-address", User, mail_in::get_orders_address),
        route!(POST "/api/v1/user/games/{id}/orders-address/rotate", User, mail_in::rotate_orders_address),
        route!(PUT "/api/v1/user/games/{id}/report-delivery", User, mail_in::set_report_delivery),
        // admin
        route!(GET "/api/v1/admin/games", Admin, admin::list_games),
        route!(GET "/api/v1/admin/users", Admin, admin::list_users),
        route!(GET "/api/v1/admin/users/{id}", Admin, admin::get_user),
        route!(POST "/api/v1/admin/users/{id}/block", Admin, admin::block_user),
        route!(POST "/api/v1/admin/users/{id}/unblock", Admin, admin::unblock_user),
        route!(GET "/api/v1/admin/mail", Admin, admin::list_mail),
        route!(GET "/api/v1/admin/mail/{id}", Admin, admin::get_mail),
        route!(POST "/api/v1/admin/mail/{id}/retry", Admin, admin::retry_mail),
        route!(POST "/api/v1/admin/mail/retry-dead", Admin, admin::retry_all_dead_mail),
        route!(GET "/api/v1/admin/notifications/dead-letters", Admin, admin::list_dead_letters),
        route!(POST "/api/v1/admin/notifications/dead-letters/{id}/retry", Admin, admin::retry_dead_letter),
        // admin: runtime
        route!(GET "/api/v1/admin/runtime/records", Admin, runtime::list_records),
        route!(GET "/api/v1/admin/runtime/records/{game_id}", Admin, runtime::get_record),
        route!(GET "/api/v1/admin/health-events", Admin, runtime::list_health_events),
        route!(POST "/api/v1/admin/games/{id}/pause", Admin, runtime::pause_game),
        route!(POST "/api/v1/admin/games/{id}/resume", Admin, runtime::resume_game),
        route!(POST "/api/v1/admin/games/{id}/stop", Admin, runtime::stop_game),
        route!(POST "/api/v1/admin/games/{id}/force-next-turn", Admin, runtime::force_next_turn),
        route!(POST "/api/v1/admin/games/{id}/retry-start", Admin, runtime::retry_start),
        route!(POST "/api/v1/admin/games/{id}/recreate-engine", Admin, runtime::recreate_engine),
        // internal
        route!(POST "/api/v1/internal/sessions/resolve", Internal, internal::resolve_session),
        route!(GET "/api/v1/internal/users/{id}", Internal, internal::get_user),
        route!(POST "/api/v1/internal/mail-in", Internal, mail_in::receive),
    ]
}

/// Every route the router serves: method, path and who may call it.
pub fn routes() -> Vec<RouteSpec> {
    definitions().into_iter().map(|def| def.spec).collect()
}
