//! The app on Postgres: served in-process (readiness with the database ping, a login that
//! survives a restart because the next process warms its caches from the database, geo
//! counters and the user's country written by the shutdown drain) and the real binary
//! migrating an empty database before it listens.
//!
//! Needs `DATABASE_URL` (scripts/test.sh starts a throwaway Postgres); each test gets its
//! own fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use galaxy_core::domain::UserId;
use galaxy_core::ports::{GeoCounterStore, UserStore};
use galaxy_postgres::PgStore;
use galaxy_postgres::testing::{DATABASE_URL, TestDatabases};
use galaxy_server::{Adapters, App, Config, Listeners};
use galaxy_smtp::FileMailer;
use lifecycle_support::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

async fn databases() -> TestDatabases {
    match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    }
}

/// Dev-like settings, with the test GeoIP database (81.2.69.0/24 is GB) and the test
/// client on 127.0.0.1 as a trusted proxy, so `X-Forwarded-For` places requests.
fn config(data_dir: &std::path::Path) -> Config {
    let mmdb = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../galaxy-adapters/geoip/tests/data/test-country.mmdb"
    );
    let vars = HashMap::from([
        ("GALAXY_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("GALAXY_MAIL_INTERVAL".to_owned(), "100ms".to_owned()),
        ("GALAXY_GEOIP_DB".to_owned(), mmdb.to_owned()),
        ("GALAXY_TRUSTED_PROXIES".to_owned(), "127.0.0.1".to_owned()),
        // These tests are about the store; games never start, so no engine runtime.
        ("GALAXY_RUNTIME".to_owned(), "none".to_owned()),
    ]);
    Config::from_vars(&vars).unwrap()
}

