//! The substitution engine: `{{field}}` placeholders filled from a notification's payload,
//! in one pass, HTML-escaped where the output is HTML.
//!
//! Rules, chosen so that a payload can never break a mail:
//! - `{{ name }}` (spaces inside the braces are ignored) is replaced by the payload value
//!   `name`; `{{a.b}}` reads the field `b` of the object `a`.
//! - Strings are inserted as they are, numbers and booleans as written in JSON, arrays of
//!   scalars joined by `, `, other arrays and objects as compact JSON, `null` as the
//!   locale's word for that field when it has one (a deadline not scheduled, a winner
//!   there is none of: services leave such a field `null` rather than writing English
//!   into the payload), else as nothing.
//! - A field the payload lacks renders as nothing and is reported to the caller (which
//!   logs it); it is never an error.
//! - Inserted values are not scanned again, so a payload value containing `{{...}}` stays
//!   literal text. A `{{` without a closing `}}` is copied as it is.

use serde_json::{Map, Value};

use crate::domain::UserId;

/// The key under which a payload carries per-recipient fields (e.g. each player's own
/// turn report): `{"per_recipient": {"<user id>": {"report_text": "..."}}}`.
pub const PER_RECIPIENT_KEY: &str = "per_recipient";

/// How inserted values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// As they are (plain-text bodies).
    None,
    /// Line breaks become spaces (subject lines).
    OneLine,
    /// `& < > " '` become entities (HTML bodies).
    Html,
}

/// The payload of `intent` as one recipient should see it: the top-level fields, with
/// that recipient's entry of [`PER_RECIPIENT_KEY`] merged over them and the other
/// recipients' entries removed. Push events carry this, so no player receives another
/// player's report. A payload that is not an object yields an empty object.
pub fn recipient_payload(payload: &Value, recipient: UserId) -> Value {
    let Value::Object(fields) = payload else {
        return Value::Object(Map::new());
    };
    let mut own = fields.clone();
    let per_recipient = own.remove(PER_RECIPIENT_KEY);
    if let Some(Value::Object(mine)) = per_recipient
        .as_ref()
        .and_then(|p| p.get(recipient.to_string()))
    {
        for (key, value) in mine {
            own.insert(key.clone(), value.clone());
        }
    }
    Value::Object(own)
}

/// What a template is rendered with: the recipient's payload plus `recipient_name`.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateContext {
    /// Field values by name.
    fields: Map<String, Value>,
}

