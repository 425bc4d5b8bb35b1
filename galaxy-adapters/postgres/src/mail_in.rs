//! [`InboundMailStore`]: the inbound queue on `inbound_mail`, the orders addresses on
//! `orders_addresses` and the send budgets on `mail_in_sends` (migration 0009).

use std::sync::LazyLock;

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Leased};
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::mail_in::{
    InboundMail, InboundOutcome, InboundStatus, OrdersAddress, ReportDelivery, TokenDigest,
    TokenRecord, TokenSeed,
};
use galaxy_core::domain::{GameId, InboundMailId, Timestamp, UserId};
use galaxy_core::ports::{InboundFinish, InboundInsert, InboundMailStore, StoreError};
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::error::{corrupt, db};
use crate::locks::{self, Bucket};
use crate::queue::{self, ClaimOrder, Commit, FinishColumn, FinishPlan, QueueTable};
use crate::rows::{RowExt, u32_param};

const INBOUND: &str = InboundMail::ENTITY;
const ADDRESS: &str = "orders address";
const SEND: &str = "mail-in send";

/// The intake as a leased queue (its ready table is `inbound_mail_ready`).
const QUEUE: QueueTable = QueueTable {
    table: "inbound_mail",
    ready: "inbound_mail_ready",
    waiting: &["received"],
    leased: "processing",
    due: "received_at",
    order: ClaimOrder::DueFirst,
    // Durable both ways: the intake's acknowledgement promises the message is kept, and
    // a lost claim could have two workers hand the same orders to the engine at once.
    claim_commit: Commit::Durable,
    finish_commit: Commit::Durable,
    dead: None,
};

/// What finishing writes beyond the status.
const FINISH_COLUMNS: &[FinishColumn] = &[
    // A handled mail keeps neither its message nor its recipients (the orders token is
    // in both): `InboundMailStore::finish_inbound`.
    FinishColumn {
        name: "outcome",
        sql_type: "text",
        set: Some("outcome = u.outcome, raw = ''::bytea, envelope_to = '{}'::text[]"),
    },
    FinishColumn {
        name: "detail",
        sql_type: "text",
        set: Some("detail = u.detail"),
    },
];

static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| QUEUE.claim_sql());
static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    QUEUE.keep_ready(
        "INSERT INTO inbound_mail (id, dedupe_key, raw, envelope_from, envelope_to, status, \
         attempts, received_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
         ON CONFLICT (dedupe_key) DO NOTHING \
         RETURNING id, status, received_at, lease_until, created_at",
        None,
    )
});
static FINISH_SQL: LazyLock<String> = LazyLock::new(|| QUEUE.finish_sql(FINISH_COLUMNS, None));

fn inbound_from_row(row: &PgRow) -> Result<InboundMail, StoreError> {
    let outcome: Option<String> = row.col(INBOUND, "outcome")?;
    let outcome = outcome
        .map(|name| InboundOutcome::parse(&name).ok_or_else(|| corrupt(INBOUND, "outcome", name)))
        .transpose()?;
    Ok(InboundMail {
        id: InboundMailId::from_uuid(row.col(INBOUND, "id")?),
        dedupe_key: row.col(INBOUND, "dedupe_key")?,
        raw: row.col(INBOUND, "raw")?,
        envelope_from: row.col(INBOUND, "envelope_from")?,
        envelope_to: row.col(INBOUND, "envelope_to")?,
        status: row.col_name(INBOUND, "status", InboundStatus::parse)?,
        outcome,
        detail: row.col(INBOUND, "detail")?,
        attempts: row.col_u32(INBOUND, "attempts")?,
        lease: row.col_lease(INBOUND, "lease_token", "lease_until")?,
        received_at: row.col(INBOUND, "received_at")?,
        updated_at: row.col(INBOUND, "updated_at")?,
    })
}

