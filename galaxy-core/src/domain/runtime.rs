//! The runtime side of a game: its engine container record, durable runtime jobs and the
//! pure rules of the turn scheduler.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::game::EngineName;
use super::lease::{ClaimKey, Lease, Leased, QueueState};
use super::schedule::TurnSchedule;
use super::{GameId, InvalidTransition, JobId, Timestamp};

/// Where a game's engine container stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeStatus {
    /// Record made, no container yet.
    Pending,
    /// Container being created, started and initialised.
    Starting,
    /// Engine up and initialised.
    Running,
    /// Being stopped.
    Stopping,
    /// Container stopped, still present.
    Stopped,
    /// Container gone.
    Removed,
    /// Start or run failed.
    Failed,
}

impl RuntimeStatus {
    /// Every status.
    pub const ALL: [RuntimeStatus; 7] = [
        Self::Pending,
        Self::Starting,
        Self::Running,
        Self::Stopping,
        Self::Stopped,
        Self::Removed,
        Self::Failed,
    ];

    /// Whether a container is, or is being, brought up for the record (`starting`,
    /// `running`): what container events, the reconciler and the stop of an ended game
    /// look for.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Starting | Self::Running)
    }

    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Removed => "removed",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    /// Whether `self -> to` is allowed: the life line `pending -> starting -> running ->
    /// stopping -> stopped -> removed`, `failed` from any live status, a retry from
    /// `failed`, `stopped` or `removed` back to `starting` (a retried start, a vanished
    /// container started again), and `removed` from anywhere but itself
    /// (the reconciler finds a container gone).
    pub fn allows(self, to: RuntimeStatus) -> bool {
        use RuntimeStatus::*;
        match (self, to) {
            (Pending, Starting) | (Starting, Running) | (Running, Stopping) => true,
            (Stopping, Stopped) | (Stopped, Removed) => true,
            (Pending | Starting | Running | Stopping, Failed) => true,
            (Failed | Stopped | Removed, Starting) => true,
            (from, Removed) => from != Removed,
            _ => false,
        }
    }

    /// Checks a transition.
    pub fn check(self, to: RuntimeStatus) -> Result<(), InvalidTransition> {
        if self.allows(to) {
            Ok(())
        } else {
            Err(InvalidTransition::new("runtime", self, to, "runtime"))
        }
    }
}

impl fmt::Display for RuntimeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The container and endpoint a running game is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeBinding {
    /// The runtime's container (or process) id.
    pub container_id: String,
    /// Base URL of the engine's HTTP contract, e.g. `http://127.0.0.1:40123`.
    pub engine_endpoint: String,
}

/// One game's runtime record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRecord {
    /// The game (one record per game).
    pub game_id: GameId,
    /// Status.
    pub status: RuntimeStatus,
    /// Which registered engine runs it.
    pub engine: EngineName,
    /// Set once the container is up.
    pub binding: Option<RuntimeBinding>,
    /// The last turn the engine completed (0 after init).
    pub current_turn: u32,
    /// When the scheduler runs the next turn; `None` while not scheduled.
    pub next_turn_at: Option<Timestamp>,
    /// Set by force-next-turn: the next scheduled tick is consumed without a turn.
    pub skip_next_tick: bool,
    /// The scheduler's claim while a turn runs.
    pub turn_lease: Option<Lease>,
    /// Whether the last health verdict was healthy.
    pub healthy: bool,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// What the scheduler does with a due game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueAction {
    /// Run turn `expected_turn` now, then schedule the next at `next_turn_at`.
    RunTurn {
        /// The turn number the engine is asked to run.
        expected_turn: u32,
        /// The next firing after now.
        next_turn_at: Option<Timestamp>,
    },
    /// A forced turn already ran: consume the skip flag, run nothing, reschedule.
    Skip {
        /// The next firing after now.
        next_turn_at: Option<Timestamp>,
    },
}

impl RuntimeRecord {
    /// Whether an admin may have the engine created again (same data): its container
    /// is gone (`removed`), an earlier re-creation gave up (`failed`), or it is
    /// `running` but unhealthy (its restarts gave up, or stopped for a crash loop). A
    /// healthy running engine, or one still starting, is not.
    pub fn needs_recreation(&self) -> bool {
        matches!(self.status, RuntimeStatus::Removed | RuntimeStatus::Failed)
            || (self.status == RuntimeStatus::Running && !self.healthy)
    }

