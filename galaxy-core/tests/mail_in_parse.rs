//! The mail-in parser on real messages from common clients (Thunderbird, Gmail web,
//! Apple Mail, mutt; 8-bit, quoted-printable and base64 bodies; text and HTML parts), and
//! a proptest over generated messages: it never panics, whatever the bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use galaxy_core::service::mail_in::{ParseError, parse_message};
use proptest::prelude::*;

const MAX: usize = 256 * 1024;
const ORDERS: &str =
    "design Raider attack=6 defence=2 speed=9 cargo=0\n# a comment\ndesign Scout2 1 1 9 0";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/mail/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).expect("fixture");
    // Placeholders sit in headers only, so byte replacement keeps encoded bodies intact.
    let text = String::from_utf8(text).expect("fixtures are UTF-8 files");
    text.replace("{{TO}}", "orders+abcdefghijkmnpqrstu@galaxy.example")
        .replace("{{FROM}}", "ann@example.com")
        .into_bytes()
}

#[test]
fn every_client_fixture_gives_the_same_orders() {
    for name in ["thunderbird.eml", "gmail.eml", "apple-mail.eml", "mutt.eml"] {
        let parsed = parse_message(&fixture(name), MAX, false).expect(name);
        assert_eq!(parsed.orders, ORDERS, "{name}");
        assert_eq!(
            parsed.from.as_ref().map(|f| f.as_str()),
            Some("ann@example.com"),
            "{name}"
        );
        assert!(
            parsed
                .recipients
                .contains(&"orders+abcdefghijkmnpqrstu@galaxy.example".to_owned()),
            "{name}: {:?}",
            parsed.recipients
        );
        assert_eq!(parsed.references, vec!["turn-3@galaxy.example"], "{name}");
        assert!(parsed.message_id.is_some(), "{name}");
        assert_eq!(parsed.automated, None, "{name}");
    }
}

#[test]
fn a_long_order_wrapped_by_a_flowed_client_comes_back_whole() {
    // Thunderbird wraps at 72 columns and marks each wrap with a trailing space
    // (RFC 3676); Apple Mail adds DelSp=yes and may split a word. Read as plain text, the
    // wrapped order would be two lines, neither of them the order.
    let raw = String::from_utf8(fixture("thunderbird.eml")).unwrap();
    let wrapped = raw.replace(
        "design Raider attack=6 defence=2",
        "design Raider attack=6 \r\ndefence=2",
    );
    assert_ne!(wrapped, raw, "the fixture has the order to wrap");
    let parsed = parse_message(wrapped.as_bytes(), MAX, false).unwrap();
    assert_eq!(parsed.orders, ORDERS);

    let delsp = wrapped
        .replace("format=flowed", "format=flowed; delsp=yes")
        .replace("attack=6 \r\ndefence=2", "attack=6 d \r\nefence=2");
    let parsed = parse_message(delsp.as_bytes(), MAX, false).unwrap();
    assert_eq!(parsed.orders, ORDERS);

    // Without format=flowed a trailing space is only a trailing space.
    let fixed = wrapped.replace("; format=flowed", "");
    let parsed = parse_message(fixed.as_bytes(), MAX, false).unwrap();
    assert!(
        parsed
            .orders
            .starts_with("design Raider attack=6\ndefence=2")
    );
}

#[test]
fn the_html_part_alone_gives_the_orders_too() {
    // Gmail's HTML alternative, as the only body.
    let raw = String::from_utf8(fixture("gmail.eml")).unwrap();
    let html_start = raw.find("Content-Type: text/html").unwrap();
    let part = &raw[html_start..];
    let part_end = part.find("\r\n--000000000000a1b2c3--").unwrap();
    let message = format!(
        "From: ann@example.com\r\nMIME-Version: 1.0\r\n{}",
        &part[..part_end]
    );
    let parsed = parse_message(message.as_bytes(), MAX, false).unwrap();
    assert_eq!(parsed.orders, ORDERS);
}

