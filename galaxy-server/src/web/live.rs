//! Live updates of a game page: a Server-Sent Events stream fed by the push service. The
//! page's script reloads on the first `update` event; without the stream (no push
//! service, an old browser) the page is reloaded by hand or by the script's timer.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;

use super::WebState;
use super::error::WebError;
use super::game::parse_game_id;
use super::session::Visitor;
use crate::http::error::ApiError;

/// `GET /games/{id}/events`: one `update` event per push event for the viewer about this
/// game (a turn ran, the game changed status, a message arrived), until the page goes
/// or the server begins to shut down.
pub async fn events(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    // Only a game the viewer may see (404 otherwise, as the page).
    state.app.lobby.get_game(Some(user.actor), id).await?;
    let push = state.push.as_ref().ok_or(WebError::NotFound)?;
    // Each page gets its own subscriber id: two tabs must not replace each other.
    let gateway = format!("web-{}", uuid::Uuid::new_v4().simple());
    let subscription = push
        .subscribe(&gateway, None)
        .map_err(|error| WebError::Api(ApiError::from_service(&error)))?;
    let user_id = user.user.id;
    let game = id.to_string();
    let closing = state.closing.clone();
    let events = stream::unfold(subscription, move |mut subscription| {
        let game = game.clone();
        let closing = closing.clone();
        async move {
            loop {
                let event = tokio::select! {
                    () = closing.cancelled() => return None,
                    event = subscription.next() => event.ok()?,
                };
                let about_game = event
                    .payload
                    .get("game_id")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|g| g == game);
                if about_game && event.user_ids.contains(&user_id) {
                    let sse = Event::default().event("update").data(event.kind.clone());
                    return Some((Ok::<_, Infallible>(sse), subscription));
                }
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
