//! `galaxy-cli engine check` as engine authors run it: the real binary launches the
//! built reference engine (every rule passes), an engine that loses its state on a
//! restart (exactly that rule fails), and bad input gets a clear message and its own
//! exit status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The reference engine's binary beside this test's galaxy-cli (`cargo nextest run
/// --workspace` builds it there; built once here when missing, e.g. `-p galaxy-cli`).
fn engine_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let cli = PathBuf::from(env!("CARGO_BIN_EXE_galaxy-cli"));
            let profile_dir = cli.parent().unwrap();
            let binary = profile_dir.join("galaxy-engine");
            if !binary.is_file() {
                let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
                let status = Command::new(cargo)
                    .current_dir(&workspace)
                    .args(["build", "-p", "galaxy-engine", "--bin", "galaxy-engine"])
                    .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                    .status()
                    .unwrap();
                assert!(status.success(), "building galaxy-engine failed");
            }
            binary
        })
        .clone()
}

fn orders_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/engine/check-orders.json")
        .display()
        .to_string()
}

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(["engine", "check"])
        .args(args)
        .env_remove("GALAXY_ENGINE_TOKEN")
        .output()
        .expect("galaxy-cli runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The rule ids of the output lines with `status`.
fn rules_with(output: &Output, status: &str) -> BTreeSet<String> {
    stdout(output)
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{status} ")))
        .filter_map(|rest| rest.split(' ').next().map(str::to_owned))
        .collect()
}

/// A full game of the reference engine launched by the checker.
fn launch(command: &str) -> Output {
    check(&[
        "--launch",
        command,
        "--orders",
        &orders_file(),
        "--settings",
        r#"{"max_turns": 3}"#,
        "--max-turns",
        "5",
    ])
}

#[test]
fn the_launched_reference_engine_passes_every_rule() {
    let engine = engine_binary();
    let output = launch(&engine.display().to_string());
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{text}");
    let lines: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
    let (summary, rules) = lines.split_last().unwrap();
    assert!(rules.len() >= 30, "{text}");
    for line in rules {
        assert!(line.starts_with("PASS "), "not a pass: {line}\n{text}");
    }
    assert!(
        summary.starts_with(&format!(
            "engine check: {} passed, 0 failed, 0 warned, 0 skipped",
            rules.len()
        )),
        "{summary}"
    );
    assert!(summary.ends_with("contract 2)"), "{summary}");
}

/// `--launch ./galaxy-engine` as an engine author types it in their build directory: the
/// relative program path is taken from the checker's directory, not the engine's data
/// directory it runs in.
#[test]
fn a_relative_program_path_is_launched_from_the_checkers_directory() {
    let engine = engine_binary();
    let output = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .current_dir(engine.parent().unwrap())
        .args(["engine", "check", "--launch", "./galaxy-engine", "--orders"])
        .arg(orders_file())
        .args(["--settings", r#"{"max_turns": 3}"#, "--max-turns", "5"])
        .env_remove("GALAXY_ENGINE_TOKEN")
        .output()
        .expect("galaxy-cli runs");
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        rules_with(&output, "PASS").contains("restart.resume"),
        "{text}"
    );
}

#[test]
fn an_engine_that_loses_its_state_on_restart_fails_exactly_the_restart_rule() {
    // The engine runs in its data directory: this wrapper deletes the state on every start,
    // as an engine that kept its game in memory would lose it.
    let engine = engine_binary();
    let command = format!("sh -c 'rm -f state.json; exec \"$0\"' {}", engine.display());
    let output = launch(&command);
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(
        rules_with(&output, "FAIL"),
        BTreeSet::from(["restart.resume".to_owned()]),
        "{text}"
    );
    // The orders accepted before the kill were lost too: the replay's turn 1 differs.
    assert_eq!(
        rules_with(&output, "WARN"),
        BTreeSet::from(["determinism.seed".to_owned()]),
        "{text}"
    );
}

#[test]
fn bad_input_gets_a_message_and_the_usage_status() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let output = check(&[
        "--url",
        "http://127.0.0.1:9",
        "--orders",
        &missing.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot read the orders file"),
        "{}",
        stderr(&output)
    );

    let not_orders = dir.path().join("orders.json");
    std::fs::write(&not_orders, r#"{"valid": []}"#).unwrap();
    let output = check(&[
        "--url",
        "http://127.0.0.1:9",
        "--orders",
        &not_orders.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no \"invalid\" key"),
        "{}",
        stderr(&output)
    );

    let output = check(&[
        "--url",
        "http://127.0.0.1:9",
        "--settings",
        "{max_turns: 3}",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--settings must be a JSON object"),
        "{}",
        stderr(&output)
    );

    // Neither --url nor --launch, or both: clap's usage error.
    assert_eq!(check(&[]).status.code(), Some(2));
    assert_eq!(
        check(&["--url", "http://127.0.0.1:9", "--launch", "x"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn an_engine_that_cannot_be_reached_or_launched_gets_its_own_status() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = check(&["--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot be reached"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).is_empty(),
        "no rule lines: {}",
        stdout(&output)
    );

    let output = check(&["--launch", "/nonexistent/engine --flag"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot launch the engine"),
        "{}",
        stderr(&output)
    );

    // An engine that exits at once: its own output is in the message.
    let output = check(&["--launch", "sh -c 'echo engine says no >&2; exit 4'"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("engine says no"),
        "{}",
        stderr(&output)
    );
}

/// The children of process `parent` (from `/proc`).
fn children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: the command may hold spaces, the rest does not.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        if after.split_whitespace().nth(1) == Some(&parent.to_string()) {
            found.push(pid);
        }
    }
    found
}

/// Whether process `pid` still runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1.to_owned();
            after.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// A check stopped by a signal (ctrl-c, SIGTERM) stops the engine it launched, which runs
/// in a process group of its own that the terminal's signal does not reach: here an
/// "engine" that never answers, so the check is surely still waiting for it.
#[test]
fn a_check_stopped_by_a_signal_leaves_no_engine_running() {
    let cli = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(["engine", "check", "--launch", "/bin/sleep 600"])
        .args(["--start-timeout", "120"])
        .env_remove("GALAXY_ENGINE_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let engine = loop {
        if let Some(&pid) = children(cli.id()).first() {
            break pid;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the engine was never launched"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let sent = Command::new("kill")
        .args(["-TERM", &cli.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = cli.wait_with_output().unwrap();
    let stopped = std::time::Instant::now();
    while running(engine) {
        if stopped.elapsed() > std::time::Duration::from_secs(10) {
            let _ = Command::new("kill")
                .args(["-KILL", &engine.to_string()])
                .status();
            panic!("the launched engine {engine} still runs after the check ended");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted"),
        "{}",
        stderr(&output)
    );
}
