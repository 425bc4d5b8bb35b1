//! The mail outbox: one row per mail, delivered at least once with retries, dead after
//! the attempt budget.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::lease::{ClaimKey, Lease, Leased, QueueState};
use super::mail_in::OrdersToken;
use super::retry::{RetryDecision, RetryPolicy};
use super::user::{Email, Locale};
use super::{InvalidTransition, MailId, Timestamp};

/// Where a mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    /// Waiting for its first attempt.
    Pending,
    /// Claimed by a worker (under a lease).
    Sending,
    /// Accepted by the mail server.
    Sent,
    /// A transient failure; waits until `next_attempt_at`.
    Retrying,
    /// Gave up (permanent failure or budget spent); an admin may retry.
    Dead,
}

impl MailStatus {
    /// Every status.
    pub const ALL: [MailStatus; 5] = [
        Self::Pending,
        Self::Sending,
        Self::Sent,
        Self::Retrying,
        Self::Dead,
    ];

    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Retrying => "retrying",
            Self::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

impl fmt::Display for MailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mail to be queued. The idempotency key makes enqueueing the same mail twice a
/// no-op (the store returns the first one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMail {
    /// Unique per logical mail, e.g. `login-code:<challenge id>`.
    pub idempotency_key: String,
    /// Recipient.
    pub to: Email,
    /// What the mail is about (`login_code`, `turn_completed`, ...), for filtering.
    pub kind: String,
    /// Recipient's locale (already applied to the bodies).
    pub locale: Locale,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// Optional HTML alternative.
    pub html_body: Option<String>,
    /// Threading and reply headers and an attachment, for the mails of orders by e-mail
    /// (empty for every other mail).
    #[serde(default)]
    pub extras: MailExtras,
}

/// The headers and attachment only some mails carry: the turn mails (their `Reply-To` is
/// the player's orders address, the report may be attached) and the replies to orders
/// by e-mail (threaded with `In-Reply-To`/`References`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailExtras {
    /// Where replies go (`Reply-To`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Email>,
    /// The Message-ID this mail answers (`In-Reply-To`), without angle brackets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first (`References`), without angle brackets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// One attached plain-text file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<TextAttachment>,
}

impl MailExtras {
    /// Whether the mail carries none of them.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A plain-text file attached to a mail (UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextAttachment {
    /// The file name the recipient sees (`report-turn-3.txt`).
    pub file_name: String,
    /// Its content.
    pub text: String,
}

/// The `kind` of the mail carrying a login code: a secret, so its body is blanked once
/// it was delivered (see [`OutgoingMail::redacted`]).
pub const LOGIN_CODE_KIND: &str = "login_code";

/// What a delivered secret-carrying mail's body reads afterwards in the outbox (admin
/// views keep the recipient, subject, times and attempts).
pub const REDACTED_BODY: &str = "(removed once delivered: this mail carried a login code)";

/// What stands in a delivered mail, as the outbox keeps it, where its orders token stood
/// (`orders+removed@galaxy.example`): the address shows it was one, the token is gone.
pub const REDACTED_TOKEN: &str = "removed";

/// What the outbox keeps of a delivered mail that carried a secret, in place of its
/// subject, bodies and extras ([`OutgoingMail::redacted`]): written with the attempt
/// that delivered it, so a leaked outbox table holds no secret that still works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactedMail {
    /// The subject, the secret taken out.
    pub subject: String,
    /// The plain-text body, the secret taken out (or replaced whole).
    pub text_body: String,
    /// The HTML body, the secret taken out (or dropped).
    pub html_body: Option<String>,
    /// The `Reply-To`, the secret taken out (the other extras, an attached report
    /// among them, hold none and stay as they are).
    pub reply_to: Option<Email>,
}

impl OutgoingMail {
    /// What the outbox keeps of this mail once delivered, when it carries a secret:
    /// - a login code (its kind is [`LOGIN_CODE_KIND`]): the text body becomes
    ///   [`REDACTED_BODY`] and the HTML body goes;
    /// - an orders address (the `Reply-To` of a turn mail or an answer to mailed
    ///   orders, `orders+<token>@domain`, also quoted in its text, perhaps in its subject
    ///   through an operator's template): the token is replaced by [`REDACTED_TOKEN`]
    ///   wherever it stands (so `mailto:` links and encoded forms go too), the rest
    ///   (the report, the attachment) stays for the admin views.
    ///
    /// `None` for a mail with no secret: it is kept as it was sent.
    pub fn redacted(&self) -> Option<RedactedMail> {
        if self.kind == LOGIN_CODE_KIND {
            return Some(RedactedMail {
                subject: self.subject.clone(),
                text_body: REDACTED_BODY.to_owned(),
                html_body: None,
                reply_to: self.extras.reply_to.clone(),
            });
        }
        let reply_to = self.extras.reply_to.as_ref()?;
        let token = OrdersToken::from_any_address(reply_to.as_str())?;
        let scrub = |text: &str| text.replace(token.as_str(), REDACTED_TOKEN);
        Some(RedactedMail {
            subject: scrub(&self.subject),
            text_body: scrub(&self.text_body),
            html_body: self.html_body.as_deref().map(scrub),
            reply_to: Email::parse(&scrub(reply_to.as_str())).ok(),
        })
    }
}