    /// A new pending record.
    pub fn new(game_id: GameId, engine: EngineName, now: Timestamp) -> Self {
        Self {
            game_id,
            status: RuntimeStatus::Pending,
            engine,
            binding: None,
            current_turn: 0,
            next_turn_at: None,
            skip_next_tick: false,
            turn_lease: None,
            healthy: true,
            created_at: now,
            updated_at: now,
        }
    }

    /// When the next turn runs, as players are told it (turn mails, reminders, the game
    /// view): the scheduled firing, or, while the skip flag is set (a turn was forced
    /// ahead of it), the firing after it, since that flag lets the scheduled one pass
    /// without a turn. `None` when no turn is scheduled.
    pub fn deadline(&self, schedule: &TurnSchedule) -> Option<Timestamp> {
        let at = self.next_turn_at?;
        if self.skip_next_tick {
            schedule.next_after(at)
        } else {
            Some(at)
        }
    }

    /// Whether the scheduler may claim it at `now`: running, due, and not held by
    /// another scheduler's live lease.
    pub fn is_due_at(&self, now: Timestamp) -> bool {
        self.status == RuntimeStatus::Running
            && self.next_turn_at.is_some_and(|at| at <= now)
            && self.turn_lease.is_none_or(|l| !l.is_held_at(now))
    }

    /// Decides what a due tick does. The next turn is always scheduled after `now`, not
    /// after the missed firing, so after downtime at most one catch-up turn runs.
    ///
    /// The skip flag lets only the firing a forced turn came ahead of pass without a
    /// turn: when the firing after it, the [`deadline`](Self::deadline) players were
    /// told, has passed too (the server was down through both), that turn is owed and
    /// runs as the catch-up turn.
    pub fn on_due(&self, schedule: &TurnSchedule, now: Timestamp) -> DueAction {
        let next_turn_at = schedule.next_after(now);
        let told_passed = self
            .deadline(schedule)
            .is_some_and(|deadline| deadline <= now);
        if self.skip_next_tick && !told_passed {
            DueAction::Skip { next_turn_at }
        } else {
            DueAction::RunTurn {
                expected_turn: self.current_turn.saturating_add(1),
                next_turn_at,
            }
        }
    }
}

/// What a runtime job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Create and start the container, wait for the engine, initialise it.
    Start,
    /// Stop and remove the container.
    Stop,
    /// Restart the container.
    Restart,
}

impl JobKind {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        [Self::Start, Self::Stop, Self::Restart]
            .into_iter()
            .find(|k| k.as_str() == input)
    }
}

/// Where a runtime job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// Claimed by a worker (under a lease); a lapsed lease makes it claimable again.
    Running,
    /// Done.
    Succeeded,
    /// Done, unsuccessfully; `error` says why.
    Failed,
}

impl JobStatus {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == input)
    }
}

