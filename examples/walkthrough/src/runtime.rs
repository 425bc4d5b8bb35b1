//! The runtime part of the walkthrough: the reference engine served in this process, a
//! container runtime that starts that engine for the game with the game's credential (the
//! smallest `ContainerRuntime` an adapter author could write), and the runtime service and
//! start worker over the same in-memory stores as the lobby.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use galaxy_core::ports::{
    Clock, ContainerError, ContainerEvent, ContainerInfo, ContainerRuntime, ContainerSpec,
    CreatedContainer, Notifier, SecretGenerator,
};
use galaxy_core::service::runtime::{RuntimeConfig, RuntimePorts, RuntimeService, StartWorker};
use galaxy_engine::{RunningEngine, Token};
use galaxy_engine_http::HttpEngineClient;
use galaxy_ports::memory::InMemoryStores;
use tokio::sync::Mutex;

/// A "container runtime" with exactly one engine: the game created on it gets the
/// reference engine, served in this process on a free loopback port and guarded by the
/// game's token, as any runtime hands it to its engine.
struct OneEngine {
    /// Where the engine keeps the game.
    data_dir: PathBuf,
    /// The engine, once created; shared with [`Runtime`], which stops it.
    engine: Arc<Mutex<Option<RunningEngine>>>,
}

/// The id this runtime gives its one "container".
const CONTAINER: &str = "walkthrough-engine";

#[async_trait]
impl ContainerRuntime for OneEngine {
    async fn ensure_image(&self, _engine: &str) -> Result<(), ContainerError> {
        Ok(())
    }

    /// Starts the engine (once) with the spec's token: a real runtime would only create
    /// here and start in `start`, but the in-process engine listens as soon as it exists.
    async fn create(&self, spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError> {
        let mut engine = self.engine.lock().await;
        if engine.is_none() {
            let token = Token::parse(spec.token.expose())
                .map_err(|e| ContainerError::Failed(e.to_string()))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], 0));
            let started = RunningEngine::start_with_token(addr, &self.data_dir, Some(token))
                .await
                .map_err(|e| ContainerError::Failed(e.to_string()))?;
            *engine = Some(started);
        }
        let engine_endpoint = engine.as_ref().map(RunningEngine::url).unwrap_or_default();
        Ok(CreatedContainer {
            container_id: CONTAINER.to_owned(),
            engine_endpoint,
        })
    }

    async fn start(&self, _container_id: &str) -> Result<(), ContainerError> {
        Ok(())
    }

    async fn stop(&self, _container_id: &str, _grace: Duration) -> Result<(), ContainerError> {
        Ok(())
    }

    async fn remove(&self, _container_id: &str) -> Result<(), ContainerError> {
        Ok(())
    }

    async fn inspect(&self, container_id: &str) -> Result<ContainerInfo, ContainerError> {
        Ok(ContainerInfo {
            container_id: container_id.to_owned(),
            state: "running".to_owned(),
            restart_count: 0,
            exit_code: None,
            health: None,
            labels: BTreeMap::new(),
        })
    }

    async fn logs(
        &self,
        _container_id: &str,
        _lines: usize,
    ) -> Result<Vec<String>, ContainerError> {
        // The engine logs to this process's own output.
        Ok(Vec::new())
    }

    async fn list_by_label(
        &self,
        _key: &str,
        _value: &str,
    ) -> Result<Vec<ContainerInfo>, ContainerError> {
        Ok(Vec::new())
    }

    async fn events(
        &self,
    ) -> Result<BoxStream<'static, Result<ContainerEvent, ContainerError>>, ContainerError> {
        Ok(Box::pin(futures::stream::empty()))
    }
}

/// The runtime of the walkthrough: its service, its job worker and the engine behind
/// them (kept alive as long as this value).
pub struct Runtime {
    /// Admin actions and the players' orders, reports and results.
    pub service: RuntimeService,
    /// Runs the start job the lobby queued.
    pub jobs: StartWorker,
    /// The reference engine, served on a loopback port from the game's start until
    /// stopped.
    engine: Arc<Mutex<Option<RunningEngine>>>,
    /// The engine's data directory, removed when the walkthrough ends.
    _data: tempfile::TempDir,
}

impl Runtime {
    /// Wires the runtime over `stores`; the reference engine starts with the game.
    pub async fn start(
        stores: &InMemoryStores,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn SecretGenerator>,
    ) -> Result<Self, crate::AnyError> {
        let data = tempfile::tempdir()?;
        let engine = Arc::new(Mutex::new(None));
        let ports = RuntimePorts {
            games: stores.lobby.clone(),
            applications: stores.lobby.clone(),
            users: stores.users.clone(),
            records: stores.runtime.clone(),
            jobs: stores.runtime.clone(),
            health: stores.runtime.clone(),
            archive: stores.play.clone(),
            orders: stores.play.clone(),
            pbem: stores.pbem.clone(),
            containers: Arc::new(OneEngine {
                data_dir: data.path().to_owned(),
                engine: engine.clone(),
            }),
            engine: Arc::new(HttpEngineClient::default()),
            notifier,
            clock,
            ids,
            // Orders by e-mail is off here.
            inbound: None,
        };
        let config = RuntimeConfig::default();
        Ok(Self {
            service: RuntimeService::new(ports.clone(), config.clone()),
            jobs: StartWorker::new(ports, config),
            engine,
            _data: data,
        })
    }

    /// Stops the engine: from now on only the platform's archive can answer.
    pub async fn stop_engine(&mut self) {
        let engine = self.engine.lock().await.take();
        if let Some(engine) = engine
            && let Err(error) = engine.stop().await
        {
            println!("  the engine stopped with an error: {error}");
        }
    }
}
