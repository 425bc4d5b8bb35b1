//! Push fan-out over real gRPC sockets, beside a bare `tokio::sync::broadcast` channel in
//! the same run (the ratio is the figure to compare between machines).
//!
//! ```text
//! cargo run --release -p galaxy-push-grpc --example push_bench [-- --events 100000
//!     --fanout-events 10000 --paced 500 --rate 500 --rounds 5 --json target/push_bench.json]
//! ```
//!
//! One in-process [`PushService`] behind [`PushGrpcServer`] on `127.0.0.1:0`; every
//! subscriber is a raw tonic streaming client on its own TCP connection with its own
//! gateway client id. Each scenario run has two phases:
//!
//! - **burst**: one publisher thread publishes `--events` events (`--fanout-events` with
//!   100 subscribers) as fast as the service accepts them; throughput is the number of
//!   events divided by the time from the first publish until the last subscriber has
//!   received the last one (events/s delivered to all subscribers; deliveries/s is that
//!   times the subscriber count). Its latencies include the queueing of the burst.
//! - **paced**: once every subscriber has drained the burst, `--paced` events at `--rate`
//!   events/s: publish->receive latency of a system that is not saturated.
//!
//! Latency is the wall clock at receipt minus the event's `occurred_at_unix_micros`, which
//! the service stamps when it publishes (the baseline stamps its messages the same way).
//! The baseline publishes `Arc`s of a timestamp into a `tokio::sync::broadcast` channel
//! that one task per subscriber reads: no serialisation, no sockets, no service.
//! Scenarios are interleaved over `--rounds` rounds, in a rotating order, so load from
//! elsewhere on the machine hits all of them alike; the figures pool all rounds.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::TimeDelta;
use futures::{Stream, StreamExt};
use galaxy_core::service::push::{PushConfig, PushService};
use galaxy_ports::memory::MemoryPushLog;
use galaxy_ports::system::{OsSecretGenerator, SystemClock};
use galaxy_push_grpc::{INTERNAL_TOKEN_HEADER, PushGrpcServer, pb};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

/// Errors of the benchmark, sendable between tasks.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A stream of publish timestamps (unix microseconds), one per received event.
type Stamps = Pin<Box<dyn Stream<Item = Result<i64, BoxError>> + Send>>;

/// Publishes one event; called from the publisher thread.
type Publish = Arc<dyn Fn() -> Result<(), BoxError> + Send + Sync>;

/// The internal token of the in-process server.
const TOKEN: &str = "push-bench-token";

/// How long to wait for subscribers to register, unregister or deliver.
const WAIT: Duration = Duration::from_secs(60);

/// Command-line options.
struct Args {
    /// Burst events with one subscriber.
    events: usize,
    /// Burst events with 100 subscribers.
    fanout_events: usize,
    /// Paced events per run.
    paced: usize,
    /// Paced publishing rate, events/s.
    rate: u64,
    /// Interleaved rounds.
    rounds: usize,
    /// Where the JSON goes.
    json: PathBuf,
}

impl Args {
    /// Parses `--name value` pairs; unknown names are an error.
    fn parse() -> Result<Self, BoxError> {
        let mut args = Self {
            events: 100_000,
            fanout_events: 10_000,
            paced: 500,
            rate: 500,
            rounds: 5,
            json: PathBuf::from("target/push_bench.json"),
        };
        let mut it = std::env::args().skip(1);
        while let Some(name) = it.next() {
            let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            match name.as_str() {
                "--events" => args.events = value.parse()?,
                "--fanout-events" => args.fanout_events = value.parse()?,
                "--paced" => args.paced = value.parse()?,
                "--rate" => args.rate = value.parse()?,
                "--rounds" => args.rounds = value.parse()?,
                "--json" => args.json = PathBuf::from(value),
                other => return Err(format!("unknown option {other}").into()),
            }
        }
        if args.events == 0 || args.fanout_events == 0 || args.rate == 0 || args.rounds == 0 {
            return Err("--events, --fanout-events, --rate and --rounds must be positive".into());
        }
        Ok(args)
    }
}

