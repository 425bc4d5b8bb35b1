//! The fakes of the runtime tests (included by `runtime_world.rs` with `#[path]`): a
//! container runtime and an engine with controllable answers, both writing their calls
//! to one shared journal so tests can check the order of effects.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use galaxy_core::domain::GameId;
use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::*;
use galaxy_core::service::runtime::GAME_LABEL;

/// The credential each created container's engine was given, by endpoint: what the fake
/// engine checks every call against.
#[derive(Default)]
pub struct Credentials(Mutex<HashMap<String, EngineToken>>);

impl Credentials {
    /// The token the container at `endpoint` was created with.
    pub fn of(&self, endpoint: &str) -> Option<EngineToken> {
        self.0.lock().unwrap().get(endpoint).cloned()
    }
}

/// Every fake's calls, in one order, so tests can check what happened before what.
#[derive(Default)]
pub struct Journal(Mutex<Vec<String>>);

impl Journal {
    /// Appends an entry.
    pub fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
    /// Every entry so far.
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    /// Index of the first entry starting with `prefix`.
    pub fn position(&self, prefix: &str) -> Option<usize> {
        self.entries().iter().position(|e| e.starts_with(prefix))
    }
    /// How many entries start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.entries()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }
}

#[derive(Default)]
struct Containers {
    next: u32,
    by_id: BTreeMap<String, ContainerInfo>,
    failing: HashMap<&'static str, String>,
    streams: VecDeque<Vec<ContainerEvent>>,
    /// What each container's engine wrote, by container id.
    output: HashMap<String, Vec<String>>,
    /// When set, every started engine writes these lines and exits with this code.
    exit_on_start: Option<(i64, Vec<String>)>,
    /// Every spec created, by container id.
    specs: HashMap<String, ContainerSpec>,
}

/// A container runtime in memory: ids `c1, c2, ...`, endpoints `http://<name>:8080`.
pub struct FakeContainers {
    journal: Arc<Journal>,
    state: Mutex<Containers>,
    /// Runs once just before the next `create` (another request landing while a job
    /// launches an engine).
    before_create: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
    /// Runs once during the next `inspect`, after it read the container and before it
    /// answers (the world moving on while a pass holds what it saw).
    during_inspect: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
    /// The tokens handed to engines, shared with the [`FakeEngine`].
    credentials: Arc<Credentials>,
}

impl FakeContainers {
    /// No containers; calls go to `journal`.
    pub fn new(journal: Arc<Journal>) -> Self {
        let state = Mutex::new(Containers::default());
        let credentials = Arc::default();
        Self {
            journal,
            state,
            before_create: Mutex::new(None),
            during_inspect: Mutex::new(None),
            credentials,
        }
    }
    /// The tokens handed to the engines created so far.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.credentials.clone()
    }
    /// The spec container `id` was created from.
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().specs.get(id).cloned()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Containers> {
        self.state.lock().unwrap()
    }
    /// Makes `op` (`ensure_image`, `create`, `start`, `stop`, `list`, ...) fail.
    pub fn fail(&self, op: &'static str, message: &str) {
        self.lock().failing.insert(op, message.to_owned());
    }
    /// Makes `op` work again.
    pub fn heal(&self, op: &'static str) {
        self.lock().failing.remove(op);
    }
    fn check(&self, op: &'static str) -> Result<(), ContainerError> {
        match self.lock().failing.get(op) {
            Some(message) => Err(ContainerError::Failed(message.clone())),
            None => Ok(()),
        }
    }
    /// The (first) container labelled with `game`.
    pub fn of_game(&self, game: GameId) -> Option<ContainerInfo> {
        let id = game.to_string();
        let state = self.lock();
        let mut found = state
            .by_id
            .values()
            .filter(|c| c.labels.get(GAME_LABEL) == Some(&id));
        found.next().cloned()
    }
    /// Every container.
    pub fn all(&self) -> Vec<ContainerInfo> {
        self.lock().by_id.values().cloned().collect()
    }
    /// Changes what inspecting container `id` shows.
    pub fn edit(&self, id: &str, edit: impl FnOnce(&mut ContainerInfo)) {
        edit(self.lock().by_id.get_mut(id).unwrap());
    }
    /// Removes a container behind the platform's back.
    pub fn vanish(&self, id: &str) {
        self.lock().by_id.remove(id);
    }
    /// Adds a container the platform did not create in this process.
    pub fn add(&self, info: ContainerInfo) {
        self.lock().by_id.insert(info.container_id.clone(), info);
    }
    /// From now on, every started engine writes `output` and exits for good with `code`
    /// (`None`: engines run again).
    pub fn exit_on_start(&self, exit: Option<(i64, &[&str])>) {
        self.lock().exit_on_start =
            exit.map(|(code, lines)| (code, lines.iter().map(|l| (*l).to_owned()).collect()));
    }
    /// Runs `hook` just before the next `create`.
    pub fn before_next_create(&self, hook: futures::future::BoxFuture<'static, ()>) {
        *self.before_create.lock().unwrap() = Some(hook);
    }
    /// Runs `hook` during the next `inspect`, between reading the container and
    /// answering what it read.
    pub fn during_next_inspect(&self, hook: futures::future::BoxFuture<'static, ()>) {
        *self.during_inspect.lock().unwrap() = Some(hook);
    }
    /// Queues the events one connection of `events()` delivers before it ends.
    pub fn push_stream(&self, events: Vec<ContainerEvent>) {
        self.lock().streams.push_back(events);
    }
}

