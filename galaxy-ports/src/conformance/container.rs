//! Conformance suite for [`ContainerRuntime`]: what the runtime workers rely on, run
//! against a real engine. Create (idempotent), start (idempotent), inspect (state,
//! restart count, exit code, labels), a crash restarted and counted by the runtime's own
//! policy, stop (idempotent, not restarted), remove (keeps the game's data), logs, list by
//! label, the event feed, and `NotFound` for what does not exist.
//!
//! A runtime author implements [`RuntimeFixture`] (how to make a runtime, which engine it
//! runs, how to crash an engine from outside) and calls [`run_all`]:
//!
//! ```rust,ignore
//! galaxy_ports::conformance::container::run_all(&MyFixture::new()).await;
//! ```
//!
//! The engine must serve the engine contract (the reference engine `galaxy-engine` does):
//! the suite reaches it through the fixture's [`EngineClient`], initialises a game and
//! plays a turn, and checks the game survives a crash, a stop and a remove.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use galaxy_core::domain::GameId;
use galaxy_core::domain::engine_auth::EngineTokenKey;
use galaxy_core::ports::{
    ContainerError, ContainerEvent, ContainerRuntime, ContainerSpec, CreatedContainer,
    EngineClient, EngineInit, EngineLimits, EngineRace, EngineTarget,
};

use super::runtime::support::uuid;

const SUITE: &str = "container runtime";

/// The label every container of the suite carries, valued with the case's run id, so
/// `list_by_label` sees only what the case made.
pub const CASE_LABEL: &str = "galaxy.conformance";

/// The test set-up of one runtime adapter.
#[async_trait]
pub trait RuntimeFixture: Send + Sync {
    /// The runtime under test.
    type Runtime: ContainerRuntime + 'static;

    /// A fresh runtime (called once per case). Its restart policy must restart a crashed
    /// engine exactly once, within a few seconds, and never restart a stopped one.
    async fn runtime(&self) -> Self::Runtime;

    /// What `ContainerSpec::engine` names for an engine serving the engine contract on
    /// this runtime (an image, a command line).
    fn engine(&self) -> String;

    /// An engine reference this runtime cannot find (`ensure_image` must say `NotFound`).
    fn missing_engine(&self) -> String;

    /// Kills the engine of a running container as a crash would: from outside the
    /// runtime, with SIGKILL, so the runtime sees a failure and not a stop.
    async fn crash(&self, runtime: &Self::Runtime, container_id: &str);

    /// The client the suite reaches engines with.
    fn client(&self) -> Arc<dyn EngineClient>;

