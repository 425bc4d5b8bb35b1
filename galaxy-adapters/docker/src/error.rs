//! Docker's errors turned into the port's `ContainerError` at the adapter's edge, and the
//! errors of connecting.

use bollard::errors::Error as BollardError;
use galaxy_core::ports::ContainerError;

/// Why a [`DockerRuntime`](crate::DockerRuntime) could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No Docker socket where one was expected.
    #[error(
        "no Docker socket at {0}: is dockerd running? (set DOCKER_HOST=unix:///path/to/docker.sock for another socket)"
    )]
    SocketMissing(String),
    /// `DOCKER_HOST` names a daemon this adapter cannot reach (an unsupported scheme,
    /// TLS).
    #[error("DOCKER_HOST={host} cannot be used: {reason}")]
    UnsupportedHost {
        /// The value.
        host: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The socket exists but the daemon does not answer (or answers nonsense).
    #[error("the Docker daemon does not answer: {0}")]
    Unreachable(#[source] BollardError),
    /// The engines' network could not be found or made.
    #[error("cannot set up the Docker network {name}: {source}")]
    Network {
        /// The configured network.
        name: String,
        /// Docker's answer.
        #[source]
        source: BollardError,
    },
}

impl ConnectError {
    /// Whether the operator's settings are at fault rather than the daemon: `DOCKER_HOST`
    /// names a daemon this adapter cannot use, or the socket refuses this user (not in
    /// the socket's group). Trying again does not help until the configuration changes,
    /// so a supervisor should not restart a server that failed so.
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::UnsupportedHost { .. } => true,
            Self::Unreachable(error) => permission_denied(error),
            Self::SocketMissing(_) | Self::Network { .. } => false,
        }
    }
}

/// Whether an I/O error with `PermissionDenied` is somewhere in `error`'s causes.
fn permission_denied(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Maps a failed Docker call about `what` (e.g. `container galaxy-game-...`).
pub(crate) fn map(what: &str, error: BollardError) -> ContainerError {
    match error {
        BollardError::DockerResponseServerError {
            status_code: 404, ..
        } => ContainerError::NotFound(what.to_owned()),
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => ContainerError::Failed(format!("{what}: Docker answered {status_code}: {message}")),
        BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::HttpClientError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::RequestTimeoutError
        | BollardError::SocketNotFoundError(_) => ContainerError::Unavailable {
            source: Box::new(error),
        },
        other => ContainerError::Failed(format!("{what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_daemon_errors_and_transport_errors_map_to_their_variants() {
        let missing = BollardError::DockerResponseServerError {
            status_code: 404,
            message: "No such container: x".into(),
        };
        assert!(matches!(
            map("container x", missing),
            ContainerError::NotFound(what) if what == "container x"
        ));
        let conflict = BollardError::DockerResponseServerError {
            status_code: 409,
            message: "name in use".into(),
        };
        let mapped = map("container x", conflict).to_string();
        assert!(
            mapped.contains("409") && mapped.contains("name in use"),
            "{mapped}"
        );
        assert!(matches!(
            map("container x", BollardError::RequestTimeoutError),
            ContainerError::Unavailable { .. }
        ));
        assert!(matches!(
            map(
                "container x",
                BollardError::SocketNotFoundError("/s".into())
            ),
            ContainerError::Unavailable { .. }
        ));
    }
}
