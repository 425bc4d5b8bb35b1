//! The frame of every page (landmarks, navigation, skip link) and the small pieces many
//! pages share: the CSRF field, times that the browser shows in the viewer's time zone.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use galaxy_core::domain::Timestamp;
use maud::{DOCTYPE, Markup, html};

use super::i18n::Lang;
use super::session::{CSRF_FIELD, Visitor};

/// A whole page for `visitor`: the frame around `body`, the signed-out CSRF cookie set
/// when the visitor had none.
pub fn page(visitor: &Visitor, title: &str, body: Markup) -> Response {
    let text = visitor.lang.text();
    let user = visitor.user.as_ref();
    let markup = html! {
        (DOCTYPE)
        html lang=(visitor.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Galaxy" }
                link rel="stylesheet" href=(super::assets::css_url());
                script src=(super::assets::js_url()) defer {}
            }
            body {
                a.skip href="#main" { (text.skip) }
                header {
                    nav aria-label="Galaxy" {
                        a.brand href="/" { "Galaxy" }
                        a href="/" { (text.nav_lobby) }
                        @if let Some(user) = user {
                            a href="/my" { (text.nav_my) }
                            a href="/games/new" { (text.nav_new) }
                            a href="/account" { (text.nav_account) }
                            @if user.actor.is_admin {
                                a href="/admin/users" { (text.nav_admin) }
                            }
                            form.inline method="post" action="/logout" {
                                (csrf_field(visitor))
                                button type="submit" { (text.nav_logout) }
                            }
                        } @else {
                            a href=(super::login::login_link(&visitor.page)) { (text.nav_login) }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
                footer { p { "Galaxy · " (user.map(|u| u.user.display_name.as_str()).unwrap_or("")) } }
            }
        }
    };
    let mut response = Html(markup.into_string()).into_response();
    if let Some(cookie) = visitor.csrf_cookie_header() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// An error page in `lang`: the site's frame (the brand, the lobby and "my games"; no
/// navigation of its own for the visitor, who may not be known when a page fails)
/// around the status and what went wrong; with `login`, a link to log in and come back
/// to that page (for a signed-out visitor, to whom a draft or a private game is "not
/// found" until they sign in).
pub fn error_page(
    lang: Lang,
    status: StatusCode,
    message: &str,
    login: Option<&str>,
) -> Html<String> {
    let text = lang.text();
    let title = lang.status_title(status);
    Html(
        html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · Galaxy" }
                    link rel="stylesheet" href=(super::assets::css_url());
                }
                body {
                    a.skip href="#main" { (text.skip) }
                    header {
                        nav aria-label="Galaxy" {
                            a.brand href="/" { "Galaxy" }
                            a href="/" { (text.nav_lobby) }
                            a href="/my" { (text.nav_my) }
                        }
                    }
                    main #main tabindex="-1" {
                        h1 { (title) }
                        p.error role="alert" { (message) }
                        @if let Some(page) = login {
                            p { a #error-login href=(super::login::login_link(page)) { (text.nav_login) } }
                        }
                        p { a href="/" { (text.nav_lobby) } }
                    }
                }
            }
        }
        .into_string(),
    )
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(visitor.csrf); }
}

/// A form that is one button posting to `action` (with the CSRF field).
pub fn button_form(visitor: &Visitor, action: &str, label: &str) -> Markup {
    post_button(visitor, action, label, None, None)
}

/// [`button_form`] for one of many rows (an application, a session, a mail): its
/// accessible name says which (`"{label}: {about}"`), so a screen reader going through
/// the buttons hears more than "Approve, Approve, Approve".
pub fn button_form_about(visitor: &Visitor, action: &str, label: &str, about: &str) -> Markup {
    post_button(visitor, action, label, Some(about), None)
}

/// [`button_form`] for an action that cannot be undone: the script asks `question`
/// before the form is sent (without the script it is sent at once).
pub fn confirm_form(visitor: &Visitor, action: &str, label: &str, question: &str) -> Markup {
    post_button(visitor, action, label, None, Some(question))
}

/// [`confirm_form`] for one of many rows, named as [`button_form_about`] names it.
pub fn confirm_form_about(
    visitor: &Visitor,
    action: &str,
    (label, about): (&str, &str),
    question: &str,
) -> Markup {
    post_button(visitor, action, label, Some(about), Some(question))
}

/// The one-button form behind the four above.
fn post_button(
    visitor: &Visitor,
    action: &str,
    label: &str,
    about: Option<&str>,
    question: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[question] {
            (csrf_field(visitor))
            button type="submit" aria-label=[about.map(|about| format!("{label}: {about}"))] { (label) }
        }
    }
}

/// An instant: UTC in the page, rewritten by the script into the viewer's time zone.
pub fn time(at: &Timestamp) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) data-local="" { (at.format("%Y-%m-%d %H:%M UTC")) }
    }
}

/// An instant with a live countdown to it (the script keeps it ticking).
pub fn countdown(at: &Timestamp) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) data-countdown="" { (at.format("%Y-%m-%d %H:%M UTC")) }
    }
}

/// A status message after a form (`role="status"` so screen readers announce it).
pub fn notice(message: &str) -> Markup {
    html! { p.notice role="status" { (message) } }
}

/// A service's refusal next to a form (`role="alert"`). It marks the page as answering a
/// form (`data-answer`): a live update then never reloads it under the viewer, whose
/// text is still in the form.
pub fn alert(message: &str) -> Markup {
    html! { p.error data-answer="" role="alert" { (message) } }
}
