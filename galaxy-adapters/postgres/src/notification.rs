//! [`NotificationStore`] on `notification_intents` and `notification_routes`; dead
//! letters are routes in status `dead_letter` (the view `notification_dead_letters`
//! shows them to operators).

use std::sync::LazyLock;

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Leased};
use galaxy_core::domain::notification::{
    Channel, NotificationIntent, NotificationKind, NotificationRoute, RouteStatus,
};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::{GameId, IntentId, LeaseToken, RouteId, Timestamp, UserId};
use galaxy_core::ports::{
    BatchFinished, IntentInsert, NotificationStore, RouteFinish, RouteNext, StoreError,
};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::PgStore;
use crate::error::db;
use crate::queue::{
    self, ClaimOrder, Commit, DeadTable, FinishColumn, FinishPlan, QueueTable, StatusPages,
};
use crate::rows::{RowExt, keyset_page_sql, page_of, u32_param};

const INTENT: &str = "notification intent";
const ROUTE: &str = NotificationRoute::ENTITY;

/// The routes as a leased queue, shaped like the outbox (ready table
/// `notification_routes_ready`).
const QUEUE: QueueTable = QueueTable {
    table: "notification_routes",
    ready: "notification_routes_ready",
    waiting: &["pending", "retrying"],
    leased: "dispatching",
    due: "next_attempt_at",
    order: ClaimOrder::DueFirst,
    // Relaxed both ways: a route's effects are keyed by the route (its mail by the
    // idempotency key `notification:<route>`, its push event by the route id), so a route
    // handled twice, one after the other or at once, has them once.
    claim_commit: Commit::Relaxed,
    finish_commit: Commit::Relaxed,
    dead: Some(DeadTable {
        table: "notification_routes_dead",
        status: "dead_letter",
    }),
};

/// What finishing a dispatch changes beyond the status.
const FINISH_COLUMNS: &[FinishColumn] = &[
    FinishColumn {
        name: "next_attempt_at",
        sql_type: "timestamptz",
        set: Some("next_attempt_at = COALESCE(u.next_attempt_at, q.next_attempt_at)"),
    },
    FinishColumn {
        name: "error",
        sql_type: "text",
        set: Some("last_error = COALESCE(u.error, q.last_error)"),
    },
];

static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| QUEUE.claim_sql());
/// The list by status: a side table's page for every status but `delivered`.
static PAGES: LazyLock<StatusPages> = LazyLock::new(|| {
    QUEUE.status_pages(
        RouteStatus::ALL.iter().map(|s| s.as_str()),
        keyset_page_sql!("notification_routes", "id", "status", "text"),
    )
});
static INSERT_ROUTES_SQL: LazyLock<String> = LazyLock::new(|| {
    QUEUE.keep_ready(
        "INSERT INTO notification_routes (id, intent_id, user_id, channel, status, \
         attempts, next_attempt_at, lease_token, lease_until, last_error, created_at, \
         updated_at) SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], \
         $5::text[], $6::bigint[], $7::timestamptz[], $8::uuid[], $9::timestamptz[], \
         $10::text[], $11::timestamptz[], $12::timestamptz[]) RETURNING *",
        None,
    )
});
static RETRY_DEAD_SQL: LazyLock<String> = LazyLock::new(|| {
    QUEUE.keep_ready(
        "UPDATE notification_routes SET status = 'pending', attempts = 0, \
         next_attempt_at = $2, lease_token = NULL, lease_until = NULL, updated_at = $2 \
         WHERE id = $1 AND status = 'dead_letter' RETURNING *",
        None,
    )
});
static FINISH_SQL: LazyLock<String> = LazyLock::new(|| QUEUE.finish_sql(FINISH_COLUMNS, None));

/// The column changes of a [`RouteNext`]: status, new due time, error.
fn next_columns(next: &RouteNext) -> (RouteStatus, Option<Timestamp>, Option<&str>) {
    match next {
        RouteNext::Delivered => (RouteStatus::Delivered, None, None),
        RouteNext::Retry { at: due, error } => {
            (RouteStatus::Retrying, Some(*due), Some(error.as_str()))
        }
        RouteNext::DeadLetter { error } => (RouteStatus::DeadLetter, None, Some(error.as_str())),
    }
}

