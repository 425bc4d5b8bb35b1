//! The Docker runtime's settings.

/// The port every engine listens on inside its container (`GALAXY_ENGINE_ADDR=0.0.0.0:8080`).
pub const ENGINE_PORT: u16 = 8080;

/// Where each game's data volume is mounted (`GALAXY_ENGINE_DATA_DIR=/data`).
pub const DATA_MOUNT: &str = "/data";

/// How the platform reaches the engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// Publish the engine's port 8080 on the host's 127.0.0.1, at a free host port the
    /// runtime picks at create: the endpoint is `http://127.0.0.1:<host port>`. The port is
    /// fixed in the container's configuration, so it stays the same across Docker's
    /// restarts (an ephemeral `-p 127.0.0.1::8080` port changes on every start). For a
    /// server that runs on the Docker host itself.
    LoopbackPort,
    /// Attach each container to this user-defined Docker network (created at connect when
    /// missing); the endpoint is `http://galaxy-game-{game_id}:8080`, resolved by Docker's
    /// DNS. For a server that runs in a container on the same network. Nothing is
    /// published on the host.
    Network(String),
}

/// Settings of a [`DockerRuntime`](crate::DockerRuntime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// How engines are reached.
    pub addressing: Addressing,
    /// Docker's `on-failure` restart policy: how many times Docker restarts a crashed
    /// engine (0 turns the policy off: `no`).
    pub max_restarts: u32,
    /// Pull an image that is missing locally from its registry. Off by default: images
    /// are built locally (`galaxy-cli engine image`) and a pull would only fail slowly.
    pub pull_missing_images: bool,
}

impl Default for DockerConfig {
    /// Loopback ports, five restarts, no pulls.
    fn default() -> Self {
        Self {
            addressing: Addressing::LoopbackPort,
            max_restarts: 5,
            pull_missing_images: false,
        }
    }
}