#[async_trait]
impl ContainerRuntime for FakeContainers {
    async fn ensure_image(&self, engine: &str) -> Result<(), ContainerError> {
        self.journal.push(format!("ensure_image {engine}"));
        self.check("ensure_image")
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError> {
        let hook = self.before_create.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        self.journal.push(format!("create {}", spec.name));
        self.check("create")?;
        let mut state = self.lock();
        state.next += 1;
        let id = format!("c{}", state.next);
        let info = ContainerInfo {
            container_id: id.clone(),
            state: "created".into(),
            restart_count: 0,
            exit_code: None,
            health: None,
            labels: spec.labels.clone(),
        };
        state.by_id.insert(id.clone(), info);
        state.specs.insert(id.clone(), spec.clone());
        let engine_endpoint = format!("http://{}:8080", spec.name);
        let mut credentials = self.credentials.0.lock().unwrap();
        credentials.insert(engine_endpoint.clone(), spec.token.clone());
        Ok(CreatedContainer {
            container_id: id,
            engine_endpoint,
        })
    }
    async fn start(&self, id: &str) -> Result<(), ContainerError> {
        self.journal.push(format!("start {id}"));
        self.check("start")?;
        let mut state = self.lock();
        let exit = state.exit_on_start.clone();
        let info = state
            .by_id
            .get_mut(id)
            .ok_or(ContainerError::NotFound(id.into()))?;
        match exit {
            Some((code, lines)) => {
                info.state = "exited".into();
                info.exit_code = Some(code);
                state.output.entry(id.to_owned()).or_default().extend(lines);
            }
            None => {
                info.state = "running".into();
                info.exit_code = None;
            }
        }
        Ok(())
    }
    async fn stop(&self, id: &str, _grace: Duration) -> Result<(), ContainerError> {
        self.journal.push(format!("stop {id}"));
        self.check("stop")?;
        let mut state = self.lock();
        let info = state
            .by_id
            .get_mut(id)
            .ok_or(ContainerError::NotFound(id.into()))?;
        info.state = "exited".into();
        Ok(())
    }
    async fn remove(&self, id: &str) -> Result<(), ContainerError> {
        self.journal.push(format!("remove {id}"));
        self.check("remove")?;
        let removed = self.lock().by_id.remove(id);
        removed
            .map(|_| ())
            .ok_or(ContainerError::NotFound(id.into()))
    }
    async fn inspect(&self, id: &str) -> Result<ContainerInfo, ContainerError> {
        self.check("inspect")?;
        let found = self.lock().by_id.get(id).cloned();
        let hook = self.during_inspect.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        found.ok_or(ContainerError::NotFound(id.into()))
    }
    async fn logs(&self, id: &str, lines: usize) -> Result<Vec<String>, ContainerError> {
        self.journal.push(format!("logs {id}"));
        self.check("logs")?;
        let state = self.lock();
        if !state.by_id.contains_key(id) {
            return Err(ContainerError::NotFound(id.into()));
        }
        let output = state.output.get(id).cloned().unwrap_or_default();
        Ok(output[output.len().saturating_sub(lines)..].to_vec())
    }
    async fn list_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerInfo>, ContainerError> {
        self.check("list")?;
        let state = self.lock();
        let found = state
            .by_id
            .values()
            .filter(|c| c.labels.get(key).map(String::as_str) == Some(value));
        Ok(found.cloned().collect())
    }
    async fn events(
        &self,
    ) -> Result<BoxStream<'static, Result<ContainerEvent, ContainerError>>, ContainerError> {
        self.journal.push("events".into());
        let next = self.lock().streams.pop_front();
        match next {
            Some(events) => Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok)))),
            None => Err(ContainerError::Failed("daemon unreachable".into())),
        }
    }
}

