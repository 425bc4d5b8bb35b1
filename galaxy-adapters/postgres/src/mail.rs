//! [`MailStore`]: the outbox on `mail_deliveries`, every attempt in `mail_attempts`.

use std::sync::LazyLock;

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Leased};
use galaxy_core::domain::mail::{
    AttemptOutcome, MailAttempt, MailDelivery, MailExtras, MailStatus, OutgoingMail, RedactedMail,
};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::domain::{LeaseToken, MailId, Timestamp};
use galaxy_core::ports::{
    BatchFinished, MailAttemptEnd, MailFinish, MailNext, MailStore, StoreError,
};
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;

use crate::PgStore;
use crate::error::{corrupt, db};
use crate::queue::{
    self, ClaimOrder, Commit, DeadTable, FinishColumn, FinishPlan, QueueTable, StatusPages,
};
use crate::rows::{RowExt, keyset_page_sql, page_of, u32_param};

const MAIL: &str = MailDelivery::ENTITY;
const ATTEMPT: &str = "mail attempt";

/// The outbox as a leased queue (its ready table is `mail_deliveries_ready`).
const QUEUE: QueueTable = QueueTable {
    table: "mail_deliveries",
    ready: "mail_deliveries_ready",
    waiting: &["pending", "retrying"],
    leased: "sending",
    due: "next_attempt_at",
    order: ClaimOrder::DueFirst,
    // Durable both ways: a lost finish would send the mail again, a lost claim could
    // have two workers send it at once, and a mail sent twice reaches its reader twice.
    claim_commit: Commit::Durable,
    finish_commit: Commit::Durable,
    dead: Some(DeadTable {
        table: "mail_deliveries_dead",
        status: "dead",
    }),
};

/// What finishing an attempt changes beyond the status, and the attempt row it records.
const FINISH_COLUMNS: &[FinishColumn] = &[
    FinishColumn {
        name: "next_attempt_at",
        sql_type: "timestamptz",
        set: Some("next_attempt_at = COALESCE(u.next_attempt_at, q.next_attempt_at)"),
    },
    FinishColumn {
        name: "sent_at",
        sql_type: "timestamptz",
        set: Some("sent_at = COALESCE(u.sent_at, q.sent_at)"),
    },
    FinishColumn {
        name: "uncount",
        sql_type: "bigint",
        set: Some("attempts = GREATEST(q.attempts - u.uncount, 0)"),
    },
    FinishColumn {
        name: "failure",
        sql_type: "text",
        set: Some("last_error = COALESCE(u.failure, q.last_error)"),
    },
    // A delivered mail that carried a secret: what the outbox keeps of it (the
    // redacted subject is NULL for every other mail, which keeps its own).
    FinishColumn {
        name: "redacted_subject",
        sql_type: "text",
        set: Some("subject = COALESCE(u.redacted_subject, q.subject)"),
    },
    FinishColumn {
        name: "redacted_text",
        sql_type: "text",
        set: Some("text_body = COALESCE(u.redacted_text, q.text_body)"),
    },
    FinishColumn {
        name: "redacted_html",
        sql_type: "text",
        set: Some(
            "html_body = CASE WHEN u.redacted_subject IS NULL THEN q.html_body \
             ELSE u.redacted_html END",
        ),
    },
    // Only the Reply-To of the extras changes: an attached report is not sent back.
    FinishColumn {
        name: "redacted_reply_to",
        sql_type: "text",
        set: Some(
            "extras = CASE WHEN u.redacted_subject IS NULL THEN q.extras \
             WHEN u.redacted_reply_to IS NULL THEN q.extras - 'reply_to' \
             ELSE jsonb_set(q.extras, '{reply_to}', to_jsonb(u.redacted_reply_to)) END",
        ),
    },
    FinishColumn {
        name: "attempt_number",
        sql_type: "bigint",
        set: None,
    },
    FinishColumn {
        name: "attempt_outcome",
        sql_type: "text",
        set: None,
    },
    FinishColumn {
        name: "attempt_detail",
        sql_type: "text",
        set: None,
    },
    FinishColumn {
        name: "attempt_at",
        sql_type: "timestamptz",
        set: None,
    },
];

