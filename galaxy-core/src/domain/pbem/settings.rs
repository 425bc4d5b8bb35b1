//! A game's play-by-email settings (fixed at creation: the early turn, its minimum gap,
//! reminders, idle races, vacation turns) and the durations they are written in.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;
use crate::domain::schedule::TurnSchedule;

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

/// The time left until a deadline as a mail says it ("2h", "1h 30m", "1d 6h"): to the
/// nearest minute, at least one, in its two largest units. A reminder may go out later
/// than its offset (the turn before ran early, the server was down), so it says what is
/// left, not the offset it was due at.
pub fn format_time_left(left: TimeDelta) -> String {
    let minutes = ((left.num_seconds() + 30) / 60).max(1);
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (mins, "m")]
        .into_iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n != 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(h: u32, m: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 5, h, m, 0).unwrap()
    }

    #[test]
    fn time_left_is_told_to_the_minute_in_two_units() {
        for (secs, told) in [
            (7200, "2h"),
            (5400, "1h 30m"),
            (5399, "1h 30m"),
            (5369, "1h 29m"),
            (86_400 + 6 * 3600 + 59, "1d 6h"),
            (86_400 + 45 * 60, "1d"),
            (2 * 86_400 + 3600 + 60, "2d 1h"),
            (600, "10m"),
            (10, "1m"),
            (0, "1m"),
        ] {
            assert_eq!(format_time_left(TimeDelta::seconds(secs)), told, "{secs} s");
        }
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
}
