//! Mail through SMTP: `galaxy-server dev` with `GALAXY_SMTP_URL` pointing at a real SMTP
//! server (the aiosmtpd sink of galaxy-smtp's tests, run as a child process) sends the
//! login-code mail there instead of writing `.eml` files; a bad URL is a configuration
//! error naming the variable and never quoting the URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod sink_support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use galaxy_server::{Config, Listeners, dev};
use lifecycle_support::{eml_files, eventually, login_code_body, send};
use sink_support::Sink;
use tokio::net::TcpListener;

fn vars(data_dir: &Path, smtp_url: &str) -> HashMap<String, String> {
    [
        ("GALAXY_DATA_DIR", data_dir.display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
        ("GALAXY_SMTP_URL", smtp_url.to_owned()),
        ("GALAXY_SMTP_TIMEOUT", "5s".to_owned()),
        ("GALAXY_MAIL_FROM", "Galaxy <galaxy@example.org>".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_sends_the_login_code_through_smtp() {
    let sink = Sink::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let config = Config::from_vars(&vars(tmp.path(), &url)).unwrap();
    let app = dev::build(config).await.unwrap();
    let listeners = Listeners::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listeners.http_addr().unwrap();
    let stop = app.shutdown_token();
    let served = tokio::spawn(app.serve(listeners, std::future::pending()));

    let email = "smtp-player@example.org";
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
    let message = eventually(
        Duration::from_secs(20),
        "the login mail at the sink",
        || {
            let found = sink.messages().into_iter().next();
            async move { found }
        },
    )
    .await;
    assert_eq!(message["rcpt_tos"], serde_json::json!([email]), "{message}");
    assert!(
        message["headers"]["from"]
            .as_str()
            .unwrap()
            .contains("galaxy@example.org"),
        "{message}"
    );
    let text = message["text"].as_str().unwrap();
    assert!(
        text.chars().any(|c| c.is_ascii_digit()),
        "no code in {text:?}"
    );
    assert!(
        eml_files(&tmp.path().join("mail")).is_empty(),
        "no .eml with SMTP set"
    );

    stop.cancel();
    let report = served.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn a_bad_smtp_url_is_a_configuration_error_that_hides_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let error = Config::from_vars(&vars(tmp.path(), "smtp://user:hunter2@relay/path?x=1"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("GALAXY_SMTP_URL"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn the_mail_lease_covers_a_batch_of_stalled_sends() {
    let tmp = tempfile::tempdir().unwrap();
    let mut map = vars(tmp.path(), "smtp://127.0.0.1:2525");
    map.insert("GALAXY_SMTP_TIMEOUT".to_owned(), "60s".to_owned());
    map.insert("GALAXY_MAIL_BATCH".to_owned(), "10".to_owned());
    let config = Config::from_vars(&map).unwrap();
    let lease = galaxy_server::delivery::mail_lease(&config).unwrap();
    assert!(lease >= chrono::TimeDelta::seconds(600), "{lease}");
}
