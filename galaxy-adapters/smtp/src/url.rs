//! `GALAXY_SMTP_URL`: where the SMTP relay is, how to secure the connection and how to
//! log in, in one URL.
//!
//! ```text
//! smtp://host[:port]                     plain SMTP (port 25); for a local relay or a test sink
//! smtp://host[:port]?tls=starttls        STARTTLS, required (port 587); `tls=required` is accepted too
//! smtp://host[:port]?tls=opportunistic   STARTTLS when the server offers it, else plain
//! smtps://host[:port]                    implicit TLS from the first byte (port 465)
//! smtp[s]://user:password@host...        AUTH (PLAIN or LOGIN) with percent-decoded credentials
//! ```
//!
//! The password is held as a secret: `Debug` and [`SmtpUrl::redacted`] never show it, so
//! the URL can be logged as the server starts.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Plain SMTP's well-known port.
const SMTP_PORT: u16 = 25;
/// The submission port, where STARTTLS is expected.
const SUBMISSION_PORT: u16 = 587;
/// The submission port with implicit TLS.
const SUBMISSIONS_PORT: u16 = 465;

/// Why an SMTP URL was refused. The messages never quote the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpUrlError {
    /// Not a URL at all.
    #[error("not a URL ({0}); expected e.g. smtp://relay.example.org:587?tls=starttls")]
    Malformed(String),
    /// A scheme other than `smtp` or `smtps`.
    #[error("unknown scheme {0:?}; expected smtp or smtps")]
    Scheme(String),
    /// No host.
    #[error("the URL names no host")]
    NoHost,
    /// An unknown `tls=` value, or `tls=` together with `smtps`.
    #[error("unknown tls mode {0:?}; expected starttls, required or opportunistic (with smtp://)")]
    TlsMode(String),
    /// A query parameter this mailer does not know.
    #[error("unknown URL parameter {0:?}; only tls is understood")]
    Parameter(String),
    /// A user without a password or the reverse, or credentials that are not UTF-8.
    #[error("credentials must be user:password, percent-encoded UTF-8")]
    Credentials,
    /// A path after the host (nothing is read from it, so it is probably a mistake).
    #[error("unexpected path {0:?} after the host")]
    Path(String),
}

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS at all.
    Plain,
    /// STARTTLS, and fail when the server does not offer it.
    StartTls,
    /// STARTTLS when offered, plain otherwise.
    Opportunistic,
    /// TLS from the first byte (`smtps`).
    Tls,
}

impl SmtpSecurity {
    /// Stable name, as `tls=` spells it (`none` and `implicit` for the two others).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Plain => "none",
            Self::StartTls => "starttls",
            Self::Opportunistic => "opportunistic",
            Self::Tls => "implicit",
        }
    }
}

/// Login credentials for SMTP AUTH.
#[derive(Clone)]
pub struct SmtpCredentials {
    /// The user name (not secret, shown in logs).
    pub user: String,
    /// The password; exposed only to build the transport.
    pub password: SecretString,
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A parsed `GALAXY_SMTP_URL`.
#[derive(Debug, Clone)]
pub struct SmtpUrl {
    /// Host name or IP address (without brackets for IPv6); also the TLS server name.
    pub host: String,
    /// TCP port (the scheme's default when the URL names none).
    pub port: u16,
    /// Transport security.
    pub security: SmtpSecurity,
    /// AUTH credentials, if the URL carries them.
    pub credentials: Option<SmtpCredentials>,
}

impl SmtpUrl {
    /// Parses and checks a URL (see the module docs for the format).
    pub fn parse(input: &str) -> Result<Self, SmtpUrlError> {
        let url = url::Url::parse(input.trim()).map_err(|e| {
            // url's messages describe the syntax problem only, never the input.
            SmtpUrlError::Malformed(e.to_string())
        })?;
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            match &*key {
                "tls" => tls = Some(value.into_owned()),
                other => return Err(SmtpUrlError::Parameter(other.chars().take(40).collect())),
            }
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("none")) => SmtpSecurity::Plain,
            ("smtp", Some("starttls" | "required")) => SmtpSecurity::StartTls,
            ("smtp", Some("opportunistic")) => SmtpSecurity::Opportunistic,
            ("smtps", None) => SmtpSecurity::Tls,
            ("smtp" | "smtps", Some(mode)) => {
                return Err(SmtpUrlError::TlsMode(mode.chars().take(40).collect()));
            }
            (scheme, _) => return Err(SmtpUrlError::Scheme(scheme.to_owned())),
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(addr)) => addr.to_string(),
            Some(host) => host.to_string(),
            None => return Err(SmtpUrlError::NoHost),
        };
        if host.is_empty() {
            return Err(SmtpUrlError::NoHost);
        }
        if !matches!(url.path(), "" | "/") {
            return Err(SmtpUrlError::Path(url.path().chars().take(60).collect()));
        }
        let port = url.port().unwrap_or(match security {
            SmtpSecurity::Plain => SMTP_PORT,
            SmtpSecurity::StartTls | SmtpSecurity::Opportunistic => SUBMISSION_PORT,
            SmtpSecurity::Tls => SUBMISSIONS_PORT,
        });
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(password)) if !user.is_empty() => Some(SmtpCredentials {
                user: percent_decode(user)?,
                password: SecretString::from(percent_decode(password)?),
            }),
            _ => return Err(SmtpUrlError::Credentials),
        };
        Ok(Self {
            host,
            port,
            security,
            credentials,
        })
    }

    /// The URL with the password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        let scheme = if self.security == SmtpSecurity::Tls {
            "smtps"
        } else {
            "smtp"
        };
        let user = self
            .credentials
            .as_ref()
            .map(|c| format!("{}:***@", c.user))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let query = match self.security {
            SmtpSecurity::StartTls | SmtpSecurity::Opportunistic => {
                format!("?tls={}", self.security.as_str())
            }
            SmtpSecurity::Plain | SmtpSecurity::Tls => String::new(),
        };
        format!("{scheme}://{user}{host}:{}{query}", self.port)
    }

    /// The password, for building the transport only.
    pub(crate) fn password(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|c| (c.user.as_str(), c.password.expose_secret()))
    }
}

