//! The turn scheduler, and the one way a turn is played (scheduled or forced).
//!
//! Due games are claimed under a lease, so with several replicas each turn runs once.
//! Every turn call carries the expected turn number: an engine already past it answers
//! its state and runs nothing, which the scheduler takes as done, so a retried call never
//! runs two turns. An engine that fails, hangs (bounded by the engine client's timeout
//! and `engine_call_timeout`), answers garbage or an earlier turn pauses its own game
//! with a health event and an admin alert; the other games of the pass run on.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::lease::holding_lease;
use super::mail_wait::mail_before;
use super::pbem::pass::run_early;
use super::shared::{Engines, HealthLog, JobQueue, Notices, Statuses};
use super::{RuntimeConfig, RuntimeError, RuntimePorts};
use super::{announce, archive};
use crate::domain::game::{Game, GameStatus};
use crate::domain::health::HealthEventKind;
use crate::domain::lease::ClaimRequest;
use crate::domain::play::PlayedTurn;
use crate::domain::runtime::{DueAction, RuntimeRecord};
use crate::domain::{GameId, LeaseToken, Timestamp};
use crate::ports::{
    ApplicationStore, InboundMailStore, PbemStore, StoreError, TurnArchiveStore, TurnUpdate,
};
use crate::worker::pool::TaskPool;
use crate::worker::{TickReport, Worker};

/// What playing a turn uses (a scheduled or forced turn, and turn 0 of a start job):
/// the engine, the archive, the game's status and schedule, and the effects a turn owes.
#[derive(Clone)]
pub(super) struct TurnRunner {
    /// Game and record changes; the turn lease lives on the record.
    pub(super) statuses: Statuses,
    /// Runs the turn and fetches the reports.
    pub(super) engines: Engines,
    /// The approved applications: the seats whose reports are archived and mailed.
    pub(super) applications: Arc<dyn ApplicationStore>,
    /// The race records: who plays each race now (a replacement player gets its mail).
    pub(super) races: Arc<dyn PbemStore>,
    /// Where played turns and their reports are kept (the outbox of their effects).
    pub(super) archive: Arc<dyn TurnArchiveStore>,
    /// The turn's, start's and finish's notifications to players.
    pub(super) notices: Notices,
    /// A failed turn's health event and alert.
    pub(super) health: HealthLog,
    /// A finished game's stop job.
    pub(super) queue: JobQueue,
    /// Inbound mail, when orders by e-mail is on: a scheduled turn waits for the mail
    /// received before its deadline.
    pub(super) inbound: Option<Arc<dyn InboundMailStore>>,
    /// The turn settings.
    pub(super) settings: TurnSettings,
}

/// The settings of the turn path.
#[derive(Debug, Clone, Copy)]
pub(super) struct TurnSettings {
    /// `turn_lease`: how long a claimed turn is held.
    pub(super) lease: TimeDelta,
    /// `turn_batch`: due games one pass claims (less those still waiting for a slot),
    /// and the page of owed turns the follow-up reads at a time.
    pub(super) batch: u32,
    /// `max_report_bytes`: the largest report archived.
    pub(super) max_report_bytes: usize,
    /// `report_attempts`: tries per report before the turn fails...
    pub(super) report_attempts: u32,
    /// ...`report_retry_delay`: with this first pause, doubling.
    pub(super) report_retry_delay: Duration,
    /// `turn_mail_grace`: the longest a scheduled turn waits for mail received before
    /// its deadline.
    pub(super) mail_grace: Duration,
}

