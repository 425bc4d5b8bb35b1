//! Orders by e-mail over HTTP: the internal intake `galaxy-cli mail-in` posts messages
//! to, and the players' orders address and report delivery choice. Thin: the service
//! does the work.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use galaxy_core::domain::GameId;
use galaxy_core::service::mail_in::{Envelope, MailInError, MailInService, OrdersAddressView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser, InternalCaller};
use crate::state::AppState;

impl From<MailInError> for ApiError {
    fn from(error: MailInError) -> Self {
        Self::from_service(&error)
    }
}

/// The service, or 404 `mail_in_off` when `GALAXY_MAIL_DOMAIN` is unset.
fn service(state: &AppState) -> Result<&MailInService, ApiError> {
    state.mail_in.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "mail_in_off",
            "orders by e-mail is off on this server (GALAXY_MAIL_DOMAIN is unset)",
        )
    })
}

/// The envelope of a piped message, as the MTA knows it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MailInQuery {
    /// The envelope sender (`$SENDER`); empty for a bounce (`<>`).
    pub sender: Option<String>,
    /// The envelope recipient (`$RECIPIENT`).
    pub recipient: Option<String>,
}

/// What the intake did with a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailInReceipt {
    /// The stored message (the first copy, for a duplicate). A message to several
    /// orders addresses is stored once per address: the first copy this delivery stored.
    pub id: uuid::Uuid,
    /// Whether the same message (Message-ID and content, for the same orders addresses)
    /// was already stored.
    pub duplicate: bool,
}

/// Stores one RFC 5322 message (the raw bytes as the body) for processing; answers once
/// it is durable.
#[utoipa::path(
    post,
    path = "/api/v1/internal/mail-in",
    tag = "internal",
    params(MailInQuery),
    request_body(content = String, content_type = "message/rfc822", description = "The message as received."),
    responses(
        (status = 202, description = "Stored (or already stored): it will be processed once.", body = MailInReceipt),
        (status = 400, description = "Not a message, or empty (`message_unreadable`): never retry.", body = ErrorBody),
        (status = 404, description = "Orders by e-mail is off (`mail_in_off`).", body = ErrorBody),
        (status = 413, description = "Larger than the transport allows.", body = ErrorBody),
        (status = 422, description = "Larger than `GALAXY_INBOUND_MAX_BYTES` (`message_too_large`): never retry.", body = ErrorBody),
        (status = 503, description = "The store is unavailable: retry later.", body = ErrorBody),
    )
)]
pub(crate) async fn receive(
    State(state): State<AppState>,
    _caller: InternalCaller,
    ApiQuery(query): ApiQuery<MailInQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<MailInReceipt>), ApiError> {
    let service = service(&state)?;
    let envelope = Envelope {
        mail_from: query.sender,
        rcpt_to: query.recipient.into_iter().collect(),
    };
    let receipt = service.receive(&body, &envelope).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MailInReceipt {
            id: receipt.id.as_uuid(),
            duplicate: receipt.duplicate,
        }),
    ))
}

/// A player's orders address in a game and how their reports are mailed there.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrdersAddressResponse {
    /// The game.
    pub game_id: uuid::Uuid,
    /// Where to mail orders (`orders+<token>@<domain>`); also the `Reply-To` of the
    /// game's mails.
    pub address: String,
    /// `body` or `attachment`: where the turn report is in the turn mail.
    pub report_delivery: String,
}

impl From<OrdersAddressView> for OrdersAddressResponse {
    fn from(view: OrdersAddressView) -> Self {
        Self {
            game_id: view.game_id.as_uuid(),
            address: view.address,
            report_delivery: view.report_delivery.as_str().to_owned(),
        }
    }
}

/// The caller's orders address in a game they play in (made on first use).
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/orders-address",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The address and the report delivery.", body = OrdersAddressResponse),
        (status = 404, description = "No such game among the caller's, or orders by e-mail is off (`mail_in_off`).", body = ErrorBody),
    )
)]
pub(crate) async fn get_orders_address(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<OrdersAddressResponse>, ApiError> {
    let view = service(&state)?.orders_address(caller.actor, id).await?;
    Ok(Json(view.into()))
}

/// Gives the caller a new orders address in the game; the old one stops working at once.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/orders-address/rotate",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The new address.", body = OrdersAddressResponse),
        (status = 404, description = "No such game among the caller's, or orders by e-mail is off (`mail_in_off`).", body = ErrorBody),
    )
)]
pub(crate) async fn rotate_orders_address(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<OrdersAddressResponse>, ApiError> {
    let view = service(&state)?.rotate(caller.actor, id).await?;
    Ok(Json(view.into()))
}

/// `PUT /user/games/{id}/report-delivery`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportDeliveryRequest {
    /// `body` (the report in the mail's text) or `attachment` (a `report-turn-<n>.txt`
    /// file).
    #[serde(rename = "as")]
    pub delivery: String,
}

/// Chooses whether the caller's turn reports in the game come in the body or attached.
#[utoipa::path(
    put,
    path = "/api/v1/user/games/{id}/report-delivery",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    request_body = ReportDeliveryRequest,
    responses(
        (status = 200, description = "The address with the new choice.", body = OrdersAddressResponse),
        (status = 400, description = "`as` is neither `body` nor `attachment`.", body = ErrorBody),
        (status = 404, description = "No such game among the caller's, or orders by e-mail is off (`mail_in_off`).", body = ErrorBody),
    )
)]
pub(crate) async fn set_report_delivery(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
    ApiJson(body): ApiJson<ReportDeliveryRequest>,
) -> Result<Json<OrdersAddressResponse>, ApiError> {
    let view = service(&state)?
        .set_report_delivery(caller.actor, id, &body.delivery)
        .await
        .map_err(|e| ApiError::from(e).with_field("as"))?;
    Ok(Json(view.into()))
}
