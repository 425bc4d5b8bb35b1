//! How a page fails: a redirect to the login page, a refused form, or a service's
//! refusal shown with the API's own status and message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout;
use super::session::cleared_session_cookie;
use crate::http::error::ApiError;

/// A page that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The page needs a signed-in user: answered with a redirect to `/login`.
    #[error("sign in first")]
    SignIn,
    /// A form was posted with a session that ended since its page was loaded: answered
    /// with a redirect to `/login` that also removes the dead session cookie (`secure`:
    /// the cookie's `Secure` flag, as it was set).
    #[error("your session ended; sign in again")]
    SessionLapsed {
        /// Whether the request came over TLS.
        secure: bool,
    },
    /// The page needs the admin role.
    #[error("this page needs the admin role")]
    Forbidden,
    /// The form's CSRF token is missing or wrong.
    #[error("the form is stale or was not sent from this site; reload the page and try again")]
    Csrf,
    /// The form could not be read.
    #[error("the form could not be read: {0}")]
    BadForm(String),
    /// No such page (or thing on it).
    #[error("not found")]
    NotFound,
    /// What a service answered, as the API would.
    #[error("{}", .0.message())]
    Api(ApiError),
}

/// Every service error becomes the API's error first, so a page says what the API says.
macro_rules! from_service_error {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for WebError {
            fn from(error: $error) -> Self {
                Self::Api(ApiError::from(error))
            }
        }
    )*};
}

from_service_error!(
    ApiError,
    galaxy_core::service::auth::AuthError,
    galaxy_core::service::user::UserError,
    galaxy_core::service::lobby::LobbyError,
    galaxy_core::service::runtime::RuntimeError,
    galaxy_core::service::mail::MailAdminError,
    galaxy_core::service::notification::NotificationAdminError,
    galaxy_core::service::mail_in::MailInError,
);

impl WebError {
    /// The HTTP status the page answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SignIn | Self::SessionLapsed { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadForm(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Api(error) => error.status(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Self::SignIn | Self::SessionLapsed { .. } = self {
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            headers.insert(header::LOCATION, HeaderValue::from_static("/login"));
            if let Self::SessionLapsed { secure } = self {
                headers.insert(header::SET_COOKIE, cleared_session_cookie(secure));
            }
            return response;
        }
        let status = self.status();
        let message = self.to_string();
        let body = layout::bare(
            &format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.error role="alert" { (message) }
                p { a href="/" { "Galaxy" } }
            },
        );
        (status, body).into_response()
    }
}
