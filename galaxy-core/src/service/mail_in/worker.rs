//! The mail-in worker: processes stored inbound mail through the leased queue, one
//! message at a time, and mails the answer (see the module docs of
//! [`super`] for the rules).

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{MailInConfig, MailInPorts, ParsedMessage, parse_message};
use crate::domain::lease::{ClaimRequest, Finish};
use crate::domain::mail::{MailDelivery, MailExtras, OutgoingMail};
use crate::domain::mail_in::{InboundEnd, InboundMail, InboundOutcome, OrdersKey, OrdersToken};
use crate::domain::notification::NotificationKind;
use crate::domain::user::{Email, User};
use crate::domain::{LeaseToken, MailId, Timestamp};
use crate::ports::{MailedOrdersVerdict, OrdersDeskError, Refusal, StoreError};
use crate::service::templates::{MailTemplates, TemplateContext};
use crate::worker::{TickReport, Worker};

/// Processing could not finish now (a store or the engine is down): leave the message
/// claimed, so it is claimed again once the lease lapses.
#[derive(Debug)]
struct Later {
    /// What failed.
    why: String,
    /// Whether it is worth waiting for however long it takes (the store or the engine
    /// down): such a mail is never given up; anything else is, after `max_attempts`.
    transient: bool,
}

impl Later {
    /// A failure that passes (a dependency down).
    fn transient(why: String) -> Self {
        Self {
            why,
            transient: true,
        }
    }
}

impl From<StoreError> for Later {
    fn from(error: StoreError) -> Self {
        Self {
            why: error.to_string(),
            transient: error.is_retryable(),
        }
    }
}

/// Processes inbound mail.
pub struct MailInWorker {
    /// The ports.
    ports: MailInPorts,
    /// The settings.
    config: Arc<MailInConfig>,
    /// The reply templates: the service's.
    templates: Arc<MailTemplates>,
    /// The key the service derives its orders tokens under: a token found by its digest
    /// counts only if this key derives it (or it predates derived tokens).
    key: OrdersKey,
    /// Fires on shutdown: the message in progress is finished, the rest stay claimed
    /// until their lease lapses.
    cancel: CancellationToken,
}

impl MailInWorker {
    /// A worker over the service's ports and settings.
    pub fn new(service: &super::MailInService) -> Self {
        Self {
            ports: service.ports.clone(),
            config: Arc::clone(&service.config),
            templates: Arc::clone(&service.templates),
            key: service.key.clone(),
            cancel: CancellationToken::new(),
        }
    }

    /// Ties the worker to a shutdown token.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Processes one message: how it ended, or `Later`.
    async fn process(&self, mail: &InboundMail) -> Result<InboundEnd, Later> {
        let end = |outcome, detail: String| Ok(InboundEnd { outcome, detail });
        let null_path = mail.envelope_from.as_deref() == Some("");
        let parsed = match parse_message(&mail.raw, usize::MAX, null_path) {
            Ok(parsed) => parsed,
            Err(error) => return end(InboundOutcome::Dropped, format!("unreadable: {error}")),
        };
        if let Some(why) = parsed.automated {
            return end(InboundOutcome::Dropped, format!("automatic mail ({why})"));
        }
        let Some(from) = parsed.from.clone() else {
            return end(InboundOutcome::Dropped, "no From address".to_owned());
        };
        let domain = &self.config.domain;
        let token = mail
            .envelope_to
            .iter()
            .chain(&parsed.recipients)
            .find_map(|r| OrdersToken::from_address(r, domain));
        // A token made under another key (the key was changed, say after a leak) stops
        // working at once, not when its address is next shown; one made before tokens
        // were derived works until then.
        let address = match &token {
            Some(token) => self
                .ports
                .store
                .find_orders_address(&token.digest())
                .await?
                .filter(|a| {
                    a.token.seed.predates_derivation() || self.key.recover(&a.token).is_some()
                }),
            None => None,
        };
        let (Some(token), Some(address)) = (&token, address) else {
            let why = if token.is_some() {
                "unknown orders token"
            } else {
                "no orders address"
            };
            return self.refuse(mail, &parsed, &from, why).await;
        };
        let player = match self.ports.users.get_user(address.user_id).await {
            Ok(user) => user,
            Err(StoreError::NotFound { .. }) => {
                return self
                    .refuse(mail, &parsed, &from, "the address's player is gone")
                    .await;
            }
            Err(error) => return Err(error.into()),
        };
        if player.email != from {
            // An alias, an old address, a second mailbox, or a forgery: not taken. The
            // player is told at their account's address (their orders did not get in,
            // or their orders address is known to someone else), never the sender,
            // who may be anyone.
            let why = "From is not the player's e-mail";
            let bucket = format!("foreign:{}", player.email);
            return self
                .refuse_to(mail, &parsed, (&player, &bucket), &from, why)
                .await;
        }
        if !player.status.is_active_at(self.ports.clock.now()) {
            return end(InboundOutcome::Dropped, "the player is blocked".to_owned());
        }
        self.answer(mail, &parsed, &player, address.game_id, token)
            .await
    }

