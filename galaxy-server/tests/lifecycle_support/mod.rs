//! Helpers for the lifecycle tests: a minimal HTTP/1.1 client over a plain TCP socket
//! (so a test can also send a request *slowly*, to keep it in flight across a shutdown),
//! configurations for dev mode, and polling.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response, read to the end (every request says `Connection: close`).
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// Body (chunked encoding undone).
    pub body: String,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The bytes of a request.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Sends one request and reads the whole response.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(&request_bytes(method, path, headers, body))
        .await?;
    read_response(&mut stream).await
}

/// `GET path`.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    send(addr, "GET", path, &[], "").await
}

/// Reads a response to the end of the stream.
pub async fn read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no complete response: {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head:?}")))?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `GET /readyz` answers 200.
pub async fn wait_ready(addr: SocketAddr, limit: Duration) {
    eventually(limit, "/readyz 200", || async move {
        match http_get(addr, "/readyz").await {
            Ok(r) if r.status == 200 => Some(()),
            _ => None,
        }
    })
    .await;
}

/// The `.eml` files in `dir` (none when it does not exist yet).
pub fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect()
}

/// Waits for the mail to `email` in `dir` and returns the login code in it.
pub async fn login_code_in(dir: &Path, email: &str) -> String {
    let dir = dir.to_owned();
    let email = email.to_owned();
    eventually(Duration::from_secs(15), "the login-code .eml", move || {
        let (dir, email) = (dir.clone(), email.clone());
        async move {
            eml_files(&dir).into_iter().find_map(|path| {
                let text = std::fs::read_to_string(path).ok()?;
                if !text.contains(&format!("To: {email}")) {
                    return None;
                }
                let line = text
                    .lines()
                    .find(|l| l.starts_with("Your Galaxy login code is "))?;
                Some(
                    line.trim_start_matches("Your Galaxy login code is ")
                        .trim()
                        .to_owned(),
                )
            })
        }
    })
    .await
}

/// The login-code request body for `email`.
pub fn login_code_body(email: &str) -> String {
    serde_json::json!({ "email": email }).to_string()
}

/// A free port on the loopback interface (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Logs `email` in through the API, reading the code from the `.eml` files in
/// `mail_dir`; returns the `Authorization` header value.
pub async fn log_in(addr: SocketAddr, mail_dir: &Path, email: &str) -> String {
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
    let code = login_code_in(mail_dir, email).await;
    let body = serde_json::json!({ "challenge_id": challenge, "code": code }).to_string();
    let session = send(addr, "POST", "/api/v1/public/auth/sessions", &[], &body)
        .await
        .unwrap();
    assert_eq!(session.status, 201, "{}", session.body);
    format!("Bearer {}", session.json()["token"].as_str().unwrap())
}
