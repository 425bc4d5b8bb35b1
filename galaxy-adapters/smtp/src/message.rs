//! Turning an [`OutgoingMail`] into a lettre [`Message`]: headers, a plain-text body, an
//! optional HTML alternative, and the extras of orders by e-mail (Reply-To, threading
//! headers, an attached text file). Both mailers use it: the SMTP mailer sends the message,
//! the file mailer writes lettre's RFC 5322 rendering of it ([`render_eml`]), so a `.eml`
//! file holds what SMTP would have sent.

use std::time::SystemTime;

use galaxy_core::domain::mail::{MailExtras, OutgoingMail};
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};

/// Why a mail cannot be turned into a message. Retrying cannot help: the outbox row (or
/// the sender) itself is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// lettre refused the sender mailbox (`GALAXY_MAIL_FROM`).
    #[error("invalid sender {from:?}: {reason}")]
    Sender {
        /// The value given.
        from: String,
        /// lettre's objection.
        reason: String,
    },
    /// lettre refused the recipient address.
    #[error("invalid recipient address: {0}")]
    Recipient(String),
    /// lettre refused to assemble the message.
    #[error("cannot build the message: {0}")]
    Message(String),
}

/// Renders `mail` from `from` (a mailbox such as `Galaxy <galaxy@example.org>`) dated
/// `date` as a complete RFC 5322 message with CRLF line ends: lettre's
/// [`Message::formatted`] of the very message the SMTP mailer would send (MIME, bodies
/// in the transfer encoding lettre picks, non-ASCII headers as RFC 2047 encoded words,
/// a Message-ID made from the idempotency key and the sender's domain).
pub fn render_eml(
    mail: &OutgoingMail,
    from: &str,
    date: SystemTime,
) -> Result<Vec<u8>, MessageError> {
    let from = parse_sender(from)?;
    let domain = from.email.domain().to_owned();
    Ok(build_message(mail, &from, &domain, date)?.formatted())
}

/// Whether `from` is a sender every mailer here can use (a mailbox such as `Galaxy
/// <galaxy@example.org>`), with why not: for a server's configuration check at start-up,
/// before any mail depends on it.
pub fn check_sender(from: &str) -> Result<(), MessageError> {
    parse_sender(from).map(drop)
}

/// The domain of the sender `from` (a mailbox such as `Galaxy <galaxy@example.org>`),
/// as its relay and its receivers judge it (SPF, DKIM and DMARC are per domain).
pub fn sender_domain(from: &str) -> Result<String, MessageError> {
    parse_sender(from).map(|mailbox| mailbox.email.domain().to_owned())
}

/// `from` as a mailbox.
pub(crate) fn parse_sender(from: &str) -> Result<Mailbox, MessageError> {
    from.parse()
        .map_err(|e: lettre::address::AddressError| MessageError::Sender {
            from: from.to_owned(),
            reason: e.to_string(),
        })
}

/// Builds the message for `mail` from `from`. The Message-ID is derived from the
/// idempotency key, so every attempt of one mail carries the same id and a receiving
/// system that saw an earlier attempt arrive can drop the duplicate.
pub(crate) fn build_message(
    mail: &OutgoingMail,
    from: &Mailbox,
    message_id_domain: &str,
    date: SystemTime,
) -> Result<Message, MessageError> {
    let to: lettre::Address = mail
        .to
        .as_str()
        .parse()
        .map_err(|e: lettre::address::AddressError| MessageError::Recipient(e.to_string()))?;
    let builder = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(one_line(&mail.subject))
        .message_id(Some(format!(
            "<{}@{message_id_domain}>",
            atext(&mail.idempotency_key)
        )))
        .date(date)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Galaxy-Kind"),
            atext(&mail.kind),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            atext(mail.locale.as_str()),
        ))
        // Every mail Galaxy sends is automatic (RFC 3834): an answer to a received mail
        // (orders by e-mail) is `auto-replied`, the rest `auto-generated`. Vacation
        // responders and other automata then do not answer it, so no mail loop starts
        // with the orders address its answers carry in `Reply-To`.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            if mail.extras.in_reply_to.is_some() {
                "auto-replied"
            } else {
                "auto-generated"
            }
            .to_owned(),
        ));
    let builder = with_extras(builder, &mail.extras)?;
    let text = quoted_printable(&mail.text_body)?;
    let body = match &mail.html_body {
        Some(html) => Part::Multi(MultiPart::alternative_plain_html(
            text,
            quoted_printable(html)?,
        )),
        None => Part::Single(SinglePart::plain(text)),
    };
    let built = match (&mail.extras.attachment, body) {
        (None, Part::Multi(multi)) => builder.multipart(multi),
        (None, Part::Single(single)) => builder.singlepart(single),
        (Some(file), body) => {
            let attached = Attachment::new(atext_file(&file.file_name))
                .body(quoted_printable(&file.text)?, ContentType::TEXT_PLAIN);
            let mixed = match body {
                Part::Multi(multi) => MultiPart::mixed().multipart(multi),
                Part::Single(single) => MultiPart::mixed().singlepart(single),
            };
            builder.multipart(mixed.singlepart(attached))
        }
    };
    built.map_err(|e| MessageError::Message(e.to_string()))
}

