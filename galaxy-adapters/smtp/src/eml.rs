//! Rendering an [`OutgoingMail`] as an RFC 5322 message (MIME, UTF-8 bodies in
//! quoted-printable, non-ASCII headers as RFC 2047 encoded words), so any mail client
//! opens the files the [`FileMailer`](crate::FileMailer) writes.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use galaxy_core::domain::mail::OutgoingMail;

/// The longest line quoted-printable allows, soft break included (RFC 2045).
const QP_LINE: usize = 76;
/// The longest encoded word RFC 2047 allows.
const ENCODED_WORD: usize = 75;
/// Separates the parts of a multipart message; cannot occur in quoted-printable text,
/// whose `=` is always followed by two hex digits or a line break.
const BOUNDARY: &str = "=_galaxy_alternative_0";

/// Renders `mail` from `from` at `date` as a complete message with CRLF line ends.
pub fn render_eml(mail: &OutgoingMail, from: &str, date: DateTime<Utc>) -> String {
    let mut out = String::new();
    header(&mut out, "From", &mailbox(from));
    header(&mut out, "To", &one_line(mail.to.as_str()));
    header(&mut out, "Subject", &encode_header_text(&mail.subject));
    header(&mut out, "Date", &date.to_rfc2822());
    header(
        &mut out,
        "Message-ID",
        &format!("<{}@galaxy.localhost>", atext(&mail.idempotency_key)),
    );
    header(&mut out, "X-Galaxy-Kind", &atext(&mail.kind));
    header(
        &mut out,
        "Content-Language",
        &one_line(mail.locale.as_str()),
    );
    header(&mut out, "MIME-Version", "1.0");
    match &mail.html_body {
        None => {
            text_part_headers(&mut out, "text/plain");
            out.push_str("\r\n");
            out.push_str(&quoted_printable(&mail.text_body));
        }
        Some(html) => {
            header(
                &mut out,
                "Content-Type",
                &format!("multipart/alternative; boundary=\"{BOUNDARY}\""),
            );
            out.push_str("\r\n");
            for (kind, body) in [("text/plain", &mail.text_body), ("text/html", html)] {
                let _ = write!(out, "--{BOUNDARY}\r\n");
                text_part_headers(&mut out, kind);
                out.push_str("\r\n");
                out.push_str(&quoted_printable(body));
                out.push_str("\r\n");
            }
            let _ = write!(out, "--{BOUNDARY}--\r\n");
        }
    }
    out
}

fn header(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "{name}: {value}\r\n");
}

fn text_part_headers(out: &mut String, kind: &str) {
    header(out, "Content-Type", &format!("{kind}; charset=utf-8"));
    header(out, "Content-Transfer-Encoding", "quoted-printable");
}

/// A header value on one line: CR and LF would let a value inject headers.
fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

/// `atext` characters only (RFC 5322), for message ids and tokens built from keys.
pub(crate) fn atext(value: &str) -> String {
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

/// `Name <addr>` with the display name encoded when it is not plain ASCII.
fn mailbox(from: &str) -> String {
    let from = one_line(from);
    match from.rsplit_once('<') {
        Some((name, addr)) if !name.trim().is_empty() => {
            format!("{} <{addr}", encode_header_text(name.trim()))
        }
        _ => from,
    }
}

/// Header text as is when it is printable ASCII, else as RFC 2047 `Q` encoded words.
fn encode_header_text(text: &str) -> String {
    let text = one_line(text);
    if text.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return text;
    }
    let (prefix, suffix) = ("=?utf-8?Q?", "?=");
    let room = ENCODED_WORD - prefix.len() - suffix.len();
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let mut piece = String::new();
        if c.is_ascii_alphanumeric() {
            piece.push(c);
        } else if c == ' ' {
            piece.push('_');
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(piece, "={byte:02X}");
            }
        }
        // A character is never split between two words (RFC 2047 section 5).
        if word.len() + piece.len() > room {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&piece);
    }
    words.push(word);
    words
        .iter()
        .map(|w| format!("{prefix}{w}{suffix}"))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Quoted-printable (RFC 2045 section 6.7) with CRLF line ends: ASCII text stays
