//! What wraps every route: a tracing span and metrics per request, the body limit, the
//! request timeout, panic containment, and the rewrite of any error response a layer
//! produced (413, 503, 500) into the API's JSON shape.

use std::any::Any;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use super::HttpLimits;
use super::error::ApiError;
use crate::state::AppState;

/// The `route` label of requests no route matched, so metrics keep a bounded set of
/// labels whatever paths clients try.
const UNMATCHED: &str = "unmatched";

/// Wraps `router`'s routes (and fallbacks) in the API's layers. The last layer added is
/// the outermost, so the telemetry sees the final status of every request.
pub(super) fn apply(router: Router<AppState>, limits: HttpLimits) -> Router<AppState> {
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::map_response(json_error_shape))
        .layer(middleware::from_fn(telemetry))
}

/// Bounds one route's request body at `limit` bytes (413 above, rewritten into the API's
/// JSON shape like every layer error). Set per route, because the orders route takes
/// larger bodies than the rest.
pub(super) fn body_limit(
    handler: axum::routing::MethodRouter<AppState>,
    limit: usize,
) -> axum::routing::MethodRouter<AppState> {
    handler
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(limit))
        .layer::<_, std::convert::Infallible>(RequestBodyLimitLayer::new(limit))
}

/// One span per request carrying method, matched route and status; one counter and one
/// latency histogram per (method, route). Outermost on the API's routes and the web
/// pages' alike, so it sees every request's final status.
pub(crate) async fn telemetry(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .filter(|path| !path.contains("__private__axum_fallback"))
        .unwrap_or(UNMATCHED)
        .to_owned();
    let span = tracing::info_span!(
        "http_request",
        method,
        route = %route,
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.record("status", status);
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request served"
        );
    });
    metrics::counter!(
        crate::metering::HTTP_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(
        crate::metering::HTTP_REQUEST_DURATION,
        "method" => method,
        "route" => route,
    )
    .record(elapsed.as_secs_f64());
    response
}

/// The method as a label from a fixed set (clients can send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Gives error responses that did not come from [`ApiError`] (a layer's 413 or 503, a
/// default 405) the API's JSON shape, keeping their status and headers. A page (HTML,
/// the not-found page a browser gets from the fallback) stays a page.
async fn json_error_shape(response: Response) -> Response {
    shape_error(response, IntoResponse::into_response)
}

/// Gives an error response that is neither JSON nor a page (a layer's 413 or 503,
/// axum's plain-text rejection of a query, an empty body) the shape `render` makes of
/// the [`ApiError`] for its status, keeping its status and headers: the API answers JSON
/// and the web pages a page, whatever part of the stack refused the request.
pub(crate) fn shape_error(
    response: Response,
    render: impl FnOnce(ApiError) -> Response,
) -> Response {
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let shaped = content_type
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || shaped {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let mut shaped = render(error_for_status(status));
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in shaped.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    *shaped.headers_mut() = parts.headers;
    shaped
}

/// The API error for a bare status.
fn error_for_status(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("invalid_request", "the request is malformed"),
        StatusCode::UNAUTHORIZED => ("unauthenticated", "credentials are missing or invalid"),
        StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept this method",
        ),
        StatusCode::CONFLICT => ("conflict", "the state does not allow this"),
        StatusCode::PAYLOAD_TOO_LARGE => return ApiError::payload_too_large(),
        StatusCode::UNPROCESSABLE_ENTITY => ("validation", "the request is invalid"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the request took too long or the server is busy; retry later",
            );
        }
        s if s.is_client_error() => ("invalid_request", "the request was refused"),
        _ => ("internal", "an internal error occurred"),
    };
    ApiError::new(status, code, message)
}

/// A panicking handler becomes a logged 500; the process keeps serving.
fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    panicked(payload).into_response()
}

/// Logs a handler's panic and gives the error to answer it with (the API's JSON, or a
/// page on the web's routes).
pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>) -> ApiError {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = %detail, "request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an internal error occurred; it has been logged",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use std::time::Duration;
    use tower::ServiceExt;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn boom() -> &'static str {
        panic!("boom")
    }

    fn app(limits: HttpLimits) -> Router {
        let router: Router<()> = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "late"
                }),
            )
            .route("/panic", get(boom))
            .route(
                "/echo",
                axum::routing::post(|body: String| async move { body }),
            );
        // Same layers as the API, on a stateless router.
        router
            .layer(DefaultBodyLimit::max(limits.body_limit))
            .layer(RequestBodyLimitLayer::new(limits.body_limit))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                limits.request_timeout,
            ))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(middleware::map_response(json_error_shape))
            .layer(middleware::from_fn(telemetry))
    }

    const LIMITS: HttpLimits = HttpLimits {
        body_limit: 16,
        orders_body_limit: 16,
        mail_in_body_limit: 16,
        request_timeout: Duration::from_secs(5),
        streams_per_user: 1,
        streams_total: 1,
        stream_mark_every: Duration::from_secs(20),
    };

    #[tokio::test(start_paused = true)]
    async fn a_slow_request_times_out_with_503_in_the_json_shape() {
        let request = Request::get("/slow").body(Body::empty()).unwrap();
        let response = app(LIMITS).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_json(response).await["error"]["code"], "unavailable");
    }

    #[tokio::test]
    async fn a_panic_is_a_500_in_the_json_shape() {
        let request = Request::get("/panic").body(Body::empty()).unwrap();
        let response = app(LIMITS).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("boom"));
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_413_in_the_json_shape() {
        let request = Request::post("/echo")
            .body(Body::from("x".repeat(17)))
            .unwrap();
        let response = app(LIMITS).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body_json(response).await["error"]["code"],
            "payload_too_large"
        );
    }
}
