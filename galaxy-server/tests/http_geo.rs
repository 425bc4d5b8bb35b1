//! Geo through the bearer extractor, in-process: each authenticated request is counted
//! under the country of its client address (as `ConnectInfo` reports it, or as a trusted
//! proxy's `X-Forwarded-For` does), the counts reach the store on a flush, and a changed
//! country is written to the user off the request path. The client address is set on the
//! request directly, so real countries of the test database can be used; the served app
//! (real socket, flusher, shutdown drain) is in `lifecycle_geo.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::Method;
use galaxy_core::domain::UserId;
use galaxy_core::ports::{GeoCounterStore, UserStore};
use galaxy_server::http::client_ip::TrustedProxies;
use http_support::{Call, Login, Options, TestApp};

/// The small MaxMind database of galaxy-geoip's tests (81.2.69.0/24 is GB, 2001:218::/32
/// JP; see scripts/make-test-mmdb.py).
fn test_mmdb(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../galaxy-adapters/geoip/tests/data")
        .join(name)
}

fn with_geoip(trusted_proxies: &str) -> TestApp {
    TestApp::with(Options {
        geoip_db: Some(test_mmdb("test-country.mmdb")),
        trusted_proxies: TrustedProxies::parse(trusted_proxies).unwrap(),
        ..Options::default()
    })
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// `GET /user/me` as `login` from `client`, with extra headers.
async fn me_from(app: &TestApp, login: &Login, client: &str, headers: &[(&str, &str)]) {
    let mut call = Call::new(Method::GET, "/api/v1/user/me")
        .bearer(&login.token)
        .client(addr(client));
    for (name, value) in headers {
        call = call.header(name, value);
    }
    app.send(call).await.expect(200);
}

/// The user's stored counters as (country, count), highest first.
async fn counts(app: &TestApp, login: &Login) -> Vec<(String, u64)> {
    let id = UserId::parse(&login.user_id).unwrap();
    app.stores
        .geo
        .geo_counts(id)
        .await
        .unwrap()
        .into_iter()
        .map(|count| (count.country, count.count))
        .collect()
}

async fn stored_country(app: &TestApp, login: &Login) -> String {
    let id = UserId::parse(&login.user_id).unwrap();
    app.stores.users.get_user(id).await.unwrap().country
}

#[tokio::test]
async fn requests_are_counted_per_country_and_reach_the_store_on_a_flush() {
    let app = with_geoip("");
    let player = app.login("geo@example.org").await;
    for _ in 0..3 {
        me_from(&app, &player, "81.2.69.10:40000", &[]).await;
    }
    me_from(&app, &player, "[2001:218::1]:40000", &[]).await;
    // A refused request is no authenticated request: not counted.
    let stranger = Call::new(Method::GET, "/api/v1/user/me")
        .bearer("not-a-token")
        .client(addr("81.2.69.10:40000"));
    app.send(stranger).await.expect(401);

    assert_eq!(app.state.geo.pending(), 2, "(user, GB) and (user, JP)");
    assert!(
        counts(&app, &player).await.is_empty(),
        "nothing written yet"
    );
    assert_eq!(app.state.geo.flush().await.unwrap(), 2);
    assert_eq!(
        counts(&app, &player).await,
        [("GB".to_owned(), 3), ("JP".to_owned(), 1)]
    );
    assert_eq!(app.state.geo.pending(), 0);
}

#[tokio::test]
async fn a_changed_country_is_written_to_the_user_in_the_background_once() {
    let app = with_geoip("");
    let player = app.login("traveller@example.org").await;
    assert_eq!(stored_country(&app, &player).await, "unknown");

    me_from(&app, &player, "81.2.69.10:40000", &[]).await;
    me_from(&app, &player, "81.2.69.11:40000", &[]).await;
    assert_eq!(
        stored_country(&app, &player).await,
        "unknown",
        "the request path does not write"
    );
    assert_eq!(app.state.countries.queued(), 1);
    assert_eq!(app.state.countries.write_queued().await, 1);
    assert_eq!(stored_country(&app, &player).await, "GB");
    let me = app.get("/api/v1/user/me", Some(&player.token)).await;
    assert_eq!(me.json["country"], "GB");

    // Same country again: nothing to write.
    me_from(&app, &player, "81.2.69.12:40000", &[]).await;
    assert_eq!(app.state.countries.queued(), 0);
    // An address that cannot be placed keeps the known country.
    me_from(&app, &player, "10.1.2.3:40000", &[]).await;
    assert_eq!(app.state.countries.queued(), 0);
    // A new country is written again.
    me_from(&app, &player, "[2001:218::1]:40000", &[]).await;
    assert_eq!(app.state.countries.write_queued().await, 1);
    assert_eq!(stored_country(&app, &player).await, "JP");
}

#[tokio::test]
async fn private_and_loopback_clients_count_as_unknown() {
    let app = with_geoip("");
    let player = app.login("home@example.org").await;
    me_from(&app, &player, "127.0.0.1:40000", &[]).await;
    me_from(&app, &player, "192.168.1.20:40000", &[]).await;
    app.state.geo.flush().await.unwrap();
    assert_eq!(counts(&app, &player).await, [("unknown".to_owned(), 2)]);
    assert_eq!(app.state.countries.queued(), 0);
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let app = with_geoip("127.0.0.1");
    let player = app.login("proxied@example.org").await;
    let forwarded = [("x-forwarded-for", "81.2.69.10")];
    // Through the trusted proxy: the forwarded client's country.
    me_from(&app, &player, "127.0.0.1:40000", &forwarded).await;
    // A client claiming another address by itself is behind the proxy's entry.
    let spoofed = [("x-forwarded-for", "2001:218::1, 81.2.69.10")];
    me_from(&app, &player, "127.0.0.1:40000", &spoofed).await;
    // Straight from an untrusted peer, the header is ignored: 192.0.2.0/24 is a
    // documentation range, so unknown.
    me_from(&app, &player, "192.0.2.7:40000", &forwarded).await;
    app.state.geo.flush().await.unwrap();
    assert_eq!(
        counts(&app, &player).await,
        [("GB".to_owned(), 2), ("unknown".to_owned(), 1)]
    );
}

#[tokio::test]
async fn without_a_database_every_request_is_unknown() {
    let app = TestApp::new();
    let player = app.login("nowhere@example.org").await;
    me_from(&app, &player, "81.2.69.10:40000", &[]).await;
    app.state.geo.flush().await.unwrap();
    assert_eq!(counts(&app, &player).await, [("unknown".to_owned(), 1)]);
}
