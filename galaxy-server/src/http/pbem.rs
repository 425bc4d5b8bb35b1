//! The play-by-email routes (issue 11): ready without orders, per-game preferences,
//! vacation, open seats and their applications, messages between races. Handlers only
//! translate: the rules live in the runtime service, which the web pages call too.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use galaxy_core::domain::pbem::{GamePreferences, RaceRecord, SeatApplication, Vacation};
use galaxy_core::domain::{GameId, SeatApplicationId};
use galaxy_core::service::runtime::{MessageTo, MessageView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::dto::{PageQuery, RaceStateView};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use crate::state::AppState;

/// `POST /user/games/{id}/ready`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyRequest {
    /// The coming turn (the current turn + 1).
    pub turn: u32,
}

/// Marks the caller's race ready for the coming turn without orders, so an early turn
/// need not wait for it; a later orders submission replaces this.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/ready",
    tag = "play",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    request_body = ReadyRequest,
    responses(
        (status = 204, description = "Marked ready."),
        (status = 404, description = "No such game, or the caller plays no race in it.", body = ErrorBody),
        (status = 409, description = "The game is not in play (`invalid_status`), or the caller's race is out of it (`race_eliminated`).", body = ErrorBody),
        (status = 422, description = "`turn` is not the coming turn.", body = ErrorBody),
    )
)]
pub(crate) async fn mark_ready(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
    ApiJson(body): ApiJson<ReadyRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .runtime
        .mark_ready(caller.actor, id, body.turn)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A player's preferences for one game.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// Deadline reminders by push and mail.
    pub reminders: bool,
    /// Messages from other races also by mail (push always).
    pub message_mail: bool,
}

impl From<GamePreferences> for PreferencesBody {
    fn from(p: GamePreferences) -> Self {
        Self {
            reminders: p.reminders,
            message_mail: p.message_mail,
        }
    }
}

/// The caller's preferences for a game they play in.
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/preferences",
    tag = "play",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The preferences (defaults: both true).", body = PreferencesBody),
        (status = 404, description = "No such game, or the caller plays no race in it.", body = ErrorBody),
    )
)]
pub(crate) async fn get_preferences(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<PreferencesBody>, ApiError> {
    let prefs = state.runtime.preferences(caller.actor, id).await?;
    Ok(Json(prefs.into()))
}

/// Sets the caller's preferences for a game they play in.
#[utoipa::path(
    put,
    path = "/api/v1/user/games/{id}/preferences",
    tag = "play",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    request_body = PreferencesBody,
    responses(
        (status = 200, description = "The preferences now.", body = PreferencesBody),
        (status = 404, description = "No such game, or the caller plays no race in it.", body = ErrorBody),
    )
)]
pub(crate) async fn put_preferences(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
    ApiJson(body): ApiJson<PreferencesBody>,
) -> Result<Json<PreferencesBody>, ApiError> {
    let prefs = GamePreferences {
        reminders: body.reminders,
        message_mail: body.message_mail,
    };
    let set = state
        .runtime
        .set_preferences(caller.actor, id, prefs)
        .await?;
    Ok(Json(set.into()))
}

/// `POST /user/games/{id}/vacation`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VacationRequest {
    /// Turns of absence, from the coming turn (at least 1).
    pub turns: u32,
}

/// The caller's vacation in a game: what is booked and what is left of the budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct VacationView {
    /// The first vacation turn.
    pub from_turn: Option<u32>,
    /// The last vacation turn.
    pub until_turn: Option<u32>,
    /// Vacation turns taken so far in the game.
    pub used: u32,
    /// Vacation turns left to book (the game's `vacation_turns` less `used`).
    pub left: u32,
}

impl From<Vacation> for VacationView {
    fn from(v: Vacation) -> Self {
        Self {
            from_turn: v.from,
            until_turn: v.until,
            used: v.used,
            left: v.left,
        }
    }
}

/// The caller's vacation in a game they play in: what is booked and how many turns are
/// left to book, so a client offers only what a booking accepts.
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/vacation",
    tag = "play",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The caller's vacation.", body = VacationView),
        (status = 404, description = "No such game, or the caller plays no race in it.", body = ErrorBody),
    )
)]
pub(crate) async fn get_vacation(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<VacationView>, ApiError> {
    let vacation = state.runtime.vacation(caller.actor, id).await?;
    Ok(Json(vacation.into()))
}

/// Declares the caller absent for coming turns, from the game's `vacation_turns` budget:
/// no reminders, the missed-turn count pauses, early turns do not wait.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/vacation",
    tag = "play",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    request_body = VacationRequest,
    responses(
        (status = 200, description = "The vacation booked.", body = VacationView),
        (status = 404, description = "No such game, or the caller plays no race in it.", body = ErrorBody),
        (status = 409, description = "The game is not in play (`invalid_status`), or the caller's race is out of it (`race_eliminated`).", body = ErrorBody),
        (status = 422, description = "`turns` is 0 or more than what is left of the budget.", body = ErrorBody),
    )
)]
pub(crate) async fn take_vacation(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
    ApiJson(body): ApiJson<VacationRequest>,
) -> Result<Json<VacationView>, ApiError> {
    let vacation = state
        .runtime
        .take_vacation(caller.actor, id, body.turns)
        .await?;
    Ok(Json(vacation.into()))
}

