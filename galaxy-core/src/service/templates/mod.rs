//! Mail templates of notifications: a subject, a plain-text body and an HTML body per
//! [`NotificationKind`] and locale, filled from the intent's payload (see [`render`] for
//! the placeholder rules).
//!
//! **Locale fallback.** A mail for `pt-BR` uses the `pt-BR` template if there is one,
//! else the `pt` template, else the `en` template; every kind has an `en` template in the
//! built-in set, so the built-in set always renders. The locale actually used is
//! reported (it goes into the mail's `Content-Language`).
//!
//! The built-in set covers `en` and `de`; templates are Rust constants compiled into the
//! binary. An embedding application may add or replace templates with
//! [`MailTemplates::insert`].

mod de;
mod en;
pub mod render;

use std::borrow::Cow;
use std::collections::HashMap;

use crate::domain::notification::NotificationKind;
use crate::domain::user::Locale;

use render::{Escape, push_escaped, substitute};
pub use render::{PER_RECIPIENT_KEY, TemplateContext, recipient_payload};

/// The locale every kind must have a template for: the last step of the fallback.
pub const FALLBACK_LOCALE: &str = "en";

/// One kind's mail in one locale. The bodies use `{{field}}` placeholders; the HTML body
/// is a fragment that is wrapped in a complete document when rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTemplate {
    /// Subject line.
    pub subject: Cow<'static, str>,
    /// Plain-text body.
    pub text: Cow<'static, str>,
    /// HTML body fragment (the inside of `<body>`).
    pub html: Cow<'static, str>,
}

/// A built-in template, as the locale modules write them.
#[derive(Debug, Clone, Copy)]
struct StaticTemplate {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

/// The fixed parts of a locale's mails.
#[derive(Debug, Clone, Copy)]
struct StaticLocale {
    /// The tag.
    tag: &'static str,
    /// Closing line of every mail: why the recipient gets it.
    footer: &'static str,
    /// Every kind's template.
    templates: &'static [(NotificationKind, StaticTemplate)],
    /// What a field reads as when the payload leaves it `null` (see [`render`]).
    words: &'static [(&'static str, &'static str)],
}

/// A rendered mail, ready to be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The locale whose template was used (after fallback).
    pub locale: Locale,
    /// Subject line (one line).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// Complete HTML document.
    pub html: String,
    /// Placeholders the payload did not fill (rendered as nothing).
    pub missing_fields: Vec<String>,
}

/// No template for a kind, not even in the fallback locale (only possible with a
/// template set that is not the built-in one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Nothing to render.
    #[error("no mail template for {kind} in {locale}, nor in its language, nor in en")]
    Missing {
        /// The kind.
        kind: NotificationKind,
        /// The locale asked for.
        locale: String,
    },
}

/// Templates by locale tag and kind, with footers by locale.
#[derive(Debug, Clone)]
pub struct MailTemplates {
    /// `(locale tag, kind)` -> template.
    templates: HashMap<(String, NotificationKind), MailTemplate>,
    /// Locale tag -> footer line.
    footers: HashMap<String, Cow<'static, str>>,
    /// `(locale tag, field)` -> what the field reads as when it is `null`.
    words: HashMap<(String, String), Cow<'static, str>>,
}

impl Default for MailTemplates {
    fn default() -> Self {
        Self::builtin()
    }
}

impl MailTemplates {
    /// The built-in templates (`en` and `de`).
    pub fn builtin() -> Self {
        let mut set = Self::empty();
        for locale in [en::LOCALE, de::LOCALE] {
            set.footers
                .insert(locale.tag.to_owned(), Cow::Borrowed(locale.footer));
            for (field, word) in locale.words {
                set.words.insert(
                    (locale.tag.to_owned(), (*field).to_owned()),
                    Cow::Borrowed(*word),
                );
            }
            for (kind, t) in locale.templates {
                let template = MailTemplate {
                    subject: Cow::Borrowed(t.subject),
                    text: Cow::Borrowed(t.text),
                    html: Cow::Borrowed(t.html),
                };
                set.templates
                    .insert((locale.tag.to_owned(), *kind), template);
            }
        }
        set
    }

    /// A set without any template (every render fails until templates are inserted).
    pub fn empty() -> Self {
        Self {
            templates: HashMap::new(),
            footers: HashMap::new(),
            words: HashMap::new(),
        }
    }

