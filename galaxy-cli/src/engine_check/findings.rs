//! What the checks observed, rule by rule, and the verdict made of it: one line per rule,
//! a summary line, an exit status.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::rules::{Level, RULES, Rule, RuleId, rule_of};

/// One observation under a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Observation {
    /// The engine did what the rule says, once.
    Pass,
    /// The engine did not; what it did instead.
    Fail(String),
    /// A tolerated deviation (the platform copes): a warning even under a MUST.
    Warn(String),
    /// The rule could not be checked here, and why.
    Skip(String),
}

/// Everything observed so far, by rule (a rule is usually checked at several points of
/// the game: standings in every state, sizes in every answer).
#[derive(Debug, Default)]
pub struct Findings {
    /// Observations in the order made.
    by_rule: BTreeMap<RuleId, Vec<Observation>>,
}

impl Findings {
    fn push(&mut self, rule: RuleId, observation: Observation) {
        self.by_rule.entry(rule).or_default().push(observation);
    }

    /// The engine did what `rule` says.
    pub fn pass(&mut self, rule: RuleId) {
        self.push(rule, Observation::Pass);
    }

    /// The engine broke `rule`: `detail` says how.
    pub fn fail(&mut self, rule: RuleId, detail: impl Into<String>) {
        self.push(rule, Observation::Fail(detail.into()));
    }

    /// The engine deviated from `rule` in a way the platform tolerates.
    pub fn warn(&mut self, rule: RuleId, detail: impl Into<String>) {
        self.push(rule, Observation::Warn(detail.into()));
    }

    /// `rule` could not be checked: `reason` says what was missing.
    pub fn skip(&mut self, rule: RuleId, reason: impl Into<String>) {
        self.push(rule, Observation::Skip(reason.into()));
    }

    /// Passes `rule` when `ok`, else fails it with `detail()`.
    pub fn expect(&mut self, rule: RuleId, ok: bool, detail: impl FnOnce() -> String) {
        if ok {
            self.pass(rule);
        } else {
            self.fail(rule, detail());
        }
    }

    /// The verdict: every rule with its status, the rules never observed skipped with
    /// `unreached` (why the check stopped early) or as not reached.
    pub fn verdict(&self, unreached: Option<&str>) -> Vec<RuleResult> {
        RULES
            .iter()
            .map(|rule| {
                let observations = self.by_rule.get(&rule.id).map_or(&[][..], Vec::as_slice);
                let (status, detail) = judge(rule, observations, unreached);
                RuleResult {
                    rule: rule_of(rule.id),
                    status,
                    detail,
                }
            })
            .collect()
    }
}

/// A rule's status from its observations: any failure wins, then warnings, then passes;
/// a rule with only skips (or nothing) is skipped, never passed.
fn judge(
    rule: &Rule,
    observations: &[Observation],
    unreached: Option<&str>,
) -> (Status, Option<String>) {
    let details = |pick: fn(&Observation) -> Option<&String>| -> Vec<&String> {
        observations.iter().filter_map(pick).collect()
    };
    let failures = details(|o| match o {
        Observation::Fail(d) => Some(d),
        _ => None,
    });
    if !failures.is_empty() {
        let status = match rule.level {
            Level::Must => Status::Fail,
            Level::Should => Status::Warn,
        };
        return (status, Some(summarise(&failures)));
    }
    let warnings = details(|o| match o {
        Observation::Warn(d) => Some(d),
        _ => None,
    });
    if !warnings.is_empty() {
        return (Status::Warn, Some(summarise(&warnings)));
    }
    if observations.contains(&Observation::Pass) {
        return (Status::Pass, None);
    }
    let skips = details(|o| match o {
        Observation::Skip(d) => Some(d),
        _ => None,
    });
    let reason = match (skips.first(), unreached) {
        (Some(reason), _) => (*reason).clone(),
        (None, Some(why)) => format!("not reached: {why}"),
        (None, None) => "not reached".to_owned(),
    };
    (Status::Skip, Some(reason))
}

/// The first detail, and how many more there were.
fn summarise(details: &[&String]) -> String {
    match details {
        [] => String::new(),
        [one] => (*one).clone(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

/// A rule's status in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Checked, and the engine does it.
    Pass,
    /// A MUST the engine breaks.
    Fail,
    /// A SHOULD the engine breaks, or a tolerated deviation from a MUST.
    Warn,
    /// Not checked: something it needs was not given or not reached.
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Warn => "WARN",
            Self::Skip => "SKIP",
        })
    }
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    /// The rule.
    pub rule: &'static Rule,
    /// Its status.
    pub status: Status,
    /// What went wrong, or why it was skipped.
    pub detail: Option<String>,
}