fn race_view(record: RaceRecord, turn_hint: u32) -> RaceStateView {
    RaceStateView {
        state: record.state(turn_hint).as_str().to_owned(),
        race: record.race,
        ready: false,
    }
}

/// The host opens an idle race's seat to replacement players.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/seats/{race}/open",
    tag = "play",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("race" = String, Path, description = "The race."),
    ),
    responses(
        (status = 200, description = "The race, now an open seat.", body = RaceStateView),
        (status = 403, description = "The caller is not the game's host.", body = ErrorBody),
        (status = 404, description = "No such game or race.", body = ErrorBody),
        (status = 409, description = "The race is not idle, its seat is open already, or the game is not in play.", body = ErrorBody),
    )
)]
pub(crate) async fn open_seat(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((id, race)): ApiPath<(GameId, String)>,
) -> Result<Json<RaceStateView>, ApiError> {
    let record = state.runtime.open_seat(caller.actor, id, &race).await?;
    Ok(Json(race_view(record, 0)))
}

/// The race's own player takes their open seat back.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/seats/{race}/reclaim",
    tag = "play",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("race" = String, Path, description = "The race."),
    ),
    responses(
        (status = 200, description = "The race, active again.", body = RaceStateView),
        (status = 403, description = "The caller is not the race's player.", body = ErrorBody),
        (status = 404, description = "No such game or race.", body = ErrorBody),
        (status = 409, description = "The seat is not open.", body = ErrorBody),
    )
)]
pub(crate) async fn reclaim_seat(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((id, race)): ApiPath<(GameId, String)>,
) -> Result<Json<RaceStateView>, ApiError> {
    let record = state.runtime.reclaim_seat(caller.actor, id, &race).await?;
    Ok(Json(race_view(record, 0)))
}

/// An application for an open seat.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatApplicationBody {
    /// Stable id.
    pub id: Uuid,
    /// The race.
    pub race: String,
    /// The applicant.
    pub user_id: Uuid,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl From<SeatApplication> for SeatApplicationBody {
    fn from(a: SeatApplication) -> Self {
        Self {
            id: a.id.as_uuid(),
            race: a.race,
            user_id: a.user_id.as_uuid(),
            status: a.status.as_str().to_owned(),
            created_at: a.created_at,
        }
    }
}

/// A seat's applications.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatApplicationList {
    /// Oldest first.
    pub items: Vec<SeatApplicationBody>,
}

/// Applies for an open seat.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/seats/{race}/applications",
    tag = "play",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("race" = String, Path, description = "The race."),
    ),
    responses(
        (status = 201, description = "The application.", body = SeatApplicationBody),
        (status = 403, description = "The caller hosts the game, is blocked, or is active in as many games as their account allows (a pending seat application counts, as an application to a game does).", body = ErrorBody),
        (status = 404, description = "No such game or race.", body = ErrorBody),
        (status = 409, description = "The seat is not open, the caller plays in the game, or has an application pending.", body = ErrorBody),
    )
)]
pub(crate) async fn apply_for_seat(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((id, race)): ApiPath<(GameId, String)>,
) -> Result<(StatusCode, Json<SeatApplicationBody>), ApiError> {
    let application = state
        .runtime
        .apply_for_seat(caller.actor, id, &race)
        .await?;
    Ok((StatusCode::CREATED, Json(application.into())))
}

