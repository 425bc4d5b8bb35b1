//! galaxy-cli against a real Postgres (the server of DATABASE_URL, a fresh database per
//! test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use chrono::Utc;
use galaxy_core::domain::UserId;
use galaxy_core::domain::user::{Email, Role, User};
use galaxy_core::ports::{Change, ChangeBus, ChangeNote, ChangeSubscription, UserStore};
use galaxy_postgres::testing::TestDatabases;
use galaxy_postgres::{ChangeBusOptions, ConnectOptions, PgChangeBus, PgStore};

/// The URL of DATABASE_URL's server with another database name.
fn url_of(database: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (run scripts/test.sh)");
    let (server, _) = base
        .rsplit_once('/')
        .expect("DATABASE_URL has a database path");
    format!("{server}/{database}")
}

fn cli(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(args)
        .env("GALAXY_DATABASE_URL", url)
        .output()
        .expect("galaxy-cli runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether a note that `user` changed comes on `notes` within ten seconds (what a running
/// server hears of a change the CLI made).
async fn hears(notes: &mut ChangeSubscription, user: UserId) -> bool {
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match notes.next().await {
                Some(ChangeNote::Changed(Change::User(id))) if id == user => return,
                Some(_) => {}
                None => panic!("the change bus closed"),
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn migrate_brings_an_empty_database_up_and_is_then_a_no_op() {
    let databases = TestDatabases::from_env().await.unwrap();
    let empty = databases.empty_database().await.unwrap();
    let url = url_of(empty.get_database().unwrap());
    for _ in 0..2 {
        let out = cli(&url, &["migrate"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("schema is current"), "{}", text(&out));
    }
    databases.cleanup().await.unwrap();
}

#[tokio::test]
async fn grant_and_revoke_change_an_existing_users_admin_role_and_refuse_unknown_ones() {
    let databases = TestDatabases::from_env().await.unwrap();
    let db = databases.migrated_database().await.unwrap();
    let url = url_of(db.get_database().unwrap());

    let out = cli(&url, &["admin", "grant", "nobody@example.org"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("galaxy-cli:"), "{}", text(&out));

    let out = cli(&url, &["admin", "grant", "not an email"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let store = PgStore::open(&url, &ConnectOptions::default())
        .await
        .unwrap();
    let email = Email::parse("ops@example.org").unwrap();
    let user = User::new(
        UserId::from_uuid(uuid::Uuid::now_v7()),
        email.clone(),
        Utc::now(),
    );
    store.insert_user(&user).await.unwrap();
    // A running server's change bus: it must hear of the grant (it keeps users in memory).
    let bus = PgChangeBus::start(store.pool().clone(), ChangeBusOptions::default())
        .await
        .unwrap();
    let mut notes = bus.subscribe();
    let out = cli(&url, &["admin", "grant", "OPS@example.org"]);
    assert!(out.status.success(), "{}", text(&out));
    let stored = store.find_user_by_email(&email).await.unwrap().unwrap();
    assert!(stored.has_role(Role::Admin));
    assert!(
        hears(&mut notes, user.id).await,
        "no change note for the granted user"
    );

    // Taken back: refused while the address is a bootstrap admin (the next login would
    // give the role back), then done, and the running servers hear of it.
    let out = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(["admin", "revoke", "ops@example.org"])
        .env("GALAXY_DATABASE_URL", &url)
        .env(
            "GALAXY_BOOTSTRAP_ADMINS",
            "root@example.org, Ops@Example.org",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("GALAXY_BOOTSTRAP_ADMINS"),
        "{}",
        text(&out)
    );
    let stored = store.find_user_by_email(&email).await.unwrap().unwrap();
    assert!(stored.has_role(Role::Admin));
    let out = cli(&url, &["admin", "revoke", "ops@example.org"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("is no longer an admin"),
        "{}",
        text(&out)
    );
    let stored = store.find_user_by_email(&email).await.unwrap().unwrap();
    assert!(!stored.has_role(Role::Admin));
    assert!(
        hears(&mut notes, user.id).await,
        "no change note for the revoked user"
    );
    // Again: nothing to take, still fine.
    let out = cli(&url, &["admin", "revoke", "ops@example.org"]);
    assert!(out.status.success(), "{}", text(&out));
    drop(bus);
    store.pool().close().await;
    databases.cleanup().await.unwrap();
}

#[tokio::test]
async fn grant_never_migrates_a_database_behind_the_operators_back() {
    let databases = TestDatabases::from_env().await.unwrap();
    let db = databases.empty_database().await.unwrap();
    let url = url_of(db.get_database().unwrap());
    let out = cli(&url, &["admin", "grant", "ops@example.org"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("galaxy-cli migrate"), "{}", text(&out));
    let status = cli(&url, &["migrate", "status"]);
    assert_eq!(
        status.status.code(),
        Some(1),
        "still pending: {}",
        text(&status)
    );
    databases.cleanup().await.unwrap();
}

#[test]
fn without_a_database_url_it_says_what_to_set() {
    let out = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .arg("migrate")
        .env_remove("GALAXY_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("GALAXY_DATABASE_URL"), "{}", text(&out));
}

#[test]
fn a_backup_without_the_data_directory_is_refused_before_anything_is_held() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("backup");
    // No database answers here: the refusal comes first.
    let result = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(["backup", "--out", &out.display().to_string()])
        .env("GALAXY_DATABASE_URL", "postgres://nobody@127.0.0.1:9/none")
        .env("GALAXY_DATA_DIR", tmp.path().join("no-such-dir"))
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1));
    let said = text(&result);
    assert!(
        said.contains("the data directory") && said.contains("no-such-dir"),
        "{said}"
    );
    assert!(!out.exists(), "nothing written");
}

/// `galaxy-cli` with `args`, no database URL, an empty standard input.
fn bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(args)
        .env_remove("GALAXY_DATABASE_URL")
        .env_remove("GALAXY_URL")
        .env_remove("GALAXY_INTERNAL_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// A bad option in an MTA's pipe (`/etc/aliases`) is a set-up error like a missing URL:
/// 75, so the MTA keeps the mail until it is fixed (clap's 2 made Postfix bounce it).
/// Help and version still succeed.
#[test]
fn mail_in_usage_errors_keep_the_mail() {
    for args in [
        &["mail-in", "--bogus"][..],
        &["mail-in", "--timeout", "soon"],
        &["mail-in", "--url"],
        &["--database-url", "x", "mail-in", "stray"],
    ] {
        let out = bare(args);
        assert_eq!(out.status.code(), Some(75), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("error"), "{args:?}: {}", text(&out));
    }
    // The set-up errors it stands beside: no URL, or one mail-in cannot use (said
    // before the message is read; it used to say only "client error (Connect)").
    let out = bare(&["mail-in"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    for (url, says) in [
        ("https://galaxy.example", "plain HTTP"),
        ("127.0.0.1:8080", "not a URL"),
    ] {
        let out = bare(&["mail-in", "--url", url, "--token", "t"]);
        assert_eq!(out.status.code(), Some(75), "{}", text(&out));
        assert!(text(&out).contains(says), "{url}: {}", text(&out));
    }
    // A server that does not answer is named with the cause.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = bare(&["mail-in", "--url", &url, "--token", "t"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach the server")
            && text(&out).to_lowercase().contains("refused"),
        "{}",
        text(&out)
    );
    let out = bare(&["mail-in", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("--token-file"), "{}", text(&out));
    assert_eq!(bare(&["--version"]).status.code(), Some(0));
    // Other commands keep clap's usage status.
    assert_eq!(bare(&["admin", "grant"]).status.code(), Some(2));
}

/// `migrate status` says 1 only for "migrations pending": a status it cannot read (no
/// URL, a refused or malformed URL, bad usage) is 3, never 1 or 2.
#[tokio::test]
async fn migrate_status_that_cannot_tell_exits_3() {
    let out = bare(&["migrate", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("GALAXY_DATABASE_URL"), "{}", text(&out));

    let out = bare(&["migrate", "status", "--bogus"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    // A malformed URL, then a database the server refuses (at once, no retries).
    for url in [
        "postgres://galaxy@[::1/none".to_owned(),
        url_of("galaxy_cli_no_such_database"),
    ] {
        let out = cli(&url, &["migrate", "status"]);
        assert_eq!(out.status.code(), Some(3), "{url}: {}", text(&out));
        assert!(text(&out).contains("galaxy-cli:"), "{}", text(&out));
        assert!(!text(&out).contains("pending"), "{}", text(&out));
    }

    // A current schema is still 0.
    let databases = TestDatabases::from_env().await.unwrap();
    let db = databases.migrated_database().await.unwrap();
    let out = cli(&url_of(db.get_database().unwrap()), &["migrate", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    databases.cleanup().await.unwrap();
}

#[tokio::test]
async fn secrets_reset_forgets_the_recorded_fingerprints() {
    use galaxy_core::ports::{KeyFingerprint, KeyRegistry};
    let databases = TestDatabases::from_env().await.unwrap();
    let db = databases.migrated_database().await.unwrap();
    let url = url_of(db.get_database().unwrap());
    let store = PgStore::new(databases.pool(db).await.unwrap());
    let (old, new) = (KeyFingerprint([1; 8]), KeyFingerprint([2; 8]));
    for name in ["GALAXY_LOGIN_CODE_KEY", "GALAXY_ENGINE_SECRET"] {
        store.record_key(name, old, Utc::now()).await.unwrap();
    }
    let out = cli(&url, &["secrets", "reset"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("forgot 2"), "{}", text(&out));
    let now = store
        .record_key("GALAXY_LOGIN_CODE_KEY", new, Utc::now())
        .await
        .unwrap();
    assert_eq!(now.fingerprint, new, "the next server records its own");
    store.pool().close().await;
    databases.cleanup().await.unwrap();
}