impl TurnRunner {
    pub(super) fn new(ports: &RuntimePorts, config: &RuntimeConfig) -> Self {
        Self {
            statuses: Statuses::new(ports),
            engines: Engines::new(ports, config),
            applications: Arc::clone(&ports.applications),
            races: Arc::clone(&ports.pbem),
            archive: Arc::clone(&ports.archive),
            notices: Notices::new(ports),
            health: HealthLog::new(ports),
            queue: JobQueue::new(ports),
            inbound: ports.inbound.clone(),
            settings: TurnSettings {
                lease: config.turn_lease,
                batch: config.turn_batch,
                max_report_bytes: config.max_report_bytes,
                report_attempts: config.report_attempts,
                report_retry_delay: config.report_retry_delay,
                mail_grace: config.turn_mail_grace,
            },
        }
    }
}

/// Plays turn `expected` of a claimed game and writes the result back under `token`.
/// `skip_after` sets the one-shot skip flag (force-next-turn). On an engine fault the game
/// is paused and the fault returned. Returns the record after the turn was written
/// back; `None` when the lease was lost meanwhile (another scheduler owns the game now
/// and writes its own result).
pub(super) async fn play_turn(
    turns: &TurnRunner,
    game: &Game,
    record: &RuntimeRecord,
    token: LeaseToken,
    expected: u32,
    next_turn_at: Option<Timestamp>,
    skip_after: bool,
) -> Result<Option<RuntimeRecord>, RuntimeError> {
    let answer = match &record.binding {
        None => Err(RuntimeError::Unhealthy {
            reason: "no engine is bound to the game".into(),
        }),
        Some(binding) => {
            let target = turns.engines.engine_target(game.id, binding);
            let call = turns.engines.client.run_turn(&target, expected);
            // The state is checked against the game (its turn too) by the archive.
            match turns.engines.engine_call(call).await {
                Ok(state) => Ok((target, (state, turns.statuses.now()))),
                Err(error) => Err(RuntimeError::Engine(error)),
            }
        }
    };
    let (target, (state, played_at)) = match answer {
        Ok(answer) => answer,
        Err(fault) => return Err(turn_fault(turns, game, record, token, expected, fault).await),
    };
    // The archive comes before the turn is recorded: see `archive.rs` for why.
    let seats = archive::seats(turns, game.id).await?;
    let answered = (&state, played_at);
    match archive::archive_turns(turns, game.id, &target, &seats, expected, answered).await {
        Ok(_) => {}
        Err(RuntimeError::Store(error)) => return Err(error.into()),
        Err(fault) => {
            return Err(turn_fault(turns, game, record, token, expected, fault).await);
        }
    }
    // An admin may have paused or stopped the game while the engine computed the turn
    // (neither waits for the turn lease): their unscheduling stands, so a stopped game
    // is not left scheduled (nor a paused one given a deadline).
    let running = turns.statuses.games.get_game_fresh(game.id).await?.status == GameStatus::Running;
    let scheduled = running && !state.finished;
    let update = TurnUpdate {
        current_turn: state.turn,
        next_turn_at: next_turn_at.filter(|_| scheduled),
        skip_next_tick: skip_after && scheduled,
    };
    let records = &turns.statuses.records;
    let record = match records
        .complete_turn(game.id, token, &update, turns.statuses.now())
        .await
    {
        Ok(record) => Some(record),
        Err(StoreError::Conflict { .. }) => {
            tracing::warn!(game_id = %game.id, turn = state.turn, "turn lease lost; the new holder records the turn");
            None
        }
        Err(error) => return Err(error.into()),
    };
    // The turn's effects (the finish, the stop job, the notification) are owed by the
    // archived turn until announced: done here at once, or by the follow-up pass.
    announce::announce_latest(turns, game.id).await;
    Ok(record)
}

