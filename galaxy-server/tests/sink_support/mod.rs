//! The aiosmtpd SMTP sink of galaxy-smtp's tests (tests/data/smtp_sink.py), run as a
//! child process: where a test server's mail goes, read back as JSON records.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
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
pub struct Sink {
    _child: Child,
    /// Where it listens.
    pub port: u16,
    out: tempfile::TempDir,
}

impl Sink {
    /// A sink on a free port.
    pub async fn start() -> Self {
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

    /// Every message it accepted, in order.
    pub fn messages(&self) -> Vec<serde_json::Value> {
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
