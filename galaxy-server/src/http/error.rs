//! The API's one error shape (SPEC section 5):
//! `{"error": {"code": "snake_case", "message": "...", "details": {...}}}`.
//!
//! Every failure leaves through [`ApiError`]: service errors are classified by
//! [`ServiceError::kind`], axum's own rejections by the extractors in `extract.rs`, and
//! responses produced by layers (timeouts, oversized bodies, panics) are rewritten into
//! this shape by `layers.rs`. Messages never carry a login code or session token: service
//! errors are built not to, and rejections of client input never echo the input.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use galaxy_core::service::auth::AuthError;
use galaxy_core::service::lobby::LobbyError;
use galaxy_core::service::mail::MailAdminError;
use galaxy_core::service::notification::NotificationAdminError;
use galaxy_core::service::user::UserError;
use galaxy_core::service::{ErrorKind, ServiceError};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code: the class (`invalid_request`, `unauthenticated`,
    /// `forbidden`, `not_found`, `conflict`, `payload_too_large`, `validation`,
    /// `rate_limited`, `unavailable`, `internal`, `method_not_allowed`) or a more specific
    /// one (`race_name_taken`, `game_full`, `no_quorum`, ...).
    #[schema(example = "not_found")]
    pub code: String,
    /// A human-readable explanation; never contains a secret.
    #[schema(example = "game 0190... not found")]
    pub message: String,
    /// Structured context, e.g. `{"field": "race_name"}` or `{"retry_after_seconds": 30}`;
    /// an empty object when there is none.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    status: StatusCode,
    /// The snake_case code.
    code: &'static str,
    /// The message shown to the client.
    message: String,
    /// Structured context.
    details: Map<String, Value>,
    /// For 429: the `Retry-After` header.
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with an explicit status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422 `validation`.
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message).with_field(field)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this server accepts",
        )
    }

    /// A 500 whose cause is logged here, with its whole chain, and never shown.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %chain(cause), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    /// Adds `details.field`.
    pub fn with_field(self, field: &str) -> Self {
        self.with_detail("field", Value::from(field))
    }

    /// Adds one detail.
    pub fn with_detail(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_owned(), value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The snake_case code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message shown to the client (the web pages show it as the API would).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Classifies a service error: its kind gives the status, its code the code, its
    /// message the message, except for internal failures and unavailable dependencies,
    /// whose messages may describe infrastructure and are only logged.
    pub fn from_service<E: ServiceError + 'static>(error: &E) -> Self {
        let kind = error.kind();
        let status = status_of(kind);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // `Internal`, or a class this layer does not know yet: never shown.
            return Self::internal(error);
        }
        let mut api = match kind {
            // Nothing is down: another submission of the race's orders was in flight.
            ErrorKind::Unavailable if error.code() == "orders_busy" => {
                Self::new(status, "orders_busy", error.to_string())
            }
            // The code says which dependency (clients tell an engine outage from the
            // platform's own); the message stays generic.
            ErrorKind::Unavailable => {
                tracing::warn!(error = %chain(error), "dependency unavailable");
                let (code, message) = match error.code() {
                    "engine_unavailable" => (
                        "engine_unavailable",
                        "the game's engine is unavailable; retry later",
                    ),
                    "container_runtime_unavailable" => (
                        "container_runtime_unavailable",
                        "the container runtime is unavailable; retry later",
                    ),
                    _ => ("unavailable", "a dependency is unavailable; retry later"),
                };
                Self::new(status, code, message)
            }
            // A specific code must agree with the status; a service that lets a refused
            // input fall through to its catch-all `internal` code gets the class's code.
            _ => match error.code() {
                "internal" => Self::new(status, kind.code(), error.to_string()),
                code => Self::new(status, code, error.to_string()),
            },
        };
        if let Some(wait) = error.retry_after() {
            let seconds = wait.as_secs().max(1);
            api.retry_after = Some(Duration::from_secs(seconds));
            api = api.with_detail("retry_after_seconds", Value::from(seconds));
        }
        api
    }
}

