//! The admin pages' words: [`AdminText`], in English and German.

use galaxy_core::domain::health::HealthEventKind;
use galaxy_core::domain::notification::Channel;
use galaxy_core::domain::runtime::RuntimeStatus;
use galaxy_core::domain::user::{Role, UserStatus};

/// The admin pages' words.
#[derive(Debug)]
pub struct AdminText {
    /// "Users".
    pub users: &'static str,
    /// "Games".
    pub games: &'static str,
    /// "Runtime and health".
    pub health: &'static str,
    /// "Mail and dead letters".
    pub mail: &'static str,
    /// "More".
    pub more: &'static str,
    /// "E-mail or name contains".
    pub search_label: &'static str,
    /// "Search".
    pub search: &'static str,
    /// "E-mail".
    pub email: &'static str,
    /// "Name".
    pub name: &'static str,
    /// "Roles".
    pub roles: &'static str,
    /// "Status".
    pub status: &'static str,
    /// "Actions".
    pub actions: &'static str,
    /// "Until (UTC)".
    pub until: &'static str,
    /// "permanently".
    pub permanently: &'static str,
    /// "Block".
    pub block: &'static str,
    /// "Unblock".
    pub unblock: &'static str,
    /// "Filter".
    pub filter: &'static str,
    /// "any".
    pub any: &'static str,
    /// "Game".
    pub game: &'static str,
    /// "Players".
    pub players: &'static str,
    /// "Force next turn".
    pub force: &'static str,
    /// "Pause".
    pub pause: &'static str,
    /// "Resume".
    pub resume: &'static str,
    /// "Retry start".
    pub retry_start: &'static str,
    /// Create a paused game's engine again (its container is gone).
    pub recreate: &'static str,
    /// "Stop".
    pub stop: &'static str,
    /// The question a Stop asks before it is sent (it ends the game for good).
    pub stop_confirm: &'static str,
    /// Asked before forcing the next turn.
    pub force_confirm: &'static str,
    /// Cancel a game whose start failed.
    pub cancel: &'static str,
    /// The question a Cancel asks before it is sent.
    pub cancel_confirm: &'static str,
    /// "Runtime records".
    pub records: &'static str,
    /// "Engine".
    pub engine: &'static str,
    /// "Turn".
    pub turn: &'static str,
    /// "Next turn".
    pub next_turn: &'static str,
    /// "Healthy".
    pub healthy: &'static str,
    /// "Health events".
    pub events: &'static str,
    /// "When".
    pub when: &'static str,
    /// "Kind".
    pub kind: &'static str,
    /// "Detail".
    pub detail: &'static str,
    /// "Mail deliveries".
    pub deliveries: &'static str,
    /// "Created".
    pub created: &'static str,
    /// "To".
    pub to: &'static str,
    /// "Attempts".
    pub attempts: &'static str,
    /// "Last error".
    pub last_error: &'static str,
    /// "Retry".
    pub retry: &'static str,
    /// "Notification dead letters".
    pub dead_letters: &'static str,
    /// "None.".
    pub none: &'static str,
    /// "Updated".
    pub updated: &'static str,
    /// "User".
    pub user: &'static str,
    /// "Channel".
    pub channel: &'static str,
    /// "Admin".
    pub admin: &'static str,
    /// A user's status: active, blocked until a time, blocked for good.
    pub user_statuses: [&'static str; 3],
    /// A mail's status: pending, sending, sent, retrying, dead.
    pub mail_statuses: [&'static str; 5],
    /// A runtime record's status, in the order of [`RuntimeStatus::ALL`].
    pub runtime_statuses: [&'static str; RuntimeStatus::ALL.len()],
    /// A health event's kind, in the order of [`HealthEventKind::ALL`].
    pub event_kinds: [&'static str; HealthEventKind::ALL.len()],
    /// A notification route's channel: push, e-mail.
    pub channels: [&'static str; 2],
    /// "Subject".
    pub subject: &'static str,
    /// Queue every dead mail again.
    pub retry_all: &'static str,
    /// The question "retry all" asks before it is sent.
    pub retry_all_confirm: &'static str,
    /// What "retry all" did: `{n}` dead mails queued again.
    pub retried_all: &'static str,
    /// A user's roles: player, admin.
    pub role_names: [&'static str; 2],
}

impl AdminText {
    /// A user's status in words (the stored value stays in forms and filters).
    pub fn user_status(&self, status: &UserStatus) -> &'static str {
        match status {
            UserStatus::Active => self.user_statuses[0],
            UserStatus::Blocked { .. } => self.user_statuses[1],
            UserStatus::BlockedPermanently => self.user_statuses[2],
        }
    }

    /// A runtime record's status in words.
    pub fn runtime_status(&self, status: RuntimeStatus) -> &'static str {
        let at = RuntimeStatus::ALL.iter().position(|s| *s == status);
        at.map_or(status.as_str(), |at| self.runtime_statuses[at])
    }

    /// A health event's kind in words.
    pub fn event_kind(&self, kind: HealthEventKind) -> &'static str {
        let at = HealthEventKind::ALL.iter().position(|k| *k == kind);
        at.map_or(kind.as_str(), |at| self.event_kinds[at])
    }

    /// A notification route's channel in words.
    pub fn channel(&self, channel: Channel) -> &'static str {
        match channel {
            Channel::Push => self.channels[0],
            Channel::Email => self.channels[1],
        }
    }

    /// A user's role in words.
    pub fn role(&self, role: Role) -> &'static str {
        match role {
            Role::Player => self.role_names[0],
            Role::Admin => self.role_names[1],
        }
    }

    /// What "retry all" did, with its count.
    pub fn retried_all(&self, retried: u64) -> String {
        self.retried_all.replace("{n}", &retried.to_string())
    }

    /// A mail's status in words, by its stored value (`pending`, ...); an unknown one as
    /// it is.
    pub fn mail_status<'a>(&self, stored: &'a str) -> &'a str {
        match MAIL_STATUSES.iter().position(|s| *s == stored) {
            Some(at) => self.mail_statuses[at],
            None => stored,
        }
    }
}

