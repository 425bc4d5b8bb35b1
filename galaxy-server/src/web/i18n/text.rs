//! The player pages' words: [`Text`], in English and German.

use galaxy_core::domain::application::ApplicationStatus;
use galaxy_core::domain::game::{GameStatus, Visibility};

/// A game's status as the pages name it, one field per status (so a status without a
/// word does not compile).
#[derive(Debug)]
pub struct StatusNames {
    /// `draft`.
    pub draft: &'static str,
    /// `enrollment_open`.
    pub enrollment_open: &'static str,
    /// `enrollment_closed`.
    pub enrollment_closed: &'static str,
    /// `starting`.
    pub starting: &'static str,
    /// `start_failed`.
    pub start_failed: &'static str,
    /// `running`.
    pub running: &'static str,
    /// `paused`.
    pub paused: &'static str,
    /// `finished`.
    pub finished: &'static str,
    /// `cancelled`.
    pub cancelled: &'static str,
}

/// An application's status as the pages name it, one field per status.
#[derive(Debug)]
pub struct ApplicationStatusNames {
    /// `pending`.
    pub pending: &'static str,
    /// `approved`.
    pub approved: &'static str,
    /// `rejected`.
    pub rejected: &'static str,
    /// `withdrawn`.
    pub withdrawn: &'static str,
}

impl Text {
    /// An application's status in the page's language.
    pub fn application_status(&self, status: ApplicationStatus) -> &'static str {
        let n = &self.application_statuses;
        match status {
            ApplicationStatus::Pending => n.pending,
            ApplicationStatus::Approved => n.approved,
            ApplicationStatus::Rejected => n.rejected,
            ApplicationStatus::Withdrawn => n.withdrawn,
        }
    }

    /// A game status in the page's language.
    pub fn status(&self, status: GameStatus) -> &'static str {
        let n = &self.statuses;
        match status {
            GameStatus::Draft => n.draft,
            GameStatus::EnrollmentOpen => n.enrollment_open,
            GameStatus::EnrollmentClosed => n.enrollment_closed,
            GameStatus::Starting => n.starting,
            GameStatus::StartFailed => n.start_failed,
            GameStatus::Running => n.running,
            GameStatus::Paused => n.paused,
            GameStatus::Finished => n.finished,
            GameStatus::Cancelled => n.cancelled,
        }
    }

    /// A setting that is on or off.
    pub fn yes_no(&self, on: bool) -> &'static str {
        if on { self.yes } else { self.no }
    }

    /// What is left of a player's vacation budget, in words.
    pub fn vacation_left(&self, left: u32, budget: u32) -> String {
        self.vacation_remaining
            .replace("{left}", &left.to_string())
            .replace("{budget}", &budget.to_string())
    }

    /// A game's visibility.
    pub fn visibility(&self, visibility: Visibility) -> &'static str {
        match visibility {
            Visibility::Public => self.public,
            Visibility::Private => self.private,
        }
    }
}

