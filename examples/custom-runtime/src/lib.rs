#![doc = include_str!("../README.md")]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream};
use galaxy_core::domain::GameId;
use galaxy_core::ports::{
    ContainerError, ContainerEvent, ContainerInfo, ContainerRuntime, ContainerSpec,
    CreatedContainer,
};
use galaxy_engine::{Engine, Token};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

/// What `ContainerSpec::engine` must say for this runtime: it runs one engine, the
/// reference engine compiled into the server.
pub const ENGINE: &str = "in-process";

/// Most log lines kept per container.
const LOG_LINES: usize = 200;

/// Runs every game's engine as a task of the current tokio runtime, on a loopback port,
/// with its state in `<root>/<container name>`. Clones share the engines.
#[derive(Clone)]
pub struct InProcessRuntime {
    /// Shared by the clones and the engine tasks (which report their own end).
    inner: Arc<Inner>,
}

struct Inner {
    /// Where each game's data directory goes.
    root: PathBuf,
    /// Containers by id (the container name, unique per game).
    containers: Mutex<HashMap<String, Container>>,
    /// The event feed; subscribers that lag lose events, as with a daemon.
    events: broadcast::Sender<ContainerEvent>,
}

/// One game's engine.
struct Container {
    game_id: GameId,
    labels: BTreeMap<String, String>,
    /// The credential the engine requires.
    token: Token,
    /// Where it listens (reserved at create).
    addr: SocketAddr,
    /// The socket bound at create, handed to the first start.
    listener: Option<TcpListener>,
    state: &'static str,
    exit_code: Option<i64>,
    /// Bumped by every start, so a run that ends late cannot overwrite a newer one.
    run: u64,
    /// Stops the running engine gracefully.
    stop: Option<oneshot::Sender<()>>,
    /// The running engine's task.
    task: Option<JoinHandle<()>>,
    /// What the runtime has to say about the engine, oldest first.
    logs: Vec<String>,
}

impl Container {
    fn log(&mut self, line: String) {
        self.logs.push(line);
        if self.logs.len() > LOG_LINES {
            self.logs.remove(0);
        }
    }

    fn info(&self, id: &str) -> ContainerInfo {
        ContainerInfo {
            container_id: id.to_owned(),
            state: self.state.to_owned(),
            restart_count: 0,
            exit_code: self.exit_code,
            health: None,
            labels: self.labels.clone(),
        }
    }
}

fn failed(what: &str, error: impl std::fmt::Display) -> ContainerError {
    ContainerError::Failed(format!("{what}: {error}"))
}