/// The engine failed a turn: mark the runtime unhealthy, pause the game (which clears
/// its schedule), release the claim, store a health event and alert the admins. Returns
/// `fault`.
///
/// The order is what makes it crash-safe: the game is paused before the claim is
/// released unscheduled, so a crash between any two steps leaves either a running game
/// still scheduled (its claim lapses and the turn is tried again) or a paused one, never
/// a running game that no turn is ever due for. A claim another scheduler has taken over
/// (the lease lapsed) leaves the fault to it: it plays the turn again, and a game it may
/// be playing well is not paused.
async fn turn_fault(
    turns: &TurnRunner,
    game: &Game,
    record: &RuntimeRecord,
    token: LeaseToken,
    expected: u32,
    fault: RuntimeError,
) -> RuntimeError {
    let ours = match renew_turn_lease(turns, game.id, token).await {
        Ok(held) => held.current_turn == record.current_turn,
        Err(StoreError::Conflict { .. }) => false,
        // Not known: the pause and the release below still check what they change.
        Err(_) => true,
    };
    if !ours {
        tracing::warn!(error = %fault, game_id = %game.id, expected, "engine failed a turn whose claim another scheduler holds (or played) now; it is left to that one");
        return fault;
    }
    tracing::warn!(error = %fault, game_id = %game.id, expected, "engine failed a turn; pausing the game");
    let records = &turns.statuses.records;
    let now = turns.statuses.now();
    if let Err(error) = records.set_healthy(game.id, false, now).await {
        tracing::warn!(%error, game_id = %game.id, "runtime not marked unhealthy");
    }
    let reason = format!("turn {expected} failed: {fault}");
    let paused = turns.statuses.pause_for_health(game.id, reason).await;
    if let Err(error) = &paused {
        tracing::error!(%error, game_id = %game.id, "game not paused after an engine fault; the turn is tried again");
    }
    // Paused (or no longer running: an admin's pause or stop, whose unscheduling
    // stands): released unscheduled. Not paused: released as claimed, so the turn is
    // tried again rather than the game left running with no turn due.
    let release = TurnUpdate {
        current_turn: record.current_turn,
        next_turn_at: record.next_turn_at.filter(|_| paused.is_err()),
        skip_next_tick: record.skip_next_tick && paused.is_err(),
    };
    if let Err(error) = records.complete_turn(game.id, token, &release, now).await {
        tracing::warn!(%error, game_id = %game.id, "turn lease not released; it lapses");
    }
    let detail = json!({
        "expected_turn": expected,
        "error": fault.to_string(),
    });
    let kind = HealthEventKind::TurnFailed;
    match turns.health.store_health_event(game.id, kind, detail).await {
        Ok(event) => turns.health.alert(&event).await,
        Err(error) => {
            tracing::warn!(%error, game_id = %game.id, "turn fault health event not stored")
        }
    }
    fault
}

/// Takes a claimed game's turn lease again under the same token, for a whole
/// `turn_lease` from now: a renewal while the holder still has it, but also a new claim
/// of a free or lapsed lease. Only for a claim about to start its work, which then checks
/// that the game is still where it was claimed (the scheduler's queued turns); a turn in
/// progress renews strictly ([`holding_turn`]).
async fn reclaim_turn(
    turns: &TurnRunner,
    game_id: GameId,
    token: LeaseToken,
) -> Result<RuntimeRecord, StoreError> {
    let claim = ClaimRequest {
        token,
        now: turns.statuses.now(),
        lease: turns.settings.lease,
        limit: 1,
    };
    turns.statuses.records.claim_turn(game_id, &claim).await
}

/// Extends the turn lease `token` holds by a whole `turn_lease`; `Conflict` when it no
/// longer holds it (freed by its own turn's completion, or taken over after it lapsed).
async fn renew_turn_lease(
    turns: &TurnRunner,
    game_id: GameId,
    token: LeaseToken,
) -> Result<RuntimeRecord, StoreError> {
    let now = turns.statuses.now();
    let until = now + turns.settings.lease;
    let records = &turns.statuses.records;
    records.renew_turn_lease(game_id, token, until, now).await
}

