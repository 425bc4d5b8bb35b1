//! The turn schedule of a game: a cron expression evaluated in UTC.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use croner::Cron;
use croner::parser::CronParser;
use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A turn schedule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Nothing was given.
    #[error("turn schedule is empty")]
    Empty,
    /// Not 5, 6 or 7 whitespace-separated fields.
    #[error(
        "turn schedule must have 5 fields (minute hour day-of-month month day-of-week), got {0}"
    )]
    FieldCount(usize),
    /// The cron parser refused the expression.
    #[error("turn schedule {expression:?} is not a valid cron expression: {reason}")]
    Invalid {
        /// The rejected expression.
        expression: String,
        /// What the parser objected to.
        reason: String,
    },
    /// The expression never fires (e.g. 30 February).
    #[error("turn schedule {0:?} never fires")]
    NeverFires(String),
}

/// A parsed cron expression in UTC: the standard 5-field form (`0 18 * * 1,3,5`), or the
/// 6-field form with a leading seconds field, or 7 fields with a trailing year.
#[derive(Clone)]
pub struct TurnSchedule {
    expression: String,
    cron: Cron,
}

impl TurnSchedule {
    /// Parses and checks that the schedule fires at least once in the future of the Unix
    /// epoch (so `0 0 30 2 *` is refused).
    pub fn parse(input: &str) -> Result<Self, ScheduleError> {
        let expression = input.split_whitespace().collect::<Vec<_>>().join(" ");
        let fields = expression.split(' ').filter(|f| !f.is_empty()).count();
        if fields == 0 {
            return Err(ScheduleError::Empty);
        }
        if !(5..=7).contains(&fields) {
            return Err(ScheduleError::FieldCount(fields));
        }
        let cron = CronParser::new()
            .parse(&expression)
            .map_err(|e| ScheduleError::Invalid {
                expression: expression.clone(),
                reason: e.to_string(),
            })?;
        let schedule = Self { expression, cron };
        if schedule.next_after(Timestamp::UNIX_EPOCH).is_none() {
            return Err(ScheduleError::NeverFires(schedule.expression));
        }
        Ok(schedule)
    }

    /// The normalised expression (single spaces).
    pub fn as_str(&self) -> &str {
        &self.expression
    }

    /// The first firing strictly after `after`, or `None` if it never fires again.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The first gap shorter than `min` between two consecutive firings after `from`,
    /// looked for over the next [`GAP_SAMPLES`] firings (a cron expression's pattern of
    /// gaps repeats within a year, and every pattern of minutes, hours and weekdays shows
    /// within that many firings); `None` when every gap seen is at least `min`.
    pub fn gap_shorter_than(&self, from: Timestamp, min: TimeDelta) -> Option<TimeDelta> {
        let mut previous = self.next_after(from)?;
        for _ in 0..GAP_SAMPLES {
            let next = self.next_after(previous)?;
            let gap = next - previous;
            if gap < min {
                return Some(gap);
            }
            previous = next;
        }
        None
    }
}

/// Firings [`TurnSchedule::gap_shorter_than`] looks at.
pub const GAP_SAMPLES: usize = 1_500;

impl fmt::Debug for TurnSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TurnSchedule")
            .field(&self.expression)
            .finish()
    }
}

impl fmt::Display for TurnSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl PartialEq for TurnSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl Eq for TurnSchedule {}

impl FromStr for TurnSchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for TurnSchedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expression)
    }
}

impl<'de> Deserialize<'de> for TurnSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn gaps_shorter_than_a_bound_are_found() {
        let from = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let hour = TimeDelta::hours(1);
        let gap = |e: &str| TurnSchedule::parse(e).unwrap().gap_shorter_than(from, hour);
        assert_eq!(gap("* * * * * *"), Some(TimeDelta::seconds(1)));
        assert_eq!(gap("*/5 * * * *"), Some(TimeDelta::minutes(5)));
        // One short gap a day is found, however rare.
        assert_eq!(gap("0,30 18 * * *"), Some(TimeDelta::minutes(30)));
        // Only on one weekday of the year's first month.
        assert_eq!(gap("0,1 18 * 1 5"), Some(TimeDelta::minutes(1)));
        assert_eq!(gap("0 18 * * 1,3,5"), None);
        assert_eq!(gap("0 * * * *"), None, "exactly the bound is allowed");
        assert_eq!(gap("0 0 1 1 *"), None);
    }

    #[test]
    fn mon_wed_fri_at_six() {
        let s = TurnSchedule::parse("  0 18 * * 1,3,5 ").unwrap();
        assert_eq!(s.as_str(), "0 18 * * 1,3,5");
        // 2026-11-25 is a Wednesday.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 18, 0, 0).unwrap();
        let next = s.next_after(now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap());
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        assert_eq!(TurnSchedule::parse("   "), Err(ScheduleError::Empty));
        assert_eq!(
            TurnSchedule::parse("* *"),
            Err(ScheduleError::FieldCount(2))
        );
        assert!(matches!(
            TurnSchedule::parse("61 * * * *"),
            Err(ScheduleError::Invalid { .. })
        ));
        assert!(matches!(
            TurnSchedule::parse("0 0 30 2 *"),
            Err(ScheduleError::NeverFires(_))
        ));
    }
}
