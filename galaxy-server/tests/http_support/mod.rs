//! The API over in-memory stores, for the `http_*` tests: the same services the server
//! composes, a manual clock, seeded secrets, and helpers to call routes and log in.
//!
//! Requests go over a real socket: the router is served on 127.0.0.1 port 0 and called
//! with a hyper client, so what is tested is what a client on the wire sees. Only a call
//! that pretends to come from another client address (`Call::client`, for geo and per-IP
//! rate limits) is handed to the router in-process with that address as `ConnectInfo`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::user::Email;
use galaxy_core::ports::{Clock, GeoLocator, MailStore, SecretGenerator};
use galaxy_core::service::auth::{AuthConfig, AuthPorts, AuthService};
use galaxy_core::service::geo::{GeoConfig, GeoService};
use galaxy_core::service::lobby::{LobbyConfig, LobbyPorts, LobbyService};
use galaxy_core::service::mail::MailAdminService;
use galaxy_core::service::notification::NotificationService;
use galaxy_core::service::runtime::{RuntimeConfig, RuntimePorts, RuntimeService};
use galaxy_core::service::user::UserService;
#[cfg(feature = "geoip")]
use galaxy_geoip::MaxMindLocator;
use galaxy_ports::memory::InMemoryStores;
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};
use galaxy_server::geo::{CountryUpdates, UnknownLocator};
use galaxy_server::http::client_ip::TrustedProxies;
use galaxy_server::http::{HttpLimits, router};
use galaxy_server::state::{AppState, Readiness};
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The gateway's token in tests.
pub const INTERNAL_TOKEN: &str = "internal-token-for-tests-0123456789";
/// The address configured as a bootstrap admin.
pub const ADMIN_EMAIL: &str = "admin@example.org";
/// The body limit of the test router.
pub const BODY_LIMIT: usize = 4096;
/// The body limit of the orders route in the test app (larger: the orders bound plus
/// the envelope).
pub const ORDERS_BODY_LIMIT: usize = 8192;

/// Event streams one user of the test app may hold open at once.
pub const STREAMS_PER_USER: usize = 2;

/// The HTTP limits of the test app: small bodies, and `request_timeout` as given.
pub fn limits(request_timeout: Duration) -> HttpLimits {
    HttpLimits {
        body_limit: BODY_LIMIT,
        orders_body_limit: ORDERS_BODY_LIMIT,
        mail_in_body_limit: ORDERS_BODY_LIMIT,
        request_timeout,
        streams_per_user: STREAMS_PER_USER,
        streams_total: 100,
        // Soon, so the tests see a stream's marks and session checks.
        stream_mark_every: Duration::from_millis(200),
    }
}

/// How the test app is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gateway's token; `None` disables the internal routes.
    pub internal_token: Option<&'static str>,
    /// Auth settings (rate limits).
    pub auth: AuthConfig,
    /// A MaxMind database for geo; `None`: every country is `unknown`.
    pub geoip_db: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}

impl Default for Options {
    fn default() -> Self {
        let auth = AuthConfig {
            bootstrap_admins: BTreeSet::from([Email::parse(ADMIN_EMAIL).unwrap()]),
            ..AuthConfig::default()
        };
        Self {
            internal_token: Some(INTERNAL_TOKEN),
            auth,
            geoip_db: None,
            trusted_proxies: TrustedProxies::none(),
        }
    }
}

/// The API router over fresh in-memory stores.
pub struct TestApp {
    /// Where the router is served over TCP (started on first use).
    socket: tokio::sync::OnceCell<SocketAddr>,
    /// The HTTP/1 client that calls it.
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<axum::body::Bytes>,
    >,
    /// The router under test.
    pub router: Router,
    /// The stores behind it, to inspect.
    pub stores: InMemoryStores,
    /// The clock every service reads.
    pub clock: Arc<ManualClock>,
    /// The state the router holds.
    pub state: AppState,
}