/// Runs `work` (a turn, or a due game's handling) while renewing the game's turn lease
/// every third of `turn_lease` ([`holding_lease`]): an engine may take minutes over a
/// turn and each report, and without renewals another scheduler would claim the game and
/// call the engine for the same turn.
pub(super) async fn holding_turn<T>(
    turns: &TurnRunner,
    game_id: GameId,
    token: LeaseToken,
    work: impl Future<Output = T>,
) -> T {
    let holder = format!("turn of game {game_id}");
    let renew = || async { renew_turn_lease(turns, game_id, token).await.map(drop) };
    holding_lease(turns.settings.lease, &holder, renew, work).await
}

/// How long a pass waits at most for its claimed games to get a slot. Games claimed in a
/// batch are fed through the slots as turns end, and waiting for that keeps to one pass
/// (and one claim) per batch while a backlog drains; the bound keeps the play-by-email
/// pass (reminders, early turns) coming round about as often as when the scheduler is
/// idle while slow engines hold every slot.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// Claims due games and runs one turn (or consumes one skip) each, and runs the turns
/// the play-by-email pass finds may run early.
///
/// A turn can take minutes (the engine's turn call, then each report fetched with
/// retries), so the turns run in the background, at most `turn_concurrency` at once:
/// [`Worker::tick`] runs the pass's follow-ups, tallies and reminders, claims a batch of
/// due games (`turn_batch`, less those still waiting for a slot), gives each a free slot
/// or a place in the queue, starts the early turns in the slots left and returns. One slow engine
/// then holds up one slot, not this replica's next passes (other games' due turns,
/// reminders, early turns). [`Worker::drain`] waits for the turns in flight: at shutdown,
/// and in tests through [`Worker::tick_and_drain`].
pub struct TurnScheduler {
    /// Plays the turns.
    turns: TurnRunner,
    /// The play-by-email pass: tallies, reminders, early turns.
    pbem: super::pbem::Pbem,
    /// The turns in flight, one slot each of `turn_concurrency`.
    pool: TaskPool,
    /// Fires on shutdown: a claimed game whose turn has not begun is let go at once.
    cancel: CancellationToken,
    /// The owed turn the follow-up's walk goes on after (see `announce.rs`).
    owed_from: Mutex<Option<PlayedTurn>>,
}

impl TurnScheduler {
    /// A scheduler over `ports`.
    pub fn new(ports: RuntimePorts, config: RuntimeConfig) -> Self {
        Self {
            turns: TurnRunner::new(&ports, &config),
            pbem: super::pbem::Pbem::new(&ports, &config),
            pool: TaskPool::new("turn", config.turn_concurrency),
            cancel: CancellationToken::new(),
            owed_from: Mutex::new(None),
        }
    }

    /// Ties the scheduler to a shutdown token: the turns in progress finish (awaited by
    /// [`Worker::drain`]), and the claimed games still waiting for a slot are released
    /// as they stand, due for the next scheduler (another replica's, or this process's
    /// after its restart) rather than played during shutdown or held until their lease
    /// lapses.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }
}

/// Lets a claimed game go as it stands, its turn not begun (shutdown).
async fn let_go(turns: &TurnRunner, record: &RuntimeRecord, token: LeaseToken) {
    let (next, skip) = (record.next_turn_at, record.skip_next_tick);
    match release(turns, record, token, next, skip).await {
        Ok(()) => tracing::info!(game_id = %record.game_id, "due game let go at shutdown"),
        Err(error) => {
            tracing::warn!(%error, game_id = %record.game_id, "claim not released; it lapses");
        }
    }
}

