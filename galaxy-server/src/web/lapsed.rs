//! The answer to orders or a message sent with a session that ended since their page
//! was loaded: nothing was sent, and the text comes back rather than being lost behind
//! the login. The page shows it to copy; orders the script also keeps in the browser
//! (`localStorage`, so the login's own tab or a new one from the code mail both find
//! them) until the game's orders form shows them again after the login.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use galaxy_core::domain::GameId;
use maud::html;

use super::layout;
use super::login::login_link;
use super::session::{Visitor, cleared_session_cookie};

/// The page for orders of game `id` for `turn` of `race` whose session lapsed: 401, the dead
/// session cookie removed, a link to log in that comes back to the game, and the orders
/// as typed.
pub fn orders_page(
    visitor: &Visitor,
    id: GameId,
    (turn, race): (u32, &str),
    orders: &str,
) -> Response {
    let text = visitor.lang.text();
    let game_page = format!("/games/{id}");
    let body = html! {
        h1 { (text.lapsed_title) }
        p.error #lapsed role="alert" { (text.lapsed_orders) }
        p { a #lapsed-login href=(login_link(&game_page)) { (text.lapsed_login) } }
        p.notice #draft-kept hidden data-draft-note="" { (text.lapsed_kept) }
        label for="lapsed-orders" { (text.lapsed_copy) }
        textarea #lapsed-orders readonly rows="12" spellcheck="false" data-answer="" data-draft=(draft_key(id, turn, race)) { (orders) }
    };
    let mut response = layout::page(visitor, text.lapsed_title, body);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cleared_session_cookie(visitor.secure));
    response.into_response()
}

/// Where the script keeps orders of `race` in game `id` for `turn` until its orders
/// form shows them again: only the form of that race and turn takes them, so orders
/// written for a turn played meanwhile never fill the next turn's form, and another
/// player signing in on the same browser never finds them in theirs.
pub fn draft_key(id: GameId, turn: u32, race: &str) -> String {
    format!("/games/{id}/turn/{turn}/race/{race}")
}

/// The page for a message to the races of game `id` whose session lapsed: 401, the dead
/// session cookie removed, a link to log in that comes back to the game, and the text as
/// typed to copy.
pub fn message_page(visitor: &Visitor, id: GameId, message: &str) -> Response {
    let text = visitor.lang.text();
    let game_page = format!("/games/{id}");
    let body = html! {
        h1 { (text.lapsed_title) }
        p.error #lapsed role="alert" { (text.lapsed_message) }
        p { a #lapsed-login href=(login_link(&game_page)) { (text.lapsed_login) } }
        label for="lapsed-message" { (text.lapsed_message_copy) }
        textarea #lapsed-message readonly rows="6" data-answer="" { (message) }
    };
    let mut response = layout::page(visitor, text.lapsed_title, body);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cleared_session_cookie(visitor.secure));
    response.into_response()
}
