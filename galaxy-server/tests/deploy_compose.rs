//! deploy/compose.yaml: the server's settings an operator sets pass through from the
//! shell with empty defaults (no daemon needed). On the test daemon: `docker-compose
//! config` validates it (with and
//! without the optional profiles), then the server image (a static binary FROM scratch,
//! built here once per run) comes up with Postgres, answers `/readyz`, and a game started
//! through its API runs on the Docker runtime from inside the container (the server's
//! container joined to the game's own network), plays a forced turn and stops.
//!
//! There is no registry here, so the Postgres service runs the machine's own Postgres
//! binaries, mounted into a scratch image by an override file (as `postgres:15` would run
//! from a registry). Needs docker-compose (scripts/test.sh installs it); skipped with the
//! reason unless GALAXY_REQUIRE_DOCKER=1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lifecycle_support::{eventually, free_port, log_in, send, wait_ready};
use runtime_support::{DOCKER_IMAGE, containers_of, docker_lock, skip_without_docker};
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `docker-compose` with `args` and `env`; (success, stdout + stderr).
fn compose(args: &[&str], env: &[(String, String)]) -> (bool, String) {
    let out = Command::new("docker-compose")
        .current_dir(workspace())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Brings the project down (containers, its network, its volumes) when dropped, then
/// removes what the server's runtime made for the game (container, network, volume).
struct Project {
    args: Vec<String>,
    env: Vec<(String, String)>,
    game: std::sync::Mutex<Option<String>>,
}

impl Drop for Project {
    fn drop(&mut self) {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(["down", "-v", "--timeout", "5"]);
        let (ok, text) = compose(&args, &self.env);
        if !ok {
            eprintln!("docker-compose down: {text}");
        }
        let game = self.game.lock().map(|g| g.clone()).unwrap_or_default();
        if let Some(game) = game {
            let label = format!("label=galaxy.game_id={game}");
            for (kind, list) in [("container", "ps"), ("network", "ls"), ("volume", "ls")] {
                let mut ls = vec![kind, list, "-q", "--filter", &label];
                if kind == "container" {
                    ls = vec!["ps", "-a", "-q", "--filter", &label];
                }
                let out = Command::new("docker").args(&ls).output().unwrap();
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("docker").args([kind, "rm", "-f", id]).output();
                }
            }
        }
    }
}

async fn call(
    addr: SocketAddr,
    auth: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let response = send(addr, method, path, &[("authorization", auth)], &body)
        .await
        .unwrap();
    (
        response.status,
        serde_json::from_str(&response.body).unwrap_or(Value::Null),
    )
}