/// Serves an app on `store` until the returned sender fires.
async fn serve(
    store: PgStore,
    data_dir: &std::path::Path,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<bool>,
) {
    let mailer = Arc::new(FileMailer::new(data_dir.join("mail"), "galaxy@localhost"));
    let app = App::build(config(data_dir), Adapters::postgres(store, mailer))
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        let report = app
            .serve(Listeners::new(listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        report.is_clean()
    });
    (addr, stop, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_restart_through_the_warmed_cache() {
    let dbs = databases().await;
    let options = dbs.migrated_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();

    let store = PgStore::new(dbs.pool(options.clone()).await.unwrap());
    let (addr, stop, served) = serve(store, tmp.path()).await;
    assert_eq!(http_get(addr, "/readyz").await.unwrap().status, 200);
    let email = "ann@example.com";
    let issued = send(
        addr,
        "POST",
        "/api/v1/public/auth/login-codes",
        &[],
        &login_code_body(email),
    )
    .await
    .unwrap();
    assert_eq!(issued.status, 202, "{}", issued.body);
    let challenge = issued.json()["challenge_id"].as_str().unwrap().to_owned();
    let code = login_code_in(&tmp.path().join("mail"), email).await;
    let body = serde_json::json!({ "challenge_id": challenge, "code": code }).to_string();
    let session = send(addr, "POST", "/api/v1/public/auth/sessions", &[], &body)
        .await
        .unwrap();
    assert_eq!(session.status, 201, "{}", session.body);
    let bearer = format!("Bearer {}", session.json()["token"].as_str().unwrap());
    stop.send(()).unwrap();
    assert!(served.await.unwrap(), "clean shutdown");

    // A new process on the same database: the session comes back from the warm-up.
    let store = PgStore::new(dbs.pool(options.clone()).await.unwrap());
    let (addr, stop, served) = serve(store, tmp.path()).await;
    let me = send(
        addr,
        "GET",
        "/api/v1/user/me",
        &[
            ("authorization", &bearer),
            ("x-forwarded-for", "81.2.69.10"),
        ],
        "",
    )
    .await
    .unwrap();
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(me.body.contains(email), "{}", me.body);
    stop.send(()).unwrap();
    assert!(served.await.unwrap());

    // The request's geo count and the user's new country reached the database (the
    // flusher's interval had not come round: the shutdown drain wrote them).
    let user_id = UserId::parse(me.json()["id"].as_str().unwrap()).unwrap();
    let store = PgStore::new(dbs.pool(options).await.unwrap());
    let counts = store.geo_counts(user_id).await.unwrap();
    let counts: Vec<_> = counts
        .iter()
        .map(|c| (c.country.as_str(), c.count))
        .collect();
    assert_eq!(counts, [("GB", 1)]);
    assert_eq!(store.get_user(user_id).await.unwrap().country, "GB");
    store.pool().close().await;
    dbs.cleanup().await.unwrap();
}

/// `DATABASE_URL` pointed at another database of the same server.
fn url_for(database: &str) -> String {
    let url = std::env::var(DATABASE_URL).unwrap();
    let (url, query) = url
        .split_once('?')
        .map_or((url.as_str(), None), |(u, q)| (u, Some(q)));
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let base = match url[authority_start..].find('/') {
        Some(slash) => &url[..authority_start + slash],
        None => url,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_migrates_an_empty_database_then_serves_and_stops_on_sigterm() {
    let dbs = databases().await;
    let options = dbs.empty_database().await.unwrap();
    let database = options.get_database().unwrap().to_owned();
    let tmp = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_galaxy-server"))
        .arg("serve")
        .env_clear()
        .env("GALAXY_DATABASE_URL", url_for(&database))
        .env(
            "GALAXY_LOGIN_CODE_KEY",
            "lifecycle-postgres-test-login-code-key-0123456789",
        )
        .env("GALAXY_HTTP_ADDR", addr.to_string())
        .env("GALAXY_DATA_DIR", tmp.path())
        .env("GALAXY_RUNTIME", "none")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(addr, Duration::from_secs(60)).await;
    let issued = send(
        addr,
        "POST",
        "/api/v1/public/auth/login-codes",
        &[],
        &login_code_body("bob@example.com"),
    )
    .await
    .unwrap();
    assert_eq!(issued.status, 202, "{}", issued.body);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0));
    dbs.cleanup().await.unwrap();
}

/// Replicas of one database must hold the same secrets: a server whose login-code key or
/// engine secret differs from what the first server recorded refuses to start (a
/// configuration error, exit 2), naming the variable and the way out, until
/// `galaxy-cli secrets reset` forgets the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_holding_other_secrets_than_the_database_refuses_to_start() {
    use galaxy_core::ports::KeyRegistry;
    use galaxy_server::error::AppError;

    let dbs = databases().await;
    let options = dbs.migrated_database().await.unwrap();
    let pool = dbs.pool(options.clone()).await.unwrap();
    let build = |data: std::path::PathBuf| {
        let pool = pool.clone();
        async move {
            let vars = HashMap::from([
                ("GALAXY_DATA_DIR".to_owned(), data.display().to_string()),
                ("GALAXY_RUNTIME".to_owned(), "process".to_owned()),
                (
                    "GALAXY_PROCESS_ENGINES".to_owned(),
                    "reference=/bin/true".to_owned(),
                ),
            ]);
            let mailer = Arc::new(FileMailer::new(data.join("mail"), "galaxy@localhost"));
            let adapters = Adapters::postgres(PgStore::new(pool), mailer);
            App::build(Config::from_vars(&vars).unwrap(), adapters).await
        }
    };
    let refused = |result: Result<App, AppError>, variable: &str| match result {
        Ok(_) => panic!("a server holding another {variable} started"),
        Err(error) => {
            assert!(error.is_configuration(), "{error}");
            let message = error.to_string();
            assert!(
                message.starts_with(variable) && message.contains("galaxy-cli secrets reset"),
                "{message}"
            );
            message
        }
    };
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // The first server generates its secrets into its data directory and records them.
    drop(
        build(a.path().to_owned())
            .await
            .expect("the first server starts"),
    );
    // Another directory, other generated secrets: refused on the login-code key first.
    let message = refused(build(b.path().to_owned()).await, "GALAXY_LOGIN_CODE_KEY");
    let secret = std::fs::read_to_string(b.path().join("login-code-key")).unwrap();
    assert!(
        !message.contains(secret.trim()),
        "the secret is never shown"
    );
    // The same login-code key but its own engine secret: refused on that.
    std::fs::copy(
        a.path().join("login-code-key"),
        c.path().join("login-code-key"),
    )
    .unwrap();
    refused(build(c.path().to_owned()).await, "GALAXY_ENGINE_SECRET");
    // Both secrets the same (a shared directory's copy): it starts.
    std::fs::copy(
        a.path().join("engine-secret"),
        c.path().join("engine-secret"),
    )
    .unwrap();
    drop(
        build(c.path().to_owned())
            .await
            .expect("a replica holding the same secrets"),
    );
    // After the record is forgotten (`galaxy-cli secrets reset`), the next server to start
    // records its own, and the first is the one refused.
    assert_eq!(PgStore::new(pool.clone()).forget_keys().await.unwrap(), 2);
    drop(build(b.path().to_owned()).await.expect("a new record"));
    refused(build(a.path().to_owned()).await, "GALAXY_LOGIN_CODE_KEY");
    pool.close().await;
    dbs.cleanup().await.unwrap();
}
