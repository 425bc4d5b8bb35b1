//! HTTP benchmark of galaxy-server (issue 4, point 9; SPEC section 11b). A command of its
//! own, never part of the test run:
//!
//! ```text
//! cargo run --release -p galaxy-server --example http_bench -- \
//!     [--connections 1,16] [--duration 2s] [--rounds 5] [--json target/http_bench.json]
//! ```
//!
//! Starts the server in-process on the dev-mode adapters (in-memory stores, file mailer)
//! on 127.0.0.1:0 with no log subscriber, logs one user in, seeds 50 open public games,
//! and starts a bare hyper server returning a small JSON body on another port of the same
//! process: the baseline. Then, with N keep-alive connections (each its own hyper
//! HTTP/1.1 connection, one request in flight at a time) for a fixed time, it measures
//!
//! - `GET /api/v1/user/me` with the bearer token (authenticated; served from the caches),
//! - `GET /api/v1/public/games` (a page of 50 games from the game cache),
//! - `GET /` on the bare hyper server,
//!
//! interleaved over several rounds (the order rotating each round) so that load from
//! elsewhere on the machine hits every scenario alike. It prints requests per second, p50
//! and p99 latency and each scenario's ratio to the baseline, and writes the same as JSON.

mod load;
mod setup;

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use hyper::header::HeaderValue;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use load::{Sample, Scenario, load, percentile_us, serve_bare};
use setup::{log_in, seed_games, start_galaxy};

/// Any error, for `?` in this command.
type BoxError = Box<dyn Error + Send + Sync>;

/// What the command line asks for.
#[derive(Debug, Clone)]
struct Options {
    /// Client connection counts to measure each scenario with.
    connections: Vec<usize>,
    /// How long one measurement runs.
    duration: Duration,
    /// How many times every measurement is taken (interleaved).
    rounds: usize,
    /// Where the JSON goes.
    json: PathBuf,
}

impl Options {
    fn parse() -> Result<Self, BoxError> {
        let mut options = Self {
            connections: vec![1, 16],
            duration: Duration::from_secs(2),
            rounds: 5,
            json: PathBuf::from("target/http_bench.json"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--connections" => {
                    options.connections = value
                        .split(',')
                        .map(|n| n.trim().parse::<usize>().map(|n| n.max(1)))
                        .collect::<Result<_, _>>()?;
                }
                "--duration" => options.duration = humantime::parse_duration(&value)?,
                "--rounds" => options.rounds = value.parse::<usize>()?.max(1),
                "--json" => options.json = PathBuf::from(value),
                _ => return Err(format!("unknown option {flag}").into()),
            }
        }
        Ok(options)
    }
}

fn main() -> Result<(), BoxError> {
    let options = Options::parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<(), BoxError> {
    let load_before = load_average();
    let tmp = tempfile::tempdir()?;
    let (galaxy_addr, stores, app_stop, app_task) = start_galaxy(tmp.path()).await?;
    let bare_stop = CancellationToken::new();
    let bare_listener = TcpListener::bind("127.0.0.1:0").await?;
    let bare_addr = bare_listener.local_addr()?;
    let bare_task = tokio::spawn(serve_bare(bare_listener, bare_stop.clone()));

    let bearer = log_in(galaxy_addr, &stores).await?;
    seed_games(galaxy_addr, &bearer).await?;
    let scenarios = [
        Scenario {
            name: "GET /api/v1/user/me (bearer, cached)",
            addr: galaxy_addr,
            path: "/api/v1/user/me",
            bearer: Some(HeaderValue::from_str(&bearer)?),
        },
        Scenario {
            name: "GET /api/v1/public/games (50 games)",
            addr: galaxy_addr,
            path: "/api/v1/public/games",
            bearer: None,
        },
        Scenario {
            name: "bare hyper handler (baseline)",
            addr: bare_addr,
            path: "/",
            bearer: None,
        },
    ];
    let baseline = scenarios.len() - 1;

    eprintln!(
        "http_bench: {} round(s) x {} scenario(s) x connections {:?}, {:?} each",
        options.rounds,
        scenarios.len(),
        options.connections,
        options.duration
    );
    for scenario in &scenarios {
        load(scenario, 4, Duration::from_millis(500)).await?;
    }
    let mut results = vec![vec![Sample::default(); scenarios.len()]; options.connections.len()];
    for round in 0..options.rounds {
        for (c, &connections) in options.connections.iter().enumerate() {
            for k in 0..scenarios.len() {
                let s = (k + round) % scenarios.len();
                let sample = load(&scenarios[s], connections, options.duration).await?;
                results[c][s].absorb(sample);
            }
        }
        eprintln!("http_bench: round {} of {} done", round + 1, options.rounds);
    }
    let load_after = load_average();

    app_stop.cancel();
    bare_stop.cancel();
    let report = app_task.await??;
    bare_task.await?;
    if !report.is_clean() {
        eprintln!("http_bench: the server did not stop cleanly: {report:?}");
    }

    let (table, rows) = report_rows(&options, &scenarios, &mut results, baseline);
    println!("{table}");
    let document = json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "nproc": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "duration_secs": options.duration.as_secs_f64(),
        "rounds": options.rounds,
        "results": rows,
    });
    if let Some(dir) = options.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&options.json, serde_json::to_string_pretty(&document)?)?;
    eprintln!(
        "http_bench: load average {load_before} before, {load_after} after; JSON in {}",
        options.json.display()
    );
    Ok(())
}

/// The Markdown table and the JSON rows.
fn report_rows(
    options: &Options,
    scenarios: &[Scenario],
    results: &mut [Vec<Sample>],
    baseline: usize,
) -> (String, Vec<Value>) {
    let mut table = String::from(
        "| scenario | conns | body B | requests | req/s | p50 ms | p99 ms | req/s vs bare | p99 vs bare | req/s per round (min-max) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut rows = Vec::new();
    for (c, &connections) in options.connections.iter().enumerate() {
        for sample in results[c].iter_mut() {
            sample.latencies.sort_unstable();
        }
        let bare = &results[c][baseline];
        let (bare_rate, bare_p99) = (bare.rate(), percentile_us(&bare.latencies, 0.99));
        for (s, scenario) in scenarios.iter().enumerate() {
            let sample = &results[c][s];
            let p50 = percentile_us(&sample.latencies, 0.50);
            let p99 = percentile_us(&sample.latencies, 0.99);
            let min = sample
                .round_rates
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let max = sample.round_rates.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                table,
                "| {} | {connections} | {} | {} | {:.0} | {:.3} | {:.3} | {:.2}x | {:.2}x | {min:.0}-{max:.0} |",
                scenario.name,
                sample.body_bytes,
                sample.requests,
                sample.rate(),
                p50 / 1000.0,
                p99 / 1000.0,
                sample.rate() / bare_rate,
                p99 / bare_p99,
            );
            rows.push(json!({
                "scenario": scenario.name,
                "path": scenario.path,
                "connections": connections,
                "body_bytes": sample.body_bytes,
                "requests": sample.requests,
                "errors": sample.errors,
                "seconds": sample.elapsed.as_secs_f64(),
                "requests_per_sec": sample.rate(),
                "p50_us": p50,
                "p99_us": p99,
                "rps_vs_baseline": sample.rate() / bare_rate,
                "p99_vs_baseline": p99 / bare_p99,
                "requests_per_sec_per_round": sample.round_rates,
            }));
            if sample.errors > 0 {
                let _ = writeln!(table, "|   ({} errors) |||||||||", sample.errors);
            }
        }
    }
    (table, rows)
}

/// The 1-minute load average, or `?` where `/proc/loadavg` is not there.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
