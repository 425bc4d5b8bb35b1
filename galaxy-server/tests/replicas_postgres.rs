//! Three replicas on one Postgres database behave as one: a logout, a permanent block
//! and a game's new status, written through one replica, are seen by the other two
//! (each with its own warm caches) within the bound of docs/operations.md. The test
//! polls up to a generous limit and prints the measured propagation time, so a slow
//! machine does not fail it; the target (under 1 s) is stated in the docs. A gRPC
//! gateway on one replica receives the push events published on the others, in the
//! log's one order, and resumes on a third with its cursor.
//!
//! Needs `DATABASE_URL` (scripts/test.sh starts a throwaway Postgres).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use galaxy_core::domain::UserId;
use galaxy_core::service::push::PushService;
use galaxy_postgres::PgStore;
use galaxy_postgres::testing::TestDatabases;
use galaxy_push_grpc::pb;
use galaxy_server::{Adapters, App, Config, Listeners};
use galaxy_smtp::FileMailer;
use lifecycle_support::*;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How long a change may take to reach every replica before the test fails: far above
/// the documented target, so only a change that never arrives fails it.
const LIMIT: Duration = Duration::from_secs(10);

const ADMIN: &str = "admin@example.org";

struct Replica {
    addr: SocketAddr,
    /// The gRPC push listener.
    grpc: SocketAddr,
    /// The replica's push service, to publish as its notification worker does.
    push: Arc<PushService>,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<bool>,
}

/// The internal token every replica shares, which gateways present.
const TOKEN: &str = "replica-test-internal-token";

/// Three replicas with `extra` settings on one fresh database, sharing one data
/// directory (and so its generated secrets and mail folder).
async fn three_replicas(
    extra: &[(&str, String)],
) -> (TestDatabases, tempfile::TempDir, Vec<Replica>) {
    let dbs = match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    };
    let options = dbs.migrated_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let store = PgStore::new(dbs.pool(options.clone()).await.unwrap());
        replicas.push(replica(store, tmp.path(), extra).await);
    }
    (dbs, tmp, replicas)
}

