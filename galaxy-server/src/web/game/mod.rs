//! A game's page: settings, players and status for everyone; enrollment actions for its
//! host; for its players the deadline countdown, the orders editor with the engine's
//! check inline, reports by turn (archived ones too), the standings chart, race states
//! and messages. The forms the page posts are in `forms`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use galaxy_core::domain::application::{Application, ApplicationStatus};
use galaxy_core::domain::game::{Game, GameStatus};
use galaxy_core::domain::pbem::format_duration;
use galaxy_core::domain::play::{PlayedTurn, TurnReport};
use galaxy_core::domain::race_name::RaceName;
use galaxy_core::domain::{GameId, SubmissionId};
use galaxy_core::service::runtime::{GameProgress, StatusReason};
use galaxy_core::service::{ErrorKind, ServiceError};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::by_mail::{self, MailView};
use super::chart;
use super::error::WebError;
use super::layout::{self, button_form, button_form_about, csrf_field};
use super::pbem::{self, PbemView};
use super::session::Visitor;

mod forms;

pub use forms::{EmptyForm, apply, decide_application, host_action, submit_orders, withdraw};

/// Which report, and which page of the race's messages, to show.
#[derive(Debug, Default, Deserialize)]
pub struct GameQuery {
    /// The turn of the report (default: the latest).
    turn: Option<u32>,
    /// Another race's report, once the game finished with its reports revealed (default:
    /// the viewer's own).
    race: Option<String>,
    /// The race's messages older than this page's (a cursor of the page before; default:
    /// the newest).
    messages_after: Option<String>,
}

/// What a refused form of the game page got back, shown inline with what the player
/// typed (never lost to an error page).
pub(super) enum Returned {
    /// The orders form, accepted or not.
    Orders(OrdersOutcome),
    /// The message form, refused.
    Message(pbem::MessageDraft),
    /// The apply form, refused: the race name typed and why.
    Apply {
        /// The race name typed.
        race_name: String,
        /// Why the application was refused.
        error: String,
    },
}

/// What the last orders form got back, shown inline.
pub(super) struct OrdersOutcome {
    /// The text the player sent (kept in the editor).
    text: String,
    /// What became of them.
    verdict: OrdersVerdict,
}

/// What became of orders sent from the page.
#[derive(Debug)]
pub(super) enum OrdersVerdict {
    /// The engine took them.
    Accepted,
    /// The engine refused them (recorded, with its reasons).
    Refused(Vec<String>),
    /// They were not taken at all: the game is no longer in play, the seat changed
    /// hands, the engine or the store is down. Why, as the API would say it.
    NotTaken(String),
}

pub(super) fn parse_game_id(id: &str) -> Result<GameId, WebError> {
    GameId::parse(id).map_err(|_| WebError::NotFound)
}

/// `GET /games/{id}`.
pub async fn game_page(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(query): Query<GameQuery>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    render(&state, &visitor, id, &query, None).await
}

/// The viewer's seat: their race and the orders they last sent for `turn`.
struct Seat {
    race: String,
    /// The latest submission the page shows: its form sends it back, and orders are
    /// taken only over it ([`RuntimeService::submit_orders_over`]).
    ///
    /// [`RuntimeService::submit_orders_over`]: galaxy_core::service::runtime::RuntimeService::submit_orders_over
    latest_id: Option<SubmissionId>,
    latest_orders: Option<String>,
    /// The engine's reasons when it refused those orders: a page shown again later says
    /// so, or the editor would pass a refused text off as the orders in force.
    latest_refused: Option<Vec<String>>,
}

async fn seat(
    state: &WebState,
    visitor: &Visitor,
    game: &Game,
    progress: &GameProgress,
) -> Result<Option<Seat>, WebError> {
    let Some(user) = &visitor.user else {
        return Ok(None);
    };
    // A game stopped by an admin is `cancelled` with its reports archived: its players
    // keep reading them, as the API lets them. One cancelled before it started has none.
    let played = match game.status {
        GameStatus::Running | GameStatus::Paused | GameStatus::Finished => true,
        GameStatus::Cancelled => progress.current_turn.is_some(),
        _ => false,
    };
    if !played {
        return Ok(None);
    }
    let next_turn = next_turn(progress);
    match state
        .app
        .runtime
        .orders_in_force(user.actor, game.id, next_turn)
        .await
    {
        Ok((race, latest)) => Ok(Some(Seat {
            race,
            latest_id: latest.as_ref().map(|s| s.id),
            latest_refused: latest
                .as_ref()
                .filter(|s| !s.accepted)
                .map(|s| s.errors.clone()),
            latest_orders: latest.map(|s| orders_text(&s.orders)),
        })),
        Err(error) => {
            let error = WebError::from(error);
            if matches!(
                error.status(),
                StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
            ) {
                Ok(None)
            } else {
                Err(error)
            }
        }
    }
}