impl std::str::FromStr for SmtpUrl {
    type Err = SmtpUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Decodes `%XX` escapes of a URL's userinfo into UTF-8 text.
fn percent_decode(input: &str) -> Result<String, SmtpUrlError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(SmtpUrlError::Credentials)?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SmtpUrlError::Credentials)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn schemes_modes_and_default_ports() {
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.security),
            ("127.0.0.1", 2525, SmtpSecurity::Plain)
        );
        assert!(u.credentials.is_none());
        let u = SmtpUrl::parse("smtp://relay.example.org?tls=starttls").unwrap();
        assert_eq!((u.port, u.security), (587, SmtpSecurity::StartTls));
        let u = SmtpUrl::parse("smtp://relay.example.org?tls=required").unwrap();
        assert_eq!(u.security, SmtpSecurity::StartTls);
        let u = SmtpUrl::parse("smtp://relay.example.org?tls=opportunistic").unwrap();
        assert_eq!(u.security, SmtpSecurity::Opportunistic);
        let u = SmtpUrl::parse("smtps://relay.example.org").unwrap();
        assert_eq!((u.port, u.security), (465, SmtpSecurity::Tls));
        let u = SmtpUrl::parse("smtp://[::1]:25").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.redacted(), "smtp://[::1]:25");
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let u =
            SmtpUrl::parse("smtps://mailer%40example.org:p%40ss%3Aw0rd@relay.example.org").unwrap();
        assert_eq!(u.password(), Some(("mailer@example.org", "p@ss:w0rd")));
        let shown = format!("{u:?} {}", u.redacted());
        assert!(!shown.contains("p@ss"), "{shown}");
        assert!(!shown.contains("w0rd"), "{shown}");
        assert_eq!(
            u.redacted(),
            "smtps://mailer@example.org:***@relay.example.org:465"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        let err = |s: &str| SmtpUrl::parse(s).unwrap_err();
        assert!(matches!(
            err("relay:25"),
            SmtpUrlError::Scheme(_) | SmtpUrlError::Malformed(_)
        ));
        assert!(matches!(err("http://relay"), SmtpUrlError::Scheme(_)));
        assert!(matches!(
            err("smtp://relay?tls=yes"),
            SmtpUrlError::TlsMode(_)
        ));
        assert!(matches!(
            err("smtps://relay?tls=starttls"),
            SmtpUrlError::TlsMode(_)
        ));
        assert!(matches!(
            err("smtp://relay?timeout=3"),
            SmtpUrlError::Parameter(_)
        ));
        assert!(matches!(
            err("smtp://user@relay"),
            SmtpUrlError::Credentials
        ));
        assert!(matches!(
            err("smtp://u:%zz@relay"),
            SmtpUrlError::Credentials
        ));
        assert!(matches!(err("smtp://relay/x"), SmtpUrlError::Path(_)));
        assert!(matches!(err("not a url"), SmtpUrlError::Malformed(_)));
        let shown = err("smtp://u:hunter2@relay?tls=bogus").to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
