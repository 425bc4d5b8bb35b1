//! The player pages' words: [`Text`], in English ([`en`]) and German ([`de`]).

mod de;
mod en;

pub(super) use de::DE;
pub(super) use en::EN;

use std::borrow::Cow;

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

    /// A status change's reason in words when the platform recorded it (an admin's
    /// pause, a deadline); `None` for free text (an engine's failure, told as it was).
    pub fn known_reason(&self, stated: &str) -> Option<&'static str> {
        use galaxy_core::domain::game::reasons::{
            CONTAINER_DISAPPEARED, ENROLLMENT_DEADLINE_PASSED, MAX_PLAYERS_REACHED,
            PAUSED_BY_ADMIN, RESUMED_BY_ADMIN, STOPPED_BY_ADMIN,
        };
        let known = [
            PAUSED_BY_ADMIN,
            RESUMED_BY_ADMIN,
            STOPPED_BY_ADMIN,
            ENROLLMENT_DEADLINE_PASSED,
            MAX_PLAYERS_REACHED,
            CONTAINER_DISAPPEARED,
        ];
        let at = known.iter().position(|reason| *reason == stated)?;
        self.known_reasons.get(at).copied()
    }

    /// The reason of a game's `status` in words: those the platform recorded
    /// ([`Text::known_reason`], and a finished game's ending) in this language, any
    /// other (an engine's failure, shown to the host) as it was stated.
    pub fn reason<'a>(&self, status: GameStatus, stated: &'a str) -> Cow<'a, str> {
        use galaxy_core::domain::game::reasons::Ending;
        if let Some(known) = self.known_reason(stated) {
            return Cow::Borrowed(known);
        }
        if status != GameStatus::Finished {
            return Cow::Borrowed(stated);
        }
        match Ending::parse(stated) {
            Some(Ending::Won { winner, turn }) => Cow::Owned(
                self.won_on_turn
                    .replace("{turn}", &turn.to_string())
                    .replace("{winner}", winner),
            ),
            Some(Ending::Ended { turn }) => {
                Cow::Owned(self.ended_on_turn.replace("{turn}", &turn.to_string()))
            }
            None => Cow::Borrowed(stated),
        }
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
    /// Lobby: the link to the games in play that offer a seat to a replacement player.
    pub lobby_seats_link: &'static str,
    /// Lobby, open seats: heading.
    pub lobby_seats_title: &'static str,
    /// Lobby, open seats: what the list is and how to take a seat.
    pub lobby_seats_help: &'static str,
    /// Lobby, open seats: the column of the races whose seats are open.
    pub col_open_seats: &'static str,
    /// Lobby, open seats: the link back to the games open for enrollment.
    pub lobby_enrolling_link: &'static str,
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
    /// Setting: reminders before the deadline (the form's label, which says what an
    /// empty field and the word for none mean).
    pub set_reminders: &'static str,
    /// Setting: reminders before the deadline, as a game's page lists its settings.
    pub set_reminders_shown: &'static str,
    /// The word for "no reminders", typed in the form's field and shown on the page.
    pub no_reminders: &'static str,
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
    /// Asked before closing enrollment (it cannot be opened again).
    pub host_close_confirm: &'static str,
    /// Host: start.
    pub host_start: &'static str,
    /// Asked before starting the game.
    pub host_start_confirm: &'static str,
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
    /// Game: the orders last sent (in the editor) were refused, shown again later.
    pub orders_last_refused: &'static str,
    /// Game: in place of the orders, ready and vacation forms, for a race out of the game.
    pub race_out: &'static str,
    /// Game: orders help.
    pub orders_help: &'static str,
    /// Game: send orders.
    pub orders_send: &'static str,
    /// Game: orders accepted.
    pub orders_accepted: &'static str,
    /// Game: orders not sent because the race's orders changed after the page was
    /// loaded (a form sent again, another tab, a mail, the API); they stay in the editor.
    pub orders_changed: &'static str,
    /// Game: orders refused.
    pub orders_refused: &'static str,
    /// Game: orders that never reached the engine, or were not recorded (the game
    /// ended, the engine or the store was down); they stay in the editor.
    pub orders_not_taken: &'static str,
    /// Game: the orders form shows orders sent from this browser whose answer never
    /// came (a session that had ended, an error page, a dropped connection): the script
    /// put them back; they may not have been taken.
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
    /// Lapsed session: the message was not sent.
    pub lapsed_message: &'static str,
    /// Lapsed session: the message as typed follows.
    pub lapsed_message_copy: &'static str,
    /// A form from a page loaded before the visitor signed in again (in another tab):
    /// nothing was done, the text is back to check and send.
    pub stale_form: &'static str,
    /// Game: the label of a message that was not sent, shown to copy where the message
    /// form is gone (the game ended, the seat was handed over).
    pub message_kept: &'static str,
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
    /// Race state: out of the game (the engine's standings say so); owes no orders.
    pub race_eliminated: &'static str,
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
    /// Messages: the link to the page of older ones.
    pub messages_older: &'static str,
    /// Messages: the link back to the newest ones.
    pub messages_newest: &'static str,
    /// Game: the player's mail heading (orders by e-mail, preferences).
    pub by_mail_title: &'static str,
    /// The orders address; the address follows.
    pub by_mail_address: &'static str,
    /// How orders by e-mail work.
    pub by_mail_help: &'static str,
    /// Where the turn report goes in the turn mail.
    pub by_mail_report: &'static str,
    /// The report in the mail's text.
    pub by_mail_in_body: &'static str,
    /// The report as an attached file.
    pub by_mail_attached: &'static str,
    /// Rotate the orders address.
    pub by_mail_rotate: &'static str,
    /// What rotating does.
    pub by_mail_rotate_help: &'static str,
    /// Preference: reminders before the deadline.
    pub pref_reminders: &'static str,
    /// Preference: a mail for each message to the race.
    pub pref_message_mail: &'static str,
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
    /// The reasons the platform records with a status change
    /// (`galaxy_core::domain::game::reasons`), in the order of [`Text::known_reason`]:
    /// paused, resumed and stopped by an admin, enrollment deadline passed, max players
    /// reached, the container disappeared.
    pub known_reasons: [&'static str; 6],
    /// Game: the engine ended the game with a winner (`{winner}`, `{turn}`).
    pub won_on_turn: &'static str,
    /// Game: the engine ended the game without a winner (`{turn}`).
    pub ended_on_turn: &'static str,
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
    /// Account: the race names section's heading.
    pub race_names_title: &'static str,
    /// Account: what the race names are, and that releasing one frees it for anyone.
    pub race_names_hint: &'static str,
    /// Account: a name claimed by an application not yet decided.
    pub race_name_pending: &'static str,
    /// Account: a name the player owns.
    pub race_name_registered: &'static str,
    /// Account: the button that gives a registered name up.
    pub race_name_release: &'static str,
    /// Account: the notice after a name was released.
    pub race_name_released: &'static str,
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