/// The turn orders are taken for: the one after the last played (1 before any).
fn next_turn(progress: &GameProgress) -> u32 {
    progress.current_turn.map_or(1, |t| t.saturating_add(1))
}

/// Orders as the editor shows them: text as it was, structured orders as pretty JSON.
fn orders_text(orders: &serde_json::Value) -> String {
    match orders {
        serde_json::Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

pub(super) async fn render(
    state: &WebState,
    visitor: &Visitor,
    id: GameId,
    query: &GameQuery,
    returned: Option<Returned>,
) -> Result<Response, WebError> {
    let (report_turn, report_race) = (query.turn, query.race.clone().filter(|r| !r.is_empty()));
    let (mut outcome, mut draft, mut applying) = (None, None, None);
    match returned {
        Some(Returned::Orders(o)) => outcome = Some(o),
        Some(Returned::Message(d)) => draft = Some(d),
        Some(Returned::Apply { race_name, error }) => applying = Some((race_name, error)),
        None => {}
    }
    let text = visitor.lang.text();
    let actor = visitor.user.as_ref().map(|u| u.actor);
    // Taken before anything of the game is read: the page's live stream replays from
    // here, so news that lands while the page is read and sent (or while its stream is
    // down) still reloads it, never lost between the page and its stream.
    let live_after = state.push.as_ref().map(|push| push.latest_cursor());
    let game = state.app.lobby.get_game(actor, id).await?;
    let progress = state.app.runtime.progress(&game, actor.as_ref()).await?;
    let is_host = actor.is_some_and(|a| a.user_id == game.host);
    let is_admin = actor.is_some_and(|a| a.is_admin);
    let next_turn = next_turn(&progress);
    let seat = seat(state, visitor, &game, &progress).await?;
    // The host and admins see every application; everyone signed in their own (a host
    // may play in their game too).
    let manages = is_host || is_admin;
    let applications = match actor {
        Some(actor) => Some(state.app.lobby.list_applications(actor, id).await?),
        None => None,
    };
    let (applications, own) = match (applications, actor) {
        (Some(all), Some(actor)) => {
            let own = all
                .iter()
                .find(|a| a.user_id == actor.user_id && a.status.is_live())
                .cloned();
            (manages.then_some(all), own)
        }
        (all, _) => (all, None),
    };
    let turns: Vec<PlayedTurn> = if seat.is_some() || manages {
        state.app.runtime.turns(actor, id).await?
    } else {
        Vec::new()
    };
    // Every race's reports, once the game is over and its host left the reveal on.
    let revealed = game.status == GameStatus::Finished && game.settings.reveal_reports_after_finish;
    // The report asked for, or why there is none (a turn not played yet, a race
    // unknown): said on the page, never a blank section. A store that fails is an error
    // page, as everywhere.
    let report: Option<Result<TurnReport, String>> = match (&seat, actor) {
        (Some(_), Some(actor)) => {
            let turn = report_turn.or(progress.current_turn);
            let race = report_race.as_deref().filter(|_| revealed);
            match turn {
                Some(turn) => match state.app.runtime.report(actor, id, turn, race).await {
                    Ok(report) => Some(Ok(report)),
                    Err(error)
                        if matches!(
                            ServiceError::kind(&error),
                            ErrorKind::NotFound | ErrorKind::Forbidden | ErrorKind::Validation
                        ) =>
                    {
                        Some(Err(WebError::from(error).told(visitor.lang)))
                    }
                    Err(error) => return Err(error.into()),
                },
                None => None,
            }
        }
        _ => None,
    };
    let missing = report.as_ref().and_then(|r| r.as_ref().err());
    let report = report.as_ref().and_then(|r| r.as_ref().ok());
    let own_race = seat.as_ref().map(|s| s.race.clone());
    let older = query.messages_after.as_deref();
    let habits = PbemView::load(state, visitor, &game, own_race, older).await?;
    let mail = MailView::load(state, visitor, &game, seat.is_some()).await?;
    let name = game.settings.name.as_str().to_owned();
    let live = live_after.filter(|_| visitor.user.is_some());
    let body = html! {
        div data-live=[live.as_ref().map(|after| format!("/games/{id}/events?after={after}"))] data-page=(format!("/games/{id}")) {}
        @if live.is_some() {
            p.notice hidden data-live-notice="" role="status" {
                a href=(format!("/games/{id}")) { (text.live_changed) }
            }
        }
        h1 { (name) " " span.badge data-status=(game.status.as_str()) { (text.status(game.status)) } }
        @if live.is_none() && visitor.user.is_some() { p.hint { (text.live_off) } }
        (status_section(visitor, &game, &progress))
        (pbem::races_section(visitor, &game, &habits))
        @match (&seat, outcome.as_ref()) {
            (Some(_), _) if habits.own_race_out() && matches!(game.status, GameStatus::Running | GameStatus::Paused) => {
                section aria-labelledby="orders" {
                    h2 #orders { (text.orders_title) }
                    p.notice role="status" { (text.race_out) }
                }
                (by_mail::section(visitor, id, mail.as_ref()))
            }
            (Some(seat), outcome) if matches!(game.status, GameStatus::Running | GameStatus::Paused) => {
                (orders_section(visitor, id, next_turn, seat, outcome))
                (pbem::player_actions(visitor, &game, next_turn, &habits))
                (by_mail::section(visitor, id, mail.as_ref()))
            }
            (_, Some(outcome)) => (orders_not_open(visitor, outcome)),
            _ => {}
        }
        (pbem::messages_section(visitor, &game, &habits, draft.as_ref()))
        @if seat.is_some() {
            section aria-labelledby="reports" {
                h2 #reports { (text.reports_title) }
                @if !turns.is_empty() {
                    form method="get" action=(format!("/games/{id}")) {
                        label for="turn" { (text.col_turn) " " }
                        select #turn name="turn" {
                            @for turn in turns.iter().rev() {
                                option value=(turn.turn) selected[report.as_ref().is_some_and(|r| r.turn == turn.turn)] { (turn.turn) }
                            }
                        }
                        @if revealed {
                            " " label for="race" { (text.col_race) " " }
                            select #race name="race" {
                                @for race in &habits.races {
                                    option value=(race.race) selected[report.as_ref().is_some_and(|r| r.race == race.race)] { (race.race) }
                                }
                            }
                        }
                        " " button type="submit" { (text.show) }
                    }
                }
                @if let Some(missing) = missing {
                    p.notice #report-missing role="status" { (missing) }
                }
                @if let Some(report) = &report {
                    h3 { (text.col_turn) " " (report.turn) " · " (report.race) }
                    pre #report { (report.text().map_or_else(|| serde_json::to_string_pretty(&report.report).unwrap_or_default(), str::to_owned)) }
                }
            }
        }
        @if !turns.is_empty() {
            section aria-labelledby="standings" {
                h2 #standings { (text.standings_title) }
                (chart::standings(&turns, text))
            }
        }
        (settings_section(visitor, &game))
        (players_section(visitor, &game, applications.as_deref(), own.as_ref(), manages, applying.as_ref()))
    };
    Ok(layout::page(visitor, &name, body))
}

