//! The forms of a game's page: orders (the engine's check shown inline, with the text
//! kept), applying and withdrawing, the host's actions on the game and on applications.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use galaxy_core::domain::{ApplicationId, SubmissionId};
use galaxy_core::service::runtime::RuntimeError;
use serde::Deserialize;

use super::{GameQuery, OrdersOutcome, OrdersVerdict, Returned, parse_game_id, render};
use crate::web::WebState;
use crate::web::error::WebError;
use crate::web::lapsed;
use crate::web::session::{Posted, PostedOrLapsed};

/// The orders form.
#[derive(Debug, Deserialize)]
pub struct OrdersForm {
    /// The turn the orders are for.
    turn: u32,
    /// JSON for engines with structured orders; anything else goes as text.
    #[serde(default, deserialize_with = "crate::web::session::text_area")]
    orders: String,
    /// The race the form was for (names the orders kept in the browser when the session
    /// lapsed; the race sent for is always the session's own).
    #[serde(default)]
    race: String,
    /// The submission the page showed as the latest (empty: none): the orders are taken
    /// only over it. Absent (a form not of these pages): taken over whatever is latest.
    shown: Option<String>,
}

/// `POST /games/{id}/orders`: the engine's check, shown inline on the game page. Orders
/// sent with a session that ended come back on a page of their own
/// ([`lapsed::orders_page`]) instead of being lost behind the login.
pub async fn submit_orders(
    State(state): State<WebState>,
    Path(id): Path<String>,
    posted: PostedOrLapsed<OrdersForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let (visitor, form) = match posted {
        PostedOrLapsed::Posted(Posted { visitor, form }) => (visitor, form),
        PostedOrLapsed::Lapsed { visitor, form } => {
            let about = (form.turn, form.race.as_str());
            return Ok(lapsed::orders_page(&visitor, id, about, &form.orders));
        }
        // A page from before the visitor signed in again: the orders back in the form,
        // unsent, to check and send under this session.
        PostedOrLapsed::Stale { visitor, form } => {
            let outcome = OrdersOutcome {
                text: form.orders,
                verdict: OrdersVerdict::NotTaken(visitor.lang.text().stale_form.to_owned()),
            };
            let returned = Some(Returned::Orders(outcome));
            let page = render(&state, &visitor, id, &GameQuery::default(), returned).await?;
            return Ok((StatusCode::CONFLICT, page).into_response());
        }
    };
    let user = visitor.signed_in()?;
    let orders = serde_json::from_str::<serde_json::Value>(&form.orders)
        .unwrap_or_else(|_| serde_json::Value::String(form.orders.clone()));
    // Whatever the answer, the page comes back with the text in it: orders typed for
    // an engine that is down, or a game that just ended, are never lost to an error page.
    let runtime = &state.app.runtime;
    let shown = form.shown.as_deref().map(|shown| match shown.trim() {
        "" => Ok(None),
        id => SubmissionId::parse(id).map(Some),
    });
    let submitted = match shown {
        None => {
            runtime
                .submit_orders(user.actor, id, form.turn, &orders)
                .await
        }
        Some(Ok(shown)) => {
            runtime
                .submit_orders_over(user.actor, id, form.turn, &orders, shown)
                .await
        }
        // An id that does not parse names no submission, so never the latest one.
        Some(Err(_)) => Err(RuntimeError::OrdersSuperseded { turn: form.turn }),
    };
    let (status, verdict) = match submitted {
        Ok(verdict) if verdict.accepted => (StatusCode::OK, OrdersVerdict::Accepted),
        Ok(verdict) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            OrdersVerdict::Refused(verdict.errors),
        ),
        Err(RuntimeError::OrdersSuperseded { .. }) => (
            StatusCode::CONFLICT,
            OrdersVerdict::NotTaken(visitor.lang.text().orders_changed.to_owned()),
        ),
        Err(error) => {
            let error = WebError::from(error);
            (
                error.status(),
                OrdersVerdict::NotTaken(error.told(visitor.lang)),
            )
        }
    };
    let outcome = OrdersOutcome {
        text: form.orders,
        verdict,
    };
    let returned = Some(Returned::Orders(outcome));
    let page = render(&state, &visitor, id, &GameQuery::default(), returned).await?;
    Ok((status, page).into_response())
}

