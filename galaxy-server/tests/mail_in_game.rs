//! Orders by e-mail, end to end: a dev-mode game on the reference engine (process
//! runtime) played to the end with orders sent only by mail, through both ways in (the
//! SMTP listener, with lettre as the client, and `galaxy-cli mail-in` fed real messages
//! from Thunderbird, Gmail, Apple Mail and mutt), every answer captured by the aiosmtpd
//! sink: verdicts threaded to the orders, reports in the body or attached, a duplicate
//! delivery answered once, forged and automatic mail not answered (or refused once), and
//! orders for the finished game refused with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;
mod sink_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use galaxy_server::{Config, Listeners, dev};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use lifecycle_support::{eventually, login_code_body, send};
use runtime_support::{engine_binary, unique_instance};
use serde_json::{Value, json};
use sink_support::Sink;
use tokio::net::TcpListener;

const DOMAIN: &str = "galaxy.test";
const TOKEN: &str = "mail-in-test-internal-token";
const LAST_TURN: u64 = 3;

/// `galaxy-cli`, built beside the test binary when missing.
fn cli_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            let binary = profile_dir.join("galaxy-cli");
            let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = std::process::Command::new(cargo)
                .current_dir(&workspace)
                .args(["build", "-p", "galaxy-cli", "--bin", "galaxy-cli"])
                .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                .status()
                .unwrap();
            assert!(status.success(), "building galaxy-cli failed");
            binary
        })
        .clone()
}

/// Pipes `raw` to `galaxy-cli mail-in` as an MTA would; the exit status.
async fn pipe(url: &str, raw: &[u8], extra_env: &[(&str, &str)]) -> i32 {
    pipe_with(url, raw, &[], extra_env).await
}

/// [`pipe`] with arguments after `mail-in`.
async fn pipe_with(url: &str, raw: &[u8], args: &[&str], extra_env: &[(&str, &str)]) -> i32 {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(cli_binary());
    command
        .arg("mail-in")
        .args(args)
        .env("GALAXY_URL", url)
        .env("GALAXY_INTERNAL_TOKEN", TOKEN)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(raw).await.unwrap();
    drop(stdin);
    child.wait().await.unwrap().code().unwrap_or(-1)
}

/// A signed-in user of the served API.
#[derive(Clone)]
struct User {
    addr: SocketAddr,
    email: String,
    auth: String,
}

impl User {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = send(
            self.addr,
            method,
            path,
            &[("authorization", &self.auth)],
            &body,
        )
        .await
        .unwrap();
        (
            response.status,
            serde_json::from_str(&response.body).unwrap_or(Value::Null),
        )
    }

    async fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, json) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        json
    }
}

/// The sink's messages to `email`.
fn mail_to(sink: &Sink, email: &str) -> Vec<Value> {
    sink.messages()
        .into_iter()
        .filter(|m| {
            m["rcpt_tos"]
                .as_array()
                .is_some_and(|r| r.iter().any(|t| t == email))
        })
        .collect()
}

fn kind(m: &Value) -> &str {
    m["headers"]["x-galaxy-kind"].as_str().unwrap_or_default()
}

/// Logs in through the API, reading the code from the sink.
async fn log_in(addr: SocketAddr, sink: &Sink, email: &str) -> User {
    let issued = send(
        addr,
        "POST",
        "/api/v1/public/auth/login-codes",
        &[],
        &login_code_body(email),
    )
    .await
    .unwrap();
    assert_eq!(issued.status, 202, "{}", issued.body);
    let challenge = issued.json()["challenge_id"].as_str().unwrap().to_owned();
    let code = eventually(
        Duration::from_secs(20),
        "the login code at the sink",
        || {
            let found = mail_to(sink, email).into_iter().find_map(|m| {
                let text = m["text"].as_str()?.to_owned();
                let line = text
                    .lines()
                    .find(|l| l.starts_with("Your Galaxy login code is "))?;
                Some(
                    line.trim_start_matches("Your Galaxy login code is ")
                        .trim()
                        .to_owned(),
                )
            });
            async move { found }
        },
    )
    .await;
    let body = json!({ "challenge_id": challenge, "code": code }).to_string();
    let session = send(addr, "POST", "/api/v1/public/auth/sessions", &[], &body)
        .await
        .unwrap();
    assert_eq!(session.status, 201, "{}", session.body);
    User {
        addr,
        email: email.to_owned(),
        auth: format!("Bearer {}", session.json()["token"].as_str().unwrap()),
    }
}

