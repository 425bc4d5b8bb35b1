//! The error every store port returns.

use crate::domain::InvalidTransition;

/// A boxed error from an adapter, kept as the cause without exposing its type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such entity.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Entity kind, e.g. `game`.
        entity: &'static str,
        /// The id or key looked up.
        id: String,
    },
    /// The stored state is not what the caller expected (compare-and-set lost, lease
    /// lost, entity not in a state that allows the change). Re-read and decide again.
    #[error("{entity} {id}: {detail}")]
    Conflict {
        /// Entity kind.
        entity: &'static str,
        /// The id or key.
        id: String,
        /// What differed.
        detail: String,
    },
    /// The requested status change is not in the entity's transition table.
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// A uniqueness rule refused the write (e-mail, race name, idempotency key).
    #[error("{entity} with {key} already exists")]
    Duplicate {
        /// Entity kind.
        entity: &'static str,
        /// The clashing key.
        key: String,
    },
    /// A page cursor (`PageRequest::after`) that this store did not hand out.
    #[error("invalid page cursor {0:?}")]
    InvalidCursor(String),
    /// The backing service is unreachable or busy; the call may be retried.
    #[error("store unavailable: {source}")]
    Unavailable {
        /// The adapter's error.
        #[source]
        source: BoxError,
    },
    /// Something unexpected (a corrupt row, a bug); not worth retrying.
    #[error("store failure: {source}")]
    Internal {
        /// The adapter's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Shorthand for [`StoreError::NotFound`].
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// Shorthand for [`StoreError::Conflict`].
    pub fn conflict(entity: &'static str, id: impl ToString, detail: impl Into<String>) -> Self {
        Self::Conflict {
            entity,
            id: id.to_string(),
            detail: detail.into(),
        }
    }

    /// Shorthand for [`StoreError::Duplicate`].
    pub fn duplicate(entity: &'static str, key: impl ToString) -> Self {
        Self::Duplicate {
            entity,
            key: key.to_string(),
        }
    }

    /// Wraps a transient adapter error.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            source: source.into(),
        }
    }

    /// Wraps an unexpected adapter error.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::Internal {
            source: source.into(),
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}
