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

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::{GameId, HealthEventId, Timestamp};

/// A name is not one of the stored health event kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown health event kind {0:?} (expected one of probe_failed, probe_recovered, \
     inspect_unhealthy, container_disappeared)"
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
}

impl HealthEventKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 4] = [
        Self::ProbeFailed,
        Self::ProbeRecovered,
        Self::InspectUnhealthy,
        Self::ContainerDisappeared,
    ];

    /// The stable snake_case name used in storage, JSON and notifications.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ProbeFailed => "probe_failed",
            Self::ProbeRecovered => "probe_recovered",
            Self::InspectUnhealthy => "inspect_unhealthy",
            Self::ContainerDisappeared => "container_disappeared",
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
        detail
    }
}

/// Restart-count deltas and state checks over successive Docker inspects.
#[derive(Debug, Clone, Default)]
pub struct InspectTracker {
    /// The last restart count seen per game: the baseline the next delta is taken from.
    baselines: HashMap<GameId, u64>,
}

impl InspectTracker {
    /// A tracker with no baselines.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one inspect of a game and returns a finding when it looks unhealthy.
    ///
    /// A restart-count increase needs a baseline, so the first observation of a game cannot
    /// report one; a state other than `running` or health `unhealthy` is reported on every
    /// observation while it lasts, the first included. A decrease (Docker reset the count)
    /// only moves the baseline.
    pub fn observe(
        &mut self,
        game_id: GameId,
        observation: InspectObservation,
    ) -> Option<InspectFinding> {
        let previous = self.baselines.insert(game_id, observation.restart_count);
        let reason = match previous {
            Some(from) if observation.restart_count > from => {
                InspectReason::RestartCountIncreased {
                    from,
                    to: observation.restart_count,
                }
            }
            _ if observation.state != "running" => InspectReason::NotRunning {
                state: observation.state.clone(),
            },
            _ if observation.health == Some(ContainerHealth::Unhealthy) => InspectReason::Unhealthy,
            _ => return None,
        };
        Some(InspectFinding {
            reason,
            observation,
        })
    }

