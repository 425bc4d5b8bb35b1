//! Errors shared by every state machine of the domain.

use std::fmt;

/// A requested status change is not in the state machine's transition table.
///
/// Carries the machine's name and the rejected (from, to, trigger) triple as text so that
/// one type serves every state machine and the message says exactly what was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{machine}: transition {from} -> {to} by {trigger} is not allowed")]
pub struct InvalidTransition {
    /// Which state machine refused, e.g. `game`.
    pub machine: &'static str,
    /// The status the entity is in.
    pub from: String,
    /// The status that was asked for.
    pub to: String,
    /// Who or what asked for it.
    pub trigger: String,
}

impl InvalidTransition {
    /// Builds the error from any displayable statuses and trigger.
    pub fn new(
        machine: &'static str,
        from: impl fmt::Display,
        to: impl fmt::Display,
        trigger: impl fmt::Display,
    ) -> Self {
        Self {
            machine,
            from: from.to_string(),
            to: to.to_string(),
            trigger: trigger.to_string(),
        }
    }
}
