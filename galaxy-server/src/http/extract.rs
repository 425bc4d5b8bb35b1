//! Extractors: who is calling (bearer session, admin, internal gateway, client IP) and
//! the request's body, query and path, each failing with an [`ApiError`] in the API's
//! shape instead of axum's plain-text rejections.
//!
//! Rejections of client input never echo the input: a client that puts a token in the
//! wrong field must not see it reflected (and logged by whatever sits in between).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use galaxy_core::domain::SessionId;
use galaxy_core::domain::user::User;
use galaxy_core::service::Actor;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use super::client_ip::ClientIp;
use super::error::ApiError;
use crate::state::AppState;

/// The header the gateway presents the internal token in.
pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";

/// A caller authenticated by `Authorization: Bearer <token>`, not blocked. Extracting
/// it also counts the request in the caller's geo counters (see [`crate::geo`]).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The account.
    pub user: User,
    /// The same account as services see callers.
    pub actor: Actor,
    /// The session the token belongs to (for logging out of it).
    pub session_id: SessionId,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        let authenticated = state.auth.authenticate(token).await?;
        // Geo, off the request path: a lookup in memory and a counter bump; a changed
        // country is queued for the background writer, never written here.
        if let Some(ip) = ClientIp::of(parts, &state.trusted_proxies) {
            let country = state.geo.record(authenticated.user.id, ip);
            state.countries.note(&authenticated.user, country);
        }
        Ok(Self {
            actor: Actor::of(&authenticated.user),
            user: authenticated.user,
            session_id: authenticated.session.id,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("this route needs a bearer token"))?;
    let malformed =
        || ApiError::unauthenticated("the Authorization header is not 'Bearer <token>'");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(token)
}

/// A [`CurrentUser`] holding the admin role (403 otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = CurrentUser::from_request_parts(parts, state).await?;
        if !caller.actor.is_admin {
            return Err(ApiError::forbidden("this route needs the admin role"));
        }
        Ok(Self(caller))
    }
}

/// The gateway, proven by the `x-internal-token` header. Without a configured token
/// every internal call is refused.
#[derive(Debug, Clone, Copy)]
pub struct InternalCaller;

impl FromRequestParts<AppState> for InternalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = || ApiError::unauthenticated("this route needs a valid internal token");
        let expected = state.internal_token.as_ref().ok_or_else(refused)?;
        let presented = parts
            .headers
            .get(INTERNAL_TOKEN_HEADER)
            .ok_or_else(refused)?;
        if constant_time_eq(presented.as_bytes(), expected.expose_secret().as_bytes()) {
            Ok(Self)
        } else {
            Err(refused())
        }
    }
}

/// Compares two secrets in time that depends only on their length, so a caller cannot
/// find the internal token byte by byte from response times. A length mismatch answers
/// at once: the length of the token is not the secret.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// A JSON body: `Content-Type: application/json`, within the body limit, and matching
/// `T` exactly (request types deny unknown fields).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::invalid_request(
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
                    _ => ApiError::invalid_request("the request body could not be read"),
                })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|error| json_error(&error))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body that is not the expected JSON, described without quoting what was sent.
fn json_error(error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let api = match error.classify() {
        Category::Syntax | Category::Eof => ApiError::invalid_request("the body is not valid JSON"),
        Category::Data => ApiError::invalid_request(describe_data_error(&error.to_string())),
        Category::Io => ApiError::invalid_request("the request body could not be read"),
    };
    api.with_detail("line", Value::from(error.line()))
        .with_detail("column", Value::from(error.column()))
}

/// Rewrites a serde message so it keeps what the API expected but drops what the client
/// sent: `invalid type: string "123456", expected u32` becomes `invalid type, expected
/// u32`; an unknown field's name is dropped and the accepted ones are listed.
pub fn describe_data_error(message: &str) -> String {
    let message = message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at]);
    let expected = message.rfind(", expected ").map(|at| &message[at + 2..]);
    let with_expected = |what: &str| match expected {
        Some(expected) => format!("{what}, {expected}"),
        None => what.to_owned(),
    };
    if message.starts_with("missing field `") || message.starts_with("duplicate field `") {
        // The field named is one of the request type's own.
        message.to_owned()
    } else if message.starts_with("unknown field") {
        with_expected("unknown field")
    } else if message.starts_with("unknown variant") {
        with_expected("unknown value")
    } else if message.starts_with("invalid type") {
        with_expected("invalid type")
    } else if message.starts_with("invalid length") {
        with_expected("invalid length")
    } else {
        // A custom message (a parser's own words) might quote the input: say nothing.
        "invalid value".to_owned()
    }
}

/// Query parameters matching `T` exactly (query types deny unknown fields).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(query)| ApiQuery(query))
            .map_err(|rejection| {
                let text = rejection.body_text();
                let inner = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::invalid_request(format!(
                    "bad query string: {}",
                    describe_data_error(inner)
                ))
            })
    }
}

/// Parses the query parameter `param` as a typed id (`kind`, e.g. `game id`), naming
/// both without echoing the input.
pub fn parse_id<T: std::str::FromStr>(raw: &str, kind: &str, param: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid_request(format!("{kind} is not a UUID")).with_field(param))
}

