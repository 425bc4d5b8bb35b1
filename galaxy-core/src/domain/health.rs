//! Health of running games: the stored health event, the summary a runtime record carries,
//! and the two pure trackers the health workers feed: `/healthz` probe hysteresis and
//! Docker inspect restart-count deltas.
//!
//! The trackers keep per-game state in memory only. A worker prunes them at the start of
//! every tick against the freshly read list of running games, so a game that stops and
//! later runs again starts from a clean counter and a fresh baseline.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::{GameId, HealthEventId, Timestamp};

/// A name is not one of the stored health event kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown health event kind {0:?} (expected one of probe_failed, probe_recovered, \
     inspect_unhealthy, container_disappeared, turn_failed)"
)]
pub struct UnknownHealthEventKind(
    /// The rejected input, truncated to 64 characters.
    pub String,
);

/// What a health worker observed about a game's container or engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthEventKind {
    /// The engine's `/healthz` failed N times in a row (N is configured).
    ProbeFailed,
    /// The first successful `/healthz` after a `ProbeFailed`.
    ProbeRecovered,
    /// Docker inspect saw a restart, a state other than `running`, or health `unhealthy`.
    InspectUnhealthy,
    /// The Docker events listener or the reconciler found the container gone.
    ContainerDisappeared,
    /// A turn call failed: the engine timed out, errored, answered garbage or an
    /// unexpected turn number.
    TurnFailed,
}

impl HealthEventKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 5] = [
        Self::ProbeFailed,
        Self::ProbeRecovered,
        Self::InspectUnhealthy,
        Self::ContainerDisappeared,
        Self::TurnFailed,
    ];

    /// The stable snake_case name used in storage, JSON and notifications.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ProbeFailed => "probe_failed",
            Self::ProbeRecovered => "probe_recovered",
            Self::InspectUnhealthy => "inspect_unhealthy",
            Self::ContainerDisappeared => "container_disappeared",
            Self::TurnFailed => "turn_failed",
        }
    }

    /// Parses a name produced by [`as_str`](Self::as_str).
    pub fn parse(input: &str) -> Result<Self, UnknownHealthEventKind> {
        let known = Self::ALL.into_iter().find(|kind| kind.as_str() == input);
        known.ok_or_else(|| UnknownHealthEventKind(input.chars().take(64).collect()))
    }

    /// Whether the event reports a problem; only `ProbeRecovered` reports good news.
    pub const fn is_failure(self) -> bool {
        !matches!(self, Self::ProbeRecovered)
    }
}

impl fmt::Display for HealthEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HealthEventKind {
    type Err = UnknownHealthEventKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One stored health event of a game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEvent {
    /// Identity of the stored row.
    pub id: HealthEventId,
    /// The game whose container or engine was observed.
    pub game_id: GameId,
    /// What was observed.
    pub kind: HealthEventKind,
    /// Kind-specific facts for admins (see the `detail` builders in this module); JSON so
    /// new facts need no schema change.
    pub detail: serde_json::Value,
    /// When the worker observed it.
    pub occurred_at: Timestamp,
}

/// The health digest a runtime record carries, folded from its health events.
///
/// `InspectUnhealthy` and `ContainerDisappeared` have no matching recovery event, so once
/// recorded they count until a `ProbeRecovered` or until the record starts over with a
/// fresh summary (a new container).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSummary {
    /// The most recently recorded event kind; `None` until the first event.
    pub last_kind: Option<HealthEventKind>,
    /// When that event occurred.
    pub last_at: Option<Timestamp>,
    /// Failure events recorded since the last `ProbeRecovered`; zero means healthy.
    pub failures_since_recovery: u32,
}

impl HealthSummary {
    /// Folds one event into the summary, in the order events are recorded.
    pub fn record(&mut self, kind: HealthEventKind, at: Timestamp) {
        self.last_kind = Some(kind);
        self.last_at = Some(at);
        self.failures_since_recovery = if kind.is_failure() {
            self.failures_since_recovery.saturating_add(1)
        } else {
            0
        };
    }

    /// Whether no failure has been recorded since the last recovery.
    pub const fn is_healthy(&self) -> bool {
        self.failures_since_recovery == 0
    }
}

/// The configured probe failure threshold was zero; at least one failure must be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("probe failure threshold must be at least 1, got {0}")]
pub struct InvalidFailureThreshold(pub u32);

/// A change of probe health that the worker must publish as a health event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeTransition {
    /// The run of failures just reached the threshold.
    Failed {
        /// Failures in the current run (equals the threshold).
        consecutive_failures: u32,
    },
    /// The first success after a published `Failed`.
    Recovered {
        /// How many failures the run that just ended had.
        prior_failure_count: u32,
    },
}

impl ProbeTransition {
    /// The health event kind to store.
    pub const fn kind(self) -> HealthEventKind {
        match self {
            Self::Failed { .. } => HealthEventKind::ProbeFailed,
            Self::Recovered { .. } => HealthEventKind::ProbeRecovered,
        }
    }

