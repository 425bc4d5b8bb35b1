//! The runtime service's error: what the caller got wrong, kept apart from what broke.

use crate::domain::InvalidTransition;
use crate::domain::game::GameStatus;
use crate::ports::{ContainerError, EngineError, StoreError};
use crate::service::{ErrorKind, ServiceError, store_error_kind};

/// Why a runtime call was refused or failed. A refused call changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A well-formed request with a value the rules refuse (422), naming the field.
    #[error("{field}: {message}")]
    Validation {
        /// The request field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Too many requests of this kind; try again after `retry_after` (429).
    #[error("rate limited: {what}")]
    RateLimited {
        /// What is limited.
        what: &'static str,
        /// When there is room again.
        retry_after: std::time::Duration,
    },
    /// The caller may not do this (403).
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why not.
        reason: &'static str,
    },
    /// The caller is active in as many games as their account allows (403): the
    /// active-games entitlement, counted as the lobby counts it.
    #[error("already in {live} active game(s), the limit is {max}")]
    TooManyActiveGames {
        /// The games the caller is active in.
        live: u32,
        /// Their account's limit.
        max: u32,
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
    /// Refused by the state of the game's engine: resuming one not known to be healthy,
    /// creating again one that is (409).
    #[error("not possible with the game's engine as it is: {reason}")]
    Unhealthy {
        /// What is wrong with it.
        reason: String,
    },
    /// Another turn of the game is running right now (409).
    #[error("a turn of this game is already running")]
    TurnInProgress,
    /// A forced turn named a turn that is not the next one (409): it was played already
    /// (a retry of a request whose answer was lost), or is further ahead. Also orders for
    /// a turn played already.
    #[error("turn {asked} is not the next turn of this game (the next is {next})")]
    TurnNotNext {
        /// The turn the caller asked for.
        asked: u32,
        /// The game's next turn.
        next: u32,
    },
    /// The status change is not in the game's transition table (409).
    #[error(transparent)]
    InvalidTransition(InvalidTransition),
    /// Someone else changed the game's status first (409); re-read and decide again.
    #[error("the game changed status concurrently (expected {expected})")]
    StatusChanged {
        /// The status this call acted on.
        expected: GameStatus,
    },
    /// Another submission of the race's orders was on its way to the engine for as long
    /// as an engine call may take (503); try again in a moment.
    #[error("another submission of this race's orders is in progress; try again in a moment")]
    OrdersBusy,
    /// The caller's race is out of the game (the engine's latest standings say it is not
    /// alive): it takes no orders, ready marks or vacation any more. The player still
    /// reads the game and its reports.
    #[error("your race {race} is out of the game; it takes no orders")]
    RaceEliminated {
        /// The race.
        race: String,
    },
    /// Orders sent before the ones in force (a mail processed after later orders) are
    /// not applied (409): the later orders stay.
    #[error("orders for turn {turn} sent after these are in force; these were not applied")]
    OrdersSuperseded {
        /// The turn the orders were for.
        turn: u32,
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
    /// The engine could not give a race's report of a turn (after retries), or gave one
    /// over the size bound (503); the turn is not recorded and the game was paused.
    #[error("the engine gave no report of race {race} for turn {turn}: {reason}")]
    ReportUnavailable {
        /// The race.
        race: String,
        /// The turn.
        turn: u32,
        /// The engine's last error.
        reason: String,
    },
    /// The engine refused a player's request (its 4xx answer), with its message: no such
    /// race or turn (404), the wrong turn or a game over (409), refused orders (422).
    #[error("the engine refused the request: {message}")]
    EngineRefused {
        /// The engine's HTTP status.
        status: u16,
        /// The engine's message, sanitised and bounded.
        message: String,
    },
    /// No such turn archived yet (404).
    #[error("turn {turn} has not been played yet{}", played_so_far(*.last))]
    TurnNotPlayed {
        /// The turn asked for.
        turn: u32,
        /// The last turn archived (`None`: not even turn 0).
        last: Option<u32>,
    },
    /// The container runtime failed (503).
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A store failed (or refused) the call.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tail of [`RuntimeError::TurnNotPlayed`]'s message.
fn played_so_far(last: Option<u32>) -> String {
    match last {
        Some(last) => format!(" (the last played turn is {last})"),
        None => " (the game has no played turn yet)".to_owned(),
    }
}

/// The longest engine message passed on to a player.
const MAX_ENGINE_MESSAGE: usize = 500;

/// An engine's error body as a player may read it: its `error` (and `details`) when it
/// is the contract's JSON error, else the text; control characters removed, bounded.
pub(super) fn engine_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let text = match parsed.as_ref() {
        Some(value) => {
            let error = value
                .get("error")
                .map(|e| match e {
                    serde_json::Value::String(s) => s.clone(),
                    other => other
                        .get("message")
                        .and_then(serde_json::Value::as_str)
                        .map_or_else(|| other.to_string(), str::to_owned),
                })
                .unwrap_or_else(|| body.to_owned());
            match value.get("details") {
                Some(serde_json::Value::Array(details)) if !details.is_empty() => {
                    let details: Vec<String> = details
                        .iter()
                        .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned))
                        .collect();
                    format!("{error}: {}", details.join("; "))
                }
                _ => error,
            }
        }
        None => body.to_owned(),
    };
    clean_engine_text(&text).unwrap_or_else(|| "no reason given".to_owned())
}