impl TemplateContext {
    /// The context for one recipient of a payload (see [`recipient_payload`]), with the
    /// recipient's display name as `recipient_name` unless the payload sets it.
    pub fn for_recipient(payload: &Value, recipient: UserId, display_name: &str) -> Self {
        let mut fields = match recipient_payload(payload, recipient) {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        fields
            .entry("recipient_name")
            .or_insert_with(|| Value::String(display_name.to_owned()));
        Self { fields }
    }

    /// A context of exactly these fields (a non-object gives an empty context).
    pub fn from_value(payload: &Value) -> Self {
        match payload {
            Value::Object(fields) => Self {
                fields: fields.clone(),
            },
            _ => Self { fields: Map::new() },
        }
    }

    /// A top-level text field, if present (the turn mails read `report_text` to attach
    /// it instead).
    pub fn text_field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// Sets a top-level field.
    pub fn set(&mut self, name: &str, value: Value) {
        self.fields.insert(name.to_owned(), value);
    }

    /// The value at a dotted path, if present.
    fn lookup(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let first = parts.next()?;
        let mut current = self.fields.get(first)?;
        for part in parts {
            current = match current {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

/// Fills the placeholders of `template`; a `null` field is the word `words` gives for
/// its name, if any; the names of fields the context lacks are pushed onto `missing`
/// (once each).
pub(crate) fn substitute<'w>(
    template: &str,
    context: &TemplateContext,
    escape: Escape,
    words: &dyn Fn(&str) -> Option<&'w str>,
    missing: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            // An unclosed placeholder: the remainder is literal text.
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match context.lookup(name) {
            Some(Value::Null) => {
                if let Some(word) = words(name) {
                    push_escaped(&mut out, word, escape);
                }
            }
            Some(value) => write_value(&mut out, value, escape),
            None => {
                if !missing.iter().any(|m| m == name) {
                    missing.push(name.to_owned());
                }
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Appends `value` as the rules in the module docs say.
fn write_value(out: &mut String, value: &Value, escape: Escape) {
    let text = match value {
        Value::Null => return,
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(items) if items.iter().all(is_scalar) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    };
    push_escaped(out, &text, escape);
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// Appends `text` escaped for the output kind.
pub(crate) fn push_escaped(out: &mut String, text: &str, escape: Escape) {
    match escape {
        Escape::None => out.push_str(text),
        Escape::OneLine => {
            out.extend(
                text.chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
            );
        }
        Escape::Html => {
            for c in text.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#39;"),
                    other => out.push(other),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use uuid::Uuid;

    fn no_words(_: &str) -> Option<&'static str> {
        None
    }

    fn render(template: &str, payload: Value, escape: Escape) -> (String, Vec<String>) {
        let mut missing = Vec::new();
        let out = substitute(
            template,
            &TemplateContext::from_value(&payload),
            escape,
            &no_words,
            &mut missing,
        );
        (out, missing)
    }

    #[test]
    fn a_null_field_is_the_locale_word_for_it() {
        let words = |name: &str| (name == "deadline").then_some("<nicht angesetzt>");
        let context = TemplateContext::from_value(&json!({"deadline": null, "race": null}));
        let mut missing = Vec::new();
        let out = substitute(
            "{{deadline}}|{{race}}|{{winner}}",
            &context,
            Escape::Html,
            &words,
            &mut missing,
        );
        assert_eq!(out, "&lt;nicht angesetzt&gt;||");
        assert_eq!(
            missing,
            vec!["winner".to_owned()],
            "a word is for null, not absent"
        );
    }

    #[test]
    fn fills_fields_and_reports_missing_ones() {
        let payload = json!({"game": {"name": "Andromeda"}, "turn": 7, "ok": true,
                             "list": ["a", 1], "obj": {"x": [1, {"y": 2}]}, "none": null});
        let (out, missing) = render(
            "{{ game.name }} t{{turn}} {{ok}} [{{list}}] {{obj.x.1.y}} <{{none}}> <{{nope}}>{{nope}}",
            payload,
            Escape::None,
        );
        assert_eq!(out, "Andromeda t7 true [a, 1] 2 <> <>");
        assert_eq!(missing, vec!["nope".to_owned()]);
    }

    #[test]
    fn escapes_html_and_never_expands_twice() {
        let payload = json!({"name": "<b>\"Tom\" & 'Jerry'</b>", "evil": "{{name}}"});
        let (out, _) = render("<p>{{name}}</p>{{evil}}", payload, Escape::Html);
        assert_eq!(
            out,
            "<p>&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;</p>{{name}}"
        );
        let (subject, _) = render(
            "Hi {{name}}",
            json!({"name": "a\r\nBcc: x"}),
            Escape::OneLine,
        );
        assert_eq!(subject, "Hi a  Bcc: x");
    }

    #[test]
    fn unclosed_placeholders_and_odd_payloads_stay_literal() {
        assert_eq!(render("a {{b", json!({"b": 1}), Escape::None).0, "a {{b");
        assert_eq!(render("{{}}x", json!({}), Escape::None).0, "x");
        assert_eq!(render("[{{a}}]", json!([1, 2]), Escape::None).0, "[]");
        assert_eq!(render("[{{a}}]", json!("text"), Escape::None).0, "[]");
    }

    #[test]
    fn a_recipient_sees_only_their_own_entry() {
        let a = UserId::from_uuid(Uuid::from_u128(1));
        let b = UserId::from_uuid(Uuid::from_u128(2));
        let payload = json!({
            "game_name": "G", "turn": 3,
            "per_recipient": {a.to_string(): {"report_text": "A's report"},
                              b.to_string(): {"report_text": "B's report"}}
        });
        let seen = recipient_payload(&payload, a);
        assert_eq!(
            seen,
            json!({"game_name": "G", "turn": 3, "report_text": "A's report"})
        );
        let context = TemplateContext::for_recipient(&payload, b, "Bea");
        let out = substitute(
            "{{recipient_name}}: {{report_text}}",
            &context,
            Escape::None,
            &no_words,
            &mut Vec::new(),
        );
        assert_eq!(out, "Bea: B's report");
        assert_eq!(recipient_payload(&json!(null), a), json!({}));
    }

    proptest! {
        #[test]
        fn never_panics_and_html_output_has_no_raw_markup_from_values(
            template in "[a-z{} .<>&]{0,40}",
            value in "\\PC{0,40}",
        ) {
            let payload = json!({"a": value, "b": {"c": value}});
            let mut missing = Vec::new();
            let context = TemplateContext::from_value(&payload);
            let out = substitute(&template, &context, Escape::Html, &no_words, &mut missing);
            let fixed = substitute("{{a}}{{b.c}}", &context, Escape::Html, &no_words, &mut missing);
            prop_assert!(!fixed.contains('<') && !fixed.contains('>'));
            let _ = out;
        }
    }
}
