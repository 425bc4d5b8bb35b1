//! The app served in-process on port 0 with dev-mode adapters: probes, the dev login flow
//! through `.eml` files, the metrics listener, and the shutdown order and its bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use galaxy_server::{App, Config, Listeners, ShutdownReport, dev};
use lifecycle_support::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A dev-mode app, with `vars` on top of a temporary data directory and a fast mail
/// worker.
async fn dev_app(data_dir: &std::path::Path, vars: &[(&str, &str)]) -> App {
    let mut map: HashMap<String, String> = HashMap::from([
        ("GALAXY_DATA_DIR".into(), data_dir.display().to_string()),
        ("GALAXY_MAIL_INTERVAL".into(), "100ms".into()),
    ]);
    map.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    dev::build(Config::from_vars(&map).unwrap()).await.unwrap()
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<Result<ShutdownReport, galaxy_server::AppError>>,
}

impl Running {
    async fn start(app: App, listeners: Listeners) -> Self {
        let addr = listeners.http_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(app.serve(listeners, async {
            let _ = stopped.await;
        }));
        Self { addr, stop, served }
    }

    async fn shutdown(self) -> ShutdownReport {
        self.stop.send(()).unwrap();
        self.served.await.unwrap().unwrap()
    }
}

async fn port_0() -> Listeners {
    Listeners::new(TcpListener::bind("127.0.0.1:0").await.unwrap())
}