/// Every word on the pages, one field per use.
#[derive(Debug)]
pub struct Text {
    /// Skip link.
    pub skip: &'static str,
    /// Navigation: the lobby.
    pub nav_lobby: &'static str,
    /// Navigation: my games.
    pub nav_my: &'static str,
    /// Navigation: new game.
    pub nav_new: &'static str,
    /// Navigation: account.
    pub nav_account: &'static str,
    /// Navigation: admin.
    pub nav_admin: &'static str,
    /// Navigation: log in.
    pub nav_login: &'static str,
    /// Navigation: log out.
    pub nav_logout: &'static str,
    /// Login: heading.
    pub login_title: &'static str,
    /// Login: the e-mail field.
    pub login_email: &'static str,
    /// Login: send the code.
    pub login_send: &'static str,
    /// Login: the code was sent.
    pub login_sent: &'static str,
    /// Login: the code field.
    pub login_code: &'static str,
    /// Login: sign in.
    pub login_submit: &'static str,
    /// Login: the way back from the code form (a code expired, mistyped too often, or
    /// sent to a mistyped address).
    pub login_new_code: &'static str,
    /// Lobby: heading.
    pub lobby_title: &'static str,
    /// Lobby: name filter.
    pub filter_name: &'static str,
    /// Lobby: only games with free seats.
    pub filter_free: &'static str,
    /// Filter button.
    pub filter: &'static str,
    /// Empty list.
    pub none: &'static str,
    /// Next page.
    pub next_page: &'static str,
    /// Table header: game.
    pub col_game: &'static str,
    /// Table header: status.
    pub col_status: &'static str,
    /// Table header: players.
    pub col_players: &'static str,
    /// Table header: turn.
    pub col_turn: &'static str,
    /// Table header: next turn.
    pub col_next: &'static str,
    /// Table header: race.
    pub col_race: &'static str,
    /// Table header: what to do.
    pub col_todo: &'static str,
    /// Table header: score.
    pub col_score: &'static str,
    /// My games: heading.
    pub my_title: &'static str,
    /// My games: heading of the ended games (finished or cancelled).
    pub my_ended: &'static str,
    /// My games: orders due.
    pub todo_orders: &'static str,
    /// My games: orders are in.
    pub todo_orders_in: &'static str,
    /// My games: host should act.
    pub todo_host: &'static str,
    /// Role: host.
    pub hosting: &'static str,
    /// New game: heading.
    pub new_title: &'static str,
    /// Setting: name.
    pub set_name: &'static str,
    /// Setting: fewest players.
    pub set_min: &'static str,
    /// Setting: most players.
    pub set_max: &'static str,
    /// Setting: enrollment deadline.
    pub set_deadline: &'static str,
    /// The enrollment deadline where it is shown (in the viewer's time zone, which the
    /// script names; without the script the time says UTC itself).
    pub deadline: &'static str,
    /// Setting: turn schedule.
    pub set_schedule: &'static str,
    /// Setting: schedule help.
    pub set_schedule_help: &'static str,
    /// Setting: engine.
    pub set_engine: &'static str,
    /// Setting: auto approve.
    pub set_auto: &'static str,
    /// Setting: visibility.
    pub set_visibility: &'static str,
    /// Visibility: public.
    pub public: &'static str,
    /// A setting that is on.
    pub yes: &'static str,
    /// A setting that is off.
    pub no: &'static str,
    /// Game statuses.
    pub statuses: StatusNames,
    /// Application statuses.
    pub application_statuses: ApplicationStatusNames,
    /// Visibility: private.
    pub private: &'static str,
    /// Setting: engine settings.
    pub set_engine_settings: &'static str,
    /// Setting: reveal reports.
    pub set_reveal: &'static str,
    /// The play-by-email settings' fieldset.
    pub set_pbem: &'static str,
    /// Setting: early turns.
    pub set_early_turn: &'static str,
    /// Setting: the least time between an early turn and the next deadline.
    pub set_min_turn_gap: &'static str,
    /// Setting: reminders before the deadline.
    pub set_reminders: &'static str,
    /// How durations are written.
    pub set_duration_help: &'static str,
    /// Setting: missed turns until idle.
    pub set_idle_after: &'static str,
    /// Setting: vacation turns per player.
    pub set_vacation_turns: &'static str,
    /// Setting: anonymous messages.
    pub set_anonymous: &'static str,
    /// Create button.
    pub create: &'static str,
    /// Game: settings heading.
    pub game_settings: &'static str,
    /// Game: players heading.
    pub game_players: &'static str,
    /// Game: apply heading.
    pub apply_title: &'static str,
    /// The visitor's own application to the game.
    pub your_application: &'static str,
    /// Game: race name field.
    pub race_name: &'static str,
    /// Apply button.
    pub apply: &'static str,
    /// Withdraw button.
    pub withdraw: &'static str,
    /// Host: heading.
    pub host_title: &'static str,
    /// Host: open.
    pub host_open: &'static str,
    /// Host: close.
    pub host_close: &'static str,
    /// Host: start.
    pub host_start: &'static str,
    /// Host: cancel.
    pub host_cancel: &'static str,
    /// The question the host's Cancel asks before it is sent (it cannot be undone).
    pub host_cancel_confirm: &'static str,
    /// Approve.
    pub approve: &'static str,
    /// Reject.
    pub reject: &'static str,
    /// Game: next turn in.
    pub next_turn: &'static str,
    /// Game: current turn.
    pub current_turn: &'static str,
    /// Game: orders heading.
    pub orders_title: &'static str,
    /// Game: orders help.
    pub orders_help: &'static str,
    /// Game: send orders.
    pub orders_send: &'static str,
    /// Game: orders accepted.
    pub orders_accepted: &'static str,
    /// Game: orders refused.
    pub orders_refused: &'static str,
    /// Game: orders that never reached the engine, or were not recorded (the game
    /// ended, the engine or the store was down); they stay in the editor.
    pub orders_not_taken: &'static str,
    /// Game: the orders form shows the orders typed before the session ended (the
    /// script put them back after the login); they are not sent yet.
    pub orders_restored: &'static str,
    /// Lapsed orders: the page's title.
    pub lapsed_title: &'static str,
    /// Lapsed orders: nothing was sent, and why.
    pub lapsed_orders: &'static str,
    /// Lapsed orders: the link to log in again and come back to the game.
    pub lapsed_login: &'static str,
    /// Lapsed orders: the browser keeps them for the orders form (shown by the script
    /// once it kept them).
    pub lapsed_kept: &'static str,
    /// Lapsed orders: the label of the orders as typed.
    pub lapsed_copy: &'static str,
    /// Game: reports heading.
    pub reports_title: &'static str,
    /// Game: show report.
    pub show: &'static str,
    /// Game: standings heading.
    pub standings_title: &'static str,
    /// Game: winner.
    pub winner: &'static str,
    /// Game: race states heading.
    pub races_title: &'static str,
    /// Game: messages heading.
    pub messages_title: &'static str,
    /// The viewer's own race, beside its name.
    pub your_race: &'static str,
    /// Race state: played by its player.
    pub race_active: &'static str,
    /// Race state: missed too many turns.
    pub race_idle: &'static str,
    /// Race state: its player is on vacation.
    pub race_vacation: &'static str,
    /// Race state: the seat is offered to a replacement.
    pub race_open_seat: &'static str,
    /// Race: ready for the coming turn.
    pub race_ready: &'static str,
    /// Host: offer an idle race's seat.
    pub seat_open: &'static str,
    /// Player: take an open seat back.
    pub seat_reclaim: &'static str,
    /// User: apply for an open seat.
    pub seat_apply: &'static str,
    /// User: their application for an open seat waits for the host.
    pub seat_applied: &'static str,
    /// Host: pending seat applications heading.
    pub seat_requests: &'static str,
    /// Game: the player's habits heading.
    pub habits_title: &'static str,
    /// Ready without orders.
    pub ready_button: &'static str,
    /// What ready without orders means.
    pub ready_help: &'static str,
    /// Vacation turns field.
    pub vacation_label: &'static str,
    /// Take vacation.
    pub vacation_button: &'static str,
    /// Vacation hint; what is left of the budget follows.
    pub vacation_help: &'static str,
    /// What is left of the vacation budget: `{left}` and `{budget}` are filled in.
    pub vacation_remaining: &'static str,
    /// The vacation booked; its first and last turn follow.
    pub vacation_booked: &'static str,
    /// Message recipient field.
    pub message_to: &'static str,
    /// Message to every other race.
    pub message_all: &'static str,
    /// Message text field.
    pub message_text: &'static str,
    /// Send a message.
    pub message_send: &'static str,
    /// Sender of an anonymous message.
    pub anonymous: &'static str,
    /// Game: live updates off.
    pub live_off: &'static str,
    /// Game: the game changed while the viewer was typing (the page is not reloaded
    /// under them).
    pub live_changed: &'static str,
    /// Game: reason of the status.
    pub status_reason: &'static str,
    /// The reason shown to players and visitors when the engine or its container failed
    /// (its details are for the host and admins).
    pub engine_failure: &'static str,
    /// Account: heading.
    pub account_title: &'static str,
    /// Account: display name.
    pub display_name: &'static str,
    /// Account: locale.
    pub locale: &'static str,
    /// Account: mail notifications.
    pub mail_prefs: &'static str,
    /// Save.
    pub save: &'static str,
    /// Saved.
    pub saved: &'static str,
    /// Account: sessions.
    pub sessions_title: &'static str,
    /// Account: this session.
    pub this_session: &'static str,
    /// Account: revoke.
    pub revoke: &'static str,
    /// Account: log out everywhere.
    pub logout_everywhere: &'static str,
    /// Created at.
    pub created: &'static str,
    /// Expires at.
    pub expires: &'static str,
}

