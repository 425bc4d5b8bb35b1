//! Real SMTP conversations with the listener (lettre as the client, plain sockets for
//! what lettre will not send): messages are stored before the 250, RCPT answers the same
//! for valid and invalid tokens, other domains are refused, the size, connection and
//! rate bounds hold, STARTTLS works with a certificate, and a message delivered twice
//! (or by many clients at once) is stored once each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::domain::{GameId, Timestamp, UserId};
use galaxy_core::ports::{InboundMailStore, MailedOrdersVerdict, OrdersDesk, OrdersDeskError};
use galaxy_core::service::mail_in::{MailInConfig, MailInPorts, MailInService};
use galaxy_ports::memory::InMemoryStores;
use galaxy_ports::system::{OsSecretGenerator, SystemClock};
use galaxy_smtp_in::{SmtpInConfig, serve};
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const DOMAIN: &str = "galaxy.test";

/// The desk is never reached: these tests only store.
struct NoDesk;

#[async_trait]
impl OrdersDesk for NoDesk {
    async fn submit_mailed_orders(
        &self,
        _: UserId,
        _: GameId,
        _: &str,
        _: Timestamp,
    ) -> Result<MailedOrdersVerdict, OrdersDeskError> {
        Err(OrdersDeskError::Unavailable("not in this test".into()))
    }

    async fn plays_in(&self, _: UserId, _: GameId) -> Result<bool, OrdersDeskError> {
        Err(OrdersDeskError::Unavailable("not in this test".into()))
    }
}

