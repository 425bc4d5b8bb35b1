//! The runtime's configuration as the served app applies it: games may name only the
//! engines of the chosen runtime's registry (others get 422), and with
//! `GALAXY_RUNTIME=none` a started game fails its start with a clear reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;

use std::collections::HashMap;
use std::time::Duration;

use galaxy_server::{Config, Listeners, dev};
use lifecycle_support::{eventually, log_in, send};
use serde_json::{Value, json};
use tokio::net::TcpListener;

fn game(engine: &str, max_players: u32) -> String {
    json!({
        "name": "Engine choice",
        "min_players": 2,
        "max_players": max_players,
        "enrollment_deadline": "2099-01-01T00:00:00Z",
        "turn_schedule": "0 18 * * *",
        "engine": engine,
    })
    .to_string()
}

#[tokio::test]
async fn games_name_registered_engines_and_start_fails_without_a_runtime() {
    let data = tempfile::tempdir().unwrap();
    let vars: HashMap<String, String> = [
        ("GALAXY_DATA_DIR", data.path().display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
        ("GALAXY_RUNTIME_INTERVAL", "100ms".to_owned()),
        ("GALAXY_RUNTIME", "none".to_owned()),
        ("GALAXY_ENGINES", "classic=classic-pbem:2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_vars(&vars).unwrap();
    let mail = dev::mail_dir(&config);
    let app = dev::build(config).await.unwrap();
    let listeners = Listeners::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listeners.http_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listeners, async {
        let _ = stopped.await;
    }));
    lifecycle_support::wait_ready(addr, Duration::from_secs(10)).await;
    let auth = log_in(addr, &mail, "host@example.org").await;
    let guest = log_in(addr, &mail, "guest@example.org").await;
    let headers = [("authorization", auth.as_str())];
    let call = |method: &'static str, path: String, body: String| async move {
        let response = send(addr, method, &path, &headers, &body).await.unwrap();
        let json: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        (response.status, json)
    };

    let (status, refused) = call("POST", "/api/v1/user/games".into(), game("nope", 2)).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("classic"),
        "{refused}"
    );
    let (status, _) = call("POST", "/api/v1/user/games".into(), game("reference", 2)).await;
    assert_eq!(status, 201, "the reference engine is always registered");

    let (status, created) = call("POST", "/api/v1/user/games".into(), game("classic", 2)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let games = format!("/api/v1/user/games/{id}");
    assert_eq!(
        call("POST", format!("{games}/open"), String::new()).await.0,
        200
    );
    let apply = json!({ "race_name": "Classics" }).to_string();
    let (status, application) = call("POST", format!("{games}/applications"), apply).await;
    assert_eq!(status, 201, "{application}");
    let guest_apply = json!({ "race_name": "Guests" }).to_string();
    let guest_headers = [("authorization", guest.as_str())];
    let path = format!("{games}/applications");
    let guest_application = send(addr, "POST", &path, &guest_headers, &guest_apply)
        .await
        .unwrap();
    assert_eq!(guest_application.status, 201, "{}", guest_application.body);
    // The second approval fills the game, which closes enrollment.
    for application in [application, guest_application.json()] {
        let app_id = application["id"].as_str().unwrap();
        let approve = format!("{games}/applications/{app_id}/approve");
        assert_eq!(call("POST", approve, String::new()).await.0, 200);
    }
    let (status, starting) = call("POST", format!("{games}/start"), String::new()).await;
    assert_eq!(status, 200, "{starting}");
    eventually(Duration::from_secs(20), "start_failed", || {
        let games = games.clone();
        async move {
            let (_, game) = call("GET", games, String::new()).await;
            (game["status"] == "start_failed").then_some(())
        }
    })
    .await;

    stop.send(()).unwrap();
    assert!(served.await.unwrap().unwrap().workers_stopped);
}
