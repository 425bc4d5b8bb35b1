//! `galaxy-cli push tail`: subscribes to a server's gRPC push stream as a gateway would and
//! prints every event as one JSON line, live, until Ctrl-C. The reconnecting client of
//! `galaxy-push-grpc` does the work: after any failure it reconnects with backoff and
//! resumes after the last printed event, saying why on standard error; a subscription
//! refused for good (a wrong token) ends the command with exit 1.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use galaxy_push_grpc::pb::PushEvent as WireEvent;
use galaxy_push_grpc::{Disconnect, PushClient, PushClientConfig, PushHandler};
use galaxy_server::config::Layered;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// `galaxy-cli push ...`.
#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Print push events live as JSON lines (one per event) until Ctrl-C.
    Tail(TailArgs),
}

/// Where to subscribe and as whom.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The server's gRPC push listener as a URL (default: http:// and the server's
    /// GALAXY_GRPC_ADDR, from the environment or the --config file, else
    /// 127.0.0.1:8081; an unspecified address such as 0.0.0.0 is reached on loopback).
    #[arg(long)]
    url: Option<String>,
    /// Gateway client id to subscribe as (default: cli-<pid>). A running gateway's id
    /// would take its subscription away, so pick a fresh one.
    #[arg(long)]
    gateway_id: Option<String>,
    /// Resume after this cursor instead of starting live.
    #[arg(long)]
    cursor: Option<String>,
    /// Read the internal token from this file instead of GALAXY_INTERNAL_TOKEN.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

/// Runs a push command; `config` is galaxy-cli's `--config`, where the internal token
/// is read when neither `--token-file` nor the environment gives it.
pub async fn run(command: PushCommand, config: Option<&Path>) -> anyhow::Result<()> {
    match command {
        PushCommand::Tail(args) => tail(args, config).await,
    }
}

fn token(args: &TailArgs, config: Option<&Path>) -> anyhow::Result<SecretString> {
    let configured = match args.token_file {
        Some(_) => None,
        None => crate::internal_token::configured(config)?,
    };
    crate::internal_token::internal_token(configured.as_deref(), args.token_file.as_deref())
}

/// The listener's URL: `--url`, else the server's `GALAXY_GRPC_ADDR` as the server reads
/// it (the environment, else the configuration file `config`), else its default.
fn url(args: &TailArgs, config: Option<&Path>) -> anyhow::Result<String> {
    if let Some(url) = &args.url {
        return Ok(url.clone());
    }
    let settings = Layered::from_env(config).context("cannot read the configuration")?;
    let addr = settings.value("GALAXY_GRPC_ADDR").unwrap_or(DEFAULT_ADDR);
    Ok(listener_url(addr))
}

/// The server's default `GALAXY_GRPC_ADDR`.
const DEFAULT_ADDR: &str = "127.0.0.1:8081";

/// `http://` and the listening address `addr`, an unspecified IP (listening on every
/// interface) replaced by loopback, which is where this machine reaches it.
fn listener_url(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(mut addr) => {
            if addr.ip().is_unspecified() {
                let loopback = match addr {
                    SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                };
                addr.set_ip(loopback);
            }
            format!("http://{addr}")
        }
        // A host name and port: as given.
        Err(_) => format!("http://{addr}"),
    }
}

/// One event as a JSON line: the domain's JSON shape when the event is well formed
/// (payload as JSON, time as RFC 3339), else its raw wire fields.
fn json_line(event: WireEvent) -> String {
    let raw = serde_json::json!({
        "event_id": event.event_id,
        "cursor": event.cursor,
        "user_ids": event.user_ids,
        "kind": event.kind,
        "payload_json": event.payload_json,
        "occurred_at_unix_micros": event.occurred_at_unix_micros,
    });
    match galaxy_core::domain::push::PushEvent::try_from(event) {
        Ok(event) => serde_json::to_string(&event).unwrap_or_else(|_| raw.to_string()),
        Err(error) => {
            eprintln!("galaxy-cli: malformed push event ({error}); printed raw");
            raw.to_string()
        }
    }
}

async fn tail(args: TailArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let gateway = args
        .gateway_id
        .clone()
        .unwrap_or_else(|| format!("cli-{}", std::process::id()));
    // A malformed cursor would be refused by the server as INVALID_ARGUMENT, which the
    // tail could only report as a refusal of its token or gateway id: said here instead.
    if let Some(cursor) = args.cursor.as_ref().filter(|c| !c.is_empty()) {
        galaxy_core::domain::push::PushCursor::parse(cursor)
            .with_context(|| format!("--cursor {cursor:?} is not a push cursor"))?;
    }
    let url = url(&args, config)?;
    let config = PushClientConfig::new(url.clone(), gateway.clone(), token(&args, config)?);
    let client = PushClient::new(config)
        .context("cannot set up the push client")?
        .with_cursor(args.cursor.clone());
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    eprintln!("galaxy-cli: tailing {url} as {gateway} (Ctrl-C stops)");
    let mut tail = Tail {
        stop: cancel.clone(),
        broken: None,
        refused: None,
    };
    client.run(&mut tail, &cancel).await;
    match tail.broken {
        // The reader is gone (`push tail | head -n 1`): a normal way to stop.
        Some(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Some(error) => return Err(error).context("cannot write to stdout"),
        None => {}
    }
    match tail.refused {
        Some(reason) => Err(anyhow::anyhow!(
            "{reason} (check the internal token and --gateway-id; retrying would not help)"
        )),
        None => Ok(()),
    }
}

/// Prints each event; says on standard error why the stream dropped (an operator would
/// otherwise see a tail that looks merely quiet), and gives up on a refusal that retrying
/// cannot fix (a wrong token).
struct Tail {
    /// Stops the client.
    stop: CancellationToken,
    /// Standard output could not be written (a closed pipe): stop.
    broken: Option<std::io::Error>,
    /// The server refused the subscription for good: why.
    refused: Option<String>,
}

impl PushHandler for Tail {
    fn handle(&mut self, event: WireEvent) -> impl std::future::Future<Output = ()> + Send {
        let line = json_line(event);
        let mut out = std::io::stdout().lock();
        if let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            // Nobody reads any more (a closed pipe): stop.
            self.broken.get_or_insert(error);
            self.stop.cancel();
        }
        async {}
    }

    fn disconnected(&mut self, reason: &Disconnect, retry_in: std::time::Duration) {
        if reason.is_misconfiguration() {
            self.refused = Some(reason.to_string());
            self.stop.cancel();
        } else {
            eprintln!("galaxy-cli: {reason}; trying again in {retry_in:.1?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_is_reached_where_it_listens_or_on_loopback() {
        assert_eq!(listener_url("127.0.0.1:8081"), "http://127.0.0.1:8081");
        assert_eq!(listener_url("0.0.0.0:9081"), "http://127.0.0.1:9081");
        assert_eq!(listener_url("[::]:9081"), "http://[::1]:9081");
        assert_eq!(listener_url("10.1.2.3:8081"), "http://10.1.2.3:8081");
        assert_eq!(
            listener_url("push.internal:8081"),
            "http://push.internal:8081"
        );
    }
}
