//! One `--internal` Docker network per game ([`Addressing::GameNetworks`]): made before the
//! game's container, with a `/29` of the configured range so the engine's address can be
//! fixed, joined by the server's container when the server runs in one, and removed with
//! the game's container.
//!
//! Measured on Docker 20.10 (docs/operations.md, "Engine confinement"): an engine on such
//! a network reaches neither the outside world nor another game's engine; the host
//! reaches it at its address; Docker does not publish ports of an internal network.
//!
//! [`Addressing::GameNetworks`]: crate::Addressing::GameNetworks

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{
    Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use galaxy_core::ports::{ContainerError, ContainerSpec};

use crate::config::{GameNetworks, GameSubnet};
use crate::error;

/// Tries at allocating a free `/29` before giving up: each lost race (another server, or
/// another network made meanwhile) costs one.
const ALLOCATION_TRIES: usize = 8;

/// The name of a game's network: `{container name}-net`.
pub fn network_name(container_name: &str) -> String {
    format!("{container_name}-net")
}

/// A game's network as the container needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GameNetwork {
    /// Docker's name of it.
    pub(crate) name: String,
    /// Its `/29`; the engine's address is fixed in it.
    pub(crate) subnet: GameSubnet,
}

/// The game's network, made when missing (a retried create, or a game created again,
/// finds it), with the server's container joined to it when configured.
pub(crate) async fn ensure(
    docker: &Docker,
    settings: &GameNetworks,
    spec: &ContainerSpec,
) -> Result<GameNetwork, ContainerError> {
    let name = network_name(&spec.name);
    let network = match existing(docker, &name, spec).await? {
        Some(network) => network,
        None => create(docker, settings, spec, &name).await?,
    };
    if let Some(server) = &settings.server_container {
        join(docker, &network.name, server).await?;
    }
    Ok(network)
}

/// The network `name` when it exists and is this game's; an error when it belongs to
/// another game (or to nobody Galaxy knows).
async fn existing(
    docker: &Docker,
    name: &str,
    spec: &ContainerSpec,
) -> Result<Option<GameNetwork>, ContainerError> {
    let what = format!("network {name}");
    let inspected = match docker.inspect_network(name, None).await {
        Ok(inspected) => inspected,
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(None),
        Err(e) => return Err(error::map(&what, e)),
    };
    let game = crate::GAME_LABEL;
    let labels = inspected.labels.unwrap_or_default();
    let subnet = inspected
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default()
        .into_iter()
        .find_map(|config| config.subnet)
        .and_then(|cidr| game_subnet(&cidr));
    match (labels.get(game) == spec.labels.get(game), subnet) {
        (true, Some(subnet)) => Ok(Some(GameNetwork {
            name: name.to_owned(),
            subnet,
        })),
        _ => Err(ContainerError::Failed(format!(
            "{what} already exists for another game or without a /29; remove it first"
        ))),
    }
}

/// A `/29` as Docker reports it (`a.b.c.d/29`), back as a [`GameSubnet`].
fn game_subnet(cidr: &str) -> Option<GameSubnet> {
    if !cidr.ends_with("/29") {
        return None;
    }
    let single: crate::config::Subnets = cidr.parse().ok()?;
    single.slot(0)
}

/// Makes the game's internal network on the first `/29` of the range that no Docker
/// network overlaps, trying the next one when Docker refuses an overlap (a network made
/// meanwhile).
async fn create(
    docker: &Docker,
    settings: &GameNetworks,
    spec: &ContainerSpec,
    name: &str,
) -> Result<GameNetwork, ContainerError> {
    let what = format!("network {name}");
    let mut refused: Vec<String> = Vec::new();
    for _ in 0..ALLOCATION_TRIES {
        let mut taken = taken_subnets(docker).await?;
        taken.extend(refused.iter().cloned());
        let subnet = free_slot(settings, &taken).ok_or_else(|| {
            ContainerError::Failed(format!(
                "no free /29 left in {} for {what}: widen GALAXY_DOCKER_SUBNETS or remove unused networks",
                settings.subnets
            ))
        })?;
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            internal: Some(true),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    ip_range: Some(subnet.dynamic_range()),
                    gateway: Some(subnet.gateway().to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => {
                tracing::info!(network = name, %subnet, "game network created");
                return Ok(GameNetwork {
                    name: name.to_owned(),
                    subnet,
                });
            }
            // A concurrent create of the same game's network won: use it.
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                if let Some(network) = existing(docker, name, spec).await? {
                    return Ok(network);
                }
            }
            // "Pool overlaps with other one on this address space": taken meanwhile.
            Err(BollardError::DockerResponseServerError {
                status_code: 403,
                message,
            }) if message.contains("overlaps") => refused.push(subnet.to_string()),
            Err(e) => return Err(error::map(&what, e)),
        }
    }
    Err(ContainerError::Failed(format!(
        "{what}: no free /29 found in {ALLOCATION_TRIES} tries (the range is contended)"
    )))
}

