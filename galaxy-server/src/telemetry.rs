//! Logs, traces and the metrics recorder, set up once per process right after the
//! configuration is read (SPEC section 7) and flushed last on shutdown.
//!
//! - **Logs**: `tracing` events on stdout, filtered by `GALAXY_LOG`, as one JSON object
//!   per line (`GALAXY_LOG_FORMAT=json`, with `trace_id` and `span_id` whenever the event
//!   happens inside a span) or human-readable (`pretty`).
//! - **Traces**: every `tracing` span is also an OpenTelemetry span, exported as
//!   `GALAXY_OTEL_EXPORTER` says: `none` (ids are still made, so logs carry them),
//!   `stdout` (each finished span printed, for debugging), or `otlp` (batched over gRPC
//!   to `GALAXY_OTEL_ENDPOINT`; only in a build with the `otlp` feature). The W3C `traceparent` propagator is installed, so
//!   incoming and outgoing calls can join a caller's trace.
//! - **Metrics**: the Prometheus recorder behind the `metrics` macros
//!   ([`prometheus_handle`]); the metrics listener renders it.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
#[cfg(feature = "otlp")]
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, format::Json};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{Config, LogFormat, OtelExporter};
use crate::metering;

/// The service name traces are reported under.
const SERVICE_NAME: &str = "galaxy-server";

/// Telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// `GALAXY_LOG` is not a valid filter.
    #[error("GALAXY_LOG={value:?} is invalid: {reason}")]
    Filter {
        /// The filter.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error(
        "cannot export traces to {endpoint} (GALAXY_OTEL_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT): {reason}"
    )]
    Otlp {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// `GALAXY_OTEL_EXPORTER=otlp` in a build without the `otlp` feature.
    #[error(
        "GALAXY_OTEL_EXPORTER=otlp needs the `otlp` feature, which this build of \
         galaxy-server lacks (rebuild with `--features otlp`, or export to none or stdout)"
    )]
    OtlpDisabled,
    /// A global subscriber or recorder is already installed in this process.
    #[error("telemetry is already initialised in this process: {0}")]
    AlreadyInitialised(String),
}

/// The installed trace pipeline; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    /// Owns the span processors (the OTLP batch queue); shutting it down exports what
    /// is still queued.
    provider: SdkTracerProvider,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

/// Installs logging and tracing for the process as `config` says. Call it once, from
/// within the tokio runtime (the OTLP exporter spawns its connection there).
pub fn init(config: &Config) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| TelemetryError::Filter {
        value: config.log_filter.clone(),
        reason: e.to_string(),
    })?;
    let provider = tracer_provider(config)?;
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(SERVICE_NAME));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .event_format(JsonWithTraceIds(format().json().flatten_event(true)))
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_ansi(ansi).boxed(),
    };
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(logs);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    tracing::info!(
        exporter = ?config.otel_exporter,
        format = ?config.log_format,
        "telemetry ready"
    );
    Ok(Telemetry { provider })
}

fn format() -> format::Format {
    format::Format::default()
}

fn tracer_provider(config: &Config) -> Result<SdkTracerProvider, TelemetryError> {
    // `Resource::builder` reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself;
    // the service name defaults to galaxy-server rather than the SDK's `unknown_service`.
    let resource = match &config.otel_service_name {
        Some(_) => Resource::builder().build(),
        None => Resource::builder().with_service_name(SERVICE_NAME).build(),
    };
    let builder = SdkTracerProvider::builder().with_resource(resource);
    Ok(match config.otel_exporter {
        // No processor: spans still get ids (for the logs) and go nowhere.
        OtelExporter::None => builder.build(),
        OtelExporter::Stdout => builder
            .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
            .build(),
        OtelExporter::Otlp => builder.with_batch_exporter(otlp_exporter(config)?).build(),
    })
}

/// The OTLP exporter over gRPC or HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL`), to
/// `GALAXY_OTEL_ENDPOINT` when set; otherwise the SDK reads the standard
/// `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` (and headers, timeout, compression) itself.
#[cfg(feature = "otlp")]
fn otlp_exporter(config: &Config) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    use opentelemetry_otlp::Protocol;
    let endpoint = config.otel_endpoint.clone();
    let effective = endpoint.clone().or_else(|| {
        [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    });
    if let Some(endpoint) = effective.filter(|e| needs_tls(e)) {
        return Err(TelemetryError::Otlp {
            endpoint,
            reason: "this build sends OTLP without TLS, so every export would fail; send to \
                     a collector beside the server over http:// and let it forward over TLS"
                .to_owned(),
        });
    }
    let failed = |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Otlp {
        endpoint: endpoint
            .clone()
            .unwrap_or_else(|| "the OTEL_EXPORTER_OTLP_ENDPOINT default".to_owned()),
        reason: e.to_string(),
    };
    match config.otel_protocol {
        crate::config::OtlpProtocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            builder.build().map_err(failed)
        }
        crate::config::OtlpProtocol::HttpProtobuf => {
            use opentelemetry_otlp::WithHttpConfig as _;
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_http_client(RuntimeHttpClient::new()?);
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(http_traces_url(endpoint));
            }
            builder.build().map_err(failed)
        }
    }
}