/// The attempt rows of the finished mails, in the same statement (so the status change
/// and its attempt commit together). Their mail ids come from `changed`, the mails this
/// statement updated and holds locked: the reason `mail_attempts.mail_id` needs no
/// foreign key (migration 0014), whose per-row check cost more than the insert.
const RECORD_ATTEMPTS: &str = "recorded AS ( \
    INSERT INTO mail_attempts (mail_id, number, outcome, detail, at) \
    SELECT id, attempt_number, attempt_outcome, attempt_detail, attempt_at FROM changed \
    WHERE attempt_outcome IS NOT NULL)";

static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| QUEUE.claim_sql());
static ENQUEUE_SQL: LazyLock<String> = LazyLock::new(|| {
    QUEUE.keep_ready(
        "INSERT INTO mail_deliveries (id, idempotency_key, to_email, kind, locale, subject, \
         text_body, html_body, status, attempts, next_attempt_at, lease_token, lease_until, \
         last_error, created_at, updated_at, sent_at, extras) VALUES ($1, $2, $3, $4, \
         $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
        None,
    )
});
static RETRY_DEAD_SQL: LazyLock<String> = LazyLock::new(|| {
    QUEUE.keep_ready(
        "UPDATE mail_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, \
         lease_token = NULL, lease_until = NULL, updated_at = $2 \
         WHERE id = $1 AND status = 'dead' RETURNING *",
        None,
    )
});
/// The list by status: a side table's page for every status but `sent`.
static PAGES: LazyLock<StatusPages> = LazyLock::new(|| {
    QUEUE.status_pages(
        MailStatus::ALL.iter().map(|s| s.as_str()),
        keyset_page_sql!("mail_deliveries", "id", "status", "text"),
    )
});
static DEPTH_SQL: LazyLock<String> = LazyLock::new(|| QUEUE.depth_sql());
static FINISH_SQL: LazyLock<String> =
    LazyLock::new(|| QUEUE.finish_sql(FINISH_COLUMNS, Some(RECORD_ATTEMPTS)));

fn mail_from_row(row: &PgRow) -> Result<MailDelivery, StoreError> {
    let mail = OutgoingMail {
        idempotency_key: row.col(MAIL, "idempotency_key")?,
        to: row.col_parse(MAIL, "to_email", Email::parse)?,
        kind: row.col(MAIL, "kind")?,
        locale: row.col_parse(MAIL, "locale", Locale::parse)?,
        subject: row.col(MAIL, "subject")?,
        text_body: row.col(MAIL, "text_body")?,
        html_body: row.col(MAIL, "html_body")?,
        extras: extras_from_row(row)?,
    };
    Ok(MailDelivery {
        id: MailId::from_uuid(row.col(MAIL, "id")?),
        mail,
        status: row.col_name(MAIL, "status", MailStatus::parse)?,
        attempts: row.col_u32(MAIL, "attempts")?,
        next_attempt_at: row.col(MAIL, "next_attempt_at")?,
        lease: row.col_lease(MAIL, "lease_token", "lease_until")?,
        last_error: row.col(MAIL, "last_error")?,
        created_at: row.col(MAIL, "created_at")?,
        updated_at: row.col(MAIL, "updated_at")?,
        sent_at: row.col(MAIL, "sent_at")?,
    })
}

/// The `extras` column: `{}` for mail without any.
fn extras_from_row(row: &PgRow) -> Result<MailExtras, StoreError> {
    let value: serde_json::Value = row.col(MAIL, "extras")?;
    serde_json::from_value(value).map_err(|e| corrupt(MAIL, "extras", e.to_string()))
}

fn mails_from_rows(rows: &[PgRow]) -> Result<Vec<MailDelivery>, StoreError> {
    rows.iter().map(mail_from_row).collect()
}

