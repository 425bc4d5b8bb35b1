//! Logging in with an e-mailed code: the address form, then the one-step code form. The
//! service applies the API's rate limits (per address, per client IP).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::layout::{self, csrf_field};
use super::session::{Posted, Visitor, session_cookie};
use axum::extract::State;

/// `GET /login`.
pub async fn login_page(visitor: Visitor) -> Response {
    if visitor.user.is_some() {
        return Redirect::to("/my").into_response();
    }
    email_form(&visitor, None, StatusCode::OK)
}

/// The address form; after a refusal, the error and the address as typed.
fn email_form(visitor: &Visitor, refused: Option<(&str, &str)>, status: StatusCode) -> Response {
    let (error, typed) = refused.unzip();
    let text = visitor.lang.text();
    let body = html! {
        h1 { (text.login_title) }
        @if let Some(error) = error { (layout::alert(error)) }
        form.stack method="post" action="/login" {
            (csrf_field(visitor))
            label for="email" { (text.login_email) }
            input #email type="email" name="email" required autocomplete="email" autofocus value=[typed];
            p { button type="submit" { (text.login_send) } }
        }
    };
    (status, layout::page(visitor, text.login_title, body)).into_response()
}

fn code_form(visitor: &Visitor, challenge_id: &str, error: Option<&str>) -> Markup {
    let text = visitor.lang.text();
    html! {
        h1 { (text.login_title) }
        @match error {
            Some(error) => (layout::alert(error)),
            None => (layout::notice(text.login_sent)),
        }
        form.stack method="post" action="/login/code" {
            (csrf_field(visitor))
            input type="hidden" name="challenge_id" value=(challenge_id);
            label for="code" { (text.login_code) }
            input #code type="text" name="code" required inputmode="numeric"
                autocomplete="one-time-code" pattern="[0-9]{6,10}" autofocus;
            p { button type="submit" { (text.login_submit) } }
        }
        p { a #new-code href="/login" { (text.login_new_code) } }
    }
}

/// The address form.
#[derive(Debug, Deserialize)]
pub struct EmailForm {
    /// Where to send the code.
    email: String,
}

/// `POST /login`: asks the service for a code, then shows the code form.
pub async fn request_code(
    State(state): State<WebState>,
    Posted { visitor, form }: Posted<EmailForm>,
) -> Result<Response, WebError> {
    match state
        .app
        .auth
        .request_login_code(&form.email, visitor.ip)
        .await
    {
        Ok(issued) => {
            let body = code_form(&visitor, &issued.challenge_id.to_string(), None);
            Ok(layout::page(
                &visitor,
                visitor.lang.text().login_title,
                body,
            ))
        }
        Err(error) => {
            let error = WebError::from(error);
            let message = error.to_string();
            let refused = Some((message.as_str(), form.email.as_str()));
            Ok(email_form(&visitor, refused, error.status()))
        }
    }
}

/// The code form.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    /// The challenge the code answers.
    challenge_id: String,
    /// The code from the mail.
    code: String,
}

/// `POST /login/code`: exchanges the code for a session and stores its token in the
/// session cookie.
pub async fn submit_code(
    State(state): State<WebState>,
    Posted { visitor, form }: Posted<CodeForm>,
) -> Result<Response, WebError> {
    match state
        .app
        .auth
        .create_session(&form.challenge_id, form.code.trim(), visitor.ip)
        .await
    {
        Ok(session) => {
            let mut response = Redirect::to("/my").into_response();
            let lifetime = session.session.expires_at - state.app.clock.now();
            let cookie = session_cookie(
                &session.token.expose(),
                visitor.secure,
                lifetime.num_seconds(),
            )
            .ok_or(WebError::BadForm("unusable session token".to_owned()))?;
            response.headers_mut().append(header::SET_COOKIE, cookie);
            // The signed-out CSRF cookie has done its job.
            response.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static("galaxy_csrf=; Path=/; Max-Age=0"),
            );
            Ok(response)
        }
        Err(error) => {
            let error = WebError::from(error);
            let body = code_form(&visitor, &form.challenge_id, Some(&error.to_string()));
            let page = layout::page(&visitor, visitor.lang.text().login_title, body);
            Ok((error.status(), page).into_response())
        }
    }
}