/// Whether `endpoint` asks for TLS (`https://`), which neither exporter of this build
/// speaks (no TLS stack is compiled in: the exporters connect lazily, so without this
/// check every export would fail later, in silence).
#[cfg(feature = "otlp")]
fn needs_tls(endpoint: &str) -> bool {
    endpoint
        .trim()
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The OTLP/HTTP traces URL of `GALAXY_OTEL_ENDPOINT`: a collector's address without a
/// path (`http://collector:4318`) gets the signal's path, `/v1/traces`, as the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` does (the exporter takes an endpoint given in code as
/// the whole URL, so spans would go to `/` and be refused); a path given is kept.
#[cfg(feature = "otlp")]
fn http_traces_url(endpoint: &str) -> String {
    let bare = endpoint
        .parse::<axum::http::Uri>()
        .is_ok_and(|uri| matches!(uri.path(), "" | "/"));
    if bare {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    } else {
        endpoint.to_owned()
    }
}

/// The HTTP client of the OTLP/HTTP exporter: hyper, on the server's tokio runtime. The
/// SDK's batch processor exports from a thread of its own, outside any runtime, where
/// hyper's client (and its timer) cannot run; each request is therefore spawned onto the
/// runtime that was current when telemetry started, and awaited from the exporter's
/// thread.
#[cfg(feature = "otlp")]
#[derive(Debug)]
struct RuntimeHttpClient {
    /// The client, with its per-request timeout.
    inner: std::sync::Arc<
        opentelemetry_http::hyper::HyperClient<hyper_util::client::legacy::connect::HttpConnector>,
    >,
    /// Where requests run.
    runtime: tokio::runtime::Handle,
}

#[cfg(feature = "otlp")]
impl RuntimeHttpClient {
    /// Needs a current tokio runtime (telemetry starts inside the server's).
    fn new() -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| TelemetryError::Otlp {
            endpoint: "OTLP/HTTP".to_owned(),
            reason: format!("no async runtime to send from: {e}"),
        })?;
        Ok(Self {
            inner: std::sync::Arc::new(
                opentelemetry_http::hyper::HyperClient::with_default_connector(
                    Duration::from_secs(10),
                    None,
                ),
            ),
            runtime,
        })
    }
}

#[cfg(feature = "otlp")]
#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeHttpClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let inner = self.inner.clone();
        self.runtime
            .spawn(async move { inner.send_bytes(request).await })
            .await
            .map_err(|e| Box::new(e) as opentelemetry_http::HttpError)?
    }
}

/// No OTLP exporter in a build without the `otlp` feature.
#[cfg(not(feature = "otlp"))]
fn otlp_exporter(_config: &Config) -> Result<opentelemetry_stdout::SpanExporter, TelemetryError> {
    Err(TelemetryError::OtlpDisabled)
}

impl Telemetry {
    /// Exports every span still queued and stops the exporters, waiting at most
    /// `timeout`. Returns whether it finished in time.
    pub async fn shutdown(self, timeout: Duration) -> bool {
        let provider = self.provider;
        // The SDK's shutdown blocks its thread until the exporter's queue is empty.
        let flush = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout));
        match tokio::time::timeout(timeout, flush).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(error))) => {
                eprintln!("galaxy-server: flushing traces failed: {error}");
                false
            }
            Ok(Err(_)) | Err(_) => false,
        }
    }
}

/// The process's Prometheus recorder, installed on first use. The `metrics` macros
/// write to one global recorder, so there can only be one per process; tests that build
/// several apps in one process share it.
pub fn prometheus_handle() -> Result<PrometheusHandle, TelemetryError> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut slot = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let fast = [
        metering::HTTP_REQUEST_DURATION,
        metering::ENGINE_REQUEST_DURATION,
        metering::MAIL_SEND_DURATION,
    ];
    let slow = [
        metering::TURN_DURATION,
        metering::CONTAINER_OPERATION_DURATION,
    ];
    let mut builder = PrometheusBuilder::new();
    for (names, buckets) in [
        (&fast[..], metering::LATENCY_BUCKETS),
        (&slow[..], metering::SLOW_BUCKETS),
    ] {
        for name in names {
            builder = builder
                .set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)
                .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
        }
    }
    let handle = builder
        .install_recorder()
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    metering::describe();
    *slot = Some(handle.clone());
    Ok(handle)
}

/// tracing-subscriber's JSON line with the OpenTelemetry `trace_id` and `span_id` of the
/// event's span added, so a log line leads to its trace.
struct JsonWithTraceIds(format::Format<Json>);

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        if let Some((trace_id, span_id)) = trace_ids(ctx.parent_span().map(|s| s.id())) {
            // The inner format ends every object with `}\n`: add the ids before it.
            if let Some(end) = line.rfind('}') {
                line.insert_str(
                    end,
                    &format!(",\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\""),
                );
            }
        }
        writer.write_str(&line)
    }
}

/// The OpenTelemetry ids of a span, if it has valid ones.
fn trace_ids(span: Option<tracing::span::Id>) -> Option<(String, String)> {
    let id = span?;
    let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
    let cx = tracing_opentelemetry::get_otel_context(&id, &dispatch)?;
    let otel_span = cx.span();
    let span_context = otel_span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    use super::http_traces_url;

    #[test]
    fn a_collector_address_gets_the_traces_path_and_a_full_url_is_kept() {
        for (given, used) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/v1/traces",
                "https://otel.example/v1/traces",
            ),
            (
                "http://gateway/otlp/v1/traces",
                "http://gateway/otlp/v1/traces",
            ),
        ] {
            assert_eq!(http_traces_url(given), used, "{given}");
        }
    }
}
