//! The record of play: every played turn with its standings and every race's report (the
//! turn archive), and every orders submission the engine answered.
//!
//! The platform, not the engine, is the record of a game: reports are archived after every
//! turn (turn 0 included), so they stay readable once the engine is gone, and the result
//! of a finished game is read from its last archived turn.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{GameId, SubmissionId, Timestamp, UserId};

/// One race's standing after a turn, as the engine reported it (its `name` is the race).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    /// The race.
    pub race: String,
    /// The engine's score: what the standings are ordered by.
    pub score: f64,
    /// Whether the race is still in the game.
    pub alive: bool,
}

/// A turn the engine played and the platform archived with every race's report.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayedTurn {
    /// The game.
    pub game_id: GameId,
    /// The turn number; 0 is the state right after `/admin/init`.
    pub turn: u32,
    /// When the platform archived it (the turn's time as players see it).
    pub played_at: Timestamp,
    /// Whether the engine declared the game over with this turn.
    pub finished: bool,
    /// The winner, when the game finished with one.
    pub winner: Option<String>,
    /// Every race's standing after the turn.
    pub standings: Vec<Standing>,
}

impl PlayedTurn {
    /// Checks that `reports` all belong to this turn of this game: what every store
    /// checks before archiving them together. The error names the first stray report.
    pub fn check_reports(&self, reports: &[TurnReport]) -> Result<(), String> {
        match reports
            .iter()
            .find(|r| r.game_id != self.game_id || r.turn != self.turn)
        {
            Some(stray) => Err(format!(
                "report of game {} turn {} archived with turn {} of game {}",
                stray.game_id, stray.turn, self.turn, self.game_id
            )),
            None => Ok(()),
        }
    }

    /// The game's result, when this turn finished it.
    pub fn result(&self) -> Option<GameResult> {
        self.finished.then(|| GameResult {
            winner: self.winner.clone(),
            finished_at: self.played_at,
            standings: self.standings.clone(),
        })
    }
}

/// How a finished game ended: what the API shows and the game-over mail tells.
#[derive(Debug, Clone, PartialEq)]
pub struct GameResult {
    /// The winning race, if the engine named one.
    pub winner: Option<String>,
    /// When the last turn was archived.
    pub finished_at: Timestamp,
    /// The final standings.
    pub standings: Vec<Standing>,
}

/// One race's report of one turn, as the engine wrote it: JSON with at least
/// `{race, turn, text}` (engine contract), kept whole so structured fields survive.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnReport {
    /// The game.
    pub game_id: GameId,
    /// The turn.
    pub turn: u32,
    /// The race the report is for.
    pub race: String,
    /// The engine's report.
    pub report: serde_json::Value,
}

impl TurnReport {
    /// The report's `text`: what goes into mail. `None` when the engine left it out.
    pub fn text(&self) -> Option<&str> {
        self.report.get("text").and_then(serde_json::Value::as_str)
    }
}

/// One orders submission of a race for a turn and the engine's verdict on it. The latest
/// submission of a turn with `accepted: true` is what makes a race's orders "in".
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersSubmission {
    /// Stable id.
    pub id: SubmissionId,
    /// The game.
    pub game_id: GameId,
    /// The race the orders command.
    pub race: String,
    /// The player who sent them.
    pub user_id: UserId,
    /// The turn the orders are for (the engine's current turn + 1).
    pub turn: u32,
    /// When the player sent them, as the platform knows it: when the engine answered,
    /// for orders sent over HTTP; when their mail arrived, for orders by e-mail (which
    /// may be processed later). Later orders replace earlier ones by this instant.
    pub submitted_at: Timestamp,
    /// The orders' serialised size in bytes.
    pub size: u64,
    /// The engine's verdict.
    pub accepted: bool,
    /// The engine's errors or warnings.
    pub errors: Vec<String>,
    /// The orders as sent (any JSON value the engine understands).
    pub orders: serde_json::Value,
}