/// An engine's text as a player may read it: control characters made spaces, format
/// characters (bidi overrides...) removed, trimmed, at most 500 characters (cut ones end
/// in `...`); `None` when nothing is left.
pub(super) fn clean_engine_text(text: &str) -> Option<String> {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !is_format_char(*c))
        .collect();
    let clean = clean.trim();
    if clean.chars().count() > MAX_ENGINE_MESSAGE {
        let cut: String = clean.chars().take(MAX_ENGINE_MESSAGE).collect();
        Some(format!("{cut}..."))
    } else if clean.is_empty() {
        None
    } else {
        Some(clean.to_owned())
    }
}

/// Unicode format characters (bidi overrides, zero-width joiners...) that could make an
/// engine's message spoof the text around it.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

impl RuntimeError {
    pub(crate) fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// Maps an engine error for a player's request: a request refused before any I/O,
    /// or refused by the engine with a 4xx, is the caller's to fix (with the engine's
    /// message); only an unreachable, slow or failing (5xx) engine is `Engine` (503).
    pub(crate) fn engine(error: EngineError) -> Self {
        match error {
            EngineError::InvalidRequest { source } => Self::InvalidRequest(source.to_string()),
            EngineError::Status { status, body } if (400..500).contains(&status) => {
                Self::EngineRefused {
                    status,
                    message: engine_message(&body),
                }
            }
            other => Self::Engine(other),
        }
    }
}

impl ServiceError for RuntimeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation { .. } => ErrorKind::Validation,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Forbidden { .. } | Self::TooManyActiveGames { .. } => ErrorKind::Forbidden,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::WrongStatus { .. }
            | Self::Unhealthy { .. }
            | Self::TurnInProgress
            | Self::TurnNotNext { .. }
            | Self::InvalidTransition(_)
            | Self::StatusChanged { .. }
            | Self::OrdersSuperseded { .. }
            | Self::RaceEliminated { .. } => ErrorKind::Conflict,
            Self::OrdersTooLarge { .. } | Self::InvalidRequest(_) => ErrorKind::Validation,
            Self::TurnNotPlayed { .. } => ErrorKind::NotFound,
            Self::EngineRefused { status, .. } => match status {
                404 | 410 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                _ => ErrorKind::Validation,
            },
            Self::Engine(_)
            | Self::UnexpectedTurn { .. }
            | Self::ReportUnavailable { .. }
            | Self::Container(_)
            | Self::OrdersBusy => ErrorKind::Unavailable,
            Self::Store(error) => store_error_kind(error),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::WrongStatus { .. } => "invalid_status",
            Self::Unhealthy { .. } => "runtime_unhealthy",
            Self::TurnInProgress => "turn_in_progress",
            Self::TurnNotNext { .. } => "turn_not_next",
            Self::InvalidTransition(_) => "invalid_transition",
            Self::OrdersTooLarge { .. } => "orders_too_large",
            Self::OrdersBusy => "orders_busy",
            Self::OrdersSuperseded { .. } => "orders_superseded",
            Self::RaceEliminated { .. } => "race_eliminated",
            Self::Engine(_) | Self::UnexpectedTurn { .. } | Self::ReportUnavailable { .. } => {
                "engine_unavailable"
            }
            Self::TurnNotPlayed { .. } => "turn_not_played",
            Self::EngineRefused { status, .. } => match status {
                404 | 410 => "engine_not_found",
                409 => "engine_conflict",
                _ => "engine_refused",
            },
            Self::Container(_) => "container_runtime_unavailable",
            other => other.kind().code(),
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::OrdersBusy => Some(std::time::Duration::from_secs(1)),
            _ => None,
        }
    }
}
