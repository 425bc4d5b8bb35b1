//! The settings of orders by e-mail (`GALAXY_MAIL_DOMAIN`, `GALAXY_INBOUND_*`), read by
//! [`super::Config::from_vars`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, RateLimit, Vars};

/// Orders by e-mail: the orders addresses' domain, the intake's bounds, and the optional
/// SMTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailInSettings {
    /// `GALAXY_MAIL_DOMAIN`: the domain of the orders addresses; unset = orders by
    /// e-mail is off (no addresses, the internal route answers 404, no listener).
    pub domain: Option<String>,
    /// `GALAXY_INBOUND_MAX_BYTES`: the largest message taken.
    pub max_bytes: usize,
    /// `GALAXY_INBOUND_REPLIES_PER_HOUR`: verdict replies per player an hour.
    pub replies_per_hour: u32,
    /// `GALAXY_INBOUND_INTERVAL`: idle poll of the mail-in worker.
    pub interval: Duration,
    /// `GALAXY_INBOUND_SMTP_ADDR`: where the SMTP listener listens; unset = no listener.
    pub smtp_addr: Option<SocketAddr>,
    /// `GALAXY_INBOUND_SMTP_TLS_CERT`: PEM certificate chain; with the key, STARTTLS.
    pub smtp_tls_cert: Option<PathBuf>,
    /// `GALAXY_INBOUND_SMTP_TLS_KEY`: PEM private key of the certificate.
    pub smtp_tls_key: Option<PathBuf>,
    /// `GALAXY_INBOUND_SMTP_MAX_CONNECTIONS`: open SMTP connections at most.
    pub smtp_max_connections: usize,
    /// `GALAXY_INBOUND_SMTP_CLIENT_CONNECTIONS`: open connections per client address.
    pub smtp_client_connections: usize,
    /// `GALAXY_INBOUND_SMTP_RATE_LIMIT`: messages per client address per window.
    pub smtp_rate_limit: RateLimit,
    /// `GALAXY_INBOUND_SMTP_TIMEOUT`: the longest wait for a client's next line.
    pub smtp_timeout: Duration,
    /// `GALAXY_INBOUND_SMTP_SESSION_LIMIT`: the longest a whole SMTP session lasts.
    pub smtp_session_limit: Duration,
}

/// Reads the settings.
pub(super) fn read(v: &Vars<'_>) -> Result<MailInSettings, ConfigError> {
    let domain = v
        .raw("GALAXY_MAIL_DOMAIN")
        .map(|d| {
            let d = d.to_ascii_lowercase();
            let ok = d.split('.').count() >= 1
                && d.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if ok {
                Ok(d)
            } else {
                Err(ConfigError::Invalid {
                    variable: "GALAXY_MAIL_DOMAIN",
                    value: d,
                    expected: "a domain name such as galaxy.example.org".to_owned(),
                })
            }
        })
        .transpose()?;
    let smtp_addr = v.optional_addr("GALAXY_INBOUND_SMTP_ADDR")?;
    if smtp_addr.is_some() && domain.is_none() {
        return Err(ConfigError::Missing {
            variable: "GALAXY_MAIL_DOMAIN",
            why: "the SMTP listener of GALAXY_INBOUND_SMTP_ADDR takes mail for that domain only",
        });
    }
    let smtp_tls_cert = v.raw("GALAXY_INBOUND_SMTP_TLS_CERT").map(PathBuf::from);
    let smtp_tls_key = v.raw("GALAXY_INBOUND_SMTP_TLS_KEY").map(PathBuf::from);
    if smtp_tls_cert.is_some() != smtp_tls_key.is_some() {
        return Err(ConfigError::Missing {
            variable: if smtp_tls_cert.is_some() {
                "GALAXY_INBOUND_SMTP_TLS_KEY"
            } else {
                "GALAXY_INBOUND_SMTP_TLS_CERT"
            },
            why: "STARTTLS needs both the certificate and its key",
        });
    }
    Ok(MailInSettings {
        domain,
        max_bytes: v.parse_with(
            "GALAXY_INBOUND_MAX_BYTES",
            "a byte count from 1024 to 16777216",
            |s| {
                s.parse()
                    .ok()
                    .filter(|n| (1024..=16 * 1024 * 1024).contains(n))
            },
        )?,
        replies_per_hour: v.parse_with(
            "GALAXY_INBOUND_REPLIES_PER_HOUR",
            "a number from 1 to 1000",
            |s| s.parse().ok().filter(|n| (1..=1000).contains(n)),
        )?,
        interval: v.duration("GALAXY_INBOUND_INTERVAL")?,
        smtp_addr,
        smtp_tls_cert,
        smtp_tls_key,
        smtp_max_connections: v.parse_with(
            "GALAXY_INBOUND_SMTP_MAX_CONNECTIONS",
            "a number from 1 to 100000",
            |s| s.parse().ok().filter(|n| (1..=100_000).contains(n)),
        )?,
        smtp_client_connections: v.parse_with(
            "GALAXY_INBOUND_SMTP_CLIENT_CONNECTIONS",
            "a number from 1 to 10000",
            |s| s.parse().ok().filter(|n| (1..=10_000).contains(n)),
        )?,
        smtp_rate_limit: v.rate_limit("GALAXY_INBOUND_SMTP_RATE_LIMIT")?,
        smtp_timeout: v.duration("GALAXY_INBOUND_SMTP_TIMEOUT")?,
        smtp_session_limit: v.duration("GALAXY_INBOUND_SMTP_SESSION_LIMIT")?,
    })
}
