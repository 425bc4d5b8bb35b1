//! A refusal as a page tells it in its language: the services' messages are English
//! (they are the API's), so a German page says the common ones in German by their error
//! code, keeping the English message where it carries what only it knows (which field,
//! how many attempts are left, the engine's own words).

use super::Lang;

/// How a German page tells an error of one code.
enum Told {
    /// In these words, instead of the message.
    Whole(&'static str),
    /// In these words, then the message (its specifics).
    Lead(&'static str),
}

/// The German for the errors of `code` (`None`: the English message as it is).
fn german(code: &str) -> Option<Told> {
    use Told::{Lead, Whole};
    Some(match code {
        "invalid_request" => Lead("Die Anfrage war nicht lesbar"),
        "unauthenticated" => Lead("Anmeldung fehlgeschlagen"),
        "forbidden" => Lead("Nicht erlaubt"),
        "admin_only" => Whole("Diese Seite braucht die Admin-Rolle."),
        "csrf" => Whole(
            "Das Formular ist veraltet oder kam nicht von dieser Seite; lade die Seite neu und \
             versuche es noch einmal.",
        ),
        "not_found" => Whole("Nicht gefunden (oder nicht für dich sichtbar)."),
        "method_not_allowed" => Whole("Diese Seite nimmt diese Anfrage nicht an."),
        "turn_not_played" => Whole("Dieser Zug ist noch nicht gespielt."),
        "mail_in_off" => Whole("Befehle per Mail sind auf diesem Server ausgeschaltet."),
        "engine_not_found" | "engine_conflict" | "engine_refused" => {
            Lead("Die Engine des Spiels lehnt ab")
        }
        "conflict" | "invalid_transition" | "invalid_status" => {
            Lead("Das geht beim jetzigen Stand nicht")
        }
        "no_quorum" => Lead("Zu wenige Spieler angenommen"),
        "game_full" => Whole("Das Spiel ist voll."),
        "race_name_taken" => Whole("Dieser Volksname ist vergeben; wähle einen anderen."),
        "race_name_in_use" => {
            Whole("Dieser Volksname gehört schon zu einer Bewerbung; wähle einen anderen.")
        }
        "already_applied" => Whole("Du hast dich schon für dieses Spiel beworben."),
        "not_enrolling" => Whole("Das Spiel nimmt keine Anmeldungen an."),
        "not_pending" => Whole("Über diese Bewerbung ist schon entschieden."),
        "runtime_unhealthy" => Lead("Mit der Engine des Spiels geht das so nicht"),
        "turn_in_progress" => {
            Whole("Gerade läuft ein Zug dieses Spiels; versuche es gleich noch einmal.")
        }
        "turn_not_next" => Lead("Das ist nicht der nächste Zug"),
        "race_eliminated" => {
            Whole("Dein Volk ist aus dem Spiel ausgeschieden und nimmt keine Befehle mehr an.")
        }
        "orders_superseded" => {
            Whole("Später geschickte Befehle gelten; diese wurden nicht übernommen.")
        }
        "payload_too_large" => Whole("Das ist zu groß."),
        "validation" => Lead("Ungültige Eingabe"),
        "orders_too_large" => Lead("Die Befehle sind zu groß"),
        "rate_limited" => Lead("Zu viele Versuche"),
        "internal" => {
            Whole("Ein Fehler im Server (er ist protokolliert); versuche es später noch einmal.")
        }
        "unavailable" => {
            Whole("Ein Dienst ist gerade nicht erreichbar; versuche es gleich noch einmal.")
        }
        "engine_unavailable" => Whole(
            "Die Engine des Spiels ist gerade nicht erreichbar; versuche es gleich noch einmal.",
        ),
        "container_runtime_unavailable" => Whole(
            "Die Container-Umgebung ist gerade nicht erreichbar; versuche es später noch einmal.",
        ),
        "orders_busy" => Whole(
            "Gerade werden andere Befehle deines Volks übertragen; schicke sie gleich noch \
             einmal.",
        ),
        _ => return None,
    })
}

/// The German name of an HTTP status an error page may show (`None`: HTTP's own,
/// English reason phrase).
fn german_status(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Ungültige Anfrage",
        401 => "Nicht angemeldet",
        403 => "Nicht erlaubt",
        404 => "Nicht gefunden",
        405 => "Methode nicht erlaubt",
        408 => "Zeitüberschreitung der Anfrage",
        409 => "Konflikt",
        413 => "Zu groß",
        415 => "Nicht unterstütztes Format",
        422 => "Nicht verarbeitbar",
        429 => "Zu viele Anfragen",
        500 => "Interner Fehler",
        502 => "Fehlerhafte Antwort eines Dienstes",
        503 => "Nicht verfügbar",
        504 => "Zeitüberschreitung eines Dienstes",
        _ => return None,
    })
}