/// English.
pub(super) static EN: Text = Text {
    skip: "Skip to content",
    nav_lobby: "Lobby",
    nav_my: "My games",
    nav_new: "New game",
    nav_account: "Account",
    nav_admin: "Admin",
    nav_login: "Log in",
    nav_logout: "Log out",
    login_title: "Log in",
    login_email: "E-mail address",
    login_send: "Send me a code",
    login_sent: "If the address can sign in, a code is on its way. Enter it here.",
    login_code: "Login code",
    login_submit: "Log in",
    login_new_code: "No code, or it no longer works? Ask for a new one",
    lobby_title: "Open games",
    filter_name: "Name contains",
    filter_free: "Only games with free seats",
    filter: "Filter",
    none: "Nothing here yet.",
    next_page: "More",
    col_game: "Game",
    col_status: "Status",
    col_players: "Players",
    col_turn: "Turn",
    col_next: "Next turn",
    col_race: "Race",
    col_todo: "To do",
    col_score: "Score",
    my_title: "My games",
    my_ended: "Ended games",
    todo_orders: "Orders due",
    todo_orders_in: "Orders in",
    todo_host: "Waiting for you",
    hosting: "Host",
    new_title: "Create a game",
    set_name: "Name",
    set_min: "Fewest players",
    set_max: "Most players",
    set_deadline: "Enrollment ends (UTC)",
    deadline: "Enrollment ends",
    set_schedule: "Turn schedule",
    set_schedule_help: "Cron, 5 fields, UTC: 0 18 * * 1,3,5 is 18:00 on Monday, Wednesday and Friday.",
    set_engine: "Engine",
    set_auto: "Approve applications automatically",
    set_visibility: "Visibility",
    public: "Public",
    yes: "yes",
    no: "no",
    statuses: StatusNames {
        draft: "draft",
        enrollment_open: "open for enrollment",
        enrollment_closed: "enrollment closed",
        starting: "starting",
        start_failed: "start failed",
        running: "running",
        paused: "paused",
        finished: "finished",
        cancelled: "cancelled",
    },
    application_statuses: ApplicationStatusNames {
        pending: "pending",
        approved: "approved",
        rejected: "rejected",
        withdrawn: "withdrawn",
    },
    private: "Private",
    set_engine_settings: "Engine settings (JSON object)",
    set_reveal: "Reveal every race's reports after the finish",
    set_pbem: "Play-by-email habits",
    set_early_turn: "Run a turn early when every race is ready",
    set_min_turn_gap: "Least time from an early turn to the next deadline",
    set_reminders: "Remind players without orders before the deadline (empty: the defaults)",
    set_duration_help: "Durations: a whole number and a unit, as 45s, 90m, 24h, 2d; reminders separated by commas.",
    set_idle_after: "Missed turns until a race is idle",
    set_vacation_turns: "Vacation turns per player",
    set_anonymous: "Messages hide the sender's race",
    create: "Create",
    game_settings: "Settings",
    game_players: "Players",
    apply_title: "Join this game",
    your_application: "Your application",
    race_name: "Race name",
    apply: "Apply",
    withdraw: "Withdraw my application",
    host_title: "Host",
    host_open: "Open enrollment",
    host_close: "Close enrollment",
    host_start: "Start the game",
    host_cancel: "Cancel the game",
    host_cancel_confirm: "Cancel this game for good? Its players are told and it cannot be undone.",
    approve: "Approve",
    reject: "Reject",
    next_turn: "Next turn",
    current_turn: "Turn",
    orders_title: "Orders",
    orders_help: "Orders for the next turn, in the engine's structured form as JSON (the reference engine takes a list of objects) or in its text form (the reference engine: one order per line, as build_industry 4 or move 3 7). Sent again, they replace the earlier ones.",
    orders_send: "Check and send",
    orders_accepted: "The engine accepted these orders.",
    orders_refused: "The engine refused these orders:",
    orders_not_taken: "These orders were not taken (your text is kept below):",
    orders_restored: "These are the orders you typed before you logged in again. They are not sent yet: check them and send them.",
    lapsed_title: "Your session ended",
    lapsed_orders: "Your orders were not sent: your session ended after the page was loaded.",
    lapsed_login: "Log in again, then send them from the game's page",
    lapsed_kept: "This browser keeps them: once you are logged in, they are back in the game's orders form.",
    lapsed_copy: "Your orders, as you typed them (copy them if you log in elsewhere):",
    reports_title: "Reports",
    show: "Show",
    standings_title: "Standings",
    winner: "Winner",
    races_title: "Races",
    messages_title: "Messages",
    your_race: "your race",
    race_active: "active",
    race_idle: "idle",
    race_vacation: "on vacation",
    race_open_seat: "open seat",
    race_ready: "ready",
    seat_open: "Offer the seat",
    seat_reclaim: "Take my seat back",
    seat_apply: "Apply to take over",
    seat_applied: "you applied; the host decides",
    seat_requests: "Applications for open seats",
    habits_title: "Ready and vacation",
    ready_button: "Ready without orders",
    ready_help: "Tells the game your race needs no orders this turn, so an early turn need not wait for you. Orders sent later replace it.",
    vacation_label: "Vacation turns",
    vacation_button: "Take vacation",
    vacation_help: "No reminders and no missed turns counted while away.",
    vacation_remaining: "Vacation turns left: {left} of {budget}.",
    vacation_booked: "On vacation for turns",
    message_to: "To",
    message_all: "every race",
    message_text: "Message (plain text)",
    message_send: "Send",
    anonymous: "Anonymous",
    live_off: "Live updates are off; reload for news.",
    live_changed: "This game has news. Open it again to see them (what you typed here is not kept).",
    status_reason: "Reason",
    engine_failure: "The game's engine failed; its host and the platform's admins see the details.",
    account_title: "Account",
    display_name: "Display name",
    locale: "Language (locale)",
    mail_prefs: "Send me game news by e-mail",
    save: "Save",
    saved: "Saved.",
    sessions_title: "Sessions",
    this_session: "this one",
    revoke: "Log out",
    logout_everywhere: "Log out everywhere",
    created: "Created",
    expires: "Expires",
};

