//! The reasons the platform itself records with a status change, in English (as the
//! API shows them): fixed sentences, and how a game ended ([`Ending`], with its winner
//! and turn). Named, so that a client in another language can recognise and translate
//! them; any other reason (an engine's failure, say) is free text.

/// An admin paused the game.
pub const PAUSED_BY_ADMIN: &str = "paused by an admin";
/// An admin resumed the game.
pub const RESUMED_BY_ADMIN: &str = "resumed by an admin";
/// An admin stopped the game (it is cancelled, its reports kept).
pub const STOPPED_BY_ADMIN: &str = "stopped by an admin";
/// Enrollment closed at its deadline without enough players: the game is cancelled.
pub const ENROLLMENT_DEADLINE_PASSED: &str = "enrollment deadline passed";
/// The game filled up: enrollment closed.
pub const MAX_PLAYERS_REACHED: &str = "max players reached";
/// The game's engine container was gone when the runtime looked.
pub const CONTAINER_DISAPPEARED: &str = "the game's container disappeared";

/// How a game ended, as the platform records it when the engine declares the game
/// over: "won by RACE on turn N" or "ended on turn N". A client in another language
/// reads it back with [`Ending::parse`] and tells it in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// The engine named a winner (a race name, which may hold any words).
    Won {
        /// The winning race.
        winner: &'a str,
        /// The turn that ended the game.
        turn: u32,
    },
    /// The game ended without a winner.
    Ended {
        /// The turn that ended the game.
        turn: u32,
    },
}

impl<'a> Ending<'a> {
    /// The ending for a game over on `turn`, won by `winner` if it has one.
    pub fn new(winner: Option<&'a str>, turn: u32) -> Self {
        match winner {
            Some(winner) => Self::Won { winner, turn },
            None => Self::Ended { turn },
        }
    }

    /// The reason recorded with the `finished` status (English, as the API shows it).
    pub fn stated(&self) -> String {
        match self {
            Self::Won { winner, turn } => format!("won by {winner} on turn {turn}"),
            Self::Ended { turn } => format!("ended on turn {turn}"),
        }
    }

    /// The ending a recorded reason tells, when it is one ([`Ending::stated`] made
    /// it); `None` for any other reason. A race named "X on turn 3" still reads
    /// back whole: the turn is taken from the reason's end.
    pub fn parse(stated: &'a str) -> Option<Self> {
        if let Some(won) = stated.strip_prefix("won by ") {
            let (winner, turn) = won.rsplit_once(" on turn ")?;
            let turn = exact_turn(turn)?;
            return (!winner.is_empty()).then_some(Self::Won { winner, turn });
        }
        let turn = stated.strip_prefix("ended on turn ")?;
        Some(Self::Ended {
            turn: exact_turn(turn)?,
        })
    }
}

/// A turn number as [`Ending::stated`] writes it: digits only, no sign or padding.
fn exact_turn(digits: &str) -> Option<u32> {
    let turn: u32 = digits.parse().ok()?;
    (turn.to_string() == digits).then_some(turn)
}

#[cfg(test)]
mod tests {
    use super::Ending;

    #[test]
    fn an_ending_reads_back_as_it_was_stated() {
        for ending in [
            Ending::new(Some("Aldebarans"), 12),
            Ending::new(Some("Men on turn 3 of the Void"), 40),
            Ending::new(Some("won by ended on turn 1"), 2),
            Ending::new(None, 0),
            Ending::new(None, u32::MAX),
        ] {
            let stated = ending.stated();
            assert_eq!(Ending::parse(&stated), Some(ending), "{stated}");
        }
        assert_eq!(
            Ending::new(Some("Aldebarans"), 12).stated(),
            "won by Aldebarans on turn 12"
        );
        assert_eq!(Ending::new(None, 7).stated(), "ended on turn 7");
        for other in [
            "paused by an admin",
            "won by  on turn",
            "won by on turn 3",
            "won by Ann on turn 03",
            "won by Ann on turn +3",
            "ended on turn",
            "ended on turn 3 again",
            "ended on turn 99999999999",
            "the engine said: ended on turn 3",
        ] {
            assert_eq!(Ending::parse(other), None, "{other}");
        }
    }
}
