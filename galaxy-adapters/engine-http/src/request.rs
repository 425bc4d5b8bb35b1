//! The contract at the level of HTTP: a request to any route with any body, and the
//! answer whatever its status.
//!
//! The port's typed methods are built on these. A caller that judges an engine rather
//! than plays with it (the contract checker, `galaxy-cli engine check`) uses them
//! directly: it must see the statuses, headers and bodies that the typed methods turn
//! into errors, and it must be able to send bodies the platform never would.

use hyper::body::Bytes;
use hyper::{HeaderMap, Method};

use crate::endpoint::segment;

/// One request to an engine: a route of the contract and a body, sent as JSON.
///
/// Built with the constructor of its route, which encodes race names as one path
/// segment; [`EngineRequest::new`] sends any path as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineRequest {
    /// The HTTP method.
    method: Method,
    /// The path after the engine's base URL, starting with `/`, segments encoded.
    path: String,
    /// The body, sent with `content-type: application/json` (any bytes, so that a
    /// checker can send what does not parse).
    body: Option<Vec<u8>>,
    /// Whether the call does the engine's real work (init, turn) and gets the long
    /// timeout.
    slow: bool,
}

impl EngineRequest {
    /// A request to `path` (starting with `/`, already percent-encoded) on the engine's
    /// base URL. `POST /admin/init` and `POST /admin/turn` get the turn timeout, every
    /// other call the request timeout.
    pub fn new(method: Method, path: impl Into<String>, body: Option<Vec<u8>>) -> Self {
        let path = path.into();
        let slow = method == Method::POST && matches!(path.as_str(), "/admin/init" | "/admin/turn");
        Self {
            method,
            path,
            body,
            slow,
        }
    }

    /// `GET /healthz`.
    pub fn healthz() -> Self {
        Self::new(Method::GET, "/healthz", None)
    }

    /// `POST /admin/init` with `body`.
    pub fn init(body: impl Into<Vec<u8>>) -> Self {
        Self::new(Method::POST, "/admin/init", Some(body.into()))
    }

    /// `POST /admin/turn` with `body`.
    pub fn turn(body: impl Into<Vec<u8>>) -> Self {
        Self::new(Method::POST, "/admin/turn", Some(body.into()))
    }

    /// `GET /admin/state`.
    pub fn state() -> Self {
        Self::new(Method::GET, "/admin/state", None)
    }

    /// `PUT /orders/{race}` with `body`; the race name is encoded as one path segment.
    pub fn orders(race: &str, body: impl Into<Vec<u8>>) -> Self {
        let path = format!("/orders/{}", segment(race));
        Self::new(Method::PUT, path, Some(body.into()))
    }

    /// `GET /reports/{race}/{turn}`; the race name is encoded as one path segment.
    pub fn report(race: &str, turn: u32) -> Self {
        Self::new(
            Method::GET,
            format!("/reports/{}/{turn}", segment(race)),
            None,
        )
    }

    /// The same request with another body (or none).
    pub fn with_body(mut self, body: Option<Vec<u8>>) -> Self {
        self.body = body;
        self
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path after the base URL, as sent.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The body, if any.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// Whether the call gets the turn timeout rather than the request timeout.
    pub fn is_slow(&self) -> bool {
        self.slow
    }

    pub(crate) fn into_parts(self) -> (Method, String, Option<Vec<u8>>) {
        (self.method, self.path, self.body)
    }
}

/// An engine's answer, whatever its status.
///
/// A 2xx body is bounded by `ClientOptions::max_response_bytes` (a larger one is an
/// `EngineError::Malformed`, as for the typed methods); any other body is cut at
/// `ClientOptions::max_error_body_bytes`, the rest left unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The answer's headers (`content-type`, `www-authenticate`...).
    pub headers: HeaderMap,
    /// The body as read.
    pub body: Bytes,
    /// Whether a non-2xx body was cut at its bound.
    pub truncated: bool,
}

impl EngineAnswer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as text (lossy UTF-8), marked when it was cut: what a log line or an
    /// `EngineError::Status` shows.
    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.body).into_owned();
        if self.truncated {
            text.push_str(" [truncated]");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::EngineRequest;
    use hyper::Method;

    #[test]
    fn routes_encode_race_names_and_pick_their_timeout() {
        let report = EngineRequest::report("Red Dwarf/2", 7);
        assert_eq!(report.path(), "/reports/Red%20Dwarf%2F2/7");
        assert_eq!(report.method(), &Method::GET);
        assert!(!report.is_slow());
        let orders = EngineRequest::orders("Ü", b"{}".to_vec());
        assert_eq!(orders.path(), "/orders/%C3%9C");
        assert_eq!(orders.body(), Some(&b"{}"[..]));
        assert!(EngineRequest::init(Vec::new()).is_slow());
        assert!(EngineRequest::turn(Vec::new()).is_slow());
        assert!(!EngineRequest::new(Method::GET, "/admin/turn", None).is_slow());
        assert!(!EngineRequest::state().is_slow());
        assert_eq!(EngineRequest::healthz().path(), "/healthz");
    }
}