impl fmt::Display for RuleResult {
    /// `STATUS rule.id text[ -- detail]`, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.status, self.rule.name, self.rule.text)?;
        if let Some(detail) = &self.detail {
            write!(f, " -- {}", one_line(detail))?;
        }
        Ok(())
    }
}

/// Keeps an engine's text to one bounded line of output.
fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > MAX {
        let cut: String = flat.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

/// The whole verdict of one check.
#[derive(Debug, Clone)]
pub struct Report {
    /// One result per rule, in [`RULES`] order.
    pub results: Vec<RuleResult>,
    /// The contract version the engine said (`None`: it did not say, so 1).
    pub contract: Option<String>,
    /// Where the engine was checked.
    pub endpoint: String,
}

impl Report {
    /// How many rules have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// The names of the rules with `status`.
    pub fn names(&self, status: Status) -> BTreeSet<&'static str> {
        self.results
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.rule.name)
            .collect()
    }

    /// Whether any MUST failed.
    pub fn failed(&self) -> bool {
        self.count(Status::Fail) > 0
    }

    /// The last line of the output.
    pub fn summary(&self) -> String {
        format!(
            "engine check: {} passed, {} failed, {} warned, {} skipped ({} rules; engine at {}, contract {})",
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Warn),
            self.count(Status::Skip),
            self.results.len(),
            self.endpoint,
            self.contract.as_deref().unwrap_or("1 (not said)"),
        )
    }
}

impl fmt::Display for Report {
    /// One line per rule, then the summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for result in &self.results {
            writeln!(f, "{result}")?;
        }
        write!(f, "{}", self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::{Findings, Report, Status};
    use crate::engine_check::rules::RuleId;

    fn status_of(report: &Report, name: &str) -> (Status, Option<String>) {
        let r = report
            .results
            .iter()
            .find(|r| r.rule.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        (r.status, r.detail.clone())
    }

    #[test]
    fn failures_win_shoulds_warn_and_skips_never_pass() {
        let mut findings = Findings::default();
        findings.pass(RuleId::InitAccepts);
        findings.fail(RuleId::InitAccepts, "answered 500");
        findings.fail(RuleId::InitAccepts, "answered 502");
        findings.fail(RuleId::InitInvalid, "answered 400, the contract says 422");
        findings.pass(RuleId::InitOtherGame);
        findings.warn(RuleId::InitOtherGame, "answered 400");
        findings.pass(RuleId::TurnRuns);
        findings.skip(RuleId::TurnRuns, "later");
        findings.skip(RuleId::RestartResume, "needs --launch");
        let report = Report {
            results: findings.verdict(Some("the engine died")),
            contract: None,
            endpoint: "http://127.0.0.1:1".into(),
        };
        assert_eq!(
            status_of(&report, "init.accepts"),
            (Status::Fail, Some("answered 500 (and 1 more)".into()))
        );
        assert_eq!(
            status_of(&report, "init.invalid").0,
            Status::Warn,
            "a SHOULD warns"
        );
        assert_eq!(status_of(&report, "init.other_game").0, Status::Warn);
        assert_eq!(status_of(&report, "turn.runs"), (Status::Pass, None));
        assert_eq!(
            status_of(&report, "restart.resume"),
            (Status::Skip, Some("needs --launch".into()))
        );
        assert_eq!(
            status_of(&report, "finish.turn"),
            (Status::Skip, Some("not reached: the engine died".into()))
        );
        assert!(report.failed());
        let text = report.to_string();
        assert!(text.lines().any(|l| l == "FAIL init.accepts init answers 200 with the state of turn 0, not finished -- answered 500 (and 1 more)"), "{text}");
        assert!(
            text.lines()
                .last()
                .unwrap_or_default()
                .starts_with("engine check: 1 passed, 1 failed, 2 warned, 32 skipped"),
            "{text}"
        );
        assert!(text.contains("contract 1 (not said)"));
    }

    #[test]
    fn an_engine_text_stays_on_one_bounded_line() {
        let mut findings = Findings::default();
        findings.fail(
            RuleId::ReportsShape,
            format!("line\nbreak{}", "x".repeat(1000)),
        );
        let report = Report {
            results: findings.verdict(None),
            contract: Some("2".into()),
            endpoint: "e".into(),
        };
        let line = report
            .results
            .iter()
            .find(|r| r.status == Status::Fail)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(!line.contains('\n'));
        assert!(line.len() < 500 && line.ends_with("..."), "{line}");
    }
}