/// Waits for the reply threaded to `message_id` and returns it.
async fn reply_to(sink: &Sink, email: &str, message_id: &str) -> Value {
    let wanted = format!("<{message_id}>");
    eventually(
        Duration::from_secs(30),
        &format!("the reply to {message_id}"),
        || {
            let found = mail_to(sink, email)
                .into_iter()
                .find(|m| m["headers"]["in-reply-to"].as_str() == Some(wanted.as_str()));
            async move { found }
        },
    )
    .await
}

/// The latest game mail (start or turn report) to `email` carrying `turn` in its subject
/// or kind, once it is there.
async fn turn_mail(sink: &Sink, email: &str, kind_wanted: &str, turn: u64) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("the {kind_wanted} mail of turn {turn}"),
        || {
            let found = mail_to(sink, email).into_iter().rev().find(|m| {
                kind(m) == kind_wanted
                    && (kind_wanted != "turn_completed"
                        || m["headers"]["subject"]
                            .as_str()
                            .is_some_and(|s| s.contains(&format!("turn {turn} "))))
            });
            async move { found }
        },
    )
    .await
}

fn orders_mail(from: &str, to: &str, id: &str, in_reply_to: Option<&str>, body: &str) -> Message {
    let mut builder = Message::builder()
        .from(from.parse::<Mailbox>().unwrap())
        .to(to.parse::<Mailbox>().unwrap())
        .subject("Re: orders")
        .message_id(Some(format!("<{id}>")));
    if let Some(parent) = in_reply_to {
        builder = builder
            .in_reply_to(parent.to_owned())
            .references(parent.to_owned());
    }
    builder.body(body.to_owned()).unwrap()
}