/// The apply form.
#[derive(Debug, Deserialize)]
pub struct ApplyForm {
    /// The race name to play as.
    race_name: String,
}

/// `POST /games/{id}/apply`.
pub async fn apply(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Posted { visitor, form }: Posted<ApplyForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    let applied = state.app.lobby.apply(user.actor, id, &form.race_name).await;
    match applied {
        Ok(_) => Ok(Redirect::to(&format!("/games/{id}")).into_response()),
        Err(error) => {
            // A name taken, invalid or in use, at the active-games limit (403), or a
            // store down for a moment: the page again, with the name as typed and the
            // reason, so the player can pick another or try again. Only a page that
            // cannot be shown is an error page.
            let error = WebError::from(error);
            let status = error.status();
            let returned = Some(Returned::Apply {
                race_name: form.race_name,
                error: error.told(visitor.lang),
            });
            match render(&state, &visitor, id, &GameQuery::default(), returned).await {
                Ok(page) => Ok((status, page).into_response()),
                Err(_) => Err(error),
            }
        }
    }
}

/// A form with only its CSRF field.
#[derive(Debug, Deserialize)]
pub struct EmptyForm {}

/// `POST /games/{id}/withdraw`.
pub async fn withdraw(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    state.app.lobby.withdraw(user.actor, id).await?;
    Ok(Redirect::to(&format!("/games/{id}")).into_response())
}

/// `POST /games/{id}/host/{action}`: open, close, start or cancel.
pub async fn host_action(
    State(state): State<WebState>,
    Path((id, action)): Path<(String, String)>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    let lobby = &state.app.lobby;
    match action.as_str() {
        "open" => lobby.open(user.actor, id).await?,
        "close" => lobby.close(user.actor, id).await?,
        "start" => lobby.start(user.actor, id).await?,
        "cancel" => lobby.cancel(user.actor, id).await?,
        _ => return Err(WebError::NotFound),
    };
    Ok(Redirect::to(&format!("/games/{id}")).into_response())
}

/// `POST /games/{id}/applications/{app_id}/{decision}`: approve or reject.
pub async fn decide_application(
    State(state): State<WebState>,
    Path((id, app_id, decision)): Path<(String, String, String)>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let app_id = ApplicationId::parse(&app_id).map_err(|_| WebError::NotFound)?;
    let user = visitor.signed_in()?;
    let lobby = &state.app.lobby;
    match decision.as_str() {
        "approve" => lobby.approve(user.actor, id, app_id).await?,
        "reject" => lobby.reject(user.actor, id, app_id).await?,
        _ => return Err(WebError::NotFound),
    };
    Ok(Redirect::to(&format!("/games/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::OrdersForm;
    use crate::web::pbem::MessageForm;

    /// A browser sends a text area's line breaks as CRLF; the orders and the message go
    /// on with LF, as they would from the API or a mail.
    #[test]
    fn text_areas_are_read_with_lf_line_breaks() {
        let orders: OrdersForm =
            serde_urlencoded::from_str("turn=2&orders=build+A%0D%0Abuild+B%0D%0A").unwrap();
        assert_eq!(orders.orders, "build A\nbuild B\n");
        let message: MessageForm =
            serde_urlencoded::from_str("to=*&text=Meet%0D%0Aat+Vega%0Dsoon").unwrap();
        assert_eq!(message.text(), "Meet\nat Vega\nsoon");
        // Without a text area field at all, orders are empty (as before).
        let empty: OrdersForm = serde_urlencoded::from_str("turn=2").unwrap();
        assert_eq!(empty.orders, "");
    }
}