impl Lang {
    /// An error page's title in this language: the status code and its name (`404 Not
    /// Found`, `404 Nicht gefunden`).
    pub fn status_title(self, status: axum::http::StatusCode) -> String {
        let name = match self {
            Self::De => german_status(status.as_u16()),
            Self::En => None,
        };
        let name = name.or(status.canonical_reason()).unwrap_or("");
        format!("{} {name}", status.as_u16())
    }

    /// An error of `code` with the service's (English) `message`, as a page in this
    /// language tells it.
    pub fn error(self, code: &str, message: &str) -> String {
        match (self, german(code)) {
            (Self::De, Some(Told::Whole(text))) => text.to_owned(),
            (Self::De, Some(Told::Lead(lead))) => format!("{lead}: {message}"),
            _ => message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_page_titles_name_the_status_in_the_pages_language() {
        use axum::http::StatusCode;
        assert_eq!(
            Lang::De.status_title(StatusCode::NOT_FOUND),
            "404 Nicht gefunden"
        );
        assert_eq!(
            Lang::En.status_title(StatusCode::NOT_FOUND),
            "404 Not Found"
        );
        assert_eq!(
            Lang::De.status_title(StatusCode::TOO_MANY_REQUESTS),
            "429 Zu viele Anfragen"
        );
        // One without a German name keeps HTTP's.
        assert_eq!(
            Lang::De.status_title(StatusCode::IM_A_TEAPOT),
            "418 I'm a teapot"
        );
    }

    #[test]
    fn german_pages_tell_known_codes_in_german_and_keep_what_only_the_message_knows() {
        let taken = Lang::De.error("race_name_taken", "race name \"Zorg\" is taken");
        assert!(
            taken.starts_with("Dieser Volksname ist vergeben"),
            "{taken}"
        );
        let wrong = Lang::De.error("unauthenticated", "wrong login code; 2 attempts left");
        assert_eq!(
            wrong,
            "Anmeldung fehlgeschlagen: wrong login code; 2 attempts left"
        );
        let engine = Lang::De.error(
            "runtime_unhealthy",
            "not possible with the game's engine as it is: its runtime is removed",
        );
        assert!(
            engine.starts_with("Mit der Engine des Spiels geht das so nicht")
                && engine.contains("removed"),
            "the reason is kept: {engine}"
        );
        let unknown = Lang::De.error("some_new_code", "as the API says");
        assert_eq!(unknown, "as the API says");
        let english = Lang::En.error("race_name_taken", "race name \"Zorg\" is taken");
        assert_eq!(english, "race name \"Zorg\" is taken");
    }

    /// Every code the API documents that a page may show has its German: a new code
    /// added to the API's table without one fails here.
    #[test]
    fn every_documented_error_code_has_its_german() {
        let api = include_str!("../../../../docs/api.md");
        let errors = api.split("## Errors").nth(1).unwrap_or_default();
        let mut codes: Vec<&str> = errors
            .lines()
            .skip_while(|line| !line.starts_with("| status"))
            .take_while(|line| line.starts_with('|'))
            .filter(|line| line.starts_with("| "))
            .filter_map(|line| line.split('|').nth(2))
            .flat_map(|column| column.split('`').skip(1).step_by(2))
            .filter(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        assert!(codes.len() > 25, "the table was not read: {codes:?}");
        // Only the mail-in pipe's (no page posts a raw message).
        let pipe_only = ["message_unreadable", "message_too_large"];
        let missing: Vec<&str> = codes
            .into_iter()
            .filter(|code| !pipe_only.contains(code) && german(code).is_none())
            .collect();
        assert!(missing.is_empty(), "no German for {missing:?}");
    }
}