fn status_section(visitor: &Visitor, game: &Game, progress: &GameProgress) -> Markup {
    let text = visitor.lang.text();
    html! {
        section aria-label=(text.col_status) {
            dl.settings {
                @if let Some(turn) = progress.current_turn {
                    dt { (text.current_turn) } dd #current-turn { (turn) }
                }
                @if let Some(at) = &progress.next_turn_at {
                    dt { (text.next_turn) } dd { (layout::countdown(at)) }
                }
                @if let Some(reason) = &progress.status_reason {
                    dt { (text.status_reason) }
                    dd {
                        @match reason {
                            StatusReason::EngineFailure => (text.engine_failure),
                            StatusReason::Stated(stated) => (text.reason(game.status, stated)),
                            reason => (reason.text()),
                        }
                    }
                }
                @if let Some(result) = &progress.result {
                    dt { (text.winner) } dd #winner { (result.winner.as_deref().unwrap_or("—")) }
                }
                @if game.status == GameStatus::EnrollmentOpen {
                    dt { (text.deadline) } dd { (layout::countdown(&game.settings.enrollment_deadline)) }
                }
            }
        }
    }
}

fn settings_section(visitor: &Visitor, game: &Game) -> Markup {
    let text = visitor.lang.text();
    let s = &game.settings;
    html! {
        section aria-labelledby="settings" {
            h2 #settings { (text.game_settings) }
            dl.settings {
                dt { (text.set_min) } dd { (s.min_players) }
                dt { (text.set_max) } dd { (s.max_players) }
                dt { (text.deadline) } dd { (layout::time(&s.enrollment_deadline)) }
                dt { (text.set_schedule) } dd { code { (s.schedule.as_str()) } }
                dt { (text.set_engine) } dd { (s.engine.as_str()) }
                dt { (text.set_visibility) } dd { (text.visibility(s.visibility)) }
                dt { (text.set_auto) } dd { (text.yes_no(s.auto_approve)) }
                dt { (text.set_reveal) } dd { (text.yes_no(s.reveal_reports_after_finish)) }
                dt { (text.set_early_turn) } dd { (text.yes_no(s.pbem.early_turn)) }
                dt { (text.set_min_turn_gap) } dd { (format_duration(s.pbem.min_turn_gap)) }
                dt { (text.set_reminders_shown) }
                dd {
                    @if s.pbem.reminders.is_empty() { (text.no_reminders) }
                    @else { (s.pbem.reminders.iter().map(|r| format_duration(*r)).collect::<Vec<_>>().join(", ")) }
                }
                dt { (text.set_idle_after) } dd { (s.pbem.idle_after) }
                dt { (text.set_vacation_turns) } dd { (s.pbem.vacation_turns) }
                dt { (text.set_anonymous) } dd { (text.yes_no(s.pbem.anonymous_messages)) }
                @if !s.engine_settings.as_map().is_empty() {
                    dt { (text.set_engine_settings) }
                    dd { code { (serde_json::Value::Object(s.engine_settings.as_map().clone())) } }
                }
            }
        }
    }
}

