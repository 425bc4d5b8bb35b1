//! The engine's credential (docs/engine-contract.md, "The credential"): with a token
//! configured (`GALAXY_ENGINE_TOKEN`), every route but `/healthz` answers 401 unless the
//! request carries `Authorization: Bearer <token>`. Without this, any process that can
//! reach the port could read every race's reports and send orders as any race.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

/// The shortest token accepted: the platform's are 64 characters; a short one is a
/// configuration mistake, not a secret.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A token that cannot be a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Too short, or holding characters a header value cannot carry.
    #[error(
        "GALAXY_ENGINE_TOKEN must be at least {MIN_TOKEN_CHARS} visible ASCII characters without spaces"
    )]
    Malformed,
}

/// The credential every call but `/healthz` must present. Never printed.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Checks a token as configured: at least [`MIN_TOKEN_CHARS`] visible ASCII
    /// characters (what fits in an `Authorization` header unchanged).
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        let visible = token.bytes().all(|b| b.is_ascii_graphic());
        if token.len() < MIN_TOKEN_CHARS || !visible {
            return Err(TokenError::Malformed);
        }
        Ok(Self(token.to_owned()))
    }

    /// Whether an `Authorization` header value presents this token (constant time in the
    /// token's contents).
    fn admits(&self, header: Option<&HeaderValue>) -> bool {
        let Some(presented) = header
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return false;
        };
        presented.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Token {}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The middleware: lets `/healthz` through (it tells nothing, and a health checker holds
/// no credential), and any request when no token is configured; refuses the rest unless it
/// presents the token.
pub(crate) async fn require(
    State(token): State<Option<Token>>,
    request: Request,
    next: Next,
) -> Response {
    let open = request.uri().path() == "/healthz";
    match &token {
        Some(token) if !open && !token.admits(request.headers().get(AUTHORIZATION)) => {
            unauthorised()
        }
        _ => next.run(request).await,
    }
}

fn unauthorised() -> Response {
    let body = json!({
        "error": "missing or wrong credential: send Authorization: Bearer <GALAXY_ENGINE_TOKEN>"
    });
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_are_checked_when_configured_and_presented_exactly() {
        assert_eq!(Token::parse("short").unwrap_err(), TokenError::Malformed);
        assert!(Token::parse("has a space in it, sixteen+").is_err());
        let token = Token::parse("0123456789abcdef").unwrap();
        let header = |v: &'static str| HeaderValue::from_static(v);
        assert!(token.admits(Some(&header("Bearer 0123456789abcdef"))));
        assert!(!token.admits(Some(&header("Bearer 0123456789abcdeF"))));
        assert!(!token.admits(Some(&header("Bearer 0123456789abcdef0"))));
        assert!(!token.admits(Some(&header("Basic 0123456789abcdef"))));
        assert!(!token.admits(None));
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }
}
