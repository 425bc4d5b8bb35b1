//! The admin health page: runtime records and health events, each list paged on its own.

use axum::extract::{Query, State};
use axum::response::Response;
use galaxy_core::domain::GameId;
use galaxy_core::service::{ErrorKind, ServiceError};
use maud::html;

use super::{AdminQuery, admin_nav, game_link, game_names, next_link, page_after};
use crate::web::WebState;
use crate::web::error::WebError;
use crate::web::layout;
use crate::web::lobby::urlencode;
use crate::web::session::Visitor;

/// `GET /admin/health`: runtime records and health events (of one game with `?game=`).
pub async fn health_page(
    State(state): State<WebState>,
    visitor: Visitor,
    Query(query): Query<AdminQuery>,
) -> Result<Response, WebError> {
    let admin = visitor.admin()?;
    let t = visitor.lang.admin();
    let game = if query.game.is_empty() {
        None
    } else {
        Some(GameId::parse(&query.game).map_err(|_| WebError::NotFound)?)
    };
    let runtime = &state.app.runtime;
    // Records and events are paged each with its own cursor: the two lists are ordered
    // differently (records oldest first, events newest first).
    let (records, records_next) = match game {
        // A game that never started has no record (yet): its events, if any, still show.
        Some(game) => match runtime.record(admin.actor, game).await {
            Ok(record) => (vec![record], None),
            Err(error) if ServiceError::kind(&error) == ErrorKind::NotFound => (Vec::new(), None),
            Err(error) => return Err(error.into()),
        },
        None => {
            let page = page_after(query.records_after.as_ref())?;
            let got = runtime.records(admin.actor, &page).await?;
            (got.items, got.next_after)
        }
    };
    let events = runtime
        .health_events(admin.actor, game, &query.page()?)
        .await?;
    let shown: Vec<GameId> = records
        .iter()
        .map(|r| r.game_id)
        .chain(events.items.iter().map(|e| e.game_id))
        .collect();
    let names = game_names(&state, &admin.actor, shown).await;
    let body = html! {
        h1 { (t.health) }
        (admin_nav(t))
        h2 { (t.records) }
        div.table-wrap { table {
            thead { tr { th scope="col" { (t.game) } th scope="col" { (t.status) } th scope="col" { (t.engine) } th scope="col" { (t.turn) } th scope="col" { (t.next_turn) } th scope="col" { (t.healthy) } } }
            tbody {
                @for record in &records {
                    tr {
                        td { (game_link(&names, record.game_id, &format!("/admin/health?game={}", record.game_id))) }
                        td { span.badge data-status=(record.status.as_str()) { (t.runtime_status(record.status)) } }
                        td { (record.engine.as_str()) }
                        td { (record.current_turn) }
                        td { @if let Some(at) = &record.next_turn_at { (layout::time(at)) } }
                        td { (visitor.lang.text().yes_no(record.healthy)) }
                    }
                }
            }
        } }
        @if let Some(next) = &records_next {
            // (The events stay on the page they were on, and the other way round below.)
            p { a href=(format!(
                "/admin/health?records_after={}{}",
                urlencode(next),
                query.after.as_ref().map(|a| format!("&after={}", urlencode(a))).unwrap_or_default()
            )) { (t.more) } }
        }
        h2 { (t.events) }
        div.table-wrap { table {
            thead { tr { th scope="col" { (t.when) } th scope="col" { (t.game) } th scope="col" { (t.kind) } th scope="col" { (t.detail) } } }
            tbody {
                @for event in &events.items {
                    tr {
                        td { (layout::time(&event.occurred_at)) }
                        td { (game_link(&names, event.game_id, &format!("/admin/health?game={}", event.game_id))) }
                        td { span.badge data-kind=(event.kind.as_str()) { (t.event_kind(event.kind)) } }
                        td { code { (event.detail) } }
                    }
                }
            }
        } }
        (next_link(t, &format!(
            "/admin/health?game={}{}&",
            urlencode(&query.game),
            query.records_after.as_ref().map(|a| format!("&records_after={}", urlencode(a))).unwrap_or_default()
        ), events.next_after.as_ref()))
    };
    Ok(layout::page(&visitor, t.health, body))
}