/// Handles one game of a pass's claim under its turn lease. The claim was taken before
/// the game's task began: it is taken again first, and a game another scheduler claimed
/// meanwhile is left to it.
async fn claimed(
    turns: &TurnRunner,
    record: RuntimeRecord,
    token: LeaseToken,
    cancel: CancellationToken,
) {
    let game_id = record.game_id;
    let renewed = match reclaim_turn(turns, game_id, token).await {
        Ok(renewed) => renewed,
        Err(StoreError::Conflict { .. }) => {
            tracing::info!(%game_id, "due game claimed by another scheduler meanwhile");
            return;
        }
        Err(error) => {
            tracing::warn!(%error, %game_id, "due game's claim not renewed; it lapses");
            return;
        }
    };
    // Another scheduler may also have claimed, played and released it meanwhile: then it
    // is no longer due (or on another turn), and is let go as it stands.
    let now = turns.statuses.now();
    let still_due = renewed.current_turn == record.current_turn
        && renewed.next_turn_at.is_some_and(|at| at <= now);
    if !still_due {
        tracing::info!(%game_id, "due game handled by another scheduler meanwhile");
        let next = renewed.next_turn_at;
        if let Err(error) = release(turns, &renewed, token, next, renewed.skip_next_tick).await {
            tracing::warn!(%error, %game_id, "claim not released; it lapses");
        }
        return;
    }
    holding_turn(turns, game_id, token, due(turns, renewed, token, &cancel)).await;
}

async fn due(
    turns: &TurnRunner,
    record: RuntimeRecord,
    token: LeaseToken,
    cancel: &CancellationToken,
) {
    // Mailed orders first, before the game is read fresh below: a pause or a stop made
    // while the turn waited for them is then seen.
    if let Some(deadline) = record.next_turn_at
        && !mail_before(turns, &record, deadline, cancel).await
    {
        // Shutting down: the claim goes back as it stands, for the next scheduler.
        let (next, skip) = (record.next_turn_at, record.skip_next_tick);
        if let Err(error) = release(turns, &record, token, next, skip).await {
            tracing::warn!(%error, game_id = %record.game_id, "claim not released; it lapses");
        }
        return;
    }
    // Read past the cache: another replica may have paused or stopped the game a moment
    // ago, and a turn must not be played (nor the schedule cleared) on a status this
    // replica has not heard of yet.
    let game = match turns.statuses.games.get_game_fresh(record.game_id).await {
        Ok(game) => game,
        Err(error) => {
            tracing::warn!(%error, game_id = %record.game_id, "due game not read; its claim lapses");
            return;
        }
    };
    let now = turns.statuses.now();
    let action = record.on_due(&game.settings.schedule, now);
    let result = match (game.status, action) {
        (
            GameStatus::Running,
            DueAction::RunTurn {
                expected_turn,
                next_turn_at,
            },
        ) => {
            let played = play_turn(
                turns,
                &game,
                &record,
                token,
                expected_turn,
                next_turn_at,
                false,
            );
            played.await.map(|_| ())
        }
        (GameStatus::Running, DueAction::Skip { next_turn_at }) => {
            tracing::info!(game_id = %game.id, "scheduled tick skipped after a forced turn");
            release(turns, &record, token, next_turn_at, false).await
        }
        // Still `starting` (the record is scheduled just before the game's change lands):
        // try again at the next firing. Any other status runs no turns.
        (GameStatus::Starting, action) => {
            let next = match action {
                DueAction::RunTurn { next_turn_at, .. } | DueAction::Skip { next_turn_at } => {
                    next_turn_at
                }
            };
            release(turns, &record, token, next, record.skip_next_tick).await
        }
        _ => release(turns, &record, token, None, false).await,
    };
    if let Err(error) = result {
        tracing::warn!(%error, game_id = %game.id, "due game not handled");
    }
}

/// Frees a claim without a turn, with a new schedule.
async fn release(
    turns: &TurnRunner,
    record: &RuntimeRecord,
    token: LeaseToken,
    next_turn_at: Option<Timestamp>,
    skip_next_tick: bool,
) -> Result<(), RuntimeError> {
    let update = TurnUpdate {
        current_turn: record.current_turn,
        next_turn_at,
        skip_next_tick,
    };
    let now = turns.statuses.now();
    turns
        .statuses
        .records
        .complete_turn(record.game_id, token, &update, now)
        .await?;
    Ok(())
}

