//! Loopback addressing's host ports: a new engine container gets a port free on the
//! host that no engine container of the daemon has in its configuration, running or not.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};

use bollard::errors::Error as BollardError;
use galaxy_core::ports::ContainerError;

use crate::{BACKEND_LABEL, DockerRuntime, container, error};

impl DockerRuntime {
    /// The host ports the engine containers on this daemon (of every installation) have
    /// published on 127.0.0.1, running or not: a stopped container's port is free on the
    /// host, but it is fixed in the container's configuration and taken again when the
    /// container starts, so a new container must not get it. (Given to a new game, the
    /// stopped engine's restart would fail on the taken port, and meanwhile its game's
    /// endpoint would answer for the other game's engine.) Running containers' ports come
    /// from the list itself, the others' from one inspect each.
    pub async fn loopback_ports_in_use(&self) -> Result<HashSet<u16>, ContainerError> {
        let summaries = self.labelled(BACKEND_LABEL.0, BACKEND_LABEL.1).await?;
        let mut taken = HashSet::new();
        for summary in summaries {
            let published: Vec<u16> = summary
                .ports
                .iter()
                .flatten()
                .filter_map(|port| port.public_port)
                .collect();
            if !published.is_empty() {
                taken.extend(published);
                continue;
            }
            let Some(id) = summary.id else { continue };
            match self.docker.inspect_container(&id, None).await {
                Ok(inspected) => taken.extend(container::host_port(&inspected)),
                // Removed since the list: its port is free.
                Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => return Err(error::map(&format!("container {id}"), e)),
            }
        }
        Ok(taken)
    }
}

/// How many free ports [`pick`] is shown before it gives up: the kernel
/// hands out ephemeral ports in turn, so a few tries step over any engine's.
const LOOPBACK_PORT_TRIES: usize = 32;

/// A port from `free` (a port free on the host now) that no engine container has in its
/// configuration (`taken`, [`DockerRuntime::loopback_ports_in_use`]).
pub(crate) fn pick(
    taken: &HashSet<u16>,
    mut free: impl FnMut() -> Result<u16, ContainerError>,
) -> Result<u16, ContainerError> {
    for _ in 0..LOOPBACK_PORT_TRIES {
        let port = free()?;
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(ContainerError::Failed(format!(
        "no loopback port free of the {} engine containers' own after {LOOPBACK_PORT_TRIES} tries",
        taken.len()
    )))
}

/// A free port on the host's 127.0.0.1 (the server runs on the Docker host in loopback
/// mode). Free when picked, not reserved: a start that finds it taken fails with Docker's
/// reason and the job is retried with a new container.
pub(crate) fn free_port() -> Result<u16, ContainerError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| ContainerError::Failed(format!("no free loopback port: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_new_loopback_port_is_none_an_engine_container_has() {
        let taken = HashSet::from([40001, 40002]);
        let mut offered = [40001, 40002, 40003].into_iter();
        let port = pick(&taken, || Ok(offered.next().unwrap())).unwrap();
        assert_eq!(port, 40003);
        // A host whose free ports are all engines' says so instead of looping.
        let error = pick(&taken, || Ok(40001)).unwrap_err();
        assert!(error.to_string().contains("after 32 tries"), "{error}");
    }
}
