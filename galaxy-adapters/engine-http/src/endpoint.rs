//! Engine endpoints: checking a base URL and building the contract's request URIs.

use hyper::Uri;

/// A request that cannot be sent as asked: the caller's problem, found before any I/O.
///
/// Reaches the port as `EngineError::InvalidRequest` with this as its source
/// (`downcast_ref::<RequestError>()` recovers it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The endpoint is not a usable `http://host:port[/prefix]` base URL.
    #[error("invalid engine endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The serialized orders exceed the configured bound; nothing was sent.
    #[error("orders are {size} bytes once serialized; at most {limit} are sent to an engine")]
    OrdersTooLarge {
        /// Their serialized size.
        size: usize,
        /// The bound.
        limit: usize,
    },
}

/// A checked base URL: `http://authority` plus an optional path prefix, no trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Everything before the contract's paths.
    base: String,
}

impl Endpoint {
    /// Checks a base URL like `http://127.0.0.1:40123` (plain HTTP only; a path prefix is
    /// kept; a query or fragment is refused).
    pub fn parse(endpoint: &str) -> Result<Self, RequestError> {
        let invalid = |reason: &str| RequestError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = endpoint
            .trim()
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(invalid(&format!(
                    "scheme {other} is not supported (http only)"
                )));
            }
            None => return Err(invalid("no scheme (expected http://host:port)")),
        }
        let Some(authority) = uri.authority() else {
            return Err(invalid("no host"));
        };
        if authority.host().is_empty() {
            return Err(invalid("no host"));
        }
        // `http` keeps a port that does not fit in 16 bits as text; refuse it here.
        let after_host = authority.as_str().rsplit(']').next().unwrap_or_default();
        if after_host.contains(':') && authority.port_u16().is_none() {
            return Err(invalid("the port is not a number in 0..=65535"));
        }
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        if uri.query().is_some() || endpoint.contains('#') {
            return Err(invalid("a base URL has no query or fragment"));
        }
        let prefix = uri.path().trim_end_matches('/');
        Ok(Self {
            base: format!("http://{authority}{prefix}"),
        })
    }

    /// The URI of a contract path (starting with `/`, segments already encoded).
    pub fn uri(&self, path: &str) -> Result<Uri, RequestError> {
        let full = format!("{}{path}", self.base);
        full.parse().map_err(
            |e: hyper::http::uri::InvalidUri| RequestError::InvalidEndpoint {
                endpoint: full.clone(),
                reason: e.to_string(),
            },
        )
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters),
/// so any race name, `/` and spaces included, travels as one segment.
pub fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::{Endpoint, RequestError, segment};

    #[test]
    fn base_urls_are_checked_and_joined() {
        let e = Endpoint::parse("http://127.0.0.1:40123").unwrap();
        assert_eq!(
            e.uri("/healthz").unwrap().to_string(),
            "http://127.0.0.1:40123/healthz"
        );
        let e = Endpoint::parse("http://[::1]:8080").unwrap();
        assert_eq!(
            e.uri("/healthz").unwrap().to_string(),
            "http://[::1]:8080/healthz"
        );
        let e = Endpoint::parse("http://engine.local:8080/games/7/").unwrap();
        assert_eq!(
            e.uri("/admin/state").unwrap().to_string(),
            "http://engine.local:8080/games/7/admin/state"
        );
        for bad in [
            "",
            "not a url",
            "127.0.0.1:8080",
            "https://127.0.0.1:8080",
            "ftp://x",
            "http://",
            "http://u:p@host:1",
            "http://host:1/?q=1",
            "http://host:1/#frag",
            "http://host:99999999",
            "http://[::1]:70000",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(matches!(err, RequestError::InvalidEndpoint { .. }), "{bad}");
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("Alpha-1_x.y~"), "Alpha-1_x.y~");
        assert_eq!(segment("Red Dwarf/2"), "Red%20Dwarf%2F2");
        assert_eq!(segment("Ü"), "%C3%9C");
        assert_eq!(segment("a?b#c%"), "a%3Fb%23c%25");
    }
}
