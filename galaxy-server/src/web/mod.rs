//! The web interface of issue 16: server-rendered pages (maud templates compiled into the
//! binary) for players and admins, on the API's HTTP port.
//!
//! The pages are one more client of the services the API handlers call ([`AppState`]):
//! they hold no game logic, and a service's refusal is shown with the API's own message.
//! Security sits in `session`: the session cookie is a session of the API's sessions
//! table, every state-changing form carries a CSRF token, and every response gets a strict
//! Content-Security-Policy (no inline script; the one script is `/static/app.js`).

mod account;
mod admin;
mod assets;
mod by_mail;
mod chart;
mod error;
mod game;
mod i18n;
mod lapsed;
mod layout;
mod live;
mod lobby;
mod login;
mod pbem;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use galaxy_core::domain::UserId;
use galaxy_core::domain::limit::OpenSlots;
use galaxy_core::service::push::PushService;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::WebError;
pub use session::{CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, csrf_token_for_session};

use error::ErrorPage;
use i18n::Lang;

use crate::http::{HttpLimits, layers};
use crate::state::AppState;

/// The Content-Security-Policy of every page: only this origin's script and style, no
/// inline script or style, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// What every page handler can reach: the API's state and the push service that feeds
/// live updates.
#[derive(Clone)]
pub struct WebState {
    /// The services, exactly as the API handlers see them.
    pub app: AppState,
    /// The push service; `None` (in-process tests without one) turns live updates off and
    /// the game page falls back to reloading.
    pub push: Option<Arc<PushService>>,
    /// Cancelled when the HTTP drain begins: open event streams end then, so they never
    /// hold shutdown up (a browser reconnects to another replica or reloads).
    pub closing: CancellationToken,
    /// The event streams open on this replica, bounded per user and in all
    /// ([`HttpLimits::streams_per_user`], [`HttpLimits::streams_total`]): they take no
    /// request timeout, so without a bound one account could hold every connection.
    pub streams: Arc<OpenSlots<UserId>>,
    /// How often an event stream marks how far it has read and checks its session
    /// ([`HttpLimits::stream_mark_every`]).
    pub stream_mark_every: std::time::Duration,
}

