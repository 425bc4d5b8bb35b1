//! The engines an operator registered: engine name -> what the container runtime needs to
//! launch it (an image for Docker, a command line for the process runtime).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::domain::game::{EngineName, GameSettingsError};

/// What the reference engine resolves to unless the operator says otherwise: the image
/// `galaxy-cli engine image` builds.
pub const DEFAULT_REFERENCE_TARGET: &str = "galaxy-engine:latest";

/// A registration was refused, or a name is not registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name is not a valid engine name.
    #[error(transparent)]
    Name(#[from] GameSettingsError),
    /// An entry of a registry list is not `name=target`.
    #[error("engine entry {0:?} must read name=target")]
    Entry(String),
    /// The target (image or command) is empty.
    #[error("engine {0:?} has an empty image or command")]
    EmptyTarget(String),
    /// The same name appears twice in one list.
    #[error("engine {0:?} is registered twice")]
    Twice(String),
    /// No engine of that name is registered.
    #[error("engine {name:?} is not registered (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
}

/// Engine name -> launch target. The reference engine is always present.
#[derive(Clone, PartialEq, Eq)]
pub struct EngineRegistry {
    /// Registered engines; a `BTreeMap` so listings are stable.
    engines: BTreeMap<EngineName, String>,
}

impl Default for EngineRegistry {
    /// The reference engine as [`DEFAULT_REFERENCE_TARGET`].
    fn default() -> Self {
        let engines =
            BTreeMap::from([(EngineName::reference(), DEFAULT_REFERENCE_TARGET.to_owned())]);
        Self { engines }
    }
}

impl fmt::Debug for EngineRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.engines.iter().map(|(k, v)| (k.as_str(), v)))
            .finish()
    }
}

impl EngineRegistry {
    /// Parses `name=target` entries separated by `;` (a command line may hold spaces and
    /// commas, never a `;`), e.g. `reference=galaxy-engine:0.2; classic=classic-pbem:2`.
    /// Entries override the default reference target; empty entries are skipped.
    pub fn parse(list: &str) -> Result<Self, RegistryError> {
        let mut registry = Self::default();
        let mut seen = BTreeSet::new();
        for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((name, target)) = entry.split_once('=') else {
                return Err(RegistryError::Entry(entry.chars().take(80).collect()));
            };
            let name = EngineName::parse(name.trim())?;
            if !seen.insert(name.clone()) {
                return Err(RegistryError::Twice(name.as_str().to_owned()));
            }
            registry.register(name, target)?;
        }
        Ok(registry)
    }

    /// Registers (or re-targets) an engine.
    pub fn register(
        &mut self,
        name: EngineName,
        target: impl Into<String>,
    ) -> Result<(), RegistryError> {
        let target = target.into().trim().to_owned();
        if target.is_empty() {
            return Err(RegistryError::EmptyTarget(name.as_str().to_owned()));
        }
        self.engines.insert(name, target);
        Ok(())
    }

    /// The launch target of `name`; unknown names are refused.
    pub fn resolve(&self, name: &EngineName) -> Result<&str, RegistryError> {
        self.engines
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| RegistryError::Unknown {
                name: name.as_str().to_owned(),
                known: self.known(),
            })
    }

    /// The registered names (what the lobby accepts for new games).
    pub fn names(&self) -> BTreeSet<EngineName> {
        self.engines.keys().cloned().collect()
    }

    fn known(&self) -> String {
        let names: Vec<&str> = self.engines.keys().map(EngineName::as_str).collect();
        names.join(", ")
    }
}
