#![doc = include_str!("../README.md")]

mod config;
mod container;
mod error;
mod events;
pub mod image;
mod loopback;
mod network;
mod volumes;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerInspectResponse, ContainerSummary, NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures::StreamExt;
use futures::stream::BoxStream;
use galaxy_core::ports::{
    ContainerError, ContainerEvent, ContainerInfo, ContainerRuntime, ContainerSpec,
    CreatedContainer,
};

pub use config::{
    Addressing, DATA_MOUNT, DEFAULT_SUBNETS, DockerConfig, ENGINE_PORT, ENGINE_USER, GAME_PREFIX,
    GameNetworks, GameSubnet, Subnets, SubnetsError,
};
use container::Placement;
pub use container::volume_name;
pub use error::ConnectError;
pub use events::{BACKEND_LABEL, GAME_LABEL};
pub use network::network_name;
pub use volumes::{EngineData, EngineDataExport, IMAGE_LABEL};

/// Where the Docker daemon listens, as `DOCKER_HOST` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// A unix socket (`unix:///var/run/docker.sock`).
    Unix(String),
    /// Plain HTTP over TCP (`tcp://10.0.0.5:2375`): only on a trusted network, since
    /// whoever reaches that port controls the host.
    Tcp(String),
}

impl DockerHost {
    /// Reads a `DOCKER_HOST` value (`None` or empty = the default socket); `tls` is
    /// whether `DOCKER_TLS_VERIFY` asks for TLS, which this adapter does not speak.
    pub fn parse(value: Option<&str>, tls: bool) -> Result<Self, ConnectError> {
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        let Some(value) = value else {
            return Ok(Self::Unix(DEFAULT_SOCKET.to_owned()));
        };
        let unsupported = |reason: &str| ConnectError::UnsupportedHost {
            host: value.to_owned(),
            reason: reason.to_owned(),
        };
        if value.starts_with("unix://") {
            return Ok(Self::Unix(value.to_owned()));
        }
        if let Some(address) = value
            .strip_prefix("tcp://")
            .or_else(|| value.strip_prefix("http://"))
        {
            if tls {
                return Err(unsupported(
                    "DOCKER_TLS_VERIFY asks for TLS, which Galaxy's Docker client does not \
                     speak: mount the daemon's unix socket, or reach a plain tcp:// port over \
                     a private network or an SSH tunnel",
                ));
            }
            let address = address.trim_end_matches('/');
            if address.is_empty() || address.contains('/') {
                return Err(unsupported("expected tcp://host:port"));
            }
            return Ok(Self::Tcp(format!("tcp://{address}")));
        }
        Err(unsupported(
            "only unix:// sockets and plain tcp://host:port are supported (for ssh://, \
             forward the remote socket: ssh -L /tmp/docker.sock:/var/run/docker.sock host)",
        ))
    }
}

/// The daemon's socket when `DOCKER_HOST` names none.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// How long a Docker call may take to answer (a stop adds its grace).
const CLIENT_TIMEOUT_SECS: u64 = 120;

/// The most of a container's output [`ContainerRuntime::logs`] reads.
const LOG_TAIL_BYTES: usize = 64 * 1024;

/// The `ContainerRuntime` port on a Docker daemon; cheap to clone (clones share the
/// connection).
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    config: DockerConfig,
    /// With per-game networks and a server container: the engine containers (and the
    /// ids of their game networks) whose network this process has joined the server's
    /// container to (see [`Self::keep_joined`]).
    joined: Arc<Mutex<HashSet<(String, String)>>>,
}

impl DockerRuntime {
    /// Connects to the daemon `DOCKER_HOST` names (a `unix://` socket or a plain
    /// `tcp://host:port`; unset = `/var/run/docker.sock`), agrees on an API version, and
    /// in [`Addressing::Network`] mode makes sure the network exists. A `DOCKER_HOST` this
    /// adapter cannot use (`ssh://`, `npipe://`, TLS through `DOCKER_TLS_VERIFY`) is
    /// refused with [`ConnectError::UnsupportedHost`], never silently replaced by the
    /// local socket.
    pub async fn connect(config: DockerConfig) -> Result<Self, ConnectError> {
        let host = std::env::var("DOCKER_HOST").ok();
        let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
        let host = DockerHost::parse(host.as_deref(), tls)?;
        Self::connect_host(&host, config).await
    }

    /// [`connect`](Self::connect) to an explicit daemon address.
    pub async fn connect_host(
        host: &DockerHost,
        config: DockerConfig,
    ) -> Result<Self, ConnectError> {
        match host {
            DockerHost::Unix(socket) => Self::connect_socket(socket, config).await,
            DockerHost::Tcp(address) => {
                let docker =
                    Docker::connect_with_http(address, CLIENT_TIMEOUT_SECS, API_DEFAULT_VERSION)
                        .map_err(ConnectError::Unreachable)?;
                let docker = docker
                    .negotiate_version()
                    .await
                    .map_err(ConnectError::Unreachable)?;
                Self::with_client(docker, config).await
            }
        }
    }

