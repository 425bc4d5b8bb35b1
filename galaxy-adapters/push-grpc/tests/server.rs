#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The gRPC server over a real socket: live events and replay, replacement, the internal
//! token, bad input, slow gateways, bounded connections and shutdown.

mod common;

use common::*;
use galaxy_core::domain::UserId;
use galaxy_core::domain::push::PushEvent;
use galaxy_push_grpc::pb;
use serde_json::json;
use tonic::Code;
use tonic::transport::Endpoint;
use uuid::Uuid;

async fn publish(service: &galaxy_core::service::push::PushService, n: u64) -> PushEvent {
    let user = UserId::from_uuid(Uuid::from_u128(u128::from(n) + 1));
    let event = service
        .publish_event(vec![user], "test.event", json!({ "n": n }))
        .await
        .unwrap();
    (*event).clone()
}

#[tokio::test]
async fn streams_live_events_and_replays_from_a_cursor() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let mut client = raw_client(server.addr).await;
    let mut live = client
        .subscribe_push(request("gw-live", "", Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();

    let mut published = Vec::new();
    for n in 0..3 {
        published.push(publish(&service, n).await);
    }
    for expected in &published {
        let wire = within(live.message()).await.unwrap().unwrap();
        assert_eq!(wire, pb::PushEvent::from(expected));
        // The wire carries microseconds.
        let micros = expected.occurred_at.timestamp_micros();
        let expected = PushEvent {
            occurred_at: chrono::DateTime::from_timestamp_micros(micros).unwrap(),
            ..expected.clone()
        };
        assert_eq!(PushEvent::try_from(wire).unwrap(), expected);
    }

    let cursor = published[0].cursor.to_string();
    let mut replay = client
        .subscribe_push(request("gw-replay", &cursor, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    let later = publish(&service, 3).await;
    for expected in published[1..].iter().chain([&later]) {
        let wire = within(replay.message()).await.unwrap().unwrap();
        assert_eq!(wire.event_id, expected.event_id.to_string());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_second_subscription_with_the_same_id_aborts_the_first() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let mut client = raw_client(server.addr).await;
    let mut first = client
        .subscribe_push(request("gw-1", "", Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    let mut second = client
        .subscribe_push(request("gw-1", "", Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();

    let status = within(first.message()).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let event = publish(&service, 0).await;
    let wire = within(second.message()).await.unwrap().unwrap();
    assert_eq!(wire.event_id, event.event_id.to_string());
    assert_eq!(service.subscriber_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthenticated() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let mut client = raw_client(server.addr).await;
    for token in [
        None,
        Some("wrong"),
        Some(""),
        Some("internal-secret-token "),
    ] {
        let status = client
            .subscribe_push(request("gw-1", "", token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "token {token:?}");
    }
    assert_eq!(service.subscriber_count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_malformed_cursor_or_gateway_id_is_an_invalid_argument() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let mut client = raw_client(server.addr).await;
    let long_id = "g".repeat(129);
    for (gateway, cursor) in [
        ("gw-1", "garbage"),
        ("gw-1", "v1.xyz.1"),
        ("gw-1", "v2.1.1"),
        ("", ""),
        ("gw 1", ""),
        (long_id.as_str(), ""),
    ] {
        let status = client
            .subscribe_push(request(gateway, cursor, Some(TOKEN)))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{gateway:?} {cursor:?}"
        );
        assert!(!status.message().is_empty());
    }
    assert_eq!(service.subscriber_count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_gateway_that_stops_reading_is_dropped_at_its_bound() {
    const BUFFER: usize = 16;
    const EVENTS: u64 = 2_000;
    let service = push_service(BUFFER);
    let server = TestServer::start(service.clone()).await;
    // A small HTTP/2 window, so the client's library does not absorb megabytes for us.
    let endpoint = Endpoint::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535);
    let mut client = raw_client_with(endpoint).await;
    let mut slow = client
        .subscribe_push(request("gw-slow", "", Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();

    // About 1 KiB per event; the gateway reads nothing while they are published.
    let filler = "x".repeat(1024);
    let mut max_queued = 0;
    for n in 0..EVENTS {
        service
            .publish_event(vec![], "test.bulk", json!({ "n": n, "filler": filler }))
            .await
            .unwrap();
        max_queued = max_queued.max(service.queued());
        assert!(service.queued() <= BUFFER, "queued {}", service.queued());
        if n % 64 == 0 {
            // Let the server write what flow control allows.
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    assert_eq!(max_queued, BUFFER, "the queue filled before the drop");
    eventually(|| service.subscriber_count() == 0).await;
    assert_eq!((service.lagged_total(), service.queued()), (1, 0));

    // What was already in flight arrives in order, then the stream ends.
    let mut received = 0u64;
    let status = loop {
        match within(slow.message()).await {
            Ok(Some(event)) => {
                let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap();
                assert_eq!(payload["n"], received);
                received += 1;
            }
            Ok(None) => panic!("stream closed without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(received > 0 && received < EVENTS, "received {received}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_unavailable() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let mut client = raw_client(server.addr).await;
    let mut stream = client
        .subscribe_push(request("gw-1", "", Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    let stopping = tokio::spawn(server.stop());
    let status = within(stream.message()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    within(stopping).await.unwrap();
    eventually(|| service.subscriber_count() == 0).await;
}

/// Reads until the server closes the connection; the bytes it sent first.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match within(stream.read(&mut buf)).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn connections_are_bounded_and_silent_ones_closed_after_the_handshake_timeout() {
    let service = push_service(64);
    let server = TestServer::start_with(service.clone(), |s| {
        s.with_connection_limits(2, std::time::Duration::from_secs(2))
    })
    .await;
    let connect = || tokio::net::TcpStream::connect(server.addr);
    // Two connections that never begin HTTP/2 hold both places...
    let mut silent = [connect().await.unwrap(), connect().await.unwrap()];
    // ...so a third is closed at once, before HTTP/2 (the server's SETTINGS) begins.
    let mut third = connect().await.unwrap();
    assert_eq!(until_closed(&mut third).await, Vec::<u8>::new());
    // The silent ones are served (the server's SETTINGS), then closed once the
    // handshake timeout lapses without the client's preface.
    for stream in &mut silent {
        assert!(!until_closed(stream).await.is_empty());
    }
    // Their places are free again: a gateway subscribes.
    let mut client = raw_client(server.addr).await;
    let _live = client
        .subscribe_push(request("gw-after", "", Some(TOKEN)))
        .await
        .unwrap();
    assert_eq!(service.subscriber_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_without_an_authorised_call_is_closed_after_the_handshake_timeout() {
    use tokio::io::AsyncWriteExt;
    let service = push_service(64);
    let server = TestServer::start_with(service.clone(), |s| {
        s.with_connection_limits(4, std::time::Duration::from_secs(1))
    })
    .await;
    // HTTP/2 begun (the preface, an empty SETTINGS frame), then no call at all: the
    // keepalive would keep it open for good; the listener closes it (`until_closed`
    // fails the test if it stays open).
    let mut idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    idle.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let served = until_closed(&mut idle).await;
    assert!(!served.is_empty(), "HTTP/2 began before the close");

    // A gateway whose call was authorised stays past the timeout, and is served.
    let mut client = raw_client(server.addr).await;
    let mut live = client
        .subscribe_push(request("gw-kept", "", Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let event = publish(&service, 1).await;
    let wire = within(live.message()).await.unwrap().unwrap();
    assert_eq!(wire, pb::PushEvent::from(&event));
    server.stop().await;
}