fn address_from_row(row: &PgRow) -> Result<OrdersAddress, StoreError> {
    let seed: Vec<u8> = row.col(ADDRESS, "token_seed")?;
    let digest: Vec<u8> = row.col(ADDRESS, "token_digest")?;
    let token = TokenRecord {
        seed: TokenSeed::from_bytes(
            seed.try_into()
                .map_err(|_| corrupt(ADDRESS, "token_seed", "not 16 bytes"))?,
        ),
        digest: TokenDigest::from_bytes(
            digest
                .try_into()
                .map_err(|_| corrupt(ADDRESS, "token_digest", "not 32 bytes"))?,
        ),
    };
    Ok(OrdersAddress {
        user_id: UserId::from_uuid(row.col(ADDRESS, "user_id")?),
        game_id: GameId::from_uuid(row.col(ADDRESS, "game_id")?),
        token,
        report_delivery: row.col_name(ADDRESS, "report_delivery", ReportDelivery::parse)?,
        rotated_at: row.col(ADDRESS, "rotated_at")?,
    })
}

#[async_trait]
impl InboundMailStore for PgStore {
    async fn insert_inbound(&self, mail: &InboundMail) -> Result<InboundInsert, StoreError> {
        let inserted = sqlx::query(INSERT_SQL.as_str())
            .bind(mail.id.as_uuid())
            .bind(&mail.dedupe_key)
            .bind(&mail.raw)
            .bind(mail.envelope_from.as_deref())
            .bind(&mail.envelope_to)
            .bind(mail.status.as_str())
            .bind(u32_param(mail.attempts))
            .bind(mail.received_at)
            .bind(mail.updated_at)
            .fetch_optional(self.pool())
            .await
            .map_err(db(INBOUND))?;
        if inserted.is_some() {
            return Ok(InboundInsert::Stored);
        }
        let first: Option<(uuid::Uuid,)> =
            sqlx::query_as("SELECT id FROM inbound_mail WHERE dedupe_key = $1")
                .bind(&mail.dedupe_key)
                .fetch_optional(self.pool())
                .await
                .map_err(db(INBOUND))?;
        match first {
            Some((id,)) => Ok(InboundInsert::Duplicate(InboundMailId::from_uuid(id))),
            // The key's row vanished between the two statements (the retention purge
            // deleted it): report it as a conflict to retry.
            None => Err(StoreError::conflict(
                INBOUND,
                mail.id,
                "dedupe key vanished during insert",
            )),
        }
    }

    async fn get_inbound(&self, id: InboundMailId) -> Result<InboundMail, StoreError> {
        let row = sqlx::query("SELECT * FROM inbound_mail WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(self.pool())
            .await
            .map_err(db(INBOUND))?
            .ok_or_else(|| StoreError::not_found(INBOUND, id))?;
        inbound_from_row(&row)
    }

    async fn claim_inbound(&self, claim: &ClaimRequest) -> Result<Vec<InboundMail>, StoreError> {
        QUEUE
            .claim(self.pool(), CLAIM_SQL.as_str(), claim, inbound_from_row)
            .await
    }

    async fn finish_inbound(&self, finish: &InboundFinish) -> Result<InboundMail, StoreError> {
        let finishes = std::slice::from_ref(finish);
        let plan = FinishPlan::new(finishes, |id: InboundMailId| id.as_uuid());
        let query = sqlx::query(FINISH_SQL.as_str())
            .bind(plan.ids())
            .bind(plan.tokens())
            .bind(plan.column(|_| InboundStatus::Done.as_str()))
            .bind(plan.ats())
            .bind(plan.column(|end| end.outcome.as_str()))
            .bind(plan.column(|end| end.detail.clone()));
        let rows = QUEUE
            .finish(self.pool(), query)
            .await
            .map_err(db(INBOUND))?;
        queue::single(
            QUEUE
                .settle(self.pool(), &plan, &rows, inbound_from_row)
                .await?,
        )
    }

    async fn count_waiting_inbound(&self) -> Result<u64, StoreError> {
        // Every mail not yet done has its ready row; done ones (kept for thirty days) none.
        let (waiting,): (i64,) = sqlx::query_as("SELECT count(*) FROM inbound_mail_ready")
            .fetch_one(self.pool())
            .await
            .map_err(db(INBOUND))?;
        Ok(u64::try_from(waiting).unwrap_or_default())
    }

    async fn inbound_pending(
        &self,
        after: Timestamp,
        through: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // The ready rows are the mail not yet done: a join of those few, not a scan of
        // the done mail kept for thirty days.
        let (pending,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM inbound_mail_ready r \
             JOIN inbound_mail m ON m.id = r.id \
             WHERE m.received_at > $1 AND m.received_at <= $2 \
             AND (m.attempts = 0 OR (m.status = 'processing' AND m.lease_until > $3)))",
        )
        .bind(after)
        .bind(through)
        .bind(now)
        .fetch_one(self.pool())
        .await
        .map_err(db(INBOUND))?;
        Ok(pending)
    }

