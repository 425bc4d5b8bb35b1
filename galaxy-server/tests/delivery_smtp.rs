//! Mail through SMTP: `galaxy-server dev` with `GALAXY_SMTP_URL` pointing at a real SMTP
//! server (the aiosmtpd sink of galaxy-smtp's tests, run as a child process) sends the
//! login-code mail there instead of writing `.eml` files; a bad URL is a configuration
//! error naming the variable and never quoting the URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use galaxy_server::{Config, Listeners, dev};
use lifecycle_support::{eml_files, eventually, login_code_body, send};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// The sink of galaxy-smtp's tests.
fn sink_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../galaxy-adapters/smtp/tests/data/smtp_sink.py")
}

/// A Python 3 with aiosmtpd (`GALAXY_TEST_PYTHON`, `python3` or `/usr/bin/python3`).
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("GALAXY_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = std::process::Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "this test needs aiosmtpd for Python 3 (`apt-get install -y python3-aiosmtpd` or \
         `pip install aiosmtpd`), or GALAXY_TEST_PYTHON pointing at an interpreter with it"
    );
}

/// A running sink on a free port; killed when dropped.
struct Sink {
    _child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl Sink {
    async fn start() -> Self {
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .arg(sink_script())
            .args(["--port", "0", "--out"])
            .arg(out.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the SMTP sink");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP sink did not start within 30 s")
            .unwrap()
            .expect("the SMTP sink exited before it was ready");
        let port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP sink: {ready:?}"));
        Self {
            _child: child,
            port,
            out,
        }
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        let mut paths: Vec<_> = std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

fn vars(data_dir: &Path, smtp_url: &str) -> HashMap<String, String> {
    [
        ("GALAXY_DATA_DIR", data_dir.display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
        ("GALAXY_SMTP_URL", smtp_url.to_owned()),
        ("GALAXY_SMTP_TIMEOUT", "5s".to_owned()),
        ("GALAXY_MAIL_FROM", "Galaxy <galaxy@example.org>".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_sends_the_login_code_through_smtp() {
    let sink = Sink::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let config = Config::from_vars(&vars(tmp.path(), &url)).unwrap();
    let app = dev::build(config).await.unwrap();
    let listeners = Listeners::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listeners.http_addr().unwrap();
    let stop = app.shutdown_token();
    let served = tokio::spawn(app.serve(listeners, std::future::pending()));

    let email = "smtp-player@example.org";
    let issued = send(
        addr,
        "POST",
        "/api/v1/public/auth/login-codes",
        &[],
        &login_code_body(email),
    )
    .await
    .unwrap();
    assert_eq!(issued.status, 202, "{}", issued.body);
    let message = eventually(
        Duration::from_secs(20),
        "the login mail at the sink",
        || {
            let found = sink.messages().into_iter().next();
            async move { found }
        },
    )
    .await;
    assert_eq!(message["rcpt_tos"], serde_json::json!([email]), "{message}");
    assert!(
        message["headers"]["from"]
            .as_str()
            .unwrap()
            .contains("galaxy@example.org"),
        "{message}"
    );
    let text = message["text"].as_str().unwrap();
    assert!(
        text.chars().any(|c| c.is_ascii_digit()),
        "no code in {text:?}"
    );
    assert!(
        eml_files(&tmp.path().join("mail")).is_empty(),
        "no .eml with SMTP set"
    );

    stop.cancel();
    let report = served.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn a_bad_smtp_url_is_a_configuration_error_that_hides_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let error = Config::from_vars(&vars(tmp.path(), "smtp://user:hunter2@relay/path?x=1"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("GALAXY_SMTP_URL"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn the_mail_lease_covers_a_batch_of_stalled_sends() {
    let tmp = tempfile::tempdir().unwrap();
    let mut map = vars(tmp.path(), "smtp://127.0.0.1:2525");
    map.insert("GALAXY_SMTP_TIMEOUT".to_owned(), "60s".to_owned());
    map.insert("GALAXY_MAIL_BATCH".to_owned(), "10".to_owned());
    let config = Config::from_vars(&map).unwrap();
    let lease = galaxy_server::delivery::mail_lease(&config).unwrap();
    assert!(lease >= chrono::TimeDelta::seconds(600), "{lease}");
}