/// A durable runtime job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeJob {
    /// Stable id.
    pub id: JobId,
    /// The game.
    pub game_id: GameId,
    /// What to do.
    pub kind: JobKind,
    /// Unique per logical request (e.g. `start:<game>:<attempt>`): enqueueing twice
    /// returns the first job.
    pub idempotency_key: String,
    /// Status.
    pub status: JobStatus,
    /// Claims so far (a crash mid-job shows as more than one).
    pub attempts: u32,
    /// When it may run.
    pub run_after: Timestamp,
    /// The claim while running.
    pub lease: Option<Lease>,
    /// Why it failed.
    pub error: Option<String>,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl RuntimeJob {
    /// A new queued job, runnable at once.
    pub fn new(
        id: JobId,
        game_id: GameId,
        kind: JobKind,
        idempotency_key: String,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            game_id,
            kind,
            idempotency_key,
            status: JobStatus::Queued,
            attempts: 0,
            run_after: now,
            lease: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether a worker may claim it at `now` (the queue rule of [`Leased`]).
    pub fn is_claimable_at(&self, now: Timestamp) -> bool {
        Leased::is_claimable_at(self, now)
    }
}

impl Leased for RuntimeJob {
    type Id = JobId;
    const ENTITY: &'static str = "runtime job";

    fn id(&self) -> JobId {
        self.id
    }

    fn queue_state(&self) -> QueueState {
        match self.status {
            JobStatus::Queued => QueueState::Waiting,
            JobStatus::Running => QueueState::Leased,
            JobStatus::Succeeded | JobStatus::Failed => QueueState::Done,
        }
    }

    fn status_name(&self) -> &'static str {
        self.status.as_str()
    }

    fn due_at(&self) -> Timestamp {
        self.run_after
    }

    /// Jobs run in creation order, whatever their `run_after`: a start queued first is
    /// not overtaken by a later stop of the same game.
    fn claim_key(&self) -> ClaimKey {
        ClaimKey {
            first: self.created_at,
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }

    fn lease(&self) -> Option<Lease> {
        self.lease
    }

    fn lease_mut(&mut self) -> Option<&mut Lease> {
        self.lease.as_mut()
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }

    fn take_claim(&mut self, lease: Lease, now: Timestamp) {
        self.status = JobStatus::Running;
        self.lease = Some(lease);
        self.attempts = self.attempts.saturating_add(1);
        self.updated_at = now;
    }

    fn end_lease(&mut self, at: Timestamp) {
        self.lease = None;
        self.updated_at = at;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone, Utc};
    use uuid::Uuid;

    #[test]
    fn only_a_gone_failed_or_given_up_engine_is_created_again() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut r =
            RuntimeRecord::new(GameId::from_uuid(Uuid::nil()), EngineName::reference(), now);
        for (status, healthy, wanted) in [
            (RuntimeStatus::Pending, true, false),
            (RuntimeStatus::Starting, false, false),
            (RuntimeStatus::Running, true, false),
            (RuntimeStatus::Running, false, true),
            (RuntimeStatus::Removed, true, true),
            (RuntimeStatus::Failed, false, true),
        ] {
            (r.status, r.healthy) = (status, healthy);
            assert_eq!(r.needs_recreation(), wanted, "{status} healthy={healthy}");
        }
    }

    #[test]
    fn at_most_one_catch_up_turn_and_skip_flag() {
        let schedule = TurnSchedule::parse("0 18 * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut r =
            RuntimeRecord::new(GameId::from_uuid(Uuid::nil()), EngineName::reference(), now);
        r.status = RuntimeStatus::Running;
        r.current_turn = 3;
        // Down for three days: three firings missed.
        r.next_turn_at = Some(now - TimeDelta::days(3));
        assert!(r.is_due_at(now));
        let tonight = Utc.with_ymd_and_hms(2026, 11, 25, 18, 0, 0).unwrap();
        assert_eq!(
            r.on_due(&schedule, now),
            DueAction::RunTurn {
                expected_turn: 4,
                next_turn_at: Some(tonight)
            }
        );
        // A turn forced ahead of a firing lets that firing pass, and only that one: down
        // through the firing after it too (the deadline players were told), the turn
        // they were told of is owed.
        r.skip_next_tick = true;
        assert_eq!(
            r.on_due(&schedule, now),
            DueAction::RunTurn {
                expected_turn: 4,
                next_turn_at: Some(tonight)
            }
        );
        let last_night = Utc.with_ymd_and_hms(2026, 11, 24, 18, 0, 0).unwrap();
        r.next_turn_at = Some(last_night);
        assert_eq!(r.deadline(&schedule), Some(tonight));
        assert_eq!(
            r.on_due(&schedule, now),
            DueAction::Skip {
                next_turn_at: Some(tonight)
            }
        );
        r.status = RuntimeStatus::Stopped;
        assert!(!r.is_due_at(now));
    }

    #[test]
    fn runtime_table() {
        use RuntimeStatus::*;
        assert!(Pending.allows(Starting));
        assert!(Failed.allows(Starting));
        assert!(Running.allows(Removed));
        assert!(!Removed.allows(Removed));
        assert!(
            Removed.allows(Starting),
            "a vanished container can be started again"
        );
        assert!(!Running.allows(Pending));
        for s in RuntimeStatus::ALL {
            assert_eq!(RuntimeStatus::parse(s.as_str()), Some(s));
        }
    }
}
