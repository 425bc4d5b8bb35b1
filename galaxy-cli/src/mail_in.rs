//! `galaxy-cli mail-in`: hands one message from standard input to the server's intake of
//! orders by e-mail, for an MTA in front (`orders: "|galaxy-cli mail-in"` in Postfix's or
//! Exim's aliases). The exit status follows sendmail's `sysexits.h`, which MTAs act on:
//! 0 stored (or already stored), 65 `EX_DATAERR` for a message that can never be taken
//! (too large, not a message: the MTA bounces it), 75 `EX_TEMPFAIL` when the server
//! cannot take it now (unreachable, timed out, 5xx: the MTA keeps it and retries), and
//! 75 too for a set-up error (no URL or token, a token the server refuses, orders by
//! e-mail off), with the reason on standard error: MTAs keep a mail only on 75 (Postfix
//! counts 78 `EX_CONFIG` as a permanent failure and bounces it), so nothing is lost
//! while the operator fixes the set-up.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncReadExt;

/// `EX_DATAERR`: the input data was incorrect in some way.
pub const EX_DATAERR: u8 = 65;
/// `EX_TEMPFAIL`: temporary failure; the user is invited to retry.
pub const EX_TEMPFAIL: u8 = 75;

/// The most bytes read from standard input: anything longer is refused without sending
/// (no server bound is larger).
const MAX_INPUT: u64 = 16 * 1024 * 1024;

/// `galaxy-cli mail-in`.
#[derive(Debug, Args)]
pub struct MailInArgs {
    /// The server's HTTP API (`http://host:port`); no default, so a forgotten setting
    /// is an error rather than mail sent somewhere unexpected.
    #[arg(long, env = "GALAXY_URL")]
    url: Option<String>,
    /// The server's internal token (`GALAXY_INTERNAL_TOKEN`). On a command line every
    /// local user can read it: prefer `--token-file` in an MTA's pipe.
    #[arg(long, env = "GALAXY_INTERNAL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the internal token from this file (readable by the MTA's user only); wins
    /// over `GALAXY_INTERNAL_TOKEN`.
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
    /// The envelope sender (Postfix: `${sender}`; empty for a bounce).
    #[arg(long)]
    sender: Option<String>,
    /// The envelope recipient (Postfix: `${recipient}`).
    #[arg(long)]
    recipient: Option<String>,
    /// How long to wait for the server (`30s`, `2m`, `1m 30s`; a bare number is seconds;
    /// at least one second).
    #[arg(long, default_value = "30s", value_parser = duration)]
    timeout: Duration,
}

/// A duration as the server's settings write them, or a bare number of seconds (what
/// this option took first, so MTA pipes written then keep working); at least a second
/// (a zero timeout would fail every delivery, and would not mean "no timeout").
fn duration(value: &str) -> Result<Duration, String> {
    let parsed = match value.trim().parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(value).map_err(|error| error.to_string())?,
    };
    if parsed < Duration::from_secs(1) {
        return Err("at least 1s".to_owned());
    }
    Ok(parsed)
}

/// The intake's address on the server at `url`, with the envelope in its query; or why
/// `url` cannot be the server's HTTP API (mail-in speaks plain HTTP to a host, as an MTA
/// beside the server reaches its listener).
fn endpoint(url: &str, sender: Option<&str>, recipient: Option<&str>) -> Result<String, String> {
    let example = "e.g. http://127.0.0.1:8080";
    let mut endpoint = url::Url::parse(url)
        .map_err(|error| format!("GALAXY_URL (--url) {url:?} is not a URL ({error}); {example}"))?;
    match endpoint.scheme() {
        "http" if endpoint.has_host() => {}
        "https" => {
            return Err(format!(
                "GALAXY_URL (--url) {url:?}: mail-in speaks plain HTTP; point it at the \
                 server's own listener (GALAXY_HTTP_ADDR, {example})"
            ));
        }
        _ => {
            return Err(format!(
                "GALAXY_URL (--url) {url:?} needs http:// and a host; {example}"
            ));
        }
    }
    let path = format!(
        "{}/api/v1/internal/mail-in",
        endpoint.path().trim_end_matches('/')
    );
    endpoint.set_path(&path);
    let envelope = [("sender", sender), ("recipient", recipient)];
    for (name, value) in envelope {
        if let Some(value) = value {
            endpoint.query_pairs_mut().append_pair(name, value);
        }
    }
    Ok(endpoint.into())
}

