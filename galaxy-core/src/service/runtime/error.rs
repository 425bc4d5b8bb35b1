//! The runtime service's error: what the caller got wrong, kept apart from what broke.

use crate::domain::InvalidTransition;
use crate::domain::game::GameStatus;
use crate::ports::{ContainerError, EngineError, StoreError};
use crate::service::{ErrorKind, ServiceError, store_error_kind};

/// Why a runtime call was refused or failed. A refused call changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The caller may not do this (403).
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why not.
        reason: &'static str,
    },
    /// No such thing, or the caller may not see it (404).
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked up (`game`, `runtime record`).
        entity: &'static str,
        /// The id looked up.
        id: String,
    },
    /// The game's status does not allow the action (409).
    #[error("cannot {action} a game that is {status}")]
    WrongStatus {
        /// What was asked.
        action: &'static str,
        /// The game's status.
        status: GameStatus,
    },
    /// Resume refused: the game's engine is not known to be healthy (409).
    #[error("the game's runtime is not healthy: {reason}")]
    Unhealthy {
        /// What is wrong with it.
        reason: String,
    },
    /// Another turn of the game is running right now (409).
    #[error("a turn of this game is already running")]
    TurnInProgress,
    /// The status change is not in the game's transition table (409).
    #[error(transparent)]
    InvalidTransition(InvalidTransition),
    /// Someone else changed the game's status first (409); re-read and decide again.
    #[error("the game changed status concurrently (expected {expected})")]
    StatusChanged {
        /// The status this call acted on.
        expected: GameStatus,
    },
    /// The orders body exceeds the configured bound (422).
    #[error("orders are {size} bytes, at most {max} are accepted")]
    OrdersTooLarge {
        /// The serialised size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// The engine refused the request as malformed before any I/O (422).
    #[error("invalid engine request: {0}")]
    InvalidRequest(String),
    /// The engine failed, hung or answered garbage (503); for a turn the game was paused.
    #[error("engine failure: {0}")]
    Engine(#[source] EngineError),
    /// The engine answered a turn it was not asked for (503); the game was paused.
    #[error("the engine answered turn {got}, expected {expected}")]
    UnexpectedTurn {
        /// The turn asked for.
        expected: u32,
        /// The turn it answered.
        got: u32,
    },
    /// The container runtime failed (503).
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A store failed (or refused) the call.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RuntimeError {
    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// Maps an engine error: a request refused before any I/O is the caller's fault.
    pub(crate) fn engine(error: EngineError) -> Self {
        match error {
            EngineError::InvalidRequest { source } => Self::InvalidRequest(source.to_string()),
            other => Self::Engine(other),
        }
    }
}

impl ServiceError for RuntimeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::WrongStatus { .. }
            | Self::Unhealthy { .. }
            | Self::TurnInProgress
            | Self::InvalidTransition(_)
            | Self::StatusChanged { .. } => ErrorKind::Conflict,
            Self::OrdersTooLarge { .. } | Self::InvalidRequest(_) => ErrorKind::Validation,
            Self::Engine(_) | Self::UnexpectedTurn { .. } | Self::Container(_) => {
                ErrorKind::Unavailable
            }
            Self::Store(error) => store_error_kind(error),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::WrongStatus { .. } => "invalid_status",
            Self::Unhealthy { .. } => "runtime_unhealthy",
            Self::TurnInProgress => "turn_in_progress",
            Self::InvalidTransition(_) => "invalid_transition",
            Self::OrdersTooLarge { .. } => "orders_too_large",
            Self::Engine(_) | Self::UnexpectedTurn { .. } => "engine_unavailable",
            Self::Container(_) => "container_runtime_unavailable",
            other => other.kind().code(),
        }
    }
}
