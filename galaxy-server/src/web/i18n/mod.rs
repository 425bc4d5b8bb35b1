//! The pages' words in English and German, chosen the way mails choose their template: the
//! user's locale (`de`, `de-AT`, ... fall back to their language, anything else to
//! English), or for a signed-out visitor the browser's `Accept-Language`.
//!
//! Every string is a field of [`Text`] (or [`AdminText`] for the admin pages), so a
//! missing translation does not compile.

use axum::http::{HeaderMap, header};
use galaxy_core::domain::user::Locale;

mod admin;
mod errors;
mod text;

use admin::{ADMIN_DE, ADMIN_EN};
pub use admin::{AdminText, MAIL_STATUSES};
pub use text::Text;
use text::{DE, EN};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English, the fallback (as for mails).
    En,
    /// German.
    De,
}

impl Lang {
    /// Every language the pages have.
    pub const ALL: [Self; 2] = [Self::En, Self::De];

    /// The language for a user's locale (`de-CH` is German, `fr` is English).
    pub fn of_locale(locale: &str) -> Self {
        let language = locale.split(['-', '_']).next().unwrap_or_default();
        if language.eq_ignore_ascii_case("de") {
            Self::De
        } else {
            Self::En
        }
    }

    /// The first of the browser's preferred languages that the pages have.
    pub fn of_accept_language(headers: &HeaderMap) -> Self {
        let Some(value) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Self::En;
        };
        for tag in value.split(',') {
            let tag = tag.split(';').next().unwrap_or_default().trim();
            let language = tag.split('-').next().unwrap_or_default();
            if language.eq_ignore_ascii_case("de") {
                return Self::De;
            }
            if language.eq_ignore_ascii_case("en") {
                return Self::En;
            }
        }
        Self::En
    }

    /// The `lang` attribute of the page.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
        }
    }

    /// The language as an account's locale: what a visitor who signs up on a page in
    /// this language gets, so the pages and mails stay in it after the login.
    pub fn locale(self) -> Locale {
        Locale::parse(self.code()).unwrap_or_default()
    }

    /// The page's words.
    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::De => &DE,
        }
    }

    /// The admin pages' words.
    pub fn admin(self) -> &'static AdminText {
        match self {
            Self::En => &ADMIN_EN,
            Self::De => &ADMIN_DE,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::http::HeaderValue;
    use galaxy_core::domain::game::GameStatus;

    #[test]
    fn the_reasons_the_platform_records_are_told_in_each_language() {
        use galaxy_core::domain::game::reasons::{self, Ending};
        let de = Lang::De.text();
        // A game's ending, with its winner and turn, and free text as it was.
        let finished = GameStatus::Finished;
        let won = Ending::new(Some("Men of {turn}"), 12).stated();
        assert_eq!(
            de.reason(finished, &won),
            "Gewonnen von Men of {turn} in Zug 12."
        );
        assert_eq!(
            Lang::En.text().reason(finished, &won),
            "Won by Men of {turn} on turn 12."
        );
        let ended = Ending::new(None, 3).stated();
        assert_eq!(de.reason(finished, &ended), "Beendet in Zug 3.");
        // An ending's words are an ending's only when the game finished (an engine's
        // failure that reads like one is told as it was).
        assert_eq!(de.reason(GameStatus::StartFailed, &ended), ended);
        let paused = GameStatus::Paused;
        assert_eq!(
            de.reason(paused, reasons::PAUSED_BY_ADMIN),
            "Von der Verwaltung angehalten."
        );
        assert_eq!(de.reason(paused, "engine said no"), "engine said no");
        assert_eq!(
            de.known_reason(reasons::PAUSED_BY_ADMIN),
            Some("Von der Verwaltung angehalten.")
        );
        assert_eq!(
            de.known_reason(reasons::ENROLLMENT_DEADLINE_PASSED),
            Some("Die Anmeldefrist ist ohne genug Spieler verstrichen.")
        );
        assert_eq!(
            Lang::En.text().known_reason(reasons::STOPPED_BY_ADMIN),
            Some("Stopped by an admin.")
        );
        // Every one of them, in both languages, and each its own words.
        for lang in Lang::ALL {
            let told: Vec<_> = [
                reasons::PAUSED_BY_ADMIN,
                reasons::RESUMED_BY_ADMIN,
                reasons::STOPPED_BY_ADMIN,
                reasons::ENROLLMENT_DEADLINE_PASSED,
                reasons::MAX_PLAYERS_REACHED,
                reasons::CONTAINER_DISAPPEARED,
            ]
            .iter()
            .map(|reason| lang.text().known_reason(reason).unwrap())
            .collect();
            let mut unique = told.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), told.len(), "{lang:?}: {told:?}");
        }
        // Free text (an engine's failure) is told as it was.
        assert_eq!(de.known_reason("engine exited with status 3"), None);
    }

    #[test]
    fn locales_fall_back_to_their_language_then_english() {
        assert_eq!(Lang::of_locale("de"), Lang::De);
        assert_eq!(Lang::of_locale("de-AT"), Lang::De);
        assert_eq!(Lang::of_locale("fr"), Lang::En);
        assert_eq!(Lang::of_locale(""), Lang::En);
    }

    #[test]
    fn accept_language_takes_the_first_known() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr-CH, de;q=0.8, en;q=0.5"),
        );
        assert_eq!(Lang::of_accept_language(&headers), Lang::De);
        assert_eq!(Lang::of_accept_language(&HeaderMap::new()), Lang::En);
    }
}