#[async_trait]
impl Worker for TurnScheduler {
    fn name(&self) -> &'static str {
        "turn_scheduler"
    }

    /// Runs the follow-ups and the play-by-email pass, claims due games (a batch, less
    /// the games of earlier passes still waiting for a slot) and queues a task for each,
    /// then starts one task for each game the pass found may run its turn early, in the
    /// slots free. Returns once the claimed games have a slot, or after a second,
    /// without waiting for the turns. A claimed game that waits for a slot longer than
    /// the turn lease is taken by another replica meanwhile, and let go here.
    ///
    /// `handled` counts the due games claimed, so that the loop comes back at once after
    /// a full batch. An early turn may yet find it must not run (its readiness is checked
    /// again under the claim), and counting those would spin the loop on a game that
    /// never runs.
    async fn tick(&self) -> Result<TickReport, StoreError> {
        let turns = &self.turns;
        // The follow-up step first: effects a failure left owed (see `announce.rs`).
        // Where the last pass's walk over owed turns stopped (a std mutex, not held across
        // an await: taken out, and put back after).
        let mut cursor = self
            .owed_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let owed = announce::announce_owed(turns, &mut cursor).await;
        *self
            .owed_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = cursor;
        match owed {
            Ok(0) => {}
            Ok(announced) => tracing::info!(announced, "owed turn effects completed"),
            Err(error) => tracing::warn!(%error, "owed turn effects not listed"),
        }
        // The play-by-email pass: missed-turn tallies, reminders, early turns found.
        let pass = super::pbem::pass::run(&self.pbem).await;
        // Due games: a batch less those still waiting for a slot, fed through the slots
        // as they free up.
        let batch = usize::try_from(turns.settings.batch.max(1)).unwrap_or(usize::MAX);
        let room = batch.saturating_sub(self.pool.queued());
        let mut handled = 0;
        let mut slots = self.pool.free();
        if room > 0 && !self.cancel.is_cancelled() {
            let claim = ClaimRequest {
                token: turns.statuses.time.lease_token(),
                now: turns.statuses.now(),
                lease: turns.settings.lease,
                limit: u32::try_from(room).unwrap_or(u32::MAX),
            };
            let due = turns.statuses.records.claim_due_turns(&claim).await?;
            handled = due.len();
            // The free slots to due games first; the others wait for one in the queue.
            for record in due {
                let (turns, token, cancel) = (turns.clone(), claim.token, self.cancel.clone());
                if let Some(slot) = slots.pop() {
                    self.pool.spawn(
                        slot,
                        async move { claimed(&turns, record, token, cancel).await },
                    );
                    continue;
                }
                let (kept, given_back) = (record.clone(), turns.clone());
                self.pool.spawn_queued(
                    &self.cancel,
                    async move { claimed(&turns, record, token, cancel).await },
                    async move { let_go(&given_back, &kept, token).await },
                );
            }
        }
        // Early turns in the slots left; one that finds none is found again next pass.
        if self.cancel.is_cancelled() {
            slots.clear();
        }
        for ((game, turn), slot) in pass.early.into_iter().zip(slots) {
            let (turns, pbem) = (turns.clone(), self.pbem.clone());
            self.pool.spawn(slot, async move {
                if let Err(error) = run_early(&pbem, &turns, &game, turn).await {
                    tracing::warn!(%error, game_id = %game.id, turn, "early turn not run");
                }
            });
        }
        // The claimed games through the slots before the next pass claims again, or the
        // wait's end: one pass (and claim) per batch while a backlog drains, and at
        // least one a wait while slow engines hold every slot.
        self.pool.until_unqueued(SLOT_WAIT).await;
        Ok(TickReport { handled })
    }

    /// Waits for the turns in flight.
    async fn drain(&self) -> usize {
        self.pool.drain().await
    }
}