/// A response, its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct TestResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
}

impl TestResponse {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    /// Asserts the status and, for errors, the API's error shape.
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        if status >= 400 {
            assert_error_shape(self);
        }
        self
    }
}

/// Asserts `{"error": {"code": snake_case, "message": string, "details": object}}`.
pub fn assert_error_shape(response: &TestResponse) {
    let error = &response.json["error"];
    let code = error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {} ({})", response.text, response.status));
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "code {code:?} is not snake_case"
    );
    assert!(
        error["message"].is_string(),
        "no message: {}",
        response.text
    );
    assert!(
        error["details"].is_object(),
        "no details: {}",
        response.text
    );
    let content_type = response
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Login {
    /// The bearer token.
    pub token: String,
    /// The user's id.
    pub user_id: String,
    /// The session's id.
    pub session_id: String,
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body, sent as is.
    pub body: Option<String>,
    /// The client address to report, as `ConnectInfo` would.
    pub client: Option<SocketAddr>,
}

impl Call {
    /// A request without body or headers.
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: None,
            client: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Adds the internal token header.
    pub fn internal(self, token: &str) -> Self {
        self.header("x-internal-token", token)
    }

    /// Sets a JSON body with its content type.
    pub fn json(self, body: &Value) -> Self {
        self.raw_json(body.to_string())
    }

    /// Sets a body sent as JSON, whatever it holds.
    pub fn raw_json(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self.header("content-type", "application/json")
    }

    /// Sets a body with no content type.
    pub fn raw_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Reports the request as coming from `client`.
    pub fn client(mut self, client: SocketAddr) -> Self {
        self.client = Some(client);
        self
    }
}

impl TestApp {
    /// The app with default options.
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    /// The app with `options`.
    pub fn with(options: Options) -> Self {
        let stores = InMemoryStores::new();
        let clock = Arc::new(ManualClock::at_fixed_start());
        let secrets: Arc<dyn SecretGenerator> = Arc::new(SeededSecretGenerator::new(7));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let auth = Arc::new(
            AuthService::new(
                AuthPorts {
                    users: stores.users.clone(),
                    challenges: stores.users.clone(),
                    sessions: stores.users.clone(),
                    mail: stores.mail.clone(),
                    clock: dyn_clock.clone(),
                    secrets: secrets.clone(),
                },
                options.auth,
            )
            .unwrap(),
        );
        let users = Arc::new(UserService::new(
            stores.users.clone(),
            auth.clone(),
            dyn_clock.clone(),
        ));
        let notifications = Arc::new(NotificationService::new(
            stores.notifications.clone(),
            stores.users.clone(),
            dyn_clock.clone(),
            secrets.clone(),
        ));
        let lobby = Arc::new(LobbyService::new(
            LobbyPorts {
                games: stores.lobby.clone(),
                applications: stores.lobby.clone(),
                race_names: stores.lobby.clone(),
                users: stores.users.clone(),
                jobs: stores.runtime.clone(),
                notifier: notifications.clone(),
                clock: dyn_clock.clone(),
                ids: secrets.clone(),
            },
            LobbyConfig::default(),
        ));
        let mail_admin = Arc::new(MailAdminService::new(
            stores.mail.clone(),
            dyn_clock.clone(),
        ));
        // No container runtime: a start fails, and routes are checked up to the engine.
        let runtime = Arc::new(RuntimeService::new(
            RuntimePorts {
                games: stores.lobby.clone(),
                applications: stores.lobby.clone(),
                users: stores.users.clone(),
                records: stores.runtime.clone(),
                jobs: stores.runtime.clone(),
                health: stores.runtime.clone(),
                archive: stores.play.clone(),
                orders: stores.play.clone(),
                pbem: stores.pbem.clone(),
                containers: Arc::new(galaxy_server::runtime::NoContainers),
                engine: Arc::new(galaxy_engine_http::HttpEngineClient::default()),
                notifier: notifications.clone(),
                clock: dyn_clock.clone(),
                ids: secrets.clone(),
                inbound: None,
            },
            RuntimeConfig::default(),
        ));
        let locator: Arc<dyn GeoLocator> = match &options.geoip_db {
            #[cfg(feature = "geoip")]
            Some(path) => Arc::new(MaxMindLocator::open(path).unwrap()),
            #[cfg(not(feature = "geoip"))]
            Some(path) => panic!("{} needs the geoip feature", path.display()),
            None => Arc::new(UnknownLocator),
        };
        let geo = Arc::new(GeoService::new(
            locator,
            stores.geo.clone(),
            dyn_clock.clone(),
            GeoConfig::default(),
        ));
        let countries = Arc::new(CountryUpdates::new(stores.users.clone(), dyn_clock.clone()));
        let readiness = Arc::new(Readiness::default());
        readiness.set_caches_warm();
        // Orders by e-mail on, for the domain `galaxy.test`.
        let mail_in = Arc::new(galaxy_core::service::mail_in::MailInService::new(
            galaxy_core::service::mail_in::MailInPorts {
                store: stores.mail_in.clone(),
                users: stores.users.clone(),
                mail: stores.mail.clone(),
                desk: runtime.clone(),
                clock: dyn_clock.clone(),
                secrets: secrets.clone(),
            },
            galaxy_core::service::mail_in::MailInConfig::new("galaxy.test"),
        ));
        let state = AppState {
            auth,
            users,
            lobby,
            runtime,
            mail_admin,
            notifications,
            mail_in: Some(mail_in),
            geo,
            countries,
            trusted_proxies: Arc::new(options.trusted_proxies),
            internal_token: options
                .internal_token
                .map(|t| Arc::new(SecretString::from(t.to_owned()))),
            readiness,
            clock: dyn_clock,
        };
        let limits = limits(Duration::from_secs(10));
        Self {
            socket: tokio::sync::OnceCell::new(),
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
            router: router(state.clone(), limits),
            stores,
            clock,
            state,
        }
    }

