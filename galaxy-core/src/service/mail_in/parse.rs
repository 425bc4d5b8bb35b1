//! Reading a received message: who sent it, to which addresses, whether a machine sent
//! it, and its orders text (the text/plain part, or the HTML part turned to text, with
//! quotes, signature and client noise removed; charsets and transfer encodings decoded by
//! `mail-parser`). Pure and total: any bytes give a [`ParsedMessage`] or a
//! [`ParseError`], never a panic (a proptest and fixtures from common clients check it).

use mail_parser::{HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::clean::{BodyKind, html_text, orders_text, unflow};
use crate::domain::user::Email;

/// Why a message can never be taken (the sendmail `EX_DATAERR` answer: do not retry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing at all was received.
    #[error("the message is empty")]
    Empty,
    /// Larger than the configured bound.
    #[error("the message has {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// Not an RFC 5322 message: no header could be read.
    #[error("not an RFC 5322 message: no header could be read")]
    NotAMessage,
}

/// What processing needs from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    /// The Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The `From` address, when it is one valid address.
    pub from: Option<Email>,
    /// Every address the message was sent to (`To`, `Cc`, `Delivered-To`,
    /// `X-Original-To`), lower-cased as written.
    pub recipients: Vec<String>,
    /// The subject (decoded), empty when absent.
    pub subject: String,
    /// The thread so far (`References`, else `In-Reply-To`), oldest first, for the
    /// reply's `References`.
    pub references: Vec<String>,
    /// Why the message is an automatic one (auto-reply, bounce, list mail), if it is.
    pub automated: Option<&'static str>,
    /// The orders: the body's own text, cleaned.
    pub orders: String,
}

/// Reads `raw`; `max` bounds its size. `null_return_path` is true when the envelope
/// sender was `<>` (a bounce).
pub fn parse_message(
    raw: &[u8],
    max: usize,
    null_return_path: bool,
) -> Result<ParsedMessage, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if raw.len() > max {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            max,
        });
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::NotAMessage)?;
    if message.headers().is_empty() {
        return Err(ParseError::NotAMessage);
    }
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(|a| Email::parse(a).ok());
    let automated = automated(&message, null_return_path, from.as_ref());
    let (body, kind) = body(&message);
    Ok(ParsedMessage {
        message_id: message.message_id().map(str::to_owned),
        from,
        recipients: recipients(&message),
        subject: message
            .subject()
            .map(|s| s.replace(['\r', '\n'], " "))
            .unwrap_or_default(),
        references: references(&message),
        automated,
        orders: match orders_text(&body, kind) {
            // Nothing in the body ("see attached", or none): the orders may be a text
            // file the player attached.
            orders if orders.trim().is_empty() => attached_orders(&message)
                .map(|text| orders_text(&text, BodyKind::Plain))
                .unwrap_or(orders),
            orders => orders,
        },
    })
}

/// The first attached `text/plain` file (an `orders.txt`), read as a body is: what
/// players who keep their orders in a file send, with an empty body or one line about
/// it. Not another text type (a vCard, a calendar invitation), nor a turn report of
/// ours (a forwarded turn mail, or a reply that kept its attachment).
fn attached_orders(message: &Message<'_>) -> Option<String> {
    message
        .attachments()
        .find(|part| {
            let plain = part.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("text")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("plain"))
            });
            let ours =
                |name: &str| name.starts_with(crate::worker::notification::REPORT_FILE_PREFIX);
            plain && part.attachment_name().is_some_and(|name| !ours(name))
        })
        .and_then(|part| part.text_contents())
        .map(str::to_owned)
}

