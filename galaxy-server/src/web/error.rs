//! How a page fails: a redirect to the login page, a refused form, or a service's
//! refusal shown with the API's own status and message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::i18n::Lang;
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

/// A page size or cursor a page asked for that the store refuses: the request's own fault
/// (a cursor typed into the address), told as the API tells it.
impl From<galaxy_core::domain::page::InvalidPageSize> for WebError {
    fn from(error: galaxy_core::domain::page::InvalidPageSize) -> Self {
        Self::Api(ApiError::invalid_request(error.to_string()))
    }
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
    /// The error's code: the API's for a service's refusal, the pages' own otherwise (a
    /// page tells it in its language by this code).
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignIn | Self::SessionLapsed { .. } => "unauthenticated",
            Self::Forbidden => "admin_only",
            Self::Csrf => "csrf",
            Self::BadForm(_) => "invalid_request",
            Self::NotFound => "not_found",
            Self::Api(error) => error.code(),
        }
    }

    /// What a page in `lang` says of this error (beside a form, or as the page).
    pub fn told(&self, lang: Lang) -> String {
        lang.error(self.code(), &self.to_string())
    }

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
        let (status, code, message) = (self.status(), self.code(), self.to_string());
        let body = layout::error_page(Lang::En, status, &Lang::En.error(code, &message), None);
        let mut response = (status, body).into_response();
        response
            .extensions_mut()
            .insert(ErrorPage { code, message });
        response
    }
}

/// What an error page says, kept with its response so that the pages' outer layer can
/// tell it again in the visitor's language ([`super::localized_error_pages`]).
#[derive(Debug, Clone)]
pub struct ErrorPage {
    /// The error's code (the API's, or the pages' own: `csrf`, `admin_only`).
    pub code: &'static str,
    /// The service's (English) message.
    pub message: String,
}
