//! The production mailer: SMTP through lettre, with pooled connections, a deadline on
//! every send, and the server's reply mapped onto the outbox's retry rules.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::domain::mail::OutgoingMail;
use galaxy_core::ports::{Mailer, MailerError};
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::response::{Category, Detail, Response};
use lettre::transport::smtp::{Error as SmtpError, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::message::{build_message, parse_sender};
use crate::url::{SmtpSecurity, SmtpUrl};

/// The lettre transport this mailer drives.
type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Why an SMTP mailer could not be built (bad configuration; the messages name what is
/// wrong and never show the password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpConfigError {
    /// The sender is not a mailbox such as `Galaxy <galaxy@example.org>`.
    #[error(transparent)]
    From(#[from] crate::message::MessageError),
    /// lettre refused the relay URL (`SmtpUrl::parse` has already had lettre check it,
    /// so this is not expected).
    #[error("cannot set up the SMTP transport for {relay}: {reason}")]
    Transport {
        /// The relay, password redacted.
        relay: String,
        /// lettre's objection.
        reason: String,
    },
    /// An extra root certificate that is not PEM.
    #[error("invalid TLS root certificate: {0}")]
    Certificate(String),
    /// TLS parameters lettre refused.
    #[error("cannot set up TLS for {host}: {reason}")]
    Tls {
        /// The relay.
        host: String,
        /// lettre's objection.
        reason: String,
    },
    /// A zero timeout or pool size.
    #[error("{0} must be positive")]
    NotPositive(&'static str),
}

/// Everything the SMTP mailer needs; the server fills it from `GALAXY_SMTP_URL`,
/// `GALAXY_MAIL_FROM` and friends.
#[derive(Debug, Clone)]
pub struct SmtpMailerConfig {
    /// Relay, security and credentials.
    pub url: SmtpUrl,
    /// The `From:` mailbox, e.g. `Galaxy <galaxy@example.org>`; its domain also names
    /// the Message-IDs.
    pub from: String,
    /// Deadline of one send, connecting and the whole SMTP dialogue included. lettre
    /// bounds only the TCP connect; without this a server that accepts and then stalls
    /// would hold the mail worker (and its lease) forever.
    pub timeout: Duration,
    /// Most connections kept open between sends.
    pub pool_max_size: u32,
    /// How long an unused pooled connection stays open.
    pub pool_idle_timeout: Duration,
    /// Extra PEM root certificates to trust besides the bundled web PKI roots (a
    /// private relay's CA, or a test server's self-signed certificate).
    pub extra_root_certificates: Vec<Vec<u8>>,
}

impl SmtpMailerConfig {
    /// A configuration with the defaults: 30 s per send, up to 4 pooled connections
    /// kept for 60 s, the web PKI roots only.
    pub fn new(url: SmtpUrl, from: impl Into<String>) -> Self {
        Self {
            url,
            from: from.into(),
            timeout: Duration::from_secs(30),
            pool_max_size: 4,
            pool_idle_timeout: Duration::from_secs(60),
            extra_root_certificates: Vec::new(),
        }
    }
}

/// Sends mail through an SMTP relay.
///
/// Replies map onto the outbox's rules: a 2xx reply is success (its text is recorded
/// with the attempt); a 4xx reply, a refused or broken connection, a TLS failure and a
/// timeout are transient (the mail is retried with backoff); a 5xx reply and a message
/// the relay cannot take at all (bad address, no usable AUTH mechanism, no STARTTLS
/// where required) are permanent (the mail is dead at once).
pub struct SmtpMailer {
    /// The configuration the transport was built from (to rebuild it).
    config: SmtpMailerConfig,
    /// The parsed sender.
    from: Mailbox,
    /// The right-hand side of Message-IDs: the sender's domain.
    message_id_domain: String,
    /// The pooled transport; replaced after a timeout, because a connection abandoned
    /// mid-dialogue may still deliver a late reply that the next mail would read as its
    /// own.
    transport: Mutex<Transport>,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("relay", &self.config.url.redacted())
            .field("from", &self.config.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Checks the configuration and prepares the transport (no connection is made until
    /// the first send).
    pub fn new(config: SmtpMailerConfig) -> Result<Self, SmtpConfigError> {
        if config.timeout.is_zero() {
            return Err(SmtpConfigError::NotPositive("the SMTP timeout"));
        }
        if config.pool_max_size == 0 {
            return Err(SmtpConfigError::NotPositive("the SMTP pool size"));
        }
        let from = parse_sender(&config.from)?;
        let message_id_domain = from.email.domain().to_owned();
        let transport = build_transport(&config)?;
        tracing::info!(
            relay = %config.url.redacted(),
            tls = config.url.security.as_str(),
            "SMTP mailer ready"
        );
        Ok(Self {
            config,
            from,
            message_id_domain,
            transport: Mutex::new(transport),
        })
    }

    /// Opens a connection to the relay (greeting, EHLO, STARTTLS or TLS as the URL says,
    /// AUTH when it has credentials), sends NOOP and closes it: what `galaxy-cli doctor`
    /// checks. The error is lettre's, whose text never holds the password.
    pub async fn test_connection(&self) -> Result<(), String> {
        match self.current_transport().test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the relay did not answer NOOP".to_owned()),
            Err(error) => Err(error.to_string()),
        }
    }

    /// Closes the pooled connections (QUIT); call on shutdown after the mail worker
    /// stopped.
    pub async fn shutdown(&self) {
        self.current_transport().shutdown().await;
    }

    /// The transport in use (a cheap handle on the shared pool).
    fn current_transport(&self) -> Transport {
        self.transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Drops the pool: its connections close once their last user lets go.
    fn reset_pool(&self) {
        match build_transport(&self.config) {
            Ok(fresh) => {
                *self
                    .transport
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = fresh;
            }
            // Cannot happen: the same configuration built the first transport.
            Err(error) => tracing::error!(%error, "SMTP transport not rebuilt"),
        }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailerError> {
        let message = build_message(
            mail,
            &self.from,
            &self.message_id_domain,
            std::time::SystemTime::now(),
        )
        .map_err(|e| MailerError::Permanent(e.to_string()))?;
        let transport = self.current_transport();
        let span = tracing::info_span!(
            "smtp.send",
            relay = %self.config.url.host,
            port = self.config.url.port,
            kind = %mail.kind,
        );
        let sent = tokio::time::timeout(self.config.timeout, transport.send(message));
        let result = tracing::Instrument::instrument(sent, span).await;
        match result {
            Ok(Ok(response)) => Ok(reply_text(&response)),
            Ok(Err(error)) => {
                if error.is_response() {
                    self.reset_pool();
                }
                Err(classify(&error))
            }
            Err(_elapsed) => {
                self.reset_pool();
                Err(MailerError::Transient(format!(
                    "timeout: no answer from {}:{} within {} ms",
                    self.config.url.host,
                    self.config.url.port,
                    self.config.timeout.as_millis()
                )))
            }
        }
    }
}

/// Builds the pooled lettre transport for `config`: lettre's `from_url` sets host, port,
/// TLS mode, credentials and EHLO name from the URL; the deadline and the pool come from
/// the configuration, and extra root certificates replace lettre's default TLS
/// parameters (same mode).
fn build_transport(config: &SmtpMailerConfig) -> Result<Transport, SmtpConfigError> {
    let url = &config.url;
    let mut builder = Transport::from_url(url.for_lettre())
        .map_err(|e| SmtpConfigError::Transport {
            relay: url.redacted(),
            reason: e.to_string(),
        })?
        .timeout(Some(config.timeout))
        .pool_config(
            PoolConfig::new()
                .max_size(config.pool_max_size)
                .idle_timeout(config.pool_idle_timeout),
        );
    if !config.extra_root_certificates.is_empty() {
        let parameters = tls_parameters(config)?;
        builder = match url.security {
            SmtpSecurity::Plain => builder,
            SmtpSecurity::StartTls => builder.tls(Tls::Required(parameters)),
            SmtpSecurity::Opportunistic => builder.tls(Tls::Opportunistic(parameters)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(parameters)),
        };
    }
    Ok(builder.build())
}

/// TLS with the bundled web PKI roots plus any extra roots; rustls with the ring
/// provider underneath.
fn tls_parameters(config: &SmtpMailerConfig) -> Result<TlsParameters, SmtpConfigError> {
    let mut builder = TlsParameters::builder(config.url.host.clone());
    for pem in &config.extra_root_certificates {
        let certificate =
            Certificate::from_pem(pem).map_err(|e| SmtpConfigError::Certificate(e.to_string()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|e| SmtpConfigError::Tls {
        host: config.url.host.clone(),
        reason: e.to_string(),
    })
}

/// The server's reply as one line: `250 2.0.0 Ok: queued as 1234`.
fn reply_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
        .trim_end()
        .to_owned()
}

/// Maps a lettre failure onto the outbox's transient/permanent split, keeping the
/// server's reply (code and text) or the transport error as the detail.
///
/// Permanent means "this mail can never go": only a refusal of the mail itself counts.
/// A refusal of the relay session (wrong credentials after a password change, STARTTLS
/// gone, a command the relay does not take) says nothing about the mail and would, as
/// permanent, kill every mail queued until the operator fixes the relay: it is
/// transient, so the mail is tried again (up to its attempts) once the relay is right.
fn classify(error: &SmtpError) -> MailerError {
    let detail = match (error.status(), std::error::Error::source(error)) {
        (Some(code), Some(text)) => format!("{code} {text}"),
        (Some(code), None) => code.to_string(),
        (None, _) => error.to_string(),
    };
    if refuses_the_mail(error) {
        MailerError::Permanent(detail)
    } else {
        // 4xx, connection refused or reset, timeout, TLS handshake, unparsable reply,
        // and the relay refusing the session (see above).
        MailerError::Transient(detail)
    }
}

/// Whether the relay refuses to relay for this server at all (Postfix's `554 5.7.1 ...:
/// Relay access denied`, others' "Relaying denied"): its address is not allowed or it did
/// not authenticate, the operator's to fix, whatever the code says.
fn refuses_to_relay(error: &SmtpError) -> bool {
    let Some(text) = std::error::Error::source(error).map(|why| why.to_string().to_lowercase())
    else {
        return false;
    };
    [
        "relay access denied",
        "relaying denied",
        "relaying not allowed",
        "relay not permitted",
    ]
    .iter()
    .any(|phrase| text.contains(phrase))
}

/// Whether `error` refuses the mail itself rather than the relay session: a 5xx about
/// the mailbox or the message (55x: no such user, too large, rejected; 501: an address
/// the relay cannot parse; 521: a domain that takes no mail), or an address or content
/// this relay cannot carry (no SMTPUTF8 for a non-ASCII address). Not: 53x
/// (authentication required, too weak, credentials invalid, encryption required),
/// 500/502/503/504 (a command the relay does not take, or not now), a relay refusing to
/// relay for this server ([`refuses_to_relay`]), and the other
/// client-side failures (STARTTLS or no common authentication mechanism on the relay).
fn refuses_the_mail(error: &SmtpError) -> bool {
    if let Some(code) = error.status() {
        if !error.is_permanent() || refuses_to_relay(error) {
            return false;
        }
        return match code.category {
            Category::MailSystem => true,
            Category::Syntax | Category::Connections => code.detail == Detail::One,
            _ => false,
        };
    }
    error.is_client()
        && std::error::Error::source(error).is_some_and(|why| why.to_string().contains("non-ascii"))
}