    /// The event detail. `last_status` (the HTTP status, `None` when no response came)
    /// and `last_error` describe the probe that failed last; a recovery ignores them.
    pub fn detail(self, last_status: Option<u16>, last_error: &str) -> serde_json::Value {
        match self {
            Self::Failed {
                consecutive_failures: n,
            } => json!({
                "consecutive_failures": n,
                "last_status": last_status,
                "last_error": last_error,
            }),
            Self::Recovered {
                prior_failure_count: n,
            } => json!({ "prior_failure_count": n }),
        }
    }
}

/// Per-game probe state; only games with a current run of failures have one.
#[derive(Debug, Clone, Copy, Default)]
struct ProbeRun {
    /// Failures since the last success; keeps counting past the threshold so a recovery
    /// can report how long the outage was.
    consecutive_failures: u32,
    /// Whether `ProbeFailed` went out for this run, so it goes out once and a recovery
    /// is reported only after it.
    failure_published: bool,
}

/// Hysteresis over `/healthz` results: `ProbeFailed` once after N consecutive failures,
/// `ProbeRecovered` on the first success after that.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    /// N: how many failures in a row make the engine count as down.
    failure_threshold: u32,
    /// Failure runs in progress, by game.
    runs: HashMap<GameId, ProbeRun>,
}

impl ProbeTracker {
    /// A tracker that reports a failure after `failure_threshold` (>= 1) failures in a row.
    pub fn new(failure_threshold: u32) -> Result<Self, InvalidFailureThreshold> {
        if failure_threshold == 0 {
            return Err(InvalidFailureThreshold(failure_threshold));
        }
        Ok(Self {
            failure_threshold,
            runs: HashMap::new(),
        })
    }

    /// The configured N.
    pub const fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    /// Records one probe result of a game and says whether its health changed.
    pub fn observe(&mut self, game_id: GameId, ok: bool) -> Option<ProbeTransition> {
        if ok {
            // A success ends any run; dropping the entry is the same as a zero counter.
            let run = self.runs.remove(&game_id)?;
            return run.failure_published.then_some(ProbeTransition::Recovered {
                prior_failure_count: run.consecutive_failures,
            });
        }
        let run = self.runs.entry(game_id).or_default();
        run.consecutive_failures = run.consecutive_failures.saturating_add(1);
        if run.failure_published || run.consecutive_failures < self.failure_threshold {
            return None;
        }
        run.failure_published = true;
        Some(ProbeTransition::Failed {
            consecutive_failures: run.consecutive_failures,
        })
    }

    /// Failures in the game's current run (zero when its last probe succeeded).
    pub fn consecutive_failures(&self, game_id: GameId) -> u32 {
        self.runs
            .get(&game_id)
            .map_or(0, |run| run.consecutive_failures)
    }

    /// Forgets every game not in `running`; call at the start of every tick.
    pub fn prune(&mut self, running: impl IntoIterator<Item = GameId>) {
        let running: HashSet<GameId> = running.into_iter().collect();
        self.runs.retain(|game_id, _| running.contains(game_id));
    }
}

/// Docker's health-check status of a container whose image declares a HEALTHCHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerHealth {
    /// The health check has not passed yet.
    Starting,
    /// The last health checks passed.
    Healthy,
    /// The health check failed its retries.
    Unhealthy,
}

/// What one Docker inspect of a game's container returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectObservation {
    /// Docker's `RestartCount`; an increase means the container restarted since last tick.
    pub restart_count: u64,
    /// Docker's `State.Status`, verbatim; only `running` is healthy (`exited`, `restarting`,
    /// `paused` ... are not).
    pub state: String,
    /// Docker's health-check status; `None` when the image declares no HEALTHCHECK.
    pub health: Option<ContainerHealth>,
}

/// Why an inspect was judged unhealthy; when several hold, the first in this order wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectReason {
    /// `RestartCount` grew since the previous observation.
    RestartCountIncreased {
        /// The previous observation's count.
        from: u64,
        /// This observation's count.
        to: u64,
    },
    /// The container is not running.
    NotRunning {
        /// Docker's state, verbatim.
        state: String,
    },
    /// Docker's health check reports `unhealthy`.
    Unhealthy,
}

impl InspectReason {
    /// A stable snake_case name for the event detail.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::RestartCountIncreased { .. } => "restart_count_increased",
            Self::NotRunning { .. } => "not_running",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// An `InspectUnhealthy` finding: the reason plus everything the inspect saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectFinding {
    /// The first trigger that held.
    pub reason: InspectReason,
    /// The observation that triggered it, reported in full.
    pub observation: InspectObservation,
    /// Set when this is a digest of a condition already reported and still holding.
    pub digest: Option<RepeatDigest>,
}

/// How long a reported condition has held: what a digest says instead of one event per
/// inspect pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatDigest {
    /// When the condition was first seen.
    pub since: Timestamp,
    /// Inspect passes that saw it again since the last report.
    pub repeats: u64,
}

impl InspectFinding {
    /// The health event kind to store (always `InspectUnhealthy`).
    pub const fn kind(&self) -> HealthEventKind {
        HealthEventKind::InspectUnhealthy
    }

