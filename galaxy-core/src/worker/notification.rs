//! The notification worker: claims due routes under a lease and hands each to its
//! channel: an e-mail route becomes a rendered mail in the outbox (the mail worker sends
//! it), a push route becomes a push event. A failed dispatch is retried with backoff and
//! dead-lettered after the attempt budget; an admin may retry a dead letter.
//!
//! Dispatch is at-least-once: a route whose outcome could not be recorded is claimed
//! again once its lease lapses. The e-mail channel is idempotent (the mail's idempotency
//! key is `notification:<route id>`, so the outbox keeps the first copy); so is the push
//! channel (the event id is the route id, and the push log keeps an id once).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;

use super::{TickReport, Worker};
use crate::domain::lease::{ClaimRequest, Finish};
use crate::domain::mail::{MailDelivery, MailExtras, OutgoingMail, TextAttachment};
use crate::domain::mail_in::ReportDelivery;
use crate::domain::notification::{
    Channel, NotificationIntent, NotificationKind, NotificationRoute,
};
use crate::domain::play::{Standing, StandingsLabels, standings_table_in};
use crate::domain::retry::RetryPolicy;
use crate::domain::user::Locale;
use crate::domain::{LeaseToken, MailId};
use crate::ports::{
    Clock, MailStore, NotificationStore, PushPublisher, RouteFinish, RouteNext, SecretGenerator,
    StoreError, UserStore,
};
use crate::service::mail_in::MailInService;
use crate::service::templates::render::{Escape, push_escaped};
use crate::service::templates::{
    MailTemplates, PER_RECIPIENT_KEY, TemplateContext, recipient_payload,
};

/// The longest report (in bytes of UTF-8) a mail carries in its body; a longer one is
/// attached as a file whatever the player chose. Mail clients clip long mails (Gmail at
/// about 100 KB), and a player's reply quoting the whole report would pass the inbound
/// size limit (`GALAXY_INBOUND_MAX_BYTES`, 256 KiB by default) and lose its orders.
pub const INLINE_REPORT_MAX: usize = 64 * 1024;

/// How the notification worker paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationWorkerConfig {
    /// Routes claimed per pass.
    pub batch_size: u32,
    /// How long a claim holds; must exceed the slowest dispatch of a whole batch.
    pub lease: TimeDelta,
    /// Backoff and attempt budget.
    pub retry: RetryPolicy,
}

impl Default for NotificationWorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: 16,
            lease: TimeDelta::minutes(1),
            retry: RetryPolicy::default(),
        }
    }
}

/// The ports the worker reads from and dispatches to.
#[derive(Clone)]
pub struct NotificationWorkerPorts {
    /// Intents and routes (the queue).
    pub store: Arc<dyn NotificationStore>,
    /// Recipients' addresses, locales and preferences.
    pub users: Arc<dyn UserStore>,
    /// The mail outbox e-mail routes are queued into.
    pub mail: Arc<dyn MailStore>,
    /// Where push routes go.
    pub push: Arc<dyn PushPublisher>,
    /// Time for leases and backoff.
    pub clock: Arc<dyn Clock>,
    /// Lease tokens, mail ids and jitter.
    pub secrets: Arc<dyn SecretGenerator>,
}

/// Why one dispatch failed.
#[derive(Debug)]
enum DispatchError {
    /// Worth retrying (a store or the push service is unavailable).
    Transient(String),
    /// Retrying cannot help (the intent or the recipient is gone, no template).
    Permanent(String),
}

/// What a successful dispatch did (for the log).
#[derive(Debug, Clone, Copy)]
enum Dispatched {
    /// Queued into the mail outbox (or found already queued).
    Mailed,
    /// Published as a push event.
    Pushed,
    /// Nothing to do: the recipient turned mail notifications off after the fan-out.
    Skipped,
}

/// Delivers notification routes to the mail outbox and the push service.
pub struct NotificationWorker {
    /// Stores and channels.
    ports: NotificationWorkerPorts,
    /// Mail templates by kind and locale.
    templates: Arc<MailTemplates>,
    /// Pacing.
    config: NotificationWorkerConfig,
    /// Fires on shutdown: the route in progress is finished, the rest of the claimed batch
    /// is handed back undispatched.
    cancel: CancellationToken,
    /// Orders by e-mail, when on: the turn mails carry the player's orders address (as
    /// `Reply-To` and in the text) and the report as the player chose (body or file).
    orders_by_mail: Option<Arc<MailInService>>,
}

