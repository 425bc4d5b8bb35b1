//! The admin pages: users (search, block, unblock), games (filter by status; pause,
//! resume, stop, force the next turn, retry a start), runtime records and health events,
//! mail deliveries and notification dead letters with retry. Every handler asks for the
//! admin role first (403 for anyone else) and the services check it again, as for the API.

mod health;
mod mail;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use galaxy_core::domain::game::GameStatus;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::user::Block;
use galaxy_core::domain::user::UserStatus;
use galaxy_core::domain::{GameId, UserId};
use galaxy_core::service::{Actor, ErrorKind, ServiceError};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::i18n::AdminText;
use super::layout::{self, button_form_about, confirm_form_about, csrf_field};
use super::lobby::urlencode;
use super::session::{Posted, Visitor};
use crate::http::error::ApiError;

pub use health::health_page;
pub use mail::{mail_page, retry_all_dead_mail, retry_dead_letter, retry_mail};

/// Rows per admin page.
const ADMIN_PAGE: u32 = 100;

/// Filters and cursor of an admin list.
#[derive(Debug, Default, Deserialize)]
pub struct AdminQuery {
    /// Text to look for (users: e-mail or display name).
    #[serde(default)]
    q: String,
    /// A status filter (games, mail).
    #[serde(default)]
    status: String,
    /// A game (health events).
    #[serde(default)]
    game: String,
    /// The cursor of the next page.
    after: Option<String>,
    /// The cursor of the next page of runtime records (the health page lists records and
    /// events, each paged on its own).
    records_after: Option<String>,
    /// The cursor of the next page of notification dead letters (the mail page lists
    /// mails and dead letters, each paged on its own).
    dead_after: Option<String>,
    /// How many dead mails "retry all" just queued again (the mail page says so).
    retried: Option<u64>,
}

impl AdminQuery {
    fn page(&self) -> Result<PageRequest, WebError> {
        page_after(self.after.as_ref())
    }
}

/// The page after `after`, or the first.
fn page_after(after: Option<&String>) -> Result<PageRequest, WebError> {
    Ok(match after {
        None => PageRequest::first(ADMIN_PAGE)?,
        Some(after) => PageRequest::after(ADMIN_PAGE, after.clone())?,
    })
}

fn admin_nav(t: &AdminText) -> Markup {
    html! {
        nav aria-label=(t.admin) {
            p {
                a href="/admin/users" { (t.users) } " · "
                a href="/admin/games" { (t.games) } " · "
                a href="/admin/health" { (t.health) } " · "
                a href="/admin/mail" { (t.mail) }
            }
        }
    }
}

fn next_link(t: &AdminText, base: &str, next: Option<&String>) -> Markup {
    html! {
        @if let Some(next) = next {
            p { a href=(format!("{base}after={}", urlencode(next))) { (t.more) } }
        }
    }
}

/// The names of the games `ids`, each read once (through the game cache): the health
/// page names games, not ids. A game that cannot be read (deleted since) is left out,
/// and its row shows the id.
async fn game_names(state: &WebState, admin: &Actor, ids: Vec<GameId>) -> HashMap<GameId, String> {
    let mut names = HashMap::new();
    for id in ids {
        if names.contains_key(&id) {
            continue;
        }
        if let Ok(game) = state.app.lobby.get_game(Some(*admin), id).await {
            names.insert(id, game.settings.name.as_str().to_owned());
        }
    }
    names
}

/// The e-mail addresses of the users `ids`, each read once (through the user cache): the
/// dead letters name their recipient. One that cannot be read shows its id.
async fn user_emails(state: &WebState, admin: &Actor, ids: Vec<UserId>) -> HashMap<UserId, String> {
    let mut emails = HashMap::new();
    for id in ids {
        if emails.contains_key(&id) {
            continue;
        }
        if let Ok(user) = state.app.users.get_user(admin, &id.to_string()).await {
            emails.insert(id, user.email.as_str().to_owned());
        }
    }
    emails
}

/// A game's name linking to `href`, or its id when the name is unknown.
fn game_link(names: &HashMap<GameId, String>, id: GameId, href: &str) -> Markup {
    html! {
        a href=(href) {
            @match names.get(&id) {
                Some(name) => (name),
                None => code { (id) },
            }
        }
    }
}