/// The pages' router, to merge with the API's. It sets no fallback, so the API's
/// fallback answers unknown paths (with [`not_found_page`] for a browser); a page's path
/// asked with another method is its own (a `GET` of a form's action goes to its page). `closing` ends the live-update streams at shutdown.
pub fn router(
    app: AppState,
    push: Option<Arc<PushService>>,
    limits: HttpLimits,
    closing: CancellationToken,
) -> Router {
    let streams = OpenSlots::new(limits.streams_total, limits.streams_per_user);
    let state = WebState {
        app,
        push,
        closing,
        streams,
        stream_mark_every: limits.stream_mark_every,
    };
    // Form encoding can triple the size of orders text, so the orders form gets room
    // for that; the service still judges the orders' size itself.
    let orders_limit = limits.orders_body_limit.saturating_mul(3);
    let pages = Router::new()
        .route("/", get(lobby::lobby))
        .route("/login", get(login::login_page).post(login::request_code))
        .route("/login/code", post(login::submit_code))
        .route("/logout", post(account::logout))
        .route("/my", get(lobby::my_games))
        .route("/games/new", get(lobby::new_game_page))
        .route("/games", post(lobby::create_game))
        .route("/games/{id}", get(game::game_page))
        .route("/games/{id}/apply", post(game::apply))
        .route("/games/{id}/withdraw", post(game::withdraw))
        .route("/games/{id}/host/{action}", post(game::host_action))
        .route("/games/{id}/ready", post(pbem::mark_ready))
        .route("/games/{id}/vacation", post(pbem::take_vacation))
        .route("/games/{id}/messages", post(pbem::send_message))
        .route("/games/{id}/preferences", post(by_mail::preferences))
        .route(
            "/games/{id}/report-delivery",
            post(by_mail::report_delivery),
        )
        .route("/games/{id}/orders-address/rotate", post(by_mail::rotate))
        .route("/games/{id}/seats/{race}/{action}", post(pbem::seat_action))
        .route(
            "/games/{id}/seats/{race}/applications/{app_id}/approve",
            post(pbem::approve_seat),
        )
        .route(
            "/games/{id}/applications/{app_id}/{decision}",
            post(game::decide_application),
        )
        .route(
            "/account",
            get(account::account_page).post(account::update_profile),
        )
        .route(
            "/account/race-names/{name}/release",
            post(account::release_race_name),
        )
        .route(
            "/account/sessions/{id}/revoke",
            post(account::revoke_session),
        )
        .route(
            "/account/logout-everywhere",
            post(account::logout_everywhere),
        )
        .route("/admin", get(admin::users_page))
        .route("/admin/users", get(admin::users_page))
        .route("/admin/users/{id}/{action}", post(admin::user_action))
        .route("/admin/games", get(admin::games_page))
        .route("/admin/games/{id}/{action}", post(admin::game_action))
        .route("/admin/health", get(admin::health_page))
        .route("/admin/mail", get(admin::mail_page))
        .route("/admin/mail/{id}/retry", post(admin::retry_mail))
        .route("/admin/mail/retry-dead", post(admin::retry_all_dead_mail))
        .route(
            "/admin/dead-letters/{id}/retry",
            post(admin::retry_dead_letter),
        )
        .route("/static/{file}", get(assets::serve))
        // Both bounds: tower-http's cuts a body off on the wire, axum's (its own 2 MiB
        // otherwise) is the one a form extractor reads the body under.
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(RequestBodyLimitLayer::new(limits.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ));
    let orders = Router::new()
        .route("/games/{id}/orders", post(game::submit_orders))
        .layer(DefaultBodyLimit::max(orders_limit))
        .layer(RequestBodyLimitLayer::new(orders_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ));
    // The event stream lives as long as the page: no request timeout.
    let live = Router::new().route("/games/{id}/events", get(live::events));
    let routes = pages
        .merge(orders)
        .merge(live)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(login::return_here));
    outer_layers(routes).with_state(state)
}

/// The API's outer layers, with pages for errors: a layer's 413 or 503, axum's
/// plain-text rejection of a bad query and a handler's panic come back as a page (with
/// the security headers of every page), and every page is traced, logged and counted as
/// an API request is.
fn outer_layers<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes
        .layer(CatchPanicLayer::custom(|payload| {
            WebError::Api(layers::panicked(payload)).into_response()
        }))
        .layer(middleware::map_response(page_error_shape))
        .layer(middleware::from_fn(localized_error_pages))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(layers::telemetry))
}

/// The language a page's visitor reads, as the [`Visitor`](session::Visitor) extractor
/// found it (the account's for a signed-in visitor), and whether they are signed in,
/// left for [`localized_error_pages`], which sees the response but not the handler's
/// visitor.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageLang(Arc<std::sync::OnceLock<(Lang, bool)>>);

impl PageLang {
    /// Tells the error-page layer the visitor's language and whether they are signed in
    /// (the first telling counts).
    pub(crate) fn tell(&self, lang: Lang, signed_in: bool) {
        let _ = self.0.set((lang, signed_in));
    }
}

