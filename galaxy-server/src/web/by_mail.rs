//! The player's mail on the game page: the orders address of orders by e-mail (when the
//! server has it on: `GALAXY_MAIL_DOMAIN`), its rotation and where the turn report goes
//! in the turn mail; and the game's mail preferences (reminders, a mail for each
//! message). Each form calls the service method its `/api/v1/user/games/{id}/...` route
//! calls, so the page refuses what the API refuses, with the API's message.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use galaxy_core::domain::GameId;
use galaxy_core::domain::game::{Game, GameStatus};
use galaxy_core::domain::mail_in::ReportDelivery;
use galaxy_core::domain::pbem::GamePreferences;
use galaxy_core::service::mail_in::{MailInError, OrdersAddressView};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::game::{EmptyForm, parse_game_id};
use super::layout::{button_form, csrf_field};
use super::session::{Posted, Visitor};

/// What the section shows one player of a game in play.
pub(super) struct MailView {
    /// Their orders address, when orders by e-mail is on.
    orders: Option<OrdersAddressView>,
    /// Their preferences for the game.
    preferences: GamePreferences,
}

impl MailView {
    /// Reads the section for `visitor` when they play a race of `game` while it is in
    /// play (`None` otherwise: nothing to show).
    pub(super) async fn load(
        state: &WebState,
        visitor: &Visitor,
        game: &Game,
        plays: bool,
    ) -> Result<Option<Self>, WebError> {
        let in_play = matches!(game.status, GameStatus::Running | GameStatus::Paused);
        let Some(user) = visitor.user.as_ref().filter(|_| plays && in_play) else {
            return Ok(None);
        };
        let orders = match &state.app.mail_in {
            Some(mail_in) => match mail_in.orders_address(user.actor, game.id).await {
                Ok(address) => Some(address),
                // The seat changed hands since the page read it: no address to show.
                Err(MailInError::NotAPlayer(_)) => None,
                Err(error) => return Err(error.into()),
            },
            None => None,
        };
        let preferences = state.app.runtime.preferences(user.actor, game.id).await?;
        Ok(Some(Self {
            orders,
            preferences,
        }))
    }
}

/// The section: the orders address with its forms, then the preferences form.
pub(super) fn section(visitor: &Visitor, id: GameId, view: Option<&MailView>) -> Markup {
    let Some(view) = view else {
        return html! {};
    };
    let text = visitor.lang.text();
    let body_chosen = view
        .orders
        .as_ref()
        .is_some_and(|o| o.report_delivery == ReportDelivery::Body);
    html! {
        section aria-labelledby="by-mail" {
            h2 #by-mail { (text.by_mail_title) }
            @if let Some(orders) = &view.orders {
                p {
                    (text.by_mail_address) " "
                    a #orders-address href=(format!("mailto:{}", orders.address)) { (orders.address) }
                }
                p.hint { (text.by_mail_help) }
                form.inline method="post" action=(format!("/games/{id}/report-delivery")) {
                    (csrf_field(visitor))
                    label for="report-delivery" { (text.by_mail_report) " " }
                    select #report-delivery name="as" {
                        option value="body" selected[body_chosen] { (text.by_mail_in_body) }
                        option value="attachment" selected[!body_chosen] { (text.by_mail_attached) }
                    }
                    " " button type="submit" { (text.save) }
                }
                p {
                    (button_form(visitor, &format!("/games/{id}/orders-address/rotate"), text.by_mail_rotate))
                    " " span.hint { (text.by_mail_rotate_help) }
                }
            }
            form.stack method="post" action=(format!("/games/{id}/preferences")) {
                (csrf_field(visitor))
                label {
                    input #pref-reminders type="checkbox" name="reminders" value="on" checked[view.preferences.reminders];
                    " " (text.pref_reminders)
                }
                label {
                    input #pref-message-mail type="checkbox" name="message_mail" value="on" checked[view.preferences.message_mail];
                    " " (text.pref_message_mail)
                }
                p { button type="submit" { (text.save) } }
            }
        }
    }
}

/// Back to the section on the game page.
fn back(id: GameId) -> Response {
    Redirect::to(&format!("/games/{id}#by-mail")).into_response()
}

/// The report delivery form.
#[derive(Debug, Deserialize)]
pub struct DeliveryForm {
    /// `body` or `attachment`.
    #[serde(rename = "as")]
    delivery: String,
}

/// `POST /games/{id}/report-delivery`: the turn report in the mail's text or attached.
pub async fn report_delivery(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Posted { visitor, form }: Posted<DeliveryForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    let mail_in = state.app.mail_in.as_ref().ok_or(WebError::NotFound)?;
    mail_in
        .set_report_delivery(user.actor, id, &form.delivery)
        .await?;
    Ok(back(id))
}

/// `POST /games/{id}/orders-address/rotate`: a new orders address; the old one stops
/// working at once (for an address that leaked, e.g. in a forwarded turn mail).
pub async fn rotate(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    let mail_in = state.app.mail_in.as_ref().ok_or(WebError::NotFound)?;
    mail_in.rotate(user.actor, id).await?;
    Ok(back(id))
}

/// The preferences form: a checkbox is sent only when ticked.
#[derive(Debug, Deserialize)]
pub struct PreferencesForm {
    /// Reminders before the deadline.
    #[serde(default)]
    reminders: Option<String>,
    /// A mail for each message to the race.
    #[serde(default)]
    message_mail: Option<String>,
}

/// `POST /games/{id}/preferences`.
pub async fn preferences(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Posted { visitor, form }: Posted<PreferencesForm>,
) -> Result<Response, WebError> {
    let id = parse_game_id(&id)?;
    let user = visitor.signed_in()?;
    let preferences = GamePreferences {
        reminders: form.reminders.is_some(),
        message_mail: form.message_mail.is_some(),
    };
    state
        .app
        .runtime
        .set_preferences(user.actor, id, preferences)
        .await?;
    Ok(back(id))
}