    /// Sends the orders to the engine and mails the verdict.
    async fn answer(
        &self,
        mail: &InboundMail,
        parsed: &ParsedMessage,
        player: &User,
        game_id: crate::domain::GameId,
        token: &OrdersToken,
    ) -> Result<InboundEnd, Later> {
        let result = if parsed.orders.trim().is_empty() {
            Err(OrdersDeskError::Refused {
                game_name: None,
                reason: Refusal::NoOrders,
            })
        } else {
            self.ports
                .desk
                .submit_mailed_orders(player.id, game_id, &parsed.orders, mail.received_at)
                .await
        };
        let (kind, payload, detail) = match result {
            Ok(verdict) => reply_payload(&verdict, &parsed.orders),
            Err(OrdersDeskError::Unavailable(why)) if mail.attempts < self.config.max_attempts => {
                return Err(Later::transient(why));
            }
            Err(OrdersDeskError::Unavailable(why)) => {
                let reason = Refusal::Unreachable {
                    tries: mail.attempts,
                };
                let told = self.told(player, &reason);
                let detail = format!("unavailable: {why}");
                let name = self.ports.desk.game_name(game_id).await;
                not_taken_payload(&parsed.orders, name, told, detail)
            }
            Err(OrdersDeskError::Refused { game_name, reason }) => {
                let detail = format!("not taken: {reason}");
                let told = self.told(player, &reason);
                let name = match game_name {
                    Some(name) => Some(name),
                    None => self.ports.desk.game_name(game_id).await,
                };
                not_taken_payload(&parsed.orders, name, told, detail)
            }
        };
        let bucket = format!("reply:{}", player.id);
        let now = self.ports.clock.now();
        let key = mail.id.to_string();
        if !self
            .ports
            .store
            .take_send(&bucket, &key, self.config.replies, now)
            .await?
        {
            return Ok(InboundEnd {
                outcome: InboundOutcome::AnsweredSilently,
                detail: format!("{detail}; reply budget spent"),
            });
        }
        let extras = MailExtras {
            reply_to: Email::parse(&token.address(&self.config.domain)).ok(),
            in_reply_to: parsed.message_id.clone(),
            references: thread(parsed),
            attachment: None,
        };
        self.queue(mail, player, kind, &payload, extras, "reply")
            .await?;
        Ok(InboundEnd {
            outcome: InboundOutcome::Answered,
            detail,
        })
    }