/// The body to read orders from: the first text/plain part (its `format=flowed`
/// wrapping undone), else the first HTML part as text; empty when the message has neither.
fn body(message: &Message<'_>) -> (String, BodyKind) {
    let from_html = message
        .text_part(0)
        .is_some_and(|p| matches!(p.body, PartType::Html(_)));
    let kind = if from_html {
        BodyKind::Html
    } else {
        BodyKind::Plain
    };
    let text = if from_html {
        message
            .body_html(0)
            .map(|html| html_text(&html))
            .unwrap_or_default()
    } else {
        let text = message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        // RFC 3676: clients that wrap long lines say so, and how, on the part.
        let attribute = |name: &str| {
            message
                .text_part(0)
                .and_then(|p| p.content_type())
                .and_then(|ct| ct.attribute(name))
                .map(str::to_ascii_lowercase)
        };
        match attribute("format").as_deref() {
            Some("flowed") => unflow(&text, attribute("delsp").as_deref() == Some("yes")),
            _ => text,
        }
    };
    (text, kind)
}

/// Every recipient address the headers name.
fn recipients(message: &Message<'_>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for name in [HeaderName::To, HeaderName::Cc] {
        for value in message.header_values(name) {
            if let Some(address) = value.as_address() {
                all.extend(
                    address
                        .iter()
                        .filter_map(|a| a.address())
                        .map(str::to_lowercase),
                );
            }
        }
    }
    // The mail-parser crate knows `Delivered-To` by name (`HeaderName::Other` never
    // matches it); the other two it does not.
    let delivered = [
        HeaderName::DeliveredTo,
        HeaderName::Other("X-Original-To".into()),
        HeaderName::Other("Envelope-To".into()),
    ];
    for name in delivered {
        for value in message.header_values(name) {
            if let Some(text) = value.as_text() {
                all.push(text.trim().trim_matches(['<', '>']).to_lowercase());
            } else if let Some(address) = value.as_address() {
                all.extend(
                    address
                        .iter()
                        .filter_map(|a| a.address())
                        .map(str::to_lowercase),
                );
            }
        }
    }
    all.dedup();
    all
}

/// How many of a thread's Message-IDs a reply carries on.
const MAX_REFERENCES: usize = 20;

/// The thread's Message-IDs, oldest first: of a longer thread the first (its root) and the
/// newest, as RFC 5322 advises for trimming `References` (a client threads by the root
/// and the parent).
fn references(message: &Message<'_>) -> Vec<String> {
    let list = |value: &HeaderValue<'_>| -> Vec<String> {
        match value {
            HeaderValue::Text(id) => vec![id.to_string()],
            HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
            _ => Vec::new(),
        }
    };
    let mut refs = list(message.references());
    if refs.is_empty() {
        refs = list(message.in_reply_to());
    }
    if refs.len() > MAX_REFERENCES {
        let newest = refs.split_off(refs.len() - (MAX_REFERENCES - 1));
        refs.truncate(1);
        refs.extend(newest);
    }
    refs
}