struct Server {
    port: u16,
    stores: InMemoryStores,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(tweak: impl FnOnce(&mut SmtpInConfig)) -> Server {
        let stores = InMemoryStores::new();
        let service = Arc::new(MailInService::new(
            MailInPorts {
                store: stores.mail_in.clone(),
                users: stores.users.clone(),
                mail: stores.mail.clone(),
                desk: Arc::new(NoDesk),
                clock: Arc::new(SystemClock),
                secrets: Arc::new(OsSecretGenerator),
            },
            MailInConfig {
                max_message_bytes: 4096,
                ..MailInConfig::new(DOMAIN)
            },
        ));
        let mut config = SmtpInConfig {
            hostname: "mx.galaxy.test".into(),
            max_message_bytes: 4096,
            max_connections: 50,
            client_connections: 20,
            rate_count: 1000,
            rate_window: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            session_limit: Duration::from_secs(600),
            tls: None,
        };
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, service, config, cancel.clone()));
        Server {
            port,
            stores,
            cancel,
            task,
        }
    }

    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(self.port)
            .timeout(Some(Duration::from_secs(10)))
            .build()
    }

    async fn stored(&self) -> u64 {
        let counts = self.stores.mail_in.count_inbound().await.unwrap();
        counts.iter().map(|(_, n)| n).sum()
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn message(to: &str, id: &str, body: &str) -> Message {
    Message::builder()
        .from("Ann <ann@example.com>".parse::<Mailbox>().unwrap())
        .to(to.parse::<Mailbox>().unwrap())
        .subject("orders")
        .message_id(Some(format!("<{id}@example.com>")))
        .body(body.to_owned())
        .unwrap()
}

/// Waits until a new connection to `port` is greeted with 220 (not refused with 421).
async fn eventually_greeted(port: u16) {
    let limit = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answers = dialogue(port, &[]).await;
        if answers[0].starts_with("220") {
            return;
        }
        assert!(
            std::time::Instant::now() < limit,
            "still refused: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw SMTP dialogue: each command and the answer's first line.
async fn dialogue(port: u16, commands: &[&str]) -> Vec<String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut answers = vec![lines.next_line().await.unwrap().unwrap_or_default()];
    for command in commands {
        // `RAW:` lines are data: written, no answer awaited.
        if let Some(raw) = command.strip_prefix("RAW:") {
            write.write_all(raw.as_bytes()).await.unwrap();
            write.write_all(b"\r\n").await.unwrap();
            continue;
        }
        write.write_all(command.as_bytes()).await.unwrap();
        write.write_all(b"\r\n").await.unwrap();
        if command.starts_with("EHLO") {
            // The multi-line EHLO answer: read up to its last line.
            loop {
                let line = lines.next_line().await.unwrap().unwrap_or_default();
                if !line.starts_with("250-") {
                    answers.push(line);
                    break;
                }
            }
            continue;
        }
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap_or_default();
        answers.push(line);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_stored_before_its_250_and_a_second_delivery_is_kept_once() {
    let server = Server::start(|_| {}).await;
    let transport = server.transport();
    let mail = message("orders+abcdefghijkmnpqrstu@galaxy.test", "m1", "move 1 2\n");
    let answer = transport.send(mail.clone()).await.unwrap();
    assert_eq!(answer.code().to_string(), "250");
    // Acknowledged means stored: no wait needed.
    assert_eq!(server.stored().await, 1);
    let again = transport.send(mail).await.unwrap();
    assert_eq!(again.code().to_string(), "250");
    assert_eq!(server.stored().await, 1, "the same message is kept once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcpt_answers_alike_for_any_token_and_refuses_other_domains() {
    let server = Server::start(|_| {}).await;
    let answers = dialogue(
        server.port,
        &[
            "EHLO client.example",
            "MAIL FROM:<ann@example.com>",
            "RCPT TO:<orders+abcdefghijkmnpqrstu@galaxy.test>",
            "RCPT TO:<orders+zzzzzzzzzzzzzzzzzzzz@galaxy.test>",
            "RCPT TO:<orders+bad@GALAXY.TEST>",
            "RCPT TO:<someone@elsewhere.example>",
            "QUIT",
        ],
    )
    .await;
    assert!(answers[0].starts_with("220"), "{answers:?}");
    assert_eq!(
        answers[3], answers[4],
        "valid and invalid tokens answer alike"
    );
    assert_eq!(answers[3], answers[5]);
    assert!(answers[3].starts_with("250"), "{answers:?}");
    assert!(answers[6].starts_with("550"), "no relaying: {answers:?}");
    assert!(answers[7].starts_with("221"), "{answers:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_null_reverse_path_of_bounces_and_auto_replies_is_taken() {
    use galaxy_core::domain::LeaseToken;
    use galaxy_core::domain::lease::ClaimRequest;
    use galaxy_core::ports::SecretGenerator;
    let server = Server::start(|_| {}).await;
    let answers = dialogue(
        server.port,
        &[
            "EHLO mailer.example",
            "mail from: <>",
            "RCPT TO:<orders+abcdefghijkmnpqrstu@galaxy.test>",
            "DATA",
            // The same command inside the message is the message's.
            "RAW:Subject: Undelivered\r\nMessage-ID: <bounce-1@mailer.example>\r\n\r\n\
             MAIL FROM:<>\r\nyour mail could not be delivered",
            ".",
            "QUIT",
        ],
    )
    .await;
    assert!(answers[2].starts_with("250"), "{answers:?}");
    assert!(answers[5].starts_with("250"), "{answers:?}");
    assert_eq!(server.stored().await, 1);
    let claim = ClaimRequest {
        token: LeaseToken::from_uuid(OsSecretGenerator.uuid()),
        now: chrono::Utc::now() + chrono::TimeDelta::minutes(1),
        lease: chrono::TimeDelta::minutes(1),
        limit: 10,
    };
    let stored = server.stores.mail_in.claim_inbound(&claim).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].envelope_from.as_deref(),
        Some(""),
        "the null sender"
    );
    let raw = String::from_utf8_lossy(&stored[0].raw);
    assert!(raw.contains("\r\nMAIL FROM:<>\r\n"), "{raw}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_or_unreadable_message_is_refused_and_not_stored() {
    let server = Server::start(|_| {}).await;
    let big = "x".repeat(100);
    let body = vec![big.as_str(); 60].join("\n");
    let err = server
        .transport()
        .send(message(
            "orders+abcdefghijkmnpqrstu@galaxy.test",
            "big",
            &body,
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("552"), "{err}");
    // The session goes on after the refusal: the next message on it is taken.
    let answers = dialogue(
        server.port,
        &[
            "HELO client.example",
            "MAIL FROM:<ann@example.com>",
            "RCPT TO:<orders+abcdefghijkmnpqrstu@galaxy.test>",
            "DATA",
            &format!(
                "RAW:Subject: big\r\n\r\n{}",
                vec![big.as_str(); 60].join("\r\n")
            ),
            ".",
            "RSET",
            "NOOP",
        ],
    )
    .await;
    assert!(answers[5].starts_with("552"), "{answers:?}");
    assert!(
        answers[6].starts_with("250"),
        "the session is usable again: {answers:?}"
    );
    // A bare line that is no message at all.
    let answers = dialogue(
        server.port,
        &[
            "HELO client.example",
            "MAIL FROM:<ann@example.com>",
            "RCPT TO:<orders+abcdefghijkmnpqrstu@galaxy.test>",
            "DATA",
            "RAW:not a header line at all",
            ".",
        ],
    )
    .await;
    assert!(answers.last().unwrap().starts_with("554"), "{answers:?}");
    assert_eq!(server.stored().await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_are_all_stored() {
    let server = Server::start(|_| {}).await;
    let mut sends = Vec::new();
    for i in 0..16 {
        let transport = server.transport();
        sends.push(tokio::spawn(async move {
            let mail = message(
                "orders+abcdefghijkmnpqrstu@galaxy.test",
                &format!("c{i}"),
                &format!("move {i} 2\n"),
            );
            transport.send(mail).await.map(|r| r.code().to_string())
        }));
    }
    for send in sends {
        assert_eq!(send.await.unwrap().unwrap(), "250");
    }
    assert_eq!(server.stored().await, 16);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_and_rate_bounds_per_client_hold() {
    let server = Server::start(|c| {
        c.client_connections = 2;
        c.rate_count = 2;
    })
    .await;
    // Two connections, each admitted once greeted.
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let mut lines = BufReader::new(stream).lines();
        let greeting = lines.next_line().await.unwrap().unwrap_or_default();
        assert!(greeting.starts_with("220"), "{greeting}");
        held.push(lines);
    }
    let third = dialogue(server.port, &[]).await;
    assert!(third[0].starts_with("421"), "{third:?}");
    // Their places are free again once the server saw them close.
    drop(held);
    eventually_greeted(server.port).await;
    let transport = server.transport();
    for i in 0..2 {
        let mail = message(
            "orders+abcdefghijkmnpqrstu@galaxy.test",
            &format!("r{i}"),
            "x\n",
        );
        transport.send(mail).await.unwrap();
    }
    let over = transport
        .send(message(
            "orders+abcdefghijkmnpqrstu@galaxy.test",
            "r3",
            "x\n",
        ))
        .await
        .unwrap_err();
    assert!(over.to_string().contains("450"), "{over}");
    assert_eq!(server.stored().await, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_offered_with_a_certificate_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = tokio::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=mx.galaxy.test",
            "-addext",
            "subjectAltName=DNS:mx.galaxy.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .expect("this test needs the openssl command to make a certificate");
    assert!(status.success());
    let tls = galaxy_smtp_in::load_tls(&cert, &key).unwrap();
    let server = Server::start(|c| c.tls = Some(tls)).await;
    let parameters = TlsParameters::builder("mx.galaxy.test".into())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .unwrap();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.port)
        .tls(Tls::Required(parameters))
        .timeout(Some(Duration::from_secs(10)))
        .build();
    let answer = transport
        .send(message(
            "orders+abcdefghijkmnpqrstu@galaxy.test",
            "tls",
            "move 1 2\n",
        ))
        .await
        .unwrap();
    assert_eq!(answer.code().to_string(), "250");
    assert_eq!(server.stored().await, 1);
    // Without a certificate STARTTLS is not offered.
    let plain = Server::start(|_| {}).await;
    let answers = dialogue(plain.port, &["STARTTLS"]).await;
    assert!(!answers[1].starts_with("220"), "{answers:?}");
    plain.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_limit_however_busy() {
    let server = Server::start(|c| c.session_limit = Duration::from_secs(1)).await;
    let stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    assert!(lines.next_line().await.unwrap().unwrap().starts_with("220"));
    // A line every 100 ms, well within the 10 s line timeout, for up to 20 s.
    let mut last = String::new();
    for _ in 0..200 {
        if write.write_all(b"NOOP\r\n").await.is_err() {
            break;
        }
        match lines.next_line().await {
            Ok(Some(line)) => last = line,
            _ => break,
        }
        if last.starts_with("421") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.starts_with("421 4.4.2"), "{last}");
    assert_eq!(lines.next_line().await.unwrap(), None, "closed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_closed() {
    let server = Server::start(|c| c.timeout = Duration::from_secs(1)).await;
    let stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    // Commands, and never a read: once both sockets' buffers are full of answers, the
    // session may not wait for ever to write the next one.
    let (_read, mut write) = stream.into_split();
    let chunk = b"NOOP\r\n".repeat(10_000);
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server still holds the connection");
    server.stop().await;
}