fn attempt_from_row(row: &PgRow) -> Result<MailAttempt, StoreError> {
    Ok(MailAttempt {
        mail_id: MailId::from_uuid(row.col(ATTEMPT, "mail_id")?),
        number: row.col_u32(ATTEMPT, "number")?,
        outcome: row.col_name(ATTEMPT, "outcome", AttemptOutcome::parse)?,
        detail: row.col(ATTEMPT, "detail")?,
        at: row.col(ATTEMPT, "at")?,
    })
}

/// The column changes one [`MailNext`] stands for.
struct NextColumns {
    status: MailStatus,
    /// New due time (`None` keeps it).
    next_attempt_at: Option<Timestamp>,
    /// Set when sent.
    sent_at: Option<Timestamp>,
    /// How many attempts to take back (a release was not an attempt).
    uncount: i64,
}

fn next_columns(next: &MailNext, at: Timestamp) -> NextColumns {
    let keep = |status| NextColumns {
        status,
        next_attempt_at: None,
        sent_at: None,
        uncount: 0,
    };
    match next {
        MailNext::Sent | MailNext::SentRedacted(_) => NextColumns {
            sent_at: Some(at),
            ..keep(MailStatus::Sent)
        },
        MailNext::Retry(due) => NextColumns {
            next_attempt_at: Some(*due),
            ..keep(MailStatus::Retrying)
        },
        MailNext::Dead => keep(MailStatus::Dead),
        MailNext::Release(due) => NextColumns {
            next_attempt_at: Some(*due),
            uncount: 1,
            ..keep(MailStatus::Pending)
        },
    }
}

/// What the outbox keeps of a mail this attempt delivered, when it carried a secret.
fn redacted(end: &MailAttemptEnd) -> Option<&RedactedMail> {
    match &end.next {
        MailNext::SentRedacted(kept) => Some(kept),
        _ => None,
    }
}

/// One attempt column of a batch (`NULL` where no attempt is recorded).
fn column<'a, T>(
    attempts: &'a [Option<MailAttempt>],
    value: impl Fn(&'a MailAttempt) -> T,
) -> Vec<Option<T>> {
    attempts.iter().map(|a| a.as_ref().map(&value)).collect()
}

impl PgStore {
    /// `NotFound` when the mail does not exist, else a `Conflict` naming its status.
    async fn mail_conflict(&self, id: MailId, why: &str) -> StoreError {
        match self.get_mail(id).await {
            Ok(stored) => {
                StoreError::conflict(MAIL, id, format!("status is {}, {why}", stored.status))
            }
            Err(error) => error,
        }
    }
}

/// Binds a batch's arrays to the finish statement ([`FINISH_SQL`], or a statement that
/// wraps it) in the order of its parameters.
fn bind_finish<'q>(
    query: Query<'q, Postgres, PgArguments>,
    plan: &FinishPlan<'_, MailId, MailAttemptEnd>,
) -> Query<'q, Postgres, PgArguments> {
    let next: Vec<NextColumns> = plan
        .items()
        .iter()
        .map(|f| next_columns(&f.outcome.next, f.at))
        .collect();
    let attempts = plan.column(|end: &MailAttemptEnd| end.attempt.clone());
    query
        .bind(plan.ids())
        .bind(plan.tokens())
        .bind(next.iter().map(|n| n.status.as_str()).collect::<Vec<_>>())
        .bind(plan.ats())
        .bind(next.iter().map(|n| n.next_attempt_at).collect::<Vec<_>>())
        .bind(next.iter().map(|n| n.sent_at).collect::<Vec<_>>())
        .bind(next.iter().map(|n| n.uncount).collect::<Vec<_>>())
        .bind(
            attempts
                .iter()
                .map(|a| a.as_ref().filter(|a| a.outcome != AttemptOutcome::Sent))
                .map(|a| a.map(|a| a.detail.clone()))
                .collect::<Vec<_>>(),
        )
        .bind(plan.column(|end| redacted(end).map(|kept| kept.subject.clone())))
        .bind(plan.column(|end| redacted(end).map(|kept| kept.text_body.clone())))
        .bind(plan.column(|end| redacted(end).and_then(|kept| kept.html_body.clone())))
        .bind(plan.column(|end| {
            redacted(end).and_then(|kept| kept.reply_to.as_ref().map(|a| a.as_str().to_owned()))
        }))
        .bind(column(&attempts, |a| u32_param(a.number)))
        .bind(column(&attempts, |a| a.outcome.as_str()))
        .bind(column(&attempts, |a| a.detail.clone()))
        .bind(column(&attempts, |a| a.at))
}

