//! Exactly-once on one Postgres database with two replicas' schedulers (each its own
//! pool): an early turn runs once although both see every race ready at the same time,
//! and a deadline reminder is raised once per player, turn and offset although both
//! raise it on every tick; orders sent to both replicas at once stop at the bound of
//! submissions per turn. The engine is a counting double (the property under test is
//! the stores'); everything else is the real Postgres adapter and notification service.
//!
//! Needs `DATABASE_URL` (scripts/test.sh starts a throwaway Postgres).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeDelta, TimeZone, Utc};
use galaxy_core::domain::game::{
    EngineName, Game, GameName, GameSettings, GameStatus, GameTrigger, Visibility,
};
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::pbem::{PbemSettings, ReadyMark};
use galaxy_core::domain::runtime::{RuntimeBinding, RuntimeRecord, RuntimeStatus};
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::{GameId, Timestamp, UserId};
use galaxy_core::ports::*;
use galaxy_core::service::notification::NotificationService;
use galaxy_core::service::runtime::{
    MAX_SUBMISSIONS_PER_TURN, RuntimeConfig, RuntimePorts, RuntimeService, TurnScheduler,
};
use galaxy_core::service::{Actor, ServiceError};
use galaxy_core::worker::Worker;
use galaxy_ports::system::{ManualClock, OsSecretGenerator};
use galaxy_postgres::PgStore;
use galaxy_postgres::testing::TestDatabases;
use serde_json::json;

/// An engine that counts the turns it really ran (a repeated turn is a no-op, as the
/// contract says).
#[derive(Default)]
struct CountingEngine {
    /// The last turn, per endpoint.
    turns: Mutex<BTreeMap<String, u32>>,
    /// Every turn that advanced the game.
    advanced: Mutex<Vec<u32>>,
    /// Every turn call, repeats included: exactly-once means no repeat.
    calls: Mutex<Vec<u32>>,
    /// Every orders submission that reached the engine.
    submissions: Mutex<u64>,
}

#[async_trait]
impl EngineClient for CountingEngine {
    async fn healthz(&self, _: &EngineTarget) -> Result<(), EngineError> {
        Ok(())
    }
    async fn init(&self, _: &EngineTarget, _: &EngineInit) -> Result<EngineState, EngineError> {
        Ok(state(0))
    }
    async fn run_turn(
        &self,
        target: &EngineTarget,
        expected: u32,
    ) -> Result<EngineState, EngineError> {
        // A slow turn, so the two schedulers really overlap.
        self.calls.lock().unwrap().push(expected);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut turns = self.turns.lock().unwrap();
        let turn = turns.entry(target.endpoint.clone()).or_insert(0);
        if *turn + 1 == expected {
            *turn = expected;
            self.advanced.lock().unwrap().push(expected);
        }
        Ok(state(*turn))
    }
    async fn submit_orders(
        &self,
        _: &EngineTarget,
        _: &str,
        _: u32,
        _: &serde_json::Value,
    ) -> Result<OrdersVerdict, EngineError> {
        *self.submissions.lock().unwrap() += 1;
        Ok(OrdersVerdict {
            accepted: true,
            errors: vec![],
        })
    }
    async fn report(
        &self,
        _: &EngineTarget,
        race: &str,
        turn: u32,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(json!({"race": race, "turn": turn, "text": format!("{race} at {turn}")}))
    }
    async fn state(&self, target: &EngineTarget) -> Result<EngineState, EngineError> {
        let turns = self.turns.lock().unwrap();
        Ok(state(turns.get(&target.endpoint).copied().unwrap_or(0)))
    }
}

fn state(turn: u32) -> EngineState {
    serde_json::from_value(json!({"turn": turn, "finished": false, "standings": []})).unwrap()
}

/// 2030-01-01 at `h:m` UTC.
fn at(h: u32, m: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2030, 1, 1, h, m, 0).unwrap()
}

/// Two schedulers (two pools on one database) over one running game of `races`, whose
/// deadline is 18:00.
struct Replicas {
    dbs: TestDatabases,
    stores: Vec<Arc<PgStore>>,
    schedulers: Vec<TurnScheduler>,
    services: Vec<Arc<RuntimeService>>,
    clock: Arc<ManualClock>,
    engine: Arc<CountingEngine>,
    game: GameId,
    players: Vec<(UserId, String)>,
}

impl Replicas {
    /// Marks `race` ready for `turn` as its player does.
    async fn mark_ready(&self, race: &str, turn: u32) {
        let player = self
            .players
            .iter()
            .find(|(_, r)| r == race)
            .map(|(user, _)| *user)
            .unwrap();
        self.stores[0]
            .mark_ready(
                self.game,
                race,
                player,
                ReadyMark::Set(turn, self.clock.now()),
            )
            .await
            .unwrap();
    }
}

