#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The metrics catalogue is the truth: every metric the server's code records is in it
//! (with HELP text), and the Grafana dashboard and Prometheus alert rules in `deploy/`
//! use only metrics it has. Names are read from the code, so a metric added by any
//! change must join the catalogue, and a renamed one breaks the dashboards here rather
//! than silently in production.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use galaxy_server::metering::{Kind, METRICS};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Every metric name the code records: the first argument of each `metrics::counter!`,
/// `gauge!` and `histogram!` of galaxy-server and the crates it composes, literals
/// as they are and constants resolved through their `const NAME: &str = "..."`.
fn recorded_names() -> BTreeMap<String, PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "galaxy-server/src",
        "galaxy-core/src",
        "galaxy-adapters",
        "galaxy-ports/src",
    ] {
        sources(&root().join(dir), &mut files);
    }
    files.retain(|(p, _)| !p.components().any(|c| c.as_os_str() == "tests"));
    let mut constants = BTreeMap::new();
    for (_, text) in &files {
        for part in text.split("const ").skip(1) {
            if let Some((name, rest)) = part.split_once(": &str = \"")
                && let Some((value, _)) = rest.split_once('"')
                && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            {
                constants.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    let mut names = BTreeMap::new();
    for (path, text) in &files {
        for macro_name in ["counter!(", "gauge!(", "histogram!("] {
            for part in text.split(macro_name).skip(1) {
                let arg = part.split([',', ')']).next().unwrap().trim().to_owned();
                let name = if let Some(lit) = arg.strip_prefix('"') {
                    lit.trim_end_matches('"').to_owned()
                } else {
                    let ident = arg.rsplit("::").next().unwrap();
                    // `m.name` in the catalogue's own describe loop.
                    if ident.contains('.') {
                        continue;
                    }
                    constants
                        .get(ident)
                        .unwrap_or_else(|| {
                            panic!("{}: metric name {arg} is no &str constant", path.display())
                        })
                        .clone()
                };
                names.insert(name, path.clone());
            }
        }
    }
    names
}

fn catalogue() -> BTreeMap<&'static str, Kind> {
    METRICS.iter().map(|m| (m.name, m.kind)).collect()
}

#[test]
fn every_metric_the_code_records_is_in_the_catalogue() {
    let names = recorded_names();
    // The scan must keep seeing the loop's metrics (a floor, not the list).
    for known in [
        "galaxy_turns_total",
        "galaxy_http_requests_total",
        "galaxy_mail_queue_depth",
        "process_open_fds",
    ] {
        assert!(
            names.contains_key(known),
            "the scan lost {known}: {names:?}"
        );
    }
    let catalogue = catalogue();
    let missing: Vec<_> = names
        .iter()
        .filter(|(name, _)| !catalogue.contains_key(name.as_str()))
        .map(|(name, path)| format!("{name} ({})", path.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "recorded but not in galaxy_server::metering::METRICS (add it with HELP text): {missing:?}"
    );
    let unused: Vec<_> = catalogue
        .keys()
        .filter(|name| !names.contains_key(**name))
        .collect();
    assert!(
        unused.is_empty(),
        "in the catalogue but never recorded: {unused:?}"
    );
}

/// Every `galaxy_*` or `process_*` metric name in `text`, histogram series suffixes
/// removed where the base is a histogram.
fn names_used(text: &str, catalogue: &BTreeMap<&'static str, Kind>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 8)].iter().collect();
        let starts = (rest.starts_with("galaxy_") || rest.starts_with("process_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == '_'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == '_') {
            j += 1;
        }
        let name: String = bytes[i..j].iter().collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                let base = name.strip_suffix(s)?;
                (catalogue.get(base) == Some(&Kind::Histogram)).then(|| base.to_owned())
            })
            .unwrap_or(name);
        used.insert(base);
        i = j;
    }
    used
}