/// A value one path segment parses into, and how a malformed segment is reported: a 400
/// `invalid_request` naming the parameter (`field`) but never echoing the segment.
pub trait PathParam: Sized {
    /// Parses the percent-decoded segment; `None` when it is malformed.
    fn from_segment(segment: &str) -> Option<Self>;
    /// The message for a malformed segment of the parameter `param` (the route's name
    /// for it, e.g. `id`).
    fn malformed(param: &str) -> String;
}

macro_rules! uuid_path_params {
    ($($id:ty => $kind:literal),* $(,)?) => {$(
        impl PathParam for $id {
            fn from_segment(segment: &str) -> Option<Self> {
                segment.parse().ok()
            }
            fn malformed(_param: &str) -> String {
                concat!($kind, " is not a UUID").to_owned()
            }
        }
    )*};
}

uuid_path_params!(
    galaxy_core::domain::GameId => "game id",
    galaxy_core::domain::UserId => "user id",
    galaxy_core::domain::ApplicationId => "application id",
    galaxy_core::domain::MailId => "mail id",
    galaxy_core::domain::RouteId => "notification route id",
    galaxy_core::domain::SessionId => "session id",
    galaxy_core::domain::SeatApplicationId => "seat application id",
);

/// A turn number.
impl PathParam for u32 {
    fn from_segment(segment: &str) -> Option<Self> {
        segment.parse().ok()
    }
    fn malformed(param: &str) -> String {
        format!("{param} must be a whole number from 0")
    }
}

/// Free text the service validates itself (a race name).
impl PathParam for String {
    fn from_segment(segment: &str) -> Option<Self> {
        Some(segment.to_owned())
    }
    fn malformed(param: &str) -> String {
        format!("{param} is malformed")
    }
}

/// The whole set of a route's path parameters, in the route's order: one [`PathParam`]
/// or a pair of them.
pub trait FromPathParams: Sized {
    /// Parses `(name, segment)` pairs as the router matched them.
    fn from_path_params(params: &[(&str, &str)]) -> Result<Self, ApiError>;
}

fn path_param<T: PathParam>(param: Option<&(&str, &str)>) -> Result<T, ApiError> {
    let Some((name, segment)) = param else {
        return Err(ApiError::invalid_request("a path parameter is missing"));
    };
    T::from_segment(segment)
        .ok_or_else(|| ApiError::invalid_request(T::malformed(name)).with_field(name))
}

impl<T: PathParam> FromPathParams for T {
    fn from_path_params(params: &[(&str, &str)]) -> Result<Self, ApiError> {
        path_param(params.first())
    }
}

impl<A: PathParam, B: PathParam> FromPathParams for (A, B) {
    fn from_path_params(params: &[(&str, &str)]) -> Result<Self, ApiError> {
        Ok((path_param(params.first())?, path_param(params.get(1))?))
    }
}

impl<A: PathParam, B: PathParam, C: PathParam> FromPathParams for (A, B, C) {
    fn from_path_params(params: &[(&str, &str)]) -> Result<Self, ApiError> {
        Ok((
            path_param(params.first())?,
            path_param(params.get(1))?,
            path_param(params.get(2))?,
        ))
    }
}

/// The path's parameters, typed: `ApiPath<GameId>`, `ApiPath<(GameId, u32)>`. A segment
/// that is not valid percent-encoded UTF-8, or that does not parse, is a 400 naming the
/// parameter.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: FromPathParams + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid_request("a path parameter is malformed"))?;
        let params: Vec<(&str, &str)> = raw.iter().collect();
        T::from_path_params(&params).map(ApiPath)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_inputs() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokem"));
        assert!(!constant_time_eq(b"Secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b""));
    }

    #[test]
    fn data_errors_drop_the_client_input() {
        let cases = [
            (
                "invalid type: string \"123456\", expected u32 at line 1 column 9",
                "invalid type, expected u32",
            ),
            (
                "unknown field `tok, expected en`, expected `email` at line 1 column 7",
                "unknown field, expected `email`",
            ),
            (
                "unknown variant `sekrit`, expected `public` or `private`",
                "unknown value, expected `public` or `private`",
            ),
            ("missing field `email`", "missing field `email`"),
            ("input contains invalid characters", "invalid value"),
        ];
        for (input, output) in cases {
            assert_eq!(describe_data_error(input), output);
        }
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("text/json", false),
        ] {
            headers.insert(
                header::CONTENT_TYPE,
                value.parse().unwrap_or_else(|_| unreachable!()),
            );
            assert_eq!(is_json(&headers), ok, "{value}");
        }
    }

    #[test]
    fn bearer_header_forms() {
        let mut headers = HeaderMap::new();
        assert!(bearer_token(&headers).is_err());
        headers.insert(
            header::AUTHORIZATION,
            "Bearer abc".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(bearer_token(&headers).ok(), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            "bearer  abc ".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(bearer_token(&headers).ok(), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            "Basic abc".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert!(bearer_token(&headers).is_err());
        headers.insert(
            header::AUTHORIZATION,
            "Bearer".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert!(bearer_token(&headers).is_err());
    }
}
