//! The `Mailer` conformance suite of galaxy-ports on both mailers of this crate: the SMTP
//! mailer against a real SMTP server (aiosmtpd, see tests/support), and the file mailer,
//! whose `.eml` files are read back as a mail client would (mail-parser).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::domain::user::Email;
use galaxy_ports::conformance::mailer::{
    Expected, FailureCase, MailerFixture, ReceivedMail, run_all,
};
use galaxy_smtp::{FileMailer, SmtpMailer};
use support::{FROM, Sink, free_port, mailer};

const TIMEOUT: Duration = Duration::from_secs(10);

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

/// The SMTP mailer and the sink it delivers to.
struct Smtp {
    sink: Sink,
}

#[async_trait]
impl MailerFixture for Smtp {
    type Mailer = SmtpMailer;

    async fn mailer(&self) -> SmtpMailer {
        mailer(self.sink.port, TIMEOUT)
    }

    fn from(&self) -> String {
        FROM.to_owned()
    }

    async fn received(&self, to: &str) -> Vec<ReceivedMail> {
        let header = |m: &serde_json::Value, name: &str| {
            m["headers"][name].as_str().unwrap_or_default().to_owned()
        };
        self.sink
            .messages()
            .into_iter()
            .filter(|m| m["rcpt_tos"][0] == to)
            .map(|m| ReceivedMail {
                to: header(&m, "to"),
                from: header(&m, "from"),
                subject: header(&m, "subject"),
                message_id: header(&m, "message-id"),
                kind: header(&m, "x-galaxy-kind"),
                language: header(&m, "content-language"),
                text: m["text"].as_str().unwrap_or_default().to_owned(),
                html: m["html"].as_str().map(str::to_owned),
            })
            .collect()
    }

    async fn failures(&self) -> Vec<FailureCase<SmtpMailer>> {
        vec![
            FailureCase {
                what: "a 4xx reply".to_owned(),
                mailer: self.mailer().await,
                to: email("reply-451@example.org"),
                expected: Expected::Transient,
            },
            FailureCase {
                what: "a 5xx reply".to_owned(),
                mailer: self.mailer().await,
                to: email("reply-550@example.org"),
                expected: Expected::Permanent,
            },
            FailureCase {
                what: "a refused connection".to_owned(),
                mailer: mailer(free_port(), TIMEOUT),
                to: email("ann@example.org"),
                expected: Expected::Transient,
            },
        ]
    }
}

#[tokio::test]
async fn the_smtp_mailer_conforms() {
    run_all(&Smtp {
        sink: Sink::start().await,
    })
    .await;
}

/// The file mailer and its directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }
}

#[async_trait]
impl MailerFixture for Files {
    type Mailer = FileMailer;

    async fn mailer(&self) -> FileMailer {
        FileMailer::new(self.mail_dir(), FROM)
    }

    fn from(&self) -> String {
        FROM.to_owned()
    }

    async fn received(&self, to: &str) -> Vec<ReceivedMail> {
        let Ok(entries) = std::fs::read_dir(self.mail_dir()) else {
            return Vec::new();
        };
        let mut paths: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        let parser = mail_parser::MessageParser::default();
        paths
            .iter()
            .map(|path| std::fs::read(path).unwrap())
            .filter_map(|raw| {
                let message = parser.parse(&raw).unwrap();
                let raw_header = |name: &str| {
                    message
                        .header_raw(name)
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                };
                let recipient = message.to()?.first()?.address()?.to_owned();
                // The sender as a mail client shows it: lettre may quote the display name
                // (`"Galaxy Test" <...>`), which means the same mailbox.
                let sender = message.from()?.first()?;
                let from = match (sender.name(), sender.address()) {
                    (Some(name), Some(address)) => format!("{name} <{address}>"),
                    (None, Some(address)) => address.to_owned(),
                    _ => raw_header("From"),
                };
                (recipient == to).then(|| ReceivedMail {
                    to: recipient,
                    from,
                    subject: message.subject().unwrap_or_default().to_owned(),
                    message_id: raw_header("Message-ID"),
                    kind: raw_header("X-Galaxy-Kind"),
                    language: raw_header("Content-Language"),
                    text: message.body_text(0).unwrap_or_default().into_owned(),
                    // mail-parser makes HTML of a text-only body: read real HTML parts only.
                    html: message.parts.iter().find_map(|part| match &part.body {
                        mail_parser::PartType::Html(html) => Some(html.to_string()),
                        _ => None,
                    }),
                })
            })
            .collect()
    }

    async fn failures(&self) -> Vec<FailureCase<FileMailer>> {
        // A directory that cannot be created: a file stands where it would be.
        let blocked = self.dir.path().join("blocked");
        std::fs::write(&blocked, "not a directory").unwrap();
        vec![FailureCase {
            what: "an unwritable directory".to_owned(),
            mailer: FileMailer::new(blocked.join("mail"), FROM),
            to: email("ann@example.org"),
            expected: Expected::Transient,
        }]
    }
}

#[tokio::test]
async fn the_file_mailer_conforms() {
    run_all(&Files {
        dir: tempfile::tempdir().unwrap(),
    })
    .await;
}