/// The words of a standings table: its column headers and each race's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandingsLabels<'a> {
    /// The race column's header.
    pub race: &'a str,
    /// The score column's header.
    pub score: &'a str,
    /// The state column's header.
    pub status: &'a str,
    /// A race still in the game.
    pub alive: &'a str,
    /// A race out of it.
    pub eliminated: &'a str,
}

impl StandingsLabels<'static> {
    /// The English words.
    pub const ENGLISH: Self = Self {
        race: "Race",
        score: "Score",
        status: "Status",
        alive: "alive",
        eliminated: "eliminated",
    };
}

/// Standings as a plain-text table for mail, best score first (ties by race name), with
/// a header and one numbered row per race; never JSON. In English: see
/// [`standings_table_in`] for other words.
pub fn standings_table(standings: &[Standing]) -> String {
    standings_table_in(standings, &StandingsLabels::ENGLISH)
}

/// [`standings_table`] in the words of `labels` (a mail in the recipient's language).
pub fn standings_table_in(standings: &[Standing], labels: &StandingsLabels<'_>) -> String {
    let mut rows: Vec<&Standing> = standings.iter().collect();
    rows.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.race.cmp(&b.race))
    });
    let race_header = labels.race.chars().count();
    let width = rows
        .iter()
        .map(|s| s.race.chars().count())
        .chain([race_header])
        .max()
        .unwrap_or(race_header);
    let scores: Vec<String> = rows.iter().map(|s| score_text(s.score)).collect();
    let score_header = labels.score.chars().count();
    let score_width = scores
        .iter()
        .map(String::len)
        .chain([score_header])
        .max()
        .unwrap_or(score_header);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "  #  {:<width$}  {:>score_width$}  {}",
        labels.race, labels.score, labels.status
    );
    for (place, (standing, score)) in rows.iter().zip(&scores).enumerate() {
        let status = if standing.alive {
            labels.alive
        } else {
            labels.eliminated
        };
        let _ = writeln!(
            table,
            "{:>3}  {:<width$}  {:>score_width$}  {status}",
            place + 1,
            standing.race,
            score
        );
    }
    table
}

/// A score as people write it: whole numbers without decimals, others with two.
fn score_text(score: f64) -> String {
    if score.fract() == 0.0 && score.abs() < 1e15 {
        format!("{score:.0}")
    } else {
        format!("{score:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(race: &str, score: f64, alive: bool) -> Standing {
        Standing {
            race: race.into(),
            score,
            alive,
        }
    }

    #[test]
    fn standings_table_is_sorted_aligned_text() {
        let table = standings_table(&[
            standing("Zorgons", 12.0, true),
            standing("Humans", 40.5, true),
            standing("Ur", 0.0, false),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "  #  Race     Score  Status");
        assert_eq!(lines[1], "  1  Humans   40.50  alive");
        assert_eq!(lines[2], "  2  Zorgons     12  alive");
        assert_eq!(lines[3], "  3  Ur           0  eliminated");
        assert!(!table.contains('{'), "never JSON: {table}");
    }

    #[test]
    fn result_only_for_a_finishing_turn() {
        let mut turn = PlayedTurn {
            game_id: GameId::from_uuid(uuid::Uuid::nil()),
            turn: 3,
            played_at: chrono::DateTime::UNIX_EPOCH,
            finished: false,
            winner: None,
            standings: vec![standing("A", 1.0, true)],
        };
        assert_eq!(turn.result(), None);
        turn.finished = true;
        turn.winner = Some("A".into());
        let result = turn.result();
        assert_eq!(result.as_ref().and_then(|r| r.winner.as_deref()), Some("A"));
        assert_eq!(result.map(|r| r.standings.len()), Some(1));
    }

    #[test]
    fn report_text_is_the_text_field() {
        let report = TurnReport {
            game_id: GameId::from_uuid(uuid::Uuid::nil()),
            turn: 0,
            race: "A".into(),
            report: serde_json::json!({"race": "A", "turn": 0, "text": "hello"}),
        };
        assert_eq!(report.text(), Some("hello"));
        let bare = TurnReport {
            report: serde_json::json!({"race": "A"}),
            ..report
        };
        assert_eq!(bare.text(), None);
    }
}
