//! The runtime's use cases for admins: pause, resume, stop, force-next-turn, retry-start,
//! and reading records and health events. Players' orders and reports are in `player.rs`.

use std::fmt;
use std::sync::Arc;

use serde_json::json;

use super::lease::detached;
use super::shared::{Engines, Initialiser, JobQueue, Notices, Statuses};
use super::turns::{TurnRunner, holding_turn, play_turn};
use super::{RuntimeConfig, RuntimeError, RuntimePorts};
use super::{announce, archive};
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::health::HealthEvent;
use crate::domain::lease::ClaimRequest;
use crate::domain::notification::NotificationKind;
use crate::domain::page::{Page, PageRequest};
use crate::domain::runtime::{JobKind, JobStatus, RuntimeJob, RuntimeRecord, RuntimeStatus};
use crate::domain::{GameId, LeaseToken};
use crate::ports::{
    ApplicationStore, HealthEventStore, OrdersStore, StoreError, TurnArchiveStore, TurnUpdate,
};
use crate::service::Actor;

/// How many idempotency keys one retry tries when earlier jobs under the same attempt
/// number already finished (the lobby walks the same sequence).
const START_KEY_ATTEMPTS: u32 = 8;

/// The runtime's use cases. Cheap to clone: everything is behind `Arc`s.
#[derive(Clone)]
pub struct RuntimeService {
    /// Game and record changes and reads (pause, resume, stop, retry, records).
    pub(super) statuses: Statuses,
    /// Plays a forced turn as the scheduler plays a due one.
    pub(super) turns: TurnRunner,
    /// Players' orders, forwarded to their game's engine.
    pub(super) engines: Engines,
    /// `/admin/init` of an engine resumed before its first turn.
    pub(super) init: Initialiser,
    /// The cancellation notice to players and host.
    pub(super) notices: Notices,
    /// The stop job of a stopped game and the start job of a retried one.
    pub(super) queue: JobQueue,
    /// Approved applications: a caller's race, a game's players.
    pub(super) applications: Arc<dyn ApplicationStore>,
    /// Reports, turn history and results.
    pub(super) archive: Arc<dyn TurnArchiveStore>,
    /// Every orders submission the engine answered.
    pub(super) orders: Arc<dyn OrdersStore>,
    /// Health events, listed for admins.
    pub(super) health: Arc<dyn HealthEventStore>,
    /// `max_orders_bytes`: the largest orders body forwarded to an engine.
    pub(super) max_orders_bytes: usize,
    /// The play-by-email habits: race records, seats, preferences, messages.
    pub(super) pbem: super::pbem::Pbem,
}

impl fmt::Debug for RuntimeService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeService")
            .field("max_orders_bytes", &self.max_orders_bytes)
            .field("turns", &self.turns.settings)
            .finish_non_exhaustive()
    }
}

impl RuntimeService {
    /// A service over `ports`, configured by `config`. Each use case keeps only the
    /// ports and settings it uses; the rest of `config` belongs to the workers.
    pub fn new(ports: RuntimePorts, config: RuntimeConfig) -> Self {
        Self {
            statuses: Statuses::new(&ports),
            turns: TurnRunner::new(&ports, &config),
            engines: Engines::new(&ports, &config),
            init: Initialiser::new(&ports, &config),
            notices: Notices::new(&ports),
            queue: JobQueue::new(&ports),
            applications: Arc::clone(&ports.applications),
            archive: Arc::clone(&ports.archive),
            orders: Arc::clone(&ports.orders),
            health: Arc::clone(&ports.health),
            max_orders_bytes: config.max_orders_bytes,
            pbem: super::pbem::Pbem::new(&ports, &config),
        }
    }

