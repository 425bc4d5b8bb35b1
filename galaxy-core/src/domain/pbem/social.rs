//! Between the races of a game: applications for an open seat, and messages.

use serde::{Deserialize, Serialize};

use crate::domain::{GameId, MessageId, SeatApplicationId, Timestamp, UserId};

/// The longest message text, in characters (Unicode scalar values): the unit a page's
/// `maxlength` and a player count in, so "ä" costs what "a" does.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Where an application for an open seat stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatApplicationStatus {
    /// Waiting for the host.
    Pending,
    /// The applicant took over the race.
    Approved,
    /// Another applicant got the seat, or the old player reclaimed it.
    Rejected,
}

impl SeatApplicationStatus {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == input)
    }
}

/// A user's request to take over an open seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatApplication {
    /// Stable id.
    pub id: SeatApplicationId,
    /// The game.
    pub game_id: GameId,
    /// The race whose seat is open.
    pub race: String,
    /// The applicant.
    pub user_id: UserId,
    /// Where it stands.
    pub status: SeatApplicationStatus,
    /// When it was made.
    pub created_at: Timestamp,
}

/// A message's text: 1 to [`MAX_MESSAGE_CHARS`] characters, not only whitespace.
/// It is stored and delivered as plain text; no page renders it as HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    /// Checks the length and that there is something to read.
    pub fn parse(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err("message text is empty".into());
        }
        let chars = text.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(format!(
                "message text is {chars} characters, at most {MAX_MESSAGE_CHARS}"
            ));
        }
        Ok(Self(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message between the races of a game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceMessage {
    /// Stable id.
    pub id: MessageId,
    /// The game.
    pub game_id: GameId,
    /// The turn it was sent in (the last played turn).
    pub turn: u32,
    /// The sending player (never shown to anyone else).
    pub sender_user: UserId,
    /// The sending race.
    pub sender_race: String,
    /// Whether it went to every other race.
    pub to_all: bool,
    /// The receiving races, in byte order.
    pub recipients: Vec<String>,
    /// The text.
    pub text: String,
    /// When it was sent.
    pub sent_at: Timestamp,
}

impl RaceMessage {
    /// Whether `race` sent or received it.
    pub fn involves(&self, race: &str) -> bool {
        self.sender_race == race || self.recipients.iter().any(|r| r == race)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn message_text_bounds() {
        assert!(MessageText::parse("").is_err());
        assert!(MessageText::parse(" \n\t").is_err());
        assert!(MessageText::parse("x".repeat(MAX_MESSAGE_CHARS)).is_ok());
        // Counted in characters, as a page's `maxlength` counts: umlauts cost no more.
        assert!(MessageText::parse("ä".repeat(MAX_MESSAGE_CHARS)).is_ok());
        assert!(MessageText::parse("ä".repeat(MAX_MESSAGE_CHARS + 1)).is_err());
        assert_eq!(
            MessageText::parse("<b>hi</b>").unwrap().as_str(),
            "<b>hi</b>"
        );
    }
}