    /// Sets what `field` reads as in `locale` when a payload leaves it `null`: the
    /// built-in set says, for instance, `deadline` "(no deadline set yet)" / "(noch kein
    /// Termin)", so services never write English into a payload. A locale without the
    /// word uses its language's, then English.
    pub fn insert_word(
        &mut self,
        locale: &Locale,
        field: &str,
        word: impl Into<Cow<'static, str>>,
    ) {
        self.words
            .insert((locale.as_str().to_owned(), field.to_owned()), word.into());
    }

    /// What `field` reads as in `locale` when it is `null`, after the same fallback as
    /// the templates (the locale, its language, English).
    pub fn word(&self, locale: &Locale, field: &str) -> Option<&str> {
        [locale.as_str(), locale.language(), FALLBACK_LOCALE]
            .into_iter()
            .find_map(|tag| self.words.get(&(tag.to_owned(), field.to_owned())))
            .map(|word| word.as_ref())
    }

    /// The word `name` in `locale` with its own `{{field}}` placeholders filled from
    /// `fields` (a reason with its turn numbers, say), as plain text; `None` when the
    /// set has no such word.
    pub fn word_filled(
        &self,
        locale: &Locale,
        name: &str,
        fields: &serde_json::Value,
    ) -> Option<String> {
        let word = self.word(locale, name)?;
        let context = TemplateContext::from_value(fields);
        let none = |_: &str| None;
        Some(substitute(
            word,
            &context,
            Escape::None,
            &none,
            &mut Vec::new(),
        ))
    }

    /// Adds or replaces the template of `kind` in `locale`.
    pub fn insert(&mut self, locale: &Locale, kind: NotificationKind, template: MailTemplate) {
        self.templates
            .insert((locale.as_str().to_owned(), kind), template);
    }

    /// Removes the template of `kind` in `locale` (to exercise the fallback).
    pub fn remove(&mut self, locale: &Locale, kind: NotificationKind) -> Option<MailTemplate> {
        self.templates.remove(&(locale.as_str().to_owned(), kind))
    }

    /// The template for `kind` in `locale` after fallback, with the locale it is in.
    pub fn find(&self, kind: NotificationKind, locale: &Locale) -> Option<(&str, &MailTemplate)> {
        [locale.as_str(), locale.language(), FALLBACK_LOCALE]
            .into_iter()
            .find_map(|tag| {
                self.templates
                    .get_key_value(&(tag.to_owned(), kind))
                    .map(|((tag, _), template)| (tag.as_str(), template))
            })
    }

    /// Renders the mail of `kind` for a recipient in `locale`. Missing payload fields
    /// render as nothing and are logged; only a kind without any template fails.
    pub fn render(
        &self,
        kind: NotificationKind,
        locale: &Locale,
        context: &TemplateContext,
    ) -> Result<RenderedMail, TemplateError> {
        let (tag, template) = self
            .find(kind, locale)
            .ok_or_else(|| TemplateError::Missing {
                kind,
                locale: locale.as_str().to_owned(),
            })?;
        if tag != locale.as_str() {
            tracing::debug!(%kind, wanted = locale.as_str(), used = tag, "mail template fell back");
        }
        let used = Locale::parse(tag).unwrap_or_default();
        let footer = self
            .footers
            .get(tag)
            .map(|f| f.as_ref())
            .unwrap_or_default();
        let mut missing = Vec::new();
        let words = |field: &str| self.word(&used, field);
        let subject = substitute(
            &template.subject,
            context,
            Escape::OneLine,
            &words,
            &mut missing,
        );
        let mut text = substitute(&template.text, context, Escape::None, &words, &mut missing);
        if !footer.is_empty() {
            text.push_str("\n-- \n");
            text.push_str(footer);
            text.push('\n');
        }
        let body = substitute(&template.html, context, Escape::Html, &words, &mut missing);
        let html = html_document(used.as_str(), &subject, &body, footer);
        if !missing.is_empty() {
            tracing::warn!(
                %kind,
                locale = tag,
                fields = ?missing,
                "mail template fields missing from the payload; rendered empty"
            );
        }
        Ok(RenderedMail {
            locale: used,
            subject,
            text,
            html,
            missing_fields: missing,
        })
    }
}

