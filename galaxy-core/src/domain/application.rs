//! Applications: a player's request to join a game under a race name.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::race_name::RaceName;
use super::{ApplicationId, GameId, InvalidTransition, Timestamp, UserId};

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// Waiting for the host (or auto-approval).
    Pending,
    /// Accepted: the player is in the game.
    Approved,
    /// Refused by the host or an admin.
    Rejected,
    /// Taken back by the player.
    Withdrawn,
}

impl ApplicationStatus {
    /// Every status.
    pub const ALL: [ApplicationStatus; 4] = [
        Self::Pending,
        Self::Approved,
        Self::Rejected,
        Self::Withdrawn,
    ];

    /// Whether reaching this status is announced (the host learns of a submission, the
    /// player of a decision); a withdrawal is the player's own act and is not. An
    /// application whose status is announced but not yet marked so owes its
    /// notification (`ApplicationStore::unannounced_applications`).
    pub fn is_announced(self) -> bool {
        !matches!(self, Self::Withdrawn)
    }

    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    /// Whether it holds its race name and makes the player active in the game (for the
    /// active-games entitlement; unless the race was handed over to a replacement).
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Pending | Self::Approved)
    }

    /// Checks `self -> to` against the table: only a pending application moves, to any
    /// of the three decisions.
    pub fn check(self, to: ApplicationStatus) -> Result<(), InvalidTransition> {
        if self == Self::Pending && to != Self::Pending {
            Ok(())
        } else {
            Err(InvalidTransition::new("application", self, to, "decision"))
        }
    }
}

impl fmt::Display for ApplicationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many applications one player may make to one game, withdrawn and rejected ones
/// included: far above a player changing their mind, a bound on a loop of apply and
/// withdraw (each application is kept, and read on every apply, game page and turn).
/// Counted by the store in the same atomic step as the insert
/// ([`ApplicationInsert::TooManyApplications`](crate::ports::ApplicationInsert::TooManyApplications)).
pub const MAX_APPLICATIONS_PER_GAME: u32 = 20;

/// A player's application to a game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Stable id.
    pub id: ApplicationId,
    /// The game applied to.
    pub game_id: GameId,
    /// The applicant.
    pub user_id: UserId,
    /// The race the player will play.
    pub race_name: RaceName,
    /// Status.
    pub status: ApplicationStatus,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was approved, rejected or withdrawn.
    pub decided_at: Option<Timestamp>,
}

impl Application {
    /// A new pending application.
    pub fn new(
        id: ApplicationId,
        game_id: GameId,
        user_id: UserId,
        race_name: RaceName,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            game_id,
            user_id,
            race_name,
            status: ApplicationStatus::Pending,
            created_at: now,
            decided_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_moves() {
        for from in ApplicationStatus::ALL {
            for to in ApplicationStatus::ALL {
                let ok = from == ApplicationStatus::Pending && to != ApplicationStatus::Pending;
                assert_eq!(from.check(to).is_ok(), ok, "{from} -> {to}");
            }
            assert_eq!(ApplicationStatus::parse(from.as_str()), Some(from));
        }
    }
}
