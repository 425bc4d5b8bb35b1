//! The real `galaxy-server` binary: SIGTERM during in-flight requests, configuration
//! errors, `--help`, and dev mode's logged login code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifecycle_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BINARY: &str = env!("CARGO_BIN_EXE_galaxy-server");

/// A running `galaxy-server` whose output is collected in the background.
struct Server {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The threads reading the two pipes, done when the pipes close.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the binary with only `vars` in its environment.
    fn start(args: &[&str], vars: &[(&str, String)]) -> Self {
        let mut command = Command::new(BINARY);
        command.args(args);
        Self::spawn(command, vars)
    }

    /// Starts `command` (in a process group of its own) with only `vars`.
    fn spawn(mut command: Command, vars: &[(&str, String)]) -> Self {
        use std::os::unix::process::CommandExt as _;
        let mut child = command
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |mut pipe: Box<dyn Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = text.clone();
            let reader = std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
            (text, reader)
        };
        let (stdout, out_reader) = collect(Box::new(child.stdout.take().unwrap()));
        let (stderr, err_reader) = collect(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, killing it after `limit`.
    async fn wait(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads take the last output: they end when the pipes
                // close, unless a process the server started (an engine) keeps them open.
                let drained = Instant::now();
                while !self.readers.iter().all(|r| r.is_finished())
                    && drained.elapsed() < Duration::from_secs(5)
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("no exit within {limit:?}; stderr:\n{}", self.stderr());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Runs the binary to completion.
fn run(args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

fn dev_vars(addr: SocketAddr, data_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("GALAXY_HTTP_ADDR", addr.to_string()),
        ("GALAXY_DATA_DIR", data_dir.display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
    ]
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let metrics = loopback(free_port());
    let mut vars = dev_vars(addr, tmp.path());
    vars.push(("GALAXY_METRICS_ADDR", metrics.to_string()));
    let mut server = Server::start(&["dev"], &vars);
    wait_ready(addr, Duration::from_secs(60)).await;

    // Three requests whose bodies arrive in two halves, with SIGTERM in between: the
    // server has them in hand (headers read, handler waiting for the body) when the
    // signal comes.
    let mut in_flight = Vec::new();
    for i in 0..3 {
        let body = login_code_body(&format!("player{i}@example.com"));
        let bytes = request_bytes("POST", "/api/v1/public/auth/login-codes", &[], &body);
        let split = bytes.len() - body.len() / 2;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&bytes[..split]).await.unwrap();
        in_flight.push((stream, bytes[split..].to_vec()));
    }
    // The server holds the three (however busy the machine), then has a moment to read
    // their heads.
    eventually(
        Duration::from_secs(30),
        "three open connections",
        || async move {
            let scraped = http_get(metrics, "/metrics").await.ok()?;
            let open = scraped
                .body
                .lines()
                .find(|l| l.starts_with("galaxy_http_connections{listener=\"http\"}"))?
                .rsplit(' ')
                .next()?
                .parse::<f64>()
                .ok()?;
            (open >= 3.0).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.signal("TERM");
    eventually(
        Duration::from_secs(10),
        "new connections refused",
        || async move { TcpStream::connect(addr).await.is_err().then_some(()) },
    )
    .await;
    for (mut stream, rest) in in_flight {
        stream.write_all(&rest).await.unwrap();
        let response = read_response(&mut stream).await.unwrap();
        assert_eq!(response.status, 202, "{}", response.body);
    }
    let status = server.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    assert!(
        server.stderr().contains("stopped cleanly"),
        "{}",
        server.stderr()
    );
    assert!(
        server.stdout().contains("SIGTERM received"),
        "{}",
        server.stdout()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_logs_the_login_code_and_json_lines_carry_trace_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let mut server = Server::start(&["dev"], &dev_vars(addr, tmp.path()));
    wait_ready(addr, Duration::from_secs(60)).await;
    let body = login_code_body("admin@localhost");
    let issued = send(addr, "POST", "/api/v1/public/auth/login-codes", &[], &body)
        .await
        .unwrap();
    assert_eq!(issued.status, 202, "{}", issued.body);
    let code = login_code_in(&tmp.path().join("mail"), "admin@localhost").await;
    let logged = format!("Your Galaxy login code is {code}");
    eventually(Duration::from_secs(10), "the logged code", || {
        let found = server.stdout().contains(&logged);
        async move { found.then_some(()) }
    })
    .await;

    let stdout = server.stdout();
    let served = stdout
        .lines()
        .find(|l| l.contains("request served") && l.contains("login-codes"))
        .unwrap_or_else(|| panic!("no request log line in:\n{stdout}"));
    let line: serde_json::Value = serde_json::from_str(served).unwrap();
    for field in ["trace_id", "span_id", "timestamp", "level"] {
        assert!(line.get(field).is_some(), "{field} missing from {served}");
    }
    server.signal("INT");
    assert_eq!(server.wait(Duration::from_secs(30)).await.code(), Some(0));
}

/// A newcomer's first minutes: `galaxy-server dev` at a terminal (a pseudo-terminal made
/// by `script`), no setting given. The login mail is written within a moment of the
/// request (the default 5 s poll would take 2.5 s on average) and its code is printed
/// as a readable line, not JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_at_a_terminal_mails_at_once_and_prints_the_code_readably() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let mut command = Command::new("script");
    command.args(["-qefc", &format!("{BINARY} dev"), "/dev/null"]);
    let vars = [
        ("GALAXY_HTTP_ADDR", addr.to_string()),
        ("GALAXY_DATA_DIR", tmp.path().display().to_string()),
    ];
    let mut server = Server::spawn(command, &vars);
    wait_ready(addr, Duration::from_secs(60)).await;
    let mail_dir = tmp.path().join("mail");
    let mut slowest = Duration::ZERO;
    for email in ["admin@localhost", "first@example.org", "second@example.org"] {
        let asked = Instant::now();
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
        let code = login_code_in(&mail_dir, email).await;
        slowest = slowest.max(asked.elapsed());
        let logged = format!("Your Galaxy login code is {code}");
        eventually(Duration::from_secs(10), "the printed code", || {
            let found = server.stdout().contains(&logged);
            async move { found.then_some(()) }
        })
        .await;
        let stdout = server.stdout();
        let line = stdout.lines().find(|l| l.contains(&logged)).unwrap();
        assert!(
            !line.trim_start().starts_with('{'),
            "a JSON line at a terminal: {line}"
        );
    }
    assert!(
        slowest < Duration::from_millis(1500),
        "a login mail took {slowest:?}"
    );
    let status = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", server.child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    // `script -e` exits with the server's status.
    assert_eq!(server.wait(Duration::from_secs(30)).await.code(), Some(0));
}

#[test]
fn config_check_and_defaults_show_the_effective_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("galaxy.toml");
    std::fs::write(
        &file,
        "http_addr = \"0.0.0.0:9999\"\nmail_interval = \"3s\"\n\
         database_url = \"postgres://galaxy:hunter2@db/galaxy\"\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let output = run(
        &["config", "check"],
        &[
            ("GALAXY_CONFIG_FILE", &path),
            ("GALAXY_MAIL_INTERVAL", "250ms"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    for line in [
        "GALAXY_HTTP_ADDR = 0.0.0.0:9999  (file)",
        "GALAXY_MAIL_INTERVAL = 250ms  (environment)",
        "GALAXY_DATABASE_URL = <redacted>  (file)",
        "GALAXY_SESSION_TTL = 30d  (default)",
        "configuration valid",
    ] {
        assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
    }
    assert!(!stdout.contains("hunter2"));

    // `serve` needs a database; `--dev` does not.
    let output = run(&["config", "check"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("GALAXY_DATABASE_URL"));
    assert_eq!(
        run(&["config", "check", "--dev"], &[]).status.code(),
        Some(0)
    );

    // A typo in the file stops start-up as it stops the check.
    std::fs::write(&file, "mail_intervall = \"3s\"\n").unwrap();
    for args in [&["config", "check", "--dev"][..], &["dev"]] {
        let output = run(args, &[("GALAXY_CONFIG_FILE", &path)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("mail_intervall") && stderr.contains(&path),
            "{stderr}"
        );
    }
    let output = run(&["--config", "/nonexistent.toml", "dev"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent.toml"));

    let output = run(&["config", "defaults"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let defaults = String::from_utf8_lossy(&output.stdout);
    assert!(defaults.contains("# session_ttl = \"30d\""), "{defaults}");
}

#[test]
fn a_bad_setting_exits_2_naming_the_variable() {
    for (variable, value) in [
        ("GALAXY_HTTP_ADDR", "nowhere"),
        ("GALAXY_SESSION_TTL", "forever"),
        ("GALAXY_LOG", "info,[=broken"),
    ] {
        let output = run(&["dev"], &[(variable, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}: {stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
    let output = run(&[], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GALAXY_DATABASE_URL"), "{stderr}");
    let output = run(&["dev"], &[("GALAXY_LOGIN_CODE_KEY", "too short")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("GALAXY_LOGIN_CODE_KEY") && !stderr.contains("too short"),
        "{stderr}"
    );
    // A DOCKER_HOST the adapter cannot use is the configuration's fault too (exit 2: a
    // supervisor restarting the server every few seconds would change nothing).
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().display().to_string();
    let output = run(
        &["dev"],
        &[
            ("GALAXY_RUNTIME", "docker"),
            ("DOCKER_HOST", "ssh://galaxy@docker.example"),
            ("GALAXY_DATA_DIR", &data_dir),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DOCKER_HOST"), "{stderr}");
    assert!(!stderr.contains("start it"), "{stderr}");
}

/// A login-code key for the servers these tests start.
const TEST_CODE_KEY: &str = "lifecycle-binary-test-login-code-key-0123456789";

#[test]
fn an_unreachable_database_ends_start_up_with_a_clear_error() {
    let output = run(
        &["serve"],
        &[
            (
                "GALAXY_DATABASE_URL",
                "postgres://galaxy:hunter2@127.0.0.1:1/galaxy",
            ),
            ("GALAXY_LOGIN_CODE_KEY", TEST_CODE_KEY),
            ("GALAXY_DATABASE_CONNECT_ATTEMPTS", "2"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1/galaxy"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_corrupt_geoip_db_ends_start_up_naming_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let db = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../galaxy-adapters/geoip/tests/data/test-country-corrupt.mmdb"
    );
    let data_dir = tmp.path().display().to_string();
    let output = run(
        &["dev"],
        &[("GALAXY_GEOIP_DB", db), ("GALAXY_DATA_DIR", &data_dir)],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A configuration error, as for a setting refused at validation: exit 2, which
    // systemd's `RestartPreventExitStatus=2` does not restart every 5 s.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GALAXY_GEOIP_DB is unusable"), "{stderr}");
    assert!(stderr.contains("test-country-corrupt.mmdb"), "{stderr}");
    assert!(stderr.contains("not a valid MaxMind DB"), "{stderr}");
}

#[test]
fn help_lists_both_modes() {
    let output = run(&["--help"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("serve") && stdout.contains("dev"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stdout_exporter_prints_spans_with_the_logged_trace_id() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let mut vars = dev_vars(addr, tmp.path());
    vars.push(("GALAXY_OTEL_EXPORTER", "stdout".to_owned()));
    let mut server = Server::start(&["dev"], &vars);
    wait_ready(addr, Duration::from_secs(60)).await;
    assert_eq!(http_get(addr, "/healthz").await.unwrap().status, 200);
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(30)).await.code(), Some(0));

    let stdout = server.stdout();
    let logged = stdout
        .lines()
        .find(|l| l.contains("request served") && l.contains("/healthz"))
        .unwrap_or_else(|| panic!("no request log line in:\n{stdout}"));
    let line: serde_json::Value = serde_json::from_str(logged).unwrap();
    let trace_id = line["trace_id"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("TraceId      : {trace_id}")),
        "the span of {trace_id} was not exported:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_otlp_exporter_sends_to_the_configured_endpoint_and_shutdown_stays_bounded() {
    // A socket standing in for the collector: enough to see the exporter open an HTTP/2
    // (gRPC) connection to it when shutdown flushes the queued spans.
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let mut vars = dev_vars(addr, tmp.path());
    vars.push(("GALAXY_OTEL_EXPORTER", "otlp".to_owned()));
    vars.push(("GALAXY_OTEL_ENDPOINT", endpoint));
    vars.push(("GALAXY_SHUTDOWN_TIMEOUT", "3s".to_owned()));
    let mut server = Server::start(&["dev"], &vars);
    wait_ready(addr, Duration::from_secs(60)).await;
    assert_eq!(http_get(addr, "/healthz").await.unwrap().status, 200);
    let started = Instant::now();
    server.signal("TERM");

    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), collector.accept())
        .await
        .expect("the exporter connects to GALAXY_OTEL_ENDPOINT")
        .unwrap();
    let mut preface = [0u8; 24];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut preface)
        .await
        .unwrap();
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // The fake collector never answers: shutdown must still end within its bound.
    let status = server.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// The standard OpenTelemetry variables alone: `OTEL_TRACES_EXPORTER=otlp` over
/// `http/protobuf` to `OTEL_EXPORTER_OTLP_ENDPOINT`, under `OTEL_SERVICE_NAME`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_otel_variables_send_traces_over_http() {
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let mut vars = dev_vars(addr, tmp.path());
    vars.push(("OTEL_TRACES_EXPORTER", "otlp".to_owned()));
    vars.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()));
    vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint));
    vars.push(("OTEL_SERVICE_NAME", "galaxy-test-service".to_owned()));
    vars.push(("GALAXY_SHUTDOWN_TIMEOUT", "3s".to_owned()));
    let mut server = Server::start(&["dev"], &vars);
    wait_ready(addr, Duration::from_secs(60)).await;
    server.signal("TERM");
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), collector.accept())
        .await
        .expect("the exporter connects to OTEL_EXPORTER_OTLP_ENDPOINT")
        .unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if text.contains("galaxy-test-service") {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
    let text = String::from_utf8_lossy(&request).into_owned();
    assert!(text.starts_with("POST /v1/traces HTTP/1.1"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/x-protobuf"),
        "{text}"
    );
    assert!(
        text.contains("galaxy-test-service"),
        "the service name: {text}"
    );
    let _ = tokio::io::AsyncWriteExt::write_all(
        &mut stream,
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    let status = server.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", server.stderr());

    // http/json is refused, naming the variable.
    let output = run(&["dev"], &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{stderr}");

    // An https endpoint is refused at start-up (no TLS stack in this build; it used to be
    // taken, and every export failed later, in silence), named as given.
    for (variable, value) in [
        ("GALAXY_OTEL_ENDPOINT", "https://otel.example:4317"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "HTTPS://otel.example"),
    ] {
        let output = run(
            &["dev"],
            &[("GALAXY_OTEL_EXPORTER", "otlp"), (variable, value)],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}: {stderr}");
        assert!(
            stderr.contains("without TLS") && stderr.contains(value),
            "{variable}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_the_database_stops_start_up() {
    let vars = [
        (
            "GALAXY_DATABASE_URL",
            "postgres://galaxy@127.0.0.1:1/galaxy".to_owned(),
        ),
        ("GALAXY_LOGIN_CODE_KEY", TEST_CODE_KEY.to_owned()),
        ("GALAXY_DATABASE_CONNECT_ATTEMPTS", "100".to_owned()),
    ];
    let mut server = Server::start(&["serve"], &vars);
    eventually(Duration::from_secs(30), "a connection attempt", || {
        let tried = server.stdout().contains("Postgres is not reachable yet");
        async move { tried.then_some(()) }
    })
    .await;
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(server.stderr().contains("stopped during start-up"));
}

/// A second signal during the shutdown exits at once (an operator who will not wait out
/// a long drain), and `dev` run with a database URL says it ignores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_cuts_the_shutdown_short_and_dev_says_it_ignores_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let mut vars = dev_vars(addr, tmp.path());
    // A drain that would hold the shutdown for a minute.
    vars.push(("GALAXY_HTTP_DRAIN_DELAY", "60s".to_owned()));
    vars.push(("GALAXY_SHUTDOWN_TIMEOUT", "120s".to_owned()));
    vars.push((
        "GALAXY_DATABASE_URL",
        "postgres://galaxy@127.0.0.1:1/galaxy".to_owned(),
    ));
    let mut server = Server::start(&["dev"], &vars);
    wait_ready(addr, Duration::from_secs(60)).await;
    assert!(
        server
            .stderr()
            .contains("dev mode ignores GALAXY_DATABASE_URL"),
        "{}",
        server.stderr()
    );
    server.signal("TERM");
    let started = Instant::now();
    while !server.stdout().contains("SIGTERM received") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.stdout()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Draining: the first signal alone would keep it up for the minute.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.child.try_wait().unwrap().is_none());
    server.signal("INT");
    let status = server.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(130), "{}", server.stderr());
    assert!(
        server.stderr().contains("second signal"),
        "{}",
        server.stderr()
    );
}

/// The inbound SMTP listener's certificate is read before anything serves: one that
/// cannot be read stops the start (exit 2, naming the setting) before the HTTP API has
/// served, so `/readyz` never said ready for a server about to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_inbound_smtp_certificate_stops_the_start_before_anything_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let mut vars = dev_vars(addr, tmp.path());
    vars.push(("GALAXY_MAIL_DOMAIN", "galaxy.test".to_owned()));
    vars.push((
        "GALAXY_INBOUND_SMTP_ADDR",
        loopback(free_port()).to_string(),
    ));
    let missing = tmp.path().join("missing.pem").display().to_string();
    vars.push(("GALAXY_INBOUND_SMTP_TLS_CERT", missing.clone()));
    vars.push(("GALAXY_INBOUND_SMTP_TLS_KEY", missing));
    vars.push(("GALAXY_LOG_FORMAT", "json".to_owned()));
    let mut server = Server::start(&["dev"], &vars);
    let status = server.wait(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(2), "{}", server.stderr());
    assert!(
        server.stderr().contains("GALAXY_INBOUND_SMTP_TLS_CERT"),
        "{}",
        server.stderr()
    );
    assert!(
        !server.stdout().contains("HTTP API listening"),
        "{}",
        server.stdout()
    );
}
