#![doc = include_str!("../README.md")]

mod runtime;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::game::{GameStatus, Visibility};
use galaxy_core::domain::mail::OutgoingMail;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::user::User;
use galaxy_core::ports::{Clock, Mailer, MailerError, RuntimeJobStore};
use galaxy_core::service::Actor;
use galaxy_core::service::auth::{AuthConfig, AuthPorts, AuthService};
use galaxy_core::service::lobby::{LobbyConfig, LobbyPorts, LobbyService, NewGame};
use galaxy_core::service::notification::NotificationService;
use galaxy_core::worker::Worker;
use galaxy_core::worker::mail::{MailWorker, MailWorkerConfig};
use galaxy_ports::memory::InMemoryStores;
use galaxy_ports::system::{OsSecretGenerator, SystemClock};

/// A mailer that "delivers" by printing and keeps every mail so the walkthrough can read
/// the login codes, as a player would from their inbox.
#[derive(Default)]
struct InboxMailer {
    inbox: Mutex<Vec<OutgoingMail>>,
}

impl InboxMailer {
    /// The code in the newest mail to `email`.
    fn latest_code_for(&self, email: &str) -> Option<String> {
        let inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        let mail = inbox.iter().rev().find(|m| m.to.as_str() == email)?;
        mail.text_body
            .split_whitespace()
            .find(|w| w.len() >= 6 && w.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_owned)
    }
}

