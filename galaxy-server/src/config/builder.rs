//! Configuration in code: [`Config`]'s defaults and a builder that sets settings by
//! variable name with the environment's validation.

use std::collections::HashMap;

use super::{Config, ConfigError, SETTINGS};

impl Default for Config {
    /// Every setting at its documented default (the `default` column of
    /// docs/operations.md): no database, the in-process runtime choice of the defaults,
    /// loopback listeners. Change fields with struct update syntax, or use
    /// [`Config::builder`] to set them by variable name with validation.
    fn default() -> Self {
        match Self::from_vars(&HashMap::new()) {
            Ok(config) => config,
            // The defaults are constants of this crate, parsed by a unit test of every
            // build: reaching this arm is a bug of the crate, never of its input.
            Err(error) => panic!("galaxy-server's own defaults do not parse: {error}"),
        }
    }
}

/// Builds a [`Config`] from settings given by their variable names
/// (`GALAXY_MAIL_INTERVAL`, ...), starting from the defaults or from the environment.
/// Values are validated exactly as environment variables are; a name that is not a
/// setting is an error ([`ConfigError::Unknown`]) rather than silently ignored.
#[derive(Debug, Clone, Default)]
pub struct ConfigBuilder {
    /// The variables set so far, later values replacing earlier ones.
    vars: HashMap<String, String>,
}

impl ConfigBuilder {
    /// A builder over the process environment's `GALAXY_*` variables, so that code can
    /// override some settings and leave the rest to the operator.
    pub fn from_env() -> Self {
        Self {
            vars: std::env::vars()
                .filter(|(name, _)| SETTINGS.iter().any(|s| s.variable == name))
                .collect(),
        }
    }

    /// Sets one variable (its value as it would be written in the environment).
    pub fn set(mut self, variable: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(variable.into(), value.into());
        self
    }

    /// Validates every setting and builds the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        if let Some(variable) = self
            .vars
            .keys()
            .find(|name| !SETTINGS.iter().any(|s| s.variable == name.as_str()))
        {
            return Err(ConfigError::Unknown {
                variable: variable.clone(),
            });
        }
        Config::from_vars(&self.vars)
    }
}