    /// [`connect`](Self::connect) through the given socket (`/path` or `unix:///path`).
    pub async fn connect_socket(socket: &str, config: DockerConfig) -> Result<Self, ConnectError> {
        let docker = Docker::connect_with_unix(socket, CLIENT_TIMEOUT_SECS, API_DEFAULT_VERSION)
            .map_err(|e| match e {
                BollardError::SocketNotFoundError(path) => ConnectError::SocketMissing(path),
                other => ConnectError::Unreachable(other),
            })?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(ConnectError::Unreachable)?;
        Self::with_client(docker, config).await
    }

    /// Uses an already connected client (e.g. over another transport).
    pub async fn with_client(docker: Docker, config: DockerConfig) -> Result<Self, ConnectError> {
        if let Addressing::Network(name) = &config.addressing {
            ensure_network(&docker, name).await?;
        }
        Ok(Self {
            docker,
            config,
            joined: Arc::default(),
        })
    }

    /// The bollard client, for what the port does not cover (image builds, tests).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The settings in force.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Where an existing container's engine answers, read back from Docker: the published
    /// loopback port, its fixed address on its game's network, or its name on the shared
    /// network.
    pub async fn engine_endpoint(&self, container_id: &str) -> Result<String, ContainerError> {
        let inspected = self
            .docker
            .inspect_container(container_id, None)
            .await
            .map_err(|e| error::map(&format!("container {container_id}"), e))?;
        let name = inspected
            .name
            .as_deref()
            .unwrap_or(container_id)
            .trim_start_matches('/');
        Ok(container::endpoint_of(
            &self.config.addressing,
            name,
            &inspected,
        ))
    }

    /// Where a new container of `spec` goes: a free loopback port, the shared network, or
    /// its game's network (made now when missing).
    async fn placement(&self, spec: &ContainerSpec) -> Result<Placement, ContainerError> {
        Ok(match &self.config.addressing {
            Addressing::LoopbackPort => {
                let taken = self.loopback_ports_in_use().await?;
                Placement::Loopback(loopback::pick(&taken, loopback::free_port)?)
            }
            Addressing::Network(name) => Placement::Shared(name.clone()),
            Addressing::GameNetworks(settings) => {
                Placement::Game(network::ensure(&self.docker, settings, spec).await?)
            }
        })
    }