fn intent_from_row(row: &PgRow) -> Result<NotificationIntent, StoreError> {
    let recipients: Vec<Uuid> = row.col(INTENT, "recipients")?;
    let game_id: Option<Uuid> = row.col(INTENT, "game_id")?;
    let Json(payload): Json<serde_json::Value> = row.col(INTENT, "payload")?;
    Ok(NotificationIntent {
        id: IntentId::from_uuid(row.col(INTENT, "id")?),
        kind: row.col_name(INTENT, "kind", NotificationKind::parse)?,
        idempotency_key: row.col(INTENT, "idempotency_key")?,
        recipients: recipients.into_iter().map(UserId::from_uuid).collect(),
        game_id: game_id.map(GameId::from_uuid),
        payload,
        created_at: row.col(INTENT, "created_at")?,
    })
}

fn route_from_row(row: &PgRow) -> Result<NotificationRoute, StoreError> {
    Ok(NotificationRoute {
        id: RouteId::from_uuid(row.col(ROUTE, "id")?),
        intent_id: IntentId::from_uuid(row.col(ROUTE, "intent_id")?),
        user_id: UserId::from_uuid(row.col(ROUTE, "user_id")?),
        channel: row.col_name(ROUTE, "channel", Channel::parse)?,
        status: row.col_name(ROUTE, "status", RouteStatus::parse)?,
        attempts: row.col_u32(ROUTE, "attempts")?,
        next_attempt_at: row.col(ROUTE, "next_attempt_at")?,
        lease: row.col_lease(ROUTE, "lease_token", "lease_until")?,
        last_error: row.col(ROUTE, "last_error")?,
        created_at: row.col(ROUTE, "created_at")?,
        updated_at: row.col(ROUTE, "updated_at")?,
    })
}

fn routes_from_rows(rows: &[PgRow]) -> Result<Vec<NotificationRoute>, StoreError> {
    rows.iter().map(route_from_row).collect()
}

/// The routes as column arrays, for one `INSERT ... SELECT FROM UNNEST(...)`.
#[derive(Default)]
struct RouteColumns<'a> {
    id: Vec<Uuid>,
    intent_id: Vec<Uuid>,
    user_id: Vec<Uuid>,
    channel: Vec<&'static str>,
    status: Vec<&'static str>,
    attempts: Vec<i64>,
    next_attempt_at: Vec<Timestamp>,
    lease_token: Vec<Option<Uuid>>,
    lease_until: Vec<Option<Timestamp>>,
    last_error: Vec<Option<&'a str>>,
    created_at: Vec<Timestamp>,
    updated_at: Vec<Timestamp>,
}

impl<'a> RouteColumns<'a> {
    fn of(routes: &'a [NotificationRoute]) -> Self {
        let mut c = Self::default();
        for r in routes {
            c.id.push(r.id.as_uuid());
            c.intent_id.push(r.intent_id.as_uuid());
            c.user_id.push(r.user_id.as_uuid());
            c.channel.push(r.channel.as_str());
            c.status.push(r.status.as_str());
            c.attempts.push(u32_param(r.attempts));
            c.next_attempt_at.push(r.next_attempt_at);
            c.lease_token.push(r.lease.map(|l| l.token.as_uuid()));
            c.lease_until.push(r.lease.map(|l| l.until));
            c.last_error.push(r.last_error.as_deref());
            c.created_at.push(r.created_at);
            c.updated_at.push(r.updated_at);
        }
        c
    }
}

