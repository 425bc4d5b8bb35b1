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