impl InProcessRuntime {
    /// A runtime keeping each game's data under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let (events, _) = broadcast::channel(256);
        Self {
            inner: Arc::new(Inner {
                root: root.into(),
                containers: Mutex::new(HashMap::new()),
                events,
            }),
        }
    }

    fn containers(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        lock(&self.inner.containers)
    }

    fn emit(&self, id: &str, game_id: GameId, action: &str) {
        // No subscriber is no one to tell.
        let _ = self.inner.events.send(ContainerEvent {
            container_id: id.to_owned(),
            game_id: Some(game_id),
            action: action.to_owned(),
        });
    }

    /// Stops every engine (for the end of shutdown), each within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let ids: Vec<String> = self.containers().keys().cloned().collect();
        for id in ids {
            let _ = self.stop(&id, grace).await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl ContainerRuntime for InProcessRuntime {
    async fn ensure_image(&self, engine: &str) -> Result<(), ContainerError> {
        if engine == ENGINE {
            Ok(())
        } else {
            Err(ContainerError::NotFound(format!(
                "engine {engine:?} (this runtime runs only {ENGINE:?})"
            )))
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError> {
        self.ensure_image(&spec.engine).await?;
        if let Some(existing) = self.containers().get(&spec.name) {
            return Ok(CreatedContainer {
                container_id: spec.name.clone(),
                engine_endpoint: format!("http://{}", existing.addr),
            });
        }
        let token = Token::parse(spec.token.expose()).map_err(|e| failed("the game's token", e))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| failed("cannot reserve a port", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| failed("cannot reserve a port", e))?;
        let container = Container {
            game_id: spec.game_id,
            labels: spec.labels.clone(),
            token,
            addr,
            listener: Some(listener),
            state: "created",
            exit_code: None,
            run: 0,
            stop: None,
            task: None,
            logs: Vec::new(),
        };
        // A create racing this one for the same game wins; ours is dropped.
        let mut containers = self.containers();
        let kept = containers.entry(spec.name.clone()).or_insert(container);
        Ok(CreatedContainer {
            container_id: spec.name.clone(),
            engine_endpoint: format!("http://{}", kept.addr),
        })
    }

    async fn start(&self, container_id: &str) -> Result<(), ContainerError> {
        let (addr, token, listener) = {
            let mut containers = self.containers();
            let container = containers
                .get_mut(container_id)
                .ok_or_else(|| ContainerError::NotFound(container_id.to_owned()))?;
            if container.state == "running" {
                return Ok(());
            }
            (
                container.addr,
                container.token.clone(),
                container.listener.take(),
            )
        };
        let listener = match listener {
            Some(listener) => listener,
            // After a stop the address is ours to take again.
            None => TcpListener::bind(addr)
                .await
                .map_err(|e| failed("cannot listen again", e))?,
        };
        let dir = self.inner.root.join(container_id);
        std::fs::create_dir_all(&dir).map_err(|e| failed("cannot create the data directory", e))?;
        let engine = Engine::open(&dir)
            .map_err(|e| failed("the engine cannot open its data", e))?
            .with_token(Some(token));
        let (stop, stopped) = oneshot::channel::<()>();
        let mut containers = self.containers();
        let container = containers
            .get_mut(container_id)
            .ok_or_else(|| ContainerError::NotFound(container_id.to_owned()))?;
        container.run += 1;
        let run = container.run;
        let this = self.clone();
        let id = container_id.to_owned();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let result = galaxy_engine::serve(listener, engine, shutdown).await;
            this.ended(&id, run, result);
        });
        container.state = "running";
        container.exit_code = None;
        container.stop = Some(stop);
        container.task = Some(task);
        container.log(format!("engine listening on {addr}"));
        let game_id = container.game_id;
        drop(containers);
        self.emit(container_id, game_id, "start");
        Ok(())
    }

    async fn stop(&self, container_id: &str, grace: Duration) -> Result<(), ContainerError> {
        let (stop, task, game_id) = {
            let mut containers = self.containers();
            let container = containers
                .get_mut(container_id)
                .ok_or_else(|| ContainerError::NotFound(container_id.to_owned()))?;
            if container.state != "running" {
                return Ok(());
            }
            // Marked first, so the task's own end is not taken for a crash.
            container.state = "exited";
            container.exit_code = Some(0);
            container.log("engine stopped".to_owned());
            (
                container.stop.take(),
                container.task.take(),
                container.game_id,
            )
        };
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(mut task) = task
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            task.abort();
        }
        self.emit(container_id, game_id, "stop");
        Ok(())
    }

    async fn remove(&self, container_id: &str) -> Result<(), ContainerError> {
        self.stop(container_id, Duration::from_secs(10)).await?;
        let removed = self.containers().remove(container_id);
        match removed {
            // The data directory stays: a new container of the game resumes it.
            Some(container) => {
                self.emit(container_id, container.game_id, "destroy");
                Ok(())
            }
            None => Err(ContainerError::NotFound(container_id.to_owned())),
        }
    }

    async fn inspect(&self, container_id: &str) -> Result<ContainerInfo, ContainerError> {
        self.containers()
            .get(container_id)
            .map(|c| c.info(container_id))
            .ok_or_else(|| ContainerError::NotFound(container_id.to_owned()))
    }

    async fn logs(&self, container_id: &str, lines: usize) -> Result<Vec<String>, ContainerError> {
        let containers = self.containers();
        let container = containers
            .get(container_id)
            .ok_or_else(|| ContainerError::NotFound(container_id.to_owned()))?;
        let skip = container.logs.len().saturating_sub(lines);
        Ok(container.logs[skip..].to_vec())
    }

    async fn list_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerInfo>, ContainerError> {
        Ok(self
            .containers()
            .iter()
            .filter(|(_, c)| c.labels.get(key).is_some_and(|v| v == value))
            .map(|(id, c)| c.info(id))
            .collect())
    }

    async fn events(
        &self,
    ) -> Result<BoxStream<'static, Result<ContainerEvent, ContainerError>>, ContainerError> {
        let receiver = self.inner.events.subscribe();
        let events = stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((Ok(event), receiver)),
                    // Missed events: the listener's reconciler catches up.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Box::pin(events))
    }
}

/// Stops the runtime's engines at the end of the server's shutdown: a plugged runtime's
/// engines are its own to stop, and [`galaxy_server::ReadinessCheck::close`] runs once
/// every worker has stopped (so no start job launches one behind it).
pub struct StopEnginesOnShutdown(pub InProcessRuntime);

#[async_trait]
impl galaxy_server::ReadinessCheck for StopEnginesOnShutdown {
    fn name(&self) -> &'static str {
        "in-process engines"
    }

    /// In-process engines are ready when the server is.
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }

    async fn close(&self) {
        self.0.shutdown(Duration::from_secs(10)).await;
    }
}

impl InProcessRuntime {
    /// An engine task ended: unless a stop asked for it (or a newer run replaced it),
    /// that is a failure, reported as Docker reports a dead container.
    fn ended(&self, id: &str, run: u64, result: Result<(), galaxy_engine::ServeError>) {
        let mut containers = self.containers();
        let Some(container) = containers.get_mut(id) else {
            return;
        };
        if container.run != run || container.state != "running" {
            return;
        }
        container.state = "exited";
        container.exit_code = Some(1);
        container.stop = None;
        container.task = None;
        match result {
            Ok(()) => container.log("engine ended".to_owned()),
            Err(error) => container.log(format!("engine failed: {error}")),
        }
        let game_id = container.game_id;
        drop(containers);
        self.emit(id, game_id, "die");
    }
}