/// What carries the events.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `PushService` behind `PushGrpcServer`, read by tonic clients over TCP.
    Grpc,
    /// A bare in-process `tokio::sync::broadcast` channel.
    Broadcast,
}

impl Transport {
    /// The name in the table.
    fn label(self) -> &'static str {
        match self {
            Self::Grpc => "PushService + gRPC",
            Self::Broadcast => "tokio broadcast (baseline)",
        }
    }
}

/// One scenario: a transport and a subscriber count.
#[derive(Clone, Copy)]
struct Scenario {
    /// What carries the events.
    transport: Transport,
    /// How many subscribers receive every event.
    subscribers: usize,
}

/// The figures of one scenario, pooled over rounds.
#[derive(Default)]
struct Totals {
    /// Burst events published, all rounds.
    events: usize,
    /// Burst seconds, all rounds.
    secs: f64,
    /// Events/s of each round.
    round_rates: Vec<f64>,
    /// Burst latencies, microseconds.
    burst: Vec<u64>,
    /// Paced latencies, microseconds.
    paced: Vec<u64>,
}

/// What one subscriber saw.
struct Received {
    /// Latency of each burst event, microseconds.
    burst: Vec<u64>,
    /// Latency of each paced event, microseconds.
    paced: Vec<u64>,
}

/// Wall-clock microseconds since the Unix epoch.
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Reads `burst + paced` events, recording each one's latency; reports the instant it
/// received the last burst event on `done`.
async fn subscriber(
    mut stamps: Stamps,
    burst: usize,
    paced: usize,
    done: mpsc::UnboundedSender<Instant>,
) -> Result<Received, BoxError> {
    let mut received = Received {
        burst: Vec::with_capacity(burst),
        paced: Vec::with_capacity(paced),
    };
    for i in 0..burst + paced {
        let stamp = stamps
            .next()
            .await
            .ok_or("subscriber stream ended early")??;
        let latency = u64::try_from(now_micros().saturating_sub(stamp)).unwrap_or(0);
        if i < burst {
            received.burst.push(latency);
        } else {
            received.paced.push(latency);
        }
        if i + 1 == burst {
            done.send(Instant::now())?;
        }
    }
    Ok(received)
}

