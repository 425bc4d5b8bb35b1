//! The habits of play-by-email hosts (SPEC section 3, play): a turn that runs as soon as
//! every live race is ready, deadline reminders, races that go idle after missed turns and
//! whose seat the host may hand to a replacement, vacation turns, and messages between
//! races. This module holds the per-game settings and the pure decisions; the stores keep
//! the per-race record and the services act on it.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::schedule::TurnSchedule;
use super::{GameId, MessageId, SeatApplicationId, Timestamp, UserId};

/// Default of [`PbemSettings::min_turn_gap`]: one hour.
pub const DEFAULT_MIN_TURN_GAP: TimeDelta = TimeDelta::hours(1);
/// Default of [`PbemSettings::idle_after`].
pub const DEFAULT_IDLE_AFTER: u32 = 3;
/// Default of [`PbemSettings::vacation_turns`].
pub const DEFAULT_VACATION_TURNS: u32 = 2;
/// The largest `idle_after` and `vacation_turns` a game may set: beyond it the habit
/// means nothing.
pub const MAX_TURN_COUNT: u32 = 1000;
/// The most reminders one game may ask for.
pub const MAX_REMINDERS: usize = 8;
/// The largest message text, in bytes of UTF-8.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// The default reminders: a day and two hours before the deadline (those shorter than
/// the turn period apply when a game gives none).
pub fn default_reminders() -> Vec<TimeDelta> {
    vec![TimeDelta::hours(24), TimeDelta::hours(2)]
}

/// A game's play-by-email settings, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbemSettings {
    /// Whether a turn runs as soon as every live race is ready.
    pub early_turn: bool,
    /// After an early turn, the next deadline is the first scheduled time at least this
    /// far away, so players get time to read their reports.
    pub min_turn_gap: TimeDelta,
    /// How long before the deadline players without orders are reminded, longest first.
    pub reminders: Vec<TimeDelta>,
    /// Consecutive turns without orders after which a race is idle.
    pub idle_after: u32,
    /// Vacation turns each player may take in the game.
    pub vacation_turns: u32,
    /// Whether messages hide the sender's race from their recipients.
    pub anonymous_messages: bool,
}

impl Default for PbemSettings {
    fn default() -> Self {
        Self {
            early_turn: true,
            min_turn_gap: DEFAULT_MIN_TURN_GAP,
            reminders: default_reminders(),
            idle_after: DEFAULT_IDLE_AFTER,
            vacation_turns: DEFAULT_VACATION_TURNS,
            anonymous_messages: false,
        }
    }
}

/// The settings as a create request gives them: every field optional, durations as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PbemSettingsInput {
    /// See [`PbemSettings::early_turn`].
    pub early_turn: Option<bool>,
    /// See [`PbemSettings::min_turn_gap`] (`"1h"`).
    pub min_turn_gap: Option<String>,
    /// See [`PbemSettings::reminders`] (`["24h", "2h"]`).
    pub reminders: Option<Vec<String>>,
    /// See [`PbemSettings::idle_after`].
    pub idle_after: Option<u32>,
    /// See [`PbemSettings::vacation_turns`].
    pub vacation_turns: Option<u32>,
    /// See [`PbemSettings::anonymous_messages`].
    pub anonymous_messages: Option<bool>,
}

/// A setting was refused: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PbemSettingsError {
    /// The request field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn refused(field: &'static str, message: impl Into<String>) -> PbemSettingsError {
    PbemSettingsError {
        field,
        message: message.into(),
    }
}

