//! `GALAXY_SMTP_URL`: where the SMTP relay is, how to secure the connection and how to
//! log in, in one URL. The URL scheme is lettre's own
//! ([`AsyncSmtpTransport::from_url`](lettre::AsyncSmtpTransport::from_url)), which builds
//! the transport; this module only checks what lettre would silently ignore and keeps
//! the password out of sight.
//!
//! ```text
//! smtp://host[:port]                     plain SMTP (port 25); for a local relay or a test sink
//! smtp://host[:port]?tls=none            the same, said outright: needed to send credentials in the clear
//! smtp://host[:port]?tls=required        STARTTLS, required (port 587); `tls=starttls` is accepted too
//! smtp://host[:port]?tls=opportunistic   STARTTLS when the server offers it, else plain
//! smtps://host[:port]                    implicit TLS from the first byte (port 465)
//! smtp[s]://user:password@host...        AUTH (PLAIN or LOGIN) with percent-decoded credentials;
//!                                        refused on plain SMTP unless `tls=none` is given
//! smtp[s]://host[:port]/ehlo.name        the name sent with EHLO (default: this host's name)
//! ```
//!
//! The password is held as a secret: `Debug` and [`SmtpUrl::redacted`] never show it, so
//! the URL can be logged as the server starts.

use std::fmt;

use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// Plain SMTP's well-known port (lettre's default for `smtp://`).
const SMTP_PORT: u16 = 25;
/// The submission port, where STARTTLS is expected (lettre's default with `tls=`).
const SUBMISSION_PORT: u16 = 587;
/// The submission port with implicit TLS (lettre's default for `smtps://`).
const SUBMISSIONS_PORT: u16 = 465;

/// Why an SMTP URL was refused. The messages never quote the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpUrlError {
    /// Not a URL at all.
    #[error("not a URL ({0}); expected e.g. smtp://relay.example.org:587?tls=required")]
    Malformed(String),
    /// A scheme other than `smtp` or `smtps`.
    #[error("unknown scheme {0:?}; expected smtp or smtps")]
    Scheme(String),
    /// No host.
    #[error("the URL names no host")]
    NoHost,
    /// An IPv6 address as the host: lettre would hand it to the resolver in brackets.
    #[error(
        "an IPv6 address cannot be the relay's host in GALAXY_SMTP_URL; use a host name that resolves to it"
    )]
    Ipv6Host,
    /// An unknown `tls=` value, or `tls=` together with `smtps`.
    #[error("unknown tls mode {0:?}; expected required, starttls or opportunistic (with smtp://)")]
    TlsMode(String),
    /// A query parameter this mailer does not know.
    #[error("unknown URL parameter {0:?}; only tls is understood")]
    Parameter(String),
    /// A user without a password or the reverse.
    #[error("credentials must be user:password, percent-encoded UTF-8")]
    Credentials,
    /// A path of more than one segment (one segment is the EHLO name).
    #[error("unexpected path {0:?} after the host; only an EHLO name (/name) may follow it")]
    Path(String),
    /// Credentials over a connection the URL leaves unencrypted without saying so.
    #[error(
        "the SMTP URL sends its password unencrypted: add ?tls=required (STARTTLS) or use smtps://; ?tls=none sends it in the clear on purpose (a relay on this host)"
    )]
    PlainCredentials,
    /// lettre refused the URL (e.g. credentials that do not decode to UTF-8).
    #[error("the SMTP URL is refused: {0}")]
    Refused(String),
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
    /// Stable name for logs (`none`, `starttls`, `opportunistic`, `implicit`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Plain => "none",
            Self::StartTls => "starttls",
            Self::Opportunistic => "opportunistic",
            Self::Tls => "implicit",
        }
    }
}