fn players_section(
    visitor: &Visitor,
    game: &Game,
    applications: Option<&[Application]>,
    own: Option<&Application>,
    manages: bool,
    applying: Option<&(String, String)>,
) -> Markup {
    let text = visitor.lang.text();
    let id = game.id;
    let enrolling = game.status == GameStatus::EnrollmentOpen;
    html! {
        section aria-labelledby="players" {
            h2 #players { (text.game_players) " (" (game.approved_count) " / " (game.settings.max_players) ")" }
            @if let Some(applications) = applications {
                @if applications.is_empty() { p { (text.none) } }
                ul.applications {
                    @for application in applications {
                        li {
                            (application.race_name.as_str()) " " span.badge data-status=(application.status.as_str()) { (text.application_status(application.status)) }
                            @if manages && enrolling && application.status == ApplicationStatus::Pending {
                                " " (button_form_about(visitor, &format!("/games/{id}/applications/{}/approve", application.id), text.approve, application.race_name.as_str()))
                                " " (button_form_about(visitor, &format!("/games/{id}/applications/{}/reject", application.id), text.reject, application.race_name.as_str()))
                            }
                        }
                    }
                }
            }
            // A refused application's reason shows whatever the page now offers (the game
            // may have closed, or another tab applied).
            @if let Some((_, error)) = applying {
                p.error #apply-refused data-answer="" role="alert" { (error) }
            }
            @if let Some(own) = own {
                p #own-application {
                    (text.your_application) ": " (own.race_name.as_str()) " " span.badge data-status=(own.status.as_str()) { (text.application_status(own.status)) }
                    @if own.status == ApplicationStatus::Pending {
                        " " (button_form(visitor, &format!("/games/{id}/withdraw"), text.withdraw))
                    }
                }
            } @else if visitor.user.is_some() && enrolling {
                h3 { (text.apply_title) }
                form.stack method="post" action=(format!("/games/{id}/apply")) {
                    (csrf_field(visitor))
                    label for="race_name" { (text.race_name) }
                    input #race_name type="text" name="race_name" required maxlength=(RaceName::MAX_CHARS) value=[applying.map(|(name, _)| name.as_str())];
                    p { button type="submit" { (text.apply) } }
                }
            }
            @if manages {
                h3 { (text.host_title) }
                p {
                    @match game.status {
                        GameStatus::Draft => {
                            (button_form(visitor, &format!("/games/{id}/host/open"), text.host_open)) " "
                        }
                        GameStatus::EnrollmentOpen => {
                            (layout::confirm_form(visitor, &format!("/games/{id}/host/close"), text.host_close, text.host_close_confirm)) " "
                        }
                        GameStatus::EnrollmentClosed => {
                            (layout::confirm_form(visitor, &format!("/games/{id}/host/start"), text.host_start, text.host_start_confirm)) " "
                        }
                        _ => {}
                    }
                    @if matches!(game.status, GameStatus::Draft | GameStatus::EnrollmentOpen | GameStatus::EnrollmentClosed | GameStatus::StartFailed) {
                        (layout::confirm_form(visitor, &format!("/games/{id}/host/cancel"), text.host_cancel, text.host_cancel_confirm))
                    }
                }
            }
        }
    }
}