impl PbemSettingsInput {
    /// Validates the input against the game's schedule: reminders must be shorter than
    /// the shortest gap between two turns after `now` (given ones are refused; omitted
    /// ones fall back to the defaults that fit).
    pub fn resolve(
        self,
        schedule: &TurnSchedule,
        now: Timestamp,
    ) -> Result<PbemSettings, PbemSettingsError> {
        let defaults = PbemSettings::default();
        let min_turn_gap = match self.min_turn_gap {
            None => defaults.min_turn_gap,
            Some(text) => parse_duration(&text).map_err(|m| refused("min_turn_gap", m))?,
        };
        // A reminder fits when no gap between two turns is as short as it.
        let fits = |r: TimeDelta| {
            schedule
                .gap_shorter_than(now, r + TimeDelta::seconds(1))
                .is_none()
        };
        let reminders = match self.reminders {
            None => defaults
                .reminders
                .into_iter()
                .filter(|r| fits(*r))
                .collect(),
            Some(texts) => {
                if texts.len() > MAX_REMINDERS {
                    return Err(refused(
                        "reminders",
                        format!("at most {MAX_REMINDERS} reminders"),
                    ));
                }
                let mut reminders = Vec::with_capacity(texts.len());
                for text in &texts {
                    let reminder = parse_duration(text).map_err(|m| refused("reminders", m))?;
                    if !fits(reminder) {
                        return Err(refused(
                            "reminders",
                            format!(
                                "reminder {text:?} is not shorter than the turn period of {}",
                                schedule.as_str()
                            ),
                        ));
                    }
                    reminders.push(reminder);
                }
                reminders.sort_by(|a, b| b.cmp(a));
                reminders.dedup();
                reminders
            }
        };
        let count = |field: &'static str, value: Option<u32>, default: u32, min: u32| {
            let value = value.unwrap_or(default);
            if (min..=MAX_TURN_COUNT).contains(&value) {
                Ok(value)
            } else {
                Err(refused(
                    field,
                    format!("must be between {min} and {MAX_TURN_COUNT}"),
                ))
            }
        };
        Ok(PbemSettings {
            early_turn: self.early_turn.unwrap_or(defaults.early_turn),
            min_turn_gap,
            reminders,
            idle_after: count("idle_after", self.idle_after, defaults.idle_after, 1)?,
            vacation_turns: count(
                "vacation_turns",
                self.vacation_turns,
                defaults.vacation_turns,
                0,
            )?,
            anonymous_messages: self
                .anonymous_messages
                .unwrap_or(defaults.anonymous_messages),
        })
    }
}

/// How the settings are stored (a JSON object; durations in seconds). Fields a stored
/// object lacks take their defaults, so games created before these settings existed
/// read as if created with the defaults.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct StoredPbem {
    early_turn: bool,
    min_turn_gap_secs: i64,
    reminders_secs: Vec<i64>,
    idle_after: u32,
    vacation_turns: u32,
    anonymous_messages: bool,
}

impl Default for StoredPbem {
    fn default() -> Self {
        let d = PbemSettings::default();
        Self {
            early_turn: d.early_turn,
            min_turn_gap_secs: d.min_turn_gap.num_seconds(),
            reminders_secs: d.reminders.iter().map(TimeDelta::num_seconds).collect(),
            idle_after: d.idle_after,
            vacation_turns: d.vacation_turns,
            anonymous_messages: d.anonymous_messages,
        }
    }
}

impl PbemSettings {
    /// The stored form (see the stores).
    pub fn to_json(&self) -> serde_json::Value {
        let stored = StoredPbem {
            early_turn: self.early_turn,
            min_turn_gap_secs: self.min_turn_gap.num_seconds(),
            reminders_secs: self.reminders.iter().map(TimeDelta::num_seconds).collect(),
            idle_after: self.idle_after,
            vacation_turns: self.vacation_turns,
            anonymous_messages: self.anonymous_messages,
        };
        serde_json::to_value(stored).unwrap_or_default()
    }

    /// Reads the stored form; `Err` names what is wrong with it. Durations are held to the
    /// range [`parse_duration`] accepts: a stored value beyond it (a damaged row, a
    /// hand-edited dump) is an error here rather than an overflow, and so a panic, in
    /// the date arithmetic of a later turn.
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        let stored: StoredPbem = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let reminders = stored
            .reminders_secs
            .into_iter()
            .map(|secs| stored_duration("reminders_secs", secs))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            early_turn: stored.early_turn,
            min_turn_gap: stored_duration("min_turn_gap_secs", stored.min_turn_gap_secs)?,
            reminders,
            idle_after: stored.idle_after,
            vacation_turns: stored.vacation_turns,
            anonymous_messages: stored.anonymous_messages,
        })
    }

    /// The deadline after an early turn played at `now`: the first scheduled time at
    /// least `min_turn_gap` away.
    pub fn deadline_after_early(
        &self,
        schedule: &TurnSchedule,
        now: Timestamp,
    ) -> Option<Timestamp> {
        use chrono::{DurationRound, Timelike};
        // The first firing at or after `earliest`, rounded up to a whole second (the
        // schedule fires on whole seconds).
        let earliest = now + self.min_turn_gap;
        let whole = earliest
            .duration_trunc(TimeDelta::seconds(1))
            .unwrap_or(earliest);
        let ceil = if earliest.nanosecond() == 0 {
            whole
        } else {
            whole + TimeDelta::seconds(1)
        };
        schedule.next_after(ceil - TimeDelta::seconds(1))
    }

    /// The reminder owed at `now` for a deadline at `deadline`: the shortest offset whose
    /// moment (`deadline - offset`) has passed, while the deadline has not. Only the
    /// latest one is owed, so a server back after downtime sends one reminder, not a
    /// burst of stale ones.
    pub fn reminder_due(&self, deadline: Timestamp, now: Timestamp) -> Option<TimeDelta> {
        if now >= deadline {
            return None;
        }
        self.reminders
            .iter()
            .copied()
            .filter(|offset| deadline - *offset <= now)
            .min()
    }
}

