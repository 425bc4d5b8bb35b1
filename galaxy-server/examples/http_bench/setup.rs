//! Set-up: the app served in-process, a signed-in user, the seeded games.

use std::net::SocketAddr;
use std::sync::Arc;

use galaxy_core::domain::page::PageRequest;
use galaxy_core::ports::MailStore;
use galaxy_ports::memory::InMemoryStores;
use galaxy_server::{Adapters, App, Config, Listeners};
use galaxy_smtp::FileMailer;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::BoxError;

/// Games seeded for the public list (one default page).
pub(crate) const SEEDED_GAMES: usize = 50;

/// Builds and serves the app on the dev-mode adapters (in-memory stores and the file
/// mailer), keeping a handle on the stores to read the login code from the outbox.
pub(crate) async fn start_galaxy(
    data_dir: &std::path::Path,
) -> Result<
    (
        SocketAddr,
        InMemoryStores,
        CancellationToken,
        tokio::task::JoinHandle<Result<galaxy_server::ShutdownReport, galaxy_server::AppError>>,
    ),
    BoxError,
> {
    let vars = [("GALAXY_DATA_DIR".to_owned(), data_dir.display().to_string())];
    let config = Config::from_vars(&vars.into_iter().collect())?;
    let stores = InMemoryStores::new();
    let mailer = FileMailer::new(data_dir.join("mail"), config.mail_from.clone());
    let app = App::build(
        config,
        Adapters::from_stores(stores.clone(), Arc::new(mailer)),
    )
    .await?;
    let stop = app.shutdown_token();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(app.serve(Listeners::new(listener), std::future::pending()));
    Ok((addr, stores, stop, task))
}

/// One request on a fresh connection (for set-up).
pub(crate) async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Result<(StatusCode, Value), BoxError> {
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(TcpStream::connect(addr).await?))
            .await?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, "localhost");
    if let Some(bearer) = bearer {
        request = request.header(AUTHORIZATION, bearer);
    }
    let request = match body {
        Some(body) => request
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?,
        None => request.body(Full::new(Bytes::new()))?,
    };
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

pub(crate) fn expect(
    what: &str,
    wanted: StatusCode,
    (status, body): (StatusCode, Value),
) -> Result<Value, BoxError> {
    if status == wanted {
        Ok(body)
    } else {
        Err(format!("{what}: {status} {body}").into())
    }
}

/// Logs a user in through the API, reading the code from the outbox; returns the
/// `Authorization` value.
pub(crate) async fn log_in(addr: SocketAddr, stores: &InMemoryStores) -> Result<String, BoxError> {
    let email = "bench@example.org";
    let issued = call(
        addr,
        Method::POST,
        "/api/v1/public/auth/login-codes",
        None,
        Some(json!({ "email": email })),
    )
    .await?;
    let challenge = expect("login code", StatusCode::ACCEPTED, issued)?["challenge_id"].clone();
    let mails = stores
        .mail
        .list_mail(None, &PageRequest::first(10)?)
        .await?;
    let text = mails
        .items
        .iter()
        .find(|m| m.mail.to.as_str() == email)
        .map(|m| m.mail.text_body.clone())
        .ok_or("no login mail in the outbox")?;
    let code: String = text
        .split("login code is ")
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let body = json!({ "challenge_id": challenge, "code": code });
    let session = call(
        addr,
        Method::POST,
        "/api/v1/public/auth/sessions",
        None,
        Some(body),
    )
    .await?;
    let token = expect("session", StatusCode::CREATED, session)?["token"].clone();
    let token = token.as_str().ok_or("no token in the session")?;
    Ok(format!("Bearer {token}"))
}

/// Creates and opens [`SEEDED_GAMES`] public games, then checks the list shows them.
pub(crate) async fn seed_games(addr: SocketAddr, bearer: &str) -> Result<(), BoxError> {
    let deadline = (chrono::Utc::now() + chrono::TimeDelta::days(30)).to_rfc3339();
    for i in 0..SEEDED_GAMES {
        let game = json!({
            "name": format!("Bench Cup {i}"), "min_players": 2, "max_players": 8,
            "enrollment_deadline": deadline, "turn_schedule": "0 18 * * 1,3,5",
        });
        let created = call(
            addr,
            Method::POST,
            "/api/v1/user/games",
            Some(bearer),
            Some(game),
        )
        .await?;
        let id = expect("create game", StatusCode::CREATED, created)?["id"].clone();
        let open = format!(
            "/api/v1/user/games/{}/open",
            id.as_str().unwrap_or_default()
        );
        expect(
            "open game",
            StatusCode::OK,
            call(addr, Method::POST, &open, Some(bearer), None).await?,
        )?;
    }
    let listed = call(addr, Method::GET, "/api/v1/public/games", None, None).await?;
    let listed = expect("public games", StatusCode::OK, listed)?;
    let count = listed["items"].as_array().map_or(0, Vec::len);
    if count != SEEDED_GAMES {
        return Err(format!("the public list shows {count} games, not {SEEDED_GAMES}").into());
    }
    Ok(())
}