    /// Forgets every game not in `running`; call at the start of every tick.
    pub fn prune(&mut self, running: impl IntoIterator<Item = GameId>) {
        let running: HashSet<GameId> = running.into_iter().collect();
        self.baselines
            .retain(|game_id, _| running.contains(game_id));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    use ContainerHealth::{Healthy, Starting, Unhealthy};

    fn game(n: u128) -> GameId {
        GameId::from_uuid(Uuid::from_u128(n))
    }

    /// Feeds `results` (`o` ok, `x` failed) for one game; `.` no event, `F` failed, `R` recovered.
    fn probes(tracker: &mut ProbeTracker, g: GameId, results: &str) -> String {
        let letter = |t: ProbeTransition| match t.kind() {
            HealthEventKind::ProbeFailed => 'F',
            _ => 'R',
        };
        let mut observe = |c| tracker.observe(g, c == 'o').map_or('.', letter);
        results.chars().map(&mut observe).collect()
    }

    fn obs(restart_count: u64, state: &str, health: Option<ContainerHealth>) -> InspectObservation {
        let state = state.to_owned();
        InspectObservation {
            restart_count,
            state,
            health,
        }
    }

    fn running(restart_count: u64) -> InspectObservation {
        obs(restart_count, "running", Some(Healthy))
    }

    /// One letter per inspect: `.` nothing, `C` restart count, `N` not running, `U` unhealthy.
    fn inspects(
        tracker: &mut InspectTracker,
        g: GameId,
        seq: impl IntoIterator<Item = InspectObservation>,
    ) -> String {
        let letter = |f: InspectFinding| match f.reason {
            InspectReason::RestartCountIncreased { .. } => 'C',
            InspectReason::NotRunning { .. } => 'N',
            InspectReason::Unhealthy => 'U',
        };
        let mut observe = |o| tracker.observe(g, o).map_or('.', letter);
        seq.into_iter().map(&mut observe).collect()
    }

    #[test]
    fn kind_names_round_trip_through_parse_and_serde() {
        for kind in HealthEventKind::ALL {
            assert_eq!(kind.to_string().parse(), Ok(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            assert_eq!(
                serde_json::from_value::<HealthEventKind>(json).ok(),
                Some(kind)
            );
        }
        let err = HealthEventKind::parse("probe_down")
            .unwrap_err()
            .to_string();
        assert!(err.contains("kind \"probe_down\""), "{err}");
        assert!(err.contains("probe_failed"), "{err}");
    }

    #[test]
    fn summary_counts_failures_until_a_recovery() {
        let (mut summary, at) = (HealthSummary::default(), Timestamp::default());
        assert!(summary.is_healthy());
        summary.record(HealthEventKind::InspectUnhealthy, at);
        summary.record(HealthEventKind::ProbeFailed, at);
        assert_eq!(summary.failures_since_recovery, 2);
        assert!(!summary.is_healthy());
        summary.record(HealthEventKind::ProbeRecovered, at);
        assert!(summary.is_healthy());
        assert_eq!(summary.last_kind, Some(HealthEventKind::ProbeRecovered));
        assert_eq!(summary.last_at, Some(at));
    }

    #[test]
    fn probe_fails_once_at_the_threshold_and_recovers_on_the_next_success() {
        let err = ProbeTracker::new(0).unwrap_err().to_string();
        assert_eq!(err, "probe failure threshold must be at least 1, got 0");
        let (mut three, g) = (ProbeTracker::new(3).unwrap(), game(1));
        assert_eq!(probes(&mut three, g, "oxxxxxooxxoxxx"), "...F..R......F");
        assert_eq!(three.consecutive_failures(g), 3);
        let mut one = ProbeTracker::new(1).unwrap();
        assert_eq!(probes(&mut one, g, "oxxoxo"), ".F.RFR");
    }

    #[test]
    fn probe_prune_forgets_games_that_stopped_and_keeps_running_ones() {
        let (mut tracker, a, b) = (ProbeTracker::new(2).unwrap(), game(1), game(2));
        assert_eq!(
            probes(&mut tracker, a, "x") + &probes(&mut tracker, b, "x"),
            ".."
        );
        tracker.prune([a]);
        assert_eq!(tracker.consecutive_failures(b), 0);
        assert_eq!(probes(&mut tracker, a, "x"), "F");
        assert_eq!(probes(&mut tracker, b, "x"), ".", "b starts a fresh run");
    }

    #[test]
    fn probe_details_carry_the_counts() {
        let (mut tracker, g) = (ProbeTracker::new(1).unwrap(), game(1));
        let failed = tracker.observe(g, false).unwrap();
        let expected = json!({"consecutive_failures": 1, "last_status": 503, "last_error": "503"});
        assert_eq!(failed.detail(Some(503), "503"), expected);
        tracker.observe(g, false);
        let recovered = tracker.observe(g, true).unwrap();
        assert_eq!(
            recovered.detail(None, ""),
            json!({"prior_failure_count": 2})
        );
    }

    #[test]
    fn inspect_reports_increases_after_the_baseline_and_bad_states_every_time() {
        let mut tracker = InspectTracker::new();
        let restarts = [5, 5, 7, 7, 0, 1].map(running);
        assert_eq!(inspects(&mut tracker, game(1), restarts), "..C..C");
        let exited = [obs(0, "exited", None), obs(0, "exited", None), running(0)];
        assert_eq!(inspects(&mut tracker, game(2), exited), "NN.");
        let health = [Some(Starting), Some(Unhealthy), None].map(|h| obs(0, "running", h));
        assert_eq!(inspects(&mut tracker, game(3), health), ".U.");
    }

    #[test]
    fn a_restart_outranks_a_bad_state_and_the_detail_reports_everything() {
        let (mut tracker, g) = (InspectTracker::new(), game(1));
        tracker.observe(g, running(1));
        let finding = tracker
            .observe(g, obs(2, "restarting", Some(Unhealthy)))
            .unwrap();
        assert_eq!(finding.kind(), HealthEventKind::InspectUnhealthy);
        let expected = json!({"reason": "restart_count_increased", "restart_count": 2,
            "previous_restart_count": 1, "state": "restarting", "health": "unhealthy"});
        assert_eq!(finding.detail(), expected);
        let exited = tracker.observe(game(2), obs(0, "exited", None)).unwrap();
        let expected = json!({"reason": "not_running", "restart_count": 0, "state": "exited",
            "health": null});
        assert_eq!(exited.detail(), expected);
    }

    #[test]
    fn inspect_prune_drops_the_baseline_of_stopped_games() {
        let (mut tracker, a, b) = (InspectTracker::new(), game(1), game(2));
        assert_eq!(inspects(&mut tracker, a, [running(1)]), ".");
        assert_eq!(inspects(&mut tracker, b, [running(1)]), ".");
        tracker.prune(vec![a]);
        assert_eq!(inspects(&mut tracker, a, [running(2)]), "C");
        assert_eq!(
            inspects(&mut tracker, b, [running(9)]),
            ".",
            "b has a fresh baseline"
        );
    }

    proptest! {
        #[test]
        fn probe_hysteresis(threshold in 1u32..5, oks in prop::collection::vec(any::<bool>(), 0..60)) {
            let mut tracker = ProbeTracker::new(threshold).unwrap();
            let (mut run, mut failed_open) = (0u32, false);
            for ok in oks {
                let got = tracker.observe(game(1), ok);
                if ok {
                    let expected = (run >= threshold)
                        .then_some(ProbeTransition::Recovered { prior_failure_count: run });
                    prop_assert_eq!(got, expected);
                    prop_assert_eq!(got.is_some(), failed_open, "recovery exactly after a failure");
                    (run, failed_open) = (0, false);
                } else {
                    run += 1;
                    let expected = (run == threshold)
                        .then_some(ProbeTransition::Failed { consecutive_failures: run });
                    prop_assert_eq!(got, expected);
                    prop_assert!(!(got.is_some() && failed_open), "two ProbeFailed in a row");
                    failed_open |= got.is_some();
                }
            }
        }

        #[test]
        fn restart_deltas(counts in prop::collection::vec(0u64..4, 0..40)) {
            let mut tracker = InspectTracker::new();
            let mut previous: Option<u64> = None;
            for count in counts {
                let got = tracker.observe(game(1), running(count)).map(|finding| finding.reason);
                let expected = previous
                    .filter(|&from| count > from)
                    .map(|from| InspectReason::RestartCountIncreased { from, to: count });
                prop_assert_eq!(got, expected);
                previous = Some(count);
            }
        }
    }
}