impl NotificationWorker {
    /// A worker over the given ports with the built-in templates.
    pub fn new(ports: NotificationWorkerPorts, config: NotificationWorkerConfig) -> Self {
        Self {
            ports,
            templates: Arc::new(MailTemplates::builtin()),
            config,
            cancel: CancellationToken::new(),
            orders_by_mail: None,
        }
    }

    /// Makes the game's mails (game started, turn report, game over) carry each
    /// player's orders address and report delivery choice.
    pub fn with_orders_by_mail(mut self, service: Arc<MailInService>) -> Self {
        self.orders_by_mail = Some(service);
        self
    }

    /// Uses another template set.
    pub fn with_templates(mut self, templates: Arc<MailTemplates>) -> Self {
        self.templates = templates;
        self
    }

    /// Ties the worker to a shutdown token: once it fires, the route being dispatched is
    /// finished and recorded, and the rest of the claimed batch is handed back due at
    /// once (as a retry, since the store has no way to refund the claim's attempt), for
    /// the next process.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Dispatches one route to its channel.
    async fn dispatch(&self, route: &NotificationRoute) -> Result<Dispatched, DispatchError> {
        let intent = match self.ports.store.get_intent(route.intent_id).await {
            Ok(intent) => intent,
            Err(StoreError::NotFound { .. }) => {
                return Err(DispatchError::Permanent(format!(
                    "intent {} not found",
                    route.intent_id
                )));
            }
            Err(error) => return Err(DispatchError::Transient(error.to_string())),
        };
        match route.channel {
            Channel::Email => self.queue_mail(route, &intent).await,
            Channel::Push => {
                let payload =
                    bounded_push_payload(recipient_payload(&intent.payload, route.user_id));
                // The route's id is the event's: a route delivered again (the worker died
                // after publishing) is the same event, which the push log keeps once.
                self.ports
                    .push
                    .publish(
                        route.id.as_uuid(),
                        &[route.user_id],
                        intent.kind.as_str(),
                        &payload,
                    )
                    .await
                    .map_err(|e| DispatchError::Transient(e.to_string()))?;
                Ok(Dispatched::Pushed)
            }
        }
    }

    /// Renders the recipient's mail and queues it under the route's idempotency key.
    async fn queue_mail(
        &self,
        route: &NotificationRoute,
        intent: &NotificationIntent,
    ) -> Result<Dispatched, DispatchError> {
        let user = match self.ports.users.get_user(route.user_id).await {
            Ok(user) => user,
            Err(StoreError::NotFound { .. }) => {
                return Err(DispatchError::Permanent(format!(
                    "recipient {} not found",
                    route.user_id
                )));
            }
            Err(error) => return Err(DispatchError::Transient(error.to_string())),
        };
        if !user.email_notifications && !intent.kind.is_mandatory_mail() {
            return Ok(Dispatched::Skipped);
        }
        let mut context =
            TemplateContext::for_recipient(&intent.payload, user.id, user.display_name.as_str());
        if let Some(table) = self.standings_in(intent, &user.locale) {
            context.set("standings_table", serde_json::Value::String(table));
        }
        let orders = self.orders_extras(intent, &user, &mut context).await?;
        let (mut extras, note) = match orders {
            Some((extras, note)) => (extras, Some(note)),
            None => (MailExtras::default(), None),
        };
        let long = context
            .text_field("report_text")
            .is_some_and(|report| report.len() > INLINE_REPORT_MAX);
        if long && extras.attachment.is_none() {
            self.attach_report(intent, &user.locale, &mut context, &mut extras);
        }
        let mut rendered = self
            .templates
            .render(intent.kind, &user.locale, &context)
            .map_err(|e| DispatchError::Permanent(e.to_string()))?;
        if let Some(note) = note {
            let (text, html) = orders_note(&self.templates, &user.locale, &note);
            rendered.text = insert_before_footer(&rendered.text, "\n-- \n", &text);
            rendered.html = insert_before_footer(&rendered.html, "\n<hr>", &html);
        }
        let mail = OutgoingMail {
            idempotency_key: format!("notification:{}", route.id),
            to: user.email,
            kind: intent.kind.as_str().to_owned(),
            locale: rendered.locale,
            subject: rendered.subject,
            text_body: rendered.text,
            html_body: Some(rendered.html),
            extras,
        };
        let delivery = MailDelivery::new(
            MailId::from_uuid(self.ports.secrets.uuid()),
            mail,
            self.ports.clock.now(),
        );
        let stored = self
            .ports
            .mail
            .enqueue_mail(&delivery)
            .await
            .map_err(|e| DispatchError::Transient(e.to_string()))?;
        if stored.id != delivery.id {
            tracing::info!(route_id = %route.id, mail_id = %stored.id, "mail of route already queued");
        }
        Ok(Dispatched::Mailed)
    }

