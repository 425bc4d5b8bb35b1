//! The play-by-email habits on the game page: every race's state (ready, idle, vacation,
//! open seat), the player's "ready without orders", vacation and message forms, the
//! race's messages, and the seat actions (the host opens an idle race's seat and approves
//! a replacement, other users apply, the old player reclaims). Each handler calls the
//! runtime service method the matching `/api/v1/user/games/{id}/...` route calls, so the
//! pages refuse what the API refuses, with the API's message.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use galaxy_core::domain::game::{Game, GameStatus};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::pbem::{MAX_MESSAGE_CHARS, RaceState, SeatApplicationStatus, Vacation};
use galaxy_core::domain::{GameId, SeatApplicationId, Timestamp};
use galaxy_core::ports::StoreError;
use galaxy_core::service::runtime::{MessageTo, MessageView, RaceView, RuntimeError};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::game::{EmptyForm, parse_game_id};
use super::i18n::Text;
use super::lapsed;
use super::layout::{self, button_form_about, csrf_field};
use super::lobby::urlencode;
use super::session::{Posted, PostedOrLapsed, Visitor};

/// The message form's value for "every other race": `*` can be no race's name (a race
/// may well be called "All").
const TO_EVERY_RACE: &str = "*";

/// How many of the race's messages the game page shows (newest first); the API pages
/// through all of them.
const MESSAGES_SHOWN: u32 = 50;

/// A pending application for an open seat, as the host sees it.
pub(super) struct SeatRequest {
    id: SeatApplicationId,
    race: String,
    applicant: String,
    at: Timestamp,
}

/// What the game page shows of the habits, read for one viewer.
pub(super) struct PbemView {
    /// Every race with its readiness and state (empty before the start).
    pub(super) races: Vec<RaceView>,
    /// The viewer's race, when they play one now.
    own_race: Option<String>,
    /// The viewer's race's messages, newest first, when they play.
    messages: Option<Vec<MessageView>>,
    /// The cursor of the messages older than those shown, if any.
    older_messages: Option<String>,
    /// Whether the messages shown are an older page (not the newest).
    messages_paged: bool,
    /// The viewer's vacation, when they play and the game has vacation turns.
    vacation: Option<Vacation>,
    /// The host's pending seat applications.
    requests: Vec<SeatRequest>,
    /// The races whose open seat the viewer applied for, waiting for the host.
    applied: Vec<String>,
    /// Whether the viewer is the host.
    is_host: bool,
    /// Whether the viewer is signed in.
    signed_in: bool,
}

impl PbemView {
    /// Whether the viewer's race is out of the game (eliminated in the latest standings):
    /// it sends no orders, ready marks or vacations any more, so none is offered.
    pub(super) fn own_race_out(&self) -> bool {
        self.own_race.as_ref().is_some_and(|own| {
            self.races
                .iter()
                .any(|r| r.race == *own && r.state == RaceState::Eliminated)
        })
    }

    /// Reads the habits for `visitor`; `own_race` is the race they play now (from the
    /// page's seat lookup), if any.
    /// `older`: the cursor of the page of messages asked for (`None`: the newest; one
    /// that names no message gives the newest too).
    pub(super) async fn load(
        state: &WebState,
        visitor: &Visitor,
        game: &Game,
        own_race: Option<String>,
        older: Option<&str>,
    ) -> Result<Self, WebError> {
        let runtime = &state.app.runtime;
        let races = runtime.races(game).await?;
        let actor = visitor.user.as_ref().map(|u| u.actor);
        let is_host = actor.is_some_and(|a| a.user_id == game.host);
        let (mut messages, mut older_messages, mut messages_paged) = (None, None, false);
        if let (Some(_), Some(actor)) = (&own_race, actor) {
            let newest = PageRequest::first(MESSAGES_SHOWN)?;
            let page = match older {
                Some(after) => {
                    let page = PageRequest::after(MESSAGES_SHOWN, after)?;
                    match runtime.messages(actor, game.id, &page).await {
                        // A link that names no message (mistyped, cut short): the newest.
                        Err(RuntimeError::Store(StoreError::InvalidCursor(_))) => {
                            runtime.messages(actor, game.id, &newest).await?
                        }
                        other => {
                            messages_paged = true;
                            other?
                        }
                    }
                }
                None => runtime.messages(actor, game.id, &newest).await?,
            };
            older_messages = page.next_after;
            messages = Some(page.items);
        }
        let vacation = match (&own_race, actor) {
            (Some(_), Some(actor)) if game.settings.pbem.vacation_turns > 0 => {
                Some(runtime.vacation(actor, game.id).await?)
            }
            _ => None,
        };
        // Seats change hands only in a game in play: a finished or stopped game keeps its
        // open seats' requests, but offers no approval that could only be refused.
        let in_play = matches!(game.status, GameStatus::Running | GameStatus::Paused);
        let mut requests = Vec::new();
        if let (true, true, Some(actor)) = (is_host, in_play, actor) {
            for race in races.iter().filter(|r| r.state == RaceState::OpenSeat) {
                for application in runtime
                    .seat_applications(actor, game.id, &race.race)
                    .await?
                    .into_iter()
                    .filter(|a| a.status == SeatApplicationStatus::Pending)
                {
                    let applicant = state
                        .app
                        .users
                        .get_user_trusted(&application.user_id.to_string())
                        .await
                        .map_or_else(
                            |_| application.user_id.to_string(),
                            |u| u.display_name.as_str().to_owned(),
                        );
                    requests.push(SeatRequest {
                        id: application.id,
                        race: application.race,
                        applicant,
                        at: application.created_at,
                    });
                }
            }
        }
        let applied = match actor {
            Some(actor) if !is_host && own_race.is_none() => runtime
                .own_seat_applications(actor, game.id)
                .await?
                .into_iter()
                .map(|a| a.race)
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            races,
            own_race,
            messages,
            older_messages,
            messages_paged,
            vacation,
            requests,
            applied,
            is_host,
            signed_in: actor.is_some(),
        })
    }
}