/// One replica: its own pool, change bus, caches and listener, on the shared database,
/// with `extra` settings on top.
async fn replica(store: PgStore, data_dir: &Path, extra: &[(&str, String)]) -> Replica {
    let mut vars = HashMap::from([
        ("GALAXY_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("GALAXY_MAIL_INTERVAL".to_owned(), "100ms".to_owned()),
        ("GALAXY_BOOTSTRAP_ADMINS".to_owned(), ADMIN.to_owned()),
        ("GALAXY_INTERNAL_TOKEN".to_owned(), TOKEN.to_owned()),
    ]);
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let config = Config::from_vars(&vars).unwrap();
    let mailer = Arc::new(FileMailer::new(data_dir.join("mail"), "galaxy@localhost"));
    let adapters = Adapters::postgres(store.clone(), mailer)
        .with_postgres_changes(&store, config.cache_bus_heartbeat)
        .await
        .unwrap()
        .with_postgres_push_log(&store, config.cache_bus_heartbeat)
        .await
        .unwrap();
    let app = App::build(config, adapters).await.unwrap();
    let push = app.push().clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = grpc_listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        let report = app
            .serve(Listeners::new(listener).with_grpc(grpc_listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        report.is_clean()
    });
    wait_ready(addr, LIMIT).await;
    Replica {
        addr,
        grpc,
        push,
        stop,
        served,
    }
}

async fn status(addr: SocketAddr, method: &str, path: &str, auth: &str, body: &str) -> u16 {
    send(addr, method, path, &[("authorization", auth)], body)
        .await
        .unwrap()
        .status
}

/// Waits until `check` holds on every replica in `addrs`; returns how long it took
/// since `since`.
async fn seen_by_all<F, Fut>(addrs: &[SocketAddr], since: Instant, what: &str, check: F) -> Duration
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = bool>,
{
    for &addr in addrs {
        eventually(LIMIT, what, || {
            let seen = check(addr);
            async move { seen.await.then_some(()) }
        })
        .await;
    }
    let took = since.elapsed();
    eprintln!("{what}: seen by every other replica after {took:?}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_see_each_others_logouts_blocks_and_games() {
    let (dbs, tmp, replicas) = three_replicas(&[("GALAXY_RUNTIME", "none".to_owned())]).await;
    let mail = tmp.path().join("mail");
    let a = replicas[0].addr;
    let others = [replicas[1].addr, replicas[2].addr];

    let admin = log_in(a, &mail, ADMIN).await;
    let ann = log_in(a, &mail, "ann@example.org").await;
    let bob = log_in(a, &mail, "bob@example.org").await;
    // Every replica caches both sessions and users (a hit from now on).
    for &addr in &others {
        for auth in [&ann, &bob] {
            assert_eq!(status(addr, "GET", "/api/v1/user/me", auth, "").await, 200);
        }
    }

    // A game created and read everywhere, then opened on A.
    let body = json!({
        "name": "Replica Cup", "min_players": 2, "max_players": 4,
        "enrollment_deadline": "2099-01-01T00:00:00Z", "turn_schedule": "0 18 * * *",
    })
    .to_string();
    let created = send(
        a,
        "POST",
        "/api/v1/user/games",
        &[("authorization", &ann)],
        &body,
    )
    .await
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let game = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/user/games/{game}");
    let game_status = |addr: SocketAddr| {
        let (path, ann) = (path.clone(), ann.clone());
        async move {
            let r = send(addr, "GET", &path, &[("authorization", &ann)], "")
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()["status"].as_str().unwrap().to_owned()
        }
    };
    for &addr in &others {
        assert_eq!(game_status(addr).await, "draft");
    }
    let opened = Instant::now();
    assert_eq!(
        status(a, "POST", &format!("{path}/open"), &ann, "").await,
        200
    );
    let game_took = seen_by_all(&others, opened, "the game opened", |addr| {
        let status = game_status(addr);
        async move { status.await == "enrollment_open" }
    })
    .await;

    // A permanent block on A ends bob's session everywhere.
    let me = send(a, "GET", "/api/v1/user/me", &[("authorization", &bob)], "")
        .await
        .unwrap();
    let bob_id = me.json()["id"].as_str().unwrap().to_owned();
    let blocked = Instant::now();
    let block = format!("/api/v1/admin/users/{bob_id}/block");
    let answer = send(
        a,
        "POST",
        &block,
        &[("authorization", &admin)],
        r#"{"permanent": true}"#,
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let block_took = seen_by_all(&others, blocked, "bob's block", |addr| {
        let bob = bob.clone();
        async move { status(addr, "GET", "/api/v1/user/me", &bob, "").await == 401 }
    })
    .await;

    // A logout on A ends ann's session everywhere.
    let logged_out = Instant::now();
    let logout = status(a, "DELETE", "/api/v1/user/sessions/current", &ann, "").await;
    assert!((200..300).contains(&logout), "logout: {logout}");
    let logout_took = seen_by_all(&others, logged_out, "ann's logout", |addr| {
        let ann = ann.clone();
        async move { status(addr, "GET", "/api/v1/user/me", &ann, "").await == 401 }
    })
    .await;
    eprintln!(
        "propagation: game {game_took:?}, block {block_took:?}, logout {logout_took:?} \
         (target under 1 s, docs/operations.md)"
    );

    for replica in replicas {
        replica.stop.send(()).unwrap();
        assert!(replica.served.await.unwrap(), "clean shutdown");
    }
    dbs.cleanup().await.unwrap();
}

/// One call to `addr` as `auth`: the status and the JSON body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: String,
    auth: String,
    body: String,
) -> (u16, Value) {
    let response = send(addr, method, &path, &[("authorization", &auth)], &body)
        .await
        .unwrap();
    (response.status, response.json())
}

/// Three replicas on one database and one Docker daemon play a whole game on a schedule
/// of a turn every two seconds: every replica's scheduler, job pool and mail worker race
/// for the same work, and each turn runs once (consecutive turns, each archived once, on
/// every replica, and the engine's last turn equal to the archive's), the start and the
/// stop are done (the record ends removed), and each mail exists once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_each_turn_job_and_mail_once() {
    if runtime_support::skip_without_docker("three_replicas_run_each_turn_job_and_mail_once") {
        return;
    }
    let mut docker = runtime_support::docker_vars();
    docker.push(("GALAXY_INSTANCE", runtime_support::unique_instance()));
    docker.push(("GALAXY_RUNTIME_INTERVAL", "100ms".to_owned()));
    let _lock = runtime_support::docker_lock(&docker).await;
    let (dbs, tmp, replicas) = three_replicas(&docker).await;
    let mail = tmp.path().join("mail");
    let addrs: [SocketAddr; 3] = [replicas[0].addr, replicas[1].addr, replicas[2].addr];
    let admin = log_in(addrs[0], &mail, ADMIN).await;
    let players = [
        (
            log_in(addrs[1], &mail, "ann@example.org").await,
            "Aldebarans",
        ),
        (
            log_in(addrs[2], &mail, "bob@example.org").await,
            "Betelgeusians",
        ),
    ];
    // An admin may schedule turns closer than the minimum period.
    let body = json!({
        "name": "Replicated", "min_players": 2, "max_players": 2,
        "enrollment_deadline": "2099-01-01T00:00:00Z",
        "turn_schedule": "*/2 * * * * *",
        "engine_settings": {"max_turns": 5},
    });
    let (status, game) = request(
        addrs[0],
        "POST",
        "/api/v1/user/games".into(),
        admin.clone(),
        body.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{game}");
    let games = format!("/api/v1/user/games/{}", game["id"].as_str().unwrap());
    assert_eq!(
        request(
            addrs[1],
            "POST",
            format!("{games}/open"),
            admin.clone(),
            String::new()
        )
        .await
        .0,
        200
    );
    for (i, (auth, race)) in players.iter().enumerate() {
        let body = json!({ "race_name": race }).to_string();
        let (status, application) = request(
            addrs[i % 3],
            "POST",
            format!("{games}/applications"),
            auth.clone(),
            body,
        )
        .await;
        assert_eq!(status, 201, "{application}");
        let approve = format!(
            "{games}/applications/{}/approve",
            application["id"].as_str().unwrap()
        );
        assert_eq!(
            request(
                addrs[(i + 1) % 3],
                "POST",
                approve,
                admin.clone(),
                String::new()
            )
            .await
            .0,
            200
        );
    }
    let (status, started) = request(
        addrs[2],
        "POST",
        format!("{games}/start"),
        admin.clone(),
        String::new(),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let finished = eventually(Duration::from_secs(120), "the game finished", || {
        let (games, admin) = (games.clone(), admin.clone());
        async move {
            let (_, view) = request(addrs[1], "GET", games, admin, String::new()).await;
            assert_ne!(view["status"], "start_failed", "{view}");
            (view["status"] == "finished").then_some(view)
        }
    })
    .await;
    assert_eq!(finished["current_turn"], 5, "{finished}");

    // Each turn once: the history is 0..=5 with no gap and no repeat, as every replica sees it.
    for i in 0..3 {
        let (_, turns) = request(
            addrs[i % 3],
            "GET",
            format!("{games}/turns"),
            players[0].0.clone(),
            String::new(),
        )
        .await;
        let numbers: Vec<u64> = turns["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["turn"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, vec![0, 1, 2, 3, 4, 5], "replica {i}");
    }
    // Each job once: one start and one stop job, each run once.
    let game_id = finished["id"].as_str().unwrap();
    let jobs = eventually(Duration::from_secs(60), "the stop job done", || {
        let admin = admin.clone();
        async move {
            let (_, record) = request(
                addrs[0],
                "GET",
                format!("/api/v1/admin/runtime/records/{game_id}"),
                admin,
                String::new(),
            )
            .await;
            (record["status"] == "removed").then_some(record)
        }
    })
    .await;
    assert_eq!(jobs["current_turn"], 5, "{jobs}");
    // Each mail once: two turn mails per player (turns 1..4 -> 4), one game-over mail.
    let sent = eventually(Duration::from_secs(30), "every mail sent", || {
        let admin = admin.clone();
        async move {
            let (_, page) = request(
                addrs[2],
                "GET",
                "/api/v1/admin/mail?limit=200".into(),
                admin,
                String::new(),
            )
            .await;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let games_mail: Vec<Value> = items
                .into_iter()
                .filter(|m| m["kind"] == "turn_completed" || m["kind"] == "game_finished")
                .collect();
            (games_mail.len() == 2 * 4 + 3 && games_mail.iter().all(|m| m["status"] == "sent"))
                .then_some(games_mail)
        }
    })
    .await;
    for who in ["ann@example.org", "bob@example.org"] {
        let turns = sent
            .iter()
            .filter(|m| m["to"] == who && m["kind"] == "turn_completed")
            .count();
        assert_eq!(turns, 4, "{who}: one mail per turn");
    }
    for replica in replicas {
        replica.stop.send(()).unwrap();
        assert!(replica.served.await.unwrap());
    }
    dbs.cleanup().await.unwrap();
}

/// A raw gateway subscription to the gRPC listener at `grpc`.
async fn subscribe(
    grpc: SocketAddr,
    gateway: &str,
    cursor: &str,
) -> tonic::Streaming<pb::PushEvent> {
    let mut client = pb::push_client::PushClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::GatewaySubscribeRequest {
        gateway_client_id: gateway.to_owned(),
        cursor: cursor.to_owned(),
    });
    request
        .metadata_mut()
        .insert("x-internal-token", TOKEN.parse().unwrap());
    client.subscribe_push(request).await.unwrap().into_inner()
}

/// The next event on `stream`, within the limit.
async fn next_event(stream: &mut tonic::Streaming<pb::PushEvent>) -> pb::PushEvent {
    tokio::time::timeout(LIMIT, stream.message())
        .await
        .expect("a push event in time")
        .unwrap()
        .expect("the stream goes on")
}

/// Publishes event `n` through `replica`'s push service, as its notification worker would.
async fn publish(replica: &Replica, n: u64) -> pb::PushEvent {
    let user = UserId::from_uuid(uuid::Uuid::from_u128(u128::from(n) + 1));
    let event = replica
        .push
        .publish_event(vec![user], "test.event", json!({ "n": n }))
        .await
        .unwrap();
    pb::PushEvent::from(&*event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_one_replica_gets_every_replicas_events_and_resumes_on_another() {
    let (dbs, _tmp, replicas) = three_replicas(&[("GALAXY_RUNTIME", "none".to_owned())]).await;
    let [a, b, c] = &replicas[..] else {
        unreachable!("three replicas")
    };
    let mut on_b = subscribe(b.grpc, "gateway-1", "").await;
    eventually(LIMIT, "the gateway subscribed to B", || async {
        (b.push.subscriber_count() == 1).then_some(())
    })
    .await;

    // Published on A and on C, received on B: in the log's one order, with the cursors
    // their publishers returned.
    let published_at = Instant::now();
    let mut published = Vec::new();
    for (n, replica) in [a, a, c, a, c].into_iter().enumerate() {
        published.push(publish(replica, n as u64).await);
    }
    let mut received = Vec::new();
    for _ in 0..3 {
        received.push(next_event(&mut on_b).await);
    }
    eprintln!(
        "push across replicas: 3 events on B after {:?}",
        published_at.elapsed()
    );
    assert_eq!(
        received,
        published[..3],
        "the same events, cursors and order"
    );

    // The gateway goes away after handling three; more events are published meanwhile.
    drop(on_b);
    for (n, replica) in [b, a].into_iter().enumerate() {
        published.push(publish(replica, 10 + n as u64).await);
    }
    // It comes back on C with its last cursor: exactly the rest, then live events.
    let cursor = received[2].cursor.clone();
    let mut on_c = subscribe(c.grpc, "gateway-1", &cursor).await;
    let mut replayed = Vec::new();
    for _ in 3..published.len() {
        replayed.push(next_event(&mut on_c).await);
    }
    assert_eq!(
        replayed,
        published[3..],
        "replayed after the cursor, in order"
    );
    let live = publish(b, 20).await;
    assert_eq!(
        next_event(&mut on_c).await,
        live,
        "then live, nothing twice"
    );

    drop(on_c);
    for replica in replicas {
        replica.stop.send(()).unwrap();
        assert!(replica.served.await.unwrap(), "clean shutdown");
    }
    dbs.cleanup().await.unwrap();
}
