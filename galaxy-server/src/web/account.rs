//! The visitor's account: display name, locale, mail preferences, race names (release a
//! registered one), sessions (log out of one, or everywhere), and logging out.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use galaxy_core::domain::SessionId;
use galaxy_core::domain::race_name::RaceNameStatus;
use galaxy_core::ports::SessionRevoker;
use galaxy_core::service::auth::AuthError;
use galaxy_core::service::user::ProfileUpdate;
use maud::html;
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::game::EmptyForm;
use super::layout::{self, button_form, button_form_about, csrf_field};
use super::session::{Posted, Visitor, cleared_session_cookie};

async fn render(
    state: &WebState,
    visitor: &Visitor,
    message: Option<Result<&str, &str>>,
    typed: Option<&ProfileForm>,
) -> Result<Response, WebError> {
    let user = visitor.signed_in()?;
    let text = visitor.lang.text();
    let sessions = state.app.auth.list_sessions(&user.actor).await?;
    let mut names = state.app.lobby.my_race_names(user.actor).await?;
    names.retain(|n| n.status != RaceNameStatus::Released);
    let account = &user.user;
    // A refused change shows what was typed, for the user to correct.
    let display_name = typed.map_or(account.display_name.as_str(), |t| t.display_name.as_str());
    let locale = typed.map_or(account.locale.as_str(), |t| t.locale.as_str());
    let mails = typed.map_or(account.email_notifications, |t| {
        t.email_notifications.is_some()
    });
    let body = html! {
        h1 { (text.account_title) }
        @match message {
            Some(Ok(notice)) => (layout::notice(notice)),
            Some(Err(error)) => (layout::alert(error)),
            None => {},
        }
        p { (account.email.as_str()) }
        form.stack method="post" action="/account" {
            (csrf_field(visitor))
            label for="display_name" { (text.display_name) }
            input #display_name type="text" name="display_name" value=(display_name) required maxlength="64";
            label for="locale" { (text.locale) }
            input #locale type="text" name="locale" value=(locale) required list="locales";
            datalist #locales { option value="en" {} option value="de" {} }
            label { input type="checkbox" name="email_notifications" value="1" checked[mails]; " " (text.mail_prefs) }
            p { button type="submit" { (text.save) } }
        }
        section aria-labelledby="race-names" {
            h2 #race-names { (text.race_names_title) }
            p.hint { (text.race_names_hint) }
            @if names.is_empty() { p { (text.none) } }
            ul.race-names {
                @for entry in &names {
                    li {
                        (entry.name.as_str())
                        @if let Some(game) = entry.game_id {
                            " · " a href=(format!("/games/{game}")) { (text.col_game) }
                        }
                        @match entry.status {
                            RaceNameStatus::Registered => {
                                " " span.badge { (text.race_name_registered) }
                                " " (button_form_about(visitor, &format!("/account/race-names/{}/release", entry.name.as_str()), text.race_name_release, entry.name.as_str()))
                            }
                            _ => { " " span.badge { (text.race_name_pending) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="sessions" {
            h2 #sessions { (text.sessions_title) }
            div.table-wrap { table {
                thead { tr { th scope="col" { (text.created) } th scope="col" { (text.expires) } th scope="col" {} } }
                tbody {
                    @for session in &sessions {
                        tr {
                            td { (layout::time(&session.created_at)) }
                            td { (layout::time(&session.expires_at)) }
                            td {
                                @if session.id == user.session_id {
                                    span.badge { (text.this_session) }
                                } @else {
                                    (button_form_about(visitor, &format!("/account/sessions/{}/revoke", session.id), text.revoke, &session.created_at.format("%Y-%m-%d %H:%M UTC").to_string()))
                                }
                            }
                        }
                    }
                }
            } }
            p { (button_form(visitor, "/account/logout-everywhere", text.logout_everywhere)) }
        }
    };
    Ok(layout::page(visitor, text.account_title, body))
}

/// `GET /account`.
pub async fn account_page(
    State(state): State<WebState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    render(&state, &visitor, None, None).await
}

/// The profile form.
#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    display_name: String,
    locale: String,
    #[serde(default)]
    email_notifications: Option<String>,
}

/// `POST /account`: the profile through the user service (its validation messages).
pub async fn update_profile(
    State(state): State<WebState>,
    Posted { mut visitor, form }: Posted<ProfileForm>,
) -> Result<Response, WebError> {
    let user = visitor.signed_in()?.clone();
    let update = ProfileUpdate {
        display_name: Some(form.display_name.clone()),
        locale: Some(form.locale.clone()),
        email_notifications: Some(form.email_notifications.is_some()),
    };
    match state.app.users.update_profile(&user.actor, update).await {
        Ok(updated) => {
            // The page answers in the language just chosen.
            visitor.lang = super::i18n::Lang::of_locale(updated.locale.as_str());
            if let Some(current) = visitor.user.as_mut() {
                current.user = updated;
            }
            let saved = visitor.lang.text().saved;
            render(&state, &visitor, Some(Ok(saved)), None).await
        }
        Err(error) => {
            let error = WebError::from(error);
            let message = error.told(visitor.lang);
            let page = render(&state, &visitor, Some(Err(&message)), Some(&form)).await?;
            Ok((error.status(), page).into_response())
        }
    }
}

/// `POST /account/race-names/{name}/release`: gives a registered race name up, so anyone
/// may choose it; one a live application uses stays, and the page says why.
pub async fn release_race_name(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let user = visitor.signed_in()?;
    match state.app.lobby.release_race_name(user.actor, &name).await {
        Ok(_) => {
            let released = visitor.lang.text().race_name_released;
            render(&state, &visitor, Some(Ok(released)), None).await
        }
        Err(error) => {
            let error = WebError::from(error);
            let message = error.told(visitor.lang);
            let page = render(&state, &visitor, Some(Err(&message)), None).await?;
            Ok((error.status(), page).into_response())
        }
    }
}

/// `POST /account/sessions/{id}/revoke`.
pub async fn revoke_session(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let user = visitor.signed_in()?;
    let id = SessionId::parse(&id).map_err(|_| WebError::NotFound)?;
    state.app.auth.revoke_session(&user.actor, id).await?;
    Ok(Redirect::to("/account").into_response())
}

/// `POST /account/logout-everywhere`: revokes every session of the account, this one too.
pub async fn logout_everywhere(
    State(state): State<WebState>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let user = visitor.signed_in()?;
    state
        .app
        .auth
        .revoke_all(user.user.id)
        .await
        .map_err(AuthError::from)?;
    Ok(signed_out(&visitor))
}

/// `POST /logout`: revokes this session.
pub async fn logout(
    State(state): State<WebState>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    if let Some(user) = &visitor.user {
        state
            .app
            .auth
            .revoke_session(&user.actor, user.session_id)
            .await?;
    }
    Ok(signed_out(&visitor))
}

fn signed_out(visitor: &Visitor) -> Response {
    let mut response = Redirect::to("/").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, cleared_session_cookie(visitor.secure));
    response
}
