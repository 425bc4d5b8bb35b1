#![doc = include_str!("../README.md")]

pub mod api;
pub mod auth;
pub mod bot;
pub mod game;
mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use api::{CONTRACT_VERSION, Engine};
pub use auth::{Token, TokenError};
pub use store::StoreError;

/// Listen address when `GALAXY_ENGINE_ADDR` is not set.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8080";
/// Data directory when `GALAXY_ENGINE_DATA_DIR` is not set.
pub const DEFAULT_DATA_DIR: &str = "./galaxy-engine-data";

/// Where the engine listens and keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `GALAXY_ENGINE_ADDR`.
    pub addr: SocketAddr,
    /// `GALAXY_ENGINE_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `GALAXY_ENGINE_TOKEN`: the credential every call but `/healthz` must carry. Unset
    /// serves anyone (an engine run by hand); the platform always sets it.
    pub token: Option<Token>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The listen address does not parse.
    #[error("GALAXY_ENGINE_ADDR must be an IP address and port like 0.0.0.0:8080, got {0:?}")]
    Addr(String),
    /// The data directory is empty.
    #[error("GALAXY_ENGINE_DATA_DIR must not be empty")]
    EmptyDataDir,
    /// The token is set but cannot be a credential (an empty one included: an engine
    /// meant to be guarded must not silently serve anyone).
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl Config {
    /// Reads `GALAXY_ENGINE_ADDR`, `GALAXY_ENGINE_DATA_DIR` and `GALAXY_ENGINE_TOKEN`
    /// through `var` (the process environment in the binary, a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let addr = var("GALAXY_ENGINE_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = addr.trim().parse().map_err(|_| ConfigError::Addr(addr))?;
        let data_dir = var("GALAXY_ENGINE_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned());
        if data_dir.trim().is_empty() {
            return Err(ConfigError::EmptyDataDir);
        }
        let token = var("GALAXY_ENGINE_TOKEN")
            .map(|token| Token::parse(&token))
            .transpose()?;
        Ok(Self {
            addr,
            data_dir: PathBuf::from(data_dir),
            token,
        })
    }
}

/// Why the engine could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The data directory could not be opened or its state read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listener could not be bound or failed.
    #[error("listener on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The server task ended abnormally.
    #[error("engine task failed: {0}")]
    Task(String),
}

/// Serves `engine` on `listener` until `shutdown` completes; requests in flight finish
/// first (a turn in progress is persisted before the engine exits).
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    axum::serve(listener, api::router(Arc::new(engine)))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

/// Opens `config`'s data directory (resuming its game), binds its address and serves
/// until `shutdown` completes: the whole of the `galaxy-engine` binary, for hosts that run
/// the reference engine as a subcommand of their own binary (`galaxy-server
/// reference-engine`, `galaxy-cli reference-engine`), so a process runtime can run it
/// where no `galaxy-engine` binary was built. The state is loaded before the port opens:
/// a health check that passes means a resumed game, and a corrupt data directory stops
/// the engine instead of resetting it.
pub async fn serve_config(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.token.is_none() {
        tracing::warn!("GALAXY_ENGINE_TOKEN is not set: every caller may play every race");
    }
    let engine = Engine::open(&config.data_dir)?.with_token(config.token);
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.addr.to_string(),
            source,
        })?;
    tracing::info!(addr = %config.addr, data_dir = %config.data_dir.display(), "engine listening");
    serve(listener, engine, shutdown).await?;
    tracing::info!("engine stopped");
    Ok(())
}

/// Completes on ctrl-c or SIGTERM (what `docker stop` and the process runtime send): the
/// shutdown of an engine run as a process.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// An engine running on a task of the current runtime (for tests, the demo and
/// embedding); stop it with [`RunningEngine::stop`].
#[derive(Debug)]
pub struct RunningEngine {
    /// The bound address (useful when started on port 0).
    addr: SocketAddr,
    /// Fires the graceful shutdown.
    stop: oneshot::Sender<()>,
    /// The serving task, awaited on stop.
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningEngine {
    /// Opens `data_dir` (resuming its game), binds `addr` and starts serving anyone.
    pub async fn start(addr: SocketAddr, data_dir: &Path) -> Result<Self, ServeError> {
        Self::start_with_token(addr, data_dir, None).await
    }

    /// [`RunningEngine::start`], answering only calls that carry `token` (when `Some`),
    /// as the platform runs it.
    pub async fn start_with_token(
        addr: SocketAddr,
        data_dir: &Path,
        token: Option<Token>,
    ) -> Result<Self, ServeError> {
        let engine = Engine::open(data_dir)?.with_token(token);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, engine, async move {
            // A dropped sender stops the engine too.
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully and waits until it has.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::{Config, ConfigError, Token};

    #[test]
    fn config_reads_both_variables_with_defaults() {
        let none = Config::from_vars(|_| None).unwrap();
        assert_eq!(none.addr.to_string(), "0.0.0.0:8080");
        assert_eq!(none.data_dir.to_str(), Some("./galaxy-engine-data"));
        let set = Config::from_vars(|k| match k {
            "GALAXY_ENGINE_ADDR" => Some("127.0.0.1:9000".into()),
            "GALAXY_ENGINE_DATA_DIR" => Some("/data".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(set.addr.to_string(), "127.0.0.1:9000");
        let bad = Config::from_vars(|k| (k == "GALAXY_ENGINE_ADDR").then(|| "nope".into()));
        assert!(matches!(bad, Err(ConfigError::Addr(_))));
        let empty = Config::from_vars(|k| (k == "GALAXY_ENGINE_DATA_DIR").then(String::new));
        assert!(matches!(empty, Err(ConfigError::EmptyDataDir)));
        assert_eq!(none.token, None, "unset: the engine serves anyone");
        let token = Config::from_vars(|k| (k == "GALAXY_ENGINE_TOKEN").then(|| "t".repeat(64)));
        assert_eq!(
            token.unwrap().token,
            Some(Token::parse(&"t".repeat(64)).unwrap())
        );
        for bad in ["", "too-short", "sixteen chars with spaces"] {
            let refused = Config::from_vars(|k| (k == "GALAXY_ENGINE_TOKEN").then(|| bad.into()));
            assert!(matches!(refused, Err(ConfigError::Token(_))), "{bad:?}");
        }
    }
}
