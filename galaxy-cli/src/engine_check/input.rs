//! What the checker cannot know about an engine and is told: the settings for init, the
//! orders file, the races. Bad input is a usage error, found before the engine is touched.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The races of the checked game, as the platform could name them (letters of any
/// script, spaces, `-` and `'`): names that must arrive intact through a path segment.
pub const RACE_NAMES: [&str; 8] = [
    "Red Dwarf",
    "Zorg-Prime",
    "Ælfheim's Heirs",
    "Deneb",
    "Ekwe Nation",
    "Fomalhaut",
    "Gliese",
    "Hadar",
];

/// Input the checker cannot use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The orders file cannot be read.
    #[error("cannot read the orders file {path}: {source}", path = .path.display())]
    OrdersUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The orders file is not what `--orders` takes.
    #[error(
        "the orders file {path} must be a JSON object {{\"valid\": <orders>, \"invalid\": <orders>}} (and optionally \"empty\"): {reason}",
        path = .path.display()
    )]
    OrdersShape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: OrdersFileError,
    },
    /// `--settings` is not a JSON object.
    #[error("--settings must be a JSON object (the engine's settings for init): {0}")]
    Settings(String),
    /// `--races` out of range.
    #[error("--races must be in 2..={max}, got {0}", max = RACE_NAMES.len())]
    Races(usize),
}

/// What is wrong with the text of an orders file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrdersFileError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// A required key is missing.
    #[error("no {0:?} key")]
    Missing(&'static str),
    /// No `"empty"` key, and none can be derived from the valid orders.
    #[error(
        "no \"empty\" key, and the valid orders are not an array, a string or an object to take the empty value of"
    )]
    NoEmpty,
    /// A key the file does not have.
    #[error("unknown key {0:?}")]
    UnknownKey(String),
}

/// The orders file: one valid and one invalid order set for the engine, and the empty set.
/// Strings may contain `{race}`, replaced by the race the set is submitted for.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersFile {
    /// Orders every race may give for turn 1.
    pub valid: Value,
    /// Orders the engine must refuse with `accepted: false`.
    pub invalid: Value,
    /// No orders: what later turns are played with. Given as `"empty"`, else the empty
    /// value of the valid set's type (`[]`, `""` or `{}`).
    pub empty: Value,
}

impl OrdersFile {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<Self, InputError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| InputError::OrdersUnreadable {
                path: path.to_owned(),
                source,
            })?;
        Self::parse(&text).map_err(|reason| InputError::OrdersShape {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses the file's text; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, OrdersFileError> {
        let value: Value = serde_json::from_str(text).map_err(OrdersFileError::NotJson)?;
        let Value::Object(mut map) = value else {
            return Err(OrdersFileError::NotObject);
        };
        let valid = map
            .remove("valid")
            .ok_or(OrdersFileError::Missing("valid"))?;
        let invalid = map
            .remove("invalid")
            .ok_or(OrdersFileError::Missing("invalid"))?;
        let empty = match map.remove("empty") {
            Some(empty) => empty,
            None => match &valid {
                Value::Array(_) => Value::Array(Vec::new()),
                Value::String(_) => Value::String(String::new()),
                Value::Object(_) => Value::Object(serde_json::Map::new()),
                _ => return Err(OrdersFileError::NoEmpty),
            },
        };
        if let Some(other) = map.keys().next() {
            return Err(OrdersFileError::UnknownKey(other.clone()));
        }
        Ok(Self {
            valid,
            invalid,
            empty,
        })
    }
}

/// `template` with every `{race}` in its strings (and keys) replaced by `race`.
pub fn for_race(template: &Value, race: &str) -> Value {
    match template {
        Value::String(s) => Value::String(s.replace("{race}", race)),
        Value::Array(items) => Value::Array(items.iter().map(|v| for_race(v, race)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.replace("{race}", race), for_race(v, race)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Checks `--settings`: a JSON object (`{}` when not given).
pub fn settings(raw: Option<&str>) -> Result<Value, InputError> {
    let Some(raw) = raw else {
        return Ok(Value::Object(serde_json::Map::new()));
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(InputError::Settings("not an object".to_owned())),
        Err(e) => Err(InputError::Settings(e.to_string())),
    }
}

/// The first `count` race names.
pub fn races(count: usize) -> Result<Vec<String>, InputError> {
    if !(2..=RACE_NAMES.len()).contains(&count) {
        return Err(InputError::Races(count));
    }
    Ok(RACE_NAMES[..count]
        .iter()
        .map(|s| (*s).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use galaxy_core::domain::race_name::RaceName;
    use serde_json::json;

    use super::{InputError, OrdersFile, RACE_NAMES, for_race, races, settings};

    #[test]
    fn the_races_are_names_the_platform_accepts() {
        for name in RACE_NAMES {
            assert_eq!(RaceName::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(races(3).unwrap().len(), 3);
        assert!(matches!(races(1), Err(InputError::Races(1))));
        assert!(races(RACE_NAMES.len() + 1).is_err());
    }

    #[test]
    fn orders_files_are_checked_and_the_empty_set_follows_the_valid_one() {
        let file = OrdersFile::parse(r#"{"valid": [{"kind": "x"}], "invalid": "nope"}"#).unwrap();
        assert_eq!(file.empty, json!([]));
        let file = OrdersFile::parse(r#"{"valid": "build", "invalid": "???"}"#).unwrap();
        assert_eq!(file.empty, json!(""));
        let file = OrdersFile::parse(r#"{"valid": 1, "invalid": 2, "empty": null}"#).unwrap();
        assert_eq!(file.empty, json!(null));
        for bad in [
            "",
            "[1]",
            r#"{"valid": []}"#,
            r#"{"invalid": []}"#,
            r#"{"valid": 1, "invalid": 2}"#,
            r#"{"valid": [], "invalid": [], "typo": 1}"#,
        ] {
            assert!(OrdersFile::parse(bad).is_err(), "{bad}");
        }
        let missing = OrdersFile::read(std::path::Path::new("/nonexistent/orders.json"));
        assert!(matches!(missing, Err(InputError::OrdersUnreadable { .. })));
    }

    #[test]
    fn race_placeholders_are_replaced_everywhere() {
        let template = json!({"{race}": ["design {race} Raider", 3, {"x": "{race}/{race}"}]});
        assert_eq!(
            for_race(&template, "Red Dwarf"),
            json!({"Red Dwarf": ["design Red Dwarf Raider", 3, {"x": "Red Dwarf/Red Dwarf"}]})
        );
    }

    #[test]
    fn settings_must_be_an_object() {
        assert_eq!(settings(None).unwrap(), json!({}));
        assert_eq!(
            settings(Some(r#"{"max_turns": 3}"#)).unwrap(),
            json!({"max_turns": 3})
        );
        for bad in ["", "{", "[]", "3"] {
            assert!(
                matches!(settings(Some(bad)), Err(InputError::Settings(_))),
                "{bad}"
            );
        }
    }
}