/// How a fake engine misbehaves on a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnFault {
    /// Connection refused.
    Refuse,
    /// Never answers.
    Hang,
    /// Answers something that is not the contract.
    Garbage,
    /// Answers an earlier turn than asked.
    WrongTurn,
    /// Answers the turn with standings naming a race not in the game (a long name).
    StrangerStanding,
    /// Answers the turn won by a race not in the game.
    StrangerWinner,
    /// Answers a turn further ahead than the platform catches up with.
    FarAhead,
}

#[derive(Default)]
struct Engines {
    turns: HashMap<String, u32>,
    healthz_down: HashSet<String>,
    not_ready_polls: u32,
    init_fails: bool,
    inits: Vec<(String, EngineInit)>,
    faults: HashMap<String, TurnFault>,
    finish_at: HashMap<String, u32>,
    /// Races of an endpoint the engine reports eliminated (`alive: false`) from now on.
    eliminated: HashMap<String, Vec<String>>,
    orders: Vec<(String, String, u32, serde_json::Value)>,
    healthz_hook: Option<BoxFuture<'static, ()>>,
    /// Runs during the next turn call, before the engine answers.
    turn_hook: Option<BoxFuture<'static, ()>>,
    /// Runs during the next orders call, after the engine took the orders and before it
    /// answers.
    orders_hook: Option<BoxFuture<'static, ()>>,
    /// Runs during the next report fetch, before the engine answers.
    report_hook: Option<BoxFuture<'static, ()>>,
    /// Report fetches that fail (503) before reports work again.
    report_failures: u32,
    /// Every report fetch, as (endpoint, race, turn).
    reports: Vec<(String, String, u32)>,
    /// When set, init answers this status and body.
    init_refusal: Option<(u16, String)>,
    /// When set, orders answer this status and body.
    orders_refusal: Option<(u16, String)>,
    /// When set, a call without a credential is served (an engine that checks nothing).
    unguarded: bool,
}

/// An engine fake keyed by endpoint: turns count up from 0; faults are set per endpoint.
pub struct FakeEngine {
    journal: Arc<Journal>,
    state: Mutex<Engines>,
    /// The token each engine was created with; calls must carry it.
    credentials: Arc<Credentials>,
}