/// The status of an error class.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        // `ErrorKind` is non-exhaustive: anything new is treated as a failure until the
        // API learns it.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error and every cause below it, `: `-separated, for logs.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(wait) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::from_service(&error)
    }
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        let api = Self::from_service(&error);
        match &error {
            UserError::InvalidField { field, .. } => api.with_field(field),
            UserError::InvalidEmail(_) => api.with_field("email"),
            UserError::BlockEndsInPast { .. } => api.with_field("until"),
            UserError::SearchTooLong => api.with_field("q"),
            _ => api,
        }
    }
}

impl From<LobbyError> for ApiError {
    fn from(error: LobbyError) -> Self {
        let api = Self::from_service(&error);
        match &error {
            LobbyError::Validation { field, .. } => api.with_field(field),
            _ => api,
        }
    }
}

impl From<MailAdminError> for ApiError {
    fn from(error: MailAdminError) -> Self {
        Self::from_service(&error)
    }
}

impl From<NotificationAdminError> for ApiError {
    fn from(error: NotificationAdminError) -> Self {
        Self::from_service(&error)
    }
}

/// The answer for a path no route matches: the JSON error; with the web pages, a page
/// for a browser (asking for HTML) outside `/api/`.
pub async fn route_not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    #[cfg(feature = "web")]
    {
        let wants_html = headers
            .get_all(axum::http::header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.contains("text/html"));
        if wants_html && !uri.path().starts_with("/api/") {
            return crate::web::not_found_page(&headers);
        }
    }
    #[cfg(not(feature = "web"))]
    let _ = (uri, headers);
    ApiError::not_found("no such route").into_response()
}

/// The answer for a known path called with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept this method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_core::ports::StoreError;
    use galaxy_core::service::auth::RateLimitScope;

    #[test]
    fn service_errors_keep_their_class_and_code() {
        let e = ApiError::from(LobbyError::GameFull);
        assert_eq!((e.status(), e.code()), (StatusCode::CONFLICT, "game_full"));
        let e = ApiError::from(AuthError::RateLimited {
            scope: RateLimitScope::Email,
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
        let e = ApiError::from(AuthError::Store(StoreError::unavailable(
            "db down at 10.0.0.9",
        )));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.message.contains("10.0.0.9"));
    }

    #[test]
    fn an_engine_or_container_outage_keeps_its_code_and_hides_its_cause() {
        use galaxy_core::ports::{ContainerError, EngineError};
        use galaxy_core::service::runtime::RuntimeError;
        let refused = EngineError::Refused("http://10.0.0.9:8080".into());
        let e = ApiError::from_service(&RuntimeError::Engine(refused));
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable")
        );
        assert!(!e.message.contains("10.0.0.9"), "{}", e.message);
        let down = ContainerError::Failed("/var/run/docker.sock: gone".into());
        let e = ApiError::from_service(&RuntimeError::Container(down));
        assert_eq!(
            (e.status(), e.code()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "container_runtime_unavailable"
            )
        );
        assert!(!e.message.contains("docker.sock"), "{}", e.message);
        let store = RuntimeError::Store(StoreError::unavailable("db at 10.0.0.9"));
        let e = ApiError::from_service(&store);
        assert_eq!(e.code(), "unavailable");
    }

    #[test]
    fn busy_orders_say_so_and_when_to_try_again() {
        use galaxy_core::service::runtime::RuntimeError;
        let e = ApiError::from_service(&RuntimeError::OrdersBusy);
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "orders_busy")
        );
        assert!(e.message.contains("in progress"), "{}", e.message);
        assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::from(UserError::Store(StoreError::internal("corrupt row 42")));
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        assert!(!e.message.contains("corrupt"));
    }

    #[test]
    fn chain_joins_causes() {
        let e = StoreError::internal("disk on fire");
        assert!(chain(&e).ends_with("disk on fire"));
    }
}