#[test]
fn the_dashboard_and_alert_rules_use_only_metrics_that_exist() {
    let catalogue = catalogue();
    let deploy = root().join("deploy");
    let dashboard_text =
        std::fs::read_to_string(deploy.join("grafana/galaxy-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let rules = std::fs::read_to_string(deploy.join("prometheus/alerts.yaml")).unwrap();
    let rule_exprs: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr:"))
        .collect();
    for alert in [
        "GalaxyEngineUnhealthy",
        "GalaxyTurnFailed",
        "GalaxyMailDeadLetters",
        "GalaxyMailQueueAge",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}\n")),
            "{alert} missing"
        );
    }
    let mut used = BTreeSet::new();
    for expr in exprs.iter().map(String::as_str).chain(rule_exprs) {
        let names = names_used(expr, &catalogue);
        assert!(
            !names.is_empty() || expr.contains("up{"),
            "{expr} uses no metric"
        );
        used.extend(names);
    }
    let unknown: Vec<_> = used
        .iter()
        .filter(|n| !catalogue.contains_key(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "deploy/ uses metrics the server does not export: {unknown:?}"
    );
    // The loop's metrics are on the dashboard.
    for name in [
        "galaxy_turns_total",
        "galaxy_turn_duration_seconds",
        "galaxy_engines",
        "galaxy_engine_health_events_total",
        "galaxy_container_operations_total",
        "galaxy_mail_sends_total",
        "galaxy_db_pool_connections",
        "galaxy_push_lagged_total",
    ] {
        assert!(used.contains(name), "{name} is on no panel or rule");
    }
}

#[test]
fn a_misspelt_metric_in_a_rule_is_caught() {
    let catalogue = catalogue();
    let used = names_used(
        "rate(galaxy_turns_totl[5m]) + galaxy_turn_duration_seconds_bucket",
        &catalogue,
    );
    assert!(used.contains("galaxy_turns_totl"));
    assert!(used.contains("galaxy_turn_duration_seconds"));
    assert!(!catalogue.contains_key("galaxy_turns_totl"));
}

#[test]
fn docs_operations_md_lists_the_catalogue() {
    let text = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let section = text.split("## Metrics").nth(1).unwrap();
    let mut documented = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let labels: Vec<String> = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        documented.insert(
            cells[1].trim_matches('`').to_owned(),
            (cells[2].to_owned(), labels, cells[4].to_owned()),
        );
    }
    let mut expected = BTreeMap::new();
    for m in METRICS {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let labels = m.labels.iter().map(|l| (*l).to_owned()).collect();
        expected.insert(
            m.name.to_owned(),
            (kind.to_owned(), labels, m.help.to_owned()),
        );
    }
    assert_eq!(documented, expected, "docs/operations.md's metrics table");
}

/// The label names of each catalogued metric (a histogram's `_bucket` adds `le`).
fn labels_of_metrics() -> BTreeMap<&'static str, (Kind, BTreeSet<String>)> {
    METRICS
        .iter()
        .map(|m| {
            let labels = m.labels.iter().map(|l| (*l).to_owned()).collect();
            (m.name, (m.kind, labels))
        })
        .collect()
}

type Labels = BTreeSet<String>;

/// The byte positions in `expr` that are outside every bracket and string.
fn top_level(expr: &str) -> Vec<bool> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut out = Vec::with_capacity(expr.len());
    let mut escaped = false;
    for c in expr.chars() {
        let top = depth == 0 && quote.is_none();
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' => depth -= 1,
                _ => {}
            },
        }
        for _ in 0..c.len_utf8() {
            out.push(top && !matches!(c, ')' | '}' | ']'));
        }
    }
    out
}

/// The last top-level occurrence in `expr` of one of `ops` (longest first where they
/// share a prefix): (start, operator).
fn split_at<'a>(expr: &str, ops: &[&'a str]) -> Option<(usize, &'a str)> {
    let top = top_level(expr);
    let bytes = expr.as_bytes();
    let mut found = None;
    let mut i = 0;
    while i < bytes.len() {
        let op = (top[i] && expr.is_char_boundary(i))
            .then(|| ops.iter().find(|op| expr[i..].starts_with(**op)))
            .flatten();
        match op {
            // `=~`, `!~` and `=` only occur inside selectors; `e-3` is an exponent.
            Some(op) if !(*op == "-" && i > 0 && bytes[i - 1].is_ascii_alphanumeric()) => {
                // An operand must precede a binary operator (`-1` is a literal).
                if !expr[..i].trim().is_empty() {
                    found = Some((i, *op));
                }
                i += op.len();
            }
            _ => i += 1,
        }
    }
    found
}

/// `(a, b, ...)` at the start of `text`: the names and what follows.
fn label_list(text: &str) -> Result<(Labels, &str), String> {
    let text = text.trim_start();
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.split_once(')'))
        .ok_or_else(|| format!("a label list expected at {text:?}"))?;
    let labels = inner
        .0
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok((labels, inner.1))
}

/// `keyword` at the start of `text` as a whole word: what follows it.
fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let rest = text.trim_start().strip_prefix(word)?;
    (!rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')).then_some(rest)
}