    /// For a player's game mail with orders by e-mail on (a turn mail to a player of a
    /// race, a reminder): the extras (`Reply-To`, the report as a file when chosen, in
    /// which case `report_text` is replaced by a note) and the orders address for the
    /// text. A host who plays no race gets none: a reply would be refused.
    async fn orders_extras(
        &self,
        intent: &NotificationIntent,
        user: &crate::domain::user::User,
        context: &mut TemplateContext,
    ) -> Result<Option<(MailExtras, String)>, DispatchError> {
        let (Some(service), Some(game_id)) = (&self.orders_by_mail, intent.game_id) else {
            return Ok(None);
        };
        let plays = match intent.kind {
            NotificationKind::GameStarted | NotificationKind::TurnCompleted => intent
                .payload
                .get(PER_RECIPIENT_KEY)
                .and_then(|per| per.get(user.id.to_string()))
                .is_some(),
            NotificationKind::TurnReminder => true,
            _ => false,
        };
        if !plays {
            return Ok(None);
        }
        let address = match service.ensure(user.id, game_id).await {
            Ok(address) => address,
            // The store is down: the mail could not be queued either, so it waits.
            Err(error @ (StoreError::Unavailable { .. } | StoreError::Conflict { .. })) => {
                return Err(DispatchError::Transient(error.to_string()));
            }
            // Anything else would fail again on every retry, until the route died and
            // the player's report with it: the mail goes without its orders address
            // (orders still go through the pages, and the next mail tries again).
            Err(error) => {
                tracing::warn!(%error, user_id = %user.id, %game_id, "no orders address for this mail; sent without one");
                return Ok(None);
            }
        };
        let orders_address = address.address;
        // The address must be the mail's Reply-To: what the outbox takes the token out
        // of once the mail is delivered (`OutgoingMail::redacted`). One that does not
        // parse (a mail domain set in code, unchecked) goes nowhere, not into the text.
        let Ok(reply_to) = crate::domain::user::Email::parse(&orders_address) else {
            tracing::warn!(user_id = %user.id, %game_id, "the orders address is no address (GALAXY_MAIL_DOMAIN?); mail sent without one");
            return Ok(None);
        };
        let mut extras = MailExtras {
            reply_to: Some(reply_to),
            ..MailExtras::default()
        };
        if address.report_delivery == ReportDelivery::Attachment {
            self.attach_report(intent, &user.locale, context, &mut extras);
        }
        Ok(Some((extras, orders_address)))
    }

    /// Moves the report of the mail (`report_text`), if it has one, into a file attached
    /// to it, leaving a note in `locale`'s words where the text stood.
    fn attach_report(
        &self,
        intent: &NotificationIntent,
        locale: &Locale,
        context: &mut TemplateContext,
        extras: &mut MailExtras,
    ) {
        let Some(report) = context.text_field("report_text").map(str::to_owned) else {
            return;
        };
        let file_name = report_file_name(&intent.payload);
        let attached = self
            .templates
            .word(locale, "report_attached")
            .unwrap_or("attached");
        context.set(
            "report_text",
            serde_json::Value::String(format!("({attached}: {file_name})")),
        );
        extras.attachment = Some(TextAttachment {
            file_name,
            text: report,
        });
    }

