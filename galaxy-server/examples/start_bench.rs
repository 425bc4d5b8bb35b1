//! Start-latency benchmark of the Docker runtime (issue 5, point 9, first half). A command
//! of its own, never part of the test run; it needs Docker and the image
//! `galaxy-engine:0.2`:
//!
//! ```text
//! cargo run --release -p galaxy-server --example start_bench -- [--games 20] [--json target/start_bench.json]
//! ```
//!
//! Two measurements of N engines each (default 20), in the same run:
//!
//! - the baseline: N concurrent `docker run -d -p 127.0.0.1::8080 --label galaxy.bench=<run>
//!   galaxy-engine:0.2` through the docker CLI, then `docker port`, then `GET /healthz`
//!   polled every 10 ms; the latency runs from spawning `docker run` to the first 200;
//! - the platform: a dev-mode server in-process (`GALAXY_RUNTIME=docker`, a unique
//!   `GALAXY_INSTANCE`, `GALAXY_RUNTIME_INTERVAL=50ms`), N games of two players each set up
//!   through the API (create, open, apply, approve, close); then every game is started
//!   (`POST .../start`) one after another and all are polled every 10 ms; a game's latency
//!   runs from sending its start request to the first `GET` that shows it `running`.
//!
//! It prints p50, p95 and max of both and their ratio and writes the same as JSON. At the
//! end it stops every game through the admin stop route, shuts the server down, and
//! removes (`docker rm -f -v`, `docker volume rm`) every container and volume carrying the
//! run's `galaxy.instance` or `galaxy.bench` label.
//!
//! While it runs it holds the loopback port the Docker end-to-end tests use as a lock, so
//! that their reconcilers and this one never share the daemon.

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use galaxy_server::{Config, Listeners, dev};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Any error, for `?` in this command.
type BoxError = Box<dyn Error + Send + Sync>;

/// The reference engine's image.
const IMAGE: &str = "galaxy-engine:0.2";

/// The label of the baseline's containers (`galaxy.bench=<run>`).
const BENCH_LABEL: &str = "galaxy.bench";

/// The loopback port the Docker end-to-end tests hold as a cross-process lock.
const DOCKER_LOCK_PORT: u16 = 29517;

/// How often a pending engine or game is polled.
const POLL: Duration = Duration::from_millis(10);

/// How long one engine or game may take to come up before the run fails.
const LIMIT: Duration = Duration::from_secs(120);

/// What the command line asks for.
struct Options {
    /// Engines started by each measurement.
    games: usize,
    /// Where the JSON goes.
    json: PathBuf,
}