/// The body before an attachment is added.
enum Part {
    /// Text and HTML alternatives.
    Multi(MultiPart),
    /// Text only.
    Single(SinglePart),
}

/// `Reply-To`, `In-Reply-To` and `References` of the mails of orders by e-mail. The
/// message ids come from received mail, so only their `atext`, `.` and `@` survive (no
/// header injection, no folding tricks).
fn with_extras(
    builder: lettre::message::MessageBuilder,
    extras: &MailExtras,
) -> Result<lettre::message::MessageBuilder, MessageError> {
    let mut builder = builder;
    if let Some(reply_to) = &extras.reply_to {
        let address: lettre::Address = reply_to
            .as_str()
            .parse()
            .map_err(|e: lettre::address::AddressError| MessageError::Recipient(e.to_string()))?;
        builder = builder.reply_to(Mailbox::new(None, address));
    }
    if let Some(id) = extras.in_reply_to.as_deref().and_then(message_id) {
        builder = builder.in_reply_to(id);
    }
    let references: Vec<String> = extras
        .references
        .iter()
        .filter_map(|r| message_id(r))
        .collect();
    if !references.is_empty() {
        builder = builder.references(references.join(" "));
    }
    Ok(builder)
}

/// `<id>` from a Message-ID as received, keeping only safe characters; `None` when
/// nothing is left.
fn message_id(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.@".contains(*c))
        .take(250)
        .collect();
    (!kept.is_empty()).then(|| format!("<{kept}>"))
}