    /// Labels added to every spec, besides the platform's and [`CASE_LABEL`] (e.g. one
    /// that lets the fixture clean up after a failed run).
    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// How long the suite waits for anything (an event, an engine answering).
    fn patience(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// Runs every case, each on a fresh runtime from `fixture`.
pub async fn run_all<F: RuntimeFixture>(fixture: &F) {
    case(
        fixture,
        "ensure_image finds the engine and not a missing one",
        images,
    )
    .await;
    case(
        fixture,
        "create is idempotent and makes a stopped container",
        create,
    )
    .await;
    case(
        fixture,
        "start runs the engine, idempotently, and says so",
        start,
    )
    .await;
    case(
        fixture,
        "a crash is restarted once, counted, then left exited",
        crash,
    )
    .await;
    case(
        fixture,
        "stop ends the engine for good until started again",
        stop,
    )
    .await;
    case(
        fixture,
        "remove forgets the container and keeps the game",
        remove,
    )
    .await;
    case(
        fixture,
        "list_by_label sees exactly the matching containers",
        list,
    )
    .await;
    case(fixture, "what does not exist is NotFound", unknown).await;
}

/// What a case works with.
struct Case<'f, F: RuntimeFixture> {
    fixture: &'f F,
    runtime: F::Runtime,
    client: Arc<dyn EngineClient>,
    /// The value of [`CASE_LABEL`] on this case's containers.
    run: String,
    /// Every container created, removed at the end.
    created: std::sync::Mutex<Vec<String>>,
}

async fn case<'f, F, C, Fut>(fixture: &'f F, name: &str, body: C)
where
    F: RuntimeFixture,
    C: FnOnce(Arc<Case<'f, F>>) -> Fut,
    Fut: Future<Output = ()>,
{
    eprintln!("conformance {SUITE}: {name}");
    let case = Arc::new(Case {
        fixture,
        runtime: fixture.runtime().await,
        client: fixture.client(),
        run: uuid().to_string(),
        created: std::sync::Mutex::new(Vec::new()),
    });
    body(case.clone()).await;
    let created = std::mem::take(&mut *lock(&case.created));
    for id in created {
        // Best effort: a case may have removed it already.
        let _ = case.runtime.remove(&id).await;
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The key every game's token derives from in this suite.
fn token_key() -> EngineTokenKey {
    EngineTokenKey::from_array(*b"galaxy conformance key, not one!")
}

impl<F: RuntimeFixture> Case<'_, F> {
    /// A game's spec as the platform makes it.
    fn spec(&self) -> ContainerSpec {
        let game_id = GameId::from_uuid(uuid());
        let mut labels = self.fixture.labels();
        labels.extend([
            ("galaxy.backend".to_owned(), "1".to_owned()),
            ("galaxy.game_id".to_owned(), game_id.to_string()),
            (CASE_LABEL.to_owned(), self.run.clone()),
        ]);
        ContainerSpec {
            name: format!("galaxy-game-{game_id}"),
            game_id,
            engine: self.fixture.engine(),
            labels,
            env: BTreeMap::new(),
            token: token_key().token_for(game_id),
            limits: EngineLimits {
                memory_bytes: Some(256 << 20),
                cpus: Some(1.0),
                pids: Some(128),
            },
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> CreatedContainer {
        let created = ok(self.runtime.create(spec).await, "create");
        lock(&self.created).push(created.container_id.clone());
        created
    }

    async fn events(&self) -> BoxStream<'static, Result<ContainerEvent, ContainerError>> {
        ok(self.runtime.events().await, "events")
    }

    /// The next event of `id` with `action`.
    async fn next_event(
        &self,
        events: &mut BoxStream<'static, Result<ContainerEvent, ContainerError>>,
        id: &str,
        action: &str,
    ) -> ContainerEvent {
        let wait = async {
            loop {
                match events.next().await {
                    Some(Ok(event)) if event.container_id == id && event.action == action => {
                        return event;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => panic!("the event stream failed: {error}"),
                    None => panic!("the event stream ended before a {action} of {id}"),
                }
            }
        };
        match tokio::time::timeout(self.fixture.patience(), wait).await {
            Ok(event) => event,
            Err(_) => panic!("no {action} event of {id}"),
        }
    }

    /// Polls `check` every 100 ms until it holds.
    async fn eventually<C, Fut>(&self, what: &str, mut check: C)
    where
        C: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + self.fixture.patience();
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the engine of `created` answers `/healthz`.
    async fn healthy(&self, target: &EngineTarget) {
        let client = self.client.clone();
        self.eventually(&format!("{} answers", target.endpoint), || {
            let client = client.clone();
            async move { client.healthz(target).await.is_ok() }
        })
        .await;
    }

    /// Starts `created` (of `spec`), waits for its engine and initialises its game;
    /// returns how to reach it.
    async fn run_game(&self, spec: &ContainerSpec, created: &CreatedContainer) -> EngineTarget {
        ok(self.runtime.start(&created.container_id).await, "start");
        let target = EngineTarget::new(created.engine_endpoint.clone(), spec.token.clone());
        self.healthy(&target).await;
        let state = ok(self.client.init(&target, &init(spec.game_id)).await, "init");
        assert_eq!(state.turn, 0, "a new game is at turn 0");
        target
    }

    async fn inspect(&self, id: &str) -> galaxy_core::ports::ContainerInfo {
        ok(self.runtime.inspect(id).await, "inspect")
    }

    async fn turn(&self, target: &EngineTarget) -> u32 {
        ok(self.client.state(target).await, "engine state").turn
    }
}

fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}

fn not_found<T: std::fmt::Debug>(result: Result<T, ContainerError>, what: &str) {
    assert!(
        matches!(result, Err(ContainerError::NotFound(_))),
        "{what}: expected NotFound, got {result:?}"
    );
}

/// A two-race game.
fn init(game_id: GameId) -> EngineInit {
    EngineInit {
        game_id: game_id.to_string(),
        seed: 5,
        settings: serde_json::json!({}),
        races: ["Red Dwarf", "Blue Giant"]
            .iter()
            .map(|name| EngineRace {
                race_name: (*name).to_owned(),
                player_id: uuid().to_string(),
            })
            .collect(),
    }
}

async fn images<F: RuntimeFixture>(case: Arc<Case<'_, F>>) {
    ok(
        case.runtime.ensure_image(&case.fixture.engine()).await,
        "ensure_image of the engine",
    );
    let missing = case.fixture.missing_engine();
    not_found(
        case.runtime.ensure_image(&missing).await,
        "a missing engine",
    );
}

async fn create<F: RuntimeFixture>(case: Arc<Case<'_, F>>) {
    let spec = case.spec();
    let created = case.create(&spec).await;
    assert!(
        created.engine_endpoint.starts_with("http://"),
        "an HTTP base URL: {}",
        created.engine_endpoint
    );
    let again = ok(case.runtime.create(&spec).await, "a repeated create");
    assert_eq!(again, created, "a retried create is the same container");
    let info = case.inspect(&created.container_id).await;
    assert_eq!(info.container_id, created.container_id);
    assert_eq!(info.state, "created");
    assert_eq!((info.restart_count, info.exit_code), (0, None));
    assert!(!info.exited_for_good(), "created is not exited");
    for (key, value) in &spec.labels {
        assert_eq!(info.labels.get(key), Some(value), "label {key}");
    }
    let logs = ok(case.runtime.logs(&created.container_id, 20).await, "logs");
    assert!(logs.is_empty(), "never ran, yet logged {logs:?}");
}

async fn start<F: RuntimeFixture>(case: Arc<Case<'_, F>>) {
    let spec = case.spec();
    let created = case.create(&spec).await;
    let id = created.container_id.as_str();
    let mut events = case.events().await;
    let target = case.run_game(&spec, &created).await;
    ok(case.runtime.start(id).await, "a start while running");
    let started = case.next_event(&mut events, id, "start").await;
    assert_eq!(
        started.game_id,
        Some(spec.game_id),
        "the event names the game"
    );
    let info = case.inspect(id).await;
    assert_eq!(info.state, "running");
    assert_eq!((info.restart_count, info.exit_code), (0, None));
    let turn = ok(case.client.run_turn(&target, 1).await, "a turn");
    assert_eq!(turn.turn, 1);

    // Logs: the engine wrote something; the last lines come last, `lines` bounds them.
    case.eventually("the engine's output in the logs", || async {
        !ok(case.runtime.logs(id, 50).await, "logs").is_empty()
    })
    .await;
    let all = ok(case.runtime.logs(id, 50).await, "logs");
    assert!(all.len() <= 50, "at most the lines asked for");
    // The newest line is last. Docker hands lines to its log driver asynchronously, so a
    // line may arrive between two reads: compare until two reads agree (a runtime that
    // put the newest line anywhere else never would).
    case.eventually("the newest line last", || async {
        let last = ok(case.runtime.logs(id, 1).await, "logs of one line");
        assert_eq!(last.len(), 1, "{last:?}");
        let fresh = ok(case.runtime.logs(id, 50).await, "logs");
        fresh.last() == last.last()
    })
    .await;
}

async fn crash<F: RuntimeFixture>(case: Arc<Case<'_, F>>) {
    let spec = case.spec();
    let created = case.create(&spec).await;
    let id = created.container_id.as_str();
    let mut events = case.events().await;
    let target = case.run_game(&spec, &created).await;
    ok(case.client.run_turn(&target, 1).await, "a turn");
    case.next_event(&mut events, id, "start").await;

    // The first crash: restarted by the runtime, counted, at the same address, the game
    // resumed from its data.
    case.fixture.crash(&case.runtime, id).await;
    let died = case.next_event(&mut events, id, "die").await;
    assert_eq!(died.game_id, Some(spec.game_id), "the event names the game");
    case.next_event(&mut events, id, "start").await;
    case.eventually("running again, one restart counted", || async {
        let info = case.inspect(id).await;
        info.state == "running" && info.restart_count == 1
    })
    .await;
    case.healthy(&target).await;
    assert_eq!(case.turn(&target).await, 1, "the game survives a crash");

    // The second: the policy is spent, the container stays exited with the signal's
    // code (128 + SIGKILL), and says it will not come back by itself.
    case.fixture.crash(&case.runtime, id).await;
    case.next_event(&mut events, id, "die").await;
    case.eventually("exited for good", || async {
        case.inspect(id).await.state == "exited"
    })
    .await;
    let info = case.inspect(id).await;
    assert_eq!(info.exit_code, Some(137), "killed by SIGKILL");
    assert_eq!(info.restart_count, 1, "restarted once only");
    assert!(info.exited_for_good());
}

async fn stop<F: RuntimeFixture>(case: Arc<Case<'_, F>>) {
    let spec = case.spec();
    let created = case.create(&spec).await;
    let id = created.container_id.as_str();
    let mut events = case.events().await;
    let target = case.run_game(&spec, &created).await;
    ok(case.client.run_turn(&target, 1).await, "a turn");

    ok(case.runtime.stop(id, Duration::from_secs(10)).await, "stop");
    case.next_event(&mut events, id, "stop").await;
    let info = case.inspect(id).await;
    assert_eq!(info.state, "exited", "a stop is not restarted");
    assert_eq!(info.restart_count, 0, "a stop is not a crash");
    assert!(
        info.exit_code.is_some(),
        "a stopped engine has an exit code"
    );
    assert!(info.exited_for_good());
    assert!(
        case.client.healthz(&target).await.is_err(),
        "a stopped engine does not answer"
    );
    ok(
        case.runtime.stop(id, Duration::from_secs(1)).await,
        "a stop when stopped",
    );

    ok(case.runtime.start(id).await, "a start after a stop");
    case.healthy(&target).await;
    assert_eq!(case.inspect(id).await.exit_code, None, "running again");
    assert_eq!(case.turn(&target).await, 1, "the game resumes");
}

async fn remove<F: RuntimeFixture>(case: Arc<Case<'_, F>>) {
    let spec = case.spec();
    let created = case.create(&spec).await;
    let id = created.container_id.as_str();
    let mut events = case.events().await;
    let target = case.run_game(&spec, &created).await;
    ok(case.client.run_turn(&target, 1).await, "a turn");

    // Removing a running container stops it too.
    ok(case.runtime.remove(id).await, "remove");
    case.next_event(&mut events, id, "destroy").await;
    not_found(case.runtime.inspect(id).await, "inspect after remove");
    not_found(case.runtime.remove(id).await, "a second remove");
    let game = spec.game_id.to_string();
    let listed = ok(
        case.runtime.list_by_label("galaxy.game_id", &game).await,
        "list",
    );
    assert!(listed.is_empty(), "removed, yet listed: {listed:?}");
    assert!(case.client.healthz(&target).await.is_err(), "gone");

    // The game's data outlives its container: a new one resumes it.
    let again = case.create(&spec).await;
    ok(case.runtime.start(&again.container_id).await, "start");
    let target = EngineTarget::new(again.engine_endpoint.clone(), spec.token.clone());
    case.healthy(&target).await;
    assert_eq!(case.turn(&target).await, 1, "the game resumes");
    ok(case.runtime.remove(&again.container_id).await, "remove");
}

async fn list<F: RuntimeFixture>(case: Arc<Case<'_, F>>) {
    let (first, second) = (case.spec(), case.spec());
    let one = case.create(&first).await;
    let two = case.create(&second).await;
    ok(case.runtime.start(&one.container_id).await, "start");

    let game = first.game_id.to_string();
    let listed = ok(
        case.runtime.list_by_label("galaxy.game_id", &game).await,
        "list",
    );
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].container_id, one.container_id);
    assert_eq!(listed[0].labels.get("galaxy.game_id"), Some(&game));

    let mut both: Vec<_> = ok(
        case.runtime.list_by_label(CASE_LABEL, &case.run).await,
        "list",
    )
    .into_iter()
    .map(|info| info.container_id)
    .collect();
    both.sort();
    let mut expected = vec![one.container_id.clone(), two.container_id.clone()];
    expected.sort();
    assert_eq!(
        both, expected,
        "every container of the label, running or not"
    );
    let none = ok(
        case.runtime
            .list_by_label(CASE_LABEL, &uuid().to_string())
            .await,
        "list",
    );
    assert!(none.is_empty(), "{none:?}");
}

async fn unknown<F: RuntimeFixture>(case: Arc<Case<'_, F>>) {
    let id = format!("galaxy-no-such-container-{}", case.run);
    not_found(case.runtime.start(&id).await, "start");
    not_found(case.runtime.stop(&id, Duration::ZERO).await, "stop");
    not_found(case.runtime.remove(&id).await, "remove");
    not_found(case.runtime.inspect(&id).await, "inspect");
    not_found(case.runtime.logs(&id, 10).await, "logs");
}