impl Options {
    /// Reads `--games N` and `--json PATH`.
    fn parse() -> Result<Self, BoxError> {
        let mut options = Self {
            games: 20,
            json: PathBuf::from("target/start_bench.json"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let value = args.next().ok_or(format!("{arg} needs a value"))?;
            match arg.as_str() {
                "--games" => options.games = value.parse()?,
                "--json" => options.json = PathBuf::from(value),
                _ => return Err(format!("unknown argument {arg}").into()),
            }
        }
        if options.games == 0 {
            return Err("--games must be at least 1".into());
        }
        Ok(options)
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let options = Options::parse()?;
    let _lock = docker_lock().await?;
    let run = format!("bench-{}", std::process::id());
    docker(&["image", "inspect", IMAGE, "--format", "{{.Id}}"]).await?;

    let baseline = measure_baseline(&run, options.games).await;
    let baseline_cleanup = remove_labelled(&format!("{BENCH_LABEL}={run}")).await;
    let baseline = baseline?;
    baseline_cleanup?;

    let platform = measure_platform(&run, options.games).await;
    let platform_cleanup = remove_labelled(&format!("galaxy.instance={run}")).await;
    let platform = platform?;
    platform_cleanup?;

    let rows = [
        ("docker run + /healthz", &baseline),
        ("platform start -> running", &platform),
    ];
    println!(
        "{:<28} {:>6} {:>9} {:>9} {:>9}",
        "scenario", "n", "p50 ms", "p95 ms", "max ms"
    );
    for (name, samples) in rows {
        let s = Summary::of(samples);
        println!(
            "{name:<28} {:>6} {:>9.0} {:>9.0} {:>9.0}",
            samples.len(),
            s.p50,
            s.p95,
            s.max
        );
    }
    let (b, p) = (Summary::of(&baseline), Summary::of(&platform));
    println!(
        "ratio platform/baseline: p50 {:.2}x, p95 {:.2}x, max {:.2}x",
        p.p50 / b.p50,
        p.p95 / b.p95,
        p.max / b.max
    );
    let report = json!({
        "games": options.games,
        "image": IMAGE,
        "runtime_interval": "50ms",
        "poll_ms": POLL.as_millis() as u64,
        "baseline_ms": { "summary": b.json(), "samples": baseline },
        "platform_ms": { "summary": p.json(), "samples": platform },
        "ratio": { "p50": p.p50 / b.p50, "p95": p.p95 / b.p95, "max": p.max / b.max },
    });
    if let Some(dir) = options.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&options.json, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", options.json.display());
    Ok(())
}

/// p50, p95 and max of a set of latencies in milliseconds.
struct Summary {
    p50: f64,
    p95: f64,
    max: f64,
}

impl Summary {
    /// Nearest-rank percentiles of `samples` (which is never empty).
    fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted.get(index).copied().unwrap_or(f64::NAN)
        };
        Self {
            p50: rank(0.50),
            p95: rank(0.95),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// The summary as JSON.
    fn json(&self) -> Value {
        json!({ "p50": self.p50, "p95": self.p95, "max": self.max })
    }
}

/// Holds the Docker tests' lock port (waiting up to 10 minutes for it).
async fn docker_lock() -> Result<std::net::TcpListener, BoxError> {
    let started = Instant::now();
    loop {
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", DOCKER_LOCK_PORT)) {
            return Ok(listener);
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("127.0.0.1:{DOCKER_LOCK_PORT} was not free in 10 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `docker` with `args` (on a blocking thread): its trimmed stdout, or an error with
/// its stderr.
async fn docker(args: &[&str]) -> Result<String, BoxError> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("docker").args(&args).output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "docker {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into())
        }
    })
    .await?
}

/// Removes every container labelled `label` (with its anonymous volumes) and every
/// volume labelled `label` (the Docker runtime gives a game's data volume its
/// container's labels).
async fn remove_labelled(label: &str) -> Result<(), BoxError> {
    let filter = format!("label={label}");
    let containers = docker(&["ps", "-a", "-q", "--filter", &filter]).await?;
    let containers: Vec<&str> = containers.lines().filter(|n| !n.is_empty()).collect();
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().copied());
        docker(&args).await?;
    }
    let volumes = docker(&["volume", "ls", "-q", "--filter", &filter]).await?;
    let volumes: Vec<&str> = volumes.lines().filter(|v| !v.is_empty()).collect();
    if !volumes.is_empty() {
        let mut args = vec!["volume", "rm", "-f"];
        args.extend(volumes.iter().copied());
        docker(&args).await?;
    }
    println!(
        "removed {} containers and {} volumes labelled {label}",
        containers.len(),
        volumes.len()
    );
    Ok(())
}

/// Starts `n` engines straight through the docker CLI, all at once; returns each one's
/// milliseconds from `docker run` to its first `/healthz` 200.
async fn measure_baseline(run: &str, n: usize) -> Result<Vec<f64>, BoxError> {
    let label = format!("{BENCH_LABEL}={run}");
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let label = label.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let id = docker(&[
                    "run",
                    "-d",
                    "-p",
                    "127.0.0.1::8080",
                    "--label",
                    &label,
                    IMAGE,
                ])
                .await?;
                let port = docker(&["port", &id, "8080/tcp"]).await?;
                let addr: SocketAddr = port
                    .lines()
                    .next()
                    .ok_or("docker port printed nothing")?
                    .parse()?;
                loop {
                    if matches!(get(addr, "/healthz", None).await, Ok((200, _))) {
                        return Ok::<f64, BoxError>(millis(started.elapsed()));
                    }
                    if started.elapsed() > LIMIT {
                        return Err(format!("{id}: no /healthz 200 in {LIMIT:?}").into());
                    }
                    tokio::time::sleep(POLL).await;
                }
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(n);
    for task in tasks {
        samples.push(task.await??);
    }
    Ok(samples)
}

