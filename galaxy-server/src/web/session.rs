//! Who is looking at a page, and whether a form really comes from one of our pages.
//!
//! **Session cookie.** Logging in through the pages creates a session in the same
//! sessions table as the API's logins ([`AuthService::create_session`]); its token is the
//! value of the `galaxy_session` cookie: `HttpOnly` (no script reads it), `SameSite=Lax`
//! (no cross-site POST carries it), `Path=/`, and `Secure` when the request came over TLS
//! (a trusted proxy's `X-Forwarded-Proto: https`). Revoking the session anywhere (the
//! account page, the API, an admin's block) logs the browser out.
//!
//! **CSRF.** Every state-changing form carries a token in the `csrf` field. Signed in, it
//! is a SHA-256 of the session token under a fixed label: only a page rendered for this
//! session knows it, and it changes with the session. Signed out (the login forms), it is
//! the value of a random `galaxy_csrf` cookie (`SameSite=Lax`, `HttpOnly`), the
//! double-submit pattern (`Lax`, not `Strict`: a visitor who follows a link from another
//! site would arrive without a `Strict` cookie and be given a new one, and a login form
//! open in another tab would then be refused as stale; a cross-site POST carries neither). A form whose token does not match is refused with 403 before
//! any service is called.
//!
//! [`AuthService::create_session`]: galaxy_core::service::auth::AuthService::create_session

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use galaxy_core::domain::SessionId;
use galaxy_core::domain::user::User;
use galaxy_core::service::{Actor, ErrorKind, ServiceError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::WebState;
use super::error::WebError;
use super::i18n::Lang;
use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::http::extract::constant_time_eq;

/// The cookie holding the session token.
pub const SESSION_COOKIE: &str = "galaxy_session";
/// The cookie holding the signed-out CSRF token (double submit).
pub const CSRF_COOKIE: &str = "galaxy_csrf";
/// The form field every state-changing form carries its CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// The CSRF token of the forms rendered for the session with `token`.
pub fn csrf_token_for_session(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"galaxy-web-csrf\0");
    hasher.update(token.as_bytes());
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A signed-in visitor.
#[derive(Debug, Clone)]
pub struct WebUser {
    /// The account.
    pub user: User,
    /// The account as services see callers.
    pub actor: Actor,
    /// The session behind the cookie (to mark it on the account page).
    pub session_id: SessionId,
}

/// Whoever is looking at a page: the signed-in user (if the cookie names a live
/// session), the language to answer in, and the CSRF token for the forms on it.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The signed-in user, if any.
    pub user: Option<WebUser>,
    /// The language of the page.
    pub lang: Lang,
    /// The token the page's forms carry.
    pub csrf: String,
    /// A fresh signed-out CSRF cookie to set with the response, when there was none.
    pub new_csrf_cookie: Option<String>,
    /// Whether the request came over TLS (cookies get `Secure`).
    pub secure: bool,
    /// The client's address, for the login rate limits.
    pub ip: Option<std::net::IpAddr>,
    /// A session cookie came with the request but signs nobody in any more (expired,
    /// revoked by "log out everywhere", the account blocked): a form of a page loaded
    /// before asks to sign in again rather than being called stale.
    pub session_lapsed: bool,
    /// A session cookie came with the request but could not be checked (the store did
    /// not answer): the session may well be good, so a form gets "retry" (503), and
    /// its cookie is kept.
    pub session_unchecked: bool,
    /// The page asked for (path and query): the header's "Log in" link comes back here.
    pub page: String,
}

impl Visitor {
    /// The signed-in user, or a redirect to the login page.
    pub fn signed_in(&self) -> Result<&WebUser, WebError> {
        self.user.as_ref().ok_or(WebError::SignIn)
    }

    /// The signed-in admin: a redirect to log in, or 403 for a user without the role.
    pub fn admin(&self) -> Result<&WebUser, WebError> {
        let user = self.signed_in()?;
        if user.actor.is_admin {
            Ok(user)
        } else {
            Err(WebError::Forbidden)
        }
    }

    /// The `Set-Cookie` value for the signed-out CSRF cookie, when one is to be set.
    pub fn csrf_cookie_header(&self) -> Option<HeaderValue> {
        let value = self.new_csrf_cookie.as_ref()?;
        HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{}",
            secure_flag(self.secure)
        ))
        .ok()
    }
}

fn secure_flag(secure: bool) -> &'static str {
    if secure { "; Secure" } else { "" }
}