async fn replicas(races: &[&str]) -> Replicas {
    let dbs = match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    };
    let options = dbs.migrated_database().await.unwrap();
    let clock = Arc::new(ManualClock::new(at(12, 0)));
    let engine = Arc::new(CountingEngine::default());
    let mut stores = Vec::new();
    let mut schedulers = Vec::new();
    let mut services = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(PgStore::new(dbs.pool(options.clone()).await.unwrap()));
        let secrets: Arc<dyn SecretGenerator> = Arc::new(OsSecretGenerator);
        let notifier = Arc::new(NotificationService::new(
            store.clone(),
            store.clone(),
            clock.clone(),
            secrets.clone(),
        ));
        let ports = RuntimePorts {
            games: store.clone(),
            applications: store.clone(),
            users: store.clone(),
            records: store.clone(),
            jobs: store.clone(),
            health: store.clone(),
            archive: store.clone(),
            orders: store.clone(),
            pbem: store.clone(),
            containers: Arc::new(galaxy_server::runtime::NoContainers),
            engine: engine.clone(),
            notifier,
            clock: clock.clone(),
            ids: secrets,
            inbound: None,
        };
        services.push(Arc::new(RuntimeService::new(
            ports.clone(),
            RuntimeConfig::default(),
        )));
        schedulers.push(TurnScheduler::new(ports, RuntimeConfig::default()));
        stores.push(store);
    }
    // A running game with a bound engine, scheduled for 18:00, whose races exist.
    let store = &stores[0];
    let host = UserId::from_uuid(uuid::Uuid::new_v4());
    let settings = GameSettings {
        name: GameName::parse("Replicated PBEM").unwrap(),
        min_players: 2,
        max_players: 8,
        enrollment_deadline: at(23, 0),
        schedule: TurnSchedule::parse("0 18 * * *").unwrap(),
        engine: EngineName::reference(),
        auto_approve: false,
        visibility: Visibility::Public,
        engine_settings: Default::default(),
        reveal_reports_after_finish: true,
        pbem: PbemSettings {
            reminders: vec![TimeDelta::hours(2)],
            ..PbemSettings::default()
        },
    };
    let game = Game::new(
        GameId::from_uuid(uuid::Uuid::new_v4()),
        host,
        settings,
        clock.now(),
    );
    store.insert_game(&game).await.unwrap();
    for (from, to) in [
        (GameStatus::Draft, GameStatus::EnrollmentOpen),
        (GameStatus::EnrollmentOpen, GameStatus::EnrollmentClosed),
        (GameStatus::EnrollmentClosed, GameStatus::Starting),
        (GameStatus::Starting, GameStatus::Running),
    ] {
        let trigger = if to == GameStatus::Running {
            GameTrigger::RuntimeEvent
        } else {
            GameTrigger::Admin
        };
        let change = GameStatusChange {
            to,
            trigger,
            actor: None,
            reason: None,
            at: clock.now(),
            expected_approved: None,
        };
        store
            .update_game_status(game.id, from, &change)
            .await
            .unwrap();
    }
    let record = RuntimeRecord {
        status: RuntimeStatus::Running,
        binding: Some(RuntimeBinding {
            container_id: "fake".into(),
            engine_endpoint: "http://127.0.0.1:9".into(),
        }),
        next_turn_at: Some(at(18, 0)),
        ..RuntimeRecord::new(game.id, EngineName::reference(), clock.now())
    };
    store.insert_record(&record).await.unwrap();
    let players: Vec<(UserId, String)> = races
        .iter()
        .map(|r| (UserId::from_uuid(uuid::Uuid::new_v4()), (*r).to_owned()))
        .collect();
    let seats: Vec<(String, UserId)> = players.iter().map(|(u, r)| (r.clone(), *u)).collect();
    store.ensure_races(game.id, &seats).await.unwrap();
    Replicas {
        dbs,
        stores,
        schedulers,
        services,
        clock,
        engine,
        game: game.id,
        players,
    }
}

impl Replicas {
    /// Both schedulers tick at the same time, `rounds` times.
    async fn race(&self, rounds: usize) {
        for _ in 0..rounds {
            let (a, b) = tokio::join!(
                self.schedulers[0].tick_and_drain(),
                self.schedulers[1].tick_and_drain()
            );
            a.unwrap();
            b.unwrap();
        }
    }