impl FakeEngine {
    /// Healthy engines at turn 0 that answer only calls carrying the token their
    /// container was created with (any token for an engine created elsewhere), and 401
    /// to anything else; calls go to `journal`, refused ones as `unauthorised <endpoint>`.
    pub fn new(journal: Arc<Journal>, credentials: Arc<Credentials>) -> Self {
        let state = Mutex::new(Engines::default());
        Self {
            journal,
            state,
            credentials,
        }
    }
    /// Makes every engine serve calls without a credential (or refuse them again).
    pub fn unguarded(&self, unguarded: bool) {
        self.lock().unguarded = unguarded;
    }
    /// 401 unless `target` carries the engine's token (a guarded engine also refuses a
    /// call without any).
    fn authorise(&self, target: &EngineTarget) -> Result<(), EngineError> {
        let expected = self.credentials.of(&target.endpoint);
        let ok = match (&target.token, expected) {
            (Some(token), Some(expected)) => *token == expected,
            (Some(_), None) => true,
            (None, _) => self.lock().unguarded,
        };
        if ok {
            return Ok(());
        }
        self.journal
            .push(format!("unauthorised {}", target.endpoint));
        Err(EngineError::Status {
            status: 401,
            body: r#"{"error":"missing or wrong credential"}"#.into(),
        })
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Engines> {
        self.state.lock().unwrap()
    }
    /// Makes `/healthz` of `endpoint` answer 503 (or healthy again).
    pub fn healthz_down(&self, endpoint: &str, down: bool) {
        let mut state = self.lock();
        if down {
            state.healthz_down.insert(endpoint.to_owned());
        } else {
            state.healthz_down.remove(endpoint);
        }
    }
    /// The next `polls` `/healthz` calls fail (the engine is still binding its port).
    pub fn not_ready_for(&self, polls: u32) {
        self.lock().not_ready_polls = polls;
    }
    /// Makes `/admin/init` answer 500 (or work again).
    pub fn init_fails(&self, fails: bool) {
        self.lock().init_fails = fails;
    }
    /// Makes the next `n` report fetches fail with 503.
    pub fn fail_reports(&self, n: u32) {
        self.lock().report_failures = n;
    }
    /// Every report fetch, as (endpoint, race, turn).
    pub fn report_fetches(&self) -> Vec<(String, String, u32)> {
        self.lock().reports.clone()
    }
    /// Makes init answer `status` with `body` (a refusal), or work again with `None`.
    pub fn refuse_init(&self, refusal: Option<(u16, &str)>) {
        self.lock().init_refusal = refusal.map(|(s, b)| (s, b.to_owned()));
    }
    /// Makes orders answer `status` with `body`, or work again with `None`.
    pub fn refuse_orders(&self, refusal: Option<(u16, &str)>) {
        self.lock().orders_refusal = refusal.map(|(s, b)| (s, b.to_owned()));
    }
    /// The report text the fake writes for `race` at `turn`.
    pub fn report_text(race: &str, turn: u32) -> String {
        format!("report of {race} for turn {turn}")
    }
    /// Every successful init, with its endpoint.
    pub fn inits(&self) -> Vec<(String, EngineInit)> {
        self.lock().inits.clone()
    }
    /// The race the engine of `endpoint` puts first in its standings and lets win: the
    /// first of the races its init gave.
    pub fn leader(&self, endpoint: &str) -> String {
        let state = self.lock();
        let init = state.inits.iter().rev().find(|(e, _)| e == endpoint);
        init.and_then(|(_, init)| init.races.first())
            .map(|race| race.race_name.clone())
            .unwrap_or_default()
    }
    /// Makes turns of `endpoint` misbehave (or heals them).
    pub fn fault(&self, endpoint: &str, fault: Option<TurnFault>) {
        let mut state = self.lock();
        match fault {
            Some(f) => state.faults.insert(endpoint.to_owned(), f),
            None => state.faults.remove(endpoint),
        };
    }
    /// The game of `endpoint` ends (won by its first race, which leads the standings) at
    /// `turn`.
    pub fn finish_at(&self, endpoint: &str, turn: u32) {
        self.lock().finish_at.insert(endpoint.to_owned(), turn);
    }
    /// The engine of `endpoint` reports `race` eliminated in every turn from now on.
    pub fn eliminate(&self, endpoint: &str, race: &str) {
        let mut state = self.lock();
        state
            .eliminated
            .entry(endpoint.to_owned())
            .or_default()
            .push(race.to_owned());
    }
    /// The last turn the engine of `endpoint` ran.
    pub fn turn_of(&self, endpoint: &str) -> u32 {
        self.lock().turns.get(endpoint).copied().unwrap_or(0)
    }
    /// Every order received: (endpoint, race, turn, orders).
    pub fn orders(&self) -> Vec<(String, String, u32, serde_json::Value)> {
        self.lock().orders.clone()
    }
    /// Runs `hook` during the next orders call, once the engine holds the orders and
    /// before it answers (the submission is not recorded yet).
    pub fn on_next_orders(&self, hook: BoxFuture<'static, ()>) {
        self.lock().orders_hook = Some(hook);
    }
    /// Runs `hook` during the next `/healthz` (to change the world mid-start).
    pub fn on_next_healthz(&self, hook: BoxFuture<'static, ()>) {
        self.lock().healthz_hook = Some(hook);
    }

    /// Runs `hook` during the next turn call, before the engine answers: what an admin or
    /// another replica does while a turn is in flight.
    pub fn on_next_turn(&self, hook: BoxFuture<'static, ()>) {
        self.lock().turn_hook = Some(hook);
    }
    /// Runs `hook` during the next report fetch: after the engine played the turn, while
    /// the platform archives it.
    pub fn on_next_report(&self, hook: BoxFuture<'static, ()>) {
        self.lock().report_hook = Some(hook);
    }
}

#[async_trait]
impl EngineClient for FakeEngine {
    async fn healthz(&self, target: &EngineTarget) -> Result<(), EngineError> {
        let endpoint = target.endpoint.as_str();
        self.journal.push(format!("healthz {endpoint}"));
        let hook = self.lock().healthz_hook.take();
        if let Some(hook) = hook {
            hook.await;
        }
        let mut state = self.lock();
        if state.not_ready_polls > 0 {
            state.not_ready_polls -= 1;
            return Err(EngineError::Refused(endpoint.into()));
        }
        if state.healthz_down.contains(endpoint) {
            return Err(EngineError::Status {
                status: 503,
                body: "down".into(),
            });
        }
        drop(state);
        self.authorise(target)
    }
    async fn init(
        &self,
        target: &EngineTarget,
        init: &EngineInit,
    ) -> Result<EngineState, EngineError> {
        let endpoint = target.endpoint.as_str();
        self.journal.push(format!("init {endpoint}"));
        self.authorise(target)?;
        let mut state = self.lock();
        if state.init_fails {
            return Err(EngineError::Status {
                status: 500,
                body: "no".into(),
            });
        }
        if let Some((status, body)) = state.init_refusal.clone() {
            return Err(EngineError::Status { status, body });
        }
        state.inits.push((endpoint.to_owned(), init.clone()));
        let turn = *state.turns.entry(endpoint.to_owned()).or_insert(0);
        Ok(EngineState {
            turn,
            finished: false,
            winner: None,
            standings: vec![],
        })
    }
    async fn run_turn(
        &self,
        target: &EngineTarget,
        expected: u32,
    ) -> Result<EngineState, EngineError> {
        let endpoint = target.endpoint.as_str();
        self.journal.push(format!("turn {endpoint} {expected}"));
        self.authorise(target)?;
        let hook = self.lock().turn_hook.take();
        if let Some(hook) = hook {
            hook.await;
        }
        let fault = self.lock().faults.get(endpoint).copied();
        match fault {
            Some(TurnFault::Refuse) => return Err(EngineError::Refused(endpoint.into())),
            Some(TurnFault::Hang) => std::future::pending::<()>().await,
            Some(TurnFault::Garbage) => return Err(EngineError::Malformed("<html>".into())),
            Some(TurnFault::WrongTurn) => {
                let state = EngineState {
                    turn: 0,
                    finished: false,
                    winner: None,
                    standings: vec![],
                };
                return Ok(state);
            }
            Some(TurnFault::FarAhead) => {
                let state = EngineState {
                    turn: expected + galaxy_core::service::runtime::MAX_CATCH_UP_TURNS + 1,
                    finished: false,
                    winner: None,
                    standings: vec![],
                };
                return Ok(state);
            }
            Some(TurnFault::StrangerStanding | TurnFault::StrangerWinner) | None => {}
        }
        let mut state = self.lock();
        // The game's races, as init gave them: the first leads and wins.
        let races: Vec<String> = state
            .inits
            .iter()
            .rev()
            .find(|(e, _)| e == endpoint)
            .map(|(_, init)| init.races.iter().map(|r| r.race_name.clone()).collect())
            .unwrap_or_default();
        let leader = races.first().cloned().unwrap_or_default();
        let finish_at = state.finish_at.get(endpoint).copied();
        let turn = state.turns.entry(endpoint.to_owned()).or_insert(0);
        if expected == *turn + 1 {
            *turn = expected;
        }
        let turn = *turn;
        let finished = finish_at.is_some_and(|f| turn >= f);
        let mut standings = vec![RaceStanding {
            name: leader.clone(),
            alive: true,
            score: 10.0,
        }];
        if fault == Some(TurnFault::StrangerStanding) {
            standings.push(RaceStanding {
                name: "x".repeat(100_000),
                alive: true,
                score: 0.0,
            });
        }
        for race in state.eliminated.get(endpoint).into_iter().flatten() {
            standings.push(RaceStanding {
                name: race.clone(),
                alive: false,
                score: 0.0,
            });
        }
        let winner = if fault == Some(TurnFault::StrangerWinner) {
            Some("Nobody".to_owned())
        } else {
            finished.then_some(leader)
        };
        Ok(EngineState {
            turn,
            finished,
            winner,
            standings,
        })
    }
    async fn submit_orders(
        &self,
        target: &EngineTarget,
        race: &str,
        turn: u32,
        orders: &serde_json::Value,
    ) -> Result<OrdersVerdict, EngineError> {
        self.authorise(target)?;
        let endpoint = target.endpoint.as_str();
        let entry = (endpoint.to_owned(), race.to_owned(), turn, orders.clone());
        let hook = {
            let mut state = self.lock();
            if let Some((status, body)) = state.orders_refusal.clone() {
                return Err(EngineError::Status { status, body });
            }
            state.orders.push(entry);
            state.orders_hook.take()
        };
        if let Some(hook) = hook {
            hook.await;
        }
        Ok(OrdersVerdict {
            accepted: true,
            errors: vec![],
        })
    }
    async fn report(
        &self,
        target: &EngineTarget,
        race: &str,
        turn: u32,
    ) -> Result<serde_json::Value, EngineError> {
        self.authorise(target)?;
        let hook = self.lock().report_hook.take();
        if let Some(hook) = hook {
            hook.await;
        }
        let endpoint = target.endpoint.as_str();
        let mut state = self.lock();
        state
            .reports
            .push((endpoint.to_owned(), race.to_owned(), turn));
        if state.report_failures > 0 {
            state.report_failures -= 1;
            return Err(EngineError::Status {
                status: 503,
                body: "busy".into(),
            });
        }
        let text = Self::report_text(race, turn);
        Ok(serde_json::json!({ "endpoint": endpoint, "race": race, "turn": turn, "text": text }))
    }
    /// Only the start's credential check calls it: answered per [`FakeEngine::authorise`],
    /// then with turn 0.
    async fn state(&self, target: &EngineTarget) -> Result<EngineState, EngineError> {
        self.journal.push(format!("state {}", target.endpoint));
        self.authorise(target)?;
        Ok(EngineState {
            turn: 0,
            finished: false,
            winner: None,
            standings: vec![],
        })
    }
}