    async fn count_inbound(&self) -> Result<Vec<(Option<InboundOutcome>, u64)>, StoreError> {
        let rows: Vec<(Option<String>, i64)> =
            sqlx::query_as("SELECT outcome, count(*) FROM inbound_mail GROUP BY outcome")
                .fetch_all(self.pool())
                .await
                .map_err(db(INBOUND))?;
        rows.into_iter()
            .map(|(name, n)| {
                let outcome = name
                    .map(|name| {
                        InboundOutcome::parse(&name)
                            .ok_or_else(|| corrupt(INBOUND, "outcome", name))
                    })
                    .transpose()?;
                Ok((outcome, u64::try_from(n).unwrap_or_default()))
            })
            .collect()
    }

    async fn purge_inbound(&self, before: Timestamp) -> Result<u64, StoreError> {
        // Done mail has no ready row (its finish deleted it), so nothing references it.
        // One done before `before` was created before it: the bound reads the index of
        // migration 0027.
        let mail = "WITH gone AS (DELETE FROM inbound_mail WHERE id = ANY(ARRAY(\
                    SELECT id FROM inbound_mail WHERE created_at < $1 \
                    AND created_at >= COALESCE($3, '-infinity'::timestamptz) \
                    AND status = 'done' AND updated_at < $1 ORDER BY created_at LIMIT $2 \
                    FOR UPDATE SKIP LOCKED)) RETURNING created_at) \
                    SELECT count(*), max(created_at) FROM gone";
        let gone = self.purge_in_batches(mail, before, INBOUND).await?;
        let sends = "WITH gone AS (DELETE FROM mail_in_sends WHERE ctid = ANY(ARRAY(\
                     SELECT ctid FROM mail_in_sends WHERE at < $1 \
                     AND at >= COALESCE($3, '-infinity'::timestamptz) ORDER BY at LIMIT $2 \
                     FOR UPDATE SKIP LOCKED)) RETURNING at) \
                     SELECT count(*), max(at) FROM gone";
        self.purge_in_batches(sends, before, INBOUND).await?;
        Ok(gone)
    }

