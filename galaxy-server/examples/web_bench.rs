//! Server-side render time of the web pages with 1,000 games, beside a baseline.
//!
//! ```text
//! cargo run --release -p galaxy-server --example web_bench [-- ROUNDS]
//! ```
//!
//! Builds the app on the dev-mode adapters (in-memory stores, the file mailer), creates
//! 1,000 public games hosted by one user (so "my games" lists all of them) and opens them,
//! then calls each page in-process through the whole router (`tower::ServiceExt::oneshot`:
//! the layers, the session cookie's lookup, the services, the template, the body read to
//! the end) ROUNDS times (default 200), interleaved. The baseline is `GET /healthz`
//! through the same router: everything but the page's own work. Prints a Markdown table
//! of the median, 95th percentile and maximum per page.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use galaxy_core::domain::game::Visibility;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::ports::MailStore;
use galaxy_core::service::Actor;
use galaxy_core::service::lobby::NewGame;
use galaxy_ports::memory::InMemoryStores;
use galaxy_server::{Adapters, App, Config};
use galaxy_smtp::FileMailer;
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Games seeded: the figure the issue names.
const GAMES: usize = 1_000;

fn main() -> Result<(), BoxError> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 200,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(rounds))
}

async fn run(rounds: usize) -> Result<(), BoxError> {
    let tmp = tempfile::tempdir()?;
    let email = "bench@example.org";
    let vars = [
        (
            "GALAXY_DATA_DIR".to_owned(),
            tmp.path().display().to_string(),
        ),
        ("GALAXY_BOOTSTRAP_ADMINS".to_owned(), email.to_owned()),
    ];
    let config = Config::from_vars(&vars.into_iter().collect())?;
    let stores = InMemoryStores::new();
    let mailer = FileMailer::new(tmp.path().join("mail"), config.mail_from.clone());
    let app = App::build(
        config,
        Adapters::from_stores(stores.clone(), Arc::new(mailer)),
    )
    .await?;
    let state = app.state().clone();
    let router = app.router();

    // One admin user, logged in through the auth service (the page's cookie is its token).
    let issued = state.auth.request_login_code(email, None).await?;
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
    let session = state
        .auth
        .create_session(&issued.challenge_id.to_string(), &code, None)
        .await?;
    let cookie = format!("galaxy_session={}", session.token.expose());
    let actor = Actor::of(&session.user);

    let deadline = state.clock.now() + chrono::TimeDelta::days(30);
    let mut first = None;
    let seeding = Instant::now();
    for i in 0..GAMES {
        let game = state
            .lobby
            .create_game(
                actor,
                NewGame {
                    name: format!("Bench Cup {i}"),
                    min_players: 2,
                    max_players: 8,
                    enrollment_deadline: deadline,
                    turn_schedule: "0 18 * * 1,3,5".to_owned(),
                    engine: None,
                    auto_approve: false,
                    visibility: Visibility::Public,
                    engine_settings: serde_json::Value::Null,
                    reveal_reports_after_finish: true,
                    pbem: Default::default(),
                },
            )
            .await?;
        state.lobby.open(actor, game.id).await?;
        first.get_or_insert(game.id);
    }
    let first = first.ok_or("no game")?;
    eprintln!("seeded {GAMES} games in {:?}", seeding.elapsed());

    let pages = [
        (
            "GET /healthz (baseline: router and layers only)",
            "/healthz".to_owned(),
        ),
        ("GET / (lobby, 50 of 1,000 open games)", "/".to_owned()),
        ("GET /my (all 1,000 games, hosted)", "/my".to_owned()),
        ("GET /games/{id} (host's view)", format!("/games/{first}")),
        ("GET /admin/games (100 of 1,000)", "/admin/games".to_owned()),
        ("GET /games/new (form)", "/games/new".to_owned()),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); pages.len()];
    let mut sizes = vec![0usize; pages.len()];
    for round in 0..rounds + 5 {
        for (i, (_, path)) in pages.iter().enumerate() {
            let request = Request::get(path.as_str())
                .header(header::COOKIE, &cookie)
                .body(Body::empty())?;
            let started = Instant::now();
            let response = router.clone().oneshot(request).await?;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            let took = started.elapsed();
            if status != StatusCode::OK {
                return Err(format!("{path}: {status}").into());
            }
            // The first rounds warm caches and allocators.
            if round >= 5 {
                times[i].push(took);
                sizes[i] = body.len();
            }
        }
    }
    println!("| page | body bytes | median | p95 | max |");
    println!("|---|---:|---:|---:|---:|");
    for ((name, _), (mut samples, size)) in pages.iter().zip(times.into_iter().zip(sizes)) {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {name} | {size} | {:.2} ms | {:.2} ms | {:.2} ms |",
            ms(at(0.5)),
            ms(at(0.95)),
            ms(samples[samples.len() - 1])
        );
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