    /// The one refusal of the hour to a registered sender; anything else is dropped.
    async fn refuse(
        &self,
        mail: &InboundMail,
        parsed: &ParsedMessage,
        from: &Email,
        why: &str,
    ) -> Result<InboundEnd, Later> {
        let Some(user) = self.ports.users.find_user_by_email(from).await? else {
            tracing::warn!(inbound_id = %mail.id, reason = why, "inbound mail from an unknown sender dropped");
            return Ok(InboundEnd {
                outcome: InboundOutcome::Dropped,
                detail: format!("{why}; unknown sender"),
            });
        };
        let bucket = format!("refusal:{from}");
        self.refuse_to(mail, parsed, (&user, &bucket), from, why)
            .await
    }

    /// The one refusal of the hour of `bucket` to `user` (at their account's address)
    /// about a mail from `from`; past it, the mail is dropped. A player's own mails that
    /// went astray and mails of others to their orders address count apart, so the one
    /// does not silence the other.
    async fn refuse_to(
        &self,
        mail: &InboundMail,
        parsed: &ParsedMessage,
        (user, bucket): (&User, &str),
        from: &Email,
        why: &str,
    ) -> Result<InboundEnd, Later> {
        let now = self.ports.clock.now();
        if !self
            .ports
            .store
            .take_send(bucket, &mail.id.to_string(), self.config.refusals, now)
            .await?
        {
            return Ok(InboundEnd {
                outcome: InboundOutcome::Dropped,
                detail: format!("{why}; refusal already sent this hour"),
            });
        }
        let payload = serde_json::json!({ "sender": from.as_str() });
        // An answer to the sender's mail: in its thread (and so `auto-replied`), with no
        // orders address to reply to.
        let extras = MailExtras {
            in_reply_to: parsed.message_id.clone(),
            references: thread(parsed),
            ..MailExtras::default()
        };
        self.queue(
            mail,
            user,
            NotificationKind::OrdersRefused,
            &payload,
            extras,
            "refusal",
        )
        .await?;
        Ok(InboundEnd {
            outcome: InboundOutcome::Refused,
            detail: why.to_owned(),
        })
    }

    /// Renders and queues an answer; its idempotency key is the inbound mail's, so a
    /// message processed again after a crash is answered once.
    async fn queue(
        &self,
        mail: &InboundMail,
        to: &User,
        kind: NotificationKind,
        payload: &serde_json::Value,
        extras: MailExtras,
        what: &str,
    ) -> Result<(), Later> {
        let context = TemplateContext::for_recipient(payload, to.id, to.display_name.as_str());
        let rendered = self
            .templates
            .render(kind, &to.locale, &context)
            .map_err(|e| Later {
                why: e.to_string(),
                transient: false,
            })?;
        let outgoing = OutgoingMail {
            idempotency_key: format!("mail-in-{what}:{}", mail.id),
            to: to.email.clone(),
            kind: kind.as_str().to_owned(),
            locale: rendered.locale,
            subject: rendered.subject,
            text_body: rendered.text,
            html_body: Some(rendered.html),
            extras,
        };
        let delivery = MailDelivery::new(
            MailId::from_uuid(self.ports.secrets.uuid()),
            outgoing,
            self.ports.clock.now(),
        );
        self.ports.mail.enqueue_mail(&delivery).await?;
        Ok(())
    }

    /// Why orders were not taken, as `player` reads it: the templates' word for the
    /// reason in their language, filled in; the English wording where the set has none
    /// (and for a reason in the service's own words).
    fn told(&self, player: &User, reason: &Refusal) -> String {
        let (code, fields) = reason.code_and_fields();
        match reason {
            Refusal::Other(words) => words.clone(),
            _ => self
                .templates
                .word_filled(&player.locale, code, &fields)
                .unwrap_or_else(|| reason.to_string()),
        }
    }