fn state_name(text: &Text, state: RaceState) -> &'static str {
    match state {
        RaceState::Active => text.race_active,
        RaceState::Idle => text.race_idle,
        RaceState::Vacation => text.race_vacation,
        RaceState::OpenSeat => text.race_open_seat,
        RaceState::Eliminated => text.race_eliminated,
    }
}

/// The races section: each race's state and readiness, with the seat actions the viewer
/// may take.
pub(super) fn races_section(visitor: &Visitor, game: &Game, view: &PbemView) -> Markup {
    let text = visitor.lang.text();
    let id = game.id;
    let in_play = matches!(game.status, GameStatus::Running | GameStatus::Paused);
    if view.races.is_empty() {
        return html! {};
    }
    html! {
        section aria-labelledby="races" {
            h2 #races { (text.races_title) }
            ul.races {
                @for race in &view.races {
                    @let mine = view.own_race.as_deref() == Some(race.race.as_str());
                    li data-race=(race.race) {
                        (race.race)
                        @if mine { " (" (text.your_race) ")" }
                        " " span.badge { (state_name(text, race.state)) }
                        @if in_play && race.ready { " " span.badge { (text.race_ready) } }
                        @if in_play && view.is_host && race.state == RaceState::Idle {
                            " " (button_form_about(visitor, &format!("/games/{id}/seats/{}/open", race.race), text.seat_open, &race.race))
                        }
                        @if in_play && mine && race.state == RaceState::OpenSeat {
                            " " (button_form_about(visitor, &format!("/games/{id}/seats/{}/reclaim", race.race), text.seat_reclaim, &race.race))
                        }
                        @if in_play && view.signed_in && !view.is_host && view.own_race.is_none()
                            && race.state == RaceState::OpenSeat {
                            @if view.applied.contains(&race.race) {
                                " " span.badge.seat-applied { (text.seat_applied) }
                            } @else {
                                " " (button_form_about(visitor, &format!("/games/{id}/seats/{}/apply", race.race), text.seat_apply, &race.race))
                            }
                        }
                    }
                }
            }
            @if !view.requests.is_empty() {
                h3 { (text.seat_requests) }
                ul {
                    @for request in &view.requests {
                        li {
                            (request.race) " · " (request.applicant) " · " (layout::time(&request.at)) " "
                            (button_form_about(visitor, &format!("/games/{id}/seats/{}/applications/{}/approve", request.race, request.id), text.approve, &format!("{} · {}", request.race, request.applicant)))
                        }
                    }
                }
            }
        }
    }
}

