//! The lobby (public games with filters), "my games" (what needs attention first) and
//! creating a game with every setting the API has.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDateTime, TimeZone, Utc};
use galaxy_core::domain::game::{Game, GameStatus, Visibility};
use galaxy_core::domain::page::{MAX_PAGE_SIZE, PageRequest};
use galaxy_core::domain::pbem::{
    DEFAULT_IDLE_AFTER, DEFAULT_MIN_TURN_GAP, DEFAULT_VACATION_TURNS, PbemSettingsInput, RaceState,
    format_duration,
};
use galaxy_core::ports::StoreError;
use galaxy_core::service::lobby::{LobbyError, LobbySearch, NewGame};
use galaxy_core::service::runtime::{MyGame, MyGamesFilter, RuntimeError};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::i18n::{Lang, Text};
use super::layout::{self, csrf_field};
use super::session::{Posted, Visitor};
use crate::http::error::ApiError;

/// Games per lobby page.
const LOBBY_PAGE: u32 = 50;

/// The lobby's filters and cursor.
#[derive(Debug, Default, Deserialize)]
pub struct LobbyQuery {
    /// Only games whose name contains this (case-insensitive).
    #[serde(default)]
    q: String,
    /// Only games with a free seat.
    #[serde(default)]
    free: Option<String>,
    /// The cursor of the next page.
    after: Option<String>,
    /// Games in play with a seat open to a replacement player, instead of games open
    /// for enrollment.
    seats: Option<String>,
}