/// German.
pub(super) static DE: Text = Text {
    skip: "Zum Inhalt springen",
    nav_lobby: "Lobby",
    nav_my: "Meine Spiele",
    nav_new: "Neues Spiel",
    nav_account: "Konto",
    nav_admin: "Verwaltung",
    nav_login: "Anmelden",
    nav_logout: "Abmelden",
    login_title: "Anmelden",
    login_email: "E-Mail-Adresse",
    login_send: "Code senden",
    login_sent: "Wenn sich die Adresse anmelden darf, ist ein Code unterwegs. Bitte hier eingeben.",
    login_code: "Anmeldecode",
    login_submit: "Anmelden",
    login_new_code: "Kein Code angekommen, oder gilt er nicht mehr? Einen neuen anfordern",
    lobby_title: "Offene Spiele",
    filter_name: "Name enthält",
    filter_free: "Nur Spiele mit freien Plätzen",
    filter: "Filtern",
    none: "Noch nichts da.",
    next_page: "Mehr",
    col_game: "Spiel",
    col_status: "Status",
    col_players: "Spieler",
    col_turn: "Zug",
    col_next: "Nächster Zug",
    col_race: "Volk",
    col_todo: "Zu tun",
    col_score: "Punkte",
    my_title: "Meine Spiele",
    my_ended: "Beendete Spiele",
    todo_orders: "Befehle fällig",
    todo_orders_in: "Befehle abgegeben",
    todo_host: "Wartet auf dich",
    hosting: "Gastgeber",
    new_title: "Spiel erstellen",
    set_name: "Name",
    set_min: "Mindestens Spieler",
    set_max: "Höchstens Spieler",
    set_deadline: "Anmeldeschluss (UTC)",
    deadline: "Anmeldeschluss",
    set_schedule: "Zugplan",
    set_schedule_help: "Cron, 5 Felder, UTC: 0 18 * * 1,3,5 ist 18:00 am Montag, Mittwoch und Freitag.",
    set_engine: "Engine",
    set_auto: "Bewerbungen automatisch annehmen",
    set_visibility: "Sichtbarkeit",
    public: "Öffentlich",
    yes: "ja",
    no: "nein",
    statuses: StatusNames {
        draft: "Entwurf",
        enrollment_open: "Anmeldung offen",
        enrollment_closed: "Anmeldung geschlossen",
        starting: "startet",
        start_failed: "Start fehlgeschlagen",
        running: "läuft",
        paused: "pausiert",
        finished: "beendet",
        cancelled: "abgesagt",
    },
    application_statuses: ApplicationStatusNames {
        pending: "wartet auf Antwort",
        approved: "angenommen",
        rejected: "abgelehnt",
        withdrawn: "zurückgezogen",
    },
    private: "Privat",
    set_engine_settings: "Engine-Einstellungen (JSON-Objekt)",
    set_reveal: "Nach dem Ende alle Berichte zeigen",
    set_pbem: "Play-by-Email-Gewohnheiten",
    set_early_turn: "Zug vorziehen, sobald alle Völker bereit sind",
    set_min_turn_gap: "Mindestabstand eines vorgezogenen Zugs zur nächsten Frist",
    set_reminders: "Spieler ohne Befehle vor der Frist erinnern (leer: die Vorgaben)",
    set_duration_help: "Dauern: eine ganze Zahl und eine Einheit, etwa 45s, 90m, 24h, 2d; Erinnerungen durch Kommas getrennt.",
    set_idle_after: "Verpasste Züge, bis ein Volk untätig ist",
    set_vacation_turns: "Urlaubszüge je Spieler",
    set_anonymous: "Nachrichten verbergen das Volk des Absenders",
    create: "Erstellen",
    game_settings: "Einstellungen",
    game_players: "Spieler",
    apply_title: "Mitspielen",
    your_application: "Deine Bewerbung",
    race_name: "Name des Volkes",
    apply: "Bewerben",
    withdraw: "Bewerbung zurückziehen",
    host_title: "Gastgeber",
    host_open: "Anmeldung öffnen",
    host_close: "Anmeldung schließen",
    host_start: "Spiel starten",
    host_cancel: "Spiel absagen",
    host_cancel_confirm: "Dieses Spiel endgültig absagen? Die Spieler werden benachrichtigt; das lässt sich nicht rückgängig machen.",
    approve: "Annehmen",
    reject: "Ablehnen",
    next_turn: "Nächster Zug",
    current_turn: "Zug",
    orders_title: "Befehle",
    orders_help: "Befehle für den nächsten Zug, in der strukturierten Form der Engine als JSON (die Referenz-Engine nimmt eine Liste von Objekten) oder in ihrer Textform (die Referenz-Engine: ein Befehl je Zeile, etwa build_industry 4 oder move 3 7). Erneut gesendet, ersetzen sie die früheren.",
    orders_send: "Prüfen und senden",
    orders_accepted: "Die Engine hat diese Befehle angenommen.",
    orders_refused: "Die Engine hat diese Befehle abgelehnt:",
    orders_not_taken: "Diese Befehle wurden nicht übernommen (dein Text steht unten):",
    orders_restored: "Das sind die Befehle, die du vor der neuen Anmeldung geschrieben hast. Sie sind noch nicht gesendet: prüfe sie und sende sie.",
    lapsed_title: "Deine Sitzung ist abgelaufen",
    lapsed_orders: "Deine Befehle wurden nicht gesendet: deine Sitzung ist abgelaufen, nachdem die Seite geladen wurde.",
    lapsed_login: "Melde dich wieder an und sende sie dann von der Seite des Spiels",
    lapsed_kept: "Dieser Browser behält sie: sobald du angemeldet bist, stehen sie wieder im Befehlsformular des Spiels.",
    lapsed_copy: "Deine Befehle, wie du sie geschrieben hast (kopiere sie, wenn du dich woanders anmeldest):",
    reports_title: "Berichte",
    show: "Zeigen",
    standings_title: "Rangliste",
    winner: "Sieger",
    races_title: "Völker",
    messages_title: "Nachrichten",
    your_race: "dein Volk",
    race_active: "aktiv",
    race_idle: "untätig",
    race_vacation: "im Urlaub",
    race_open_seat: "freier Platz",
    race_ready: "bereit",
    seat_open: "Platz anbieten",
    seat_reclaim: "Meinen Platz zurücknehmen",
    seat_apply: "Übernahme beantragen",
    seat_applied: "beantragt; der Gastgeber entscheidet",
    seat_requests: "Anträge auf freie Plätze",
    habits_title: "Bereit und Urlaub",
    ready_button: "Bereit ohne Befehle",
    ready_help: "Sagt dem Spiel, dass dein Volk in diesem Zug keine Befehle braucht, damit ein vorgezogener Zug nicht auf dich wartet. Später geschickte Befehle ersetzen das.",
    vacation_label: "Urlaubszüge",
    vacation_button: "Urlaub nehmen",
    vacation_help: "Keine Erinnerungen und keine verpassten Züge während der Abwesenheit.",
    vacation_remaining: "Übrige Urlaubszüge: {left} von {budget}.",
    vacation_booked: "Im Urlaub für die Züge",
    message_to: "An",
    message_all: "alle Völker",
    message_text: "Nachricht (reiner Text)",
    message_send: "Senden",
    anonymous: "Anonym",
    live_off: "Live-Aktualisierung aus; für Neues neu laden.",
    live_changed: "Es gibt Neues in diesem Spiel. Öffne es neu, um es zu sehen (was du hier getippt hast, bleibt nicht erhalten).",
    status_reason: "Grund",
    engine_failure: "Die Engine des Spiels ist ausgefallen; Einzelheiten sehen der Gastgeber und die Administratoren der Plattform.",
    account_title: "Konto",
    display_name: "Anzeigename",
    locale: "Sprache (Locale)",
    mail_prefs: "Spielnachrichten per E-Mail",
    save: "Speichern",
    saved: "Gespeichert.",
    sessions_title: "Sitzungen",
    this_session: "diese",
    revoke: "Abmelden",
    logout_everywhere: "Überall abmelden",
    created: "Erstellt",
    expires: "Läuft ab",
};