    /// Processes one claimed message and says how to finish it (`None`: leave it).
    async fn handle(
        &self,
        mail: &InboundMail,
        token: LeaseToken,
    ) -> Option<Finish<crate::domain::InboundMailId, InboundEnd>> {
        match self.process(mail).await {
            Ok(end) => {
                tracing::info!(
                    inbound_id = %mail.id,
                    outcome = end.outcome.as_str(),
                    detail = %end.detail,
                    attempt = mail.attempts,
                    "inbound mail processed"
                );
                Some(Finish {
                    id: mail.id,
                    token,
                    outcome: end,
                    at: self.ports.clock.now(),
                })
            }
            // A lasting failure that outlasts every try (a row the store cannot read)
            // ends the mail rather than having it claimed every few minutes for ever; a
            // store or engine that is down is waited for (the engine's outage has its
            // own answer to the player, before this).
            Err(Later { why, transient })
                if !transient && mail.attempts >= self.config.max_attempts =>
            {
                tracing::error!(inbound_id = %mail.id, attempt = mail.attempts, error = %why, "inbound mail given up: it failed on every try");
                Some(Finish {
                    id: mail.id,
                    token,
                    outcome: InboundEnd {
                        outcome: InboundOutcome::Dropped,
                        detail: format!("given up after {} tries: {why}", mail.attempts),
                    },
                    at: self.ports.clock.now(),
                })
            }
            Err(Later { why, .. }) => {
                tracing::warn!(inbound_id = %mail.id, attempt = mail.attempts, error = %why, "inbound mail left for a later attempt");
                None
            }
        }
    }
}

/// The thread for the reply's `References`: the message's own, then the message.
fn thread(parsed: &ParsedMessage) -> Vec<String> {
    let mut refs = parsed.references.clone();
    refs.extend(parsed.message_id.clone());
    refs
}