/// The body of the parenthesised group that `text` starts with, and what follows it.
fn group(text: &str) -> Result<(&str, &str), String> {
    let text = text.trim_start();
    if !text.starts_with('(') {
        return Err(format!("`(` expected at {text:?}"));
    }
    let top = top_level(text);
    // The first top-level position after the opening bracket is just past its close.
    let end = (1..text.len()).find(|&i| top[i]).unwrap_or(text.len());
    Ok((&text[1..end - 1], &text[end..]))
}

/// The labels of the series a PromQL expression yields (besides the target labels
/// `job` and `instance`, which every Galaxy series shares), `None` for a scalar; an
/// error where a binary operator matches two vectors whose labels differ without
/// `on(...)` or `ignoring(...)` saying how (Prometheus then matches nothing, so such a
/// rule never fires).
fn expr_labels(
    expr: &str,
    metrics: &BTreeMap<&'static str, (Kind, Labels)>,
) -> Result<Option<Labels>, String> {
    let expr = expr.trim();
    // Lowest precedence first: comparisons, then + and -, then * / %, then ^.
    for ops in [
        &["==", "!=", ">=", "<=", ">", "<"][..],
        &["+", "-"][..],
        &["*", "/", "%"][..],
        &["^"][..],
    ] {
        let Some((at, op)) = split_at(expr, ops) else {
            continue;
        };
        let left = expr_labels(&expr[..at], metrics)?;
        let mut rest = &expr[at + op.len()..];
        if let Some(after) = keyword(rest, "bool") {
            rest = after;
        }
        let mut matching = None;
        for (word, on) in [("on", true), ("ignoring", false)] {
            if let Some(after) = keyword(rest, word) {
                let (labels, after) = label_list(after)?;
                matching = Some((on, labels));
                rest = after;
            }
        }
        for word in ["group_left", "group_right"] {
            if let Some(after) = keyword(rest, word) {
                rest = after;
                if rest.trim_start().starts_with('(') {
                    rest = label_list(rest)?.1;
                }
            }
        }
        let right = expr_labels(rest, metrics)?;
        return match (left, right) {
            (None, None) => Ok(None),
            (Some(side), None) | (None, Some(side)) => Ok(Some(side)),
            (Some(left), Some(right)) => {
                let (l, r) = match &matching {
                    None => (left.clone(), right.clone()),
                    Some((true, on)) => {
                        if !on.is_subset(&left) || !on.is_subset(&right) {
                            return Err(format!("{expr}: on({on:?}) names a label a side lacks"));
                        }
                        (on.clone(), on.clone())
                    }
                    Some((false, ignored)) => (&left - ignored, &right - ignored),
                };
                if l != r {
                    return Err(format!(
                        "{expr}: `{op}` matches series by all their labels, and the sides' \
                         differ ({left:?} and {right:?}): say ignoring(...) or on(...)"
                    ));
                }
                Ok(Some(l))
            }
        };
    }
    if expr.parse::<f64>().is_ok() {
        return Ok(None);
    }
    if expr.starts_with('(') {
        let (inner, after) = group(expr)?;
        if after.trim().is_empty() {
            return expr_labels(inner, metrics);
        }
    }
    let end = expr
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(expr.len());
    let (name, rest) = expr.split_at(end);
    if name.is_empty() {
        return Err(format!("cannot read {expr:?}"));
    }
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    if AGGREGATIONS.contains(&name) {
        let mut rest = rest;
        let mut grouping = None;
        for (word, by) in [("by", true), ("without", false)] {
            if let Some(after) = keyword(rest, word) {
                let (labels, after) = label_list(after)?;
                grouping = Some((by, labels));
                rest = after;
            }
        }
        let (body, mut after) = group(rest)?;
        for (word, by) in [("by", true), ("without", false)] {
            if let Some(following) = keyword(after, word) {
                let (labels, following) = label_list(following)?;
                grouping = Some((by, labels));
                after = following;
            }
        }
        if !after.trim().is_empty() {
            return Err(format!("cannot read {after:?} in {expr}"));
        }
        let top = top_level(body);
        let last = (0..body.len())
            .rev()
            .find(|&i| top[i] && body.as_bytes()[i] == b',')
            .map_or(body, |i| &body[i + 1..]);
        let inner = expr_labels(last, metrics)?.unwrap_or_default();
        return Ok(Some(match grouping {
            _ if matches!(name, "topk" | "bottomk") => inner,
            None => Labels::new(),
            Some((true, by)) => by,
            Some((false, without)) => &inner - &without,
        }));
    }
    if rest.trim_start().starts_with('(') {
        let (body, after) = group(rest)?;
        if !after.trim().is_empty() {
            return Err(format!("cannot read {after:?} in {expr}"));
        }
        let top = top_level(body);
        let mut vector = None;
        let mut start = 0;
        for i in 0..=body.len() {
            if i == body.len() || (top[i] && body.as_bytes()[i] == b',') {
                if vector.is_none() {
                    vector = expr_labels(&body[start..i], metrics)?;
                }
                start = i + 1;
            }
        }
        return Ok(match name {
            "scalar" | "time" => None,
            "vector" => Some(Labels::new()),
            "histogram_quantile" => vector.map(|mut l| {
                l.remove("le");
                l
            }),
            _ => vector,
        });
    }
    // A selector, perhaps with matchers, a range and an offset.
    let rest = rest.trim_start();
    let rest = if rest.starts_with('{') {
        let close = rest
            .find('}')
            .ok_or_else(|| format!("unclosed {{ in {expr}"))?;
        &rest[close + 1..]
    } else {
        rest
    };
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(range) => range.split_once(']').map_or("", |(_, after)| after),
        None => rest,
    };
    if !(rest.trim().is_empty() || keyword(rest, "offset").is_some()) {
        return Err(format!("cannot read {rest:?} in {expr}"));
    }
    if name == "up" {
        return Ok(Some(Labels::new()));
    }
    let found = metrics.get(name).cloned().or_else(|| {
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            let (kind, mut labels) = metrics.get(base)?.clone();
            (kind == Kind::Histogram).then(|| {
                if *suffix == "_bucket" {
                    labels.insert("le".to_owned());
                }
                (kind, labels)
            })
        })
    });
    found
        .map(|(_, labels)| Some(labels))
        .ok_or_else(|| format!("{name} is not a metric of the catalogue"))
}