async fn expect(
    addr: SocketAddr,
    auth: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (got, json) = call(addr, auth, method, path, body).await;
    assert_eq!(got, status, "{method} {path}: {json}");
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_file_runs_the_server_and_a_game_on_docker() {
    let require = std::env::var("GALAXY_REQUIRE_DOCKER").as_deref() == Ok("1");
    if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_err()
    {
        assert!(
            !require,
            "GALAXY_REQUIRE_DOCKER=1 but docker-compose is missing (apt-get install docker-compose)"
        );
        eprintln!("skipping: docker-compose is missing (apt-get install docker-compose)");
        return;
    }
    if skip_without_docker("the_compose_file_runs_the_server_and_a_game_on_docker") {
        return;
    }
    let base = vec![(
        "GALAXY_POSTGRES_PASSWORD".to_owned(),
        "compose-test".to_owned(),
    )];
    for profile in [None, Some("monitoring"), Some("relay")] {
        let mut args = vec!["-f", "deploy/compose.yaml"];
        if let Some(profile) = profile {
            args.extend(["--profile", profile]);
        }
        args.push("config");
        let (ok, text) = compose(&args, &base);
        assert!(ok, "docker-compose config ({profile:?}): {text}");
    }
    let (ok, text) = compose(&["-f", "deploy/compose.yaml", "config"], &[]);
    assert!(!ok && text.contains("GALAXY_POSTGRES_PASSWORD"), "{text}");

    let _lock = docker_lock(&[("GALAXY_RUNTIME", "docker".to_owned())]).await;
    // The static server binary (cargo's lock on target/static makes one build per run)
    // and its image.
    let target = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .unwrap()
        .join("static");
    let binary = galaxy_docker::image::build_static_server(&workspace(), &target)
        .await
        .unwrap();
    let docker = galaxy_docker::DockerRuntime::connect(galaxy_docker::DockerConfig::default())
        .await
        .unwrap();
    let tag = "galaxy-server:compose-test";
    galaxy_docker::image::build_server_image(docker.client(), &binary, tag)
        .await
        .unwrap();

    // The machine's Postgres, initialised for user galaxy (trust), as the postgres user.
    let tmp = tempfile::Builder::new()
        .prefix("galaxy-compose")
        .tempdir_in("/tmp")
        .unwrap();
    let pgdata = tmp.path().join("pgdata");
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("bin"))
        .find(|p| p.join("postgres").is_file())
        .expect("a Postgres under /usr/lib/postgresql");
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    std::fs::create_dir(&pgdata).unwrap();
    assert!(
        Command::new("chown")
            .args([format!("{uid}:{gid}"), pgdata.display().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let init = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("initdb"))
        .args([
            "-D",
            &pgdata.display().to_string(),
            "-U",
            "galaxy",
            "--auth=trust",
            "--no-locale",
            "--encoding=UTF8",
        ])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    // As the postgres:15 image does for POSTGRES_DB and remote clients.
    let hba = pgdata.join("pg_hba.conf");
    let mut rules = std::fs::read_to_string(&hba).unwrap();
    rules.push_str("host all all 0.0.0.0/0 trust\n");
    std::fs::write(&hba, rules).unwrap();
    let mut single = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("postgres"))
        .args(["--single", "-D", &pgdata.display().to_string(), "postgres"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(single.stdin.as_mut().unwrap(), b"CREATE DATABASE galaxy;\n")
        .unwrap();
    drop(single.stdin.take());
    assert!(single.wait().unwrap().success(), "CREATE DATABASE galaxy");
    let override_file = tmp.path().join("override.yaml");
    let lib = "/usr/lib/x86_64-linux-gnu";
    std::fs::write(
        &override_file,
        format!(
            "services:\n  postgres:\n    image: {DOCKER_IMAGE}\n    user: \"{uid}:{gid}\"\n    entrypoint: [\"{bin}/postgres\", \"-D\", \"/pgdata\", \"-c\", \"listen_addresses=*\", \"-k\", \"\"]\n    volumes:\n      - /usr/lib/postgresql:/usr/lib/postgresql:ro\n      - {lib}:{lib}:ro\n      - {lib}:/lib/x86_64-linux-gnu:ro\n      - /usr/lib64:/lib64:ro\n      - /usr/share/postgresql:/usr/share/postgresql:ro\n      - /usr/share/zoneinfo:/usr/share/zoneinfo:ro\n      - /etc/passwd:/etc/passwd:ro\n      - /etc/group:/etc/group:ro\n      - {pgdata}:/pgdata\n",
            bin = bin.display(),
            pgdata = pgdata.display(),
        ),
    )
    .unwrap();

    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let name = format!("galaxy-compose-{}", std::process::id());
    let mut env = base.clone();
    env.extend(
        [
            ("GALAXY_SERVER_IMAGE", tag.to_owned()),
            ("GALAXY_SERVER_CONTAINER", name.clone()),
            ("GALAXY_HTTP_PUBLISH", addr.to_string()),
            ("GALAXY_DATA", data.display().to_string()),
            ("GALAXY_BOOTSTRAP_ADMINS", "admin@example.org".to_owned()),
            ("GALAXY_DOCKER_SUBNETS", "10.217.0.0/16".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let project = Project {
        args: [
            "-p",
            &name,
            "-f",
            "deploy/compose.yaml",
            "-f",
            &override_file.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec(),
        env,
        game: std::sync::Mutex::new(None),
    };
    let mut up: Vec<&str> = project.args.iter().map(String::as_str).collect();
    up.extend(["up", "-d"]);
    let (ok, text) = compose(&up, &project.env);
    assert!(ok, "docker-compose up: {text}");
    let logs = || {
        let mut args: Vec<&str> = project.args.iter().map(String::as_str).collect();
        args.extend(["logs", "--tail", "40"]);
        compose(&args, &project.env).1
    };
    let ready = tokio::time::timeout(
        Duration::from_secs(60),
        wait_ready(addr, Duration::from_secs(600)),
    )
    .await;
    assert!(ready.is_ok(), "no /readyz: {}", logs());

    // A game from lobby to a played turn on the Docker runtime.
    let mail = data.join("mail");
    let admin = log_in(addr, &mail, "admin@example.org").await;
    let host = log_in(addr, &mail, "ann@example.org").await;
    let guest = log_in(addr, &mail, "bob@example.org").await;
    let game = expect(
        addr,
        &host,
        "POST",
        "/api/v1/user/games",
        Some(json!({
            "name": "Compose game", "min_players": 2, "max_players": 3,
            "enrollment_deadline": "2099-01-01T00:00:00Z", "turn_schedule": "0 0 0 1 1 *",
        })),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    *project.game.lock().unwrap() = Some(game.clone());
    let games = format!("/api/v1/user/games/{game}");
    expect(addr, &host, "POST", &format!("{games}/open"), None, 200).await;
    for (player, race) in [(&host, "Aldebarans"), (&guest, "Betelgeusians")] {
        let application = expect(
            addr,
            player,
            "POST",
            &format!("{games}/applications"),
            Some(json!({"race_name": race})),
            201,
        )
        .await;
        let approve = format!(
            "{games}/applications/{}/approve",
            application["id"].as_str().unwrap()
        );
        expect(addr, &host, "POST", &approve, None, 200).await;
    }
    expect(addr, &host, "POST", &format!("{games}/close"), None, 200).await;
    expect(addr, &host, "POST", &format!("{games}/start"), None, 200).await;
    eventually(Duration::from_secs(90), "the game running", || async {
        let (_, g) = call(addr, &host, "GET", &games, None).await;
        assert_ne!(g["status"], "start_failed", "{g}\n{}", logs());
        (g["status"] == "running").then_some(())
    })
    .await;
    assert!(!containers_of(&game).is_empty(), "no engine container");
    let record = format!("/api/v1/admin/runtime/records/{game}");
    let forced = expect(
        addr,
        &admin,
        "POST",
        &format!("/api/v1/admin/games/{game}/force-next-turn"),
        None,
        200,
    )
    .await;
    assert_eq!(forced["current_turn"], 1, "{forced}");
    let bound = expect(addr, &admin, "GET", &record, None, 200).await;
    assert!(
        bound["engine_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("http://10.217."),
        "{bound}"
    );
    expect(
        addr,
        &admin,
        "POST",
        &format!("/api/v1/admin/games/{game}/stop"),
        None,
        200,
    )
    .await;
    eventually(Duration::from_secs(60), "the engine stopped", || async {
        let (_, r) = call(addr, &admin, "GET", &record, None).await;
        matches!(r["status"].as_str(), Some("stopped" | "removed")).then_some(())
    })
    .await;
    drop(project);
}

/// `text` with compose's interpolation (`${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:?message}`, `${VAR?message}`, `$$`) from `env` alone.
fn interpolate(text: &str, env: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            panic!("compose.yaml: a bare ${after:.20}: write ${{...}}");
        };
        let (expr, after) = body.split_once('}').unwrap();
        let name_end = expr
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(expr.len());
        let (name, op) = expr.split_at(name_end);
        let value = env.get(name).copied();
        let set = value.is_some_and(|v| !v.is_empty());
        out.push_str(&if let Some(default) = op.strip_prefix(":-") {
            if set {
                value.unwrap().to_owned()
            } else {
                default.to_owned()
            }
        } else if let Some(default) = op.strip_prefix('-') {
            value.map_or_else(|| default.to_owned(), str::to_owned)
        } else if let Some(message) = op.strip_prefix(":?").or_else(|| op.strip_prefix('?')) {
            assert!(value.is_some(), "compose would refuse: {name}: {message}");
            value.unwrap().to_owned()
        } else {
            assert!(op.is_empty(), "compose.yaml: ${{{expr}}}");
            value.unwrap_or_default().to_owned()
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The `galaxy` service's `environment:` in compose YAML (the file or `docker-compose
/// config`'s output): `KEY: value` lines, values unquoted.
fn galaxy_environment(yaml: &str) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    let mut in_galaxy = false;
    let mut in_environment = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 2 {
            in_galaxy = trimmed == "galaxy:";
            in_environment = None;
        } else if in_galaxy && indent == 4 {
            in_environment = (trimmed == "environment:").then_some(indent);
        } else if in_galaxy && in_environment.is_some() && indent > 4 {
            let (key, value) = trimmed.split_once(':').unwrap();
            let value = value.trim();
            let value = if let Some(quoted) =
                value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
            {
                quoted.replace("''", "'")
            } else if let Some(quoted) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                quoted.to_owned()
            } else {
                value.to_owned()
            };
            environment.insert(key.to_owned(), value);
        }
    }
    environment
}

/// The settings an operator of the compose deployment sets from the shell (or
/// `--env-file`) pass through to the server with empty defaults (an empty variable is
/// an unset setting), so none needs compose.yaml edited: GALAXY_TRUSTED_PROXIES above
/// all, since with the default publish every client arrives from the network's gateway.
/// Checked on the file with compose's interpolation rules, and through
/// `docker-compose config` where it is installed (no daemon needed).
#[test]
fn the_compose_files_settings_pass_through_from_the_operator() {
    use galaxy_server::config::{Layered, SETTINGS};

    let yaml = std::fs::read_to_string(workspace().join("deploy/compose.yaml")).unwrap();
    let raw = galaxy_environment(&yaml);
    for key in raw.keys() {
        assert!(
            SETTINGS.iter().any(|s| s.variable == key),
            "compose.yaml sets {key}, which is not a setting"
        );
    }
    for key in [
        "GALAXY_TRUSTED_PROXIES",
        "GALAXY_DATABASE_MAX_CONNECTIONS",
        "GALAXY_ENGINE_MEMORY",
        "GALAXY_ENGINE_CPUS",
        "GALAXY_ENGINE_PIDS",
        "GALAXY_LOG_FORMAT",
        "GALAXY_BOOTSTRAP_ADMINS",
        "GALAXY_SMTP_URL",
        "GALAXY_ENGINES",
    ] {
        let value = raw.get(key).map(String::as_str).unwrap_or_default();
        assert!(
            value.starts_with(&format!("${{{key}:-")),
            "{key} does not pass through: {value:?}"
        );
    }

    let config_of = |env: &BTreeMap<String, String>| {
        let vars: std::collections::HashMap<String, String> =
            env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let layered = Layered::load(None, &vars).unwrap();
        assert!(
            layered.unknown_variables().is_empty(),
            "{:?}",
            layered.unknown_variables()
        );
        layered.config().unwrap()
    };
    let base = BTreeMap::from([("GALAXY_POSTGRES_PASSWORD", "compose-test")]);
    let mut set = base.clone();
    set.extend([
        ("GALAXY_TRUSTED_PROXIES", "10.219.15.1"),
        ("GALAXY_DATABASE_MAX_CONNECTIONS", "20"),
        ("GALAXY_ENGINE_PIDS", "512"),
        ("GALAXY_LOG_FORMAT", "pretty"),
    ]);
    let unset = galaxy_environment(&interpolate(&yaml, &base));
    let chosen = galaxy_environment(&interpolate(&yaml, &set));

    // Unset: the server's defaults (an empty variable is no setting).
    let config = config_of(&unset);
    assert!(config.trusted_proxies.is_empty());
    assert_eq!(config.database_max_connections, 10);
    assert_eq!(config.runtime.engines.limits.pids, Some(256));
    // Set: the operator's values, without editing the file.
    let config = config_of(&chosen);
    assert!(config.trusted_proxies.contains([10, 219, 15, 1].into()));
    assert_eq!(config.database_max_connections, 20);
    assert_eq!(config.runtime.engines.limits.pids, Some(512));
    assert_eq!(config.log_format, galaxy_server::config::LogFormat::Pretty);

    // docker-compose itself agrees.
    if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("GALAXY_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "GALAXY_REQUIRE_DOCKER=1 but docker-compose is missing"
        );
        eprintln!("docker-compose is missing: only the file's own interpolation was checked");
        return;
    }
    for (env, expected) in [(&base, &unset), (&set, &chosen)] {
        let out = Command::new("docker-compose")
            .current_dir(workspace())
            .args(["-f", "deploy/compose.yaml", "config"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "docker-compose config: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(&galaxy_environment(&text), expected, "{text}");
    }
}
