//! Pure translations between the port's types and Docker's: the confined create body of a
//! game's container, where its engine answers, and what an inspect answer means for the
//! platform.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerState, ContainerStateStatusEnum,
    EndpointIpamConfig, EndpointSettings, HealthStatusEnum, HostConfig, Mount, MountType,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use galaxy_core::domain::health::ContainerHealth;
use galaxy_core::ports::{ContainerInfo, ContainerSpec};

use crate::config::{Addressing, DATA_MOUNT, DockerConfig, ENGINE_PORT};
use crate::network::{GameNetwork, network_name};

/// The name of a game's data volume: `{container name}-data`.
pub fn volume_name(container_name: &str) -> String {
    format!("{container_name}-data")
}

/// Docker's key of the engine's port.
pub(crate) fn port_key() -> String {
    format!("{ENGINE_PORT}/tcp")
}

/// Where a container's engine is placed on the network, decided before its create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// On the default bridge, port 8080 published on `127.0.0.1:<port>`.
    Loopback(u16),
    /// On the shared user-defined network, under its name.
    Shared(String),
    /// Alone on its game's network, at the network's engine address.
    Game(GameNetwork),
}

impl Placement {
    /// The engine's base URL.
    pub(crate) fn endpoint(&self, name: &str) -> String {
        match self {
            Self::Loopback(port) => format!("http://127.0.0.1:{port}"),
            Self::Shared(_) => format!("http://{name}:{ENGINE_PORT}"),
            Self::Game(network) => format!("http://{}:{ENGINE_PORT}", network.subnet.engine()),
        }
    }
}

/// Where an existing container's engine answers, from its inspect answer: the published
/// loopback port, its fixed address on its game's network, or its name on the shared one.
pub(crate) fn endpoint_of(
    addressing: &Addressing,
    name: &str,
    inspected: &ContainerInspectResponse,
) -> String {
    match addressing {
        Addressing::LoopbackPort => match host_port(inspected) {
            Some(port) => Placement::Loopback(port).endpoint(name),
            None => format!("http://{name}:{ENGINE_PORT}"),
        },
        Addressing::Network(_) => format!("http://{name}:{ENGINE_PORT}"),
        Addressing::GameNetworks(_) => match game_address(inspected, &network_name(name)) {
            Some(address) => format!("http://{address}:{ENGINE_PORT}"),
            None => format!("http://{name}:{ENGINE_PORT}"),
        },
    }
}

/// The address fixed for the container on `network` (set at create, so known before
/// the container first runs).
fn game_address(inspected: &ContainerInspectResponse, network: &str) -> Option<String> {
    let endpoint = inspected
        .network_settings
        .as_ref()?
        .networks
        .as_ref()?
        .get(network)?;
    endpoint
        .ipam_config
        .as_ref()
        .and_then(|ipam| ipam.ipv4_address.clone())
        .filter(|address| !address.is_empty())
}