/// A checked `GALAXY_SMTP_URL`.
#[derive(Clone)]
pub struct SmtpUrl {
    /// The URL in lettre's spelling (`tls=starttls` written `tls=required`, `tls=none`
    /// dropped), password included: a secret, handed to lettre's `from_url` only.
    lettre_url: SecretString,
    /// Host name or IPv4 address; also the TLS server name.
    pub host: String,
    /// TCP port (the scheme's default when the URL names none).
    pub port: u16,
    /// Transport security.
    pub security: SmtpSecurity,
    /// The AUTH user as the URL spells it (percent-encoded), if the URL logs in.
    pub user: Option<String>,
    /// The name sent with EHLO, when the URL sets one.
    pub hello_name: Option<String>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SmtpUrl").field(&self.redacted()).finish()
    }
}

impl SmtpUrl {
    /// Parses and checks a URL (see the module docs for the format); lettre parses it
    /// once here so that a URL it would refuse fails at startup, not at the first mail.
    pub fn parse(input: &str) -> Result<Self, SmtpUrlError> {
        // url's messages describe the syntax problem only, never the input.
        let mut url =
            url::Url::parse(input.trim()).map_err(|e| SmtpUrlError::Malformed(e.to_string()))?;
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            match &*key {
                "tls" => tls = Some(value.into_owned()),
                other => return Err(SmtpUrlError::Parameter(other.chars().take(40).collect())),
            }
        }
        let (security, lettre_tls) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("none")) => (SmtpSecurity::Plain, None),
            ("smtp", Some("required" | "starttls")) => (SmtpSecurity::StartTls, Some("required")),
            ("smtp", Some("opportunistic")) => (SmtpSecurity::Opportunistic, Some("opportunistic")),
            ("smtps", None) => (SmtpSecurity::Tls, None),
            ("smtp" | "smtps", Some(mode)) => {
                return Err(SmtpUrlError::TlsMode(mode.chars().take(40).collect()));
            }
            (scheme, _) => return Err(SmtpUrlError::Scheme(scheme.chars().take(20).collect())),
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(_)) => return Err(SmtpUrlError::Ipv6Host),
            Some(host) => host.to_string(),
            None => return Err(SmtpUrlError::NoHost),
        };
        if host.is_empty() {
            return Err(SmtpUrlError::NoHost);
        }
        let hello_name = match url.path().trim_matches('/') {
            "" => None,
            name if name.contains('/') => {
                return Err(SmtpUrlError::Path(url.path().chars().take(60).collect()));
            }
            name => Some(name.to_owned()),
        };
        // lettre ignores a user without a password: refuse rather than send no AUTH.
        let user = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(_)) if !user.is_empty() => Some(user.to_owned()),
            _ => return Err(SmtpUrlError::Credentials),
        };
        // A password in the clear only when asked for by name.
        if user.is_some() && security == SmtpSecurity::Plain && tls.is_none() {
            return Err(SmtpUrlError::PlainCredentials);
        }
        match lettre_tls {
            Some(mode) => {
                url.query_pairs_mut().clear().append_pair("tls", mode);
            }
            None => url.set_query(None),
        }
        let explicit_port = url.port();
        let lettre_url = SecretString::from(String::from(url));
        // lettre's messages never quote the URL.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(lettre_url.expose_secret())
            .map_err(|e| SmtpUrlError::Refused(e.to_string()))?;
        let default_port = match security {
            SmtpSecurity::Plain => SMTP_PORT,
            SmtpSecurity::StartTls | SmtpSecurity::Opportunistic => SUBMISSION_PORT,
            SmtpSecurity::Tls => SUBMISSIONS_PORT,
        };
        Ok(Self {
            port: explicit_port.unwrap_or(default_port),
            lettre_url,
            host,
            security,
            user,
            hello_name,
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
            .user
            .as_ref()
            .map(|user| format!("{user}:***@"))
            .unwrap_or_default();
        let path = self
            .hello_name
            .as_ref()
            .map(|name| format!("/{name}"))
            .unwrap_or_default();
        let query = match self.security {
            SmtpSecurity::StartTls => "?tls=required",
            SmtpSecurity::Opportunistic => "?tls=opportunistic",
            // Credentials in the clear were asked for by name: say so in the logs too.
            SmtpSecurity::Plain if self.user.is_some() => "?tls=none",
            SmtpSecurity::Plain | SmtpSecurity::Tls => "",
        };
        format!("{scheme}://{user}{}:{}{path}{query}", self.host, self.port)
    }

    /// The URL for lettre's `from_url`, password included: for building the transport
    /// only.
    pub(crate) fn for_lettre(&self) -> &str {
        self.lettre_url.expose_secret()
    }
}