/// readable, everything else becomes `=XX`, long lines get soft breaks.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut width = 0;
        let bytes = line.as_bytes();
        for (i, &byte) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let literal = (byte == b' ' || byte == b'\t') && !last
                || (33..=126).contains(&byte) && byte != b'=';
            let piece_len = if literal { 1 } else { 3 };
            // Keep room for the `=` of a soft break.
            if width + piece_len > QP_LINE - 1 {
                out.push_str("=\r\n");
                width = 0;
            }
            if literal {
                out.push(char::from(byte));
            } else {
                let _ = write!(out, "={byte:02X}");
            }
            width += piece_len;
        }
        out.push_str("\r\n");
    }
    // `split` yields one more (empty) line after a final newline; drop its CRLF so the
    // body ends exactly as the text did.
    if text.ends_with('\n') {
        out.truncate(out.len() - 2);
    }
    out
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
        }
    }

    #[test]
    fn plain_mail_has_the_headers_and_a_readable_body() {
        let eml = render_eml(
            &mail(
                "Your code",
                "Your Galaxy login code is 123456\n\nBye.\n",
                None,
            ),
            "Galaxy <galaxy@localhost>",
            DateTime::UNIX_EPOCH,
        );
        assert!(
            eml.starts_with("From: Galaxy <galaxy@localhost>\r\n"),
            "{eml}"
        );
        assert!(eml.contains("\r\nTo: ann@example.com\r\n"), "{eml}");
        assert!(eml.contains("\r\nSubject: Your code\r\n"), "{eml}");
        assert!(
            eml.contains("\r\nDate: Thu, 1 Jan 1970 00:00:00 +0000\r\n"),
            "{eml}"
        );
        assert!(
            eml.contains("Message-ID: <login-code-0190@galaxy.localhost>"),
            "{eml}"
        );
        assert!(
            eml.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
            "{eml}"
        );
        assert!(
            eml.ends_with("\r\n\r\nYour Galaxy login code is 123456\r\n\r\nBye.\r\n"),
            "{eml:?}"
        );
        assert!(
            !eml.replace("\r\n", "").contains('\n'),
            "bare LF in {eml:?}"
        );
    }

    #[test]
    fn headers_cannot_be_injected_and_unicode_is_encoded() {
        let eml = render_eml(
            &mail("Hi\r\nBcc: evil@x.org", "x", None),
            "Gälaxy <g@localhost>",
            DateTime::UNIX_EPOCH,
        );
        assert!(!eml.contains("\r\nBcc:"), "{eml}");
        assert!(
            eml.contains("From: =?utf-8?Q?G=C3=A4laxy?= <g@localhost>"),
            "{eml}"
        );
        let long = "é".repeat(60);
        let subject = encode_header_text(&long);
        assert!(
            subject.split("\r\n ").all(|w| w.len() <= ENCODED_WORD),
            "{subject}"
        );
    }

    #[test]
    fn quoted_printable_escapes_and_wraps() {
        assert_eq!(quoted_printable("a=b é"), "a=3Db =C3=A9\r\n");
        assert_eq!(quoted_printable("trailing \n"), "trailing=20\r\n");
        let wrapped = quoted_printable(&"x".repeat(200));
        assert!(
            wrapped.split("\r\n").all(|l| l.len() <= QP_LINE),
            "{wrapped}"
        );
        assert_eq!(wrapped.replace("=\r\n", "").trim_end(), "x".repeat(200));
    }

    #[test]
    fn html_makes_a_multipart_alternative() {
        let eml = render_eml(
            &mail("s", "text", Some("<p>html</p>")),
            "g@l",
            DateTime::UNIX_EPOCH,
        );
        assert!(eml.contains("multipart/alternative; boundary=\"=_galaxy_alternative_0\""));
        assert!(eml.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(eml.contains("Content-Type: text/html; charset=utf-8"));
        assert!(eml.contains("<p>html</p>"));
        assert!(eml.ends_with("--=_galaxy_alternative_0--\r\n"));
    }
}
