//! The stylesheet and the one script, compiled into the binary: no Node, no bundler.
//!
//! The pages link them under their content's version (`/static/app.js?v=<hash>`), which a
//! browser may keep for a year: a new build's pages name a new version, so nobody runs
//! last release's script against this release's pages after an upgrade. An address
//! without the current version (a page from before the upgrade, a hand-typed one) is
//! served fresh each time.

use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::WebError;

/// The stylesheet: readable at 360 px wide, visible focus for keyboard users.
const APP_CSS: &str = include_str!("assets/app.css");
/// The script: local times and countdowns, live updates by Server-Sent Events.
const APP_JS: &str = include_str!("assets/app.js");

/// One asset as the pages link it.
struct Asset {
    /// The file's content.
    body: &'static str,
    /// Its `Content-Type`.
    kind: &'static str,
    /// The first 16 hex digits of its SHA-256: the version in its address.
    version: String,
    /// Its address with the version (`/static/app.css?v=...`).
    url: String,
}

impl Asset {
    fn new(file: &str, body: &'static str, kind: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let version: String = digest
            .iter()
            .take(8)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let url = format!("/static/{file}?v={version}");
        Self {
            body,
            kind,
            version,
            url,
        }
    }
}

static CSS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("app.css", APP_CSS, "text/css; charset=utf-8"));
static JS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("app.js", APP_JS, "text/javascript; charset=utf-8"));

/// The stylesheet's address, with its version: what the pages link.
pub fn css_url() -> &'static str {
    &CSS.url
}

/// The script's address, with its version: what the pages link.
pub fn js_url() -> &'static str {
    &JS.url
}

/// The query of an asset's address.
#[derive(Debug, Deserialize)]
pub struct AssetQuery {
    /// The version the page linked.
    v: Option<String>,
}

/// `GET /static/{file}`: kept a year when asked for under its current version, else
/// revalidated on every use.
pub async fn serve(
    Path(file): Path<String>,
    Query(query): Query<AssetQuery>,
) -> Result<Response, WebError> {
    let asset: &Asset = match file.as_str() {
        "app.css" => &CSS,
        "app.js" => &JS,
        _ => return Err(WebError::NotFound),
    };
    let cache = if query.v.as_deref() == Some(asset.version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}