    async fn orders_address(
        &self,
        user_id: UserId,
        game_id: GameId,
    ) -> Result<Option<OrdersAddress>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders_addresses WHERE user_id = $1 AND game_id = $2")
            .bind(user_id.as_uuid())
            .bind(game_id.as_uuid())
            .fetch_optional(self.pool())
            .await
            .map_err(db(ADDRESS))?;
        row.as_ref().map(address_from_row).transpose()
    }

    async fn ensure_orders_address(
        &self,
        address: &OrdersAddress,
    ) -> Result<OrdersAddress, StoreError> {
        // `ON CONFLICT (user_id, game_id) DO NOTHING`: a concurrent caller's address wins
        // and both read it back; a digest taken elsewhere is a unique violation
        // (`Duplicate`), so the caller draws another.
        sqlx::query(
            "INSERT INTO orders_addresses \
             (user_id, game_id, token_seed, token_digest, report_delivery, rotated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, game_id) DO NOTHING",
        )
        .bind(address.user_id.as_uuid())
        .bind(address.game_id.as_uuid())
        .bind(address.token.seed.as_bytes().as_slice())
        .bind(address.token.digest.as_bytes().as_slice())
        .bind(address.report_delivery.as_str())
        .bind(address.rotated_at)
        .execute(self.pool())
        .await
        .map_err(db(ADDRESS))?;
        self.orders_address(address.user_id, address.game_id)
            .await?
            .ok_or_else(|| {
                StoreError::not_found(ADDRESS, format!("{}/{}", address.user_id, address.game_id))
            })
    }

    async fn rotate_orders_address(
        &self,
        user_id: UserId,
        game_id: GameId,
        token: &TokenRecord,
        replacing: Option<TokenDigest>,
        at: Timestamp,
    ) -> Result<OrdersAddress, StoreError> {
        // With `replacing`, the update matches only while the token is still that one (a
        // concurrent replacement that committed first is seen by the row lock's recheck,
        // and this one then matches nothing). The address is then read in a statement
        // of its own: its snapshot, unlike the update's, holds that replacement.
        let changed = sqlx::query(
            "UPDATE orders_addresses SET token_seed = $3, token_digest = $4, rotated_at = $5 \
             WHERE user_id = $1 AND game_id = $2 AND ($6::bytea IS NULL OR token_digest = $6) \
             RETURNING *",
        )
        .bind(user_id.as_uuid())
        .bind(game_id.as_uuid())
        .bind(token.seed.as_bytes().as_slice())
        .bind(token.digest.as_bytes().as_slice())
        .bind(at)
        .bind(replacing.map(|d| d.as_bytes().to_vec()))
        .fetch_optional(self.pool())
        .await
        .map_err(db(ADDRESS))?;
        match changed {
            Some(row) => address_from_row(&row),
            None => self
                .orders_address(user_id, game_id)
                .await?
                .ok_or_else(|| StoreError::not_found(ADDRESS, format!("{user_id}/{game_id}"))),
        }
    }

    async fn set_report_delivery(
        &self,
        user_id: UserId,
        game_id: GameId,
        delivery: ReportDelivery,
    ) -> Result<OrdersAddress, StoreError> {
        let row = sqlx::query(
            "UPDATE orders_addresses SET report_delivery = $3 \
             WHERE user_id = $1 AND game_id = $2 RETURNING *",
        )
        .bind(user_id.as_uuid())
        .bind(game_id.as_uuid())
        .bind(delivery.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(db(ADDRESS))?
        .ok_or_else(|| StoreError::not_found(ADDRESS, format!("{user_id}/{game_id}")))?;
        address_from_row(&row)
    }

    async fn find_orders_address(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<OrdersAddress>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders_addresses WHERE token_digest = $1")
            .bind(digest.as_bytes().as_slice())
            .fetch_optional(self.pool())
            .await
            .map_err(db(ADDRESS))?;
        row.as_ref().map(address_from_row).transpose()
    }

    async fn take_send(
        &self,
        bucket: &str,
        key: &str,
        limit: RateLimit,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db(SEND))?;
        // Count-then-insert under the bucket's advisory lock (see `locks`), so two
        // replicas answering at once cannot both take the last send.
        locks::lock(&mut tx, SEND, vec![locks::key(Bucket::MailInSend, bucket)]).await?;
        let taken: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM mail_in_sends WHERE bucket = $1 AND send_key = $2")
                .bind(bucket)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(SEND))?;
        if taken.is_some() {
            return Ok(true);
        }
        let times: Vec<(Timestamp,)> =
            sqlx::query_as("SELECT at FROM mail_in_sends WHERE bucket = $1 AND at > $2")
                .bind(bucket)
                .bind(limit.window_start(now))
                .fetch_all(&mut *tx)
                .await
                .map_err(db(SEND))?;
        if limit
            .full_until(now, times.into_iter().map(|(at,)| (at, 1)))
            .is_some()
        {
            return Ok(false);
        }
        sqlx::query("DELETE FROM mail_in_sends WHERE bucket = $1 AND at <= $2")
            .bind(bucket)
            .bind(limit.window_start(now))
            .execute(&mut *tx)
            .await
            .map_err(db(SEND))?;
        sqlx::query("INSERT INTO mail_in_sends (bucket, send_key, at) VALUES ($1, $2, $3)")
            .bind(bucket)
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(SEND))?;
        tx.commit().await.map_err(db(SEND))?;
        Ok(true)
    }
}
