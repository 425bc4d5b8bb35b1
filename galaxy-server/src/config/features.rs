//! Which settings need which Cargo feature of `galaxy-server`, and the start-up check
//! that refuses a setting whose feature this build lacks (rather than ignoring it).
//!
//! The features and what they bring are listed in the crate README ("Features").

use super::{ConfigError, Vars};

/// Every optional feature of this crate, with whether this build has it.
pub const FEATURES: &[(&str, bool)] = &[
    ("postgres", cfg!(feature = "postgres")),
    ("docker", cfg!(feature = "docker")),
    ("smtp", cfg!(feature = "smtp")),
    ("geoip", cfg!(feature = "geoip")),
    ("grpc-push", cfg!(feature = "grpc-push")),
    ("otlp", cfg!(feature = "otlp")),
    ("smtp-in", cfg!(feature = "smtp-in")),
];

/// Settings that only a build with a feature can use, `(variable, feature)`: setting one
/// in a build without its feature stops start-up with [`ConfigError::FeatureDisabled`].
/// (`GALAXY_RUNTIME=docker` and `GALAXY_OTEL_EXPORTER=otlp` are checked by value.)
pub const SETTING_FEATURES: &[(&str, &str)] = &[
    ("GALAXY_DATABASE_URL", "postgres"),
    ("GALAXY_DATABASE_MAX_CONNECTIONS", "postgres"),
    ("GALAXY_DATABASE_CONNECT_ATTEMPTS", "postgres"),
    ("GALAXY_CACHE_BUS_HEARTBEAT", "postgres"),
    ("GALAXY_ENGINE_USER", "docker"),
    ("GALAXY_DOCKER_NETWORK", "docker"),
    ("GALAXY_DOCKER_SUBNETS", "docker"),
    ("GALAXY_DOCKER_SERVER_CONTAINER", "docker"),
    ("GALAXY_SMTP_URL", "smtp"),
    ("GALAXY_SMTP_POOL_SIZE", "smtp"),
    ("GALAXY_GEOIP_DB", "geoip"),
    ("GALAXY_GEOIP_RELOAD_INTERVAL", "geoip"),
    ("GALAXY_GRPC_ADDR", "grpc-push"),
    ("GALAXY_OTEL_ENDPOINT", "otlp"),
    ("GALAXY_INBOUND_SMTP_ADDR", "smtp-in"),
    ("GALAXY_INBOUND_SMTP_TLS_CERT", "smtp-in"),
    ("GALAXY_INBOUND_SMTP_TLS_KEY", "smtp-in"),
];

/// Settings whose feature depends on their value, `(variable, value, feature)`.
pub const VALUE_FEATURES: &[(&str, &str, &str)] = &[
    ("GALAXY_RUNTIME", "docker", "docker"),
    ("GALAXY_OTEL_EXPORTER", "otlp", "otlp"),
];

/// Whether this build has `feature` (an unknown name: no).
pub fn is_enabled(feature: &str) -> bool {
    FEATURES
        .iter()
        .any(|(name, enabled)| *name == feature && *enabled)
}

/// The feature `variable` needs, whatever its value (`None` for a setting every build
/// can use, and for those of [`VALUE_FEATURES`]).
pub fn feature_of(variable: &str) -> Option<&'static str> {
    SETTING_FEATURES
        .iter()
        .find(|(v, _)| *v == variable)
        .map(|(_, feature)| *feature)
}

/// Refuses every set variable whose feature this build lacks.
pub(super) fn check(v: &Vars<'_>) -> Result<(), ConfigError> {
    for (variable, feature) in SETTING_FEATURES {
        if v.raw(variable).is_some() && !is_enabled(feature) {
            return Err(ConfigError::FeatureDisabled { variable, feature });
        }
    }
    for (variable, value, feature) in VALUE_FEATURES {
        if v.raw(variable) == Some(*value) && !is_enabled(feature) {
            return Err(ConfigError::FeatureDisabled { variable, feature });
        }
    }
    Ok(())
}
