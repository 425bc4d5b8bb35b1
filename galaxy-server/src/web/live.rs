//! Live updates of a game page: a Server-Sent Events stream fed by the push service. The
//! page's script reloads on the first `update` event; without the stream (no push
//! service, an old browser, a stream refused at its bound) the page is reloaded by hand
//! or by the script's timer.
//!
//! A stream lives as long as its page, with no request timeout, so the streams open on a
//! replica are bounded ([`WebState::streams`]): per user (`GALAXY_HTTP_STREAMS_PER_USER`)
//! and in all (half the connection cap). One more is refused with 429.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use galaxy_core::domain::UserId;
use galaxy_core::domain::limit::{OpenSlot, SlotsFull};

use super::WebState;
use super::error::WebError;
use super::game::parse_game_id;
use super::session::Visitor;
use crate::http::error::ApiError;
use crate::metering::{HTTP_STREAMS, HTTP_STREAMS_REFUSED};

/// An open stream's place: counted in [`WebState::streams`] and in the
/// [`HTTP_STREAMS`] gauge until the stream is dropped (the page went, the server closes).
struct Held {
    /// The place in the bound.
    _slot: OpenSlot<UserId>,
}

impl Held {
    /// Takes a place for one more stream of `user`, or refuses with 429.
    fn take(state: &WebState, user: UserId) -> Result<Self, WebError> {
        match state.streams.admit(user) {
            Ok(slot) => {
                metrics::gauge!(HTTP_STREAMS).increment(1.0);
                Ok(Self { _slot: slot })
            }
            Err(full) => {
                let bound = match full {
                    SlotsFull::PerKey(_) => "per_user",
                    SlotsFull::Total(_) => "total",
                };
                metrics::counter!(HTTP_STREAMS_REFUSED, "bound" => bound).increment(1);
                let message = match full {
                    SlotsFull::PerKey(n) => format!(
                        "you have {n} live pages open on this server already, the most \
                         allowed; close one or reload this page by hand"
                    ),
                    SlotsFull::Total(_) => "the server holds as many live pages as it \
                         allows; reload this page by hand"
                        .to_owned(),
                };
                Err(WebError::Api(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_streams",
                    message,
                )))
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_STREAMS).decrement(1.0);
    }
}

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
    // Held by the stream's state below: dropped with the stream, however it ends.
    let held = Held::take(&state, user.user.id)?;
    // Each page gets its own subscriber id: two tabs must not replace each other.
    let gateway = format!("web-{}", uuid::Uuid::new_v4().simple());
    let subscription = push
        .subscribe(&gateway, None)
        .map_err(|error| WebError::Api(ApiError::from_service(&error)))?;
    let user_id = user.user.id;
    let game = id.to_string();
    let closing = state.closing.clone();
    let events = stream::unfold((subscription, held), move |(mut subscription, held)| {
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
                    return Some((Ok::<_, Infallible>(sse), (subscription, held)));
                }
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
