//! The SMTP sink (tests/data/smtp_sink.py on aiosmtpd) as a child process of the test,
//! and helpers to build mailers and mails against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use galaxy_core::domain::mail::OutgoingMail;
use galaxy_core::domain::user::{Email, Locale};
use galaxy_smtp::{SmtpMailer, SmtpMailerConfig, SmtpUrl};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The sender of every test mail.
pub const FROM: &str = "Galaxy Test <galaxy@example.org>";

/// How to start a sink.
#[derive(Debug, Default, Clone)]
pub struct SinkOptions {
    /// A fixed port (0: a free one).
    pub port: u16,
    /// `user:password` the sink requires.
    pub auth: Option<String>,
    /// Certificate and key: STARTTLS offered and required.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// With `tls`: TLS from the first byte instead of STARTTLS.
    pub implicit_tls: bool,
}

/// A running sink; killed when dropped.
pub struct Sink {
    child: Child,
    /// Where it listens.
    pub port: u16,
    /// Where it writes accepted messages.
    out: tempfile::TempDir,
}

impl Sink {
    /// A sink on a free port.
    pub async fn start() -> Sink {
        Self::start_with(SinkOptions::default()).await
    }

    /// A sink with options.
    pub async fn start_with(options: SinkOptions) -> Sink {
        let out = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/smtp_sink.py");
        let mut command = Command::new(python());
        command
            .arg(script)
            .arg("--port")
            .arg(options.port.to_string())
            .arg("--out")
            .arg(out.path());
        if let Some(auth) = &options.auth {
            command.arg("--auth").arg(auth);
        }
        if let Some((cert, key)) = &options.tls {
            command
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
            if options.implicit_tls {
                command.arg("--implicit-tls");
            }
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the SMTP sink");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP sink did not start within 30 s")
            .unwrap()
            .expect("the SMTP sink exited before it was ready (see its stderr above)");
        let port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP sink: {ready:?}"));
        Sink { child, port, out }
    }

    /// The messages accepted so far, in order (as the sink decoded them).
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

    /// Stops the sink and waits for it to be gone.
    pub async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// The Python interpreter that has aiosmtpd: `GALAXY_TEST_PYTHON`, else `python3` or
/// `/usr/bin/python3` (Debian's package installs for the system interpreter, which a
/// pyenv or venv `python3` on PATH does not see).
pub fn python() -> PathBuf {
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
        "the SMTP tests need a real SMTP server: aiosmtpd for Python 3 is missing. \
         Install it with `apt-get install -y python3-aiosmtpd` (Debian) or \
         `pip install aiosmtpd`, or point GALAXY_TEST_PYTHON at an interpreter that has it."
    );
}

/// A port nothing listens on (bound and released at once).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A plain-SMTP mailer for `127.0.0.1:port` with a per-send deadline.
pub fn mailer(port: u16, timeout: Duration) -> SmtpMailer {
    mailer_for(&format!("smtp://127.0.0.1:{port}"), timeout, Vec::new())
}

/// A mailer for a URL, trusting the extra root certificates.
pub fn mailer_for(url: &str, timeout: Duration, roots: Vec<Vec<u8>>) -> SmtpMailer {
    let mut config = SmtpMailerConfig::new(SmtpUrl::parse(url).unwrap(), FROM);
    config.timeout = timeout;
    config.extra_root_certificates = roots;
    SmtpMailer::new(config).unwrap()
}

/// A mail to `to` with a text body and, if given, an HTML alternative.
pub fn mail(key: &str, to: &str, html: Option<&str>) -> OutgoingMail {
    OutgoingMail {
        idempotency_key: key.to_owned(),
        to: Email::parse(to).unwrap(),
        kind: "turn_completed".to_owned(),
        locale: Locale::parse("de").unwrap(),
        subject: "Zug 5: Bericht für Andromeda".to_owned(),
        text_body: "Hallo ann,\n\nZug 5 ist gelaufen.\n".to_owned(),
        html_body: html.map(str::to_owned),
        extras: Default::default(),
    }
}

/// A throwaway CA and a certificate for `localhost` and `127.0.0.1` signed by it, made
/// with the `openssl` command: `(dir, ca.pem, cert.pem, key.pem)`.
pub fn test_certificates() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: Vec<Vec<&str>> = vec![
        [
            &["req", "-x509"][..],
            &ec[..],
            &["-days", "2", "-subj", "/CN=galaxy test CA"],
        ]
        .concat(),
        [&["req"][..], &ec[..], &["-subj", "/CN=localhost"]].concat(),
        vec![
            "x509",
            "-req",
            "-days",
            "2",
            "-CAcreateserial",
            "-extfile",
            "leaf.ext",
        ],
    ];
    let files: [&[&str]; 3] = [
        &["-keyout", "ca.key", "-out", "ca.pem"],
        &["-keyout", "key.pem", "-out", "leaf.csr"],
        &[
            "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-out", "cert.pem",
        ],
    ];
    for (step, files) in steps.iter().zip(files) {
        let status = std::process::Command::new("openssl")
            .args(step)
            .args(files)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the TLS tests need the `openssl` command (Debian: apt-get install openssl)");
        assert!(status.success(), "openssl {step:?} failed");
    }
    let (ca, cert, key) = (p("ca.pem"), p("cert.pem"), p("key.pem"));
    (dir, ca, cert, key)
}
