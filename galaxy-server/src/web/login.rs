//! Logging in with an e-mailed code: the address form, then the one-step code form. The
//! service applies the API's rate limits (per address, per client IP). A visitor sent
//! to log in from a page goes back to it afterwards (`next`, see [`return_here`]).

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::layout::{self, csrf_field};
use super::session::{Posted, Visitor, session_cookie};

/// Where a login goes when it was not sent from a page.
const HOME: &str = "/my";

/// The longest page address a login takes back to.
const MAX_NEXT: usize = 1024;

/// Whether `next` is a page of this site to go back to after the login: a path (never
/// `//host` or `/\host`, which browsers take for another site), without control
/// characters, not the login pages themselves.
fn safe_next(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= MAX_NEXT
        && !next.chars().any(char::is_control)
        && !next.starts_with("/login")
        && !next.starts_with("/logout")
}

/// The page a login goes to: `next` when it is safe, else "my games".
fn destination(next: Option<&str>) -> &str {
    next.filter(|n| safe_next(n)).unwrap_or(HOME)
}

/// The address of the login page that comes back to `page` afterwards (a page anyone
/// may see, such as a game's, links to it from its header); plain `/login` for "my
/// games" and anything [`safe_next`] refuses.
pub fn login_link(page: &str) -> String {
    if page == HOME || !safe_next(page) {
        return "/login".to_owned();
    }
    let query = serde_urlencoded::to_string([("next", page)]).unwrap_or_default();
    format!("/login?{query}")
}

/// A page that sends a signed-out visitor (or one whose session lapsed) to `/login`
/// says where they were, `/login?next=<page>`, and the login takes them back there
/// instead of to "my games": a link from a turn mail lands on its game. After a form's
/// post it is the page the form is on (the post is not repeated: what was typed left
/// with the request).
pub async fn return_here(request: Request, next: Next) -> Response {
    let here = match *request.method() {
        Method::GET | Method::HEAD => request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        ),
        _ => super::form_page(request.uri().path()),
    };
    let mut response = next.run(request).await;
    let to_login = response.status() == StatusCode::SEE_OTHER
        && response.headers().get(header::LOCATION) == Some(&HeaderValue::from_static("/login"));
    if !to_login {
        return response;
    }
    if let Ok(location) = HeaderValue::from_str(&login_link(&here)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `GET /login`'s query.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// The page to go back to after the login.
    #[serde(default)]
    next: Option<String>,
}

/// `GET /login`.
pub async fn login_page(visitor: Visitor, Query(query): Query<LoginQuery>) -> Response {
    let next = query.next.as_deref().filter(|n| safe_next(n));
    if visitor.user.is_some() {
        return Redirect::to(destination(next)).into_response();
    }
    email_form(&visitor, None, next, StatusCode::OK)
}

/// The hidden field that carries the page to go back to through the two forms.
fn next_field(next: Option<&str>) -> Markup {
    html! {
        @if let Some(next) = next.filter(|n| safe_next(n)) {
            input type="hidden" name="next" value=(next);
        }
    }
}

/// The address form; after a refusal, the error and the address as typed.
fn email_form(
    visitor: &Visitor,
    refused: Option<(&str, &str)>,
    next: Option<&str>,
    status: StatusCode,
) -> Response {
    let (error, typed) = refused.unzip();
    let text = visitor.lang.text();
    let body = html! {
        h1 { (text.login_title) }
        @if let Some(error) = error { (layout::alert(error)) }
        form.stack method="post" action="/login" {
            (csrf_field(visitor))
            (next_field(next))
            label for="email" { (text.login_email) }
            input #email type="email" name="email" required autocomplete="email" autofocus value=[typed];
            p { button type="submit" { (text.login_send) } }
        }
    };
    (status, layout::page(visitor, text.login_title, body)).into_response()
}

fn code_form(
    visitor: &Visitor,
    challenge_id: &str,
    next: Option<&str>,
    error: Option<&str>,
) -> Markup {
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
            (next_field(next))
            label for="code" { (text.login_code) }
            // No `pattern`: a code pasted with a space or a hyphen in it (or a trailing
            // space) is one the server takes (`LoginCode::parse`), not for the browser to
            // refuse.
            input #code type="text" name="code" required inputmode="numeric"
                autocomplete="one-time-code" maxlength="32" autofocus;
            p { button type="submit" { (text.login_submit) } }
        }
        p { a #new-code href=(login_link(next.unwrap_or(HOME))) { (text.login_new_code) } }
    }
}

/// The address form.
#[derive(Debug, Deserialize)]
pub struct EmailForm {
    /// Where to send the code.
    email: String,
    /// The page to go back to after the login.
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: asks the service for a code, then shows the code form.
pub async fn request_code(
    State(state): State<WebState>,
    Posted { visitor, form }: Posted<EmailForm>,
) -> Result<Response, WebError> {
    match state
        .app
        .auth
        .request_login_code_in(&form.email, visitor.ip, Some(&visitor.lang.locale()))
        .await
    {
        Ok(issued) => {
            let challenge = issued.challenge_id.to_string();
            let body = code_form(&visitor, &challenge, form.next.as_deref(), None);
            Ok(layout::page(
                &visitor,
                visitor.lang.text().login_title,
                body,
            ))
        }
        Err(error) => {
            let error = WebError::from(error);
            let message = error.told(visitor.lang);
            let refused = Some((message.as_str(), form.email.as_str()));
            let next = form.next.as_deref();
            Ok(email_form(&visitor, refused, next, error.status()))
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
    /// The page to go back to after the login.
    #[serde(default)]
    next: Option<String>,
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
        .create_session_in(
            &form.challenge_id,
            form.code.trim(),
            visitor.ip,
            Some(&visitor.lang.locale()),
        )
        .await
    {
        Ok(session) => {
            let to = destination(form.next.as_deref());
            let mut response = Redirect::to(to).into_response();
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
            let (next, message) = (form.next.as_deref(), error.told(visitor.lang));
            let body = code_form(&visitor, &form.challenge_id, next, Some(&message));
            let page = layout::page(&visitor, visitor.lang.text().login_title, body);
            Ok((error.status(), page).into_response())
        }
    }
}
