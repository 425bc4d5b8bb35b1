//! The stylesheet and the one script, compiled into the binary: no Node, no bundler.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::WebError;

/// The stylesheet: readable at 360 px wide, visible focus for keyboard users.
const APP_CSS: &str = include_str!("assets/app.css");
/// The script: local times and countdowns, live updates by Server-Sent Events.
const APP_JS: &str = include_str!("assets/app.js");

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Result<Response, WebError> {
    let (body, kind) = match file.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return Err(WebError::NotFound),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
