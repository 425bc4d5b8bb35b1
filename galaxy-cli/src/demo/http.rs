//! A small JSON-over-HTTP client for the demo, and the passwordless login through the
//! dev server's `.eml` files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// How long one API call may take (a forced turn runs the engine).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the login-code mail may take to appear.
const MAIL_TIMEOUT: Duration = Duration::from_secs(30);
/// The line of a login mail that carries the code.
const CODE_PREFIX: &str = "Your Galaxy login code is ";

/// The server's HTTP API at one base URL.
#[derive(Clone)]
pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// One signed-in caller of the API.
#[derive(Clone)]
pub struct Caller {
    api: Api,
    auth: Option<String>,
    /// The account's e-mail address.
    pub email: String,
}

impl Api {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// Sends one request; returns the status and the JSON body (its text, cut at 500
    /// characters, when not JSON).
    async fn call(
        &self,
        auth: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let uri = format!("{}{path}", self.base);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(&uri)
            .header("accept", "application/json");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let payload = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .with_context(|| format!("{method} {uri}"))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .with_context(|| format!("{method} {uri}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .with_context(|| format!("{method} {uri}: reading the body"))?
                .to_bytes();
            Ok::<_, anyhow::Error>((
                status,
                // A body that is not JSON (a proxy's error page) is shown as its text.
                serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&bytes).chars().take(500).collect())
                }),
            ))
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("{method} {uri}: no answer within {CALL_TIMEOUT:?}"))?
    }

    /// Whether `GET /readyz` answers 200; if not, what it answered (or why it could not
    /// be asked: a URL without `http://`, nothing listening).
    pub async fn ready(&self) -> anyhow::Result<()> {
        match self.call(None, "GET", "/readyz", None).await? {
            (200, _) => Ok(()),
            (status, body) => Err(anyhow!("GET /readyz answered {status}: {body}")),
        }
    }

    /// Logs `email` in: asks for a code, reads it from the newest mail to `email` in
    /// `mail_dir` (only mail that appeared after the request), exchanges it for a session.
    pub async fn log_in(&self, mail_dir: &Path, email: &str) -> anyhow::Result<Caller> {
        let before: HashSet<PathBuf> = eml_files(mail_dir).into_iter().collect();
        let issued = expect(
            self.call(
                None,
                "POST",
                "/api/v1/public/auth/login-codes",
                Some(&json!({ "email": email })),
            )
            .await?,
            202,
            "asking for a login code",
        )?;
        let challenge = issued["challenge_id"]
            .as_str()
            .with_context(|| format!("no challenge_id in {issued}"))?
            .to_owned();
        let code = wait_for_code(mail_dir, email, &before).await?;
        let session = expect(
            self.call(
                None,
                "POST",
                "/api/v1/public/auth/sessions",
                Some(&json!({ "challenge_id": challenge, "code": code })),
            )
            .await?,
            201,
            "exchanging the login code",
        )?;
        let token = session["token"]
            .as_str()
            .with_context(|| format!("no token in the session of {email}"))?;
        Ok(Caller {
            api: self.clone(),
            auth: Some(format!("Bearer {token}")),
            email: email.to_owned(),
        })
    }
}

impl Caller {
    /// Sends one request as this caller; returns the status and the JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        self.api
            .call(self.auth.as_deref(), method, path, body)
            .await
    }

    /// Sends one request and requires `status`; returns the JSON body.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        status: u16,
    ) -> anyhow::Result<Value> {
        let what = format!("{method} {path} as {}", self.email);
        expect(self.call(method, path, body).await?, status, &what)
    }
}

/// The body when the status is `status`, else an error naming `what` and the answer.
fn expect((got, body): (u16, Value), status: u16, what: &str) -> anyhow::Result<Value> {
    if got == status {
        Ok(body)
    } else {
        Err(anyhow!("{what}: expected {status}, got {got}: {body}"))
    }
}

/// The `.eml` files in `dir` (none when it does not exist yet).
fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect()
}

/// The login code of a mail to `email` in `dir` that is not in `before`.
async fn wait_for_code(
    dir: &Path,
    email: &str,
    before: &HashSet<PathBuf>,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let recipient = format!("To: {email}");
    loop {
        let found = eml_files(dir)
            .into_iter()
            .filter(|path| !before.contains(path))
            .find_map(|path| {
                let text = std::fs::read_to_string(path).ok()?;
                if !text.contains(&recipient) {
                    return None;
                }
                let line = text.lines().find(|l| l.starts_with(CODE_PREFIX))?;
                Some(line.trim_start_matches(CODE_PREFIX).trim().to_owned())
            });
        if let Some(code) = found {
            return Ok(code);
        }
        if started.elapsed() > MAIL_TIMEOUT {
            return Err(anyhow!(
                "no login-code mail to {email} appeared in {} within {MAIL_TIMEOUT:?}",
                dir.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