/// Why a message looks automatic, so it is neither applied nor answered (no mail loops):
/// RFC 3834 `Auto-Submitted`, `Precedence: bulk/list/junk`, list headers, a null return
/// path, a delivery report, or a mailer daemon as the sender.
fn automated(
    message: &Message<'_>,
    null_return_path: bool,
    from: Option<&Email>,
) -> Option<&'static str> {
    let text = |name: &str| {
        message
            .headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if text("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        return Some("Auto-Submitted");
    }
    if text("Precedence")
        .is_some_and(|v| ["bulk", "list", "junk", "auto_reply"].contains(&v.as_str()))
    {
        return Some("Precedence");
    }
    if !message.list_id().is_empty() || text("List-Unsubscribe").is_some() {
        return Some("list mail");
    }
    if text("X-Autoreply").is_some() || text("X-Autorespond").is_some() {
        return Some("auto-reply header");
    }
    let return_path_empty =
        text("Return-Path").is_some_and(|v| v.trim_matches(['<', '>']).trim().is_empty());
    if null_return_path || return_path_empty {
        return Some("null return path");
    }
    let report = message.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    if report {
        return Some("delivery report");
    }
    let local = from.map(|f| f.as_str().split('@').next().unwrap_or_default().to_owned());
    if local.is_some_and(|l| l == "mailer-daemon" || l == "postmaster") {
        return Some("mailer daemon");
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MAX: usize = 256 * 1024;

    fn parse(raw: &str) -> ParsedMessage {
        parse_message(raw.as_bytes(), MAX, false).unwrap()
    }

    #[test]
    fn a_plain_reply_gives_sender_recipients_thread_and_orders() {
        let m = parse(
            "From: Ann <Ann@Example.COM>\r\nTo: orders+abc@galaxy.example\r\n\
             Cc: other@example.org\r\nSubject: Re: turn 3\r\nMessage-ID: <m2@example.com>\r\n\
             In-Reply-To: <m1@galaxy.example>\r\n\r\nmove 1 2\r\n\r\n> old report\r\n",
        );
        assert_eq!(m.from.unwrap().as_str(), "ann@example.com");
        assert_eq!(
            m.recipients,
            vec!["orders+abc@galaxy.example", "other@example.org"]
        );
        assert_eq!(m.message_id.as_deref(), Some("m2@example.com"));
        assert_eq!(m.references, vec!["m1@galaxy.example"]);
        assert_eq!(m.subject, "Re: turn 3");
        assert_eq!(m.automated, None);
        assert_eq!(m.orders, "move 1 2");
    }

    #[test]
    fn a_long_thread_keeps_its_root_and_newest_references() {
        let ids: Vec<String> = (1..=30).map(|i| format!("<m{i}@example.com>")).collect();
        let m = parse(&format!(
            "From: a@example.com\r\nTo: orders+abc@galaxy.example\r\n\
             References: {}\r\n\r\nmove 1 2\r\n",
            ids.join(" ")
        ));
        let mut kept = vec!["m1@example.com".to_owned()];
        kept.extend((12..=30).map(|i| format!("m{i}@example.com")));
        assert_eq!(m.references, kept);
    }

    #[test]
    fn machines_are_recognised() {
        let base = "From: a@example.com\r\nTo: orders+abc@galaxy.example\r\n";
        for (header, why) in [
            ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
            ("Precedence: bulk\r\n", "Precedence"),
            ("List-Id: <x.example.com>\r\n", "list mail"),
            ("Return-Path: <>\r\n", "null return path"),
        ] {
            let m = parse(&format!("{base}{header}\r\nhi\r\n"));
            assert_eq!(m.automated, Some(why), "{header}");
        }
        let m = parse(&format!("{base}Auto-Submitted: no\r\n\r\nhi\r\n"));
        assert_eq!(m.automated, None);
        let bounce = parse_message(format!("{base}\r\nhi\r\n").as_bytes(), MAX, true).unwrap();
        assert_eq!(bounce.automated, Some("null return path"));
        let daemon = parse("From: MAILER-DAEMON@example.com\r\n\r\nfailed\r\n");
        assert_eq!(daemon.automated, Some("mailer daemon"));
    }

    #[test]
    fn empty_huge_and_headerless_input_is_refused() {
        assert_eq!(parse_message(b"", MAX, false), Err(ParseError::Empty));
        assert_eq!(parse_message(b" \r\n", MAX, false), Err(ParseError::Empty));
        assert!(matches!(
            parse_message(&[b'a'; 100], 10, false),
            Err(ParseError::TooLarge { size: 100, max: 10 })
        ));
    }

    #[test]
    fn html_only_mail_is_read_as_text() {
        let m = parse(
            "From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <div>build_industry 4</div><div>move 3 7</div>\
             <div>On Mon, Galaxy wrote:</div><blockquote>turn report</blockquote>\r\n",
        );
        assert!(m.orders.contains("build_industry 4"), "{:?}", m.orders);
        assert!(m.orders.contains("move 3 7"), "{:?}", m.orders);
        assert!(!m.orders.contains("turn report"), "{:?}", m.orders);
    }

    #[test]
    fn eight_bit_headers_and_unknown_charsets_do_not_break_it() {
        let raw = b"From: \xc3\xa4nne@example.com\r\nSubject: Z\xfcge\r\n\
                    Content-Type: text/plain; charset=x-unknown-42\r\n\r\nmove 1 2\r\n";
        let m = parse_message(raw, MAX, false).unwrap();
        assert_eq!(m.orders, "move 1 2");
    }
}