/// Wraps a rendered HTML fragment in a complete, minimal document.
fn html_document(lang: &str, subject: &str, body: &str, footer: &str) -> String {
    let mut out = String::with_capacity(body.len() + 400);
    out.push_str("<!DOCTYPE html>\n<html lang=\"");
    push_escaped(&mut out, lang, Escape::Html);
    out.push_str("\">\n<head><meta charset=\"utf-8\"><title>");
    push_escaped(&mut out, subject, Escape::Html);
    out.push_str("</title></head>\n<body style=\"font-family: sans-serif; line-height: 1.4\">\n");
    out.push_str(body);
    if !footer.is_empty() {
        out.push_str("\n<hr>\n<p style=\"color: #777; font-size: small\">");
        push_escaped(&mut out, footer, Escape::Html);
        out.push_str("</p>");
    }
    out.push_str("\n</body>\n</html>\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_has_an_english_and_a_german_template() {
        let set = MailTemplates::builtin();
        for locale in ["en", "de"] {
            let locale = Locale::parse(locale).unwrap();
            for kind in NotificationKind::ALL {
                let (tag, _) = set.find(kind, &locale).unwrap();
                assert_eq!(tag, locale.as_str(), "{kind} in {}", locale.as_str());
            }
        }
    }

    #[test]
    fn every_refusal_of_mailed_orders_is_worded_in_english_and_german() {
        use crate::ports::Refusal;
        let set = MailTemplates::builtin();
        let (en, de) = (Locale::default(), Locale::parse("de").unwrap());
        let status = "finished".to_owned();
        let refusals = [
            Refusal::NotInPlay { status },
            Refusal::NotAPlayer,
            Refusal::TooLate { played: 3, turn: 4 },
            Refusal::Superseded { turn: 4 },
            Refusal::NoOrders,
            Refusal::Unreachable { tries: 5 },
            Refusal::TooLarge {
                size: 300_000,
                max: 262_144,
            },
            Refusal::TooMany,
            Refusal::NotNextTurn { turn: 4, next: 5 },
            Refusal::Eliminated {
                race: "Zorgons".into(),
            },
        ];
        for refusal in refusals {
            let (code, fields) = refusal.code_and_fields();
            let english = set.word_filled(&en, code, &fields).unwrap();
            let german = set.word_filled(&de, code, &fields).unwrap();
            assert!(!english.contains("{{") && !german.contains("{{"), "{code}");
            assert_ne!(english, german, "{code} has its German words");
        }
        // The reasons of the desk's errors are the service's words in English.
        let too_large = Refusal::TooLarge {
            size: 300_000,
            max: 262_144,
        };
        let (code, fields) = too_large.code_and_fields();
        assert_eq!(
            set.word_filled(&en, code, &fields).unwrap(),
            too_large.to_string()
        );
    }

    #[test]
    fn falls_back_to_the_language_then_to_english() {
        let mut set = MailTemplates::builtin();
        let kind = NotificationKind::GameStarted;
        let de_at = Locale::parse("de-AT").unwrap();
        assert_eq!(set.find(kind, &de_at).unwrap().0, "de");
        let fr = Locale::parse("fr-CA").unwrap();
        assert_eq!(set.find(kind, &fr).unwrap().0, "en");
        set.remove(&Locale::parse("de").unwrap(), kind);
        assert_eq!(set.find(kind, &de_at).unwrap().0, "en");
        set.remove(&Locale::default(), kind);
        let err = set
            .render(kind, &de_at, &TemplateContext::from_value(&json!({})))
            .unwrap_err();
        assert!(err.to_string().contains("game_started"), "{err}");
    }

    #[test]
    fn renders_text_and_an_escaped_html_document() {
        let set = MailTemplates::builtin();
        let context = TemplateContext::from_value(&json!({
            "game_name": "<Andromeda & Co>", "race_name": "Zorgons",
        }));
        let mail = set
            .render(
                NotificationKind::ApplicationApproved,
                &Locale::parse("de-CH").unwrap(),
                &context,
            )
            .unwrap();
        assert_eq!(mail.locale.as_str(), "de");
        assert!(
            mail.subject.contains("<Andromeda & Co>"),
            "{}",
            mail.subject
        );
        assert!(mail.text.contains("Zorgons"), "{}", mail.text);
        assert!(
            mail.html.contains("&lt;Andromeda &amp; Co&gt;"),
            "{}",
            mail.html
        );
        assert!(!mail.html.contains("<Andromeda"), "{}", mail.html);
        assert!(mail.html.starts_with("<!DOCTYPE html>\n<html lang=\"de\">"));
        assert!(mail.missing_fields.contains(&"recipient_name".to_owned()));
    }
}