/// A client fixture with its placeholders filled.
fn fixture(name: &str, from: &str, to: &str) -> Vec<u8> {
    let path = format!(
        "{}/../galaxy-core/tests/fixtures/mail/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap()
        .replace("{{TO}}", to)
        .replace("{{FROM}}", from)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_is_played_to_the_end_by_mail_only() {
    let sink = Sink::start().await;
    let data = tempfile::tempdir().unwrap();
    let vars: HashMap<String, String> = [
        ("GALAXY_DATA_DIR", data.path().display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
        ("GALAXY_NOTIFICATION_INTERVAL", "100ms".to_owned()),
        ("GALAXY_RUNTIME_INTERVAL", "100ms".to_owned()),
        ("GALAXY_MIN_TURN_PERIOD", "1s".to_owned()),
        ("GALAXY_INSTANCE", unique_instance()),
        ("GALAXY_HEALTH_INTERVAL", "1s".to_owned()),
        (
            "GALAXY_PROCESS_ENGINES",
            format!("reference={}", engine_binary().display()),
        ),
        ("GALAXY_SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port)),
        ("GALAXY_SMTP_TIMEOUT", "5s".to_owned()),
        ("GALAXY_MAIL_FROM", format!("Galaxy <galaxy@{DOMAIN}>")),
        ("GALAXY_MAIL_DOMAIN", DOMAIN.to_owned()),
        ("GALAXY_INBOUND_INTERVAL", "100ms".to_owned()),
        ("GALAXY_INTERNAL_TOKEN", TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_vars(&vars).unwrap();
    let app = dev::build(config).await.unwrap();
    let listeners = Listeners::new(TcpListener::bind("127.0.0.1:0").await.unwrap())
        .with_smtp_in(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listeners.http_addr().unwrap();
    let smtp_port = listeners.smtp_in_addr().unwrap().port();
    let url = format!("http://{addr}");
    let stop = app.shutdown_token();
    let served = tokio::spawn(app.serve(listeners, std::future::pending()));
    lifecycle_support::wait_ready(addr, Duration::from_secs(10)).await;
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp_port)
        .timeout(Some(Duration::from_secs(10)))
        .build();

    // Accounts and the game: the lobby is the web's (or the API's) business.
    let admin = log_in(addr, &sink, dev::DEV_ADMIN).await;
    let ann = log_in(addr, &sink, "ann@example.org").await;
    let bob = log_in(addr, &sink, "bob@example.org").await;
    let game = ann
        .expect(
            "POST",
            "/api/v1/user/games",
            Some(json!({
                "name": "Mail game",
                "min_players": 2,
                "max_players": 4,
                "enrollment_deadline": "2099-01-01T00:00:00Z",
                "turn_schedule": "0 0 1 1 *",
                "engine_settings": { "max_turns": LAST_TURN },
                // The admin forces every turn here, after the verdicts are read: a turn
                // run early once every race's orders are in would race the test's steps.
                "early_turn": false,
            })),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let games = format!("/api/v1/user/games/{game}");
    ann.expect("POST", &format!("{games}/open"), None, 200)
        .await;
    for (player, race) in [(&ann, "Aldebarans"), (&bob, "Betelgeusians")] {
        let application = player
            .expect(
                "POST",
                &format!("{games}/applications"),
                Some(json!({ "race_name": race })),
                201,
            )
            .await;
        let id = application["id"].as_str().unwrap();
        ann.expect(
            "POST",
            &format!("{games}/applications/{id}/approve"),
            None,
            200,
        )
        .await;
    }
    ann.expect("POST", &format!("{games}/close"), None, 200)
        .await;
    ann.expect("POST", &format!("{games}/start"), None, 200)
        .await;

    // The start mail carries each player's orders address as Reply-To, the one "my
    // games" and the orders-address route show.
    let started = turn_mail(&sink, &ann.email, "game_started", 0).await;
    let ann_address = started["headers"]["reply-to"].as_str().unwrap().to_owned();
    assert!(
        ann_address.starts_with("orders+") && ann_address.ends_with(&format!("@{DOMAIN}")),
        "{started}"
    );
    assert!(
        started["text"].as_str().unwrap().contains(&ann_address),
        "{started}"
    );
    let mine = ann
        .expect("GET", "/api/v1/user/games?role=player", None, 200)
        .await;
    assert_eq!(
        mine["items"][0]["orders_address"],
        ann_address.as_str(),
        "{mine}"
    );
    let shown = ann
        .expect("GET", &format!("{games}/orders-address"), None, 200)
        .await;
    assert_eq!(shown["address"], ann_address.as_str());
    let bob_started = turn_mail(&sink, &bob.email, "game_started", 0).await;
    let bob_address = bob_started["headers"]["reply-to"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(bob_address, ann_address);

    // Turn 1. Bob pipes the real client messages through `galaxy-cli mail-in`: each is
    // answered, once; the same message piped again is stored once and not answered again.
    let clients = ["thunderbird.eml", "gmail.eml", "apple-mail.eml", "mutt.eml"];
    for name in clients {
        let raw = fixture(name, &bob.email, &bob_address);
        assert_eq!(pipe(&url, &raw, &[]).await, 0, "{name}");
    }
    assert_eq!(
        pipe(&url, &fixture("mutt.eml", &bob.email, &bob_address), &[]).await,
        0
    );
    for id in [
        "0f1e2d3c-thunderbird@example.org",
        "CAF=gmail-0001@mail.gmail.com",
        "6A7B8C9D-APPLE@example.org",
        "20261203090000.GA1234@host.example.org",
    ] {
        let reply = reply_to(&sink, &bob.email, id).await;
        assert_eq!(kind(&reply), "orders_accepted", "{id}: {reply}");
        let text = reply["text"].as_str().unwrap();
        assert!(text.contains("turn 1"), "{text}");
        assert!(
            text.contains("(3 lines read)"),
            "quotes and signature are not orders: {text}"
        );
        assert!(
            text.contains("2099-01-01T00:00:00Z") || text.contains("-01-01T00:00:00Z"),
            "deadline in RFC 3339 UTC: {text}"
        );
        assert_eq!(reply["headers"]["reply-to"], bob_address.as_str());
        assert!(
            reply["headers"]["references"]
                .as_str()
                .unwrap()
                .contains("<turn-3@galaxy.example>")
        );
    }
    // Pipe exit codes: a message that can never be taken is 65, a server away is 75.
    assert_eq!(pipe(&url, b"", &[]).await, 65);
    assert_eq!(pipe(&url, &vec![b'x'; 300 * 1024], &[]).await, 65);
    assert_eq!(
        pipe("http://127.0.0.1:9", b"From: a@b.c\r\n\r\nx\r\n", &[]).await,
        75
    );
    // A token the server refuses: the operator's to fix, and the MTA keeps the mail
    // meanwhile (75; Postfix would bounce it on 78).
    let wrong = [("GALAXY_INTERNAL_TOKEN", "not-the-servers-token-0123456789")];
    assert_eq!(pipe(&url, b"From: a@b.c\r\n\r\nx\r\n", &wrong).await, 75);
    // The token from a file (off the command line) wins over the variable.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{TOKEN}\n")).unwrap();
    let path = file.path().to_str().unwrap();
    let args = ["--token-file", path];
    let message = b"From: a@b.c\r\n\r\nfrom a file\r\n";
    assert_eq!(pipe_with(&url, message, &args, &wrong).await, 0);

    // Ann sends over SMTP: an automatic reply first (never answered), then real orders
    // with a bad line (rejected, errors line by line), then the corrected orders.
    let auto = Message::builder()
        .from(ann.email.parse::<Mailbox>().unwrap())
        .to(ann_address.parse::<Mailbox>().unwrap())
        .subject("Out of office")
        .message_id(Some("<auto-1@example.org>".to_owned()))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body("I am away\n".to_owned())
        .unwrap();
    let mut auto_raw = auto.formatted();
    auto_raw.splice(0..0, b"Auto-Submitted: auto-replied\r\n".iter().copied());
    let envelope = auto.envelope().clone();
    smtp.send_raw(&envelope, &auto_raw).await.unwrap();
    let parent = started["headers"]["message-id"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    let bad = orders_mail(
        &ann.email,
        &ann_address,
        "ann-t1-bad@example.org",
        Some(&parent),
        "design Alpha 6 2 9 0\nbuild_industry 999\nfly away\n\n> Your race at the start\n",
    );
    smtp.send(bad).await.unwrap();
    let rejected = reply_to(&sink, &ann.email, "ann-t1-bad@example.org").await;
    assert_eq!(kind(&rejected), "orders_rejected", "{rejected}");
    let text = rejected["text"].as_str().unwrap();
    assert!(text.contains("  - order 2 (line 2): "), "{text}");
    assert!(
        text.contains("  - order 3 (line 3): unknown order"),
        "{text}"
    );
    // The orders as the engine read them, numbered as its reasons count lines (the
    // quote taken out), so "line 3" points at a line the player sees.
    let read: Vec<&str> = text.lines().filter(|l| l.contains(" | ")).collect();
    assert_eq!(
        read,
        [
            "   1 | design Alpha 6 2 9 0",
            "   2 | build_industry 999",
            "   3 | fly away"
        ],
        "{text}"
    );
    assert!(!text.contains("| > Your race"), "{text}");
    assert!(
        !mail_to(&sink, &ann.email)
            .iter()
            .any(|m| m["headers"]["in-reply-to"] == "<auto-1@example.org>"),
        "automatic mail is never answered"
    );

    // Ann wants her reports attached from now on.
    let chosen = ann
        .expect(
            "PUT",
            &format!("{games}/report-delivery"),
            Some(json!({"as": "attachment"})),
            200,
        )
        .await;
    assert_eq!(chosen["report_delivery"], "attachment");

    // A forged From (Bob's address, or a stranger's, on Ann's orders address): nothing is
    // taken, Ann is told once however often it happens (someone knows her address), and
    // neither sender gets anything.
    for i in 0..2 {
        let forged = orders_mail(
            &bob.email,
            &ann_address,
            &format!("forged-{i}@example.org"),
            None,
            "design Evil 1 1 1 0\n",
        );
        smtp.send(forged).await.unwrap();
        let stranger = orders_mail(
            "eve@example.net",
            &ann_address,
            &format!("eve-{i}@example.net"),
            None,
            "design Evil 1 1 1 0\n",
        );
        smtp.send(stranger).await.unwrap();
    }

    // Orders that name another turn in the engine's own way (the reference engine's
    // `turn N` line) are refused with the engine's reason, not applied to turn 1.
    smtp.send(orders_mail(
        &ann.email,
        &ann_address,
        "ann-stale@example.org",
        Some(&parent),
        "turn 9\nbuild_industry 0\n",
    ))
    .await
    .unwrap();
    let stale = reply_to(&sink, &ann.email, "ann-stale@example.org").await;
    assert_eq!(kind(&stale), "orders_rejected", "{stale}");
    assert!(
        stale["text"]
            .as_str()
            .unwrap()
            .contains("these orders name turn 9, but the next turn is 1"),
        "{stale}"
    );

    // Turns 1 to LAST_TURN: orders by mail, the verdict back, the turn forced by the
    // admin, the report by mail (Ann's attached).
    let mut ann_parent = parent;
    for turn in 1..=LAST_TURN {
        let id = format!("ann-t{turn}@example.org");
        let orders = format!("design A{turn} attack=6 defence=2 speed=9 cargo=0\n\n-- \nAnn\n");
        smtp.send(orders_mail(
            &ann.email,
            &ann_address,
            &id,
            Some(&ann_parent),
            &orders,
        ))
        .await
        .unwrap();
        let accepted = reply_to(&sink, &ann.email, &id).await;
        assert_eq!(
            kind(&accepted),
            "orders_accepted",
            "turn {turn}: {accepted}"
        );
        assert!(
            accepted["text"]
                .as_str()
                .unwrap()
                .contains(&format!("turn {turn}")),
            "{accepted}"
        );
        if turn > 1 {
            let raw = format!(
                "From: {}\r\nTo: {bob_address}\r\nSubject: orders\r\nMessage-ID: <bob-t{turn}@example.org>\r\n\r\ndesign B{turn} 1 1 1 0\r\n",
                bob.email
            );
            assert_eq!(pipe(&url, raw.as_bytes(), &[]).await, 0);
            let bob_reply = reply_to(&sink, &bob.email, &format!("bob-t{turn}@example.org")).await;
            assert_eq!(kind(&bob_reply), "orders_accepted", "{bob_reply}");
        }
        // Named, the turn is forced once however often the request is repeated.
        let path = format!("/api/v1/admin/games/{game}/force-next-turn?turn={turn}");
        eventually(Duration::from_secs(30), "a forced turn", || async {
            match admin.call("POST", &path, None).await {
                (200, _) => Some(()),
                (409, e) if e["error"]["code"] == "turn_in_progress" => None,
                (status, body) => panic!("force-next-turn: {status} {body}"),
            }
        })
        .await;
        if turn == 1 {
            let (status, again) = admin.call("POST", &path, None).await;
            assert_eq!(
                (status, again["error"]["code"].as_str()),
                (409, Some("turn_not_next")),
                "{again}"
            );
            let bad = format!("/api/v1/admin/games/{game}/force-next-turn?turn=next");
            let (status, refused) = admin.call("POST", &bad, None).await;
            assert_eq!(status, 400, "{refused}");
        }
        if turn < LAST_TURN {
            let report = turn_mail(&sink, &ann.email, "turn_completed", turn).await;
            assert_eq!(
                report["content_type"], "multipart/mixed",
                "attached: {report}"
            );
            assert!(
                report["text"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("report-turn-{turn}.txt")),
                "{report}"
            );
            ann_parent = report["headers"]["message-id"]
                .as_str()
                .unwrap()
                .trim_matches(['<', '>'])
                .to_owned();
            let bob_report = turn_mail(&sink, &bob.email, "turn_completed", turn).await;
            assert_eq!(
                bob_report["content_type"], "multipart/alternative",
                "in the body: {bob_report}"
            );
        }
    }
    let over = turn_mail(&sink, &ann.email, "game_finished", LAST_TURN).await;
    assert!(
        over["text"].as_str().unwrap().contains("ended after turn"),
        "{over}"
    );
    let view = ann.expect("GET", &games, None, 200).await;
    assert_eq!(view["status"], "finished", "{view}");
    // Bob's accepted orders of turn 1 (the last fixture) and ann's of every turn are on
    // record, as the API reads them back.
    let record = ann
        .expect("GET", &format!("{games}/orders/1"), None, 200)
        .await;
    assert_eq!(record["latest"]["accepted"], true, "{record}");
    assert!(
        record["latest"]["orders"].is_string(),
        "the text form was sent: {record}"
    );

    // Orders for the finished game: refused with the reason.
    smtp.send(orders_mail(
        &ann.email,
        &ann_address,
        "ann-late@example.org",
        None,
        "design Late 1 1 1 0\n",
    ))
    .await
    .unwrap();
    let late = reply_to(&sink, &ann.email, "ann-late@example.org").await;
    assert_eq!(kind(&late), "orders_not_taken", "{late}");
    let told = late["text"].as_str().unwrap();
    assert!(
        told.contains("takes no orders now (it is finished)"),
        "{late}"
    );
    assert!(
        late["headers"]["subject"]
            .as_str()
            .unwrap()
            .contains("NOT taken"),
        "{late}"
    );
    assert!(!told.contains("turn -") && !told.contains("at -"), "{late}");

    // The forged mails: exactly one note, to Ann, naming a sender; nothing to either.
    let refusals: Vec<_> = mail_to(&sink, &ann.email)
        .into_iter()
        .filter(|m| kind(m) == "orders_refused")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let note = refusals[0]["text"].as_str().unwrap();
    assert!(
        note.contains(&format!("from {}", bob.email)) || note.contains("from eve@example.net"),
        "{note}"
    );
    assert!(
        mail_to(&sink, &bob.email)
            .iter()
            .all(|m| kind(m) != "orders_refused"),
        "the sender was answered"
    );
    assert!(mail_to(&sink, "eve@example.net").is_empty());
    // Every fixture of Bob's was answered once: four client messages, no fifth for the
    // piped duplicate.
    let answered_fixtures = mail_to(&sink, &bob.email)
        .into_iter()
        .filter(|m| {
            m["headers"]["references"]
                .as_str()
                .is_some_and(|r| r.contains("<turn-3@galaxy.example>"))
        })
        .count();
    assert_eq!(answered_fixtures, 4);

    // A rotated address stops working at once: mail to the old one is refused.
    let rotated = ann
        .expect("POST", &format!("{games}/orders-address/rotate"), None, 200)
        .await;
    assert_ne!(rotated["address"], ann_address.as_str());
    smtp.send(orders_mail(
        &ann.email,
        &ann_address,
        "ann-old@example.org",
        None,
        "design Old 1 1 1 0\n",
    ))
    .await
    .unwrap();
    let refused = reply_to(&sink, &ann.email, "ann-old@example.org").await;
    assert_eq!(kind(&refused), "orders_refused", "{refused}");
    assert!(
        refused["text"].as_str().unwrap().contains("at most one"),
        "{refused}"
    );
    // An answer in the sender's thread, marked as an automatic reply (RFC 3834).
    assert_eq!(
        refused["headers"]["in-reply-to"], "<ann-old@example.org>",
        "{refused}"
    );
    assert_eq!(refused["headers"]["auto-submitted"], "auto-replied");

    stop.cancel();
    let report = served.await.unwrap().unwrap();
    assert!(report.workers_stopped, "{report:?}");
}
