//! Turning an [`OutgoingMail`] into a lettre [`Message`]: headers, a plain-text body and
//! an optional HTML alternative. Both mailers use it: the SMTP mailer sends the message,
//! the file mailer writes lettre's RFC 5322 rendering of it ([`render_eml`]), so a `.eml`
//! file holds what SMTP would have sent.

use std::time::SystemTime;

use galaxy_core::domain::mail::OutgoingMail;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

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
        ));
    let text = quoted_printable(&mail.text_body)?;
    let built = match &mail.html_body {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            text,
            quoted_printable(html)?,
        )),
        None => builder.singlepart(SinglePart::plain(text)),
    };
    built.map_err(|e| MessageError::Message(e.to_string()))
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
    }

    #[test]
    fn a_bad_sender_or_recipient_is_refused() {
        let err = render_eml(&mail("s", "t", None), "not a mailbox", SystemTime::now());
        assert!(matches!(err, Err(MessageError::Sender { .. })), "{err:?}");
    }
}