fn orders_section(
    visitor: &Visitor,
    id: GameId,
    next_turn: u32,
    seat: &Seat,
    outcome: Option<&OrdersOutcome>,
) -> Markup {
    let text = visitor.lang.text();
    let current = outcome
        .map(|o| o.text.clone())
        .or_else(|| seat.latest_orders.clone())
        .unwrap_or_default();
    html! {
        section aria-labelledby="orders" {
            h2 #orders { (text.orders_title) " · " (seat.race) " · " (text.col_turn) " " (next_turn) }
            @if let Some(outcome) = outcome {
                (orders_verdict(visitor, outcome))
            } @else if let Some(errors) = &seat.latest_refused {
                div #verdict role="alert" {
                    p.error { (text.orders_last_refused) }
                    ul { @for error in errors { li.error { (error) } } }
                }
            }
            p.notice #orders-restored hidden data-draft-restored="" role="status" { (text.orders_restored) }
            form.stack method="post" action=(format!("/games/{id}/orders")) {
                (csrf_field(visitor))
                input type="hidden" name="turn" value=(next_turn);
                input type="hidden" name="race" value=(seat.race);
                input type="hidden" name="shown" value=(seat.latest_id.map(|id| id.to_string()).unwrap_or_default());
                label for="orders-text" { (text.orders_title) }
                p.hint #orders-help { (text.orders_help) }
                textarea #orders-text name="orders" rows="12" aria-describedby="orders-help" spellcheck="false" data-draft-key=(super::lapsed::draft_key(id, next_turn, &seat.race)) { (current) }
                p { button type="submit" { (text.orders_send) } }
            }
        }
    }
}

/// What became of the orders just sent.
fn orders_verdict(visitor: &Visitor, outcome: &OrdersOutcome) -> Markup {
    let text = visitor.lang.text();
    html! {
        @match &outcome.verdict {
            OrdersVerdict::Accepted => p.notice #verdict data-answer="" role="status" { (text.orders_accepted) },
            OrdersVerdict::Refused(errors) => div #verdict data-answer="" role="alert" {
                p.error { (text.orders_refused) }
                ul { @for error in errors { li.error { (error) } } }
            },
            OrdersVerdict::NotTaken(reason) => div #verdict data-answer="" role="alert" {
                p.error { (text.orders_not_taken) }
                ul { li.error { (reason) } }
            },
        }
    }
}

/// Orders sent for a game no longer in play (or a seat no longer the sender's): why they
/// were not taken, and their text to copy, where the editor was.
fn orders_not_open(visitor: &Visitor, outcome: &OrdersOutcome) -> Markup {
    let text = visitor.lang.text();
    html! {
        section aria-labelledby="orders" {
            h2 #orders { (text.orders_title) }
            (orders_verdict(visitor, outcome))
            pre #orders-text { (outcome.text) }
        }
    }
}
