//! The lobby's error: what the caller did wrong, kept apart from what broke.

use std::fmt;

use crate::domain::InvalidTransition;
use crate::domain::application::ApplicationStatus;
use crate::domain::game::GameStatus;
use crate::ports::StoreError;
use crate::service::{ErrorKind, ServiceError, store_error_kind};

/// Why a lobby call was refused or failed. A refused call changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LobbyError {
    /// A well-formed request carried an invalid value (422); `field` names it as the API
    /// spells it (`race_name`, `min_players`, `turn_schedule`, ...).
    #[error("invalid {field}: {message}")]
    Validation {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The caller may not do this (403).
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why not.
        reason: String,
    },
    /// No such thing, or the caller may not see it (404).
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked up (`game`, `application`, `race name`).
        entity: &'static str,
        /// The id or name looked up.
        id: String,
    },
    /// Another player holds (or holds pending) a name with the same key (409).
    #[error("race name {name:?} is taken")]
    RaceNameTaken {
        /// The name asked for.
        name: String,
    },
    /// The name is held for one of the caller's live applications (409).
    #[error("race name {name:?} is in use by a live application")]
    RaceNameInUse {
        /// The name.
        name: String,
    },
    /// The caller already has a live application to this game (409).
    #[error("already applied to this game")]
    AlreadyApplied,
    /// The game already has `max_players` approved players (409).
    #[error("the game is full")]
    GameFull,
    /// The game does not take applications now (409).
    #[error("the game is not open for enrollment (it is {status})")]
    NotEnrolling {
        /// The game's status.
        status: GameStatus,
    },
    /// The game's enrollment deadline has passed (409, `not_enrolling`): the sweeper is
    /// about to close or cancel it, and an application now could only be a late one.
    #[error("enrollment in this game ended at {deadline}")]
    EnrollmentEnded {
        /// The game's enrollment deadline.
        deadline: crate::domain::Timestamp,
    },
    /// The application was already decided (409).
    #[error("the application is no longer pending (it is {status})")]
    NotPending {
        /// The application's status.
        status: ApplicationStatus,
    },
    /// Enrollment cannot close with fewer than `min_players` approved (409).
    #[error("{approved} player(s) approved, at least {min} needed")]
    NoQuorum {
        /// Approved so far.
        approved: u32,
        /// The game's minimum.
        min: u32,
    },
    /// The game's status does not allow the change (409).
    #[error(transparent)]
    InvalidTransition(InvalidTransition),
    /// Someone else changed the game's status first (409); re-read and decide again.
    #[error("the game changed status concurrently (expected {expected})")]
    StatusChanged {
        /// The status this call acted on.
        expected: GameStatus,
    },
    /// A store failed (or refused) the call.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LobbyError {
    /// A validation error naming `field`.
    pub(crate) fn validation(field: &'static str, message: impl fmt::Display) -> Self {
        Self::Validation {
            field,
            message: message.to_string(),
        }
    }

    /// A permission error.
    pub(crate) fn forbidden(reason: impl Into<String>) -> Self {
        Self::Forbidden {
            reason: reason.into(),
        }
    }

    /// A not-found error.
    pub(crate) fn not_found(entity: &'static str, id: impl fmt::Display) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

impl ServiceError for LobbyError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation { .. } => ErrorKind::Validation,
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::RaceNameTaken { .. }
            | Self::RaceNameInUse { .. }
            | Self::AlreadyApplied
            | Self::GameFull
            | Self::NotEnrolling { .. }
            | Self::EnrollmentEnded { .. }
            | Self::NotPending { .. }
            | Self::NoQuorum { .. }
            | Self::InvalidTransition(_)
            | Self::StatusChanged { .. } => ErrorKind::Conflict,
            Self::Store(error) => store_error_kind(error),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "validation",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::RaceNameTaken { .. } => "race_name_taken",
            Self::RaceNameInUse { .. } => "race_name_in_use",
            Self::AlreadyApplied => "already_applied",
            Self::GameFull => "game_full",
            Self::NotEnrolling { .. } | Self::EnrollmentEnded { .. } => "not_enrolling",
            Self::NotPending { .. } => "not_pending",
            Self::NoQuorum { .. } => "no_quorum",
            Self::InvalidTransition(_) => "invalid_transition",
            Self::StatusChanged { .. } => "conflict",
            Self::Store(error) => store_error_kind(error).code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_codes_match_the_api() {
        let validation = LobbyError::validation("race_name", "too short");
        assert_eq!(validation.kind(), ErrorKind::Validation);
        assert!(validation.to_string().contains("race_name"));
        assert_eq!(LobbyError::GameFull.kind(), ErrorKind::Conflict);
        assert_eq!(LobbyError::GameFull.code(), "game_full");
        let store = LobbyError::from(StoreError::unavailable("down"));
        assert_eq!(
            (store.kind(), store.code()),
            (ErrorKind::Unavailable, "unavailable")
        );
        assert_eq!(LobbyError::forbidden("no").kind(), ErrorKind::Forbidden);
        assert_eq!(LobbyError::not_found("game", 1).kind(), ErrorKind::NotFound);
    }
}