/// The stored mail statuses, in the order of [`AdminText::mail_statuses`].
pub const MAIL_STATUSES: [&str; 5] = ["pending", "sending", "sent", "retrying", "dead"];

/// English admin pages.
pub(super) static ADMIN_EN: AdminText = AdminText {
    users: "Users",
    games: "Games",
    health: "Runtime and health",
    mail: "Mail and dead letters",
    more: "More",
    search_label: "E-mail or name contains",
    search: "Search",
    email: "E-mail",
    name: "Name",
    roles: "Roles",
    status: "Status",
    actions: "Actions",
    until: "Until (UTC)",
    permanently: "permanently",
    block: "Block",
    unblock: "Unblock",
    filter: "Filter",
    any: "any",
    game: "Game",
    players: "Players",
    force: "Force next turn",
    pause: "Pause",
    resume: "Resume",
    retry_start: "Retry start",
    recreate: "Create engine again",
    stop: "Stop",
    stop_confirm: "Stop this game for good? Its engine goes and the game is cancelled.",
    force_confirm: "Play the next turn now, before the players' deadline?",
    cancel: "Cancel",
    cancel_confirm: "Cancel this game for good?",
    records: "Runtime records",
    engine: "Engine",
    turn: "Turn",
    next_turn: "Next turn",
    healthy: "Healthy",
    events: "Health events",
    when: "When",
    kind: "Kind",
    detail: "Detail",
    deliveries: "Mail deliveries",
    created: "Created",
    to: "To",
    attempts: "Attempts",
    last_error: "Last error",
    retry: "Retry",
    dead_letters: "Notification dead letters",
    none: "None.",
    updated: "Updated",
    user: "User",
    channel: "Channel",
    admin: "Admin",
    user_statuses: ["active", "blocked", "blocked for good"],
    mail_statuses: ["pending", "sending", "sent", "retrying", "dead"],
    runtime_statuses: [
        "pending", "starting", "running", "stopping", "stopped", "removed", "failed",
    ],
    event_kinds: [
        "health check failing",
        "health check recovered",
        "container unhealthy",
        "container gone",
        "turn failed",
    ],
    channels: ["push", "e-mail"],
    subject: "Subject",
    retry_all: "Retry all dead mail",
    retry_all_confirm: "Queue every dead mail again, each with new attempts? Fix what made it fail first.",
    retried_all: "Dead mails queued again: {n}.",
    role_names: ["player", "admin"],
};

/// German admin pages.
pub(super) static ADMIN_DE: AdminText = AdminText {
    users: "Benutzer",
    games: "Spiele",
    health: "Laufzeit und Zustand",
    mail: "Mails und unzustellbare Nachrichten",
    more: "Mehr",
    search_label: "E-Mail oder Name enthält",
    search: "Suchen",
    email: "E-Mail",
    name: "Name",
    roles: "Rollen",
    status: "Status",
    actions: "Aktionen",
    until: "Bis (UTC)",
    permanently: "dauerhaft",
    block: "Sperren",
    unblock: "Entsperren",
    filter: "Filtern",
    any: "alle",
    game: "Spiel",
    players: "Spieler",
    force: "Nächsten Zug erzwingen",
    pause: "Anhalten",
    resume: "Fortsetzen",
    retry_start: "Start wiederholen",
    recreate: "Engine neu erstellen",
    stop: "Beenden",
    stop_confirm: "Dieses Spiel endgültig beenden? Seine Engine wird entfernt und das Spiel abgesagt.",
    force_confirm: "Den nächsten Zug jetzt spielen, vor der Frist der Spieler?",
    cancel: "Absagen",
    cancel_confirm: "Dieses Spiel endgültig absagen?",
    records: "Laufzeit-Einträge",
    engine: "Engine",
    turn: "Zug",
    next_turn: "Nächster Zug",
    healthy: "Gesund",
    events: "Zustandsereignisse",
    when: "Wann",
    kind: "Art",
    detail: "Details",
    deliveries: "Mail-Zustellungen",
    created: "Erstellt",
    to: "An",
    attempts: "Versuche",
    last_error: "Letzter Fehler",
    retry: "Erneut versuchen",
    dead_letters: "Unzustellbare Benachrichtigungen",
    none: "Keine.",
    updated: "Geändert",
    user: "Benutzer",
    channel: "Kanal",
    admin: "Verwaltung",
    user_statuses: ["aktiv", "gesperrt", "dauerhaft gesperrt"],
    mail_statuses: [
        "wartend",
        "im Versand",
        "versendet",
        "neuer Versuch",
        "aufgegeben",
    ],
    runtime_statuses: [
        "wartend",
        "startet",
        "läuft",
        "wird gestoppt",
        "gestoppt",
        "entfernt",
        "fehlgeschlagen",
    ],
    event_kinds: [
        "Health-Check schlägt fehl",
        "Health-Check wieder in Ordnung",
        "Container nicht gesund",
        "Container verschwunden",
        "Zug fehlgeschlagen",
    ],
    channels: ["Push", "E-Mail"],
    subject: "Betreff",
    retry_all: "Alle aufgegebenen Mails erneut versuchen",
    retry_all_confirm: "Alle aufgegebenen Mails mit neuen Versuchen erneut einreihen? Behebe zuerst, woran sie gescheitert sind.",
    retried_all: "Erneut eingereihte aufgegebene Mails: {n}.",
    role_names: ["Spieler", "Verwaltung"],
};
