//! Turning an [`OutgoingMail`] into a lettre [`Message`]: headers, a plain-text body and
//! an optional HTML alternative.

use galaxy_core::domain::mail::OutgoingMail;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::eml::atext;

/// Why a mail cannot be turned into a message. Retrying cannot help: the outbox row
/// itself is unusable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// lettre refused the recipient address.
    #[error("invalid recipient address: {0}")]
    Recipient(String),
    /// lettre refused to assemble the message.
    #[error("cannot build the message: {0}")]
    Message(String),
}

/// Builds the message for `mail` from `from`. The Message-ID is derived from the
/// idempotency key, so every attempt of one mail carries the same id and a receiving
/// system that saw an earlier attempt arrive can drop the duplicate.
pub(crate) fn build_message(
    mail: &OutgoingMail,
    from: &Mailbox,
    message_id_domain: &str,
) -> Result<Message, BuildError> {
    let to: lettre::Address = mail
        .to
        .as_str()
        .parse()
        .map_err(|e: lettre::address::AddressError| BuildError::Recipient(e.to_string()))?;
    let builder = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(one_line(&mail.subject))
        .message_id(Some(format!(
            "<{}@{message_id_domain}>",
            atext(&mail.idempotency_key)
        )))
        .date_now()
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Galaxy-Kind"),
            atext(&mail.kind),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            atext(mail.locale.as_str()),
        ));
    let built = match &mail.html_body {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text_body.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(mail.text_body.clone())),
    };
    built.map_err(|e| BuildError::Message(e.to_string()))
}

/// A header value on one line: CR and LF would let a value inject headers.
fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}