/// Serves a dev-mode app on the Docker runtime, sets up `n` games, starts them all and
/// returns each one's milliseconds from `POST start` to `running`; stops the games and
/// the app before returning.
async fn measure_platform(run: &str, n: usize) -> Result<Vec<f64>, BoxError> {
    let data = std::env::temp_dir().join(format!("galaxy-{run}"));
    let vars: HashMap<String, String> = [
        ("GALAXY_DATA_DIR", data.display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "50ms".to_owned()),
        ("GALAXY_RUNTIME_INTERVAL", "50ms".to_owned()),
        ("GALAXY_INSTANCE", run.to_owned()),
        ("GALAXY_HEALTH_INTERVAL", "1s".to_owned()),
        ("GALAXY_RUNTIME", "docker".to_owned()),
        ("GALAXY_ENGINES", format!("reference={IMAGE}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_vars(&vars)?;
    let mail = dev::mail_dir(&config);
    let app = dev::build(config).await?;
    let listeners = Listeners::new(TcpListener::bind("127.0.0.1:0").await?);
    let addr = listeners.http_addr().ok_or("no HTTP address")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listeners, async {
        let _ = stopped.await;
    }));
    let result = run_games(addr, &mail, n).await;
    let stopped_games = match &result {
        Ok((_, admin, games)) => stop_games(addr, admin, games).await,
        Err(_) => Ok(()),
    };
    let _ = stop.send(());
    let shut_down = served.await;
    let _ = std::fs::remove_dir_all(&data);
    let (samples, _, _) = result?;
    stopped_games?;
    shut_down??;
    Ok(samples)
}

/// Logs in, sets up and starts `n` games; returns the latencies, the admin's
/// `Authorization` and the game ids.
async fn run_games(
    addr: SocketAddr,
    mail: &Path,
    n: usize,
) -> Result<(Vec<f64>, String, Vec<String>), BoxError> {
    wait_ready(addr).await?;
    let admin = log_in(addr, mail, dev::DEV_ADMIN).await?;
    // A user may be in at most 5 active games: two players a game over enough users.
    let mut users = Vec::new();
    for u in 0..n.div_ceil(5).max(1) * 2 {
        users.push(log_in(addr, mail, &format!("player{u}@example.org")).await?);
    }
    let mut games = Vec::with_capacity(n);
    for i in 0..n {
        let host = users.get((2 * i) % users.len()).ok_or("no host")?.clone();
        let guest = users.get((2 * i + 1) % users.len()).ok_or("no guest")?;
        let game = set_up_game(addr, &host, guest, i).await?;
        games.push((game, host));
    }

    let mut started = Vec::with_capacity(n);
    for (game, host) in &games {
        let at = Instant::now();
        let path = format!("/api/v1/user/games/{game}/start");
        let body = expect(
            "start",
            200,
            call(addr, "POST", &path, Some(host), None).await?,
        )?;
        if body["status"] != "starting" && body["status"] != "running" {
            return Err(format!("start {game}: {body}").into());
        }
        started.push(at);
    }
    let mut done: Vec<Option<f64>> = vec![None; n];
    let begun = Instant::now();
    while done.iter().any(Option::is_none) {
        for (i, (game, host)) in games.iter().enumerate() {
            if done.get(i).copied().flatten().is_some() {
                continue;
            }
            let path = format!("/api/v1/user/games/{game}");
            let view = expect(
                "game",
                200,
                call(addr, "GET", &path, Some(host), None).await?,
            )?;
            match view["status"].as_str() {
                Some("running") => {
                    if let (Some(slot), Some(at)) = (done.get_mut(i), started.get(i)) {
                        *slot = Some(millis(at.elapsed()));
                    }
                }
                Some("start_failed") => return Err(format!("{game} failed: {view}").into()),
                _ => {}
            }
        }
        if begun.elapsed() > LIMIT {
            return Err(format!("not every game was running in {LIMIT:?}").into());
        }
        tokio::time::sleep(POLL).await;
    }
    let games = games.into_iter().map(|(game, _)| game).collect();
    Ok((done.into_iter().flatten().collect(), admin, games))
}

/// Creates game `i` hosted by `host`, enrols `host` and `guest`, closes enrolment;
/// returns its id.
async fn set_up_game(
    addr: SocketAddr,
    host: &str,
    guest: &str,
    i: usize,
) -> Result<String, BoxError> {
    let created = expect(
        "create",
        201,
        call(
            addr,
            "POST",
            "/api/v1/user/games",
            Some(host),
            Some(json!({
                "name": format!("Bench game {i}"),
                "min_players": 2,
                "max_players": 3,
                "enrollment_deadline": "2099-01-01T00:00:00Z",
                "turn_schedule": "0 0 1 1 *",
            })),
        )
        .await?,
    )?;
    let game = created["id"].as_str().ok_or("no game id")?.to_owned();
    let games = format!("/api/v1/user/games/{game}");
    expect(
        "open",
        200,
        call(addr, "POST", &format!("{games}/open"), Some(host), None).await?,
    )?;
    // Race names are unique across games: a letters-only suffix per game.
    let suffix = letters(i);
    let races = [
        format!("Aldebarans{suffix}"),
        format!("Betelgeusians{suffix}"),
    ];
    for (player, race) in [host, guest].into_iter().zip(races) {
        let application = expect(
            "apply",
            201,
            call(
                addr,
                "POST",
                &format!("{games}/applications"),
                Some(player),
                Some(json!({ "race_name": race })),
            )
            .await?,
        )?;
        let id = application["id"].as_str().ok_or("no application id")?;
        let approve = format!("{games}/applications/{id}/approve");
        expect(
            "approve",
            200,
            call(addr, "POST", &approve, Some(host), None).await?,
        )?;
    }
    expect(
        "close",
        200,
        call(addr, "POST", &format!("{games}/close"), Some(host), None).await?,
    )?;
    Ok(game)
}

/// `i` in base 26 as capital letters (0 is `A`, 26 is `BA`).
fn letters(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(char::from(b'A' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            break;
        }
    }
    out.iter().rev().collect()
}

/// Stops every game through the admin stop route.
async fn stop_games(addr: SocketAddr, admin: &str, games: &[String]) -> Result<(), BoxError> {
    for game in games {
        let path = format!("/api/v1/admin/games/{game}/stop");
        expect(
            "stop",
            200,
            call(addr, "POST", &path, Some(admin), None).await?,
        )?;
    }
    Ok(())
}

/// Waits until `GET /readyz` answers 200.
async fn wait_ready(addr: SocketAddr) -> Result<(), BoxError> {
    let started = Instant::now();
    while !matches!(get(addr, "/readyz", None).await, Ok((200, _))) {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("the server was not ready in 10 s".into());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Logs `email` in through the API, reading the code from the `.eml` files in `mail`;
/// returns the `Authorization` value.
async fn log_in(addr: SocketAddr, mail: &Path, email: &str) -> Result<String, BoxError> {
    let issued = expect(
        "login code",
        202,
        call(
            addr,
            "POST",
            "/api/v1/public/auth/login-codes",
            None,
            Some(json!({ "email": email })),
        )
        .await?,
    )?;
    let challenge = issued["challenge_id"].clone();
    let started = Instant::now();
    let code = loop {
        if let Some(code) = login_code_in(mail, email) {
            break code;
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err(format!("no login code for {email} in 15 s").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let session = expect(
        "session",
        201,
        call(
            addr,
            "POST",
            "/api/v1/public/auth/sessions",
            None,
            Some(json!({ "challenge_id": challenge, "code": code })),
        )
        .await?,
    )?;
    let token = session["token"].as_str().ok_or("no session token")?;
    Ok(format!("Bearer {token}"))
}

/// The login code in the dev mailer's `.eml` file to `email`, if one is there yet.
fn login_code_in(dir: &Path, email: &str) -> Option<String> {
    let prefix = "Your Galaxy login code is ";
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .find_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            if !text.contains(&format!("To: {email}")) {
                return None;
            }
            let line = text.lines().find(|l| l.starts_with(prefix))?;
            Some(line.trim_start_matches(prefix).trim().to_owned())
        })
}

/// The body of a response whose status is `wanted`, else an error naming `what`.
fn expect(what: &str, wanted: u16, (status, body): (u16, Value)) -> Result<Value, BoxError> {
    if status == wanted {
        Ok(body)
    } else {
        Err(format!("{what}: {status} {body}").into())
    }
}

/// `GET path`, optionally authorised.
async fn get(addr: SocketAddr, path: &str, auth: Option<&str>) -> Result<(u16, Value), BoxError> {
    call(addr, "GET", path, auth, None).await
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`): the status and the
/// JSON body (`Null` when it is not JSON).
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), BoxError> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(auth) = auth {
        request.push_str(&format!("authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete response: {text:?}"))?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let payload = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((
        status,
        serde_json::from_str(&payload).unwrap_or(Value::Null),
    ))
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        let (chunk, rest) = rest.split_at(size);
        out.push_str(chunk);
        body = rest.trim_start_matches("\r\n");
    }
    out
}

/// A duration in milliseconds.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