/// A seat's applications; host only.
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/seats/{race}/applications",
    tag = "play",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("race" = String, Path, description = "The race."),
    ),
    responses(
        (status = 200, description = "The applications.", body = SeatApplicationList),
        (status = 403, description = "The caller is not the game's host.", body = ErrorBody),
        (status = 404, description = "No such game.", body = ErrorBody),
    )
)]
pub(crate) async fn list_seat_applications(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((id, race)): ApiPath<(GameId, String)>,
) -> Result<Json<SeatApplicationList>, ApiError> {
    let items = state
        .runtime
        .seat_applications(caller.actor, id, &race)
        .await?;
    Ok(Json(SeatApplicationList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Approves an application: the applicant takes the race over under the same name, with
/// its archived reports; the old player loses access.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/seats/{race}/applications/{application_id}/approve",
    tag = "play",
    params(
        ("id" = uuid::Uuid, Path, description = "The game."),
        ("race" = String, Path, description = "The race."),
        ("application_id" = uuid::Uuid, Path, description = "The seat application."),
    ),
    responses(
        (status = 200, description = "The race with its new player.", body = RaceStateView),
        (status = 403, description = "The caller is not the game's host.", body = ErrorBody),
        (status = 404, description = "No such game, race or application.", body = ErrorBody),
        (status = 409, description = "The seat is not open or the application not pending.", body = ErrorBody),
        (status = 503, description = "Orders of the race's player were in flight for ten seconds (`orders_busy`, with `Retry-After`).", body = ErrorBody),
    )
)]
pub(crate) async fn approve_seat_application(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath((id, race, application)): ApiPath<(GameId, String, SeatApplicationId)>,
) -> Result<Json<RaceStateView>, ApiError> {
    let record = state
        .runtime
        .approve_seat_application(caller.actor, id, &race, application)
        .await?;
    Ok(Json(race_view(record, 0)))
}

/// Who a message goes to: a list of race names, or `"all"`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageToBody {
    /// `"all"`: every other race.
    All(String),
    /// These races.
    Races(Vec<String>),
}

/// `POST /user/games/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// `["RaceA", ...]` or `"all"`.
    #[schema(value_type = Object, example = json!(["Zorgons"]))]
    pub to: MessageToBody,
    /// Plain text, 1 to 4096 characters (never rendered as HTML).
    pub text: String,
}

/// A message as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageBody {
    /// Stable id.
    pub id: Uuid,
    /// The turn it was sent in.
    pub turn: u32,
    /// The sending race; `null` when the game hides senders and the caller did not send it.
    pub from: Option<String>,
    /// Whether the caller's race sent it.
    pub sent_by_me: bool,
    /// Whether it went to every other race.
    pub to_all: bool,
    /// The receiving races; where the sender is hidden, only the caller's own (the
    /// others would tell who sent it).
    pub to: Vec<String>,
    /// The text.
    pub text: String,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
}

impl From<MessageView> for MessageBody {
    fn from(m: MessageView) -> Self {
        Self {
            id: m.id.as_uuid(),
            turn: m.turn,
            from: m.from,
            sent_by_me: m.sent_by_me,
            to_all: m.to_all,
            to: m.to,
            text: m.text,
            sent_at: m.sent_at,
        }
    }
}

/// One page of messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// The messages.
    pub items: Vec<MessageBody>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<String>,
}

/// Sends a message from the caller's race, by push and (unless a recipient opted out
/// for the game) mail. Rate-limited per player and game.
#[utoipa::path(
    post,
    path = "/api/v1/user/games/{id}/messages",
    tag = "play",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    request_body = MessageRequest,
    responses(
        (status = 201, description = "The message as stored.", body = MessageBody),
        (status = 403, description = "The account is blocked.", body = ErrorBody),
        (status = 404, description = "No such game, or the caller plays no race in it.", body = ErrorBody),
        (status = 409, description = "The game is not in play.", body = ErrorBody),
        (status = 422, description = "Empty or oversized text, an unknown race, or only the sender's own race.", body = ErrorBody),
        (status = 429, description = "Too many messages; see `Retry-After`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
pub(crate) async fn send_message(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
    ApiJson(body): ApiJson<MessageRequest>,
) -> Result<(StatusCode, Json<MessageBody>), ApiError> {
    let to = match body.to {
        MessageToBody::All(all) if all == "all" => MessageTo::All,
        MessageToBody::All(_) => {
            return Err(ApiError::from(
                galaxy_core::service::runtime::RuntimeError::Validation {
                    field: "to",
                    message: "to is a list of races or \"all\"".into(),
                },
            ));
        }
        MessageToBody::Races(races) => MessageTo::Races(races),
    };
    let sent = state
        .runtime
        .send_message(caller.actor, id, to, body.text)
        .await?;
    Ok((StatusCode::CREATED, Json(sent.into())))
}

/// The messages the caller's race sent or received, newest first (also after the
/// finish); nobody reads another race's messages.
#[utoipa::path(
    get,
    path = "/api/v1/user/games/{id}/messages",
    tag = "play",
    params(("id" = uuid::Uuid, Path, description = "The game."), PageQuery),
    responses(
        (status = 200, description = "One page of messages.", body = MessagePage),
        (status = 400, description = "A bad `limit` or `after`.", body = ErrorBody),
        (status = 404, description = "No such game, or the caller plays no race in it.", body = ErrorBody),
    )
)]
pub(crate) async fn list_messages(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<GameId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let page = state
        .runtime
        .messages(caller.actor, id, &query.to_request()?)
        .await?;
    Ok(Json(MessagePage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_after: page.next_after,
    }))
}