/// `GET /`: public games open for enrollment; `?seats=1`: public games in play that
/// offer a seat to a replacement player.
pub async fn lobby(
    State(state): State<WebState>,
    visitor: Visitor,
    Query(query): Query<LobbyQuery>,
) -> Result<Response, WebError> {
    let text = visitor.lang.text();
    let first = PageRequest::first(LOBBY_PAGE)?;
    let page = match &query.after {
        None => first.clone(),
        Some(after) => PageRequest::after(LOBBY_PAGE, after.clone())?,
    };
    if query.seats.is_some() {
        return open_seats(&state, &visitor, (&page, &first)).await;
    }
    let only_free = query.free.is_some();
    let search = LobbySearch {
        name: Some(query.q.clone()),
        free_seat: only_free,
    };
    let lobby = &state.app.lobby;
    let games = match lobby.search_public_games(&search, &page).await {
        // A link that names no game (mistyped, cut short): the first page, as on /my.
        Err(LobbyError::Store(StoreError::InvalidCursor(_))) => {
            lobby.search_public_games(&search, &first).await?
        }
        other => other?,
    };
    let shown: Vec<&Game> = games.items.iter().collect();
    let body = html! {
        h1 { (text.lobby_title) }
        form.filters method="get" action="/" role="search" {
            label for="q" { (text.filter_name) " " }
            input #q type="search" name="q" value=(query.q);
            " "
            label { input type="checkbox" name="free" value="1" checked[only_free]; " " (text.filter_free) }
            " "
            button type="submit" { (text.filter) }
        }
        (games_table(text, &shown))
        @if let Some(next) = &games.next_after {
            p { a href=(format!("/?q={}{}&after={}", urlencode(&query.q), if only_free { "&free=1" } else { "" }, urlencode(next))) { (text.next_page) } }
        }
        p { a #open-seats href="/?seats=1" { (text.lobby_seats_link) } }
    };
    Ok(layout::page(&visitor, text.lobby_title, body))
}

/// `GET /?seats=1`: a page of the public games in play, those with a seat open to a
/// replacement player listed with the races whose seats are open (a page may list fewer
/// games than it read, or none, and still link to the next).
async fn open_seats(
    state: &WebState,
    visitor: &Visitor,
    (page, first): (&PageRequest, &PageRequest),
) -> Result<Response, WebError> {
    let text = visitor.lang.text();
    let lobby = &state.app.lobby;
    let games = match lobby.list_public_games_in_play(page).await {
        Err(LobbyError::Store(StoreError::InvalidCursor(_))) => {
            lobby.list_public_games_in_play(first).await?
        }
        other => other?,
    };
    let ids: Vec<_> = games.items.iter().map(|g| g.id).collect();
    let open = state.app.runtime.open_seats(&ids).await?;
    let listed: Vec<(&Game, &Vec<String>)> = games
        .items
        .iter()
        .filter_map(|game| {
            let (_, races) = open.iter().find(|(id, _)| *id == game.id)?;
            Some((game, races))
        })
        .collect();
    let body = html! {
        h1 { (text.lobby_seats_title) }
        p.hint { (text.lobby_seats_help) }
        @if listed.is_empty() {
            p { (text.none) }
        } @else {
            div.table-wrap { table #seats-list {
                thead { tr {
                    th scope="col" { (text.col_game) }
                    th scope="col" { (text.col_open_seats) }
                    th scope="col" { (text.col_players) }
                } }
                tbody {
                    @for (game, races) in &listed {
                        tr {
                            td { a href=(format!("/games/{}", game.id)) { (game.settings.name.as_str()) } }
                            td { (races.join(", ")) }
                            td { (game.approved_count) }
                        }
                    }
                }
            } }
        }
        @if let Some(next) = &games.next_after {
            p { a href=(format!("/?seats=1&after={}", urlencode(next))) { (text.next_page) } }
        }
        p { a href="/" { (text.lobby_enrolling_link) } }
    };
    Ok(layout::page(visitor, text.lobby_seats_title, body))
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

fn games_table(text: &Text, games: &[&Game]) -> Markup {
    html! {
        @if games.is_empty() {
            p { (text.none) }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { (text.col_game) }
                        th scope="col" { (text.col_status) }
                        th scope="col" { (text.col_players) }
                        th scope="col" { (text.deadline) }
                    } }
                    tbody {
                        @for game in games {
                            tr {
                                td { a href=(format!("/games/{}", game.id)) { (game.settings.name.as_str()) } }
                                td { span.badge { (text.status(game.status)) } }
                                td { (game.approved_count) " / " (game.settings.max_players) }
                                td { (layout::time(&game.settings.enrollment_deadline)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether the viewer's race still owes orders for the coming turn: none accepted, and
/// neither marked ready without orders, nor on vacation, nor out of the game.
fn owes_orders(game: &MyGame) -> bool {
    let excused = game
        .race
        .as_ref()
        .and_then(|race| game.races.iter().find(|r| &r.race == race))
        .is_some_and(|r| r.ready || matches!(r.state, RaceState::Vacation | RaceState::Eliminated));
    game.orders_in == Some(false) && !excused
}

/// How urgent a game of "my games" is: smaller comes first.
fn urgency(game: &MyGame) -> (u8, Option<chrono::DateTime<Utc>>) {
    let rank = match (owes_orders(game), game.game.status) {
        (true, _) => 0,
        (_, GameStatus::EnrollmentClosed | GameStatus::StartFailed) if game.hosting => 1,
        (_, GameStatus::EnrollmentOpen | GameStatus::Draft) if game.hosting => 2,
        (_, GameStatus::Running | GameStatus::Paused | GameStatus::Starting) => 3,
        (_, GameStatus::EnrollmentOpen | GameStatus::EnrollmentClosed) => 4,
        _ => 5,
    };
    (rank, game.progress.next_turn_at)
}

/// How many ended games "my games" shows at a time.
const ENDED_PAGE: u32 = 20;

/// `GET /my`'s query.
#[derive(Debug, Default, Deserialize)]
pub struct MyQuery {
    /// The cursor of the next page of ended games.
    after: Option<String>,
}

/// `GET /my`: the visitor's games going on, what needs attention first (orders due,
/// soonest deadline first; then games waiting for their host), then their ended games,
/// newest first, a page at a time (a player of many past games gets a page of them, not
/// all).
pub async fn my_games(
    State(state): State<WebState>,
    visitor: Visitor,
    Query(query): Query<MyQuery>,
) -> Result<Response, WebError> {
    let user = visitor.signed_in()?;
    let text = visitor.lang.text();
    let runtime = &state.app.runtime;
    // Games going on are few (the active-games entitlement bounds a player's): all of
    // them, a page of the largest size at a time.
    let going = MyGamesFilter {
        ended: Some(false),
        ..MyGamesFilter::default()
    };
    let mut games = Vec::new();
    let mut page = PageRequest::first(MAX_PAGE_SIZE)?;
    loop {
        let got = runtime.my_games(user.actor, going, &page).await?;
        games.extend(got.items);
        match got.next_after {
            Some(after) => page = PageRequest::after(MAX_PAGE_SIZE, after)?,
            None => break,
        }
    }
    games.sort_by_key(|g| {
        let (rank, next) = urgency(g);
        (rank, next.is_none(), next)
    });
    let ended_filter = MyGamesFilter {
        ended: Some(true),
        ..MyGamesFilter::default()
    };
    let first = PageRequest::first(ENDED_PAGE)?;
    let ended = match query.after {
        None => runtime.my_games(user.actor, ended_filter, &first).await?,
        Some(after) => {
            let page = PageRequest::after(ENDED_PAGE, after)?;
            match runtime.my_games(user.actor, ended_filter, &page).await {
                // A link that names no game (mistyped, cut short): the first page.
                Err(RuntimeError::Store(StoreError::InvalidCursor(_))) => {
                    runtime.my_games(user.actor, ended_filter, &first).await?
                }
                other => other?,
            }
        }
    };
    let body = html! {
        h1 { (text.my_title) }
        @if games.is_empty() && ended.items.is_empty() {
            p { (text.none) " " a href="/" { (text.nav_lobby) } }
        }
        @if !games.is_empty() { (my_games_table(text, &games)) }
        @if !ended.items.is_empty() {
            h2 #ended { (text.my_ended) }
            (my_games_table(text, &ended.items))
            @if let Some(next) = &ended.next_after {
                p { a href=(format!("/my?after={}#ended", urlencode(next))) { (text.next_page) } }
            }
        }
    };
    Ok(layout::page(&visitor, text.my_title, body))
}

/// A table of "my games".
fn my_games_table(text: &Text, games: &[MyGame]) -> Markup {
    html! {
        div.table-wrap { table {
            thead { tr {
                th scope="col" { (text.col_game) }
                th scope="col" { (text.col_race) }
                th scope="col" { (text.col_status) }
                th scope="col" { (text.col_turn) }
                th scope="col" { (text.col_next) }
                th scope="col" { (text.col_todo) }
            } }
            tbody {
                @for game in games {
                    tr {
                        td { a href=(format!("/games/{}", game.game.id)) { (game.game.settings.name.as_str()) } }
                        td {
                            @if let Some(race) = &game.race { (race) }
                            @if game.hosting { " " span.badge { (text.hosting) } }
                        }
                        td { span.badge { (text.status(game.game.status)) } }
                        td { @if let Some(turn) = game.progress.current_turn { (turn) } }
                        td { @if let Some(at) = &game.progress.next_turn_at { (layout::countdown(at)) } }
                        td {
                            @match (owes_orders(game), game.orders_in, urgency(game).0) {
                                (true, _, _) => span.badge.due { (text.todo_orders) },
                                (_, Some(true), _) => span.badge { (text.todo_orders_in) },
                                (_, _, 1 | 2) => span.badge.due { (text.todo_host) },
                                _ => {},
                            }
                        }
                    }
                }
            }
        } }
    }
}

/// The create-game form as posted (every field a string, so a bad number is shown with
/// the form rather than refused by the form parser).
#[derive(Debug, Default, Deserialize)]
pub struct GameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    min_players: String,
    #[serde(default)]
    max_players: String,
    #[serde(default)]
    enrollment_deadline: String,
    #[serde(default)]
    turn_schedule: String,
    #[serde(default)]
    engine: String,
    #[serde(default)]
    auto_approve: Option<String>,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    engine_settings: String,
    #[serde(default)]
    reveal_reports_after_finish: Option<String>,
    #[serde(default)]
    early_turn: Option<String>,
    #[serde(default)]
    min_turn_gap: String,
    /// Comma-separated durations; empty means the defaults that fit the schedule.
    #[serde(default)]
    reminders: String,
    #[serde(default)]
    idle_after: String,
    #[serde(default)]
    vacation_turns: String,
    #[serde(default)]
    anonymous_messages: Option<String>,
}

impl GameForm {
    fn defaults(now: chrono::DateTime<Utc>) -> Self {
        let deadline = now + chrono::Duration::days(7);
        Self {
            min_players: "2".to_owned(),
            max_players: "8".to_owned(),
            enrollment_deadline: deadline.format("%Y-%m-%dT%H:%M").to_string(),
            turn_schedule: "0 18 * * 1,3,5".to_owned(),
            visibility: "public".to_owned(),
            reveal_reports_after_finish: Some("1".to_owned()),
            early_turn: Some("1".to_owned()),
            min_turn_gap: format_duration(DEFAULT_MIN_TURN_GAP),
            idle_after: DEFAULT_IDLE_AFTER.to_string(),
            vacation_turns: DEFAULT_VACATION_TURNS.to_string(),
            ..Self::default()
        }
    }

    /// The service's input, or the field that could not be read.
    fn to_new_game(&self) -> Result<NewGame, ApiError> {
        let number = |field: &'static str, value: &str| {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| ApiError::validation(field, format!("{field} must be a whole number")))
        };
        let deadline = parse_deadline(&self.enrollment_deadline).ok_or_else(|| {
            ApiError::validation(
                "enrollment_deadline",
                "enrollment_deadline must be a date and time (UTC)",
            )
        })?;
        let engine_settings = if self.engine_settings.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&self.engine_settings).map_err(|_| {
                ApiError::validation("engine_settings", "engine_settings must be a JSON object")
            })?
        };
        let visibility = Visibility::parse(&self.visibility).ok_or_else(|| {
            ApiError::validation("visibility", "visibility must be public or private")
        })?;
        let engine = self.engine.trim();
        let text = |value: &str| {
            let value = value.trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        let reminders = self.reminders.trim();
        // The word for none, in either language the pages speak: no reminders at all
        // (as the API's `reminders: []`); empty: the defaults.
        let none = Lang::ALL
            .iter()
            .any(|lang| reminders.eq_ignore_ascii_case(lang.text().no_reminders));
        let pbem = PbemSettingsInput {
            early_turn: Some(self.early_turn.is_some()),
            min_turn_gap: text(&self.min_turn_gap),
            reminders: if none {
                Some(Vec::new())
            } else {
                (!reminders.is_empty()).then(|| {
                    reminders
                        .split(',')
                        .map(|r| r.trim().to_owned())
                        .filter(|r| !r.is_empty())
                        .collect()
                })
            },
            idle_after: text(&self.idle_after)
                .map(|v| number("idle_after", &v))
                .transpose()?,
            vacation_turns: text(&self.vacation_turns)
                .map(|v| number("vacation_turns", &v))
                .transpose()?,
            anonymous_messages: Some(self.anonymous_messages.is_some()),
        };
        Ok(NewGame {
            name: self.name.clone(),
            min_players: number("min_players", &self.min_players)?,
            max_players: number("max_players", &self.max_players)?,
            enrollment_deadline: deadline,
            turn_schedule: self.turn_schedule.clone(),
            engine: (!engine.is_empty()).then(|| engine.to_owned()),
            auto_approve: self.auto_approve.is_some(),
            visibility,
            engine_settings,
            reveal_reports_after_finish: self.reveal_reports_after_finish.is_some(),
            pbem,
        })
    }
}

/// A `datetime-local` value (`2030-02-01T18:00`, seconds optional) or RFC 3339, as UTC.
fn parse_deadline(input: &str) -> Option<chrono::DateTime<Utc>> {
    let input = input.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(input) {
        return Some(at.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(input, format).ok())
        .map(|naive| Utc.from_utc_datetime(&naive))
}

fn game_form(visitor: &Visitor, form: &GameForm, error: Option<&str>) -> Markup {
    let text = visitor.lang.text();
    html! {
        h1 { (text.new_title) }
        @if let Some(error) = error { (layout::alert(error)) }
        form.stack method="post" action="/games" {
            (csrf_field(visitor))
            label for="name" { (text.set_name) }
            input #name type="text" name="name" value=(form.name) required minlength="3" maxlength="64" autofocus;
            label for="min_players" { (text.set_min) }
            input #min_players type="number" name="min_players" value=(form.min_players) min="2" max="64" required;
            label for="max_players" { (text.set_max) }
            input #max_players type="number" name="max_players" value=(form.max_players) min="2" max="64" required;
            label for="enrollment_deadline" { (text.set_deadline) }
            input #enrollment_deadline type="datetime-local" name="enrollment_deadline" value=(form.enrollment_deadline) required;
            label for="turn_schedule" { (text.set_schedule) }
            p.hint #schedule_help { (text.set_schedule_help) }
            input #turn_schedule type="text" name="turn_schedule" value=(form.turn_schedule) aria-describedby="schedule_help" required;
            label for="engine" { (text.set_engine) }
            input #engine type="text" name="engine" value=(form.engine) placeholder="reference";
            label for="visibility" { (text.set_visibility) }
            select #visibility name="visibility" {
                option value="public" selected[form.visibility == "public"] { (text.public) }
                option value="private" selected[form.visibility == "private"] { (text.private) }
            }
            label { input type="checkbox" name="auto_approve" value="1" checked[form.auto_approve.is_some()]; " " (text.set_auto) }
            label { input type="checkbox" name="reveal_reports_after_finish" value="1" checked[form.reveal_reports_after_finish.is_some()]; " " (text.set_reveal) }
            label for="engine_settings" { (text.set_engine_settings) }
            textarea #engine_settings name="engine_settings" rows="4" { (form.engine_settings) }
            fieldset {
                legend { (text.set_pbem) }
                label { input type="checkbox" name="early_turn" value="1" checked[form.early_turn.is_some()]; " " (text.set_early_turn) }
                label for="min_turn_gap" { (text.set_min_turn_gap) }
                input #min_turn_gap type="text" name="min_turn_gap" value=(form.min_turn_gap) aria-describedby="duration_help";
                label for="reminders" { (text.set_reminders) }
                input #reminders type="text" name="reminders" value=(form.reminders) placeholder="24h, 2h" aria-describedby="duration_help";
                p.hint #duration_help { (text.set_duration_help) }
                label for="idle_after" { (text.set_idle_after) }
                input #idle_after type="number" name="idle_after" value=(form.idle_after) min="1" max="1000";
                label for="vacation_turns" { (text.set_vacation_turns) }
                input #vacation_turns type="number" name="vacation_turns" value=(form.vacation_turns) min="0" max="1000";
                label { input type="checkbox" name="anonymous_messages" value="1" checked[form.anonymous_messages.is_some()]; " " (text.set_anonymous) }
            }
            p { button type="submit" { (text.create) } }
        }
    }
}

/// `GET /games/new`.
pub async fn new_game_page(
    State(state): State<WebState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    visitor.signed_in()?;
    let body = game_form(&visitor, &GameForm::defaults(state.app.clock.now()), None);
    Ok(layout::page(&visitor, visitor.lang.text().new_title, body))
}

/// `POST /games`: creates the draft through the lobby service; a refusal shows the form
/// again with the service's message (the API's 422).
pub async fn create_game(
    State(state): State<WebState>,
    Posted { visitor, form }: Posted<GameForm>,
) -> Result<Response, WebError> {
    let user = visitor.signed_in()?;
    let created = match form.to_new_game() {
        Ok(new) => state
            .app
            .lobby
            .create_game(user.actor, new)
            .await
            .map_err(WebError::from),
        Err(error) => Err(WebError::from(error)),
    };
    match created {
        Ok(game) => Ok(Redirect::to(&format!("/games/{}", game.id)).into_response()),
        // Refused (invalid, or over the host's limit of games), or not done (a store
        // down for a moment): the form again, as filled in, with the reason, never an
        // error page in place of some sixteen fields.
        Err(error) if matches!(error, WebError::Api(_)) => {
            let told = error.told(visitor.lang);
            let body = game_form(&visitor, &form, Some(&told));
            let page = layout::page(&visitor, visitor.lang.text().new_title, body);
            Ok((error.status(), page).into_response())
        }
        Err(error) => Err(error),
    }
}
