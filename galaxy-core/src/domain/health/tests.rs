//! Tests of the parent module.
#![allow(clippy::unwrap_used, clippy::expect_used)]
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

/// A fixed instant plus `minute` minutes.
fn at_minute(minute: i64) -> Timestamp {
    chrono::DateTime::UNIX_EPOCH
        + chrono::TimeDelta::days(20_000)
        + chrono::TimeDelta::minutes(minute)
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
    let mut minute = 0;
    let mut observe = |o| {
        minute += 1;
        tracker.observe(g, o, at_minute(minute)).map_or('.', letter)
    };
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
fn inspect_reports_increases_after_the_baseline_and_bad_states_once_per_change() {
    let mut tracker = InspectTracker::new();
    let restarts = [5, 5, 7, 7, 0, 1].map(running);
    assert_eq!(inspects(&mut tracker, game(1), restarts), "..C..C");
    let exited = [
        obs(0, "exited", None),
        obs(0, "exited", None),
        obs(0, "exited", None),
        running(0),
        obs(0, "exited", None),
    ];
    assert_eq!(inspects(&mut tracker, game(2), exited), "N...N");
    let changing = [
        obs(0, "restarting", None),
        obs(0, "exited", None),
        obs(0, "exited", None),
    ];
    assert_eq!(inspects(&mut tracker, game(4), changing), "NN.");
    let health =
        [Some(Starting), Some(Unhealthy), Some(Unhealthy), None].map(|h| obs(0, "running", h));
    assert_eq!(inspects(&mut tracker, game(3), health), ".U..");
}

#[test]
fn a_condition_that_holds_is_reported_again_only_as_a_digest() {
    let mut tracker = InspectTracker::with_digest_every(chrono::TimeDelta::minutes(60));
    let g = game(1);
    let exited = || obs(0, "exited", None);
    assert!(tracker.observe(g, exited(), at_minute(0)).is_some());
    for minute in 1..60 {
        assert!(
            tracker.observe(g, exited(), at_minute(minute)).is_none(),
            "{minute}"
        );
    }
    let digest = tracker.observe(g, exited(), at_minute(60)).unwrap();
    assert_eq!(
        digest.digest,
        Some(RepeatDigest {
            since: at_minute(0),
            repeats: 60
        })
    );
    assert_eq!(digest.detail()["digest"]["repeats"], 60);
    assert!(tracker.observe(g, exited(), at_minute(61)).is_none());
    // A restart while it holds is news at once.
    assert!(matches!(
        tracker
            .observe(g, obs(1, "exited", None), at_minute(62))
            .map(|f| f.reason),
        Some(InspectReason::RestartCountIncreased { from: 0, to: 1 })
    ));
}

#[test]
fn a_restart_outranks_a_bad_state_and_the_detail_reports_everything() {
    let (mut tracker, g) = (InspectTracker::new(), game(1));
    tracker.observe(g, running(1), at_minute(1));
    let finding = tracker
        .observe(g, obs(2, "restarting", Some(Unhealthy)), at_minute(2))
        .unwrap();
    assert_eq!(finding.kind(), HealthEventKind::InspectUnhealthy);
    let expected = json!({"reason": "restart_count_increased", "restart_count": 2,
        "previous_restart_count": 1, "state": "restarting", "health": "unhealthy"});
    assert_eq!(finding.detail(), expected);
    let exited = tracker
        .observe(game(2), obs(0, "exited", None), at_minute(3))
        .unwrap();
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
            let got = tracker
                .observe(game(1), running(count), at_minute(1))
                .map(|finding| finding.reason);
            let expected = previous
                .filter(|&from| count > from)
                .map(|from| InspectReason::RestartCountIncreased { from, to: count });
            prop_assert_eq!(got, expected);
            previous = Some(count);
        }
    }
}