    /// `running -> paused` (trigger admin); no turn runs until it resumes.
    pub async fn pause(&self, actor: Actor, game_id: GameId) -> Result<Game, RuntimeError> {
        admin_only(&actor)?;
        let game = self.game(game_id).await?;
        require(&game, "pause", &[GameStatus::Running])?;
        let paused = self
            .change(
                &game,
                GameStatus::Paused,
                actor,
                crate::domain::game::reasons::PAUSED_BY_ADMIN,
            )
            .await?;
        self.statuses.unschedule(game_id).await;
        Ok(paused)
    }

    /// `paused -> running` (trigger admin), only while the runtime is running and healthy;
    /// turns resume at the schedule's next firing. An engine that never played a turn
    /// (paused right after start) is initialised first (idempotent by contract).
    pub async fn resume(&self, actor: Actor, game_id: GameId) -> Result<Game, RuntimeError> {
        admin_only(&actor)?;
        let game = self.game(game_id).await?;
        require(&game, "resume", &[GameStatus::Paused])?;
        let record = self.runtime_of(game_id).await?;
        let unhealthy = |reason: &str| RuntimeError::Unhealthy {
            reason: reason.to_owned(),
        };
        if record.status != RuntimeStatus::Running {
            return Err(unhealthy(&format!("its runtime is {}", record.status)));
        }
        if !record.healthy {
            return Err(unhealthy("its last health verdict was unhealthy"));
        }
        let Some(binding) = &record.binding else {
            return Err(unhealthy("no engine is bound to it"));
        };
        if record.current_turn == 0 {
            // What the start job could not finish: the engine's init, then turn 0's
            // archive (its reports, and the `game_started` mail it owes). An engine that
            // still fails leaves the game paused, with the reason.
            let target = self.engines.engine_target(game_id, binding);
            let init = self.init.init_engine(&game, &target);
            let state = init.await?.map_err(RuntimeError::engine)?;
            if self.archive.latest_turn(game_id).await?.is_none() {
                let seats = archive::seats(&self.turns, game_id).await?;
                let answered = (&state, self.turns.statuses.now());
                archive::archive_turns(&self.turns, game_id, &target, &seats, 0, answered).await?;
            }
        }
        // Scheduled before the status changes, as a start job does: a crash (or a failed
        // call, or a caller gone) between the two leaves a paused game with a schedule,
        // which the scheduler clears at its firing, never a running game that no turn is
        // ever due for.
        let next = self.statuses.next_turn_at(&game);
        let records = &self.statuses.records;
        records
            .set_schedule(game_id, next, false, self.statuses.now())
            .await?;
        let resumed = self
            .change(
                &game,
                GameStatus::Running,
                actor,
                crate::domain::game::reasons::RESUMED_BY_ADMIN,
            )
            .await?;
        // A scheduler that reached that firing between the two steps found the game
        // paused and cleared its schedule: it is given back (no turn can be claimed
        // meanwhile, with no turn due).
        // The game is running now: a failure here is logged, not answered as a failed
        // resume (the reconciler schedules a running game that has no turn due).
        match records.get_record(game_id).await {
            Ok(record) if record.next_turn_at.is_none() => {
                let next = self.statuses.next_turn_at(&resumed);
                let now = self.statuses.now();
                if let Err(error) = records.set_schedule(game_id, next, false, now).await {
                    tracing::warn!(%error, %game_id, "resumed game's schedule not given back");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, %game_id, "resumed game's schedule not checked again");
            }
        }
        // Turn 0's `game_started`, if it is still owed (else a no-op).
        announce::announce_latest(&self.turns, game_id).await;
        Ok(resumed)
    }

