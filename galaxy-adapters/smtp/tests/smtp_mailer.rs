//! `SmtpMailer` against a real SMTP server (aiosmtpd, started per test on a free port):
//! what arrives, and how each kind of failure is classified.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use galaxy_core::ports::{Mailer, MailerError};
use support::{Sink, SinkOptions, free_port, mail, mailer, mailer_for, test_certificates};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_mail_arrives_with_its_headers_and_both_parts() {
    let sink = Sink::start().await;
    let mailer = mailer(sink.port, TIMEOUT);
    let html = "<p>Hallo <b>ann</b>, Zug 5 ist gelaufen.</p>";
    let reply = mailer
        .send(&mail("notification:0190-ab", "ann@example.org", Some(html)))
        .await
        .unwrap();
    assert_eq!(reply, "250 2.0.0 OK queued as 1");

    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["mail_from"], "galaxy@example.org");
    assert_eq!(m["rcpt_tos"][0], "ann@example.org");
    let h = &m["headers"];
    assert_eq!(h["from"], "Galaxy Test <galaxy@example.org>");
    assert_eq!(h["to"], "ann@example.org");
    assert_eq!(
        h["subject"], "Zug 5: Bericht für Andromeda",
        "decoded from RFC 2047"
    );
    assert_eq!(h["message-id"], "<notification-0190-ab@example.org>");
    assert_eq!(h["x-galaxy-kind"], "turn_completed");
    assert_eq!(h["content-language"], "de");
    assert!(h["date"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(m["content_type"], "multipart/alternative");
    let text = m["text"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(text, "Hallo ann,\n\nZug 5 ist gelaufen.\n");
    assert_eq!(m["html"].as_str().unwrap().trim_end(), html);
}

#[tokio::test]
async fn a_text_only_mail_is_a_single_part_and_the_pool_reuses_connections() {
    let sink = Sink::start().await;
    let mailer = mailer(sink.port, TIMEOUT);
    for n in 1..=5 {
        let reply = mailer
            .send(&mail(&format!("k{n}"), "bob@example.org", None))
            .await
            .unwrap();
        assert_eq!(reply, format!("250 2.0.0 OK queued as {n}"));
        // lettre parks a used connection from a spawned task; let it run.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    let messages = sink.messages();
    assert_eq!(messages.len(), 5);
    assert_eq!(messages[0]["content_type"], "text/plain");
    assert_eq!(messages[0]["html"], serde_json::Value::Null);
    assert_eq!(messages[4]["headers"]["message-id"], "<k5@example.org>");
    let peers: std::collections::HashSet<_> =
        messages.iter().map(|m| m["peer"].to_string()).collect();
    assert_eq!(
        peers.len(),
        1,
        "one pooled connection carried all five: {peers:?}"
    );
    mailer.shutdown().await;
}

#[tokio::test]
async fn a_4xx_reply_is_transient_and_keeps_the_reply() {
    let sink = Sink::start().await;
    let err = mailer(sink.port, TIMEOUT)
        .send(&mail("k", "reply-451@example.org", None))
        .await
        .unwrap_err();
    match err {
        MailerError::Transient(detail) => {
            assert_eq!(detail, "451 4.0.0 test sink answers 451");
        }
        other => panic!("expected transient, got {other:?}"),
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_5xx_reply_is_permanent_and_keeps_the_reply() {
    let sink = Sink::start().await;
    let err = mailer(sink.port, TIMEOUT)
        .send(&mail("k", "reply-550@example.org", None))
        .await
        .unwrap_err();
    match err {
        MailerError::Permanent(detail) => {
            assert_eq!(detail, "550 5.0.0 test sink answers 550");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
}

/// Only a refusal of the mail itself (its mailbox, its content, its address) is
/// permanent; a 5xx refusing the relay session (authentication, a command the relay
/// does not take) is transient, so a relay set up wrong does not kill the queued mail.
#[tokio::test]
async fn only_a_5xx_about_the_mail_is_permanent() {
    let sink = Sink::start().await;
    let mailer = mailer(sink.port, TIMEOUT);
    for (code, permanent) in [
        (550, true),
        (552, true),
        (553, true),
        (554, true),
        (501, true),
        (521, true),
        (530, false),
        (535, false),
        (538, false),
        (500, false),
        (502, false),
        (503, false),
    ] {
        let err = mailer
            .send(&mail("k", &format!("reply-{code}@example.org"), None))
            .await
            .unwrap_err();
        assert_eq!(err.is_permanent(), permanent, "{code}: {err}");
        assert!(err.to_string().contains(&code.to_string()), "{err}");
    }
    // A 554 that refuses this server as a client (a new address not in the relay's
    // networks): the relay's set-up, not the mail.
    let err = mailer
        .send(&mail("k", "relay-denied@example.org", None))
        .await
        .unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().contains("Relay access denied"), "{err}");
}

/// A relay that does not offer STARTTLS where the URL requires it: the operator's to
/// fix, so transient (a later attempt goes out once the relay or the URL is right).
#[tokio::test]
async fn a_relay_without_starttls_where_it_is_required_is_transient() {
    let sink = Sink::start().await;
    let url = format!("smtp://127.0.0.1:{}?tls=starttls", sink.port);
    let err = mailer_for(&url, TIMEOUT, Vec::new())
        .send(&mail("k", "ann@example.org", None))
        .await
        .unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let port = free_port();
    let err = mailer(port, TIMEOUT)
        .send(&mail("k", "ann@example.org", None))
        .await
        .unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
}

#[tokio::test]
async fn a_server_that_stops_answering_times_out_as_transient_and_the_next_mail_goes_out() {
    let sink = Sink::start().await;
    let mailer = mailer(sink.port, Duration::from_secs(1));
    let started = Instant::now();
    let err = mailer
        .send(&mail("k1", "hang@example.org", None))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().contains("timeout"), "{err}");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The abandoned connection is not reused: the next mail gets a fresh one.
    let reply = mailer
        .send(&mail("k2", "ann@example.org", None))
        .await
        .unwrap();
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn starttls_with_auth_delivers_and_a_wrong_password_is_transient() {
    let (_dir, ca, cert, key) = test_certificates();
    let sink = Sink::start_with(SinkOptions {
        auth: Some("mailer:s3cret pass".to_owned()),
        tls: Some((cert, key)),
        ..SinkOptions::default()
    })
    .await;
    let roots = vec![std::fs::read(&ca).unwrap()];
    let url = format!(
        "smtp://mailer:s3cret%20pass@127.0.0.1:{}?tls=starttls",
        sink.port
    );
    let reply = mailer_for(&url, TIMEOUT, roots.clone())
        .send(&mail("tls-1", "ann@example.org", None))
        .await
        .unwrap();
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(sink.messages().len(), 1);

    let wrong = format!("smtp://mailer:nope@127.0.0.1:{}?tls=starttls", sink.port);
    let err = mailer_for(&wrong, TIMEOUT, roots)
        .send(&mail("tls-2", "ann@example.org", None))
        .await
        .unwrap_err();
    // The relay refuses the session, not the mail: tried again once the password is
    // right, rather than every queued mail dead.
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().contains("535"), "{err}");
    assert!(!err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn implicit_tls_delivers_and_an_untrusted_certificate_is_transient() {
    let (_dir, ca, cert, key) = test_certificates();
    let sink = Sink::start_with(SinkOptions {
        tls: Some((cert, key)),
        implicit_tls: true,
        ..SinkOptions::default()
    })
    .await;
    let url = format!("smtps://127.0.0.1:{}", sink.port);
    let trusted = mailer_for(&url, TIMEOUT, vec![std::fs::read(&ca).unwrap()]);
    let reply = trusted
        .send(&mail("smtps-1", "ann@example.org", Some("<p>x</p>")))
        .await
        .unwrap();
    assert!(reply.starts_with("250 "), "{reply}");

    // Only the web PKI roots: the test CA is unknown, the handshake fails.
    let err = mailer_for(&url, TIMEOUT, Vec::new())
        .send(&mail("smtps-2", "ann@example.org", None))
        .await
        .unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert_eq!(sink.messages().len(), 1);
}