/// Every IPv4 range a Docker network holds, Galaxy's or not.
async fn taken_subnets(docker: &Docker) -> Result<Vec<String>, ContainerError> {
    let networks = docker
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await
        .map_err(|e| error::map("the network list", e))?;
    Ok(networks
        .into_iter()
        .filter_map(|network| network.ipam?.config)
        .flatten()
        .filter_map(|config| config.subnet)
        .collect())
}

/// The first `/29` of the range that overlaps none of `taken`.
fn free_slot(settings: &GameNetworks, taken: &[String]) -> Option<GameSubnet> {
    (0..settings.subnets.capacity())
        .filter_map(|slot| settings.subnets.slot(slot))
        .find(|subnet| !taken.iter().any(|cidr| subnet.overlaps(cidr)))
}

/// Connects the server's container to the network (a no-op when it already is).
pub(crate) async fn join(
    docker: &Docker,
    network: &str,
    server: &str,
) -> Result<(), ContainerError> {
    let request = NetworkConnectRequest {
        container: server.to_owned(),
        endpoint_config: None,
    };
    match docker.connect_network(network, request).await {
        Ok(()) => Ok(()),
        // "endpoint with name ... already exists in network ...".
        Err(BollardError::DockerResponseServerError {
            status_code: 403,
            message,
        }) if message.contains("already exists") => Ok(()),
        Err(e) => Err(error::map(
            &format!("joining the server's container {server} to network {network}"),
            e,
        )),
    }
}

/// Removes a game's network once its container is gone: disconnects what is still on
/// it first (the servers' containers: this one's, and those of other replicas, which
/// joined on their own), then removes the network. Best effort: a network left behind is
/// reused by the game's next container, and only costs a `/29`.
pub(crate) async fn remove(docker: &Docker, settings: &GameNetworks, container_name: &str) {
    let name = network_name(container_name);
    let attached: Vec<String> = match docker.inspect_network(&name, None).await {
        Ok(network) => network.containers.unwrap_or_default().into_keys().collect(),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => return,
        Err(e) => {
            tracing::warn!(network = name, error = %e, "game network not inspected");
            settings.server_container.iter().cloned().collect()
        }
    };
    for container in attached {
        let request = NetworkDisconnectRequest {
            container: container.clone(),
            force: Some(true),
        };
        match docker.disconnect_network(&name, request).await {
            Ok(()) => {}
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => {
                tracing::warn!(network = name, container, error = %e, "container not disconnected from a game network")
            }
        }
    }
    match docker.remove_network(&name).await {
        Ok(()) => tracing::info!(network = name, "game network removed"),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => tracing::warn!(network = name, error = %e, "game network not removed"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_first_slot_clear_of_every_network_is_taken() {
        let settings = GameNetworks::default();
        let first = free_slot(&settings, &[]).unwrap();
        assert_eq!(first.to_string(), "10.213.0.0/29");
        let taken = [
            "172.17.0.0/16".to_owned(),
            "10.213.0.0/29".to_owned(),
            "10.213.0.8/30".to_owned(),
            "fd00::/64".to_owned(),
        ];
        assert_eq!(
            free_slot(&settings, &taken).unwrap().to_string(),
            "10.213.0.16/29"
        );
        let everything = ["10.0.0.0/8".to_owned()];
        assert_eq!(free_slot(&settings, &everything), None);
        assert_eq!(
            game_subnet("10.213.0.16/29").unwrap().engine().to_string(),
            "10.213.0.18"
        );
        assert_eq!(game_subnet("10.213.0.0/16"), None);
        assert_eq!(network_name("galaxy-game-x"), "galaxy-game-x-net");
    }
}
