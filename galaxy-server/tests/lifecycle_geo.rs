//! Geo in the served app, over a real socket on port 0: counters written by the flusher
//! and by the shutdown drain, the user's country written in the background, and a bad
//! `GALAXY_GEOIP_DB` stopping start-up.
//!
//! The test client connects from 127.0.0.1, which no database places, so these tests
//! run the server as it runs behind a reverse proxy: `GALAXY_TRUSTED_PROXIES=127.0.0.1`
//! and the client address in `X-Forwarded-For` (81.2.69.0/24 is GB in the test database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use galaxy_core::domain::UserId;
use galaxy_core::ports::{GeoCounterStore, UserStore};
use galaxy_ports::memory::InMemoryStores;
use galaxy_server::{Adapters, App, AppError, Config, Listeners, ShutdownReport};
use galaxy_smtp::FileMailer;
use lifecycle_support::*;
use tokio::net::TcpListener;

fn test_mmdb(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../galaxy-adapters/geoip/tests/data")
        .join(name)
}

fn config(data_dir: &Path, vars: &[(&str, &str)]) -> Config {
    let mut map: HashMap<String, String> = HashMap::from([
        ("GALAXY_DATA_DIR".into(), data_dir.display().to_string()),
        ("GALAXY_MAIL_INTERVAL".into(), "100ms".into()),
    ]);
    map.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_vars(&map).unwrap()
}

/// Builds the app on in-memory stores the test keeps a handle on.
async fn build(data_dir: &Path, vars: &[(&str, &str)]) -> Result<(App, InMemoryStores), AppError> {
    let config = config(data_dir, vars);
    let stores = InMemoryStores::new();
    let mailer = FileMailer::new(data_dir.join("mail"), config.mail_from.clone());
    let adapters = Adapters::from_stores(stores.clone(), Arc::new(mailer));
    Ok((App::build(config, adapters).await?, stores))
}

struct Served {
    addr: SocketAddr,
    stores: InMemoryStores,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<ShutdownReport, AppError>>,
}

async fn serve(data_dir: &Path, flush_interval: &str) -> Served {
    let db = test_mmdb("test-country.mmdb").display().to_string();
    let vars = [
        ("GALAXY_GEOIP_DB", db.as_str()),
        ("GALAXY_TRUSTED_PROXIES", "127.0.0.1"),
        ("GALAXY_GEO_FLUSH_INTERVAL", flush_interval),
    ];
    let (app, stores) = build(data_dir, &vars).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(Listeners::new(listener), async {
        let _ = stopped.await;
    }));
    Served {
        addr,
        stores,
        stop,
        served,
    }
}

/// Logs `email` in; returns the `Authorization` value and the user's id.
async fn sign_in(served: &Served, data_dir: &Path, email: &str) -> (String, UserId) {
    let bearer = log_in(served.addr, &data_dir.join("mail"), email).await;
    let me = get_me(served.addr, &bearer, "81.2.69.10").await;
    let id = UserId::parse(me["id"].as_str().unwrap()).unwrap();
    (bearer, id)
}

/// `GET /user/me` from `client` (as the trusted proxy on 127.0.0.1 reports it).
async fn get_me(addr: SocketAddr, bearer: &str, client: &str) -> serde_json::Value {
    let headers = [("authorization", bearer), ("x-forwarded-for", client)];
    let response = send(addr, "GET", "/api/v1/user/me", &headers, "")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

async fn counts(stores: &InMemoryStores, id: UserId) -> Vec<(String, u64)> {
    stores
        .geo
        .geo_counts(id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.country, c.count))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flusher_writes_the_counters_and_the_country_follows() {
    let tmp = tempfile::tempdir().unwrap();
    let served = serve(tmp.path(), "100ms").await;
    let (bearer, id) = sign_in(&served, tmp.path(), "flushed@example.org").await;
    for _ in 0..2 {
        get_me(served.addr, &bearer, "81.2.69.10").await;
    }
    let stores = served.stores.clone();
    eventually(Duration::from_secs(10), "3 GB requests flushed", || {
        let stores = stores.clone();
        async move {
            let now = counts(&stores, id).await;
            (now == [("GB".to_owned(), 3)]).then_some(())
        }
    })
    .await;
    let country = stores.users.get_user(id).await.unwrap().country;
    assert_eq!(country, "GB", "written by the country writer");
    served.stop.send(()).unwrap();
    let report = served.served.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_the_counters_after_http() {
    let tmp = tempfile::tempdir().unwrap();
    // The flusher passes once at start, then not for an hour: only the drain writes.
    let served = serve(tmp.path(), "1h").await;
    let (bearer, id) = sign_in(&served, tmp.path(), "drained@example.org").await;
    for _ in 0..4 {
        get_me(served.addr, &bearer, "81.2.69.10").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        counts(&served.stores, id).await.is_empty(),
        "nothing flushed yet"
    );

    served.stop.send(()).unwrap();
    let report = served.served.await.unwrap().unwrap();
    assert!(report.geo_drained && report.is_clean(), "{report:?}");
    assert_eq!(counts(&served.stores, id).await, [("GB".to_owned(), 5)]);
    let user = served.stores.users.get_user(id).await.unwrap();
    assert_eq!(user.country, "GB");
}

#[tokio::test]
async fn a_bad_geoip_db_stops_start_up_naming_the_variable_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "test-country-corrupt.mmdb",
        "test-country-damaged.mmdb",
        "missing.mmdb",
    ] {
        let path = test_mmdb(name).display().to_string();
        let error = build(tmp.path(), &[("GALAXY_GEOIP_DB", path.as_str())])
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        let message = error.to_string();
        assert!(matches!(error, AppError::GeoIp(_)), "{message}");
        assert!(message.contains("GALAXY_GEOIP_DB"), "{message}");
        assert!(message.contains(name), "{message}");
    }
}
