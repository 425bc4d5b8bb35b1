//! How engines are confined and authenticated: their resource limits, their user, the
//! secret their credentials derive from, the engines allowed without a credential check,
//! and how Docker engines are networked (docs/operations.md, "Engine confinement").

use std::collections::BTreeSet;

use galaxy_core::domain::game::EngineName;
use galaxy_core::ports::EngineLimits;
#[cfg(feature = "docker")]
use galaxy_docker::Subnets;
use secrecy::{ExposeSecret, SecretString};

use super::super::{ConfigError, Vars};

/// The shortest `GALAXY_ENGINE_SECRET` accepted: the engine tokens are only as strong as
/// it.
pub const MIN_SECRET_CHARS: usize = 32;

/// How Docker engines are networked (`GALAXY_DOCKER_NETWORK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerNetwork {
    /// `per-game`: each engine alone on an `--internal` network of its own.
    PerGame,
    /// `loopback`: Docker's default bridge, the port published on 127.0.0.1.
    Loopback,
    /// `network:<name>`: one user-defined network shared by every engine.
    Shared(String),
}

/// The engine part of the runtime's configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// `GALAXY_ENGINE_MEMORY`, `GALAXY_ENGINE_CPUS`, `GALAXY_ENGINE_PIDS`.
    pub limits: EngineLimits,
    /// `GALAXY_ENGINE_USER`; `None` keeps each image's own user.
    pub user: Option<String>,
    /// `GALAXY_ENGINE_SECRET`; `None`: the server keeps a generated one in its data
    /// directory.
    pub secret: Option<SecretString>,
    /// `GALAXY_ENGINES_WITHOUT_TOKEN`.
    pub without_token: BTreeSet<EngineName>,
    /// `GALAXY_DOCKER_NETWORK`.
    pub docker_network: DockerNetwork,
    /// `GALAXY_DOCKER_SUBNETS` (the type is the Docker adapter's, so the field comes
    /// with the `docker` feature).
    #[cfg(feature = "docker")]
    pub docker_subnets: Subnets,
    /// `GALAXY_DOCKER_SERVER_CONTAINER`.
    pub docker_server_container: Option<String>,
}