/// `GET /admin/users`: one page of users, or of those the search text finds.
pub async fn users_page(
    State(state): State<WebState>,
    visitor: Visitor,
    Query(query): Query<AdminQuery>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let t = visitor.lang.admin();
    let users = state
        .app
        .users
        .search_users(&admin.actor, &query.q, &query.page()?)
        .await?;
    let now = state.app.clock.now();
    let body = html! {
        h1 { (t.users) }
        (admin_nav(t))
        form method="get" action="/admin/users" role="search" {
            label for="q" { (t.search_label) " " }
            input #q type="search" name="q" value=(query.q);
            " " button type="submit" { (t.search) }
        }
        div.table-wrap { table {
            thead { tr { th scope="col" { (t.email) } th scope="col" { (t.name) } th scope="col" { (t.roles) } th scope="col" { (t.status) } th scope="col" { (t.actions) } } }
            tbody {
                @for user in &users.items {
                    tr {
                        td { (user.email.as_str()) }
                        td { (user.display_name.as_str()) }
                        td { (user.roles.iter().map(|r| t.role(*r)).collect::<Vec<_>>().join(", ")) }
                        // A block whose end has passed no longer holds (logins check the
                        // end): shown as active, with the block form.
                        @let in_force = !user.status.is_active_at(now);
                        @let shown = if in_force { &user.status } else { &UserStatus::Active };
                        td {
                            span.badge data-status=(shown.as_str()) { (t.user_status(shown)) }
                            @if let (true, UserStatus::Blocked { until }) = (in_force, &user.status) {
                                " · " (crate::web::layout::time(until))
                            }
                        }
                        td {
                            // A temporary block may be lengthened or made permanent as it
                            // stands; a permanent one is final until an unblock.
                            @if !matches!(shown, UserStatus::BlockedPermanently) {
                                form.inline method="post" action=(format!("/admin/users/{}/block", user.id)) {
                                    (csrf_field(&visitor))
                                    label { (t.until) " " input type="datetime-local" name="until"; }
                                    " " label { input type="checkbox" name="permanent" value="1"; " " (t.permanently) }
                                    " " button type="submit" aria-label=(format!("{}: {}", t.block, user.email.as_str())) { (t.block) }
                                }
                            }
                            @if in_force {
                                " " (button_form_about(&visitor, &format!("/admin/users/{}/unblock", user.id), t.unblock, user.email.as_str()))
                            }
                        }
                    }
                }
            }
        } }
        (next_link(t, &format!("/admin/users?q={}&", urlencode(&query.q)), users.next_after.as_ref()))
    };
    Ok(layout::page(&visitor, t.users, body))
}

/// The block form.
#[derive(Debug, Deserialize)]
pub struct BlockForm {
    #[serde(default)]
    until: String,
    #[serde(default)]
    permanent: Option<String>,
}