/// The shortest and the longest duration a setting may have, in seconds.
const DURATION_SECS: std::ops::RangeInclusive<i64> = 1..=365 * 86_400;

/// A stored duration in seconds, if it is within [`DURATION_SECS`].
fn stored_duration(field: &str, secs: i64) -> Result<TimeDelta, String> {
    if DURATION_SECS.contains(&secs) {
        Ok(TimeDelta::seconds(secs))
    } else {
        Err(format!(
            "{field}: {secs} is out of range (1 to {} seconds)",
            DURATION_SECS.end()
        ))
    }
}

/// Parses a duration as people write it: a whole number and a unit, `s`, `m`, `h` or
/// `d` (`"45s"`, `"90m"`, `"24h"`, `"2d"`); at least one second, at most 365 days.
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let bad = || format!("{text:?} is not a duration like \"45s\", \"90m\", \"24h\" or \"2d\"");
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    if !DURATION_SECS.contains(&seconds) {
        return Err(format!(
            "{text:?} is out of range: at least 1s, at most 365d"
        ));
    }
    Ok(TimeDelta::seconds(seconds))
}

/// A duration as [`parse_duration`] reads it, in the largest unit that divides it.
pub fn format_duration(duration: TimeDelta) -> String {
    let s = duration.num_seconds();
    match s {
        s if s != 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s != 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s != 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What a race is, as every player of the game sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaceState {
    /// Played by its player.
    Active,
    /// Missed `idle_after` turns in a row; the engine plays it without orders.
    Idle,
    /// Its player is on vacation this turn.
    Vacation,
    /// Idle, and its host offers the seat to a replacement player.
    OpenSeat,
}

impl RaceState {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Idle => "idle",
            Self::Vacation => "vacation",
            Self::OpenSeat => "open_seat",
        }
    }
}

/// The platform's record of one race of a running game: who plays it, its missed turns,
/// vacation and seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceRecord {
    /// The game.
    pub game_id: GameId,
    /// The race (as the engine knows it; never changes).
    pub race: String,
    /// Who plays it now (a replacement player takes it over).
    pub user_id: UserId,
    /// Consecutive turns run without its orders (vacation turns do not count).
    pub missed_turns: u32,
    /// Whether it went idle (and has not sent orders since).
    pub idle: bool,
    /// The turn its player declared ready for without orders, if any.
    pub ready_turn: Option<u32>,
    /// The first turn of its current or coming vacation.
    pub vacation_from: Option<u32>,
    /// The last turn of that vacation.
    pub vacation_until: Option<u32>,
    /// Vacation turns taken (or booked) so far in the game.
    pub vacation_used: u32,
    /// Whether the host opened its seat to replacements.
    pub seat_open: bool,
}

impl RaceRecord {
    /// A fresh record for `race` played by `user_id`.
    pub fn new(game_id: GameId, race: impl Into<String>, user_id: UserId) -> Self {
        Self {
            game_id,
            race: race.into(),
            user_id,
            missed_turns: 0,
            idle: false,
            ready_turn: None,
            vacation_from: None,
            vacation_until: None,
            vacation_used: 0,
            seat_open: false,
        }
    }