/// A route that takes `delay` and counts the requests that reached it.
fn slow_route(delay: Duration, started: Arc<AtomicUsize>) -> Router {
    Router::new().route(
        "/test/slow",
        get(move || {
            started.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                "done"
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_and_readyz_turns_503_while_draining() {
    let tmp = tempfile::tempdir().unwrap();
    let app = dev_app(tmp.path(), &[]).await;
    assert!(app.state().readiness.is_ready(), "caches warm after build");
    let readiness = app.state().readiness.clone();
    let running = Running::start(app, port_0().await).await;
    assert_eq!(
        http_get(running.addr, "/healthz").await.unwrap().status,
        200
    );
    assert_eq!(http_get(running.addr, "/readyz").await.unwrap().status, 200);
    let report = running.shutdown().await;
    assert!(report.is_clean(), "{report:?}");
    assert!(readiness.draining() && !readiness.is_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_drain_delay_readyz_says_503_while_the_listener_still_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let app = dev_app(tmp.path(), &[("GALAXY_HTTP_DRAIN_DELAY", "5s")]).await;
    let running = Running::start(app, port_0().await).await;
    let addr = running.addr;
    assert_eq!(http_get(addr, "/readyz").await.unwrap().status, 200);
    let Running { stop, served, .. } = running;
    stop.send(()).unwrap();
    // A balancer's check sees the replica leave while it still answers.
    eventually(
        Duration::from_secs(5),
        "readyz 503 while serving",
        || async {
            let status = http_get(addr, "/readyz").await.ok()?.status;
            (status == 503).then_some(())
        },
    )
    .await;
    // And keeps serving through the delay (without one the listener is closed by now).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(http_get(addr, "/readyz").await.unwrap().status, 503);
    assert_eq!(http_get(addr, "/healthz").await.unwrap().status, 200);
    let report = served.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(
        http_get(addr, "/healthz").await.is_err(),
        "closed after the delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_logs_in_through_an_eml_file_as_admin() {
    let tmp = tempfile::tempdir().unwrap();
    let running = Running::start(dev_app(tmp.path(), &[]).await, port_0().await).await;
    let addr = running.addr;
    let bearer = log_in(addr, &tmp.path().join("mail"), dev::DEV_ADMIN).await;
    let me = send(
        addr,
        "GET",
        "/api/v1/user/me",
        &[("authorization", &bearer)],
        "",
    )
    .await
    .unwrap();
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(
        me.body.contains("admin"),
        "admin@localhost is an admin: {}",
        me.body
    );
    assert!(running.shutdown().await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let app = dev_app(tmp.path(), &[])
        .await
        .with_routes(slow_route(Duration::from_millis(400), started.clone()));
    let running = Running::start(app, port_0().await).await;
    let addr = running.addr;
    let requests: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { http_get(addr, "/test/slow").await }))
        .collect();
    eventually(Duration::from_secs(5), "3 requests in flight", || {
        let n = started.load(Ordering::SeqCst);
        async move { (n == 3).then_some(()) }
    })
    .await;

    let begun = Instant::now();
    running.stop.send(()).unwrap();
    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!((response.status, response.body.as_str()), (200, "done"));
    }
    let report = running.served.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(begun.elapsed() < Duration::from_secs(5));
    assert!(
        http_get(addr, "/healthz").await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_slower_than_the_drain_bound_is_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let app = dev_app(tmp.path(), &[("GALAXY_HTTP_SHUTDOWN_TIMEOUT", "300ms")])
        .await
        .with_routes(slow_route(Duration::from_secs(30), started.clone()));
    let running = Running::start(app, port_0().await).await;
    let addr = running.addr;
    let request = tokio::spawn(async move { http_get(addr, "/test/slow").await });
    eventually(Duration::from_secs(5), "the request in flight", || {
        let n = started.load(Ordering::SeqCst);
        async move { (n == 1).then_some(()) }
    })
    .await;
    let begun = Instant::now();
    let report = running.shutdown().await;
    assert!(!report.http_drained && report.workers_stopped, "{report:?}");
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "{:?}",
        begun.elapsed()
    );
    assert!(
        request.await.unwrap().is_err(),
        "the cut request gets no response"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overall_timeout_wins_over_a_longer_step_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let vars = [
        ("GALAXY_HTTP_SHUTDOWN_TIMEOUT", "20s"),
        ("GALAXY_SHUTDOWN_TIMEOUT", "300ms"),
    ];
    let app = dev_app(tmp.path(), &vars)
        .await
        .with_routes(slow_route(Duration::from_secs(30), started.clone()));
    let running = Running::start(app, port_0().await).await;
    let addr = running.addr;
    let _request = tokio::spawn(async move { http_get(addr, "/test/slow").await });
    eventually(Duration::from_secs(5), "the request in flight", || {
        let n = started.load(Ordering::SeqCst);
        async move { (n == 1).then_some(()) }
    })
    .await;
    let begun = Instant::now();
    let report = running.shutdown().await;
    assert!(!report.http_drained, "{report:?}");
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "{:?}",
        begun.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_serves_prometheus_text() {
    let tmp = tempfile::tempdir().unwrap();
    let app = dev_app(tmp.path(), &[("GALAXY_METRICS_ADDR", "127.0.0.1:0")]).await;
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let running = Running::start(app, port_0().await.with_metrics(metrics)).await;
    assert_eq!(
        http_get(running.addr, "/healthz").await.unwrap().status,
        200
    );

    // One game transition, counted by the game cache.
    let host = log_in(running.addr, &tmp.path().join("mail"), "host@example.com").await;
    let deadline = (chrono::Utc::now() + chrono::TimeDelta::days(2)).to_rfc3339();
    let game = serde_json::json!({
        "name": "Metrics Cup", "min_players": 2, "max_players": 4,
        "enrollment_deadline": deadline, "turn_schedule": "0 18 * * 1,3,5",
    });
    let auth = [("authorization", host.as_str())];
    let created = send(
        running.addr,
        "POST",
        "/api/v1/user/games",
        &auth,
        &game.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let open = format!("/api/v1/user/games/{id}/open");
    let opened = send(running.addr, "POST", &open, &auth, "").await.unwrap();
    assert_eq!(opened.status, 200, "{}", opened.body);
    let text = eventually(Duration::from_secs(5), "metrics", || async move {
        let r = http_get(metrics_addr, "/metrics").await.ok()?;
        (r.status == 200 && r.body.contains("galaxy_http_requests_total")).then_some(r.body)
    })
    .await;
    assert!(
        text.contains("galaxy_mail_queue_depth{status=\"pending\"}"),
        "{text}"
    );
    assert!(text.contains("galaxy_geo_pending_pairs"), "{text}");
    // Set once as the cache bus's task starts, before any request.
    assert!(text.contains("\ngalaxy_cache_bus_connected 1\n"), "{text}");
    assert!(
        text.contains("galaxy_http_request_duration_seconds_bucket"),
        "{text}"
    );
    // HELP text, build info and the process's own figures; no name without the prefix.
    assert!(
        text.contains("# HELP galaxy_http_requests_total HTTP requests served"),
        "{text}"
    );
    assert!(text.contains("galaxy_build_info{version=\""), "{text}");
    for process in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            text.contains(&format!("\n{process} ")),
            "{process} missing: {text}"
        );
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(
            line.starts_with("galaxy_") || line.starts_with("process_"),
            "a metric without the galaxy_ prefix: {line}"
        );
    }
    assert_eq!(
        http_get(running.addr, "/metrics").await.unwrap().status,
        404
    );
    assert!(running.shutdown().await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_listener_caps_open_connections_and_counts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let app = dev_app(
        tmp.path(),
        &[
            ("GALAXY_METRICS_ADDR", "127.0.0.1:0"),
            ("GALAXY_HTTP_MAX_CONNECTIONS", "2"),
        ],
    )
    .await;
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let running = Running::start(app, port_0().await.with_metrics(metrics)).await;
    // Two clients hold their connections open without a request.
    let first = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let _second = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let addr = running.addr;
    let third = tokio::spawn(async move { http_get(addr, "/healthz").await });
    // The third waits in the backlog: no answer while both are open.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served past the cap"
    );
    let capped = eventually(Duration::from_secs(5), "the cap counted", || async move {
        let r = http_get(metrics_addr, "/metrics").await.ok()?;
        r.body
            .lines()
            .find(|l| l.starts_with("galaxy_http_connections_capped_total{listener=\"http\"}"))
            .map(str::to_owned)
    })
    .await;
    assert!(!capped.ends_with(" 0"), "{capped}");
    // One closes: the waiting client is served.
    drop(first);
    let answered = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a slot freed")
        .unwrap()
        .unwrap();
    assert_eq!(answered.status, 200);
    running.shutdown().await;
}

/// A build that fails after it has started following the change bus (here: the engine
/// secret differs from the one the installation recorded, checked where the runtime is
/// built) stops what it started: an embedder that gets the error and keeps running is
/// not left with a cache follower holding a subscription to the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_fails_part_way_stops_what_it_started() {
    use galaxy_core::ports::{KeyFingerprint, KeyRegistry};
    use galaxy_ports::memory::{InMemoryStores, MemoryChangeBus};

    let data = tempfile::tempdir().unwrap();
    let stores = InMemoryStores::new();
    stores
        .keys
        .record_key(
            "GALAXY_ENGINE_SECRET",
            KeyFingerprint::of("GALAXY_ENGINE_SECRET", b"another replica's engine secret!!"),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let bus = MemoryChangeBus::new();
    let mailer = Arc::new(galaxy_smtp::FileMailer::new(
        data.path().join("mail"),
        "galaxy@localhost",
    ));
    let adapters = galaxy_server::Adapters {
        changes: Arc::new(bus.clone()),
        ..galaxy_server::Adapters::from_stores(stores, mailer)
    };
    let vars = HashMap::from([
        (
            "GALAXY_DATA_DIR".to_owned(),
            data.path().display().to_string(),
        ),
        ("GALAXY_RUNTIME".to_owned(), "process".to_owned()),
        (
            "GALAXY_PROCESS_ENGINES".to_owned(),
            "reference=/bin/true".to_owned(),
        ),
    ]);
    let Err(error) = App::build(Config::from_vars(&vars).unwrap(), adapters).await else {
        panic!("a server holding another engine secret was built");
    };
    assert!(
        error.to_string().starts_with("GALAXY_ENGINE_SECRET"),
        "{error}"
    );
    // The follower ends on its own task: give it a moment to let go.
    for _ in 0..200 {
        if bus.subscribers() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(bus.subscribers(), 0, "the cache follower still listens");
}