/// The player's habits beside the orders form: ready without orders, and vacation.
pub(super) fn player_actions(
    visitor: &Visitor,
    game: &Game,
    next_turn: u32,
    view: &PbemView,
) -> Markup {
    let text = visitor.lang.text();
    let id = game.id;
    let Some(own) = &view.own_race else {
        return html! {};
    };
    let ready = view.races.iter().any(|r| &r.race == own && r.ready);
    html! {
        section aria-labelledby="habits" {
            h2 #habits { (text.habits_title) }
            @if ready {
                p.notice #ready { (text.race_ready) }
            } @else {
                form.inline method="post" action=(format!("/games/{id}/ready")) {
                    (csrf_field(visitor))
                    input type="hidden" name="turn" value=(next_turn);
                    button type="submit" { (text.ready_button) }
                }
                p.hint { (text.ready_help) }
            }
            // A game without vacation turns offers none, and a spent budget no form (every
            // request would be refused).
            @if let Some(vacation) = &view.vacation {
                @if let (Some(from), Some(until)) = (vacation.from, vacation.until) {
                    @if until >= next_turn {
                        p.notice #vacation-booked { (text.vacation_booked) " " (from) "–" (until) }
                    }
                }
                @if vacation.left > 0 {
                    form.inline method="post" action=(format!("/games/{id}/vacation")) {
                        (csrf_field(visitor))
                        label for="vacation-turns" { (text.vacation_label) " " }
                        input #vacation-turns type="number" name="turns" value="1" min="1" max=(vacation.left) required;
                        " " button type="submit" { (text.vacation_button) }
                    }
                }
                p.hint #vacation-left {
                    (text.vacation_help) " "
                    (text.vacation_left(vacation.left, game.settings.pbem.vacation_turns))
                }
            }
        }
    }
}

/// The messages section: the form (while the game is in play) and the race's messages.
/// A message the service refused, put back in the form with the reason.
pub(super) struct MessageDraft {
    /// The recipient chosen.
    pub to: String,
    /// The text typed.
    pub text: String,
    /// Why it was refused.
    pub error: String,
}

pub(super) fn messages_section(
    visitor: &Visitor,
    game: &Game,
    view: &PbemView,
    draft: Option<&MessageDraft>,
) -> Markup {
    let text = visitor.lang.text();
    let id = game.id;
    let in_play = matches!(game.status, GameStatus::Running | GameStatus::Paused);
    // Where the form is gone (the game ended, the seat was handed over) a message that
    // was not sent stays readable, to copy.
    let kept = |draft: &MessageDraft| {
        html! {
            p.error #message-refused data-answer="" role="alert" { (draft.error) }
            @if !in_play || view.own_race.is_none() {
                label for="message-kept" { (text.message_kept) }
                textarea #message-kept readonly rows="4" { (draft.text) }
            }
        }
    };
    let (Some(own), Some(messages)) = (&view.own_race, &view.messages) else {
        return match draft {
            Some(draft) => html! {
                section aria-labelledby="messages" {
                    h2 #messages { (text.messages_title) }
                    (kept(draft))
                }
            },
            None => html! {},
        };
    };
    html! {
        section aria-labelledby="messages" {
            h2 #messages { (text.messages_title) }
            @if let Some(draft) = draft {
                (kept(draft))
            }
            @if in_play {
                form.stack method="post" action=(format!("/games/{id}/messages")) {
                    (csrf_field(visitor))
                    label for="message-to" { (text.message_to) }
                    select #message-to name="to" {
                        option value=(TO_EVERY_RACE) { (text.message_all) }
                        @for race in view.races.iter().filter(|r| &r.race != own) {
                            option value=(race.race) selected[draft.is_some_and(|d| d.to == race.race)] { (race.race) }
                        }
                    }
                    label for="message-text" { (text.message_text) }
                    textarea #message-text name="text" rows="4" maxlength=(MAX_MESSAGE_CHARS) required {
                        @if let Some(draft) = draft { (draft.text) }
                    }
                    p { button type="submit" { (text.message_send) } }
                }
            }
            @if view.messages_paged {
                p { a href=(format!("/games/{id}#messages")) { (text.messages_newest) } }
            }
            @if messages.is_empty() { p { (text.none) } }
            @for message in messages {
                article.message {
                    p {
                        strong { (message.from.as_deref().unwrap_or(text.anonymous)) }
                        " → " (if message.to_all { text.message_all.to_owned() } else { message.to.join(", ") })
                        " · " (text.col_turn) " " (message.turn)
                        " · " (layout::time(&message.sent_at))
                    }
                    p.message-text { (message.text) }
                }
            }
            @if let Some(next) = &view.older_messages {
                p {
                    a #older-messages href=(format!("/games/{id}?messages_after={}#messages", urlencode(next))) {
                        (text.messages_older)
                    }
                }
            }
        }
    }
}

fn back(id: GameId) -> Response {
    Redirect::to(&format!("/games/{id}")).into_response()
}

/// The ready form.
#[derive(Debug, Deserialize)]
pub struct ReadyForm {
    /// The coming turn.
    turn: u32,
}