#[test]
fn the_orders_address_is_found_in_the_delivery_headers_alone() {
    // Bcc'd: the address is in no To or Cc, only where the receiving server wrote it.
    for header in ["Delivered-To", "X-Original-To", "Envelope-To"] {
        let raw = format!(
            "From: ann@example.com\r\n{header}: <Orders+abcdefghijkmnpqrstu@galaxy.example>\r\n\
             To: undisclosed-recipients:;\r\nSubject: o\r\n\r\ndesign D 1 1 1 0\r\n"
        );
        let parsed = parse_message(raw.as_bytes(), MAX, false).unwrap();
        assert!(
            parsed
                .recipients
                .contains(&"orders+abcdefghijkmnpqrstu@galaxy.example".to_owned()),
            "{header}: {:?}",
            parsed.recipients
        );
    }
}

#[test]
fn a_message_over_the_bound_is_refused() {
    let raw = fixture("mutt.eml");
    let result = parse_message(&raw, raw.len() - 1, false);
    assert!(
        matches!(result, Err(ParseError::TooLarge { .. })),
        "{result:?}"
    );
}

/// Pieces generated messages are made of: real header lines, broken MIME, odd
/// encodings, 8-bit junk.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"From: a@example.com\r\n".to_vec()),
        Just(b"To: orders+abcdefghijkmnpqrstu@galaxy.example\r\n".to_vec()),
        Just(b"Content-Type: multipart/mixed; boundary=b\r\n".to_vec()),
        Just(b"Content-Type: text/html; charset=x-nope\r\n".to_vec()),
        Just(b"Content-Transfer-Encoding: base64\r\n".to_vec()),
        Just(b"Content-Transfer-Encoding: quoted-printable\r\n".to_vec()),
        Just(b"Subject: =?utf-8?B?w6TDtsO8?= =?bogus?Q?x=ZZ?=\r\n".to_vec()),
        Just(b"--b\r\n".to_vec()),
        Just(b"--b--\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"> quoted\r\n-- \r\n".to_vec()),
        Just(b"<blockquote><div>x</blockquote></blockquote><".to_vec()),
        Just(b"=E4=\r\n=XX".to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
        "[ -~]{0,40}\r\n".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_parser_never_panics(pieces in prop::collection::vec(piece(), 0..40), null in any::<bool>()) {
        let raw: Vec<u8> = pieces.concat();
        // Any outcome is fine; a panic fails the case.
        if let Ok(parsed) = parse_message(&raw, MAX, null) {
            prop_assert!(parsed.orders.len() <= raw.len() * 4 + 16);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_message(&raw, MAX, false);
    }
}

#[test]
fn orders_in_an_attached_text_file_are_read_when_the_body_has_none() {
    let attached = |body: &str| {
        format!(
            "From: ann@example.com\r\nTo: orders+abcdefghijkmnpqrstu@galaxy.example\r\n\
             Subject: orders\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
             --b\r\nContent-Type: image/png; name=\"ship.png\"\r\n\
             Content-Disposition: attachment; filename=\"ship.png\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
             --b\r\nContent-Type: text/plain; charset=utf-8; name=\"orders.txt\"\r\n\
             Content-Disposition: attachment; filename=\"orders.txt\"\r\n\
             Content-Transfer-Encoding: 7bit\r\n\r\ndesign Raider 6 2 9 0\r\nmove 1 2\r\n\r\n--b--\r\n"
        )
    };
    // An empty body, or one with only a signature: the file's orders.
    for body in ["", "\r\n-- \r\nAnn"] {
        let parsed = parse_message(attached(body).as_bytes(), MAX, false).unwrap();
        assert_eq!(parsed.orders, "design Raider 6 2 9 0\nmove 1 2", "{body:?}");
    }
    // Orders in the body win over the file.
    let parsed = parse_message(attached("move 3 4").as_bytes(), MAX, false).unwrap();
    assert_eq!(parsed.orders, "move 3 4");
    // Not a turn report of ours (a forwarded turn mail), nor a vCard: no orders.
    for (kind, name) in [
        ("text/plain", "report-turn-3.txt"),
        ("text/vcard", "ann.vcf"),
    ] {
        let raw = format!(
            "From: ann@example.com\r\nTo: orders+abcdefghijkmnpqrstu@galaxy.example\r\n\
             Subject: Fwd: turn 3\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n\
             --b\r\nContent-Type: {kind}; charset=utf-8; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n\
             Galaxy report for Aldebarans, turn 3\r\n\r\n--b--\r\n"
        );
        let parsed = parse_message(raw.as_bytes(), MAX, false).unwrap();
        assert_eq!(parsed.orders, "", "{name}");
    }
}