/// `none` (no limit) or a value `parse` accepts.
fn limit<T>(
    v: &Vars<'_>,
    variable: &'static str,
    expected: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ConfigError> {
    v.parse_with(variable, expected, |s| match s {
        "none" => Some(None),
        other => parse(other).map(Some),
    })
}

/// A byte count with an optional binary unit: `536870912`, `512MiB`, `512M`, `1GiB`, `1G`.
pub fn bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

/// A user as Docker takes it: `uid[:gid]` or names, of `[A-Za-z0-9_.-]` (also the form of
/// a network or container name, without the `:`).
fn docker_name(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split(':').collect();
    let word = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    (parts.len() <= 2 && parts.iter().all(|p| word(p))).then(|| text.to_owned())
}

/// Reads every engine setting; `registered` are the engine names of both registries.
pub(super) fn read(
    v: &Vars<'_>,
    registered: &BTreeSet<EngineName>,
) -> Result<EngineSettings, ConfigError> {
    let memory = limit(
        v,
        "GALAXY_ENGINE_MEMORY",
        "none or a size from 16MiB to 64GiB such as 512MiB or 2GiB",
        |s| bytes(s).filter(|n| ((16 << 20)..=(64 << 30)).contains(n)),
    )?;
    let cpus = limit(
        v,
        "GALAXY_ENGINE_CPUS",
        "none or a number of cores from 0.01 to 256 such as 0.5",
        |s| {
            s.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && (0.01..=256.0).contains(n))
        },
    )?;
    let pids = limit(
        v,
        "GALAXY_ENGINE_PIDS",
        "none or a number from 16 to 65536",
        |s| s.parse().ok().filter(|n| (16..=65536).contains(n)),
    )?;
    let user = v.parse_with(
        "GALAXY_ENGINE_USER",
        "image, or uid[:gid] (names of letters, digits, '_', '.', '-' also do)",
        |s| match s {
            "image" => Some(None),
            other => docker_name(other).map(Some),
        },
    )?;
    let secret = v.secret("GALAXY_ENGINE_SECRET");
    if let Some(secret) = &secret
        && secret.expose_secret().chars().count() < MIN_SECRET_CHARS
    {
        return Err(ConfigError::Invalid {
            variable: "GALAXY_ENGINE_SECRET",
            value: "<redacted>".to_owned(),
            expected: format!("at least {MIN_SECRET_CHARS} characters"),
        });
    }
    let without_token = match v.raw("GALAXY_ENGINES_WITHOUT_TOKEN") {
        None => BTreeSet::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                let invalid = |why: String| ConfigError::Invalid {
                    variable: "GALAXY_ENGINES_WITHOUT_TOKEN",
                    value: name.to_owned(),
                    expected: why,
                };
                let parsed = EngineName::parse(name)
                    .map_err(|e| invalid(format!("comma-separated engine names ({e})")))?;
                if registered.contains(&parsed) {
                    Ok(parsed)
                } else {
                    Err(invalid(
                        "names of engines registered in GALAXY_ENGINES or GALAXY_PROCESS_ENGINES"
                            .to_owned(),
                    ))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    let docker_network = v.parse_with(
        "GALAXY_DOCKER_NETWORK",
        "per-game, loopback or network:<name>",
        |s| match s {
            "per-game" => Some(DockerNetwork::PerGame),
            "loopback" => Some(DockerNetwork::Loopback),
            other => other
                .strip_prefix("network:")
                .filter(|name| docker_name(name).is_some() && !name.contains(':'))
                .map(|name| DockerNetwork::Shared(name.to_owned())),
        },
    )?;
    #[cfg(feature = "docker")]
    let docker_subnets = v.raw("GALAXY_DOCKER_SUBNETS").map_or_else(
        || Ok(Subnets::default()),
        |s| {
            s.parse()
                .map_err(|e: galaxy_docker::SubnetsError| ConfigError::Invalid {
                    variable: "GALAXY_DOCKER_SUBNETS",
                    value: s.to_owned(),
                    expected: format!("an IPv4 range such as 10.213.0.0/16 ({e})"),
                })
        },
    )?;
    let docker_server_container = v
        .raw("GALAXY_DOCKER_SERVER_CONTAINER")
        .map(|name| {
            docker_name(name)
                .filter(|_| !name.contains(':'))
                .ok_or_else(|| ConfigError::Invalid {
                    variable: "GALAXY_DOCKER_SERVER_CONTAINER",
                    value: name.to_owned(),
                    expected: "a container name or id".to_owned(),
                })
        })
        .transpose()?;
    Ok(EngineSettings {
        limits: EngineLimits {
            memory_bytes: memory,
            cpus,
            pids,
        },
        user,
        secret,
        without_token,
        docker_network,
        #[cfg(feature = "docker")]
        docker_subnets,
        docker_server_container,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;

    fn engines(pairs: &[(&str, &str)]) -> Result<EngineSettings, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(&vars).map(|c| c.runtime.engines)
    }

    #[test]
    fn defaults_confine_every_engine() {
        let settings = engines(&[]).unwrap();
        assert_eq!(
            settings.limits,
            EngineLimits {
                memory_bytes: Some(512 << 20),
                cpus: Some(1.0),
                pids: Some(256),
            }
        );
        assert_eq!(settings.user.as_deref(), Some("65534:65534"));
        assert!(settings.secret.is_none() && settings.without_token.is_empty());
        assert_eq!(settings.docker_network, DockerNetwork::PerGame);
        #[cfg(feature = "docker")]
        assert_eq!(settings.docker_subnets.to_string(), "10.213.0.0/16");
        assert_eq!(settings.docker_server_container, None);
    }

    #[test]
    #[cfg(feature = "docker")]
    fn every_setting_parses_its_forms() {
        let settings = engines(&[
            ("GALAXY_ENGINE_MEMORY", "2GiB"),
            ("GALAXY_ENGINE_CPUS", "0.5"),
            ("GALAXY_ENGINE_PIDS", "none"),
            ("GALAXY_ENGINE_USER", "image"),
            ("GALAXY_ENGINE_SECRET", &"s".repeat(32)),
            (
                "GALAXY_ENGINES",
                "reference=galaxy-engine:0.2; classic=pbem:1",
            ),
            ("GALAXY_ENGINES_WITHOUT_TOKEN", "classic"),
            ("GALAXY_DOCKER_NETWORK", "network:galaxy-engines"),
            ("GALAXY_DOCKER_SUBNETS", "10.99.0.0/20"),
            ("GALAXY_DOCKER_SERVER_CONTAINER", "galaxy-server-1"),
        ])
        .unwrap();
        assert_eq!(settings.limits.memory_bytes, Some(2 << 30));
        assert_eq!(
            (settings.limits.cpus, settings.limits.pids),
            (Some(0.5), None)
        );
        assert_eq!(settings.user, None);
        assert_eq!(settings.secret.unwrap().expose_secret(), "s".repeat(32));
        assert_eq!(settings.without_token.len(), 1);
        assert_eq!(
            settings.docker_network,
            DockerNetwork::Shared("galaxy-engines".into())
        );
        assert_eq!(settings.docker_subnets.capacity(), 512);
        assert_eq!(
            settings.docker_server_container.as_deref(),
            Some("galaxy-server-1")
        );
        assert_eq!(bytes("536870912"), Some(512 << 20));
        assert_eq!(bytes("512M"), Some(512 << 20));
        assert_eq!(bytes("1 GiB"), Some(1 << 30));
        assert_eq!(bytes("12 parsecs"), None);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (variable, value) in [
            ("GALAXY_ENGINE_MEMORY", "1MiB"),
            ("GALAXY_ENGINE_MEMORY", "lots"),
            ("GALAXY_ENGINE_CPUS", "0"),
            ("GALAXY_ENGINE_CPUS", "NaN"),
            ("GALAXY_ENGINE_PIDS", "8"),
            ("GALAXY_ENGINE_USER", "root; rm -rf /"),
            ("GALAXY_ENGINE_SECRET", "too short"),
            ("GALAXY_ENGINES_WITHOUT_TOKEN", "unregistered"),
            ("GALAXY_ENGINES_WITHOUT_TOKEN", "Bad Name!"),
            ("GALAXY_DOCKER_NETWORK", "host"),
            ("GALAXY_DOCKER_SUBNETS", "10.213.0.0/30"),
            ("GALAXY_DOCKER_SERVER_CONTAINER", "a:b"),
        ] {
            let error = engines(&[(variable, value)]).unwrap_err().to_string();
            assert!(error.contains(variable), "{variable}={value}: {error}");
            assert!(
                !error.contains("too short"),
                "a secret is never shown: {error}"
            );
        }
    }
}
