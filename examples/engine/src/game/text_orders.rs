//! The text form of orders, for players who write them by hand (in a mail): one order per
//! line, its `kind` first and its fields after it, either in a fixed order or as
//! `key=value`; blank lines and `#` comments are ignored. Each line becomes the JSON
//! object of the structured form, so both forms share one check and one set of errors.

use serde_json::{Map, Value};

/// The fields of each kind, in the order a line may give them without names.
fn fields_of(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "design" => Some(&["name", "attack", "defence", "speed", "cargo"]),
        "build_industry" => Some(&["planet"]),
        "build_ships" => Some(&["planet", "design"]),
        "move" => Some(&["fleet", "to", "ships"]),
        // Not an order: names the turn the orders are for (see `orders::validate`).
        "turn" => Some(&["turn"]),
        _ => None,
    }
}

/// Fields whose values are numbers.
const NUMERIC: [&str; 9] = [
    "attack", "defence", "speed", "cargo", "planet", "fleet", "to", "count", "turn",
];

/// One order line turned into its JSON object, with its line number (from 1); a line
/// that cannot be read is kept as the reason, so it is reported in place.
pub(super) struct TextOrder {
    /// The line it came from (from 1), for the error.
    pub line: usize,
    /// The order object, or why the line is not one.
    pub order: Result<Value, String>,
}

/// Splits orders text into orders (blank lines and `#` comments dropped).
pub(super) fn parse(text: &str) -> Vec<TextOrder> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let line = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
            (!line.is_empty()).then(|| TextOrder {
                line: i + 1,
                order: parse_line(line),
            })
        })
        .collect()
}

/// Splits a line into words; `"double quotes"` keep spaces inside one word (a design
/// named `"Colony Ship"`), also after `key=`.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if quoted {
        return Err("unclosed quote".to_owned());
    }
    if started {
        words.push(current);
    }
    Ok(words)
}

/// One line as an order object.
fn parse_line(line: &str) -> Result<Value, String> {
    let words = words(line)?;
    let Some((kind, rest)) = words.split_first() else {
        return Err("empty order".to_owned());
    };
    let kind = kind.to_lowercase();
    let Some(fields) = fields_of(&kind) else {
        return Err(format!(
            "unknown order {kind:?}; expected design, build_industry, build_ships or move \
             (or turn N, naming the turn the orders are for)"
        ));
    };
    let mut object = Map::new();
    object.insert("kind".to_owned(), Value::String(kind.clone()));
    let mut position = 0;
    for word in rest {
        let (key, value) = match word.split_once('=') {
            Some((key, value)) if fields.contains(&key) => (key, value),
            Some((key, _)) if !key.contains(':') => {
                return Err(format!("{kind} has no field {key:?}"));
            }
            _ => {
                let Some(key) = fields.get(position) else {
                    return Err(format!(
                        "too many fields for {kind} (expected {})",
                        fields.join(" ")
                    ));
                };
                position += 1;
                (*key, word.as_str())
            }
        };
        if object.contains_key(key) {
            return Err(format!("field {key} given twice"));
        }
        object.insert(key.to_owned(), field_value(key, value)?);
    }
    Ok(Value::Object(object))
}

/// A field's JSON value: numbers for numeric fields, ships as `Design:count,...`.
fn field_value(key: &str, value: &str) -> Result<Value, String> {
    if key == "ships" {
        let mut ships = Map::new();
        for part in value.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((design, count)) = part.rsplit_once(':') else {
                return Err(format!("ships {part:?} is not Design:count"));
            };
            ships.insert(design.trim().to_owned(), number("count", count.trim())?);
        }
        return Ok(Value::Object(ships));
    }
    if NUMERIC.contains(&key) {
        number(key, value)
    } else {
        Ok(Value::String(value.to_owned()))
    }
}

/// A whole number, or the reason it is not one.
fn number(key: &str, value: &str) -> Result<Value, String> {
    value
        .parse::<u32>()
        .map(Value::from)
        .map_err(|_| format!("{key} must be a whole number, got {value:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::parse;

    #[test]
    fn positional_and_named_fields_give_the_json_form() {
        let text = "# my turn\n\nbuild_industry 4\nbuild_ships 0 Raider\n\
                    move 3 7  # go\ndesign Raider attack=6 defence=2 speed=9 cargo=0\n\
                    move fleet=5 to=2 ships=\"Colony Ship:1,Raider:2\"\n";
        let orders: Vec<_> = parse(text)
            .into_iter()
            .map(|o| (o.line, o.order.unwrap()))
            .collect();
        assert_eq!(
            orders,
            vec![
                (3, json!({"kind": "build_industry", "planet": 4})),
                (
                    4,
                    json!({"kind": "build_ships", "planet": 0, "design": "Raider"})
                ),
                (5, json!({"kind": "move", "fleet": 3, "to": 7})),
                (
                    6,
                    json!({"kind": "design", "name": "Raider", "attack": 6, "defence": 2, "speed": 9, "cargo": 0})
                ),
                (
                    7,
                    json!({"kind": "move", "fleet": 5, "to": 2, "ships": {"Colony Ship": 1, "Raider": 2}})
                ),
            ]
        );
    }

    #[test]
    fn bad_lines_say_why() {
        let reasons: Vec<String> = parse("fly 1 2\nmove 1 x\nbuild_industry 1 2\nmove \"1\nmove 1 2 speed=3\nmove fleet=1 fleet=2")
            .into_iter()
            .map(|o| o.order.unwrap_err())
            .collect();
        assert!(reasons[0].contains("unknown order"), "{reasons:?}");
        assert!(
            reasons[1].contains("to must be a whole number"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("too many fields"), "{reasons:?}");
        assert!(reasons[3].contains("unclosed quote"), "{reasons:?}");
        assert!(reasons[4].contains("no field \"speed\""), "{reasons:?}");
        assert!(reasons[5].contains("given twice"), "{reasons:?}");
    }
}