#[async_trait]
impl Mailer for InboxMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailerError> {
        println!("    mail to {} : {:?}", mail.to, mail.subject);
        self.inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(mail.clone());
        Ok("250 delivered to the walkthrough inbox".to_owned())
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

struct Platform {
    stores: InMemoryStores,
    notifier: Arc<NotificationService>,
    clock: Arc<dyn Clock>,
    secrets: Arc<OsSecretGenerator>,
    auth: AuthService,
    lobby: LobbyService,
    mail_worker: MailWorker,
    mailer: Arc<InboxMailer>,
}

fn platform() -> Result<Platform, AnyError> {
    let stores = InMemoryStores::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secrets = Arc::new(OsSecretGenerator);
    let mailer = Arc::new(InboxMailer::default());
    let auth = AuthService::new(
        AuthPorts {
            users: stores.users.clone(),
            challenges: stores.users.clone(),
            sessions: stores.users.clone(),
            mail: stores.mail.clone(),
            clock: clock.clone(),
            secrets: secrets.clone(),
        },
        AuthConfig::default(),
    )?;
    let notifier = Arc::new(NotificationService::new(
        stores.notifications.clone(),
        stores.users.clone(),
        clock.clone(),
        secrets.clone(),
    ));
    let lobby = LobbyService::new(
        LobbyPorts {
            games: stores.lobby.clone(),
            applications: stores.lobby.clone(),
            race_names: stores.lobby.clone(),
            users: stores.users.clone(),
            jobs: stores.runtime.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            ids: secrets.clone(),
        },
        LobbyConfig::default(),
    );
    let mail_worker = MailWorker::new(
        stores.mail.clone(),
        mailer.clone(),
        clock.clone(),
        secrets.clone(),
        MailWorkerConfig::default(),
    );
    Ok(Platform {
        stores,
        notifier,
        clock,
        secrets,
        auth,
        lobby,
        mail_worker,
        mailer,
    })
}

/// Requests a code, lets the mail worker deliver it, reads it from the inbox and logs in.
async fn log_in(p: &Platform, email: &str) -> Result<User, AnyError> {
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let challenge = p.auth.request_login_code(email, Some(ip)).await?;
    println!(
        "  {email} asked for a login code (challenge {})",
        challenge.challenge_id
    );
    p.mail_worker.run_until_idle(10).await?;
    let code = p
        .mailer
        .latest_code_for(email)
        .ok_or("the login code mail did not arrive")?;
    let session = p
        .auth
        .create_session(&challenge.challenge_id.to_string(), &code, Some(ip))
        .await?;
    println!(
        "  {email} logged in: user {}, session {}",
        session.user.id, session.session.id
    );
    Ok(session.user)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), AnyError> {
    let p = platform()?;

    println!("1. Log in with e-mailed codes");
    let host = Actor::of(&log_in(&p, "host@example.org").await?);
    let alice = Actor::of(&log_in(&p, "alice@example.org").await?);
    let bob = Actor::of(&log_in(&p, "bob@example.org").await?);

    println!("2. The host creates a game and opens enrollment");
    let game = p
        .lobby
        .create_game(
            host,
            NewGame {
                name: "Andromeda Rising".to_owned(),
                min_players: 2,
                max_players: 4,
                enrollment_deadline: SystemClock.now() + TimeDelta::days(3),
                turn_schedule: "0 18 * * 1,3,5".to_owned(),
                engine: None,
                auto_approve: false,
                visibility: Visibility::Public,
                // The reference engine ends the game after this many turns.
                engine_settings: serde_json::json!({ "max_turns": 3 }),
                reveal_reports_after_finish: true,
                pbem: Default::default(),
            },
        )
        .await?;
    println!(
        "  created {} ({}) as {}",
        game.settings.name.as_str(),
        game.id,
        game.status
    );
    let game = p.lobby.open(host, game.id).await?;
    println!("  status: {}", game.status);
    let open = p.lobby.list_public_games(&PageRequest::default()).await?;
    println!("  public games open for enrollment: {}", open.items.len());

    println!("3. Players enroll under race names");
    let a = p.lobby.apply(alice, game.id, "Zorgons").await?;
    println!(
        "  alice applied as {:?}: {}",
        a.race_name.as_str(),
        a.status
    );
    let b = p.lobby.apply(bob, game.id, "Krell").await?;
    println!("  bob applied as {:?}: {}", b.race_name.as_str(), b.status);
    match p.lobby.apply(host, game.id, "ZORGONS").await {
        Err(error) => println!("  the host tried \"ZORGONS\": refused ({error})"),
        Ok(_) => return Err("a look-alike race name was accepted".into()),
    }

    println!("4. The host approves, closes enrollment and starts the game");
    for application in [a.id, b.id] {
        let approved = p.lobby.approve(host, game.id, application).await?;
        println!("  approved {}", approved.race_name.as_str());
    }
    let game = p.lobby.close(host, game.id).await?;
    println!(
        "  status: {} with {} players",
        game.status, game.approved_count
    );
    let game = p.lobby.start(host, game.id).await?;
    println!("  status: {}", game.status);
    let jobs = p
        .stores
        .runtime
        .list_jobs(Some(game.id), &PageRequest::default())
        .await?;
    for job in jobs.items {
        println!(
            "  runtime job queued: {} ({}, key {})",
            job.kind.as_str(),
            job.status.as_str(),
            job.idempotency_key
        );
    }

    println!("5. The runtime starts the engine; turns run until the engine ends the game");
    let mut runtime = runtime::Runtime::start(
        &p.stores,
        p.notifier.clone(),
        p.clock.clone(),
        p.secrets.clone(),
    )
    .await?;
    runtime.jobs.run_until_idle(10).await?;
    let game = p.lobby.get_game(Some(host), game.id).await?;
    println!("  status: {}", game.status);
    let report = runtime.service.report(bob, game.id, 0, None).await?;
    let first_line = report.text().and_then(|t| t.lines().next()).unwrap_or("");
    println!("  bob reads his turn-0 report from the archive: {first_line:?}");
    let admin = Actor {
        is_admin: true,
        ..host
    };
    while p.lobby.get_game(Some(host), game.id).await?.status == GameStatus::Running {
        let record = runtime.service.force_next_turn(admin, game.id).await?;
        println!("  an admin forced turn {}", record.current_turn);
    }

    println!("6. The result, from the platform (the engine has been stopped)");
    runtime.jobs.run_until_idle(10).await?;
    runtime.stop_engine().await;
    let game = p.lobby.get_game(Some(host), game.id).await?;
    let progress = runtime.service.progress(&game, Some(&host)).await?;
    println!(
        "  status: {}, last turn {}",
        game.status,
        progress.current_turn.unwrap_or_default()
    );
    let result = progress.result.ok_or("a finished game has a result")?;
    println!(
        "  winner: {}",
        result.winner.as_deref().unwrap_or("nobody (a tie)")
    );
    print!(
        "{}",
        galaxy_core::domain::play::standings_table(&result.standings)
    );
    for turn in runtime.service.turns(Some(alice), game.id).await? {
        let scores: Vec<String> = turn
            .standings
            .iter()
            .map(|s| format!("{} {}", s.race, s.score))
            .collect();
        println!("  turn {}: {}", turn.turn, scores.join(", "));
    }
    let revealed = runtime
        .service
        .report(alice, game.id, 3, Some("Krell"))
        .await?;
    println!(
        "  after the finish alice may read the Krell's last report ({} bytes)",
        revealed.text().map_or(0, str::len)
    );
    Ok(())
}