/// `POST /games/{id}/ready`: the race is ready for the coming turn without orders.
pub async fn mark_ready(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Posted { visitor, form }: Posted<ReadyForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    state
        .app
        .runtime
        .mark_ready(user.actor, id, form.turn)
        .await?;
    Ok(back(id))
}

/// The vacation form.
#[derive(Debug, Deserialize)]
pub struct VacationForm {
    /// How many turns, from the coming one.
    turns: u32,
}

/// `POST /games/{id}/vacation`.
pub async fn take_vacation(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Posted { visitor, form }: Posted<VacationForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    state
        .app
        .runtime
        .take_vacation(user.actor, id, form.turns)
        .await?;
    Ok(back(id))
}

/// The message form.
#[derive(Debug, Deserialize)]
pub struct MessageForm {
    /// [`TO_EVERY_RACE`], or one race's name.
    to: String,
    /// The plain text.
    #[serde(deserialize_with = "super::session::text_area")]
    text: String,
}

#[cfg(test)]
impl MessageForm {
    /// The text as read.
    pub(super) fn text(&self) -> &str {
        &self.text
    }
}

/// `POST /games/{id}/messages`. A message sent with a session that ended comes back on
/// a page of its own ([`lapsed::message_page`]) rather than being lost behind the login.
pub async fn send_message(
    State(state): State<WebState>,
    Path(id): Path<String>,
    posted: PostedOrLapsed<MessageForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let (visitor, form) = match posted {
        PostedOrLapsed::Posted(Posted { visitor, form }) => (visitor, form),
        PostedOrLapsed::Lapsed { visitor, form } => {
            return Ok(lapsed::message_page(&visitor, id, &form.text));
        }
        PostedOrLapsed::Stale { visitor, form } => {
            let error = visitor.lang.text().stale_form.to_owned();
            return message_again(&state, &visitor, id, form, StatusCode::CONFLICT, error).await;
        }
    };
    let user = visitor.signed_in()?;
    let to = if form.to == TO_EVERY_RACE {
        MessageTo::All
    } else {
        MessageTo::Races(vec![form.to.clone()])
    };
    let sent = state
        .app
        .runtime
        .send_message(user.actor, id, to, form.text.clone())
        .await;
    match sent {
        Ok(_) => Ok(Redirect::to(&format!("/games/{id}#messages")).into_response()),
        Err(error) => {
            // Not sent (too long, too many, a race that is gone, the game ended, the
            // seat handed over, a store down): the page again, with the text as typed
            // and the reason; only a page that cannot be shown is an error page.
            let error = WebError::from(error);
            let told = error.told(visitor.lang);
            let status = error.status();
            match message_again(&state, &visitor, id, form, status, told).await {
                Ok(page) => Ok(page),
                Err(_) => Err(error),
            }
        }
    }
}

/// The game page again with a message that was not sent: its text and recipient back
/// in the form (or, where the form is gone, to copy) and why.
async fn message_again(
    state: &WebState,
    visitor: &Visitor,
    id: GameId,
    form: MessageForm,
    status: StatusCode,
    error: String,
) -> Result<Response, WebError> {
    let draft = MessageDraft {
        to: form.to,
        text: form.text,
        error,
    };
    let returned = Some(super::game::Returned::Message(draft));
    let query = super::game::GameQuery::default();
    let page = super::game::render(state, visitor, id, &query, returned).await?;
    Ok((status, page).into_response())
}

/// `POST /games/{id}/seats/{race}/{action}`: `open` (host), `reclaim` (the race's own
/// player), `apply` (another user).
pub async fn seat_action(
    State(state): State<WebState>,
    Path((id, race, action)): Path<(String, String, String)>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    let runtime = &state.app.runtime;
    match action.as_str() {
        "open" => {
            runtime.open_seat(user.actor, id, &race).await?;
        }
        "reclaim" => {
            runtime.reclaim_seat(user.actor, id, &race).await?;
        }
        "apply" => {
            runtime.apply_for_seat(user.actor, id, &race).await?;
        }
        _ => return Err(WebError::NotFound),
    }
    Ok(back(id))
}

/// `POST /games/{id}/seats/{race}/applications/{app_id}/approve`: the host hands the
/// seat to the applicant.
pub async fn approve_seat(
    State(state): State<WebState>,
    Path((id, race, app_id)): Path<(String, String, String)>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let app_id = SeatApplicationId::parse(&app_id).map_err(|_| WebError::NotFound)?;
    let user = visitor.signed_in()?;
    state
        .app
        .runtime
        .approve_seat_application(user.actor, id, &race, app_id)
        .await?;
    Ok(back(id))
}
