//! [`AppError`]: why the app could not be built or run. It sits below every module that
//! builds a part of the app (runtime, delivery, geo, secrets) and the composition root
//! ([`crate::app`]) that calls them, so none of them imports the root.

use crate::cache::WarmError;
use crate::telemetry::TelemetryError;

/// Why the app could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// A setting is valid on its own but not usable by a service.
    #[error("{variable} is unusable: {reason}")]
    Setting {
        /// The variable.
        variable: &'static str,
        /// Why.
        reason: String,
    },
    /// A setting asks for what only a build with a Cargo feature of `galaxy-server` has
    /// (`GALAXY_RUNTIME=docker` without `docker`, say), and this build lacks it.
    #[error(
        "{variable} needs the `{feature}` feature, which this build of galaxy-server lacks \
         (rebuild with `--features {feature}`)"
    )]
    FeatureDisabled {
        /// The variable.
        variable: &'static str,
        /// The missing feature.
        feature: &'static str,
    },
    /// A service a setting names did not answer at start-up (the Docker daemon of the
    /// default runtime): not the configuration's fault, so a supervisor retries.
    #[error("{variable}: {reason}")]
    Unreachable {
        /// The variable naming (or implying) the service.
        variable: &'static str,
        /// What did not answer, and what to do.
        reason: String,
    },
    /// A cache could not be warmed (the store failed).
    #[error(transparent)]
    Warm(#[from] WarmError),
    /// Connecting to or migrating the database failed.
    #[cfg(feature = "postgres")]
    #[error("database set-up failed: {0}")]
    Database(#[from] galaxy_postgres::SetupError),
    /// A listener could not be bound or failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    /// The change bus (cross-replica cache coherence) could not start listening.
    #[error("the cache change bus could not start: {source}")]
    ChangeBus {
        /// The store's error.
        #[source]
        source: galaxy_core::ports::StoreError,
    },
    /// The shared push log could not be opened or read.
    #[error("the push log is unusable: {source}")]
    PushLog {
        /// The store's error.
        #[source]
        source: galaxy_core::ports::StoreError,
    },
    /// The store holding the installation's key fingerprints failed (see
    /// [`galaxy_core::ports::KeyRegistry`]).
    #[error("{variable} could not be compared with the other servers': {source}")]
    KeyRegistry {
        /// The secret being compared.
        variable: &'static str,
        /// The store's error.
        #[source]
        source: galaxy_core::ports::StoreError,
    },
    /// The GeoIP database of `GALAXY_GEOIP_DB` is missing, unreadable or corrupt.
    #[cfg(feature = "geoip")]
    #[error("GALAXY_GEOIP_DB is unusable: {0}")]
    GeoIp(#[source] galaxy_geoip::GeoIpError),
}

impl AppError {
    /// Whether the operator's configuration is at fault (a setting unusable once the app
    /// tries it, a feature this build lacks, a GeoIP file that will not open) rather than
    /// the machine or a dependency: `galaxy-server` exits 2 for these, as for a setting
    /// refused at validation, so a supervisor that restarts on failure does not restart a
    /// server that cannot start until the configuration changes.
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::Setting { .. } | Self::FeatureDisabled { .. } => true,
            // A bad log filter, an OTLP endpoint the exporter cannot use, an exporter
            // this build lacks; not a second initialisation in one process (a bug).
            Self::Telemetry(error) => !matches!(error, TelemetryError::AlreadyInitialised(_)),
            #[cfg(feature = "geoip")]
            Self::GeoIp(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exit 2 (no restart by systemd) only for what the configuration must change: a
    /// Docker daemon late at boot is retried.
    #[test]
    fn only_configuration_faults_count_as_configuration() {
        let setting = AppError::Setting {
            variable: "GALAXY_LOGIN_CODE_KEY",
            reason: "too short".into(),
        };
        assert!(setting.is_configuration());
        let docker = AppError::Unreachable {
            variable: "GALAXY_RUNTIME",
            reason: "cannot reach Docker".into(),
        };
        assert!(!docker.is_configuration());
        let io = AppError::Io {
            what: "bind".into(),
            source: std::io::Error::other("address in use"),
        };
        assert!(!io.is_configuration());
        let endpoint = AppError::Telemetry(TelemetryError::Otlp {
            endpoint: "collector:4318".into(),
            reason: "invalid URI".into(),
        });
        assert!(endpoint.is_configuration());
        let twice = AppError::Telemetry(TelemetryError::AlreadyInitialised("tracer".into()));
        assert!(!twice.is_configuration());
    }
}
