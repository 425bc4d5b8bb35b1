//! The load: keep-alive client connections, their latencies, and the bare hyper server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;
use tokio_util::sync::CancellationToken;

use crate::BoxError;

/// The baseline's answer: a small JSON object, as a cheap API response would be.
pub(crate) const BARE_BODY: &[u8] =
    br#"{"id":"0195f3c2-8d4e-7a10-9b1c-2f3e4d5c6b7a","status":"ok"}"#;

/// One thing to load.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// For the table.
    pub(crate) name: &'static str,
    /// Where it is served.
    pub(crate) addr: SocketAddr,
    /// What is asked for.
    pub(crate) path: &'static str,
    /// `Authorization` value, if the route needs one.
    pub(crate) bearer: Option<HeaderValue>,
}

/// What one measurement (or all rounds of one) saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sample {
    /// Successful requests.
    pub(crate) requests: u64,
    /// Requests that failed or did not answer 200.
    pub(crate) errors: u64,
    /// Wall time under load.
    pub(crate) elapsed: Duration,
    /// Latency of every successful request, in nanoseconds.
    pub(crate) latencies: Vec<u64>,
    /// Requests per second of each round.
    pub(crate) round_rates: Vec<f64>,
    /// Size of one response body.
    pub(crate) body_bytes: usize,
}

impl Sample {
    pub(crate) fn rate(&self) -> f64 {
        rate(self.requests, self.elapsed)
    }

    pub(crate) fn absorb(&mut self, round: Sample) {
        self.round_rates.push(round.rate());
        self.requests += round.requests;
        self.errors += round.errors;
        self.elapsed += round.elapsed;
        self.latencies.extend(round.latencies);
        self.body_bytes = self.body_bytes.max(round.body_bytes);
    }
}

/// The nearest-rank percentile `p` (0 to 1) of `sorted` nanoseconds, in microseconds.
pub(crate) fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    #[allow(clippy::cast_precision_loss)]
    let micros = sorted[rank - 1] as f64 / 1000.0;
    micros
}

pub(crate) fn rate(requests: u64, elapsed: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let requests = requests as f64;
    requests / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// The baseline: hyper's HTTP/1.1 server with a handler that answers [`BARE_BODY`].
pub(crate) async fn serve_bare(listener: TcpListener, stop: CancellationToken) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let service = hyper::service::service_fn(|_request| async {
            let mut response = Response::new(Full::new(Bytes::from_static(BARE_BODY)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok::<_, Infallible>(response)
        });
        connections.spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service),
        );
    }
    connections.abort_all();
}

/// Loads `scenario` with `connections` keep-alive connections for `duration`.
pub(crate) async fn load(
    scenario: &Scenario,
    connections: usize,
    duration: Duration,
) -> Result<Sample, BoxError> {
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (scenario, barrier) = (scenario.clone(), barrier.clone());
        tasks.spawn(async move { connection_loop(scenario, barrier, duration).await });
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut total = Sample::default();
    while let Some(joined) = tasks.join_next().await {
        let sample = joined??;
        total.requests += sample.requests;
        total.errors += sample.errors;
        total.latencies.extend(sample.latencies);
        total.body_bytes = total.body_bytes.max(sample.body_bytes);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// One client connection: requests one after another until the time is up.
pub(crate) async fn connection_loop(
    scenario: Scenario,
    barrier: Arc<Barrier>,
    duration: Duration,
) -> Result<Sample, BoxError> {
    let stream = TcpStream::connect(scenario.addr).await;
    // Everyone meets the barrier, even a task that could not connect, or the run hangs.
    barrier.wait().await;
    let stream = stream?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let deadline = Instant::now() + duration;
    let mut sample = Sample::default();
    while Instant::now() < deadline {
        let mut request = Request::builder()
            .uri(scenario.path)
            .header(HOST, "localhost");
        if let Some(bearer) = &scenario.bearer {
            request = request.header(AUTHORIZATION, bearer.clone());
        }
        let request = request.body(Empty::<Bytes>::new())?;
        let sent = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let took = sent.elapsed();
        if status == StatusCode::OK {
            sample.requests += 1;
            sample
                .latencies
                .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
            sample.body_bytes = body.len();
        } else {
            sample.errors += 1;
        }
    }
    drop(sender);
    let _ = driver.await;
    Ok(sample)
}