    /// The event detail: the reason and the full observation (health `null` without a
    /// HEALTHCHECK), plus `previous_restart_count` for a restart.
    pub fn detail(&self) -> serde_json::Value {
        let observation = &self.observation;
        let mut detail = json!({
            "reason": self.reason.as_str(),
            "restart_count": observation.restart_count,
            "state": observation.state,
            "health": observation.health,
        });
        if let InspectReason::RestartCountIncreased { from, .. } = self.reason {
            detail["previous_restart_count"] = from.into();
        }
        if let Some(digest) = self.digest {
            detail["digest"] = json!({"since": digest.since, "repeats": digest.repeats});
        }
        detail
    }
}

/// A bad condition already reported for a game, so that it is reported once per change
/// of state, then only as a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ongoing {
    /// The reason and the state it was seen in (`not_running:exited`).
    key: String,
    /// First seen.
    since: Timestamp,
    /// Last reported (first report or last digest).
    reported_at: Timestamp,
    /// Passes that saw it again since `reported_at`.
    repeats: u64,
}

/// How often a condition that holds is reported again, as a digest, by default.
pub const DEFAULT_DIGEST_EVERY: TimeDelta = TimeDelta::hours(6);

/// Restart-count deltas and state checks over successive Docker inspects.
#[derive(Debug, Clone)]
pub struct InspectTracker {
    /// The last restart count seen per game: the baseline the next delta is taken from.
    baselines: HashMap<GameId, u64>,
    /// The bad condition reported per game, while it holds.
    ongoing: HashMap<GameId, Ongoing>,
    /// How often a condition that holds is reported again as a digest.
    digest_every: TimeDelta,
}

impl Default for InspectTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl InspectTracker {
    /// A tracker with no baselines and digests every [`DEFAULT_DIGEST_EVERY`].
    pub fn new() -> Self {
        Self::with_digest_every(DEFAULT_DIGEST_EVERY)
    }

    /// A tracker whose held conditions are reported again every `digest_every`.
    pub fn with_digest_every(digest_every: TimeDelta) -> Self {
        Self {
            baselines: HashMap::new(),
            ongoing: HashMap::new(),
            digest_every,
        }
    }

    /// Records one inspect of a game at `now` and returns a finding when there is news.
    ///
    /// A restart-count increase needs a baseline, so the first observation of a game cannot
    /// report one; every increase is news. A state other than `running`, or health
    /// `unhealthy`, is news when it begins (or changes, e.g. `restarting` to `exited`);
    /// while it holds, later passes are counted and reported only as a digest every
    /// `digest_every`, so a container left exited files one event, not one per pass. A
    /// decrease of the restart count (Docker reset it) only moves the baseline.
    pub fn observe(
        &mut self,
        game_id: GameId,
        observation: InspectObservation,
        now: Timestamp,
    ) -> Option<InspectFinding> {
        let previous = self.baselines.insert(game_id, observation.restart_count);
        let condition = if observation.state != "running" {
            Some(InspectReason::NotRunning {
                state: observation.state.clone(),
            })
        } else if observation.health == Some(ContainerHealth::Unhealthy) {
            Some(InspectReason::Unhealthy)
        } else {
            None
        };
        let Some(condition) = condition else {
            self.ongoing.remove(&game_id);
            return match previous {
                Some(from) if observation.restart_count > from => Some(InspectFinding {
                    reason: InspectReason::RestartCountIncreased {
                        from,
                        to: observation.restart_count,
                    },
                    observation,
                    digest: None,
                }),
                _ => None,
            };
        };
        let key = format!("{}:{}", condition.as_str(), observation.state);
        let restarted = previous
            .filter(|&from| observation.restart_count > from)
            .map(|from| InspectReason::RestartCountIncreased {
                from,
                to: observation.restart_count,
            });
        match self.ongoing.get_mut(&game_id) {
            Some(held) if held.key == key && restarted.is_none() => {
                held.repeats += 1;
                if now - held.reported_at < self.digest_every {
                    return None;
                }
                let digest = RepeatDigest {
                    since: held.since,
                    repeats: held.repeats,
                };
                held.reported_at = now;
                held.repeats = 0;
                Some(InspectFinding {
                    reason: condition,
                    observation,
                    digest: Some(digest),
                })
            }
            _ => {
                let ongoing = Ongoing {
                    key,
                    since: now,
                    reported_at: now,
                    repeats: 0,
                };
                self.ongoing.insert(game_id, ongoing);
                Some(InspectFinding {
                    reason: restarted.unwrap_or(condition),
                    observation,
                    digest: None,
                })
            }
        }
    }

    /// Forgets every game not in `running`; call at the start of every tick.
    pub fn prune(&mut self, running: impl IntoIterator<Item = GameId>) {
        let running: HashSet<GameId> = running.into_iter().collect();
        self.baselines
            .retain(|game_id, _| running.contains(game_id));
        self.ongoing.retain(|game_id, _| running.contains(game_id));
    }
}

#[cfg(test)]
mod tests;
