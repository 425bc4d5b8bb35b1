//! Misbehaving engines, played by small raw TCP servers: a hang, garbage, errors,
//! oversized answers, a closed port, and bad endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use galaxy_core::ports::{EngineClient, EngineError, EngineTarget};
use galaxy_engine_http::{ClientOptions, HttpEngineClient, RequestError};
use galaxy_ports::conformance::engine::{raw_answer, raw_engine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn client(timeout_ms: u64) -> HttpEngineClient {
    HttpEngineClient::new(ClientOptions {
        request_timeout: Duration::from_millis(timeout_ms),
        turn_timeout: Duration::from_millis(timeout_ms),
        max_response_bytes: 1024,
        max_error_body_bytes: 64,
        ..ClientOptions::default()
    })
}

#[tokio::test]
async fn a_hanging_engine_times_out() {
    let url = raw_engine(None).await;
    let started = Instant::now();
    let err = client(200).run_turn(&url, 1).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Timeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn garbage_is_malformed() {
    let url = raw_engine(Some(raw_answer("200 OK", b"<html>surprise</html>"))).await;
    let err = client(2000).state(&url).await.unwrap_err();
    assert!(matches!(err, EngineError::Malformed(_)), "{err:?}");
    // Valid JSON of the wrong shape is malformed too.
    let url = raw_engine(Some(raw_answer("200 OK", br#"{"turn": "three"}"#))).await;
    let err = client(2000).run_turn(&url, 1).await.unwrap_err();
    assert!(matches!(err, EngineError::Malformed(_)), "{err:?}");
    let url = raw_engine(Some(raw_answer("200 OK", br#"{"race": "A"}"#))).await;
    let err = client(2000).report(&url, "A", 0).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Malformed(_)),
        "a report without text: {err:?}"
    );
    let url = raw_engine(Some(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec())).await;
    let err = client(2000).healthz(&url).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Transport { .. }),
        "not HTTP at all: {err:?}"
    );
    // The text says why, not only the client's kind of error.
    let told = err.to_string();
    assert!(told.contains("(SendRequest): "), "{told}");
    assert!(
        told.to_lowercase().contains("invalid http version"),
        "{told}"
    );
}

#[tokio::test]
async fn an_error_status_keeps_a_truncated_body() {
    let url = raw_engine(Some(raw_answer(
        "500 Internal Server Error",
        br#"{"error": "boom"}"#,
    )))
    .await;
    let err = client(2000).healthz(&url).await.unwrap_err();
    let EngineError::Status { status, body } = err else {
        panic!("{err:?}")
    };
    assert_eq!((status, body.as_str()), (500, r#"{"error": "boom"}"#));
    let long = vec![b'x'; 10_000];
    let url = raw_engine(Some(raw_answer("503 Service Unavailable", &long))).await;
    let err = client(2000).state(&url).await.unwrap_err();
    let EngineError::Status { status, body } = err else {
        panic!("{err:?}")
    };
    assert_eq!(status, 503);
    assert!(body.len() < 100 && body.ends_with("[truncated]"), "{body}");
}

#[tokio::test]
async fn an_oversized_answer_is_malformed_with_or_without_a_length() {
    let big = format!(
        r#"{{"turn": 1, "finished": false, "pad": "{}"}}"#,
        "y".repeat(5000)
    );
    let url = raw_engine(Some(raw_answer("200 OK", big.as_bytes()))).await;
    let err = client(2000).state(&url).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Malformed(m) if m.contains("1024")),
        "{err:?}"
    );
    // Chunked, so only counting the bytes can catch it.
    let mut chunked =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for _ in 0..10 {
        chunked.extend_from_slice(format!("200\r\n{}\r\n", "z".repeat(512)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let url = raw_engine(Some(chunked)).await;
    let err = client(2000).state(&url).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Malformed(m) if m.contains("1024")),
        "{err:?}"
    );
}

/// Reads one request head from `socket`; false when the peer closed first.
async fn read_head(socket: &mut tokio::net::TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_engine_is_retried_once_on_a_fresh_one() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = EngineTarget::anonymous(format!("http://{}", listener.local_addr().unwrap()));
    let state = br#"{"turn": 3, "finished": false, "races": []}"#;
    let keep_alive = {
        let mut bytes =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", state.len()).into_bytes();
        bytes.extend_from_slice(state);
        bytes
    };
    let server = tokio::spawn(async move {
        // First connection: one answer, kept alive, then closed on the next request
        // without an answer (as a restarting engine would).
        let (mut socket, _) = listener.accept().await.unwrap();
        assert!(read_head(&mut socket).await);
        socket.write_all(&keep_alive).await.unwrap();
        assert!(read_head(&mut socket).await);
        drop(socket);
        // The retry arrives on a new connection.
        let (mut socket, _) = listener.accept().await.unwrap();
        assert!(read_head(&mut socket).await);
        socket.write_all(&keep_alive).await.unwrap();
    });
    let client = client(2000);
    assert_eq!(client.state(&url).await.unwrap().turn, 3);
    assert_eq!(client.state(&url).await.unwrap().turn, 3);
    server.await.unwrap();
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = client(2000)
        .healthz(&EngineTarget::anonymous(format!("http://{addr}")))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn bad_endpoints_are_errors_not_panics() {
    let client = client(2000);
    for bad in [
        "",
        "not a url",
        "https://127.0.0.1:1",
        "http://",
        "127.0.0.1:8080",
        "http://h:1/?x",
    ] {
        let bad = EngineTarget::anonymous(bad);
        let err = client.healthz(&bad).await.unwrap_err();
        let EngineError::InvalidRequest { source } = err else {
            panic!("{bad:?}: {err:?}")
        };
        let request = source.downcast_ref::<RequestError>();
        assert!(
            matches!(request, Some(RequestError::InvalidEndpoint { .. })),
            "{bad:?}: {source}"
        );
        assert!(client.state(&bad).await.is_err());
    }
}

#[tokio::test]
async fn an_engine_that_does_not_say_its_contract_is_healthy_as_version_one() {
    let url = raw_engine(Some(raw_answer("200 OK", b"ok"))).await;
    let health = client(2000).health(&url).await.unwrap();
    assert_eq!(health.contract, None);
    assert_eq!(health.contract_or_v1(), "1");
    client(2000).healthz(&url).await.unwrap();
}