/// Every alert rule compares series that can match: a comparison of two vectors with
/// different labels (`galaxy_db_pool_connections{state="in_use"} >=
/// galaxy_db_pool_max_connections`) matches nothing without `ignoring`/`on`, so the
/// alert could never fire. (promtool would not say so either: the rule is valid.)
#[test]
fn every_alert_rule_matches_the_series_it_compares() {
    let metrics = labels_of_metrics();
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yaml")).unwrap();
    let mut checked = 0;
    for expr in rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr:"))
    {
        if let Err(why) = expr_labels(expr, &metrics) {
            panic!("deploy/prometheus/alerts.yaml: {why}");
        }
        checked += 1;
    }
    assert!(checked >= 9, "{checked} rules read");
    assert!(rules.contains(
        "galaxy_db_pool_connections{state=\"in_use\"} >= ignoring(state) \
         galaxy_db_pool_max_connections"
    ));
}

#[test]
fn the_matching_check_catches_mismatched_labels_and_accepts_the_fixes() {
    let metrics = labels_of_metrics();
    let check = |expr: &str| expr_labels(expr, &metrics);
    let pool = r#"galaxy_db_pool_connections{state="in_use"}"#;
    let bare = format!("{pool} >= galaxy_db_pool_max_connections");
    let why = check(&bare).unwrap_err();
    assert!(why.contains("ignoring(...)"), "{why}");
    for fixed in [
        format!("{pool} >= ignoring(state) galaxy_db_pool_max_connections"),
        format!("{pool} >= on() galaxy_db_pool_max_connections"),
        format!("sum({pool}) >= bool sum(galaxy_db_pool_max_connections)"),
        "sum(rate(galaxy_mail_sends_total{outcome!=\"ok\"}[10m])) > 0.1 * \
         sum(rate(galaxy_mail_sends_total[10m]))"
            .to_owned(),
    ] {
        assert!(check(&fixed).is_ok(), "{fixed}: {:?}", check(&fixed));
    }
    // A scalar side, an aggregation by a label and a histogram's buckets.
    assert_eq!(
        check("galaxy_engines_unhealthy > 0").unwrap(),
        Some(Labels::new())
    );
    assert_eq!(
        check(
            r#"sum by (kind) (increase(galaxy_engine_health_events_total{kind=~"a|b"}[15m])) > 0"#
        )
        .unwrap()
        .unwrap(),
        Labels::from(["kind".to_owned()])
    );
    assert!(
        check(
            "histogram_quantile(0.9, sum by (le) (rate(galaxy_turn_duration_seconds_bucket[5m]))) \
             > 60"
        )
        .is_ok()
    );
    assert!(check("rate(galaxy_turns_total[5m]) > on(outcome) galaxy_engines_unhealthy").is_err());
    assert!(check("galaxy_no_such_metric > 0").is_err());
}
