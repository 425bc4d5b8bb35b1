//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! the DTOs' `ToSchema` derives. The error statuses every route shares (bad input,
//! credentials, body size, timeouts) and the security requirements are added from the
//! route table, so no route can forget them.

use std::collections::HashMap;

use axum::http::Method;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorDetail};
use super::routes::{Access, routes};
use super::{admin, games, health, internal, mail_in, pbem, play, public, runtime, user};

/// The security scheme name of bearer sessions.
const BEARER: &str = "bearer";
/// The security scheme name of the gateway's internal token.
const INTERNAL_TOKEN: &str = "internal_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Galaxy API",
        description = "The Galaxy play-by-email platform. Every error has the shape \
            `{\"error\": {\"code\", \"message\", \"details\"}}`; see docs/api.md."
    ),
    paths(
        health::healthz,
        health::readyz,
        health::openapi_json,
        public::request_login_code,
        public::create_session,
        public::list_public_games,
        public::get_public_game,
        user::get_me,
        user::patch_me,
        user::list_sessions,
        user::revoke_session,
        user::logout,
        user::list_race_names,
        user::release_race_name,
        play::list_my_games,
        games::create_game,
        games::get_game,
        games::open_game,
        games::close_game,
        games::start_game,
        games::cancel_game,
        games::apply,
        games::list_applications,
        games::approve_application,
        games::reject_application,
        games::withdraw_application,
        admin::list_games,
        admin::list_users,
        admin::get_user,
        admin::block_user,
        admin::unblock_user,
        admin::list_mail,
        admin::get_mail,
        admin::retry_mail,
        admin::retry_all_dead_mail,
        admin::list_dead_letters,
        admin::retry_dead_letter,
        runtime::list_records,
        runtime::get_record,
        runtime::list_health_events,
        runtime::pause_game,
        runtime::resume_game,
        runtime::stop_game,
        runtime::force_next_turn,
        runtime::retry_start,
        runtime::recreate_engine,
        play::submit_orders,
        play::get_orders,
        play::get_report,
        play::list_turns,
        pbem::mark_ready,
        pbem::get_preferences,
        pbem::put_preferences,
        pbem::get_vacation,
        pbem::take_vacation,
        pbem::open_seat,
        pbem::reclaim_seat,
        pbem::apply_for_seat,
        pbem::list_seat_applications,
        pbem::approve_seat_application,
        pbem::send_message,
        pbem::list_messages,
        mail_in::get_orders_address,
        mail_in::rotate_orders_address,
        mail_in::set_report_delivery,
        internal::resolve_session,
        internal::get_user,
        mail_in::receive,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "Passwordless login by e-mailed code."),
        (name = "users", description = "The caller's account and sessions."),
        (name = "games", description = "Games: public listing, hosting, status changes."),
        (name = "applications", description = "Joining games."),
        (name = "race-names", description = "The caller's race names."),
        (name = "play", description = "Play-by-email habits: ready, preferences, vacation, open seats, messages."),
        (name = "admin", description = "Operators only (admin role)."),
        (name = "internal", description = "The gateway only (x-internal-token)."),
        (name = "health", description = "Probes and this document."),
    )
)]
struct ApiDoc;

/// The API's OpenAPI 3.1 document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> Document {
    ApiDoc::openapi()
}

/// Adds the security schemes, each operation's security requirement, and the error
/// responses shared by every route of a kind.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The session token from POST /api/v1/public/auth/sessions.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            INTERNAL_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-internal-token",
                "GALAXY_INTERNAL_TOKEN, for the gateway only.",
            ))),
        );
        let access: HashMap<(Method, &str), Access> = routes()
            .into_iter()
            .map(|spec| ((spec.method, spec.path), spec.access))
            .collect();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                if let Some(access) = access.get(&(method, path.as_str())) {
                    decorate(operation, *access, path.starts_with("/api/"));
                }
            }
        }
    }
}

/// The operations of a path item with their methods.
fn operations_mut(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|op| (method, op)))
    .collect()
}

fn decorate(operation: &mut Operation, access: Access, api: bool) {
    let takes_input = operation.request_body.is_some()
        || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if takes_input {
        add_error(
            operation,
            400,
            "Malformed request: not JSON, wrong Content-Type, a wrong type, an unknown \
             field, a bad id or a bad query parameter.",
        );
    }
    if operation.request_body.is_some() {
        add_error(
            operation,
            413,
            "The body is larger than the server accepts.",
        );
    }
    match access {
        Access::Public => {}
        Access::User | Access::Admin => {
            operation
                .security
                .get_or_insert_with(Vec::new)
                .push(SecurityRequirement::new(BEARER, Vec::<String>::new()));
            add_error(
                operation,
                401,
                "No, a malformed, or an unknown, revoked or expired bearer token.",
            );
            let forbidden = if access == Access::Admin {
                "The caller is not an admin, or is blocked."
            } else {
                "The caller is blocked, or may not act on this resource."
            };
            add_error(operation, 403, forbidden);
        }
        Access::Internal => {
            operation
                .security
                .get_or_insert_with(Vec::new)
                .push(SecurityRequirement::new(
                    INTERNAL_TOKEN,
                    Vec::<String>::new(),
                ));
            add_error(
                operation,
                401,
                "Missing or wrong x-internal-token (or internal routes are disabled); \
                 for session resolution also an unknown, revoked or expired token.",
            );
        }
    }
    if api {
        add_error(
            operation,
            500,
            "An internal error; the cause is logged, never shown.",
        );
    }
    add_error(
        operation,
        503,
        "A dependency is unavailable or the request timed out; retry later.",
    );
}

/// Adds an error response unless the handler documented that status itself.
fn add_error(operation: &mut Operation, status: u16, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build(),
            )
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_document_describes_exactly_the_routed_routes() {
        let doc = openapi();
        let mut documented = BTreeSet::new();
        for (path, item) in doc.paths.paths.clone().iter_mut() {
            for (method, _) in operations_mut(item) {
                documented.insert((method.to_string(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> = routes()
            .into_iter()
            .map(|spec| (spec.method.to_string(), spec.path.to_owned()))
            .collect();
        assert_eq!(documented, routed);
    }
}