impl std::str::FromStr for SmtpUrl {
    type Err = SmtpUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
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
        assert!(u.user.is_none());
        assert_eq!(u.for_lettre(), "smtp://127.0.0.1:2525");
        let u = SmtpUrl::parse("smtp://relay.example.org?tls=required").unwrap();
        assert_eq!((u.port, u.security), (587, SmtpSecurity::StartTls));
        // The documented alias, spelled for lettre.
        let u = SmtpUrl::parse("smtp://relay.example.org?tls=starttls").unwrap();
        assert_eq!(u.security, SmtpSecurity::StartTls);
        assert_eq!(u.for_lettre(), "smtp://relay.example.org?tls=required");
        assert_eq!(u.redacted(), "smtp://relay.example.org:587?tls=required");
        let u = SmtpUrl::parse("smtp://relay.example.org?tls=opportunistic").unwrap();
        assert_eq!(u.security, SmtpSecurity::Opportunistic);
        let u = SmtpUrl::parse("smtp://relay.example.org:2525?tls=none").unwrap();
        assert_eq!(u.security, SmtpSecurity::Plain);
        assert_eq!(u.for_lettre(), "smtp://relay.example.org:2525");
        let u = SmtpUrl::parse("smtps://relay.example.org").unwrap();
        assert_eq!((u.port, u.security), (465, SmtpSecurity::Tls));
        let u = SmtpUrl::parse("smtp://relay.example.org/galaxy.example.org").unwrap();
        assert_eq!(u.hello_name.as_deref(), Some("galaxy.example.org"));
        assert_eq!(
            u.redacted(),
            "smtp://relay.example.org:25/galaxy.example.org"
        );
    }

    #[test]
    fn credentials_go_to_lettre_and_are_never_shown() {
        let u =
            SmtpUrl::parse("smtps://mailer%40example.org:p%40ss%3Aw0rd@relay.example.org").unwrap();
        assert_eq!(u.user.as_deref(), Some("mailer%40example.org"));
        assert!(u.for_lettre().contains("p%40ss%3Aw0rd"));
        let shown = format!("{u:?} {}", u.redacted());
        assert!(!shown.contains("p%40ss"), "{shown}");
        assert!(!shown.contains("w0rd"), "{shown}");
        assert_eq!(
            u.redacted(),
            "smtps://mailer%40example.org:***@relay.example.org:465"
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
        assert!(matches!(err("smtp://:pw@relay"), SmtpUrlError::Credentials));
        assert!(matches!(err("smtp://[::1]:25"), SmtpUrlError::Ipv6Host));
        assert!(matches!(err("smtp://relay/x/y"), SmtpUrlError::Path(_)));
        assert!(matches!(err("not a url"), SmtpUrlError::Malformed(_)));
        // Not UTF-8 once decoded: lettre refuses, and the message shows no password.
        let refused = err("smtp://u:%ffhunter2@relay?tls=required");
        assert!(matches!(refused, SmtpUrlError::Refused(_)), "{refused:?}");
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
        let shown = err("smtp://u:hunter2@relay?tls=bogus").to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        // A password over plain SMTP only when the URL says so.
        let plain = err("smtp://u:hunter2@relay:587");
        assert_eq!(plain, SmtpUrlError::PlainCredentials);
        assert!(!plain.to_string().contains("hunter2"), "{plain}");
        let said = SmtpUrl::parse("smtp://u:hunter2@localhost:25?tls=none").unwrap();
        assert_eq!(said.security, SmtpSecurity::Plain);
        assert_eq!(said.redacted(), "smtp://u:***@localhost:25?tls=none");
    }
}