/// The `Set-Cookie` value that stores a session token for `max_age_secs` (the session's
/// remaining lifetime, so the browser keeps it across restarts as long as it works).
pub fn session_cookie(token: &str, secure: bool, max_age_secs: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        max_age_secs.max(0),
        secure_flag(secure)
    ))
    .ok()
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_session_cookie(secure: bool) -> HeaderValue {
    let value = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure_flag(secure)
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(
        "galaxy_session=; Path=/; Max-Age=0",
    ))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Whether the request came over TLS: only a trusted proxy's `X-Forwarded-Proto` counts,
/// anyone else could write it.
fn came_over_tls(parts: &Parts, state: &WebState) -> bool {
    let from_proxy = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|info| state.app.trusted_proxies.contains(info.0.ip()));
    from_proxy
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

impl FromRequestParts<WebState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let ip = ClientIp::of(parts, &state.app.trusted_proxies);
        let secure = came_over_tls(parts, state);
        let mut user = None;
        let mut csrf = None;
        let (mut session_lapsed, mut session_unchecked) = (false, false);
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            // A revoked, expired or unknown session is simply "signed out"; a blocked
            // account too (the service refuses it the same way). A store that did not
            // answer says nothing about the session.
            let checked = state.app.auth.authenticate(token).await;
            if let Err(error) = &checked {
                match lapse_of(error) {
                    Lapse::Lapsed => session_lapsed = true,
                    Lapse::Unchecked => session_unchecked = true,
                }
            }
            if let Ok(authenticated) = checked {
                if let Some(ip) = ip {
                    let country = state.app.geo.record(authenticated.user.id, ip);
                    state.app.countries.note(&authenticated.user, country);
                }
                csrf = Some(csrf_token_for_session(token));
                user = Some(WebUser {
                    actor: Actor::of(&authenticated.user),
                    user: authenticated.user,
                    session_id: authenticated.session.id,
                });
            }
        }
        let lang = match &user {
            Some(user) => Lang::of_locale(user.user.locale.as_str()),
            None => Lang::of_accept_language(&parts.headers),
        };
        // An error page of this request is told again in this language.
        if let Some(told) = parts.extensions.get::<super::PageLang>() {
            told.tell(lang, user.is_some());
        }
        let mut new_csrf_cookie = None;
        let csrf = match csrf {
            Some(csrf) => csrf,
            None => match cookie(&parts.headers, CSRF_COOKIE) {
                Some(value) if is_token(value) => value.to_owned(),
                _ => {
                    let fresh = uuid::Uuid::new_v4().simple().to_string();
                    new_csrf_cookie = Some(fresh.clone());
                    fresh
                }
            },
        };
        Ok(Self {
            user,
            lang,
            csrf,
            new_csrf_cookie,
            secure,
            ip,
            session_lapsed,
            session_unchecked,
            page: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// What a session cookie that signed nobody in means.
#[derive(Debug, PartialEq, Eq)]
enum Lapse {
    /// The session is over (expired, revoked, unknown) or its account blocked.
    Lapsed,
    /// The store did not answer: nothing is known of the session.
    Unchecked,
}

/// What the refusal of a session cookie means.
fn lapse_of(error: &galaxy_core::service::auth::AuthError) -> Lapse {
    match error.kind() {
        ErrorKind::Unavailable | ErrorKind::Internal => Lapse::Unchecked,
        _ => Lapse::Lapsed,
    }
}

/// Whether a cookie value looks like a token we issued (32 hex digits), so an injected
/// value is never echoed into a page.
fn is_token(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a posted CSRF token has the shape of a session's ([`csrf_token_for_session`]:
/// 64 hex digits; a signed-out visitor's has 32).
fn is_session_csrf(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the browser says a page of this site sent the request: the fetch metadata
/// header `Sec-Fetch-Site: same-origin`, which browsers set themselves and no page can
/// (a browser too old to send it is taken as "not known").
fn posted_from_this_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|value| value.as_bytes() == b"same-origin")
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

/// A `textarea`'s text as the player typed it: browsers send its line breaks as CRLF
/// (the HTML form rules), the API and mail as LF. Without this, each line of a message
/// cost one more character against its limit than its field counted (`maxlength` counts
/// a line break as one), and orders reached the engine with a `\r` on every line.
pub fn text_area<'de, D: serde::Deserializer<'de>>(from: D) -> Result<String, D::Error> {
    let text = String::deserialize(from)?;
    Ok(if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text
    })
}

/// A posted form (`application/x-www-form-urlencoded`) whose CSRF token matched, with the
/// visitor who posted it. Any mismatch is 403 before the handler runs.
pub struct Posted<T> {
    /// Who posted.
    pub visitor: Visitor,
    /// The form's fields.
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<WebState> for Posted<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, WebError> {
        match PostedOrLapsed::from_request(request, state).await? {
            PostedOrLapsed::Posted(posted) => Ok(posted),
            PostedOrLapsed::Lapsed { visitor, .. } => Err(WebError::SessionLapsed {
                secure: visitor.secure,
            }),
            PostedOrLapsed::Stale { .. } => Err(WebError::Csrf),
        }
    }
}

/// A posted form, as [`Posted`], or one whose session ended since its page was loaded:
/// then nothing is to be done with it, but a handler that must not lose what was typed
/// (orders) can give it back. Any other mismatch of the CSRF token is refused (403)
/// before the handler runs, as for [`Posted`].
pub enum PostedOrLapsed<T> {
    /// The form, its token matched.
    Posted(Posted<T>),
    /// The form of a session that ended: not to be acted on.
    Lapsed {
        /// Who posted it (signed out now).
        visitor: Visitor,
        /// Its fields.
        form: T,
    },
    /// The form of an earlier session of a visitor who has signed in again since (in
    /// another tab): not to be acted on either (its token is not this session's), but
    /// the visitor may be shown it again, to check and send under this session.
    Stale {
        /// Who posted it, signed in under a newer session.
        visitor: Visitor,
        /// Its fields.
        form: T,
    },
}

impl<T: DeserializeOwned> FromRequest<WebState> for PostedOrLapsed<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, WebError> {
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, state).await?;
        let from_this_site = posted_from_this_site(&parts.headers);
        let request = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| WebError::BadForm(rejection.body_text()))?;
        let presented = serde_urlencoded::from_bytes::<CsrfOnly>(&bytes)
            .ok()
            .and_then(|form| form.csrf)
            .unwrap_or_default();
        let form = || {
            serde_urlencoded::from_bytes::<T>(&bytes)
                .map_err(|error| WebError::BadForm(error.to_string()))
        };
        // A signed-out visitor with no CSRF cookie gets a fresh token that no page has
        // shown yet, so this refuses them too.
        if visitor.new_csrf_cookie.is_some()
            || !constant_time_eq(presented.as_bytes(), visitor.csrf.as_bytes())
        {
            // The page's session ended since it was loaded: nothing is changed either
            // way, and the way on is to sign in again (the dead cookie goes). The
            // browser may have dropped the cookie already (it lives exactly as long as
            // the session, and signing out in another tab removes it): a session's
            // token with no session sent is a lapsed session too, when the browser
            // says this site posted the form (so no other site can post text into the
            // visitor's draft of orders).
            let cookie_gone = visitor.user.is_none()
                && !visitor.session_unchecked
                && is_session_csrf(&presented)
                && from_this_site;
            if visitor.session_lapsed || cookie_gone {
                return match form() {
                    Ok(form) => Ok(Self::Lapsed { visitor, form }),
                    Err(_) => Err(WebError::SessionLapsed {
                        secure: visitor.secure,
                    }),
                };
            }
            // Signed in again since the page was loaded: a page of the earlier session
            // (its token has a session token's shape), posted from this site. Handed
            // back, never acted on: only the visitor's own page could post it here.
            let earlier_session = visitor.user.is_some()
                && visitor.new_csrf_cookie.is_none()
                && is_session_csrf(&presented)
                && from_this_site;
            if earlier_session && let Ok(form) = form() {
                return Ok(Self::Stale { visitor, form });
            }
            if visitor.session_unchecked {
                return Err(WebError::Api(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "your session could not be checked just now; go back and send the form again in a moment",
                )));
            }
            return Err(WebError::Csrf);
        }
        let form = form()?;
        Ok(Self::Posted(Posted { visitor, form }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_csrf_token_is_tied_to_the_token() {
        let a = csrf_token_for_session("token-a");
        assert_eq!(a, csrf_token_for_session("token-a"));
        assert_ne!(a, csrf_token_for_session("token-b"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn only_a_refused_session_is_lapsed_not_one_the_store_could_not_check() {
        use galaxy_core::ports::StoreError;
        use galaxy_core::service::auth::AuthError;
        assert_eq!(lapse_of(&AuthError::InvalidSession), Lapse::Lapsed);
        let down = AuthError::from(StoreError::unavailable("pool timed out"));
        assert_eq!(lapse_of(&down), Lapse::Unchecked);
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("xgalaxy_session=evil; galaxy_session=abc; other=1"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, CSRF_COOKIE), None);
    }
}