    /// The final standings of a `game_finished` payload as a table in the words of
    /// `locale` (the templates' `standings_*` words); `None` for any other payload, or
    /// one without readable standings (its own table then stands).
    fn standings_in(&self, intent: &NotificationIntent, locale: &Locale) -> Option<String> {
        if intent.kind != NotificationKind::GameFinished {
            return None;
        }
        let standings: Vec<Standing> =
            serde_json::from_value(intent.payload.get("standings")?.clone()).ok()?;
        let english = StandingsLabels::ENGLISH;
        let word = |name: &str, or: &'static str| self.templates.word(locale, name).unwrap_or(or);
        let labels = StandingsLabels {
            race: word("standings_race", english.race),
            score: word("standings_score", english.score),
            status: word("standings_status", english.status),
            alive: word("standings_alive", english.alive),
            eliminated: word("standings_eliminated", english.eliminated),
        };
        Some(standings_table_in(&standings, &labels))
    }

    /// Dispatches one claimed route and says how it ended (written with the batch).
    async fn deliver(&self, route: &NotificationRoute, token: LeaseToken) -> RouteFinish {
        let result = self.dispatch(route).await;
        let now = self.ports.clock.now();
        let next = match &result {
            Ok(_) => RouteNext::Delivered,
            Err(DispatchError::Permanent(error)) => RouteNext::DeadLetter {
                error: error.clone(),
            },
            Err(DispatchError::Transient(error)) => {
                let unit = self.ports.secrets.unit();
                match route.next_attempt_after_failure(&self.config.retry, unit, now) {
                    Some(at) => RouteNext::Retry {
                        at,
                        error: error.clone(),
                    },
                    None => RouteNext::DeadLetter {
                        error: error.clone(),
                    },
                }
            }
        };
        let outcome = match (&result, &next) {
            (Ok(Dispatched::Mailed), _) => "mailed",
            (Ok(Dispatched::Pushed), _) => "pushed",
            (Ok(Dispatched::Skipped), _) => "skipped_mail_off",
            (Err(_), RouteNext::Retry { .. }) => "retrying",
            (Err(_), _) => "dead_letter",
        };
        match &result {
            Ok(_) => tracing::info!(
                route_id = %route.id,
                intent_id = %route.intent_id,
                channel = route.channel.as_str(),
                attempt = route.attempts,
                outcome,
                "notification route dispatched"
            ),
            Err(DispatchError::Transient(error) | DispatchError::Permanent(error)) => {
                tracing::warn!(
                    route_id = %route.id,
                    intent_id = %route.intent_id,
                    channel = route.channel.as_str(),
                    attempt = route.attempts,
                    outcome,
                    %error,
                    "notification route failed"
                );
            }
        }
        Finish {
            id: route.id,
            token,
            outcome: next,
            at: now,
        }
    }
}

/// The note on orders by mail for a mail in `locale`, as text and as HTML: the set's
/// word `orders_note` (an embedder's own locales bring their own), `{{address}}` in it
/// the player's orders address (in `<code>` in the HTML).
fn orders_note(templates: &MailTemplates, locale: &Locale, address: &str) -> (String, String) {
    const PLACE: &str = "{{address}}";
    let word = templates.word(locale, "orders_note").unwrap_or(
        "Orders by mail: reply to this mail or write to {{address}} (one order per line; \
         quotes and signature are ignored).",
    );
    let text = format!("\n{}\n", word.replace(PLACE, address));
    let mut html = String::from("\n<p>");
    for (i, part) in word.split(PLACE).enumerate() {
        if i > 0 {
            html.push_str("<code>");
            push_escaped(&mut html, address, Escape::Html);
            html.push_str("</code>");
        }
        push_escaped(&mut html, part, Escape::Html);
    }
    html.push_str("</p>");
    (text, html)
}

/// `addition` inserted before the last `marker` (the footer), or appended.
fn insert_before_footer(body: &str, marker: &str, addition: &str) -> String {
    match body.rfind(marker) {
        Some(at) => format!("{}{addition}{}", &body[..at], &body[at..]),
        None => format!("{body}{addition}"),
    }
}