    /// The address the router is served on, serving it on first use.
    async fn address(&self) -> SocketAddr {
        *self
            .socket
            .get_or_init(|| async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let address = listener.local_addr().unwrap();
                let service = self
                    .router
                    .clone()
                    .into_make_service_with_connect_info::<SocketAddr>();
                tokio::spawn(async move { axum::serve(listener, service).await });
                address
            })
            .await
    }

    /// Sends `call` over the socket.
    async fn send_over_socket(&self, call: Call) -> TestResponse {
        let address = self.address().await;
        let mut builder = Request::builder()
            .method(call.method)
            .uri(format!("http://{address}{}", call.uri));
        for (name, value) in &call.headers {
            builder = builder.header(name, value);
        }
        let body =
            http_body_util::Full::new(axum::body::Bytes::from(call.body.unwrap_or_default()));
        let response = self
            .client
            .request(builder.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            text,
            json,
        }
    }

    /// Sends `call`: over the socket, or in-process when it pretends to come from another
    /// client address.
    pub async fn send(&self, call: Call) -> TestResponse {
        if call.client.is_none() {
            return self.send_over_socket(call).await;
        }
        let mut builder = Request::builder().method(call.method).uri(call.uri);
        for (name, value) in &call.headers {
            builder = builder.header(name, value);
        }
        let mut request = builder
            .body(call.body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        if let Some(client) = call.client {
            request.extensions_mut().insert(ConnectInfo(client));
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            text,
            json,
        }
    }

    /// `GET` with an optional bearer token.
    pub async fn get(&self, uri: &str, token: Option<&str>) -> TestResponse {
        let mut call = Call::new(Method::GET, uri);
        if let Some(token) = token {
            call = call.bearer(token);
        }
        self.send(call).await
    }

    /// A method with a JSON body (or none) and an optional bearer token.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut call = Call::new(method, uri);
        if let Some(token) = token {
            call = call.bearer(token);
        }
        if let Some(body) = body {
            call = call.json(&body);
        }
        self.send(call).await
    }

    /// The latest login code mailed to `email`, read from the outbox.
    pub async fn login_code(&self, email: &str) -> String {
        let page = self
            .stores
            .mail
            .list_mail(None, &PageRequest::first(200).unwrap())
            .await
            .unwrap();
        let mail = page
            .items
            .iter()
            .filter(|m| m.mail.to.as_str() == email && m.mail.kind == "login_code")
            .max_by_key(|m| m.created_at)
            .unwrap_or_else(|| panic!("no login code mail to {email}"));
        // The first run of six or more digits, in any language (the expiry's date comes
        // after it, in shorter runs).
        mail.mail
            .text_body
            .split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() >= 6)
            .unwrap_or_else(|| panic!("no code in {}", mail.mail.text_body))
            .to_owned()
    }

    /// Asks for a login code for `email`; returns the challenge id and the code.
    pub async fn challenge(&self, email: &str) -> (String, String) {
        let response = self
            .call(
                Method::POST,
                "/api/v1/public/auth/login-codes",
                None,
                Some(json!({ "email": email })),
            )
            .await;
        response.expect(202);
        let challenge = response.json["challenge_id"].as_str().unwrap().to_owned();
        (challenge, self.login_code(email).await)
    }

    /// Logs `email` in through the API.
    pub async fn login(&self, email: &str) -> Login {
        let (challenge_id, code) = self.challenge(email).await;
        let response = self
            .call(
                Method::POST,
                "/api/v1/public/auth/sessions",
                None,
                Some(json!({ "challenge_id": challenge_id, "code": code })),
            )
            .await;
        response.expect(201);
        Login {
            token: response.json["token"].as_str().unwrap().to_owned(),
            user_id: response.json["user"]["id"].as_str().unwrap().to_owned(),
            session_id: response.json["session_id"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a game hosted by `host`; returns its id.
    pub async fn create_game(&self, host: &Login, name: &str, min: u32, max: u32) -> String {
        let response = self
            .call(
                Method::POST,
                "/api/v1/user/games",
                Some(&host.token),
                Some(game_body(name, min, max)),
            )
            .await;
        response.expect(201);
        response.json["id"].as_str().unwrap().to_owned()
    }

    /// Applies to `game` as `player`; returns the application's id.
    pub async fn apply(&self, player: &Login, game: &str, race: &str) -> String {
        let uri = format!("/api/v1/user/games/{game}/applications");
        let response = self
            .call(
                Method::POST,
                &uri,
                Some(&player.token),
                Some(json!({ "race_name": race })),
            )
            .await;
        response.expect(201);
        response.json["id"].as_str().unwrap().to_owned()
    }

    /// `POST /user/games/{game}/{action}` as `caller`, expecting `status`.
    pub async fn game_action(
        &self,
        caller: &Login,
        game: &str,
        action: &str,
        status: u16,
    ) -> Value {
        let uri = format!("/api/v1/user/games/{game}/{action}");
        let response = self
            .call(Method::POST, &uri, Some(&caller.token), None)
            .await;
        response.expect(status);
        response.json
    }

    /// Everything the stores hold, to compare before and after a request that must change
    /// nothing. The in-memory stores print their whole state; a map nobody wrote to
    /// prints in the same order every time.
    pub fn snapshot(&self) -> String {
        format!("{:?}", self.stores)
    }
}

/// A valid create-game body.
pub fn game_body(name: &str, min: u32, max: u32) -> Value {
    json!({
        "name": name,
        "min_players": min,
        "max_players": max,
        "enrollment_deadline": "2030-02-01T00:00:00Z",
        "turn_schedule": "0 18 * * 1,3,5",
    })
}