/// One mail in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDelivery {
    /// Stable id.
    pub id: MailId,
    /// The mail itself.
    pub mail: OutgoingMail,
    /// Status.
    pub status: MailStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending and retrying rows).
    pub next_attempt_at: Timestamp,
    /// The claim, while `sending`.
    pub lease: Option<Lease>,
    /// The last failure, as the server or transport put it.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When the server accepted it.
    pub sent_at: Option<Timestamp>,
}

impl MailDelivery {
    /// A freshly queued mail, due at once.
    pub fn new(id: MailId, mail: OutgoingMail, now: Timestamp) -> Self {
        Self {
            id,
            mail,
            status: MailStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            lease: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            sent_at: None,
        }
    }

    /// Whether a worker may claim it at `now`: pending or retrying and due, or sending
    /// with a lapsed lease (its worker died mid-attempt). The queue rule of [`Leased`].
    pub fn is_claimable_at(&self, now: Timestamp) -> bool {
        Leased::is_claimable_at(self, now)
    }

    /// The outcome of a failed attempt under `policy`: `Retrying` with the next attempt
    /// time, or `Dead`. `permanent` failures (a 5xx reply) are dead at once.
    pub fn after_failure(
        &self,
        policy: &RetryPolicy,
        permanent: bool,
        jitter: f64,
        now: Timestamp,
    ) -> MailFailureOutcome {
        if permanent {
            return MailFailureOutcome::Dead;
        }
        match policy.after_failure(self.attempts, jitter) {
            RetryDecision::RetryAfter(delay) => MailFailureOutcome::Retry {
                next_attempt_at: now + delay,
            },
            RetryDecision::GiveUp => MailFailureOutcome::Dead,
        }
    }

    /// Checks that an admin may re-queue it (only dead mail).
    pub fn check_retry(&self) -> Result<(), InvalidTransition> {
        if self.status == MailStatus::Dead {
            Ok(())
        } else {
            Err(InvalidTransition::new(
                "mail",
                self.status,
                MailStatus::Pending,
                "admin",
            ))
        }
    }
}

impl Leased for MailDelivery {
    type Id = MailId;
    const ENTITY: &'static str = "mail";

    fn id(&self) -> MailId {
        self.id
    }

    fn queue_state(&self) -> QueueState {
        match self.status {
            MailStatus::Pending | MailStatus::Retrying => QueueState::Waiting,
            MailStatus::Sending => QueueState::Leased,
            MailStatus::Sent | MailStatus::Dead => QueueState::Done,
        }
    }

    fn status_name(&self) -> &'static str {
        self.status.as_str()
    }

    fn due_at(&self) -> Timestamp {
        self.next_attempt_at
    }

    fn claim_key(&self) -> ClaimKey {
        ClaimKey {
            first: self.next_attempt_at,
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }

    fn lease(&self) -> Option<Lease> {
        self.lease
    }

    fn lease_mut(&mut self) -> Option<&mut Lease> {
        self.lease.as_mut()
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }

    fn take_claim(&mut self, lease: Lease, now: Timestamp) {
        self.status = MailStatus::Sending;
        self.lease = Some(lease);
        self.attempts = self.attempts.saturating_add(1);
        self.updated_at = now;
    }

    fn end_lease(&mut self, at: Timestamp) {
        self.lease = None;
        self.updated_at = at;
    }
}

/// Where a failed attempt leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailFailureOutcome {
    /// Try again at this instant.
    Retry {
        /// When.
        next_attempt_at: Timestamp,
    },
    /// Give up.
    Dead,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Accepted by the server.
    Sent,
    /// Failed in a way worth retrying (4xx, connection refused, timeout).
    Transient,
    /// Failed for good (5xx, bad address).
    Permanent,
}

impl AttemptOutcome {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        [Self::Sent, Self::Transient, Self::Permanent]
            .into_iter()
            .find(|s| s.as_str() == input)
    }
}