    /// The seat goes to `player`, a replacement: the race starts afresh for them, as it
    /// did for its first player (not idle, no missed turns, no ready mark, no vacation and
    /// a whole vacation budget: what the previous player booked was their absence, not
    /// the newcomer's), its seat closed. Returns the previous player.
    pub fn hand_over(&mut self, player: UserId) -> UserId {
        let previous = self.user_id;
        *self = Self::new(self.game_id, std::mem::take(&mut self.race), player);
        previous
    }

    /// Whether its player is on vacation for `turn`.
    pub fn on_vacation(&self, turn: u32) -> bool {
        matches!((self.vacation_from, self.vacation_until), (Some(from), Some(until)) if (from..=until).contains(&turn))
    }

    /// The turns a vacation of `turns` from `from` covers, as `(first, last)`: it
    /// extends a current or coming vacation that reaches `from` (or the turn before),
    /// else starts at `from`.
    pub fn vacation_span(&self, from: u32, turns: u32) -> (u32, u32) {
        match (self.vacation_from, self.vacation_until) {
            (Some(start), Some(end)) if end.saturating_add(1) >= from && turns > 0 => (
                start.min(from),
                end.max(from.saturating_sub(1)).saturating_add(turns),
            ),
            _ => (from, from.saturating_add(turns).saturating_sub(1)),
        }
    }

    /// What the race is for `turn` (the turn being played next).
    pub fn state(&self, turn: u32) -> RaceState {
        if self.seat_open {
            RaceState::OpenSeat
        } else if self.idle {
            RaceState::Idle
        } else if self.on_vacation(turn) {
            RaceState::Vacation
        } else {
            RaceState::Active
        }
    }

    /// Whether the race is ready for `turn`: its latest submission was accepted
    /// (`orders_in`) or its player marked it ready without orders.
    pub fn ready(&self, turn: u32, orders_in: bool) -> bool {
        orders_in || self.ready_turn == Some(turn)
    }

    /// Whether an early turn waits for this race: only active races do.
    pub fn holds_early_turn(&self, turn: u32) -> bool {
        self.state(turn) == RaceState::Active
    }
}

/// A change to a race's "ready without orders" mark ([`RaceRecord::ready_turn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyMark {
    /// Ready for this turn without orders.
    Set(u32),
    /// The mark for this turn taken back (orders submitted for it now decide). A mark for
    /// another turn stays: the mark of a turn already played is what its tally reads,
    /// whatever the player sends for the next one before the tally.
    Clear(u32),
}

impl ReadyMark {
    /// The mark a race has after this change, when it had `current`.
    pub fn apply(self, current: Option<u32>) -> Option<u32> {
        match self {
            Self::Set(turn) => Some(turn),
            Self::Clear(turn) if current == Some(turn) => None,
            Self::Clear(_) => current,
        }
    }
}

/// Whether `turn` may run early: at least one active race, and every active race ready.
/// `ready(race)` says whether a race is ready; races eliminated by the engine are not in
/// `races`.
pub fn early_turn_ready(
    races: &[RaceRecord],
    turn: u32,
    ready: impl Fn(&RaceRecord) -> bool,
) -> bool {
    let mut waiting = races.iter().filter(|r| r.holds_early_turn(turn)).peekable();
    waiting.peek().is_some() && waiting.all(ready)
}

/// A player's preferences for one game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GamePreferences {
    /// Whether they get deadline reminders.
    pub reminders: bool,
    /// Whether messages from other races also come by mail (push always).
    pub message_mail: bool,
}

impl Default for GamePreferences {
    fn default() -> Self {
        Self {
            reminders: true,
            message_mail: true,
        }
    }
}

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

