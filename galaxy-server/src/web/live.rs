//! Live updates of a game page: a Server-Sent Events stream fed by the push service,
//! from the push cursor the page was rendered at (or the browser's `Last-Event-ID` when
//! it connects again), so no news is lost between a page and its stream. The page's
//! script reloads on the first `update` event; without the stream (no push service, an
//! old browser, a stream refused at its bound) the page is reloaded by hand or by the
//! script's timer.
//!
//! A stream lives as long as its page, with no request timeout, so the streams open on a
//! replica are bounded ([`WebState::streams`]): per user (`GALAXY_HTTP_STREAMS_PER_USER`)
//! and in all (half the connection cap). One more is refused with 429.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use galaxy_core::domain::UserId;
use galaxy_core::domain::limit::{OpenSlot, SlotsFull};
use galaxy_core::domain::push::{PushCursor, RESYNC_KIND};
use galaxy_core::ports::{PushFeed, PushSubscriptions};
use galaxy_core::service::push::{GatewayClientId, SubscribeError};
use galaxy_core::service::{ErrorKind, ServiceError};
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::game::parse_game_id;
use super::session::{SESSION_COOKIE, Visitor, cookie};
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

/// The longest a stream waits for its session check; past it the session counts as
/// unchecked (the stream goes on).
const SESSION_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Where a stream starts: `?after=CURSOR` (the page's, taken before it was rendered).
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// The push cursor the page was rendered at.
    #[serde(default)]
    after: Option<String>,
}

/// `GET /games/{id}/events?after=CURSOR`: one `update` event per push event for the
/// viewer about this game (a turn ran, the game changed status, a message arrived) after
/// the cursor, until the page goes or the server begins to shut down.
///
/// Nothing is lost between the page and its stream: the stream replays from the cursor
/// the page was rendered at, or, when the browser connects again after a dropped stream,
/// from its `Last-Event-ID`, which every event carries and which an event with only an
/// `id` moves on every [`STREAM_MARK_EVERY`](crate::http::STREAM_MARK_EVERY) while events about other games pass. A cursor the
/// replica can no longer replay from (older than `GALAXY_PUSH_WINDOW`, another log) is
/// answered with an `update` too: the page may have missed news. The stream also ends
/// when its session no longer holds (signed out everywhere, revoked, blocked), checked
/// every [`STREAM_MARK_EVERY`](crate::http::STREAM_MARK_EVERY).
pub async fn events(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    // Only a game the viewer may see (404 otherwise, as the page).
    state.app.lobby.get_game(Some(user.actor), id).await?;
    let push = state.push.clone().ok_or(WebError::NotFound)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .or(query.after.as_deref())
        .unwrap_or_default();
    let cursor = PushCursor::parse_optional(resume)
        .map_err(|error| WebError::BadForm(format!("not a push cursor: {error}")))?;
    let token = cookie(&headers, SESSION_COOKIE)
        .unwrap_or_default()
        .to_owned();
    // Held by the stream's state below: dropped with the stream, however it ends.
    let held = Held::take(&state, user.user.id)?;
    // Each page gets its own subscriber id: two tabs must not replace each other.
    let gateway = GatewayClientId::parse(&format!("web-{}", uuid::Uuid::new_v4().simple()))
        .map_err(|error| WebError::Api(ApiError::from_service(&SubscribeError::from(error))))?;
    let feed = PushSubscriptions::subscribe(&*push, gateway, cursor).await;
    let watch = Watch {
        feed,
        _held: held,
        tick: {
            let every = state.stream_mark_every;
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick
        },
        unmarked: None,
    };
    let user_id = user.user.id;
    let game = id.to_string();
    let closing = state.closing.clone();
    let auth = Arc::clone(&state.app.auth);
    let events = stream::unfold(watch, move |mut watch| {
        let game = game.clone();
        let closing = closing.clone();
        let auth = Arc::clone(&auth);
        let token = token.clone();
        async move {
            loop {
                let event = tokio::select! {
                    () = closing.cancelled() => return None,
                    _ = watch.tick.tick() => {
                        // Bounded, and given up at shutdown: a slow session store must not
                        // hold the drain. Only a clear "no longer holds" ends the stream.
                        let check = tokio::time::timeout(SESSION_CHECK_TIMEOUT, auth.authenticate(&token));
                        let checked = tokio::select! {
                            () = closing.cancelled() => return None,
                            checked = check => checked,
                        };
                        if let Ok(Err(error)) = checked
                            && !matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Internal)
                        {
                            return None;
                        }
                        match watch.unmarked.take() {
                            Some(cursor) => {
                                let mark = Event::default().id(cursor.to_string());
                                return Some((Ok::<_, Infallible>(mark), watch));
                            }
                            None => continue,
                        }
                    }
                    event = watch.feed.next() => event.ok()?,
                };
                let about_game = event
                    .payload
                    .get("game_id")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|g| g == game);
                let news =
                    event.kind == RESYNC_KIND || (about_game && event.user_ids.contains(&user_id));
                if news {
                    // This id is the browser's place now; an older mark must not follow it.
                    watch.unmarked = None;
                    let update = Event::default()
                        .event("update")
                        .id(event.cursor.to_string())
                        .data(event.kind.clone());
                    return Some((Ok(update), watch));
                }
                watch.unmarked = Some(event.cursor);
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// A stream's state: its feed, its place in the bound, and the cursor of the last event
/// it passed over without telling the browser.
struct Watch {
    /// The push events from the cursor on.
    feed: Box<dyn PushFeed>,
    /// The stream's place in the bound, given back with the stream.
    _held: Held,
    /// Marks and session checks.
    tick: tokio::time::Interval,
    /// The cursor of an event passed over since the last mark.
    unmarked: Option<PushCursor>,
}
