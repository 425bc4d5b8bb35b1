//! Why a configuration was refused: each error names the variable (never a secret's
//! value) and what was expected.

use std::path::PathBuf;

#[cfg(doc)]
use super::ConfigBuilder;

/// A setting could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable holds a value of the wrong shape.
    #[error("{variable}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// Its value (never a secret's).
        value: String,
        /// What it should look like.
        expected: String,
    },
    /// A variable the chosen mode needs is not set.
    #[error("{variable} must be set: {why}")]
    Missing {
        /// The variable.
        variable: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// A variable is set (or set to a value) that only a build with a Cargo feature of
    /// `galaxy-server` can use, and this build lacks it.
    #[error(
        "{variable} needs the `{feature}` feature, which this build of galaxy-server lacks \
         (rebuild with `--features {feature}`, or unset the variable)"
    )]
    FeatureDisabled {
        /// The variable.
        variable: &'static str,
        /// The missing feature.
        feature: &'static str,
    },
    /// A [`ConfigBuilder`] was given a variable this build does not know (a typo, most
    /// likely: from the environment such a variable would be silently ignored).
    #[error("{variable} is not a Galaxy setting (docs/operations.md lists every one)")]
    Unknown {
        /// The variable as given.
        variable: String,
    },
    /// The configuration file (`GALAXY_CONFIG_FILE`, `--config`) cannot be used.
    #[error("configuration file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a value from it: it may hold secrets).
        reason: String,
    },
}