#[async_trait]
impl Worker for NotificationWorker {
    fn name(&self) -> &'static str {
        "notification"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        if self.cancel.is_cancelled() {
            return Ok(TickReport::default());
        }
        let claim = ClaimRequest {
            token: LeaseToken::from_uuid(self.ports.secrets.uuid()),
            now: self.ports.clock.now(),
            lease: self.config.lease,
            limit: self.config.batch_size,
        };
        let batch = self.ports.store.claim_routes(&claim).await?;
        // Every route of the batch is dispatched, then all outcomes are written with one
        // batch finish. A crash in between leaves the leases to lapse and the routes to be
        // dispatched again, which their idempotency keys make safe.
        let mut finishes = Vec::with_capacity(batch.len());
        let mut released = 0;
        for route in &batch {
            if self.cancel.is_cancelled() {
                let now = self.ports.clock.now();
                let release = RouteNext::Retry {
                    at: now,
                    error: "released undispatched at shutdown".to_owned(),
                };
                finishes.push(Finish {
                    id: route.id,
                    token: claim.token,
                    outcome: release,
                    at: now,
                });
                released += 1;
                continue;
            }
            finishes.push(self.deliver(route, claim.token).await);
        }
        let results = self.ports.store.finish_routes(&finishes).await?;
        let dispatched = finishes.len() - released;
        let mut handled = 0;
        let mut failure = None;
        for (i, (finish, result)) in finishes.iter().zip(results).enumerate() {
            match result {
                Ok(_) if i < dispatched => handled += 1,
                Ok(_) => {}
                // Our lease lapsed and another worker took the route over: its result wins.
                Err(StoreError::Conflict { .. }) if i < dispatched => {
                    tracing::warn!(route_id = %finish.id, "notification route lease lost during dispatch");
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(TickReport { handled })
    }
}

/// How the file name of an attached report begins: an orders mail that carries one (a
/// forwarded turn mail) is not read as orders from it.
pub(crate) const REPORT_FILE_PREFIX: &str = "report-turn-";

/// The attached report's file name: `report-turn-<n>.txt`, `n` the report's own turn
/// (`game_started` carries turn 0's report but names turn 1, the first orders' turn);
/// `turn` for intents queued before payloads carried `report_turn`.
fn report_file_name(payload: &serde_json::Value) -> String {
    let turn = ["report_turn", "turn"]
        .iter()
        .find_map(|field| payload.get(*field).filter(|t| !t.is_null()))
        .map_or_else(
            || "0".to_owned(),
            |t| t.to_string().trim_matches('"').to_owned(),
        );
    format!("{REPORT_FILE_PREFIX}{turn}.txt")
}

/// The largest push payload (its JSON) that carries the recipient's report text. A push
/// event is a notice held in every replica's ring and sent to gateways, whose gRPC
/// clients refuse messages over 4 MiB by default: a bigger report would stop a gateway on
/// that event over and over until it aged out.
pub const MAX_PUSH_REPORT_BYTES: usize = 64 * 1024;

/// `payload` as a push event carries it: over [`MAX_PUSH_REPORT_BYTES`] its
/// `report_text` is left out and `report_omitted` set, so the client fetches the report
/// from the API instead (the mail still carries it).
fn bounded_push_payload(mut payload: serde_json::Value) -> serde_json::Value {
    let size = serde_json::to_vec(&payload).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_PUSH_REPORT_BYTES
        && let Some(fields) = payload.as_object_mut()
        && fields.remove("report_text").is_some()
    {
        fields.insert("report_omitted".to_owned(), serde_json::Value::Bool(true));
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attached_report_is_named_by_its_own_turn() {
        let started = serde_json::json!({"turn": 1, "report_turn": 0});
        assert_eq!(report_file_name(&started), "report-turn-0.txt");
        let played = serde_json::json!({"turn": 7, "report_turn": 7});
        assert_eq!(report_file_name(&played), "report-turn-7.txt");
        let older = serde_json::json!({"turn": 5});
        assert_eq!(report_file_name(&older), "report-turn-5.txt");
        assert_eq!(
            report_file_name(&serde_json::json!({})),
            "report-turn-0.txt"
        );
    }
}