/// Runs the command; the exit status and a line for standard error when it failed.
/// `config` is galaxy-cli's `--config`, where the internal token is read when no flag,
/// file or variable gives it.
pub async fn run(args: MailInArgs, config: Option<&Path>) -> (u8, Option<String>) {
    let Some(url) = args.url.clone() else {
        return (
            EX_TEMPFAIL,
            Some("GALAXY_URL (or --url) must be set".into()),
        );
    };
    let endpoint = match endpoint(&url, args.sender.as_deref(), args.recipient.as_deref()) {
        Ok(endpoint) => endpoint,
        Err(why) => return (EX_TEMPFAIL, Some(why)),
    };
    let configured = match (&args.token, &args.token_file) {
        (None, None) => match crate::internal_token::configured(config) {
            Ok(token) => token,
            Err(error) => return (EX_TEMPFAIL, Some(format!("{error:#}"))),
        },
        _ => None,
    };
    let token = args.token.as_deref().or(configured.as_deref());
    let token = match crate::internal_token::internal_token(token, args.token_file.as_deref()) {
        Ok(token) => token,
        Err(error) => return (EX_TEMPFAIL, Some(format!("{error:#}"))),
    };
    let mut raw = Vec::new();
    let read = tokio::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut raw)
        .await;
    if let Err(error) = read {
        return (
            EX_TEMPFAIL,
            Some(format!("cannot read the message: {error}")),
        );
    }
    if raw.len() as u64 > MAX_INPUT {
        return (
            EX_DATAERR,
            Some(format!("the message is over {MAX_INPUT} bytes")),
        );
    }
    match tokio::time::timeout(args.timeout, post(&endpoint, &token, raw)).await {
        Err(_) => (
            EX_TEMPFAIL,
            Some(format!(
                "the server did not answer within {:?}",
                args.timeout
            )),
        ),
        Ok(Err(error)) => (
            EX_TEMPFAIL,
            Some(format!("cannot reach the server: {error:#}")),
        ),
        Ok(Ok((status, body))) => verdict(status, &body),
    }
}

/// The exit status of the server's answer. Only the intake's own answers count: its
/// receipt (202 with the stored message's id) takes the mail off the MTA's hands, and
/// only its own refusals (an error body with a code) bounce it; anything else (a proxy's
/// page, a wrong `--url` answering 200 to every POST) keeps the mail queued, since
/// nothing says Galaxy has it.
fn verdict(status: u16, body: &str) -> (u8, Option<String>) {
    let said = || format!("the server answered {status}: {}", body.trim());
    let answer = serde_json::from_str::<serde_json::Value>(body).ok();
    let receipt = answer.as_ref().is_some_and(|a| a["id"].is_string());
    let refusal = answer
        .as_ref()
        .is_some_and(|a| a["error"]["code"].is_string());
    match status {
        202 if receipt => (0, None),
        200..=299 => (
            EX_TEMPFAIL,
            Some(format!(
                "{}: not the mail intake's receipt; is --url Galaxy's server?",
                said()
            )),
        ),
        // Never to be taken: too large (the transport's 413, the service's 422) or not
        // a message.
        413 => (EX_DATAERR, Some(said())),
        400 | 422 if refusal => (EX_DATAERR, Some(said())),
        // A wrong token, or orders by e-mail off: the operator's to fix; the mail is kept
        // (queued) meanwhile.
        401 | 403 | 404 => (EX_TEMPFAIL, Some(said())),
        _ => (EX_TEMPFAIL, Some(said())),
    }
}

/// Posts the message to the intake at `endpoint`; the status and body text.
async fn post(endpoint: &str, token: &SecretString, raw: Vec<u8>) -> anyhow::Result<(u16, String)> {
    let request = hyper::Request::post(endpoint)
        .header("content-type", "message/rfc822")
        .header("x-internal-token", token.expose_secret())
        .body(Full::new(Bytes::from(raw)))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((
        status,
        String::from_utf8_lossy(&body).chars().take(500).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_sysexits() {
        let receipt = r#"{"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","duplicate":false}"#;
        assert_eq!(verdict(202, receipt).0, 0);
        let refused = r#"{"error":{"code":"message_too_large","message":"too large"}}"#;
        assert_eq!(verdict(422, refused).0, EX_DATAERR);
        assert_eq!(verdict(413, "").0, EX_DATAERR);
        let unreadable = r#"{"error":{"code":"message_unreadable","message":"empty"}}"#;
        assert_eq!(verdict(400, unreadable).0, EX_DATAERR);
        // Not the intake's answers: a wrong --url, a proxy's pages. The mail stays queued.
        assert_eq!(verdict(202, "").0, EX_TEMPFAIL);
        assert_eq!(verdict(200, "<html>welcome</html>").0, EX_TEMPFAIL);
        assert_eq!(verdict(200, receipt).0, EX_TEMPFAIL);
        assert_eq!(verdict(400, "<html>Bad Request</html>").0, EX_TEMPFAIL);
        assert_eq!(verdict(422, "").0, EX_TEMPFAIL);
        assert_eq!(verdict(401, "").0, EX_TEMPFAIL);
        assert_eq!(verdict(404, "").0, EX_TEMPFAIL);
        assert_eq!(verdict(503, "").0, EX_TEMPFAIL);
        assert_eq!(verdict(500, "").0, EX_TEMPFAIL);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn only_a_plain_http_url_with_a_host_is_used() {
        assert_eq!(
            endpoint(
                "http://127.0.0.1:8080",
                Some("a+b@x.org"),
                Some("orders@galaxy.test")
            ),
            Ok("http://127.0.0.1:8080/api/v1/internal/mail-in\
                ?sender=a%2Bb%40x.org&recipient=orders%40galaxy.test"
                .to_owned())
        );
        assert_eq!(
            endpoint("http://galaxy.internal/prefix/", None, Some("")),
            Ok("http://galaxy.internal/prefix/api/v1/internal/mail-in?recipient=".to_owned())
        );
        for (url, says) in [
            ("127.0.0.1:8080", "not a URL"),
            ("localhost:8080", "needs http://"),
            ("https://galaxy.example", "plain HTTP"),
            ("ftp://x", "needs http://"),
            ("http://", "not a URL"),
            ("not a url", "not a URL"),
        ] {
            let why = endpoint(url, None, None).unwrap_err();
            assert!(why.contains(says), "{url}: {why}");
        }
    }
}
