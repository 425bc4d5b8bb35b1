//! `galaxy-cli doctor` and `migrate status` against real things: a fresh Postgres
//! database (DATABASE_URL's server), the reference engine binary, a closed port for a
//! dead relay and a dead database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use galaxy_postgres::testing::TestDatabases;

fn url_of(database: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (run scripts/test.sh)");
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{database}")
}

/// The reference engine binary beside this test's target directory.
fn engine_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.ancestors().nth(2).unwrap().to_owned();
    debug.join("galaxy-engine")
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// galaxy-cli with only `vars` (and PATH) in its environment.
fn cli(args: &[&str], vars: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn line<'a>(text: &'a str, check: &str) -> &'a str {
    text.lines()
        .find(|l| l.get(5..).is_some_and(|rest| rest.starts_with(check)))
        .unwrap_or_else(|| panic!("no {check} line in:\n{text}"))
}

#[tokio::test]
async fn doctor_passes_a_sound_setup_and_migrate_status_follows_the_schema() {
    assert!(
        engine_binary().is_file(),
        "cargo build -p galaxy-engine first"
    );
    let databases = TestDatabases::from_env().await.unwrap();
    let empty = databases.empty_database().await.unwrap();
    let url = url_of(empty.get_database().unwrap());
    let data = tempfile::tempdir().unwrap();
    let vars = vec![
        ("GALAXY_DATABASE_URL", url.clone()),
        ("GALAXY_RUNTIME", "process".to_owned()),
        (
            "GALAXY_PROCESS_ENGINES",
            format!("reference={}", engine_binary().display()),
        ),
        ("GALAXY_DATA_DIR", data.path().display().to_string()),
    ];

    let status = cli(&["migrate", "status"], &vars);
    assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));
    assert!(
        stdout(&status).contains("applied: []"),
        "{}",
        stdout(&status)
    );

    let out = cli(&["doctor"], &vars);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(line(&text, "config").starts_with("OK"), "{text}");
    let database = line(&text, "database");
    assert!(
        database.starts_with("WARN") && database.contains("pending") && database.contains("fix: "),
        "{text}"
    );
    assert!(line(&text, "engine").starts_with("OK"), "{text}");
    assert!(line(&text, "smtp").starts_with("WARN"), "{text}");
    assert!(line(&text, "geoip").starts_with("SKIP"), "{text}");
    assert!(line(&text, "data dir").starts_with("OK"), "{text}");

    assert!(cli(&["migrate"], &vars).status.success());
    let status = cli(&["migrate", "status"], &vars);
    assert_eq!(status.status.code(), Some(0), "{}", stdout(&status));
    assert!(stdout(&status).contains("pending: []"));
    let text = stdout(&cli(&["doctor"], &vars));
    assert!(
        line(&text, "database").starts_with("OK") && text.contains("schema current"),
        "{text}"
    );
    databases.cleanup().await.unwrap();
}

#[test]
fn doctor_names_each_failure_with_a_fix_and_exits_1() {
    let data = tempfile::tempdir().unwrap();
    let vars = vec![
        (
            "GALAXY_DATABASE_URL",
            format!("postgres://galaxy@127.0.0.1:{}/galaxy", closed_port()),
        ),
        ("GALAXY_RUNTIME", "process".to_owned()),
        (
            "GALAXY_PROCESS_ENGINES",
            "reference=/nonexistent/galaxy-engine".to_owned(),
        ),
        (
            "GALAXY_SMTP_URL",
            format!("smtp://127.0.0.1:{}?tls=none", closed_port()),
        ),
        ("GALAXY_GEOIP_DB", "/nonexistent/country.mmdb".to_owned()),
        ("GALAXY_DATA_DIR", data.path().display().to_string()),
    ];
    let out = cli(&["doctor"], &vars);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for check in ["database", "engine", "smtp", "geoip"] {
        let l = line(&text, check);
        assert!(
            l.starts_with("FAIL") && l.contains("fix: "),
            "{check}: {text}"
        );
    }
    assert!(line(&text, "data dir").starts_with("OK"), "{text}");
    assert!(text.contains("4 failed"), "{text}");

    // `--database-url` stands for the server's URL as for every other command (it was
    // ignored: "GALAXY_DATABASE_URL is not set"), and a misspelled variable is a warning,
    // as the server gives one at start-up.
    let mut flagged: Vec<(&str, String)> = vars
        .iter()
        .filter(|(name, _)| *name != "GALAXY_DATABASE_URL")
        .cloned()
        .collect();
    flagged.push(("GALAXY_HTTP_ADR", "0.0.0.0:80".to_owned()));
    let dead = format!("postgres://galaxy@127.0.0.1:{}/flagged", closed_port());
    let out = cli(&["--database-url", &dead, "doctor"], &flagged);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let database = line(&text, "database");
    assert!(
        database.starts_with("FAIL") && database.contains("unreachable"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("WARN config") && l.contains("GALAXY_HTTP_ADR")),
        "{text}"
    );

    // An invalid configuration is the one failure; nothing is tried with it.
    let out = cli(
        &["doctor", "--dev"],
        &[("GALAXY_SESSION_TTL", "forever".to_owned())],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        line(&text, "config").starts_with("FAIL") && text.contains("GALAXY_SESSION_TTL"),
        "{text}"
    );
    assert!(text.contains("1 failed"), "{text}");
}

#[test]
fn doctor_reads_engine_commands_as_the_runtime_does_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // An engine under a path with a space, quoted as GALAXY_PROCESS_ENGINES allows.
    let spaced = tmp.path().join("Galaxy Engines");
    std::fs::create_dir(&spaced).unwrap();
    std::os::unix::fs::symlink(engine_binary(), spaced.join("galaxy-engine")).unwrap();
    let data = tmp.path().join("not-yet");
    let vars = vec![
        (
            "GALAXY_DATABASE_URL",
            format!("postgres://galaxy@127.0.0.1:{}/galaxy", closed_port()),
        ),
        ("GALAXY_RUNTIME", "process".to_owned()),
        (
            "GALAXY_PROCESS_ENGINES",
            format!("reference='{}/galaxy-engine' --quiet", spaced.display()),
        ),
        ("GALAXY_DATA_DIR", data.display().to_string()),
    ];
    let text = stdout(&cli(&["doctor"], &vars));
    assert!(line(&text, "engine").starts_with("OK"), "{text}");
    let dir = line(&text, "data dir");
    assert!(
        dir.starts_with("WARN") && dir.contains("does not exist"),
        "{text}"
    );
    assert!(!data.exists(), "the doctor made the data directory");
    // The server's own data directory named on the command line (its unit sets it in
    // an environment this shell does not have) is the one checked.
    let given = tmp.path().join("given");
    std::fs::create_dir(&given).unwrap();
    let given_arg = given.display().to_string();
    let text = stdout(&cli(&["doctor", "--data-dir", &given_arg], &vars));
    let dir = line(&text, "data dir");
    assert!(dir.starts_with("OK") && dir.contains(&given_arg), "{text}");
}
