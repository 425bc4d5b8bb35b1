//! deploy/systemd/galaxy-server.service: `systemd-analyze verify` accepts it without a
//! complaint (it exits 0 even for unknown keys, so its messages are read too), and it has
//! its hardening section. Without systemd-analyze only the parse checks run (said so).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn unit() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/galaxy-server.service");
    std::fs::read_to_string(path).unwrap()
}

/// `systemd-analyze verify` on `text` with the binary path replaced by this build's
/// (verify checks that ExecStart exists): `None` without systemd-analyze, else the
/// complaints about the file.
fn verify(text: &str) -> Option<Vec<String>> {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .ok()?;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("galaxy-server.service");
    let text = text.replace(
        "/usr/local/bin/galaxy-server",
        env!("CARGO_BIN_EXE_galaxy-server"),
    );
    std::fs::write(&path, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut complaints: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains("galaxy-server.service"))
        .map(str::to_owned)
        .collect();
    if !out.status.success() {
        complaints.push(format!("exit {}: {stderr}", out.status));
    }
    Some(complaints)
}

/// The `[Service]` section's keys and values (a key may repeat).
fn service_keys(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_service = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            keys.entry(k.to_owned()).or_default().push(v.to_owned());
        }
    }
    keys
}

#[test]
fn the_unit_verifies_and_is_hardened() {
    let text = unit();
    match verify(&text) {
        Some(complaints) => assert!(complaints.is_empty(), "{complaints:#?}"),
        None => eprintln!("systemd-analyze is missing: only the parse checks ran"),
    }
    let keys = service_keys(&text);
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestartPreventExitStatus", "2"),
        ("ReadWritePaths", "/var/lib/galaxy"),
        ("User", "galaxy"),
    ] {
        assert!(
            keys.get(key).is_some_and(|v| v.iter().any(|v| v == value)),
            "[Service] lacks {key}={value}"
        );
    }
    assert!(keys["ExecStart"][0].ends_with("galaxy-server serve"));
}

/// A configuration error stops the unit rather than restarting it every `RestartSec`:
/// `RestartPreventExitStatus` applies to the main process only (systemd/systemd#11868),
/// so the check is `serve`'s own (exit 2), never an `ExecStartPre=... config check`,
/// whose failure would restart for ever.
#[test]
fn a_configuration_error_does_not_restart_the_unit() {
    let keys = service_keys(&unit());
    assert_eq!(keys["Restart"], ["on-failure"]);
    assert_eq!(keys["RestartPreventExitStatus"], ["2"]);
    for key in ["ExecStartPre", "ExecCondition"] {
        assert!(
            !keys.contains_key(key),
            "{key}= fails outside RestartPreventExitStatus: {:?}",
            keys[key]
        );
    }
}

/// The unit serves the default (Docker) runtime, whose socket needs the docker group, and
/// says when to delete that line: on a host without a docker group (the process
/// runtime) `SupplementaryGroups=docker` fails the unit with 216/GROUP.
#[test]
fn the_docker_group_serves_the_default_runtime_and_says_when_to_delete_it() {
    let text = unit();
    assert_eq!(
        service_keys(&text).get("SupplementaryGroups"),
        Some(&vec!["docker".to_owned()])
    );
    assert!(
        text.contains("GALAXY_RUNTIME=process or none delete that line")
            && text.contains("216/GROUP"),
        "the unit must say when to delete the docker group"
    );
}

#[test]
fn verify_catches_a_bad_value() {
    let bad = unit().replace("ProtectSystem=strict", "ProtectSystem=strcit");
    if let Some(complaints) = verify(&bad) {
        assert!(
            complaints.iter().any(|c| c.contains("protect system")),
            "{complaints:?}"
        );
    }
}