#[async_trait]
impl MailStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn enqueue_mail(&self, delivery: &MailDelivery) -> Result<MailDelivery, StoreError> {
        let (mail, lease) = (&delivery.mail, delivery.lease.as_ref());
        let inserted = sqlx::query(ENQUEUE_SQL.as_str())
            .bind(delivery.id.as_uuid())
            .bind(&mail.idempotency_key)
            .bind(mail.to.as_str())
            .bind(&mail.kind)
            .bind(mail.locale.as_str())
            .bind(&mail.subject)
            .bind(&mail.text_body)
            .bind(mail.html_body.as_deref())
            .bind(delivery.status.as_str())
            .bind(u32_param(delivery.attempts))
            .bind(delivery.next_attempt_at)
            .bind(lease.map(|l| l.token.as_uuid()))
            .bind(lease.map(|l| l.until))
            .bind(delivery.last_error.as_deref())
            .bind(delivery.created_at)
            .bind(delivery.updated_at)
            .bind(delivery.sent_at)
            .bind(serde_json::to_value(&mail.extras).map_err(StoreError::internal)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(db(MAIL))?;
        if let Some(row) = inserted {
            return mail_from_row(&row);
        }
        let row = sqlx::query("SELECT * FROM mail_deliveries WHERE idempotency_key = $1")
            .bind(&mail.idempotency_key)
            .fetch_one(&self.pool)
            .await
            .map_err(db(MAIL))?;
        mail_from_row(&row)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_mail(&self, id: MailId) -> Result<MailDelivery, StoreError> {
        let row = sqlx::query("SELECT * FROM mail_deliveries WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(MAIL))?;
        match row {
            Some(row) => mail_from_row(&row),
            None => Err(StoreError::not_found(MAIL, id)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_mail(
        &self,
        status: Option<MailStatus>,
        page: &PageRequest,
    ) -> Result<Page<MailDelivery>, StoreError> {
        let rows = PAGES
            .fetch(&self.pool, status.map(|s| s.as_str()), page, MAIL)
            .await?;
        let mails = mails_from_rows(&rows)?;
        Ok(page_of(mails, page, |m| (m.created_at, m.id.as_uuid())))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn claim_mail(&self, claim: &ClaimRequest) -> Result<Vec<MailDelivery>, StoreError> {
        QUEUE
            .claim(&self.pool, CLAIM_SQL.as_str(), claim, mail_from_row)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn finish_mail_attempt(
        &self,
        id: MailId,
        token: LeaseToken,
        attempt: Option<MailAttempt>,
        next: MailNext,
        at: Timestamp,
    ) -> Result<MailDelivery, StoreError> {
        let batch = queue::one(id, token, MailAttemptEnd { attempt, next }, at);
        queue::single(self.finish_mail_attempts(&batch).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(batch = finishes.len()), err(level = "debug"))]
    async fn finish_mail_attempts(&self, finishes: &[MailFinish]) -> BatchFinished<MailDelivery> {
        let plan = FinishPlan::new(finishes, |id: MailId| id.as_uuid());
        // One statement for the whole batch: each row changes only while its own token
        // still holds its lease, and its attempt row commits with it.
        let query = bind_finish(sqlx::query(FINISH_SQL.as_str()), &plan);
        let rows = QUEUE.finish(&self.pool, query).await.map_err(db(MAIL))?;
        QUEUE.settle(&self.pool, &plan, &rows, mail_from_row).await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn mail_attempts(&self, id: MailId) -> Result<Vec<MailAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id AS found, a.* FROM mail_deliveries m \
             LEFT JOIN mail_attempts a ON a.mail_id = m.id WHERE m.id = $1 ORDER BY a.seq",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db(ATTEMPT))?;
        if rows.is_empty() {
            return Err(StoreError::not_found(MAIL, id));
        }
        let mut attempts = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: Option<i64> = row.col(ATTEMPT, "seq")?;
            if seq.is_some() {
                attempts.push(attempt_from_row(row)?);
            }
        }
        Ok(attempts)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn retry_dead_mail(&self, id: MailId, at: Timestamp) -> Result<MailDelivery, StoreError> {
        let row = sqlx::query(RETRY_DEAD_SQL.as_str())
            .bind(id.as_uuid())
            .bind(at)
            .fetch_optional(&self.pool)
            .await
            .map_err(db(MAIL))?;
        match row {
            Some(row) => mail_from_row(&row),
            None => Err(self
                .mail_conflict(id, "only dead mail can be retried")
                .await),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn purge_sent_mail(&self, before: Timestamp) -> Result<u64, StoreError> {
        // `sent_at` is not indexed (a finish changes it, and stays a HOT update).
        self.purge_mail("status = 'sent' AND sent_at < $1", before)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn purge_dead_mail(&self, before: Timestamp) -> Result<u64, StoreError> {
        // A dead mail's last change (`updated_at`) is its death.
        self.purge_mail("status = 'dead' AND updated_at < $1", before)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn count_mail_by_status(&self) -> Result<Vec<(MailStatus, u64)>, StoreError> {
        let all = MailStatus::ALL;
        self.count_mail(
            "SELECT status, count(*) FROM mail_deliveries GROUP BY status",
            &all,
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn mail_queue_depth(&self) -> Result<Vec<(MailStatus, u64)>, StoreError> {
        // From the ready and dead tables: every mail but the sent ones is in one of them.
        let held = MailStatus::ALL.map(|s| (s != MailStatus::Sent).then_some(s));
        let held: Vec<MailStatus> = held.into_iter().flatten().collect();
        self.count_mail(DEPTH_SQL.as_str(), &held).await
    }
}

impl PgStore {
    /// Runs `sql`, which counts mail by status (rows `(status, count)`), and returns a
    /// count for each of `statuses` in that order (0 for one without rows).
    async fn count_mail(
        &self,
        sql: &str,
        statuses: &[MailStatus],
    ) -> Result<Vec<(MailStatus, u64)>, StoreError> {
        // Every text comes from a `static` of this file, never from input.
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(db(MAIL))?;
        let mut counts: Vec<(MailStatus, u64)> = statuses.iter().map(|s| (*s, 0)).collect();
        for (status, count) in rows {
            let status = MailStatus::parse(&status)
                .ok_or_else(|| corrupt(MAIL, "status", format!("unknown {status:?}")))?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = u64::try_from(count).unwrap_or_default();
            }
        }
        Ok(counts)
    }

    /// Deletes the mails `ended` picks (`$1` is `before`; a constant of this file, never
    /// input), with their attempts, a batch at a time, each batch in one statement: `mail_attempts` has no foreign key to
    /// cascade (migration 0014), and the two purges are the only statements that delete
    /// mail. A mail that ended before `before` was created before it: the bound on
    /// `created_at` makes the purge a range scan of the listing index.
    async fn purge_mail(&self, ended: &'static str, before: Timestamp) -> Result<u64, StoreError> {
        let sql = format!(
            "WITH gone AS (DELETE FROM mail_deliveries WHERE id = ANY(ARRAY(\
                 SELECT id FROM mail_deliveries WHERE created_at < $1 \
                 AND created_at >= COALESCE($3, '-infinity'::timestamptz) AND {ended} \
                 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)) RETURNING id, created_at), \
             attempts AS (DELETE FROM mail_attempts \
                 WHERE mail_id = ANY(ARRAY(SELECT id FROM gone))) \
             SELECT count(*), max(created_at) FROM gone"
        );
        self.purge_in_batches(&sql, before, MAIL).await
    }
}

#[cfg(test)]
mod tests;
