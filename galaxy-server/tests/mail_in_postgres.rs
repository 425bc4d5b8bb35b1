//! Orders by e-mail on Postgres: a message acknowledged by a server that dies before
//! processing it is processed by the next server on the same database (acknowledged =
//! stored); the same message piped twice is stored once; messages piped concurrently are
//! all stored; and two replicas processing the same queue handle each message once and
//! send the one refusal of the hour once (answers captured by the aiosmtpd sink).
//!
//! Needs `DATABASE_URL` (scripts/test.sh starts a throwaway Postgres).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod sink_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use galaxy_core::domain::UserId;
use galaxy_core::domain::mail_in::InboundOutcome;
use galaxy_core::domain::user::{Email, User};
use galaxy_core::ports::{InboundMailStore, UserStore};
use galaxy_postgres::PgStore;
use galaxy_postgres::testing::TestDatabases;
use galaxy_server::{Adapters, App, Config, Listeners};
use galaxy_smtp::FileMailer;
use lifecycle_support::{eventually, send, wait_ready};
use sink_support::Sink;
use tokio::net::TcpListener;

const TOKEN: &str = "mail-in-pg-internal-token";
const PLAYER: &str = "ann@example.org";

fn config(data: &std::path::Path, sink: &Sink) -> Config {
    let vars: HashMap<String, String> = [
        ("GALAXY_DATA_DIR", data.display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
        ("GALAXY_SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port)),
        ("GALAXY_SMTP_TIMEOUT", "5s".to_owned()),
        ("GALAXY_MAIL_DOMAIN", "galaxy.test".to_owned()),
        ("GALAXY_INBOUND_INTERVAL", "100ms".to_owned()),
        ("GALAXY_INTERNAL_TOKEN", TOKEN.to_owned()),
        ("GALAXY_RUNTIME", "none".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Config::from_vars(&vars).unwrap()
}

async fn app(store: &PgStore, config: Config) -> App {
    let mailer = Arc::new(FileMailer::new(
        config.data_dir.join("mail"),
        "galaxy@localhost",
    ));
    let adapters =
        galaxy_server::delivery::with_smtp(&config, Adapters::postgres(store.clone(), mailer))
            .unwrap();
    App::build(config, adapters).await.unwrap()
}

/// A message from the player to an orders address no player has.
fn message(n: usize) -> String {
    format!(
        "From: Ann <{PLAYER}>\r\nTo: orders+abcdefghijkmnpqrstu@galaxy.test\r\n\
         Subject: orders {n}\r\nMessage-ID: <pg-{n}@example.org>\r\n\r\ndesign D{n} 1 1 1 0\r\n"
    )
}

async fn post(addr: SocketAddr, raw: &str) -> serde_json::Value {
    let response = send(
        addr,
        "POST",
        "/api/v1/internal/mail-in?sender=ann%40example.org",
        &[("x-internal-token", TOKEN)],
        raw,
    )
    .await
    .unwrap();
    assert_eq!(response.status, 202, "{}", response.body);
    response.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_mail_survives_a_crash_and_two_replicas_process_it_once() {
    let dbs = TestDatabases::from_env()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let options = dbs.migrated_database().await.unwrap();
    let store = PgStore::new(dbs.pool(options.clone()).await.unwrap());
    let sink = Sink::start().await;
    let data = tempfile::tempdir().unwrap();
    let player = User::new(
        UserId::from_uuid(uuid::Uuid::now_v7()),
        Email::parse(PLAYER).unwrap(),
        chrono::Utc::now(),
    );
    store.insert_user(&player).await.unwrap();

    // Server A takes mail and dies before any worker ran: only its router serves (no
    // worker runs that way), then it is dropped without a shutdown.
    let a = app(&store, config(data.path(), &sink)).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a_addr = listener.local_addr().unwrap();
    let router = a
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let a_task = tokio::spawn(async move { axum::serve(listener, router).await });
    let first = post(a_addr, &message(0)).await;
    assert_eq!(first["duplicate"], false);
    let again = post(a_addr, &message(0)).await;
    assert_eq!(again["duplicate"], true, "the same message is stored once");
    assert_eq!(again["id"], first["id"]);
    let concurrent: Vec<_> = (1..=8)
        .map(|n| tokio::spawn(async move { post(a_addr, &message(n)).await }))
        .collect();
    for task in concurrent {
        assert_eq!(task.await.unwrap()["duplicate"], false);
    }
    a_task.abort();
    drop(a);
    let stored: u64 = store
        .count_inbound()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(stored, 9, "every acknowledged message is in the database");
    assert!(
        sink.messages().is_empty(),
        "nothing was processed before the crash"
    );

    // Two replicas on the same database pick the queue up.
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = PgStore::new(dbs.pool(options.clone()).await.unwrap());
        let app = app(&store, config(data.path(), &sink)).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = app.shutdown_token();
        let served = tokio::spawn(app.serve(Listeners::new(listener), std::future::pending()));
        wait_ready(addr, Duration::from_secs(10)).await;
        replicas.push((stop, served));
    }
    let counts = eventually(Duration::from_secs(30), "every message processed", || {
        let store = store.clone();
        async move {
            let counts = store.count_inbound().await.unwrap();
            (!counts.iter().any(|(o, _)| o.is_none())).then_some(counts)
        }
    })
    .await;
    let count = |o: InboundOutcome| {
        counts
            .iter()
            .find(|(x, _)| *x == Some(o))
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(count(InboundOutcome::Refused), 1, "{counts:?}");
    assert_eq!(
        count(InboundOutcome::Dropped),
        8,
        "refusal already sent this hour: {counts:?}"
    );
    let refusals = eventually(Duration::from_secs(30), "the refusal at the sink", || {
        let found: Vec<_> = sink
            .messages()
            .into_iter()
            .filter(|m| m["headers"]["x-galaxy-kind"] == "orders_refused")
            .collect();
        async move { (!found.is_empty()).then_some(found) }
    })
    .await;
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["rcpt_tos"], serde_json::json!([PLAYER]));
    // Every inbound mail is settled (above), so a second refusal would be in the outbox
    // already: give the mail workers a moment to send it, then look again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = sink
        .messages()
        .into_iter()
        .filter(|m| m["headers"]["x-galaxy-kind"] == "orders_refused")
        .count();
    assert_eq!(later, 1, "one refusal an hour");
    for (stop, served) in replicas {
        stop.cancel();
        assert!(served.await.unwrap().unwrap().workers_stopped);
    }
    dbs.cleanup().await.unwrap();
}
