//! The admin mail page: mail deliveries by status, notification dead letters, and
//! retrying them (one, or every dead mail at once).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use galaxy_core::domain::mail::{LOGIN_CODE_KIND, MailStatus};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::{MailId, RouteId, UserId};
use maud::html;

use super::{AdminQuery, admin_nav, back_to, next_link, page_after, user_emails};
use crate::http::error::ApiError;
use crate::web::WebState;
use crate::web::error::WebError;
use crate::web::game::EmptyForm;
use crate::web::i18n::MAIL_STATUSES;
use crate::web::layout::{self, button_form_about, confirm_form};
use crate::web::lobby::urlencode;
use crate::web::session::{Posted, Visitor};

/// How many dead mails the mail page reads to know whether "retry all" has any to retry.
const DEAD_PROBE: u32 = 10;

/// `GET /admin/mail`: mail deliveries (by status) and notification dead letters.
pub async fn mail_page(
    State(state): State<WebState>,
    visitor: Visitor,
    Query(query): Query<AdminQuery>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let t = visitor.lang.admin();
    let status = (!query.status.is_empty()).then_some(query.status.as_str());
    if let Some(status) = status
        && MailStatus::parse(status).is_none()
    {
        return Err(WebError::Api(
            ApiError::invalid_request(
                "status must be one of pending, sending, sent, retrying, dead",
            )
            .with_field("status"),
        ));
    }
    let mail = state
        .app
        .mail_admin
        .list(&admin.actor, status, &query.page()?)
        .await?;
    let dead = state
        .app
        .notifications
        .dead_letters(&admin.actor, &page_after(query.dead_after.as_ref())?)
        .await?;
    // "Retry all" only where there is dead mail it would retry (login codes it leaves
    // dead). A few rows tell; past them, one more page may (and the button shows).
    let probe = state
        .app
        .mail_admin
        .list(&admin.actor, Some("dead"), &PageRequest::first(DEAD_PROBE)?)
        .await?;
    let any_dead =
        probe.next_after.is_some() || probe.items.iter().any(|m| m.mail.kind != LOGIN_CODE_KIND);
    let recipients: Vec<UserId> = dead.items.iter().map(|r| r.user_id).collect();
    let emails = user_emails(&state, &admin.actor, recipients).await;
    let body = html! {
        h1 { (t.mail) }
        (admin_nav(t))
        @if let Some(retried) = query.retried { (layout::notice(&t.retried_all(retried))) }
        form method="get" action="/admin/mail" {
            label for="status" { (t.status) " " }
            select #status name="status" {
                option value="" { (t.any) }
                @for s in MAIL_STATUSES { option value=(s) selected[query.status == s] { (t.mail_status(s)) } }
            }
            " " button type="submit" { (t.filter) }
        }
        h2 { (t.deliveries) }
        @if any_dead { (confirm_form(&visitor, "/admin/mail/retry-dead", t.retry_all, t.retry_all_confirm)) }
        div.table-wrap { table {
            thead { tr { th scope="col" { (t.created) } th scope="col" { (t.to) } th scope="col" { (t.subject) } th scope="col" { (t.status) } th scope="col" { (t.attempts) } th scope="col" { (t.last_error) } th scope="col" {} } }
            tbody {
                @for delivery in &mail.items {
                    tr {
                        td { (layout::time(&delivery.created_at)) }
                        td { (delivery.mail.to.as_str()) }
                        td { (delivery.mail.subject) br; small { code { (delivery.mail.kind) } } }
                        td { span.badge data-status=(delivery.status.as_str()) { (t.mail_status(delivery.status.as_str())) } }
                        td { (delivery.attempts) }
                        td { (delivery.last_error.as_deref().unwrap_or("")) }
                        td { @if delivery.status == MailStatus::Dead { (button_form_about(&visitor, &format!("/admin/mail/{}/retry", delivery.id), t.retry, &format!("{} {}", delivery.mail.kind, delivery.mail.to.as_str()))) } }
                    }
                }
            }
        } }
        (next_link(t, &format!(
            "/admin/mail?status={}{}&",
            urlencode(&query.status),
            query.dead_after.as_ref().map(|a| format!("&dead_after={}", urlencode(a))).unwrap_or_default()
        ), mail.next_after.as_ref()))
        h2 { (t.dead_letters) }
        @if dead.items.is_empty() { p { (t.none) } }
        div.table-wrap { table {
            thead { tr { th scope="col" { (t.updated) } th scope="col" { (t.user) } th scope="col" { (t.channel) } th scope="col" { (t.attempts) } th scope="col" { (t.last_error) } th scope="col" {} } }
            tbody {
                @for route in &dead.items {
                    tr {
                        td { (layout::time(&route.updated_at)) }
                        td { @match emails.get(&route.user_id) { Some(email) => (email), None => code { (route.user_id) } } }
                        td { (t.channel(route.channel)) }
                        td { (route.attempts) }
                        td { (route.last_error.as_deref().unwrap_or("")) }
                        td { (button_form_about(&visitor, &format!("/admin/dead-letters/{}/retry", route.id), t.retry, &format!("{} {}", t.channel(route.channel), emails.get(&route.user_id).map_or_else(|| route.user_id.to_string(), Clone::clone)))) }
                    }
                }
            }
        } }
        @if let Some(next) = &dead.next_after {
            p {
                a href=(format!(
                    "/admin/mail?status={}{}&dead_after={}",
                    urlencode(&query.status),
                    query.after.as_ref().map(|a| format!("&after={}", urlencode(a))).unwrap_or_default(),
                    urlencode(next)
                )) { (t.more) }
            }
        }
    };
    Ok(layout::page(&visitor, t.mail, body))
}

/// `POST /admin/mail/{id}/retry`; back to the mail page as it was.
pub async fn retry_mail(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let id = MailId::parse(&id).map_err(|_| WebError::NotFound)?;
    state
        .app
        .mail_admin
        .retry(&admin.actor, &id.to_string())
        .await?;
    Ok(Redirect::to(&back_to(&headers, "/admin/mail")).into_response())
}

/// `POST /admin/mail/retry-dead`: every dead mail queued again; to the first page of the
/// mail, which says how many (the dead mail the page showed is queued again, and a filter
/// on `dead` would show nothing).
pub async fn retry_all_dead_mail(
    State(state): State<WebState>,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let retried = state.app.mail_admin.retry_all_dead(&admin.actor).await?;
    Ok(Redirect::to(&format!("/admin/mail?retried={retried}")).into_response())
}

/// `POST /admin/dead-letters/{id}/retry`; back to the mail page as it was.
pub async fn retry_dead_letter(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    Posted { visitor, .. }: Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let id = RouteId::parse(&id).map_err(|_| WebError::NotFound)?;
    state
        .app
        .notifications
        .retry_dead_letter(&admin.actor, &id.to_string())
        .await?;
    Ok(Redirect::to(&back_to(&headers, "/admin/mail")).into_response())
}