    /// `running | paused -> cancelled` (trigger admin), then a durable stop job removes
    /// the container. Players and host are told.
    pub async fn stop(&self, actor: Actor, game_id: GameId) -> Result<Game, RuntimeError> {
        admin_only(&actor)?;
        let game = self.game(game_id).await?;
        require(&game, "stop", &[GameStatus::Running, GameStatus::Paused])?;
        let cancelled = self
            .change(
                &game,
                GameStatus::Cancelled,
                actor,
                crate::domain::game::reasons::STOPPED_BY_ADMIN,
            )
            .await?;
        self.statuses.unschedule(game_id).await;
        let key = format!("stop:{game_id}:{}", GameStatus::Cancelled);
        self.queue.enqueue(game_id, JobKind::Stop, key).await?;
        // Whoever plays each race now (a replacement player, not the one replaced).
        let mut audience = match archive::seats(&self.turns, game_id).await {
            Ok(seats) => seats.into_iter().map(|s| s.user_id).collect(),
            Err(error) => {
                tracing::warn!(%error, %game_id, "players not listed; they are not notified");
                Vec::new()
            }
        };
        audience.push(cancelled.host);
        let payload = json!({
            "game_id": cancelled.id,
            "game_name": cancelled.settings.name.as_str(),
        });
        let key = format!("game:{game_id}:cancelled");
        let kind = NotificationKind::GameCancelled;
        self.notices
            .notify(kind, key, audience, game_id, payload)
            .await;
        Ok(cancelled)
    }