    /// Every container (running or not) labelled `key=value`, as Docker lists it.
    async fn labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerSummary>, ContainerError> {
        let filters = HashMap::from([("label", vec![format!("{key}={value}")])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| error::map("the container list", e))
    }

    /// With per-game networks and a server container, makes sure the server's container
    /// is on the game network of the container `inspected` (once per container, network
    /// and process: both ids are remembered, so an engine created again on a network that
    /// outlived its removal, whose other members another replica disconnected, is joined
    /// again). The join made when the game's container was
    /// created is not enough: a server container made anew (an upgrade with
    /// `docker-compose up`, which drops networks joined at run time) or another
    /// replica's container was never joined, and would reach no engine. Start and inspect
    /// call this, so the reconciler's first pass after a start-up joins every network of
    /// the installation, and every replica joins each running game's within a pass. A
    /// failure is logged: the caller's own work goes on (and fails on its own if the
    /// engine cannot be reached).
    async fn keep_joined(&self, inspected: &ContainerInspectResponse) {
        let Addressing::GameNetworks(settings) = &self.config.addressing else {
            return;
        };
        let Some(server) = &settings.server_container else {
            return;
        };
        let Some(name) = inspected.name.as_deref() else {
            return;
        };
        let network = network_name(name.trim_start_matches('/'));
        let id = inspected
            .network_settings
            .as_ref()
            .and_then(|settings| settings.networks.as_ref())
            .and_then(|networks| networks.get(&network))
            .and_then(|endpoint| endpoint.network_id.clone());
        let (Some(container), Some(network_id)) = (inspected.id.clone(), id) else {
            return;
        };
        let id = (container, network_id);
        let known = |joined: &HashSet<(String, String)>| joined.contains(&id);
        if known(&self.joined.lock().unwrap_or_else(PoisonError::into_inner)) {
            return;
        }
        match network::join(&self.docker, &network, server).await {
            Ok(()) => {
                let mut joined = self.joined.lock().unwrap_or_else(PoisonError::into_inner);
                joined.insert(id);
            }
            Err(error) => {
                tracing::warn!(%error, network, server, "the server's container is not on a game network");
            }
        }
    }

    async fn pull(&self, image: &str) -> Result<(), ContainerError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            let step = step.map_err(|e| error::map(&format!("image {image}"), e))?;
            if let Some(detail) = step.error_detail {
                return Err(ContainerError::Failed(format!(
                    "pulling {image} failed: {}",
                    detail.message.unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// The answer to a create whose name is taken: the existing container when it is the
    /// same game on the same image (a retried create), an error otherwise.
    async fn existing(&self, spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError> {
        let what = format!("container {}", spec.name);
        let inspected = self
            .docker
            .inspect_container(&spec.name, None)
            .await
            .map_err(|e| error::map(&what, e))?;
        let labels = container::labels(&inspected);
        let image = inspected.config.as_ref().and_then(|c| c.image.as_deref());
        let instance = galaxy_core::service::runtime::INSTANCE_LABEL;
        let same = labels.get(GAME_LABEL) == spec.labels.get(GAME_LABEL)
            && labels.get(instance) == spec.labels.get(instance)
            && image == Some(spec.engine.as_str());
        if !same {
            return Err(ContainerError::Failed(format!(
                "{what} already exists for another game, image or installation \
                 (GALAXY_INSTANCE); remove it first"
            )));
        }
        Ok(CreatedContainer {
            container_id: inspected.id.clone().unwrap_or_else(|| spec.name.clone()),
            engine_endpoint: container::endpoint_of(
                &self.config.addressing,
                &spec.name,
                &inspected,
            ),
        })
    }

    async fn create_volume(&self, spec: &ContainerSpec) -> Result<(), ContainerError> {
        let name = volume_name(&spec.name);
        // Creating an existing named volume is a no-op in Docker: a re-created game keeps
        // its data.
        // The volume names its image, so its data can be copied should its container
        // vanish (`export_engine_data`).
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(volumes::IMAGE_LABEL.to_owned(), spec.engine.clone());
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(drop)
            .map_err(|e| error::map(&format!("volume {name}"), e))
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    /// Inspects the image; when missing, pulls it if configured, else says how to build it.
    async fn ensure_image(&self, engine: &str) -> Result<(), ContainerError> {
        match self.docker.inspect_image(engine).await {
            Ok(_) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) if self.config.pull_missing_images => self.pull(engine).await,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Err(ContainerError::NotFound(format!(
                "engine image {engine} (build it with `galaxy-cli engine image --tag {engine}`, \
                 or enable registry pulls)"
            ))),
            Err(e) => Err(error::map(&format!("image {engine}"), e)),
        }
    }

    /// Creates `spec.name`, confined (see the crate's README), with its labels, its data
    /// volume `{name}-data` on `/data`, the restart policy, the limits, the token as
    /// `GALAXY_ENGINE_TOKEN`, and the configured addressing: its game's network is made
    /// first, or its loopback port picked now, so the endpoint is final.
    async fn create(&self, spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError> {
        self.create_volume(spec).await?;
        let placement = self.placement(spec).await?;
        let body = container::create_body(spec, &self.config, &placement);
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        match self.docker.create_container(Some(options), body).await {
            Ok(created) => Ok(CreatedContainer {
                container_id: created.id,
                engine_endpoint: placement.endpoint(&spec.name),
            }),
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => self.existing(spec).await,
            Err(e) => Err(error::map(&format!("container {}", spec.name), e)),
        }
    }

    /// Starts it; a no-op when it runs. With per-game networks, the server's container
    /// joins the game's network first if this process has not seen it joined.
    async fn start(&self, container_id: &str) -> Result<(), ContainerError> {
        let what = format!("container {container_id}");
        if matches!(self.config.addressing, Addressing::GameNetworks(_)) {
            let inspected = self
                .docker
                .inspect_container(container_id, None)
                .await
                .map_err(|e| error::map(&what, e))?;
            self.keep_joined(&inspected).await;
        }
        self.docker
            .start_container(container_id, None)
            .await
            .map_err(|e| error::map(&what, e))
    }

    /// `docker stop -t grace` (SIGTERM, SIGKILL after the grace); a no-op when stopped.
    /// A stop keeps Docker from restarting it until the next start.
    async fn stop(&self, container_id: &str, grace: Duration) -> Result<(), ContainerError> {
        let seconds = i32::try_from(grace.as_secs_f64().ceil() as u64).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        // The call lasts up to the grace: give the client that much more patience.
        let docker = self
            .docker
            .clone()
            .with_timeout(grace + self.docker.timeout());
        docker
            .stop_container(container_id, Some(options))
            .await
            .map_err(|e| error::map(&format!("container {container_id}"), e))
    }

    /// `docker rm -f`: removes it even if it runs; its data volume stays. Its game's
    /// network goes with it (the server's container disconnected first).
    async fn remove(&self, container_id: &str) -> Result<(), ContainerError> {
        let what = format!("container {container_id}");
        let name = match &self.config.addressing {
            Addressing::GameNetworks(_) => {
                let inspected = self
                    .docker
                    .inspect_container(container_id, None)
                    .await
                    .map_err(|e| error::map(&what, e))?;
                inspected
                    .name
                    .map(|name| name.trim_start_matches('/').to_owned())
            }
            _ => None,
        };
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(false)
            .build();
        self.docker
            .remove_container(container_id, Some(options))
            .await
            .map_err(|e| error::map(&what, e))?;
        if let (Addressing::GameNetworks(settings), Some(name)) = (&self.config.addressing, name) {
            network::remove(&self.docker, settings, &name).await;
        }
        Ok(())
    }

    /// Reads its state; with per-game networks, the server's container joins the game's
    /// network when this process has not seen it joined.
    async fn inspect(&self, container_id: &str) -> Result<ContainerInfo, ContainerError> {
        let inspected = self
            .docker
            .inspect_container(container_id, None)
            .await
            .map_err(|e| error::map(&format!("container {container_id}"), e))?;
        self.keep_joined(&inspected).await;
        Ok(container::info(container_id, &inspected))
    }

    /// `docker logs --tail <lines>` (standard output and error), split into lines;
    /// reads at most 64 KiB of it, so a line without end costs no more.
    async fn logs(&self, container_id: &str, lines: usize) -> Result<Vec<String>, ContainerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut chunks = self.docker.logs(container_id, Some(options));
        let mut bytes = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| error::map(&format!("container {container_id}"), e))?;
            let room = LOG_TAIL_BYTES.saturating_sub(bytes.len());
            let chunk = chunk.as_ref();
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() >= LOG_TAIL_BYTES {
                break;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        Ok(all[from..].iter().map(|line| (*line).to_owned()).collect())
    }

    /// Every container (running or not) with the label, each inspected for its restart
    /// count and health; one removed in between is left out.
    async fn list_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerInfo>, ContainerError> {
        let summaries = self.labelled(key, value).await?;
        let mut found = Vec::with_capacity(summaries.len());
        for id in summaries.into_iter().filter_map(|summary| summary.id) {
            match self.inspect(&id).await {
                Ok(info) => found.push(info),
                Err(ContainerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Docker's events for containers labelled `galaxy.backend=1`, actions verbatim.
    async fn events(
        &self,
    ) -> Result<BoxStream<'static, Result<ContainerEvent, ContainerError>>, ContainerError> {
        Ok(events::stream(&self.docker))
    }
}

/// Makes the user-defined bridge network `name` unless it exists.
async fn ensure_network(docker: &Docker, name: &str) -> Result<(), ConnectError> {
    let failed = |source| ConnectError::Network {
        name: name.to_owned(),
        source,
    };
    match docker.inspect_network(name, None).await {
        Ok(_) => return Ok(()),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(failed(e)),
    }
    let request = NetworkCreateRequest {
        name: name.to_owned(),
        driver: Some("bridge".into()),
        labels: Some(HashMap::from([(
            BACKEND_LABEL.0.to_owned(),
            BACKEND_LABEL.1.to_owned(),
        )])),
        ..Default::default()
    };
    match docker.create_network(request).await {
        Ok(_) => Ok(()),
        // Made by another replica meanwhile.
        Err(BollardError::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod host_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn docker_host_is_honoured_or_refused_with_a_reason() {
        assert_eq!(
            DockerHost::parse(None, false).unwrap(),
            DockerHost::Unix(DEFAULT_SOCKET.to_owned())
        );
        assert_eq!(
            DockerHost::parse(Some(" "), false).unwrap(),
            DockerHost::Unix(DEFAULT_SOCKET.to_owned())
        );
        assert_eq!(
            DockerHost::parse(Some("unix:///run/user/1000/docker.sock"), false).unwrap(),
            DockerHost::Unix("unix:///run/user/1000/docker.sock".to_owned())
        );
        assert_eq!(
            DockerHost::parse(Some("tcp://10.0.0.5:2375/"), false).unwrap(),
            DockerHost::Tcp("tcp://10.0.0.5:2375".to_owned())
        );
        for (value, tls, reason) in [
            ("tcp://10.0.0.5:2376", true, "TLS"),
            ("ssh://ops@host", false, "ssh -L"),
            ("npipe:////./pipe/docker_engine", false, "only unix://"),
            ("tcp://", false, "tcp://host:port"),
            ("tcp://host:2375/path", false, "tcp://host:port"),
        ] {
            let error = DockerHost::parse(Some(value), tls).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("DOCKER_HOST={value} cannot be used"))
                    && error.contains(reason),
                "{value}: {error}"
            );
        }
    }
}
