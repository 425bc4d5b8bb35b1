//! Public routes: logging in, and the games anyone may look at.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use galaxy_core::domain::GameId;
use galaxy_core::service::lobby::LobbySearch;

use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::{
    ChallengeView, CreateSessionRequest, GamePage, GameView, LoginCodeRequest, NewSessionView,
    page_request,
};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, ClientIp};
use crate::state::AppState;

/// Sends a login code to an address.
///
/// The answer is the same whether or not the address has an account. Rate-limited per
/// address and per client IP, and capped in unused codes per address; the limits hold
/// under concurrent requests and across replicas.
#[utoipa::path(
    post,
    path = "/api/v1/public/auth/login-codes",
    tag = "auth",
    request_body = LoginCodeRequest,
    responses(
        (status = 202, description = "A code is on its way.", body = ChallengeView),
        (status = 422, description = "The address is not valid.", body = ErrorBody),
        (status = 429, description = "Too many codes for this address or client, or too many unused codes for this address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
pub(crate) async fn request_login_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginCodeRequest>,
) -> Result<(StatusCode, Json<ChallengeView>), ApiError> {
    let issued = state.auth.request_login_code(&body.email, ip).await?;
    Ok((StatusCode::ACCEPTED, Json(issued.into())))
}

/// Exchanges a login code for a session (creating the account at first login).
///
/// An address whose codes took too many wrong guesses recently gets 429 for every code,
/// the right one too, until the window frees.
#[utoipa::path(
    post,
    path = "/api/v1/public/auth/sessions",
    tag = "auth",
    request_body = CreateSessionRequest,
    responses(
        (status = 201, description = "The session; its token is shown only here.", body = NewSessionView),
        (status = 401, description = "Wrong code.", body = ErrorBody),
        (status = 403, description = "The account is blocked.", body = ErrorBody),
        (status = 404, description = "No such challenge.", body = ErrorBody),
        (status = 409, description = "The code was used, expired or locked.", body = ErrorBody),
        (status = 422, description = "The code is not 6 to 10 digits.", body = ErrorBody),
        (status = 429, description = "Too many wrong codes for this address; no code is checked.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
pub(crate) async fn create_session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateSessionRequest>,
) -> Result<(StatusCode, Json<NewSessionView>), ApiError> {
    let session = state
        .auth
        .create_session(&body.challenge_id, &body.code, ip)
        .await?;
    Ok((StatusCode::CREATED, Json(session.into())))
}

/// `GET /public/games` query: a page, and whether to list games with open seats.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublicGamesQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_after` of the previous page; absent for the first page.
    pub after: Option<String>,
    /// `true`: public games in play whose host offers a seat to replacement players
    /// (each with its `open_seats`), instead of games open for enrollment. A page may
    /// hold fewer games than `limit` (games without open seats are left out).
    #[param(value_type = Option<bool>)]
    pub open_seats: Option<String>,
    /// Only games whose name contains this text (case ignored, matched literally; at
    /// most 256 bytes). Games open for enrollment only (not with `open_seats`).
    pub q: Option<String>,
    /// `true`: only games with a free seat. Games open for enrollment only.
    #[param(value_type = Option<bool>)]
    pub free: Option<String>,
}

/// Lists public games open for enrollment, oldest first; with `open_seats=true`, public
/// games in play with open seats.
#[utoipa::path(
    get,
    path = "/api/v1/public/games",
    tag = "games",
    params(PublicGamesQuery),
    responses(
        (status = 200, description = "One page of games.", body = GamePage),
        (status = 400, description = "A bad `limit`, `after`, `open_seats` or `free`, or `q`/`free` with `open_seats`.", body = ErrorBody),
        (status = 422, description = "`q` longer than 256 bytes.", body = ErrorBody),
    )
)]
pub(crate) async fn list_public_games(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PublicGamesQuery>,
) -> Result<Json<GamePage>, ApiError> {
    let request = page_request(query.limit.as_deref(), query.after.as_deref())?;
    let flag = |value: Option<&str>, name: &'static str| match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => {
            Err(ApiError::invalid_request(format!("{name} must be true or false")).with_field(name))
        }
    };
    let open_seats = flag(query.open_seats.as_deref(), "open_seats")?;
    let free_seat = flag(query.free.as_deref(), "free")?;
    if !open_seats {
        let search = LobbySearch {
            name: query.q,
            free_seat,
        };
        let page = state.lobby.search_public_games(&search, &request).await?;
        return Ok(Json(page.into()));
    }
    if query.q.is_some() || free_seat {
        return Err(ApiError::invalid_request(
            "q and free filter games open for enrollment, not open_seats=true",
        ));
    }
    let page = state.lobby.list_public_games_in_play(&request).await?;
    let ids: Vec<GameId> = page.items.iter().map(|g| g.id).collect();
    let open = state.runtime.open_seats(&ids).await?;
    let items = page
        .items
        .into_iter()
        .filter_map(|game| {
            let (_, races) = open.iter().find(|(id, _)| *id == game.id)?;
            let mut view = GameView::from(game);
            view.open_seats = races.clone();
            Some(view)
        })
        .collect();
    Ok(Json(GamePage {
        items,
        next_after: page.next_after,
    }))
}

/// Reads a game by id (drafts are not visible here).
#[utoipa::path(
    get,
    path = "/api/v1/public/games/{id}",
    tag = "games",
    params(("id" = uuid::Uuid, Path, description = "The game.")),
    responses(
        (status = 200, description = "The game, with its turn and, once finished, its result.", body = GameView),
        (status = 404, description = "No such game.", body = ErrorBody),
    )
)]
pub(crate) async fn get_public_game(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<GameId>,
) -> Result<Json<GameView>, ApiError> {
    let game = state.lobby.get_game(None, id).await?;
    let progress = state.runtime.progress(&game, None).await?;
    let races = state.runtime.races(&game).await?;
    Ok(Json(
        GameView::from(game)
            .with_progress(progress)
            .with_races(races),
    ))
}