/// Publishes `count` events from a blocking thread, as fast as `publish` returns, or at
/// `rate` events/s when given; returns when the last one is published.
async fn publish_from_thread(
    publish: Publish,
    count: usize,
    rate: Option<u64>,
) -> Result<Instant, BoxError> {
    tokio::task::spawn_blocking(move || -> Result<Instant, BoxError> {
        let start = Instant::now();
        let interval = rate.map(|r| Duration::from_nanos(1_000_000_000 / r));
        for i in 0..count {
            if let Some(interval) = interval {
                let due = start + interval * u32::try_from(i)?;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            publish()?;
        }
        Ok(start)
    })
    .await?
}

/// The in-process gRPC server and its service.
struct Server {
    /// The service the server streams from.
    service: Arc<PushService>,
    /// `http://127.0.0.1:port`.
    url: String,
    /// Stops the server.
    stop: CancellationToken,
    /// The server task.
    task: tokio::task::JoinHandle<Result<(), galaxy_push_grpc::ServeError>>,
}

impl Server {
    /// Starts a service whose subscriber buffers hold `buffer` events behind a listener
    /// on 127.0.0.1:0.
    async fn start(buffer: usize) -> Result<Self, BoxError> {
        let service = Arc::new(PushService::new(
            Arc::new(SystemClock),
            Arc::new(OsSecretGenerator),
            PushConfig {
                ring_capacity: NonZeroUsize::new(4096).ok_or("zero ring")?,
                freshness_window: TimeDelta::minutes(10),
                subscriber_buffer: NonZeroUsize::new(buffer).ok_or("zero buffer")?,
            },
            Arc::new(MemoryPushLog::new()),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let server = PushGrpcServer::new(service.clone(), SecretString::from(TOKEN));
        let task = tokio::spawn(server.serve(listener, async move { signal.cancelled().await }));
        Ok(Self {
            service,
            url,
            stop,
            task,
        })
    }

    /// Opens a subscription for gateway `gateway` on a connection of its own.
    async fn subscribe(&self, gateway: String) -> Result<Stamps, BoxError> {
        let channel = Endpoint::from_shared(self.url.clone())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let mut client = pb::push_client::PushClient::new(channel);
        let mut request = tonic::Request::new(pb::GatewaySubscribeRequest {
            gateway_client_id: gateway,
            cursor: String::new(),
        });
        request
            .metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, TOKEN.parse()?);
        let stream = client.subscribe_push(request).await?.into_inner();
        Ok(Box::pin(stream.map(|event| {
            event
                .map(|e| e.occurred_at_unix_micros)
                .map_err(BoxError::from)
        })))
    }

    /// Waits until the service has exactly `count` subscribers.
    async fn await_subscribers(&self, count: usize) -> Result<(), BoxError> {
        let deadline = Instant::now() + WAIT;
        while self.service.subscriber_count() != count {
            if Instant::now() > deadline {
                return Err(format!(
                    "expected {count} subscribers, have {}",
                    self.service.subscriber_count()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }
}

/// One run of `scenario`: subscribe, burst, paced, unsubscribe. Returns the burst seconds
/// and what the subscribers saw.
async fn run(
    server: &Server,
    scenario: Scenario,
    burst: usize,
    args: &Args,
    run_id: usize,
) -> Result<(f64, Vec<Received>), BoxError> {
    let total = burst + args.paced;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(scenario.subscribers);
    let publish: Publish = match scenario.transport {
        Transport::Grpc => {
            for s in 0..scenario.subscribers {
                let stamps = server.subscribe(format!("bench-{run_id}-{s}")).await?;
                tasks.push(tokio::spawn(subscriber(
                    stamps,
                    burst,
                    args.paced,
                    done_tx.clone(),
                )));
            }
            server.await_subscribers(scenario.subscribers).await?;
            let service = Arc::clone(&server.service);
            // The publisher is a blocking thread: it waits for each publish on the runtime.
            let runtime = tokio::runtime::Handle::current();
            Arc::new(move || {
                let event =
                    service.publish_event(Vec::new(), "bench.event", serde_json::json!({"n": 1}));
                runtime.block_on(event)?;
                Ok(())
            })
        }
        Transport::Broadcast => {
            let (tx, _) = broadcast::channel::<Arc<i64>>(total + 1);
            for _ in 0..scenario.subscribers {
                let stamps: Stamps = Box::pin(futures::stream::unfold(
                    tx.subscribe(),
                    |mut rx| async move {
                        let next = rx.recv().await.map(|s| *s).map_err(BoxError::from);
                        Some((next, rx))
                    },
                ));
                tasks.push(tokio::spawn(subscriber(
                    stamps,
                    burst,
                    args.paced,
                    done_tx.clone(),
                )));
            }
            Arc::new(move || {
                tx.send(Arc::new(now_micros()))?;
                Ok(())
            })
        }
    };
    drop(done_tx);

    let start = publish_from_thread(Arc::clone(&publish), burst, None).await?;
    let mut last = start;
    for _ in 0..scenario.subscribers {
        let at = tokio::time::timeout(WAIT, done_rx.recv())
            .await?
            .ok_or("a subscriber failed during the burst")?;
        last = last.max(at);
    }
    let secs = last.duration_since(start).as_secs_f64();
    publish_from_thread(publish, args.paced, Some(args.rate)).await?;

    let mut received = Vec::with_capacity(tasks.len());
    for task in tasks {
        received.push(tokio::time::timeout(WAIT, task).await???);
    }
    if scenario.transport == Transport::Grpc {
        server.await_subscribers(0).await?;
    }
    Ok((secs, received))
}

/// The `q` quantile (0..=1) of sorted `values`, in microseconds.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let last = sorted.len() - 1;
    // Truncation is intended: nearest-rank on a non-negative index.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let index = ((last as f64) * q).round() as usize;
    sorted[index.min(last)]
}

/// Microseconds as milliseconds with 3 decimals.
fn ms(micros: u64) -> String {
    format!("{:.3}", micros as f64 / 1000.0)
}

/// Runs every scenario `--rounds` times, interleaved; prints the table and writes JSON.
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse()?;
    let buffer = args.events.max(args.fanout_events) + args.paced + 1024;
    let server = Server::start(buffer).await?;
    let scenarios = [
        Scenario {
            transport: Transport::Broadcast,
            subscribers: 1,
        },
        Scenario {
            transport: Transport::Grpc,
            subscribers: 1,
        },
        Scenario {
            transport: Transport::Broadcast,
            subscribers: 100,
        },
        Scenario {
            transport: Transport::Grpc,
            subscribers: 100,
        },
    ];
    let mut totals: Vec<Totals> = scenarios.iter().map(|_| Totals::default()).collect();
    let mut run_id = 0;
    for round in 0..args.rounds {
        for k in 0..scenarios.len() {
            let index = (k + round) % scenarios.len();
            let scenario = scenarios[index];
            let burst = if scenario.subscribers == 1 {
                args.events
            } else {
                args.fanout_events
            };
            run_id += 1;
            let (secs, received) = run(&server, scenario, burst, &args, run_id).await?;
            let rate = burst as f64 / secs;
            eprintln!(
                "round {}: {} x{}: {burst} events in {secs:.3} s = {rate:.0} events/s",
                round + 1,
                scenario.transport.label(),
                scenario.subscribers
            );
            let entry = &mut totals[index];
            entry.events += burst;
            entry.secs += secs;
            entry.round_rates.push(rate);
            for r in received {
                entry.burst.extend(r.burst);
                entry.paced.extend(r.paced);
            }
        }
    }
    for entry in &mut totals {
        entry.burst.sort_unstable();
        entry.paced.sort_unstable();
    }

    println!(
        "\n| transport | subs | events | secs | events/s | deliveries/s | vs baseline | burst p50 / p99 ms | paced p50 / p99 ms | paced p99 vs baseline |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json_rows = Vec::new();
    for (index, (scenario, entry)) in scenarios.iter().zip(&totals).enumerate() {
        let baseline_index = index & !1;
        let baseline = &totals[baseline_index];
        let rate = entry.events as f64 / entry.secs;
        let baseline_rate = baseline.events as f64 / baseline.secs;
        let paced_p99 = quantile(&entry.paced, 0.99);
        let baseline_p99 = quantile(&baseline.paced, 0.99).max(1);
        println!(
            "| {} | {} | {} | {:.3} | {:.0} | {:.0} | {:.3}x | {} / {} | {} / {} | {:.1}x |",
            scenario.transport.label(),
            scenario.subscribers,
            entry.events,
            entry.secs,
            rate,
            rate * scenario.subscribers as f64,
            rate / baseline_rate,
            ms(quantile(&entry.burst, 0.5)),
            ms(quantile(&entry.burst, 0.99)),
            ms(quantile(&entry.paced, 0.5)),
            ms(paced_p99),
            paced_p99 as f64 / baseline_p99 as f64,
        );
        json_rows.push(serde_json::json!({
            "transport": scenario.transport.label(),
            "subscribers": scenario.subscribers,
            "burst_events": entry.events,
            "burst_secs": entry.secs,
            "events_per_sec": rate,
            "deliveries_per_sec": rate * scenario.subscribers as f64,
            "round_events_per_sec": entry.round_rates,
            "throughput_vs_baseline": rate / baseline_rate,
            "burst_latency_us": {
                "p50": quantile(&entry.burst, 0.5),
                "p99": quantile(&entry.burst, 0.99),
            },
            "paced_latency_us": {
                "p50": quantile(&entry.paced, 0.5),
                "p99": paced_p99,
            },
        }));
    }
    let document = serde_json::json!({
        "rounds": args.rounds,
        "paced_events": args.paced,
        "paced_rate_per_sec": args.rate,
        "scenarios": json_rows,
    });
    if let Some(parent) = args.json.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&document)?)?;
    println!("\nJSON written to {}", args.json.display());

    server.stop.cancel();
    tokio::time::timeout(WAIT, server.task).await???;
    Ok(())
}