    /// The stored intents of `kind` (found through their routes).
    async fn intents(
        &self,
        kind: NotificationKind,
    ) -> Vec<galaxy_core::domain::notification::NotificationIntent> {
        let store = &self.stores[1];
        let routes = store
            .list_routes(None, &PageRequest::first(200).unwrap())
            .await
            .unwrap()
            .items;
        let mut ids: Vec<_> = routes.iter().map(|r| r.intent_id).collect();
        ids.sort();
        ids.dedup();
        let mut found = Vec::new();
        for id in ids {
            let intent = store.get_intent(id).await.unwrap();
            if intent.kind == kind {
                found.push(intent);
            }
        }
        found
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_run_an_early_turn_once() {
    let r = replicas(&["Ayrans", "Bolgs"]).await;
    let store = &r.stores[0];
    r.mark_ready("Ayrans", 1).await;
    r.race(3).await;
    assert!(
        r.engine.advanced.lock().unwrap().is_empty(),
        "Bolgs is not ready"
    );
    r.mark_ready("Bolgs", 1).await;
    r.race(5).await;
    assert_eq!(
        *r.engine.advanced.lock().unwrap(),
        vec![1],
        "turn 1 ran once"
    );
    let record = store.get_record(r.game).await.unwrap();
    assert_eq!(record.current_turn, 1);
    // 12:00 + 1 h: today's 18:00 is far enough.
    assert_eq!(record.next_turn_at, Some(at(18, 0)));
    let turns = store.list_turns(r.game).await.unwrap();
    assert_eq!(turns.iter().map(|t| t.turn).collect::<Vec<_>>(), vec![1]);
    // Ready for turn 2 again, at 17:30: the early turn runs, and the deadline moves to
    // tomorrow (today's 18:00 is closer than the 1 h gap).
    r.clock.set(at(17, 30));
    r.mark_ready("Ayrans", 2).await;
    r.mark_ready("Bolgs", 2).await;
    r.race(5).await;
    assert_eq!(*r.engine.advanced.lock().unwrap(), vec![1, 2]);
    assert_eq!(*r.engine.calls.lock().unwrap(), vec![1, 2]);
    let record = store.get_record(r.game).await.unwrap();
    assert_eq!(
        record.next_turn_at,
        Some(Utc.with_ymd_and_hms(2030, 1, 2, 18, 0, 0).unwrap())
    );
    r.dbs.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reminder_workers_remind_each_player_once() {
    let r = replicas(&["Ayrans", "Bolgs", "Cyrox"]).await;
    r.mark_ready("Ayrans", 1).await;
    // 15:59: not yet (the reminder is 2 h before 18:00).
    r.clock.set(at(15, 59));
    r.race(2).await;
    assert!(r.intents(NotificationKind::TurnReminder).await.is_empty());
    // 16:00 to 17:00: both schedulers, many ticks; one reminder each for Bolgs and Cyrox.
    for minute in [0, 1, 30] {
        r.clock.set(at(16, minute));
        r.race(3).await;
    }
    let reminders = r.intents(NotificationKind::TurnReminder).await;
    let mut to: Vec<UserId> = reminders
        .iter()
        .flat_map(|i| i.recipients.clone())
        .collect();
    to.sort();
    let mut expected = vec![r.players[1].0, r.players[2].0];
    expected.sort();
    assert_eq!(to, expected, "{reminders:?}");
    assert!(r.engine.advanced.lock().unwrap().is_empty(), "no turn ran");
    r.dbs.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_through_two_replicas_stop_at_the_bound() {
    let r = replicas(&["Ayrans", "Bolgs"]).await;
    let (player, race) = r.players[0].clone();
    let actor = Actor {
        user_id: player,
        is_admin: false,
    };
    // Up to two short of the bound one at a time, alternating replicas.
    let bound = MAX_SUBMISSIONS_PER_TURN;
    for i in 0..bound - 2 {
        let service = &r.services[usize::try_from(i % 2).unwrap()];
        service
            .submit_orders(actor, r.game, 1, &json!([i]))
            .await
            .unwrap();
    }
    // Then twelve at once, six through each replica: two are taken, ten refused.
    let barrier = Arc::new(tokio::sync::Barrier::new(12));
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let service = Arc::clone(&r.services[i % 2]);
            let barrier = Arc::clone(&barrier);
            let game = r.game;
            tokio::spawn(async move {
                barrier.wait().await;
                service
                    .submit_orders(actor, game, 1, &json!(["racing", i]))
                    .await
            })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap().map_or_else(|e| e.code(), |_| "ok"));
    }
    codes.sort_unstable();
    let mut expected = vec!["ok"; 2];
    expected.extend(["rate_limited"; 10]);
    assert_eq!(codes, expected);
    let store = &r.stores[1];
    assert_eq!(store.count_orders(r.game, &race, 1).await.unwrap(), bound);
    assert_eq!(*r.engine.submissions.lock().unwrap(), bound);
    r.dbs.cleanup().await.unwrap();
}