/// A message's text: 1 to [`MAX_MESSAGE_BYTES`] bytes of UTF-8, not only whitespace.
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
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "message text is {} bytes, at most {MAX_MESSAGE_BYTES}",
                text.len()
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
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(h: u32, m: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 5, h, m, 0).unwrap()
    }

    fn daily() -> TurnSchedule {
        TurnSchedule::parse("0 18 * * *").unwrap()
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("24h"), Ok(TimeDelta::hours(24)));
        assert_eq!(parse_duration("90m"), Ok(TimeDelta::minutes(90)));
        assert_eq!(parse_duration("45s"), Ok(TimeDelta::seconds(45)));
        assert_eq!(parse_duration("2d"), Ok(TimeDelta::days(2)));
        for bad in [
            "",
            "h",
            "5",
            "-5m",
            "1.5h",
            "0s",
            "366d",
            "5 parsecs",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(TimeDelta::minutes(90)), "90m");
        assert_eq!(format_duration(TimeDelta::hours(24)), "1d");
        assert_eq!(format_duration(TimeDelta::seconds(45)), "45s");
    }

    #[test]
    fn reminders_must_be_shorter_than_the_turn_period() {
        let hourly = TurnSchedule::parse("0 * * * *").unwrap();
        let given = |r: &[&str]| PbemSettingsInput {
            reminders: Some(r.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert!(given(&["1h"]).resolve(&hourly, at(0, 0)).is_err());
        assert!(given(&["2h"]).resolve(&hourly, at(0, 0)).is_err());
        let ok = given(&["10m", "59m"]).resolve(&hourly, at(0, 0)).unwrap();
        assert_eq!(
            ok.reminders,
            vec![TimeDelta::minutes(59), TimeDelta::minutes(10)]
        );
        // Omitted: the defaults that fit (neither fits an hourly game; 2h fits a daily
        // one, 24h does not).
        let none = PbemSettingsInput::default();
        assert!(
            none.clone()
                .resolve(&hourly, at(0, 0))
                .unwrap()
                .reminders
                .is_empty()
        );
        assert_eq!(
            none.resolve(&daily(), at(0, 0)).unwrap().reminders,
            vec![TimeDelta::hours(2)]
        );
        let weekly = TurnSchedule::parse("0 18 * * 1").unwrap();
        let defaults = PbemSettingsInput::default()
            .resolve(&weekly, at(0, 0))
            .unwrap();
        assert_eq!(defaults, PbemSettings::default());
    }

    #[test]
    fn counts_are_bounded() {
        let input = PbemSettingsInput {
            idle_after: Some(0),
            ..Default::default()
        };
        assert_eq!(
            input.resolve(&daily(), at(0, 0)).unwrap_err().field,
            "idle_after"
        );
        let input = PbemSettingsInput {
            vacation_turns: Some(MAX_TURN_COUNT + 1),
            ..Default::default()
        };
        assert_eq!(
            input.resolve(&daily(), at(0, 0)).unwrap_err().field,
            "vacation_turns"
        );
    }

    #[test]
    fn stored_form_round_trips_and_defaults_missing_fields() {
        let settings = PbemSettings {
            early_turn: false,
            min_turn_gap: TimeDelta::minutes(90),
            reminders: vec![TimeDelta::hours(3)],
            idle_after: 5,
            vacation_turns: 0,
            anonymous_messages: true,
        };
        assert_eq!(PbemSettings::from_json(settings.to_json()), Ok(settings));
        assert_eq!(
            PbemSettings::from_json(serde_json::json!({})),
            Ok(PbemSettings::default())
        );
    }

    #[test]
    fn stored_durations_out_of_range_are_errors_not_panics() {
        // `TimeDelta::seconds` panics beyond about 292 million years, and a later
        // `deadline - offset` overflows far sooner: both are refused when read.
        for (field, value) in [
            ("min_turn_gap_secs", serde_json::json!(i64::MAX)),
            ("min_turn_gap_secs", serde_json::json!(0)),
            ("min_turn_gap_secs", serde_json::json!(-5)),
            ("reminders_secs", serde_json::json!([3600, i64::MIN])),
            ("reminders_secs", serde_json::json!([365 * 86_400 + 1])),
        ] {
            let read = PbemSettings::from_json(serde_json::json!({ field: value }));
            let Err(error) = read else {
                panic!("{field} = {value} was taken: {read:?}");
            };
            assert!(error.starts_with(field), "{field}: {error}");
        }
        let longest = serde_json::json!({"reminders_secs": [365 * 86_400], "min_turn_gap_secs": 1});
        let settings = PbemSettings::from_json(longest).unwrap();
        assert_eq!(settings.reminders, vec![TimeDelta::days(365)]);
        assert_eq!(settings.min_turn_gap, TimeDelta::seconds(1));
    }

    #[test]
    fn the_deadline_after_an_early_turn_keeps_the_gap() {
        let s = PbemSettings::default();
        // Every 30 minutes, gap 1 h: an early turn at 10:10 moves the deadline to 11:30
        // (11:00 is only 50 minutes away), at 10:00 to 11:00 (exactly the gap).
        let half_hourly = TurnSchedule::parse("0,30 * * * *").unwrap();
        assert_eq!(
            s.deadline_after_early(&half_hourly, at(10, 10)),
            Some(at(11, 30))
        );
        assert_eq!(
            s.deadline_after_early(&half_hourly, at(10, 0)),
            Some(at(11, 0))
        );
    }

    #[test]
    fn only_the_latest_reminder_is_due() {
        let s = PbemSettings::default();
        let deadline = at(18, 0);
        assert_eq!(
            s.reminder_due(deadline, at(17, 59) - TimeDelta::hours(24)),
            None
        );
        assert_eq!(
            s.reminder_due(deadline, at(18, 0) - TimeDelta::hours(24)),
            Some(TimeDelta::hours(24))
        );
        assert_eq!(
            s.reminder_due(deadline, at(16, 0)),
            Some(TimeDelta::hours(2))
        );
        assert_eq!(s.reminder_due(deadline, at(18, 0)), None);
    }

    #[test]
    fn early_turns_wait_for_active_races_only() {
        let game = GameId::from_uuid(uuid::Uuid::nil());
        let user = UserId::from_uuid(uuid::Uuid::nil());
        let mut a = RaceRecord::new(game, "A", user);
        let mut b = RaceRecord::new(game, "B", user);
        let ready_a = |r: &RaceRecord| r.race == "A";
        assert!(!early_turn_ready(&[a.clone(), b.clone()], 4, ready_a));
        b.idle = true;
        assert!(early_turn_ready(&[a.clone(), b.clone()], 4, ready_a));
        b.idle = false;
        b.vacation_from = Some(4);
        b.vacation_until = Some(5);
        assert_eq!(b.state(4), RaceState::Vacation);
        assert_eq!(b.state(6), RaceState::Active);
        assert!(early_turn_ready(&[a.clone(), b.clone()], 4, ready_a));
        assert!(!early_turn_ready(&[a.clone(), b.clone()], 6, ready_a));
        // Nobody active: no early turn (it would run every tick).
        a.idle = true;
        assert!(!early_turn_ready(&[a.clone(), b], 4, |_| true));
        a.ready_turn = Some(7);
        assert!(a.ready(7, false) && !a.ready(8, false) && a.ready(8, true));
    }

    #[test]
    fn clearing_a_ready_mark_takes_back_only_that_turns() {
        assert_eq!(ReadyMark::Set(3).apply(None), Some(3));
        assert_eq!(ReadyMark::Set(4).apply(Some(3)), Some(4));
        assert_eq!(ReadyMark::Clear(3).apply(Some(3)), None);
        assert_eq!(
            ReadyMark::Clear(4).apply(Some(3)),
            Some(3),
            "turn 3's mark stays"
        );
        assert_eq!(ReadyMark::Clear(4).apply(None), None);
    }

    #[test]
    fn message_text_bounds() {
        assert!(MessageText::parse("").is_err());
        assert!(MessageText::parse(" \n\t").is_err());
        assert!(MessageText::parse("x".repeat(MAX_MESSAGE_BYTES)).is_ok());
        assert!(MessageText::parse("é".repeat(MAX_MESSAGE_BYTES / 2 + 1)).is_err());
        assert_eq!(
            MessageText::parse("<b>hi</b>").unwrap().as_str(),
            "<b>hi</b>"
        );
    }

    #[test]
    fn a_handed_over_race_starts_afresh_for_its_new_player() {
        let game = GameId::from_uuid(uuid::Uuid::nil());
        let (old, new) = (
            UserId::from_uuid(uuid::Uuid::from_u128(1)),
            UserId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let mut race = RaceRecord::new(game, "Bolgs", old);
        race.missed_turns = 3;
        race.idle = true;
        race.ready_turn = Some(5);
        race.vacation_from = Some(5);
        race.vacation_until = Some(7);
        race.vacation_used = 3;
        race.seat_open = true;
        assert_eq!(race.state(5), RaceState::OpenSeat);
        assert_eq!(race.hand_over(new), old);
        assert_eq!(race, RaceRecord::new(game, "Bolgs", new));
        assert_eq!(race.state(5), RaceState::Active);
    }
}