/// A deadline as the reply shows it: RFC 3339 in UTC; `null` when none is scheduled
/// (the templates word it in the player's language).
fn deadline_text(deadline: Option<Timestamp>) -> Option<String> {
    deadline.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The reply to a verdict: its kind, payload and the log's detail.
fn reply_payload(
    verdict: &MailedOrdersVerdict,
    orders: &str,
) -> (NotificationKind, serde_json::Value, String) {
    let mut errors = String::new();
    for error in &verdict.errors {
        let _ = writeln!(errors, "  - {error}");
    }
    let lines = orders.lines().filter(|l| !l.trim().is_empty()).count();
    let payload = serde_json::json!({
        "game_name": verdict.game_name,
        "turn": verdict.turn,
        "deadline": deadline_text(verdict.deadline),
        "errors": errors,
        "order_count": lines,
        "orders_read": numbered(orders),
    });
    if verdict.accepted {
        (
            NotificationKind::OrdersAccepted,
            payload,
            format!("accepted for turn {}", verdict.turn),
        )
    } else {
        let detail = format!(
            "rejected for turn {} ({} errors)",
            verdict.turn,
            verdict.errors.len()
        );
        (NotificationKind::OrdersRejected, payload, detail)
    }
}

/// How many lines of the orders a reply shows...
const ORDERS_SHOWN: usize = 200;
/// ...how many characters of each...
const LINE_SHOWN: usize = 200;
/// ...and, past this many bytes of them, no more lines: the reply goes through the same
/// relay as every mail, and one of the size of the orders (up to the inbound limit, and
/// twice over with its HTML) could be refused as too large and die unanswered.
const ORDERS_SHOWN_BYTES: usize = 16 * 1024;

/// The orders as the engine read them (quotes, signature and noise taken out), each
/// line numbered as the engine numbers it, so that "line 4" in a reason points at a
/// line the player can see; at most [`ORDERS_SHOWN`] lines of [`LINE_SHOWN`] characters,
/// [`ORDERS_SHOWN_BYTES`] in all.
fn numbered(orders: &str) -> String {
    let mut shown = String::new();
    let all = orders.lines().count();
    let mut lines = 0;
    for (number, line) in orders.lines().enumerate().take(ORDERS_SHOWN) {
        if shown.len() >= ORDERS_SHOWN_BYTES {
            break;
        }
        match line.char_indices().nth(LINE_SHOWN) {
            Some((cut, _)) => {
                let _ = writeln!(shown, "{:>4} | {} ...", number + 1, &line[..cut]);
            }
            None => {
                let _ = writeln!(shown, "{:>4} | {line}", number + 1);
            }
        }
        lines += 1;
    }
    if all > lines {
        let _ = writeln!(shown, "     | ... ({} more)", all - lines);
    }
    if shown.is_empty() {
        shown.push_str("     | -\n");
    }
    shown
}

/// The reply to orders that got no verdict at all: the reason, in the player's words,
/// and the orders as read; the game's name when known (else the templates' word).
fn not_taken_payload(
    orders: &str,
    game_name: Option<String>,
    reason: String,
    detail: String,
) -> (NotificationKind, serde_json::Value, String) {
    let payload = serde_json::json!({
        "game_name": game_name,
        "reason": reason,
        "orders_read": numbered(orders),
    });
    (NotificationKind::OrdersNotTaken, payload, detail)
}

#[async_trait]
impl Worker for MailInWorker {
    fn name(&self) -> &'static str {
        "mail_in"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        if self.cancel.is_cancelled() {
            return Ok(TickReport::default());
        }
        // One mail per claim, each under a lease of its own taken just before it is sent:
        // a claim counts an attempt, so only a mail really tried is charged one, and no
        // mail waits behind slow ones until its lease has lapsed (another replica would
        // then claim and send a mail this one is still sending).
        let mut handled = 0;
        for _ in 0..self.config.batch_size.max(1) {
            if self.cancel.is_cancelled() {
                break;
            }
            let claim = ClaimRequest {
                token: LeaseToken::from_uuid(self.ports.secrets.uuid()),
                now: self.ports.clock.now(),
                lease: self.config.lease,
                limit: 1,
            };
            let Some(mail) = self.ports.store.claim_inbound(&claim).await?.pop() else {
                break;
            };
            let Some(finish) = self.handle(&mail, claim.token).await else {
                continue;
            };
            match self.ports.store.finish_inbound(&finish).await {
                Ok(_) => handled += 1,
                Err(StoreError::Conflict { .. }) => {
                    tracing::warn!(inbound_id = %mail.id, "inbound mail lease lost during processing");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(TickReport { handled })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orders_read_are_numbered_as_the_engine_counts_lines_and_bounded() {
        assert_eq!(
            numbered("design A 1\n\nfly away"),
            "   1 | design A 1\n   2 | \n   3 | fly away\n"
        );
        assert_eq!(numbered(""), "     | -\n");
        let long: String = (1..=250).map(|n| format!("move {n}\n")).collect();
        let shown = numbered(&long);
        assert_eq!(shown.lines().count(), ORDERS_SHOWN + 1);
        assert!(shown.contains(" 200 | move 200\n"), "{shown}");
        assert!(shown.ends_with("     | ... (50 more)\n"), "{shown}");
        // One enormous line is cut short (on a character, not a byte)...
        let wide = format!("{}\nmove 1", "é".repeat(100_000));
        let shown = numbered(&wide);
        assert!(shown.len() < 1024, "{} bytes", shown.len());
        assert!(
            shown.starts_with(&format!("   1 | {} ...\n", "é".repeat(LINE_SHOWN))),
            "{shown}"
        );
        assert!(shown.ends_with("   2 | move 1\n"), "{shown}");
        // ...and many long lines stop at the byte bound, saying how many are left.
        let many: String = (0..150)
            .map(|_| format!("{}\n", "x".repeat(1000)))
            .collect();
        let shown = numbered(&many);
        assert!(
            shown.len() < ORDERS_SHOWN_BYTES + 1024,
            "{} bytes",
            shown.len()
        );
        let left = 150 - (shown.lines().count() - 1);
        assert!(
            shown.ends_with(&format!("     | ... ({left} more)\n")),
            "{shown}"
        );
        assert!(left > 0);
    }
}
