//! Conformance suite for [`Mailer`]: a sent mail arrives intact (recipient, sender, a
//! UTF-8 subject, the text body and, when there is one, the HTML alternative, the kind
//! and language headers, one message id per mail), and every failure is classified:
//! transient when retrying may help, permanent when it cannot.
//!
//! A mailer author implements [`MailerFixture`] (a mailer, a way to read what arrived,
//! and the failures the adapter can produce) and calls [`run_all`]:
//!
//! ```rust,ignore
//! galaxy_ports::conformance::mailer::run_all(&MyFixture::start().await).await;
//! ```

use async_trait::async_trait;
use galaxy_core::domain::mail::OutgoingMail;
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::ports::{Mailer, MailerError};

use super::runtime::support::uuid;

const SUITE: &str = "mailer";

/// One mail as it arrived, decoded as a mail client would (transfer encodings undone,
/// encoded words decoded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceivedMail {
    /// The `To:` address.
    pub to: String,
    /// The `From:` header.
    pub from: String,
    /// The `Subject:` header.
    pub subject: String,
    /// The `Message-ID:` header.
    pub message_id: String,
    /// The `X-Galaxy-Kind:` header.
    pub kind: String,
    /// The `Content-Language:` header.
    pub language: String,
    /// The text part (or the whole body of a single-part mail).
    pub text: String,
    /// The HTML part, if the mail has one.
    pub html: Option<String>,
}

/// Whether a failure must be retried or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// [`MailerError::Transient`]: worth retrying.
    Transient,
    /// [`MailerError::Permanent`]: never retried.
    Permanent,
}

/// A way the adapter fails, and how the failure must be classified.
#[derive(Debug)]
pub struct FailureCase<M> {
    /// What goes wrong (for the failure message).
    pub what: String,
    /// A mailer set up to fail (an unreachable relay, an unwritable directory), or the
    /// fixture's ordinary mailer.
    pub mailer: M,
    /// The recipient of the mail sent (a relay can refuse one recipient).
    pub to: Email,
    /// How [`Mailer::send`] must fail.
    pub expected: Expected,
}

/// The test set-up of one mailer adapter.
#[async_trait]
pub trait MailerFixture: Send + Sync {
    /// The mailer under test.
    type Mailer: Mailer;

    /// A mailer delivering where [`Self::received`] reads.
    async fn mailer(&self) -> Self::Mailer;

    /// The sender every mail from [`Self::mailer`] carries (`From:`, e.g.
    /// `Galaxy <galaxy@example.org>`).
    fn from(&self) -> String;

    /// Every mail that arrived so far, oldest first, addressed to `to`.
    async fn received(&self, to: &str) -> Vec<ReceivedMail>;

    /// The failures the adapter can produce (at least one).
    async fn failures(&self) -> Vec<FailureCase<Self::Mailer>>;
}

/// Runs every case against `fixture`.
pub async fn run_all<F: MailerFixture>(fixture: &F) {
    eprintln!("conformance {SUITE}: a text and HTML mail arrives intact");
    text_and_html(fixture).await;
    eprintln!("conformance {SUITE}: a text-only mail arrives without an HTML part");
    text_only(fixture).await;
    eprintln!("conformance {SUITE}: failures are classified");
    failures(fixture).await;
}

/// A fresh recipient, so cases never see each other's mail.
fn recipient() -> Email {
    match Email::parse(&format!("player-{}@example.org", uuid().simple())) {
        Ok(email) => email,
        Err(error) => panic!("a generated address: {error}"),
    }
}

fn mail(to: &Email, html: Option<&str>) -> OutgoingMail {
    OutgoingMail {
        idempotency_key: format!("notification:{}", uuid()),
        to: to.clone(),
        kind: "turn_completed".to_owned(),
        locale: Locale::parse("de").unwrap_or_default(),
        subject: "Zug 5: Bericht für Andromeda — Ünïcode ✓".to_owned(),
        text_body: "Hallo Änne,\n\nZug 5 ist gelaufen. Größe: 12 ✓\n".to_owned(),
        html_body: html.map(str::to_owned),
        extras: Default::default(),
    }
}

/// Line ends as LF and no trailing blank space: transports may differ there.
fn normal(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_owned()
}

async fn send_and_receive<F: MailerFixture>(fixture: &F, sent: &OutgoingMail) -> ReceivedMail {
    let mailer = fixture.mailer().await;
    match mailer.send(sent).await {
        Ok(reply) => assert!(!reply.trim().is_empty(), "a reply to record"),
        Err(error) => panic!("send: {error}"),
    }
    let received = fixture.received(sent.to.as_str()).await;
    assert_eq!(received.len(), 1, "exactly one mail arrived: {received:?}");
    let got = received.into_iter().next().unwrap_or_default();
    assert_eq!(got.to, sent.to.as_str());
    assert_eq!(got.from, fixture.from());
    assert_eq!(got.subject, sent.subject, "the UTF-8 subject, intact");
    assert_eq!(got.kind, sent.kind);
    assert_eq!(got.language, sent.locale.as_str());
    assert!(!got.message_id.trim().is_empty(), "a message id");
    assert_eq!(normal(&got.text), normal(&sent.text_body), "the text body");
    got
}

async fn text_and_html<F: MailerFixture>(fixture: &F) {
    let to = recipient();
    let html = "<p>Hallo <b>Änne</b> &amp; Co, Zug 5 ist gelaufen ✓</p>";
    let first = send_and_receive(fixture, &mail(&to, Some(html))).await;
    assert_eq!(first.html.as_deref().map(normal), Some(normal(html)));

    // Another mail to another recipient has another message id.
    let other = send_and_receive(fixture, &mail(&recipient(), Some(html))).await;
    assert_ne!(other.message_id, first.message_id, "one id per mail");
}

async fn text_only<F: MailerFixture>(fixture: &F) {
    let got = send_and_receive(fixture, &mail(&recipient(), None)).await;
    assert_eq!(got.html, None, "no HTML part in a text-only mail");
}

async fn failures<F: MailerFixture>(fixture: &F) {
    let cases = fixture.failures().await;
    assert!(!cases.is_empty(), "the fixture names at least one failure");
    for case in cases {
        eprintln!("conformance {SUITE}: failure: {}", case.what);
        let result = case.mailer.send(&mail(&case.to, None)).await;
        match (&result, case.expected) {
            (Err(MailerError::Transient(detail)), Expected::Transient)
            | (Err(MailerError::Permanent(detail)), Expected::Permanent) => {
                assert!(!detail.trim().is_empty(), "{}: a reason", case.what);
                assert_eq!(
                    result.as_ref().err().map(MailerError::is_permanent),
                    Some(case.expected == Expected::Permanent)
                );
            }
            _ => panic!(
                "{}: expected {:?}, got {result:?}",
                case.what, case.expected
            ),
        }
        let arrived = fixture.received(case.to.as_str()).await;
        assert!(
            arrived.is_empty(),
            "{}: nothing arrives: {arrived:?}",
            case.what
        );
    }
}