    /// Runs the next turn now (`expected_turn = current + 1`) and sets the one-shot skip
    /// flag, so the next scheduled tick is consumed without a turn. Returns the record
    /// after the turn. An engine fault pauses the game, as for a scheduled turn.
    pub async fn force_next_turn(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<RuntimeRecord, RuntimeError> {
        self.force_turn(actor, game_id, None).await
    }

    /// [`RuntimeService::force_next_turn`], only if `turn` (when given) is the game's
    /// next turn: [`RuntimeError::TurnNotNext`] otherwise, and nothing runs. A caller
    /// whose request ended without an answer (a timeout: the turn runs on without it)
    /// can send the same request again without playing a second turn.
    pub async fn force_turn(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: Option<u32>,
    ) -> Result<RuntimeRecord, RuntimeError> {
        admin_only(&actor)?;
        let game = self.game(game_id).await?;
        require(&game, "force a turn of", &[GameStatus::Running])?;
        let turns = &self.turns;
        let claim = ClaimRequest {
            token: turns.statuses.time.lease_token(),
            now: turns.statuses.now(),
            lease: turns.settings.lease,
            limit: 1,
        };
        let record = match turns.statuses.records.claim_turn(game_id, &claim).await {
            Ok(record) => record,
            Err(StoreError::Conflict { .. }) => return Err(RuntimeError::TurnInProgress),
            Err(StoreError::NotFound { .. }) => {
                return Err(RuntimeError::not_found("runtime record", game_id));
            }
            Err(error) => return Err(error.into()),
        };
        // Under the claim: the game is read again from the store (a pause or stop may have
        // landed since it was read, neither takes the turn lease, and it must not play a
        // turn), and the turn played last is tallied before another is played (the
        // scheduler's pass does it before its claims, but a forced turn may come before
        // the next pass, and a turn never tallied would never count its misses).
        let ready = async {
            let next = record.current_turn.saturating_add(1);
            if let Some(asked) = turn.filter(|&asked| asked != next) {
                return Err(RuntimeError::TurnNotNext { asked, next });
            }
            let game = turns.statuses.games.get_game_fresh(game_id).await?;
            require(&game, "force a turn of", &[GameStatus::Running])?;
            let last = record.current_turn;
            super::pbem::pass::tally_last_played(&self.pbem, &game, last).await?;
            Ok::<Game, RuntimeError>(game)
        };
        let game = match ready.await {
            Ok(game) => game,
            Err(refusal) => {
                self.let_go(&record, claim.token, &refusal).await;
                return Err(refusal);
            }
        };
        let expected = record.current_turn.saturating_add(1);
        let next = record.next_turn_at;
        tracing::info!(%game_id, turn = expected, by = %actor.user_id, "turn forced by an admin");
        // The turn runs in a task of its own, under its lease: a caller that goes away
        // (a request timeout, a closed connection) must not cut it off halfway, with the
        // engine past the turn and nothing archived or recorded until the lease lapses.
        let runner = turns.clone();
        let token = claim.token;
        let played = detached(async move {
            let play = play_turn(&runner, &game, &record, token, expected, next, true);
            holding_turn(&runner, game.id, token, play).await
        })
        .await?;
        match played {
            Some(record) => Ok(record),
            None => Err(RuntimeError::TurnInProgress),
        }
    }

    /// Releases a forced turn's claim without a turn. A game that stopped running is
    /// released unscheduled, then unscheduled again through [`Statuses::unschedule`],
    /// which gives a game resumed meanwhile its schedule back; any other refusal leaves
    /// the record as it was claimed. A failed release is logged: the claim lapses.
    async fn let_go(&self, record: &RuntimeRecord, token: LeaseToken, refusal: &RuntimeError) {
        let stopped = matches!(refusal, RuntimeError::WrongStatus { .. });
        let release = TurnUpdate {
            current_turn: record.current_turn,
            next_turn_at: record.next_turn_at.filter(|_| !stopped),
            skip_next_tick: record.skip_next_tick && !stopped,
        };
        let statuses = &self.turns.statuses;
        let game_id = record.game_id;
        let now = statuses.now();
        if let Err(error) = statuses
            .records
            .complete_turn(game_id, token, &release, now)
            .await
        {
            tracing::warn!(%error, %game_id, "forced turn's claim not released; it lapses");
        }
        if stopped {
            statuses.unschedule(game_id).await;
        }
    }

    /// Creates a paused game's engine again when its container is gone (the reconciler
    /// marked the record `removed`: a backup restored on a fresh machine, a lost Docker
    /// host): queues a restart job that creates the container under the same name, so
    /// the engine resumes from its kept data. An engine the runtime gave up restarting
    /// (record `running` but unhealthy: `restart_failed`, `crash_loop`) gets the same job,
    /// which starts its container again, once an admin has seen to the cause. The game
    /// stays paused; resume it once the record is `running` and healthy. Returns the game
    /// as it is.
    pub async fn recreate_engine(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<Game, RuntimeError> {
        admin_only(&actor)?;
        let game = self.game(game_id).await?;
        require(&game, "create the engine again of", &[GameStatus::Paused])?;
        let record = self.runtime_of(game_id).await?;
        if !record.needs_recreation() {
            return Err(RuntimeError::Unhealthy {
                reason: format!(
                    "its runtime is {}{}, and only an engine whose container is gone, whose \
                     re-creation failed or whose restarts gave up is created again{}",
                    record.status,
                    if record.healthy { " and healthy" } else { "" },
                    if record.healthy && record.status == RuntimeStatus::Running {
                        " (resume the game instead)"
                    } else {
                        ""
                    }
                ),
            });
        }
        let job = super::restart::queue_recreate(&self.queue, game_id).await?;
        tracing::info!(%game_id, job_id = %job.id, by = %actor.user_id, "engine re-creation queued by an admin");
        Ok(game)
    }

    /// `start_failed -> starting` (trigger admin) with a fresh start job, queued before
    /// the compare-and-set under the lobby's key scheme (`start:<game>:<n>`, `n` = earlier
    /// transitions to `starting`).
    pub async fn retry_start(&self, actor: Actor, game_id: GameId) -> Result<Game, RuntimeError> {
        admin_only(&actor)?;
        let history = self.statuses.games.game_transitions(game_id).await;
        let game = self.game(game_id).await?;
        require(&game, "retry the start of", &[GameStatus::StartFailed])?;
        let n = history?
            .iter()
            .filter(|t| t.to == GameStatus::Starting)
            .count();
        let job = self.enqueue_start(game_id, n).await?;
        let starting = self
            .change(
                &game,
                GameStatus::Starting,
                actor,
                "start retried by an admin",
            )
            .await?;
        // A worker may have taken the job before the change landed and ended it as a
        // no-op: queue the next one.
        match self.queue.jobs.get_job(job.id).await {
            Ok(seen) if finished(seen.status) => {
                if let Err(error) = self.enqueue_start(game_id, n).await {
                    tracing::error!(%error, %game_id, "game is starting but no start job could be queued");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, %game_id, "start job not re-read"),
        }
        Ok(starting)
    }

    /// Every runtime record, oldest first (admin).
    pub async fn records(
        &self,
        actor: Actor,
        page: &PageRequest,
    ) -> Result<Page<RuntimeRecord>, RuntimeError> {
        admin_only(&actor)?;
        Ok(self.statuses.records.list_records(None, page).await?)
    }

    /// One game's runtime record (admin).
    pub async fn record(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<RuntimeRecord, RuntimeError> {
        admin_only(&actor)?;
        self.runtime_of(game_id).await
    }

    /// Health events, of one game or all, newest first (admin).
    pub async fn health_events(
        &self,
        actor: Actor,
        game_id: Option<GameId>,
        page: &PageRequest,
    ) -> Result<Page<HealthEvent>, RuntimeError> {
        admin_only(&actor)?;
        let health = &self.health;
        Ok(health.list_health_events(game_id, page).await?)
    }

    pub(super) async fn game(&self, game_id: GameId) -> Result<Game, RuntimeError> {
        match self.statuses.games.get_game(game_id).await {
            Ok(game) => Ok(game),
            Err(StoreError::NotFound { .. }) => Err(RuntimeError::not_found("game", game_id)),
            Err(error) => Err(error.into()),
        }
    }

    pub(super) async fn runtime_of(&self, game_id: GameId) -> Result<RuntimeRecord, RuntimeError> {
        match self.statuses.records.get_record(game_id).await {
            Ok(record) => Ok(record),
            Err(StoreError::NotFound { .. }) => {
                Err(RuntimeError::not_found("runtime record", game_id))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// An admin's compare-and-set from the status this call read.
    async fn change(
        &self,
        game: &Game,
        to: GameStatus,
        actor: Actor,
        reason: &str,
    ) -> Result<Game, RuntimeError> {
        game.status
            .check(to, GameTrigger::Admin)
            .map_err(RuntimeError::InvalidTransition)?;
        let reason = Some(reason.to_owned());
        let changed = self
            .statuses
            .change_game(
                game.id,
                game.status,
                to,
                GameTrigger::Admin,
                Some(actor.user_id),
                reason,
            )
            .await?;
        changed.ok_or(RuntimeError::StatusChanged {
            expected: game.status,
        })
    }

    /// Queues (or finds) the live start job of attempt `n`, walking the lobby's key
    /// sequence past jobs that already finished.
    async fn enqueue_start(&self, game_id: GameId, n: usize) -> Result<RuntimeJob, RuntimeError> {
        let mut last = String::new();
        for retry in 0..START_KEY_ATTEMPTS {
            let key = match retry {
                0 => format!("start:{game_id}:{n}"),
                r => format!("start:{game_id}:{n}:{r}"),
            };
            let job = self.queue.enqueue(game_id, JobKind::Start, key).await?;
            if !finished(job.status) {
                return Ok(job);
            }
            last = job.idempotency_key;
        }
        Err(StoreError::conflict("runtime job", last, "every start key is used up").into())
    }
}

fn finished(status: JobStatus) -> bool {
    matches!(status, JobStatus::Succeeded | JobStatus::Failed)
}

fn admin_only(actor: &Actor) -> Result<(), RuntimeError> {
    if actor.is_admin {
        Ok(())
    } else {
        Err(RuntimeError::Forbidden {
            reason: "only admins may manage game runtimes",
        })
    }
}

fn require(game: &Game, action: &'static str, allowed: &[GameStatus]) -> Result<(), RuntimeError> {
    if allowed.contains(&game.status) {
        Ok(())
    } else {
        Err(RuntimeError::WrongStatus {
            action,
            status: game.status,
        })
    }
}