/// The create body of a game's container, confined: read-only root file system with the
/// data volume as the only writable path, the configured non-root user, no capability,
/// no privilege gain, memory (without extra swap), CPU and process limits, and the
/// network `placement`.
pub(crate) fn create_body(
    spec: &ContainerSpec,
    config: &DockerConfig,
    placement: &Placement,
) -> ContainerCreateBody {
    let mut env = spec.env.clone();
    // Inserted last, so a spec cannot move the engine off its port, its volume or its
    // credential.
    env.insert(
        "GALAXY_ENGINE_ADDR".into(),
        format!("0.0.0.0:{ENGINE_PORT}"),
    );
    env.insert("GALAXY_ENGINE_DATA_DIR".into(), DATA_MOUNT.into());
    env.insert("GALAXY_ENGINE_TOKEN".into(), spec.token.expose().to_owned());
    let restart_policy = if config.max_restarts == 0 {
        RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }
    } else {
        RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(i64::from(config.max_restarts)),
        }
    };
    let limits = &spec.limits;
    let memory = limits
        .memory_bytes
        .and_then(|bytes| i64::try_from(bytes).ok());
    let mut host_config = HostConfig {
        mounts: Some(vec![Mount {
            target: Some(DATA_MOUNT.into()),
            source: Some(volume_name(&spec.name)),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        }]),
        restart_policy: Some(restart_policy),
        memory,
        // Swap limit equal to the memory limit: no swap on top of it.
        memory_swap: memory,
        nano_cpus: limits.cpus.map(nano_cpus),
        pids_limit: limits.pids.map(i64::from),
        // An engine needs no privilege: it listens on a high port and writes its volume.
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        ..Default::default()
    };
    let mut networking_config = None;
    let mut join = |network: &str, endpoint: EndpointSettings| {
        host_config.network_mode = Some(network.to_owned());
        networking_config = Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint)])),
        });
    };
    match placement {
        Placement::Loopback(port) => {
            host_config.port_bindings = Some(HashMap::from([(
                port_key(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(port.to_string()),
                }]),
            )]));
        }
        Placement::Shared(network) => join(
            network,
            EndpointSettings {
                aliases: Some(vec![spec.name.clone()]),
                ..Default::default()
            },
        ),
        Placement::Game(network) => join(
            &network.name,
            EndpointSettings {
                aliases: Some(vec![spec.name.clone()]),
                ipam_config: Some(EndpointIpamConfig {
                    ipv4_address: Some(network.subnet.engine().to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
    }
    ContainerCreateBody {
        image: Some(spec.engine.clone()),
        user: config.engine_user.clone(),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: Some(vec![port_key()]),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

/// Docker's `NanoCpus` for a limit in cores; a limit that is not a positive number is
/// no limit.
fn nano_cpus(cores: f64) -> i64 {
    if cores.is_finite() && cores > 0.0 {
        // Saturating float-to-int conversion: absurd limits clamp instead of wrapping.
        (cores * 1e9).round() as i64
    } else {
        0
    }
}

/// The platform's view of an inspect answer.
pub(crate) fn info(fallback_id: &str, inspected: &ContainerInspectResponse) -> ContainerInfo {
    let state = inspected.state.as_ref();
    ContainerInfo {
        container_id: inspected
            .id
            .clone()
            .unwrap_or_else(|| fallback_id.to_owned()),
        state: state
            .and_then(|s| s.status)
            .map(|status| status.to_string())
            .unwrap_or_default(),
        restart_count: inspected
            .restart_count
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        exit_code: state.and_then(exit_code),
        health: state
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .and_then(health),
        labels: labels(inspected),
    }
}

/// The container's labels, sorted.
pub(crate) fn labels(inspected: &ContainerInspectResponse) -> BTreeMap<String, String> {
    inspected
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The host port the engine's port is published on, from the container's configuration
/// (fixed at create, so it is there before start and across restarts).
pub(crate) fn host_port(inspected: &ContainerInspectResponse) -> Option<u16> {
    inspected
        .host_config
        .as_ref()?
        .port_bindings
        .as_ref()?
        .get(&port_key())?
        .as_ref()?
        .iter()
        .find_map(|binding| binding.host_port.as_deref()?.parse().ok())
}

/// Docker's exit code of the last run, once it ended: Docker keeps reporting the code
/// (0 before the first run) in every state, so it only counts once the container is
/// `exited`, `dead` or `restarting`.
fn exit_code(state: &ContainerState) -> Option<i64> {
    match state.status? {
        ContainerStateStatusEnum::EXITED
        | ContainerStateStatusEnum::DEAD
        | ContainerStateStatusEnum::RESTARTING => state.exit_code,
        _ => None,
    }
}

fn health(status: HealthStatusEnum) -> Option<ContainerHealth> {
    match status {
        HealthStatusEnum::STARTING => Some(ContainerHealth::Starting),
        HealthStatusEnum::HEALTHY => Some(ContainerHealth::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(ContainerHealth::Unhealthy),
        HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bollard::models::{ContainerConfig, Health};
    use galaxy_core::domain::GameId;
    use galaxy_core::domain::engine_auth::EngineToken;
    use galaxy_core::ports::EngineLimits;

    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "galaxy-game-x".into(),
            game_id: GameId::from_uuid(Default::default()),
            engine: "galaxy-engine:0.2".into(),
            labels: BTreeMap::from([("galaxy.backend".into(), "1".into())]),
            env: BTreeMap::from([
                ("GALAXY_ENGINE_ADDR".into(), "0.0.0.0:1".into()),
                (
                    "GALAXY_ENGINE_TOKEN".into(),
                    "chosen by the operator".into(),
                ),
                ("RULES".into(), "classic".into()),
            ]),
            token: EngineToken::new("the-game-token"),
            limits: EngineLimits {
                memory_bytes: Some(128 << 20),
                cpus: Some(0.5),
                pids: Some(64),
            },
        }
    }

    fn game_network() -> GameNetwork {
        GameNetwork {
            name: "galaxy-game-x-net".into(),
            subnet: crate::config::Subnets::default().slot(3).unwrap(),
        }
    }

    #[test]
    fn every_container_is_confined_and_gets_its_token_volume_and_limits() {
        let body = create_body(&spec(), &DockerConfig::default(), &Placement::Loopback(1));
        let env = body.env.unwrap();
        assert!(env.contains(&"GALAXY_ENGINE_ADDR=0.0.0.0:8080".to_owned()));
        assert!(env.contains(&"GALAXY_ENGINE_DATA_DIR=/data".to_owned()));
        assert!(env.contains(&"GALAXY_ENGINE_TOKEN=the-game-token".to_owned()));
        assert!(env.contains(&"RULES=classic".to_owned()));
        assert_eq!(env.len(), 4);
        assert_eq!(body.user.as_deref(), Some("65534:65534"));
        let host = body.host_config.unwrap();
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        assert_eq!(host.memory, Some(128 << 20));
        assert_eq!(host.memory_swap, Some(128 << 20), "no swap on top");
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.pids_limit, Some(64));
        let mount = &host.mounts.unwrap()[0];
        assert_eq!(mount.source.as_deref(), Some("galaxy-game-x-data"));
        assert_eq!(mount.target.as_deref(), Some("/data"));
        let policy = host.restart_policy.unwrap();
        assert_eq!(policy.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(policy.maximum_retry_count, Some(5));

        // No limit and the image's own user, when so configured.
        let mut open = spec();
        open.limits = EngineLimits::default();
        let config = DockerConfig {
            engine_user: None,
            ..DockerConfig::default()
        };
        let body = create_body(&open, &config, &Placement::Loopback(1));
        let host = body.host_config.unwrap();
        assert_eq!(
            (body.user, host.memory, host.pids_limit),
            (None, None, None)
        );
        assert_eq!(host.readonly_rootfs, Some(true), "always");
    }

    #[test]
    fn a_loopback_container_publishes_its_port_on_127_0_0_1_only() {
        let placement = Placement::Loopback(40123);
        let body = create_body(&spec(), &DockerConfig::default(), &placement);
        let host = body.host_config.unwrap();
        let binding = &host.port_bindings.unwrap()["8080/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("40123"));
        assert_eq!(host.network_mode, None);
        assert_eq!(
            placement.endpoint("galaxy-game-x"),
            "http://127.0.0.1:40123"
        );
    }

    #[test]
    fn a_game_network_container_is_alone_at_its_fixed_address_and_publishes_nothing() {
        let placement = Placement::Game(game_network());
        let body = create_body(&spec(), &DockerConfig::default(), &placement);
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("galaxy-game-x-net"));
        assert_eq!(host.port_bindings, None);
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        let endpoint = &endpoints["galaxy-game-x-net"];
        assert_eq!(
            endpoint
                .ipam_config
                .as_ref()
                .unwrap()
                .ipv4_address
                .as_deref(),
            Some("10.213.0.26")
        );
        assert_eq!(
            placement.endpoint("galaxy-game-x"),
            "http://10.213.0.26:8080"
        );

        // Read back from an inspect answer that shows it (before and after a start).
        let inspected = ContainerInspectResponse {
            network_settings: Some(bollard::models::NetworkSettings {
                networks: Some(endpoints),
                ..Default::default()
            }),
            ..Default::default()
        };
        let addressing = Addressing::default();
        assert_eq!(
            endpoint_of(&addressing, "galaxy-game-x", &inspected),
            "http://10.213.0.26:8080"
        );
    }

    #[test]
    fn a_shared_network_container_joins_the_network_under_its_name_and_publishes_nothing() {
        let config = DockerConfig {
            addressing: Addressing::Network("galaxy".into()),
            max_restarts: 0,
            ..DockerConfig::default()
        };
        let placement = Placement::Shared("galaxy".into());
        let body = create_body(&spec(), &config, &placement);
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("galaxy"));
        assert_eq!(host.port_bindings, None);
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            endpoints["galaxy"].aliases,
            Some(vec!["galaxy-game-x".to_owned()])
        );
        assert_eq!(
            placement.endpoint("galaxy-game-x"),
            "http://galaxy-game-x:8080"
        );
        assert_eq!(
            endpoint_of(
                &config.addressing,
                "galaxy-game-x",
                &ContainerInspectResponse::default()
            ),
            "http://galaxy-game-x:8080"
        );
    }

    #[test]
    fn nonsense_cpu_limits_are_no_limit() {
        assert_eq!(nano_cpus(f64::NAN), 0);
        assert_eq!(nano_cpus(-1.0), 0);
        assert_eq!(nano_cpus(2.0), 2_000_000_000);
    }

    #[test]
    fn inspect_answers_map_state_restarts_health_labels_and_port() {
        let inspected = ContainerInspectResponse {
            id: Some("abc".into()),
            restart_count: Some(2),
            state: Some(ContainerState {
                status: Some(ContainerStateStatusEnum::RESTARTING),
                exit_code: Some(3),
                health: Some(Health {
                    status: Some(HealthStatusEnum::UNHEALTHY),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                labels: Some(HashMap::from([("galaxy.backend".into(), "1".into())])),
                ..Default::default()
            }),
            host_config: create_body(
                &spec(),
                &DockerConfig::default(),
                &Placement::Loopback(40999),
            )
            .host_config,
            ..Default::default()
        };
        let info = info("fallback", &inspected);
        assert_eq!(info.container_id, "abc");
        assert_eq!(info.state, "restarting");
        assert_eq!(info.restart_count, 2);
        assert_eq!(info.exit_code, Some(3));
        assert!(!info.exited_for_good(), "a restart is pending");
        assert_eq!(info.health, Some(ContainerHealth::Unhealthy));
        assert_eq!(info.labels["galaxy.backend"], "1");
        assert_eq!(host_port(&inspected), Some(40999));
        let bare = super::info("fallback", &ContainerInspectResponse::default());
        assert_eq!(
            (bare.container_id.as_str(), bare.restart_count),
            ("fallback", 0)
        );
        assert_eq!(bare.health, None);
        let running = ContainerState {
            status: Some(ContainerStateStatusEnum::RUNNING),
            exit_code: Some(0),
            ..Default::default()
        };
        assert_eq!(exit_code(&running), None, "no exit while it runs");
        let exited = ContainerState {
            status: Some(ContainerStateStatusEnum::EXITED),
            exit_code: Some(1),
            ..Default::default()
        };
        assert_eq!(exit_code(&exited), Some(1));
    }
}