impl PgStore {
    /// `NotFound` when the route does not exist, else a `Conflict` naming its status.
    async fn route_conflict(&self, id: RouteId, why: &str) -> StoreError {
        let status: Result<Option<String>, _> =
            sqlx::query_scalar("SELECT status FROM notification_routes WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await;
        match status {
            Ok(Some(status)) => {
                StoreError::conflict(ROUTE, id, format!("status is {status}, {why}"))
            }
            Ok(None) => StoreError::not_found(ROUTE, id),
            Err(error) => db(ROUTE)(error),
        }
    }
}

#[async_trait]
impl NotificationStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn insert_intent(
        &self,
        intent: &NotificationIntent,
        routes: &[NotificationRoute],
    ) -> Result<IntentInsert, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(INTENT))?;
        let recipients: Vec<Uuid> = intent.recipients.iter().map(|u| u.as_uuid()).collect();
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO notification_intents (id, kind, idempotency_key, recipients, game_id, \
             payload, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(intent.id.as_uuid())
        .bind(intent.kind.as_str())
        .bind(&intent.idempotency_key)
        .bind(recipients)
        .bind(intent.game_id.map(|g| g.as_uuid()))
        .bind(Json(&intent.payload))
        .bind(intent.created_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(INTENT))?;
        if inserted.is_none() {
            let existing: Uuid = sqlx::query_scalar(
                "SELECT id FROM notification_intents WHERE idempotency_key = $1",
            )
            .bind(&intent.idempotency_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db(INTENT))?;
            return Ok(IntentInsert::Duplicate(IntentId::from_uuid(existing)));
        }
        let c = RouteColumns::of(routes);
        // All routes in one statement; a clashing route id fails it and the transaction
        // takes the intent back with it.
        sqlx::query(INSERT_ROUTES_SQL.as_str())
            .bind(c.id)
            .bind(c.intent_id)
            .bind(c.user_id)
            .bind(c.channel)
            .bind(c.status)
            .bind(c.attempts)
            .bind(c.next_attempt_at)
            .bind(c.lease_token)
            .bind(c.lease_until)
            .bind(c.last_error)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(db(ROUTE))?;
        tx.commit().await.map_err(db(INTENT))?;
        Ok(IntentInsert::Inserted)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_intent(&self, id: IntentId) -> Result<NotificationIntent, StoreError> {
        let row = sqlx::query("SELECT * FROM notification_intents WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(INTENT))?;
        match row {
            Some(row) => intent_from_row(&row),
            None => Err(StoreError::not_found(INTENT, id)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_routes(
        &self,
        status: Option<RouteStatus>,
        page: &PageRequest,
    ) -> Result<Page<NotificationRoute>, StoreError> {
        let rows = PAGES
            .fetch(&self.pool, status.map(|s| s.as_str()), page, ROUTE)
            .await?;
        let routes = routes_from_rows(&rows)?;
        Ok(page_of(routes, page, |r| (r.created_at, r.id.as_uuid())))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn claim_routes(
        &self,
        claim: &ClaimRequest,
    ) -> Result<Vec<NotificationRoute>, StoreError> {
        QUEUE
            .claim(&self.pool, CLAIM_SQL.as_str(), claim, route_from_row)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn finish_route(
        &self,
        id: RouteId,
        token: LeaseToken,
        next: &RouteNext,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        let batch = queue::one(id, token, next.clone(), at);
        queue::single(self.finish_routes(&batch).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(batch = finishes.len()), err(level = "debug"))]
    async fn finish_routes(&self, finishes: &[RouteFinish]) -> BatchFinished<NotificationRoute> {
        let plan = FinishPlan::new(finishes, |id: RouteId| id.as_uuid());
        let query = sqlx::query(FINISH_SQL.as_str())
            .bind(plan.ids())
            .bind(plan.tokens())
            .bind(plan.column(|next| next_columns(next).0.as_str()))
            .bind(plan.ats())
            .bind(plan.column(|next| next_columns(next).1))
            .bind(plan.column(|next| next_columns(next).2));
        let rows = QUEUE.finish(&self.pool, query).await.map_err(db(ROUTE))?;
        QUEUE.settle(&self.pool, &plan, &rows, route_from_row).await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn retry_dead_letter(
        &self,
        id: RouteId,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        let row = sqlx::query(RETRY_DEAD_SQL.as_str())
            .bind(id.as_uuid())
            .bind(at)
            .fetch_optional(&self.pool)
            .await
            .map_err(db(ROUTE))?;
        match row {
            Some(row) => route_from_row(&row),
            None => Err(self
                .route_conflict(id, "only dead letters can be retried")
                .await),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError> {
        // A delivered route never changes again, so an intent seen with every route
        // delivered cannot gain an open one before the update: nothing still to do is
        // lost. The intent row stays (its idempotency key), its payload emptied; the
        // partial index of migration 0020 holds only intents not yet compacted, so each
        // sweep reads those alone, a batch at a time.
        let sql = "WITH compacted AS (UPDATE notification_intents SET payload = '{}'::jsonb \
                 WHERE id = ANY(ARRAY(SELECT i.id FROM notification_intents i \
                 WHERE i.created_at < $1 AND i.created_at >= COALESCE($3, '-infinity'::timestamptz) \
                   AND i.payload <> '{}'::jsonb \
                   AND NOT EXISTS (SELECT 1 FROM notification_routes r \
                     WHERE r.intent_id = i.id AND r.status <> 'delivered') \
                 ORDER BY i.created_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
                 RETURNING id, created_at), \
             routes AS (DELETE FROM notification_routes \
                 WHERE intent_id = ANY(ARRAY(SELECT id FROM compacted))) \
             SELECT count(*), max(created_at) FROM compacted";
        self.purge_in_batches(sql, before, INTENT).await
    }
}
