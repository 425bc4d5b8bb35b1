//! Embeds galaxy-server with a custom mailer and an extra route; see README.md.

mod client;
mod mailer;

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use galaxy_server::config::LogFormat;
use galaxy_server::{Adapters, App, Config, Listeners, telemetry};
use galaxy_smtp::FileMailer;
use tokio::net::TcpListener;

use crate::mailer::CodeCatcher;

type AnyError = Box<dyn Error + Send + Sync>;

/// The account this program logs in as.
const EMAIL: &str = "embedder@example.com";

#[tokio::main]
async fn main() -> Result<(), AnyError> {
    let serve_mode = std::env::args().any(|a| a == "--serve");
    let mut config = Config::from_env()?;
    config.log_format = LogFormat::Pretty;
    if std::env::var_os("GALAXY_LOG").is_none() {
        config.log_filter = "warn".to_owned();
    }
    if std::env::var_os("GALAXY_MAIL_INTERVAL").is_none() {
        // Deliver the login code promptly rather than on the default 5 s poll.
        config.mail_interval = Duration::from_millis(200);
    }
    if std::env::var_os("GALAXY_RUNTIME").is_none() {
        // This example never starts a game: it needs no engine runtime (Docker).
        config.runtime.kind = Some(galaxy_server::config::RuntimeKind::None);
    }
    let telemetry = telemetry::init(&config)?;

    // The one adapter this service brings: a mailer that forwards to the dev file
    // mailer and remembers login codes. Every other port stays in memory.
    let mail_dir = std::env::temp_dir()
        .join("galaxy-embedding-example")
        .join("mail");
    let catcher = Arc::new(CodeCatcher::new(Arc::new(FileMailer::new(
        &mail_dir,
        config.mail_from.clone(),
    ))));
    let adapters = Adapters::in_memory(catcher.clone());
    let hello = Router::new().route(
        "/hello",
        get(|| async { "hello from the embedding service\n" }),
    );
    let app = App::build(config.clone(), adapters)
        .await?
        .with_routes(hello)
        .with_telemetry(telemetry);

    if serve_mode {
        let listeners = Listeners::bind(&config).await?;
        println!("serving on http://{}", config.http_addr);
        let report = app
            .serve(listeners, galaxy_server::shutdown_signal()?)
            .await?;
        println!("stopped: {report:?}");
        return Ok(());
    }

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!(
        "serving on http://{addr} (mail goes to {})",
        mail_dir.display()
    );
    let stop = app.shutdown_token();
    let served = tokio::spawn(app.serve(Listeners::new(listener), std::future::pending()));

    let result = log_in_and_ask_who_i_am(addr, &catcher).await;
    stop.cancel();
    let report = served.await??;
    println!("stopped cleanly: {}", report.is_clean());
    result
}

/// Requests a login code, reads it from the custom mailer, opens a session and calls
/// `GET /api/v1/user/me` and `GET /hello`, printing what comes back.
async fn log_in_and_ask_who_i_am(
    addr: std::net::SocketAddr,
    catcher: &CodeCatcher,
) -> Result<(), AnyError> {
    let http = client::Http::new(addr);
    let body = serde_json::json!({ "email": EMAIL });
    let (status, issued) = http.post("/api/v1/public/auth/login-codes", &body).await?;
    println!("POST /api/v1/public/auth/login-codes -> {status}");
    let challenge_id = issued["challenge_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // The mail worker delivers the code through our mailer within a poll interval.
    let started = Instant::now();
    let code = loop {
        if let Some(code) = catcher.code_for(EMAIL) {
            break code;
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err("no login code was mailed within 15 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("the custom mailer caught the login code");

    let body = serde_json::json!({ "challenge_id": challenge_id, "code": code });
    let (status, session) = http.post("/api/v1/public/auth/sessions", &body).await?;
    println!("POST /api/v1/public/auth/sessions -> {status}");
    let token = session["token"].as_str().ok_or("no token in the session")?;

    let (status, me) = http.get("/api/v1/user/me", Some(token)).await?;
    println!(
        "GET /api/v1/user/me -> {status}\n{}",
        serde_json::to_string_pretty(&me)?
    );
    let (status, hello) = http.get_text("/hello").await?;
    println!("GET /hello -> {status}: {}", hello.trim_end());
    Ok(())
}