/// One recorded attempt of a mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailAttempt {
    /// The mail.
    pub mail_id: MailId,
    /// 1-based attempt number.
    pub number: u32,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The server's reply or the transport error.
    pub detail: String,
    /// When it ended.
    pub at: Timestamp,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone, Utc};
    use uuid::Uuid;

    #[test]
    fn claimability_and_failures() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mail = OutgoingMail {
            idempotency_key: "k".into(),
            to: Email::parse("a@b.c").unwrap(),
            kind: "login_code".into(),
            locale: Locale::default(),
            subject: "s".into(),
            text_body: "t".into(),
            html_body: None,
            extras: Default::default(),
        };
        let mut d = MailDelivery::new(MailId::from_uuid(Uuid::nil()), mail, now);
        assert!(d.is_claimable_at(now));
        d.status = MailStatus::Sending;
        d.lease = Some(Lease::new(
            crate::domain::LeaseToken::from_uuid(Uuid::nil()),
            now,
            TimeDelta::seconds(30),
        ));
        assert!(!d.is_claimable_at(now + TimeDelta::seconds(29)));
        assert!(d.is_claimable_at(now + TimeDelta::seconds(30)));
        // Only the lease's token finishes it, even after the lease lapsed.
        let holder = crate::domain::LeaseToken::from_uuid(Uuid::nil());
        assert_eq!(d.check_held(holder), Ok(()));
        let stranger = crate::domain::LeaseToken::from_uuid(Uuid::from_u128(1));
        assert_eq!(
            d.check_held(stranger).map_err(|e| e.to_string()),
            Err("status is sending, lease not held by this token".to_owned())
        );
        d.status = MailStatus::Sent;
        assert!(
            d.check_held(holder).is_err(),
            "a finished mail is held by nobody"
        );
        assert!(!d.is_claimable_at(now + TimeDelta::days(1)));
        d.status = MailStatus::Sending;
        let policy = RetryPolicy::new(TimeDelta::seconds(10), TimeDelta::seconds(60), 2).unwrap();
        d.attempts = 1;
        assert_eq!(
            d.after_failure(&policy, false, 0.5, now),
            MailFailureOutcome::Retry {
                next_attempt_at: now + TimeDelta::seconds(10)
            }
        );
        assert_eq!(
            d.after_failure(&policy, true, 0.5, now),
            MailFailureOutcome::Dead
        );
        d.attempts = 2;
        assert_eq!(
            d.after_failure(&policy, false, 0.5, now),
            MailFailureOutcome::Dead
        );
        assert!(d.check_retry().is_err());
        d.status = MailStatus::Dead;
        assert!(d.check_retry().is_ok());
    }

    fn turn_mail(token: &str) -> OutgoingMail {
        let address = format!("orders+{token}@galaxy.example");
        OutgoingMail {
            idempotency_key: "turn".into(),
            to: Email::parse("ann@example.org").unwrap(),
            kind: "turn_completed".into(),
            locale: Locale::default(),
            subject: format!("Turn 3 ({address})"),
            text_body: format!("Mail your orders to {address}.\n\nThe report."),
            html_body: Some(format!(
                "<a href=\"mailto:orders%2B{token}@galaxy.example\">{address}</a>"
            )),
            extras: MailExtras {
                reply_to: Some(Email::parse(&address).unwrap()),
                references: vec!["turn-3@galaxy.example".into()],
                attachment: Some(TextAttachment {
                    file_name: "report-turn-3.txt".into(),
                    text: "The report.".into(),
                }),
                ..MailExtras::default()
            },
        }
    }

    #[test]
    fn a_delivered_mail_keeps_no_orders_token_and_everything_else() {
        let token = "abcdefghijkmnpqrstuv";
        let mail = turn_mail(token);
        let kept = mail.redacted().expect("an orders address is a secret");
        let everything = format!("{kept:?}");
        assert!(!everything.contains(token), "{everything}");
        assert_eq!(kept.subject, "Turn 3 (orders+removed@galaxy.example)");
        assert_eq!(
            kept.text_body,
            "Mail your orders to orders+removed@galaxy.example.\n\nThe report."
        );
        assert_eq!(
            kept.html_body.as_deref(),
            Some(
                "<a href=\"mailto:orders%2Bremoved@galaxy.example\">\
                 orders+removed@galaxy.example</a>"
            )
        );
        assert_eq!(
            kept.reply_to.as_ref().map(Email::as_str),
            Some("orders+removed@galaxy.example")
        );
    }

    #[test]
    fn only_secret_carrying_mails_are_redacted() {
        let mut plain = turn_mail("abcdefghijkmnpqrstuv");
        plain.extras.reply_to = None;
        assert_eq!(plain.redacted(), None, "no Reply-To: nothing secret");
        // A Reply-To that is no orders address (an operator's template) is not a secret.
        plain.extras.reply_to = Some(Email::parse("support+games@galaxy.example").unwrap());
        assert_eq!(plain.redacted(), None);

        let mut code = turn_mail("abcdefghijkmnpqrstuv");
        code.kind = LOGIN_CODE_KIND.into();
        let kept = code.redacted().unwrap();
        assert_eq!(kept.text_body, REDACTED_BODY);
        assert_eq!(kept.html_body, None);
        assert_eq!(
            kept.subject, code.subject,
            "a login code's subject holds no code"
        );
    }
}