/// An error page told again in the visitor's language, with the status and the headers
/// it had: the account's when the handler got as far as knowing its visitor (a German
/// account reading on an English browser reads German, as its other pages), else the
/// browser's (`Accept-Language`: a page that fails before its visitor is known, a
/// visitor signed out).
///
/// A visitor known to be signed out who meets "not found" or "forbidden" (a draft or a
/// private game they may see once signed in, an admin page) also gets a link to log in
/// and come back to the page.
pub(crate) async fn localized_error_pages(mut request: Request, next: Next) -> Response {
    let browser = Lang::of_accept_language(request.headers());
    // The page to come back to after logging in: this one for a page, the form's page
    // for a form's action.
    let path = match *request.method() {
        Method::GET | Method::HEAD => request.uri().path().to_owned(),
        _ => form_page(request.uri().path()),
    };
    let told = PageLang::default();
    request.extensions_mut().insert(told.clone());
    let mut response = next.run(request).await;
    let (lang, signed_in) = match told.0.get().copied() {
        Some((lang, signed_in)) => (lang, Some(signed_in)),
        None => (browser, None),
    };
    let login = (signed_in == Some(false)
        && matches!(
            response.status(),
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
        ))
    .then_some(path.as_str());
    if lang == Lang::En && login.is_none() {
        return response;
    }
    let Some(page) = response.extensions_mut().remove::<ErrorPage>() else {
        return response;
    };
    let body = layout::error_page(
        lang,
        response.status(),
        &lang.error(page.code, &page.message),
        login,
    );
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body.0))
}

/// An error response no page made (see [`layers::shape_error`]) becomes an error page.
async fn page_error_shape(response: Response) -> Response {
    layers::shape_error(response, |error| WebError::Api(error).into_response())
}

/// A page's path asked with a method it does not take. A `GET` of a form's action (the
/// address bar after a post, a bookmark, Enter in the address bar) goes to the page the
/// form is on; anything else gets a page saying so (never axum's empty 405).
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        return Redirect::to(&form_page(uri.path())).into_response();
    }
    let status = StatusCode::METHOD_NOT_ALLOWED;
    let (code, message) = (
        "method_not_allowed",
        format!("this page does not take {method}"),
    );
    let body = layout::error_page(Lang::En, status, &message, None);
    let mut response = (status, body).into_response();
    response
        .extensions_mut()
        .insert(ErrorPage { code, message });
    response
}

/// The page whose form posts to `action` (`/games/{id}/orders` is on `/games/{id}`).
fn form_page(action: &str) -> String {
    let parts: Vec<&str> = action.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["games"] => "/games/new".to_owned(),
        ["games", id, ..] => format!("/games/{id}"),
        ["login", ..] => "/login".to_owned(),
        ["account", ..] => "/account".to_owned(),
        ["admin", "dead-letters", ..] => "/admin/mail".to_owned(),
        ["admin", section, ..] => format!("/admin/{section}"),
        _ => "/".to_owned(),
    }
}

/// The page for a path nothing serves, for a browser (the API answers its own paths,
/// and every client that does not ask for HTML, with its JSON error), in the browser's
/// language.
pub fn not_found_page(headers: &axum::http::HeaderMap) -> Response {
    let lang = Lang::of_accept_language(headers);
    let status = StatusCode::NOT_FOUND;
    let body = layout::error_page(lang, status, &lang.error("not_found", "no such page"), None);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// Adds the security headers to every page's response: the CSP, no MIME sniffing, no
/// referrer to other sites, and no caching of pages that show a user's data.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "late"
    }

    async fn boom() -> &'static str {
        panic!("boom")
    }

    /// A page that timed out and a page that panicked come back as error pages with the
    /// security headers, not as an empty 503 and a dropped connection.
    #[tokio::test]
    async fn a_timeout_and_a_panic_are_error_pages() {
        let timeout = TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(10),
        );
        let routes: Router<()> = Router::new()
            .route("/slow", get(slow))
            .route("/boom", get(boom))
            .layer(timeout);
        let app = outer_layers(routes);
        for (uri, status, says) in [
            ("/slow", StatusCode::SERVICE_UNAVAILABLE, "retry later"),
            (
                "/boom",
                StatusCode::INTERNAL_SERVER_ERROR,
                "has been logged",
            ),
        ] {
            let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), status, "{uri}");
            let headers = response.headers();
            let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
            assert!(
                content_type.starts_with("text/html"),
                "{uri}: {content_type}"
            );
            assert!(
                headers.contains_key(header::CONTENT_SECURITY_POLICY),
                "{uri}"
            );
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let text = String::from_utf8(body.to_vec()).unwrap();
            assert!(
                text.contains("<h1>") && text.contains(says),
                "{uri}: {text}"
            );
        }
    }
}