/// A file name without anything a header could misread.
fn atext_file(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A body in quoted-printable, whatever its language: ASCII lines (the login code's)
/// stay readable in a `.eml` file, where lettre's own choice could be base64.
fn quoted_printable(text: &str) -> Result<Body, MessageError> {
    Body::new_with_encoding(text.to_owned(), ContentTransferEncoding::QuotedPrintable)
        .map_err(|_| MessageError::Message("the body cannot be quoted-printable".to_owned()))
}

/// A header value on one line: CR and LF would let a value inject headers.
fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

/// `atext` characters only (RFC 5322), for message ids and tokens built from keys.
fn atext(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use galaxy_core::domain::user::{Email, Locale};

    fn mail(subject: &str, text: &str, html: Option<&str>) -> OutgoingMail {
        OutgoingMail {
            idempotency_key: "login-code:0190".to_owned(),
            to: Email::parse("Ann@Example.com").unwrap(),
            kind: "login_code".to_owned(),
            locale: Locale::default(),
            subject: subject.to_owned(),
            text_body: text.to_owned(),
            html_body: html.map(str::to_owned),
            extras: Default::default(),
        }
    }

    fn render(mail: &OutgoingMail, from: &str) -> String {
        String::from_utf8(render_eml(mail, from, SystemTime::UNIX_EPOCH).unwrap()).unwrap()
    }

    #[test]
    fn plain_mail_has_the_headers_and_a_readable_body() {
        let eml = render(
            &mail(
                "Your code",
                "Your Galaxy login code is 123456\n\nBye.\n",
                None,
            ),
            "Galaxy <galaxy@localhost>",
        );
        assert!(eml.contains("From: Galaxy <galaxy@localhost>\r\n"), "{eml}");
        assert!(eml.contains("\r\nTo: ann@example.com\r\n"), "{eml}");
        assert!(eml.contains("\r\nSubject: Your code\r\n"), "{eml}");
        assert!(
            eml.contains("\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n"),
            "{eml}"
        );
        assert!(
            eml.contains("Message-ID: <login-code-0190@localhost>\r\n"),
            "{eml}"
        );
        assert!(eml.contains("X-Galaxy-Kind: login_code\r\n"), "{eml}");
        assert!(
            eml.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
            "{eml}"
        );
        // The code line stays readable as text (the demo and developers read it so).
        assert!(
            eml.contains("\r\n\r\nYour Galaxy login code is 123456\r\n"),
            "{eml:?}"
        );
        assert!(
            !eml.replace("\r\n", "").contains('\n'),
            "bare LF in {eml:?}"
        );
    }

    #[test]
    fn headers_cannot_be_injected_and_unicode_is_encoded() {
        let eml = render(
            &mail("Hi\r\nBcc: evil@x.org", "x", None),
            "Gälaxy <g@localhost>",
        );
        assert!(!eml.contains("\r\nBcc:"), "{eml}");
        assert!(
            !eml.contains("Gälaxy"),
            "an encoded word, not raw UTF-8: {eml}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(eml.as_bytes())
            .unwrap();
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("Gälaxy"));
        assert_eq!(parsed.subject(), Some("Hi  Bcc: evil@x.org"));
        let long = "é".repeat(60);
        let eml = render(&mail(&long, "x", None), "g@localhost");
        assert!(eml.lines().all(|l| l.len() <= 78), "{eml}");
        let parsed = mail_parser::MessageParser::default()
            .parse(eml.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some(long.as_str()));
    }

    #[test]
    fn a_body_in_any_language_stays_quoted_printable() {
        let text = "Ваш код входа в Galaxy: 123456\n";
        let eml = render(&mail("s", text, None), "g@localhost");
        assert!(
            eml.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
            "{eml}"
        );
        assert!(eml.contains("Galaxy: 123456"), "{eml}");
        let parsed = mail_parser::MessageParser::default()
            .parse(eml.as_bytes())
            .unwrap();
        assert_eq!(parsed.body_text(0).unwrap().trim_end(), text.trim_end());
    }

    #[test]
    fn html_makes_a_multipart_alternative() {
        let eml = render(&mail("s", "text", Some("<p>html</p>")), "g@localhost");
        assert!(eml.contains("multipart/alternative;"), "{eml}");
        assert!(
            eml.contains("Content-Type: text/plain; charset=utf-8"),
            "{eml}"
        );
        assert!(
            eml.contains("Content-Type: text/html; charset=utf-8"),
            "{eml}"
        );
        assert!(eml.contains("<p>html</p>"), "{eml}");
        assert!(eml.contains("Auto-Submitted: auto-generated"), "{eml}");
    }

    #[test]
    fn a_bad_sender_or_recipient_is_refused() {
        let err = render_eml(&mail("s", "t", None), "not a mailbox", SystemTime::now());
        assert!(matches!(err, Err(MessageError::Sender { .. })), "{err:?}");
    }

    #[test]
    fn extras_become_threading_headers_and_an_attachment() {
        use galaxy_core::domain::mail::TextAttachment;
        let mut mail = mail("Re: orders", "accepted", None);
        mail.extras.reply_to = Some(Email::parse("orders+abc@galaxy.example").unwrap());
        mail.extras.in_reply_to = Some("m1@client.example\r\nBcc: x@evil".to_owned());
        mail.extras.references = vec!["m0@client.example".into(), "m1@client.example".into()];
        mail.extras.attachment = Some(TextAttachment {
            file_name: "report turn 3.txt".into(),
            text: "Planets: 4\n".into(),
        });
        let eml = render(&mail, "Galaxy <galaxy@example.com>");
        assert!(eml.contains("Auto-Submitted: auto-replied"), "{eml}");
        assert!(eml.contains("Reply-To: orders+abc@galaxy.example"), "{eml}");
        assert!(
            eml.contains("In-Reply-To: <m1@client.exampleBccx@evil>"),
            "{eml}"
        );
        assert!(!eml.contains("\r\nBcc:"), "{eml}");
        assert!(
            eml.contains("References: <m0@client.example> <m1@client.example>"),
            "{eml}"
        );
        assert!(eml.contains("multipart/mixed"), "{eml}");
        assert!(eml.contains("filename=\"report-turn-3.txt\""), "{eml}");
        assert!(eml.contains("Planets: 4"), "{eml}");
    }
}
