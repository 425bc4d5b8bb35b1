//! `galaxy-cli push tail` against an in-process push server (the gRPC server of
//! galaxy-push-grpc over a `PushService`): events print as JSON lines, SIGINT stops it
//! cleanly. Needs no database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use galaxy_core::domain::UserId;
use galaxy_core::service::push::{PushConfig, PushService};
use galaxy_ports::memory::MemoryPushLog;
use galaxy_ports::system::{OsSecretGenerator, SystemClock};
use galaxy_push_grpc::PushGrpcServer;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "push-tail-test-internal-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_tail_prints_each_event_as_a_json_line_until_sigint() {
    let push = Arc::new(PushService::new(
        Arc::new(SystemClock),
        Arc::new(OsSecretGenerator),
        PushConfig::default(),
        Arc::new(MemoryPushLog::new()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = PushGrpcServer::new(push.clone(), SecretString::from(TOKEN.to_owned()));
    let stop = shutdown.clone();
    let served = tokio::spawn(server.serve(listener, async move { stop.cancelled().await }));

    // The token from a file; the environment variable is cleared to prove it.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(["push", "tail", "--url", &format!("http://{addr}")])
        .args(["--gateway-id", "cli-test"])
        .arg("--token-file")
        .arg(&token_file)
        .env_remove("GALAXY_INTERNAL_TOKEN")
        .env_remove("GALAXY_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while push.subscriber_count() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let user = UserId::from_uuid(uuid::Uuid::from_u128(42));
    let published = push
        .publish_event(
            vec![user],
            "game.turn_completed",
            serde_json::json!({ "turn": 7 }),
        )
        .await
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(20), line)
        .await
        .expect("no line within 20 s")
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["kind"], "game.turn_completed", "{line}");
    assert_eq!(event["payload"]["turn"], 7, "{line}");
    assert_eq!(event["user_ids"][0], user.to_string(), "{line}");
    assert_eq!(event["event_id"], published.event_id.to_string(), "{line}");

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    // A token the server refuses: retrying would not help, so the tail says why and ends
    // (it used to retry in silence, looking like a quiet stream). The token from the
    // environment, then from the server's configuration file (`--config`).
    let config = dir.path().join("galaxy.toml");
    std::fs::write(&config, "internal_token = \"not-the-servers-token\"\n").unwrap();
    let url = format!("http://{addr}");
    let environment = ["push", "tail", "--url", &url];
    let file = [
        "--config",
        config.to_str().unwrap(),
        "push",
        "tail",
        "--url",
        &url,
    ];
    for (args, variable) in [
        (&environment[..], Some("not-the-servers-token")),
        (&file[..], None),
    ] {
        let mut refused = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"));
        refused
            .args(args)
            .env_remove("GALAXY_INTERNAL_TOKEN")
            .env_remove("GALAXY_CONFIG_FILE")
            .env_remove("GALAXY_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(token) = variable {
            refused.env("GALAXY_INTERNAL_TOKEN", token);
        }
        let refused = refused.spawn().unwrap();
        let out = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::task::spawn_blocking(move || refused.wait_with_output()),
        )
        .await
        .expect("a refused tail kept running")
        .unwrap()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("refused"), "{args:?}: {stderr}");
    }
    // A cursor that is not one is said to be the problem, before any connection.
    let out = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(["push", "tail", "--url", &url, "--cursor", "not-a-cursor"])
        .env("GALAXY_INTERNAL_TOKEN", TOKEN)
        .env_remove("GALAXY_CONFIG_FILE")
        .env_remove("GALAXY_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--cursor \"not-a-cursor\" is not a push cursor"),
        "{stderr}"
    );
    shutdown.cancel();
    served.await.unwrap().unwrap();
}