/// `POST /admin/users/{id}/{action}`: block or unblock.
pub async fn user_action(
    State(state): State<WebState>,
    Path((id, action)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    Posted { visitor, form }: Posted<BlockForm>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let id = UserId::parse(&id).map_err(|_| WebError::NotFound)?;
    let users = &state.app.users;
    match action.as_str() {
        "block" => {
            let until = chrono::NaiveDateTime::parse_from_str(form.until.trim(), "%Y-%m-%dT%H:%M")
                .ok()
                .map(|naive| naive.and_utc());
            let block = match (until, form.permanent.is_some()) {
                (Some(until), false) => Block::Until(until),
                (None, true) => Block::Permanent,
                _ => {
                    return Err(WebError::Api(ApiError::validation(
                        "until",
                        "give an end (a future instant) or tick permanent, not both",
                    )));
                }
            };
            users.block(&admin.actor, &id.to_string(), block).await?
        }
        "unblock" => users.unblock(&admin.actor, &id.to_string()).await?,
        _ => return Err(WebError::NotFound),
    };
    Ok(Redirect::to(&back_to(&headers, "/admin/users")).into_response())
}

const STATUSES: [&str; 9] = [
    "draft",
    "enrollment_open",
    "enrollment_closed",
    "starting",
    "start_failed",
    "running",
    "paused",
    "finished",
    "cancelled",
];

/// `GET /admin/games`: every game, filtered by status, with the runtime actions.
pub async fn games_page(
    State(state): State<WebState>,
    visitor: Visitor,
    Query(query): Query<AdminQuery>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let t = visitor.lang.admin();
    let statuses = if query.status.is_empty() {
        Vec::new()
    } else {
        vec![GameStatus::parse(&query.status).ok_or_else(|| {
            WebError::Api(ApiError::invalid_request("unknown status").with_field("status"))
        })?]
    };
    let games = state
        .app
        .lobby
        .list_all_games(admin.actor, statuses, &query.page()?)
        .await?;
    // The turn each running game's force button plays: posted back, so a second click,
    // a stale page or a second admin gets "not the next turn" instead of another turn.
    // The turn is the runtime record's next, the one the service checks it against; a
    // game without a record yet gets no button.
    // A paused game offers "create the engine again" only when its record says the
    // engine needs it (gone, failed, or given up on): an admin's pause leaves it healthy.
    let mut next_turns = HashMap::new();
    let mut recreatable = std::collections::HashSet::new();
    for game in games
        .items
        .iter()
        .filter(|g| matches!(g.status, GameStatus::Running | GameStatus::Paused))
    {
        match state.app.runtime.record(admin.actor, game.id).await {
            Ok(record) if game.status == GameStatus::Running => {
                next_turns.insert(game.id, record.current_turn.saturating_add(1));
            }
            Ok(record) => {
                if record.needs_recreation() {
                    recreatable.insert(game.id);
                }
            }
            Err(error) if ServiceError::kind(&error) == ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
    }
    let body = html! {
        h1 { (t.games) }
        (admin_nav(t))
        form method="get" action="/admin/games" {
            label for="status" { (t.status) " " }
            select #status name="status" {
                option value="" { (t.any) }
                @for status in STATUSES {
                    option value=(status) selected[query.status == status] {
                        (GameStatus::parse(status).map_or(status, |s| visitor.lang.text().status(s)))
                    }
                }
            }
            " " button type="submit" { (t.filter) }
        }
        div.table-wrap { table {
            thead { tr { th scope="col" { (t.game) } th scope="col" { (t.status) } th scope="col" { (t.players) } th scope="col" { (t.actions) } } }
            tbody {
                @for game in &games.items {
                    tr {
                        td { a href=(format!("/games/{}", game.id)) { (game.settings.name.as_str()) } }
                        td { span.badge data-status=(game.status.as_str()) { (visitor.lang.text().status(game.status)) } }
                        td { (game.approved_count) " / " (game.settings.max_players) }
                        td {
                            @let base = format!("/admin/games/{}", game.id);
                            @let name = game.settings.name.as_str();
                            @match game.status {
                                GameStatus::Running => {
                                    @if let Some(next) = next_turns.get(&game.id) {
                                        form.inline method="post" action=(format!("{base}/force-next-turn")) data-confirm=(t.force_confirm) {
                                            (csrf_field(&visitor))
                                            input type="hidden" name="turn" value=(next);
                                            button type="submit" aria-label=(format!("{}: {name}", t.force)) { (t.force) }
                                        } " "
                                    }
                                    (button_form_about(&visitor, &format!("{base}/pause"), t.pause, name)) " "
                                }
                                GameStatus::Paused => {
                                    (button_form_about(&visitor, &format!("{base}/resume"), t.resume, name)) " "
                                    @if recreatable.contains(&game.id) {
                                        (button_form_about(&visitor, &format!("{base}/recreate-engine"), t.recreate, name)) " "
                                    }
                                }
                                GameStatus::StartFailed => {
                                    (button_form_about(&visitor, &format!("{base}/retry-start"), t.retry_start, name)) " "
                                    (confirm_form_about(&visitor, &format!("{base}/cancel"), (t.cancel, name), t.cancel_confirm)) " "
                                }
                                _ => {}
                            }
                            // Only a game in play is stopped (its engine goes with it); a
                            // failed start is cancelled; a starting one waits for its job.
                            @if matches!(game.status, GameStatus::Running | GameStatus::Paused) {
                                (confirm_form_about(&visitor, &format!("{base}/stop"), (t.stop, name), t.stop_confirm)) " "
                            }
                            a href=(format!("/admin/health?game={}", game.id)) { (t.health) }
                        }
                    }
                }
            }
        } }
        (next_link(t, &format!("/admin/games?status={}&", urlencode(&query.status)), games.next_after.as_ref()))
    };
    Ok(layout::page(&visitor, t.games, body))
}

/// The form of an admin's game action: the turn a force-next-turn button was shown for.
#[derive(Debug, Deserialize)]
pub struct GameActionForm {
    /// The turn to force (the next one when the page was made); the service refuses any
    /// other with 409 `turn_not_next`, so a repeated click plays no second turn.
    turn: Option<u32>,
}

/// `POST /admin/games/{id}/{action}`: pause, resume, stop, force-next-turn, retry-start,
/// recreate-engine, cancel (a failed start, through the lobby as the API's cancel). Back
/// to the games page as it was (its filter and page, from the `Referer`).
pub async fn game_action(
    State(state): State<WebState>,
    Path((id, action)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    Posted { visitor, form }: Posted<GameActionForm>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let id = GameId::parse(&id).map_err(|_| WebError::NotFound)?;
    let runtime = &state.app.runtime;
    match action.as_str() {
        "pause" => drop(runtime.pause(admin.actor, id).await?),
        "resume" => drop(runtime.resume(admin.actor, id).await?),
        "stop" => drop(runtime.stop(admin.actor, id).await?),
        "force-next-turn" => drop(runtime.force_turn(admin.actor, id, form.turn).await?),
        "retry-start" => drop(runtime.retry_start(admin.actor, id).await?),
        "recreate-engine" => drop(runtime.recreate_engine(admin.actor, id).await?),
        "cancel" => drop(state.app.lobby.cancel(admin.actor, id).await?),
        _ => return Err(WebError::NotFound),
    }
    Ok(Redirect::to(&back_to(&headers, "/admin/games")).into_response())
}

/// The admin page `path` as the action was taken on it (its filter and cursors), from
/// the `Referer` the pages' `same-origin` referrer policy sends; only ever `path`, and
/// without the notice of an earlier action (`retried`), which is not this one's.
fn back_to(headers: &axum::http::HeaderMap, path: &str) -> String {
    let page = headers
        .get(axum::http::header::REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<axum::http::Uri>().ok())
        .and_then(|uri| uri.path_and_query().cloned())
        .filter(|page| page.path() == path);
    let Some(query) = page.as_ref().and_then(|page| page.query()) else {
        return path.to_owned();
    };
    let kept: Vec<(String, String)> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name != "retried")
        .collect();
    match serde_urlencoded::to_string(&kept) {
        Ok(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::back_to;

    #[test]
    fn a_game_action_goes_back_to_the_games_page_it_was_taken_on() {
        let from = |referer: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            if let Some(referer) = referer {
                headers.insert(header::REFERER, HeaderValue::from_static(referer));
            }
            back_to(&headers, "/admin/games")
        };
        assert_eq!(
            from(Some(
                "http://127.0.0.1:8080/admin/games?status=running&after=abc"
            )),
            "/admin/games?status=running&after=abc"
        );
        assert_eq!(
            from(Some("https://galaxy.example/admin/games")),
            "/admin/games"
        );
        // Only ever the games page of this site (a path, never another host).
        assert_eq!(
            from(Some("https://galaxy.example/admin/users?q=x")),
            "/admin/games"
        );
        assert_eq!(from(Some("not a url at all")), "/admin/games");
        assert_eq!(from(None), "/admin/games");
        // The notice of an earlier "retry all" is not repeated after the next action.
        assert_eq!(
            back_to(
                &HeaderMap::from_iter([(
                    header::REFERER,
                    HeaderValue::from_static("http://h/admin/mail?retried=3&status=dead")
                )]),
                "/admin/mail"
            ),
            "/admin/mail?status=dead"
        );
        assert_eq!(
            back_to(
                &HeaderMap::from_iter([(
                    header::REFERER,
                    HeaderValue::from_static("http://h/admin/mail?retried=3")
                )]),
                "/admin/mail"
            ),
            "/admin/mail"
        );
    }
}
