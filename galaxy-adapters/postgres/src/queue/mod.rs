//! The one Postgres leased work queue: a [`QueueTable`] describes a queue (mail
//! deliveries, notification routes, runtime jobs, inbound mail) and generates its claim
//! (`FOR UPDATE SKIP LOCKED`), its batched finish (`UPDATE ... FROM unnest(...)`, every row
//! checked against its own lease token) and the upkeep of its ready table, so the four
//! stores share one implementation of the rules of [`Leased`].
//!
//! Each queue is two tables. The item table (`mail_deliveries`, ...) holds every item, its
//! status, lease and history, and has no index on anything a claim or a finish changes,
//! so both update its rows in place (HOT updates: a new row version on the same page, no
//! new index entries). Its ready table (`mail_deliveries_ready`, ...) holds one narrow row
//! `(id, due, created_at)` per item a claim may take now or later, and the claim index.
//! `due` is when the item may next be claimed: its due time while it waits, its lease's
//! expiry while it is leased (so a claim never steps over items other workers hold, and a
//! lapsed lease makes the item claimable again by itself). A finish deletes the ready row
//! of an item that is done (or moves it to the item's new due time when it is to be tried
//! again). Every statement that changes an item's status keeps its ready row in step in the
//! same statement ([`QueueTable::keep_ready`]), and, for a queue with dead letters, its row
//! in the dead table ([`DeadTable`]). The two side tables together hold every item that
//! is not done, so the queue's depth and its lists by status read them, never the item
//! table's history ([`QueueTable::depth_sql`], [`StatusPages`]).
//!
//! A claim never waits for a lock: it locks ready rows and then their items with `SKIP
//! LOCKED`. A finish (or a renewal) locks its items first and then their ready rows, and
//! may wait for a claim that holds a ready row; the claim, which skips the item the finish
//! holds, never waits for the finish, so the two cannot deadlock. Such a race needs a
//! lease that lapsed while its holder was finishing: the finish wins (its item is done,
//! its ready row goes), and the claim returns without that item.
//!
//! Every table, column and status name in the generated SQL comes from a `const`
//! [`QueueTable`] or [`FinishColumn`] in this crate, never from input: values always
//! travel as bound parameters.
//!
//! Where the time goes, and why the queues are shaped as they are, is measured in
//! `docs/benchmarks.md` (the store benchmark, `scripts/store_bench.sh`). [`Commit::Relaxed`]
//! takes the WAL flush off the path of the queues whose items are idempotent.

mod finish;
mod pages;

use std::collections::{HashMap, HashSet};

use galaxy_core::domain::lease::{ClaimRequest, LeaseNotHeld, Leased};
use galaxy_core::ports::{BatchFinished, StoreError};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

use crate::error::db;
use crate::rows::limit_param;

pub(crate) use finish::{FinishPlan, one, single};
pub(crate) use pages::StatusPages;

/// In what order a claim picks the ready rows that are due (each matches the ready
/// table's claim index, so the claim is an ordered index scan that stops after `LIMIT`
/// rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimOrder {
    /// By due instant, then creation, then id (claim index `(due, created_at, id)`).
    DueFirst,
    /// By creation, then id (jobs run in the order they were queued; claim index
    /// `(created_at, id)`, rows not yet due are stepped over).
    OldestFirst,
}

/// How a queue's claims or finishes commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// As the server is configured (`synchronous_commit = on` by default): once the
    /// statement returns, the change survives a crash of the database server.
    Durable,
    /// With `synchronous_commit = off` for the statement's own transaction (set inside
    /// the statement by `set_config(..., true)`, so it costs no round trip and ends with
    /// the statement): the statement returns before its WAL is flushed, so a crash of the
    /// database server (not of the application) may lose the last commits (up to three
    /// `wal_writer_delay`s, 600 ms by default). Never a partial one, and never one that a
    /// later durable commit depends on (the WAL is flushed in order). Only for a queue
    /// whose items are idempotent: a lost finish leaves the item leased, so it is
    /// re-delivered once the lease lapses; a lost claim makes it claimable again at once,
    /// while its first claimer may still handle it (the application survived), so its
    /// handling must tolerate running twice at the same time.
    Relaxed,
}

impl Commit {
    /// The CTE (with its trailing comma) that relaxes the statement's commit, or nothing.
    fn cte(self) -> &'static str {
        match self {
            Self::Durable => "",
            Self::Relaxed => {
                "relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS off), "
            }
        }
    }

    /// A condition (with its leading `AND`) that reads [`cte`](Self::cte), so that the
    /// setting is made before the statement writes anything; or nothing.
    fn condition(self) -> &'static str {
        match self {
            Self::Durable => "",
            Self::Relaxed => " AND (SELECT off FROM relaxed) IS NOT NULL",
        }
    }
}

/// A queue: its item table and its ready table. The item table has `id uuid`, `status
/// text`, `attempts bigint`, `lease_token uuid`, `lease_until timestamptz`, `created_at`
/// and `updated_at` columns plus its due column; the ready table `id uuid` (referencing
/// the item), `due timestamptz` and `created_at timestamptz`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueTable {
    /// The item table.
    pub table: &'static str,
    /// The ready table.
    pub ready: &'static str,
    /// Statuses of items waiting for their due instant.
    pub waiting: &'static [&'static str],
    /// The status of claimed items.
    pub leased: &'static str,
    /// The item table's column holding the due instant.
    pub due: &'static str,
    /// The claim's order.
    pub order: ClaimOrder,
    /// How claims commit.
    pub claim_commit: Commit,
    /// How finishes commit.
    pub finish_commit: Commit,
    /// Where the queue keeps its dead letters, if it has any.
    pub dead: Option<DeadTable>,
}

/// A queue's dead letters: the items in a status no claim takes and only a retry (an
/// admin's) brings back. Its table, `(id uuid, created_at timestamptz)` referencing the
/// item, holds one row per such item, kept in step by [`QueueTable::keep_ready`] like the
/// ready table: so the dead can be counted and listed without reading the item table's
/// history, and without a status index there (which would end the in-place updates of
/// claims and finishes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadTable {
    /// The side table.
    pub table: &'static str,
    /// The item status it holds.
    pub status: &'static str,
}

/// One per-item column of a batched finish beyond the common ones (id, token, status,
/// at): bound as an array, read as `u.<name>` by `set`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinishColumn {
    /// The name inside `unnest(...) AS u(...)`.
    pub name: &'static str,
    /// Its SQL element type (the array is cast to `<sql_type>[]`).
    pub sql_type: &'static str,
    /// The `SET` assignment using it (`q.` is the row before the update), or `None` when
    /// it is only returned for `after` (`RETURNING u.<name>`).
    pub set: Option<&'static str>,
}

impl QueueTable {
    /// Every status a claim may take an item from (waiting, or leased with a lapsed
    /// lease), quoted for SQL.
    fn claimable(&self) -> String {
        let quoted = |s: &&str| format!("'{s}'");
        let all: Vec<String> = self
            .waiting
            .iter()
            .chain([&self.leased])
            .map(quoted)
            .collect();
        all.join(", ")
    }

    /// The claim: `$1` lease token, `$2` lease expiry, `$3` now, `$4` limit. Picks and
    /// locks up to `$4` due ready rows, locks their items (skipping any a finish holds at
    /// that moment), marks those leased, stamps the lease, counts an attempt, moves their
    /// ready rows to the lease's expiry and returns them. A ready row whose item was
    /// skipped keeps its due time: should the finish holding the item fail, the item is
    /// claimable again at once.
    ///
    /// Both steps find their rows by primary key (`id = ANY(ARRAY(...))`): written as a
    /// join (`id IN (SELECT ...)`), the planner chose, while the table was small or the
    /// limit a parameter of a generic plan, a hash join over a sequential scan of the
    /// whole table for every claim.
    pub(crate) fn claim_sql(&self) -> String {
        let (table, ready, leased) = (self.table, self.ready, self.leased);
        let order = match self.order {
            ClaimOrder::DueFirst => "due, created_at, id",
            ClaimOrder::OldestFirst => "created_at, id",
        };
        let (relaxed, relax) = (self.claim_commit.cte(), self.claim_commit.condition());
        format!(
            "WITH {relaxed}picked AS (SELECT id FROM {ready} WHERE due <= $3{relax} \
             ORDER BY {order} LIMIT $4 FOR UPDATE SKIP LOCKED), \
             claimed AS (UPDATE {table} q SET status = '{leased}', lease_token = $1, \
             lease_until = $2, attempts = LEAST(q.attempts + 1, 4294967295), updated_at = $3 \
             WHERE q.id = ANY(ARRAY(SELECT id FROM {table} \
             WHERE id = ANY(ARRAY(SELECT id FROM picked)) AND status IN ({}) \
             FOR UPDATE SKIP LOCKED)) RETURNING q.*), \
             moved AS (UPDATE {ready} r SET due = $2 \
             WHERE r.id = ANY(ARRAY(SELECT id FROM claimed))) \
             SELECT * FROM claimed",
            self.claimable()
        )
    }

    /// Wraps `statement`, which changes items and returns them (`RETURNING q.*`, any
    /// further columns allowed), so that their ready rows follow in the same statement:
    /// an item that is waiting gets (or keeps) a ready row at its due time, a leased one
    /// at its lease's expiry, any other (done) loses its ready row. `after`, when given,
    /// is further CTEs (`name AS (...)`) that read the changed rows as `changed`.
    pub(crate) fn keep_ready(&self, statement: &str, after: Option<&str>) -> String {
        self.keep_ready_committing(statement, after, Commit::Durable)
    }

    /// [`keep_ready`](Self::keep_ready) committing as `commit` says (the statement must
    /// then read the CTE `relaxed` as [`Commit::condition`] does).
    fn keep_ready_committing(
        &self,
        statement: &str,
        after: Option<&str>,
        commit: Commit,
    ) -> String {
        let (ready, leased, due) = (self.ready, self.leased, self.due);
        let claimable = self.claimable();
        let after = after.map(|a| format!(", {a}")).unwrap_or_default();
        let relaxed = commit.cte();
        // An item that died gets its dead row; one that left the status (a retry) loses it.
        let dead = self
            .dead
            .map(|DeadTable { table, status }| {
                format!(
                    ", died AS (INSERT INTO {table} (id, created_at) \
                     SELECT id, created_at FROM changed WHERE status = '{status}' \
                     ON CONFLICT (id) DO NOTHING), \
                     revived AS (DELETE FROM {table} WHERE id = ANY(ARRAY(\
                     SELECT id FROM changed WHERE status <> '{status}')))"
                )
            })
            .unwrap_or_default();
        format!(
            "WITH {relaxed}changed AS ({statement}), \
             readied AS (INSERT INTO {ready} (id, due, created_at) \
             SELECT id, CASE WHEN status = '{leased}' THEN COALESCE(lease_until, {due}) \
             ELSE {due} END, \
             created_at FROM changed WHERE status IN ({claimable}) \
             ON CONFLICT (id) DO UPDATE SET due = EXCLUDED.due), \
             unreadied AS (DELETE FROM {ready} WHERE id = ANY(ARRAY(\
             SELECT id FROM changed WHERE status NOT IN ({claimable}))))\
             {dead}{after} SELECT * FROM changed"
        )
    }

    /// The batched finish: `$1` ids, `$2` tokens, `$3` new statuses, `$4` instants, then
    /// one array per column of `columns` in order. Only items still leased by their own
    /// token change; they lose their lease and are returned (with every column of
    /// `columns` that has no `set`, for `after`), and their ready rows follow
    /// ([`keep_ready`](Self::keep_ready); `after` reads the finished rows as `changed`).
    ///
    /// The statement is shaped for the planner. The items are found by primary key
    /// (`q.id = ANY($1)`), and the leased status is compared with a column of the
    /// finishes (`u.held`, kept a column by `OFFSET 0`) rather than with a constant:
    /// from `status = '<leased>'` the planner estimated, from the statistics of a table
    /// where few items are leased at any moment, that one row would match, and chose a
    /// sequential scan of the whole item table (history included) or a nested loop that
    /// ran `unnest(...)` again for every item, in every finish (measured: 4.5 ms for 100
    /// mails on a 10 000-row outbox, 0.3 ms as written).
    pub(crate) fn finish_sql(&self, columns: &[FinishColumn], after: Option<&str>) -> String {
        let (table, leased) = (self.table, self.leased);
        let relax = self.finish_commit.condition();
        let mut names = vec!["id", "token", "status", "at"];
        let mut arrays = vec![
            "$1::uuid[]".to_owned(),
            "$2::uuid[]".to_owned(),
            "$3::text[]".to_owned(),
            "$4::timestamptz[]".to_owned(),
        ];
        let mut sets = vec!["status = u.status"];
        let mut returned = String::new();
        for (i, column) in columns.iter().enumerate() {
            names.push(column.name);
            arrays.push(format!("${}::{}[]", i + 5, column.sql_type));
            match column.set {
                Some(set) => sets.push(set),
                None => returned.push_str(&format!(", u.{}", column.name)),
            }
        }
        let update = format!(
            "UPDATE {table} q SET {}, lease_token = NULL, lease_until = NULL, \
             updated_at = u.at FROM (SELECT *, '{leased}'::text AS held \
             FROM unnest({}) AS u({}) OFFSET 0) AS u \
             WHERE q.id = ANY($1) AND q.id = u.id AND q.status = u.held \
             AND q.lease_token = u.token{relax} RETURNING q.*{returned}",
            sets.join(", "),
            arrays.join(", "),
            names.join(", "),
        );
        self.keep_ready_committing(&update, after, self.finish_commit)
    }

    /// Why rows of a finish were not updated: each one's status (absent ids are unknown).
    fn lost_sql(&self) -> String {
        format!("SELECT id, status FROM {} WHERE id = ANY($1)", self.table)
    }

    /// Runs a claim built by [`claim_sql`](Self::claim_sql) and returns the items in
    /// claim order.
    pub(crate) async fn claim<T: Leased>(
        &self,
        pool: &PgPool,
        sql: &'static str,
        claim: &ClaimRequest,
        from_row: fn(&PgRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let lease = claim.lease();
        let query = sqlx::query(sql)
            .bind(lease.token.as_uuid())
            .bind(lease.until)
            .bind(claim.now)
            .bind(limit_param(claim.limit));
        let rows = query.fetch_all(pool).await.map_err(db(T::ENTITY))?;
        let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|item| item.claim_key());
        Ok(items)
    }

    /// Runs a finish built by [`finish_sql`](Self::finish_sql), with its parameters
    /// bound (its [`Commit`] mode is part of the statement: one round trip either way).
    pub(crate) async fn finish(
        &self,
        pool: &PgPool,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        query.fetch_all(pool).await
    }

    /// Turns the rows a finish returned into one result per requested item, in input
    /// order: the finished row, `Conflict` naming the stored status for a lost lease (or
    /// a second entry of an item), `NotFound` for an unknown id. Looks the lost ones up in
    /// one more query, only when there are any.
    pub(crate) async fn settle<T: Leased + Clone, O>(
        &self,
        pool: &PgPool,
        plan: &FinishPlan<'_, T::Id, O>,
        rows: &[PgRow],
        from_row: fn(&PgRow) -> Result<T, StoreError>,
    ) -> BatchFinished<T> {
        let mut finished = HashMap::with_capacity(rows.len());
        for row in rows {
            let item = from_row(row)?;
            finished.insert(item.id(), item);
        }
        let done: HashSet<Uuid> = finished.keys().map(|id| plan.uuid_of(*id)).collect();
        let lost: Vec<Uuid> = plan
            .unique()
            .map(|(_, uuid)| uuid)
            .filter(|uuid| !done.contains(uuid))
            .collect();
        let mut stored: HashMap<Uuid, String> = HashMap::new();
        if !lost.is_empty() {
            // The table name comes from a `const` queue description, never from input.
            let sql = sqlx::AssertSqlSafe(self.lost_sql());
            let rows: Vec<(Uuid, String)> = sqlx::query_as(sql)
                .bind(&lost)
                .fetch_all(pool)
                .await
                .map_err(db(T::ENTITY))?;
            stored.extend(rows);
        }
        let mut seen = HashSet::with_capacity(plan.finishes.len());
        let results = plan.finishes.iter().map(|f| {
            let first = seen.insert(f.id);
            match finished.get(&f.id) {
                Some(item) if first => Ok(item.clone()),
                Some(item) => {
                    let lost = LeaseNotHeld {
                        status: item.status_name(),
                    };
                    Err(StoreError::conflict(T::ENTITY, f.id, lost.to_string()))
                }
                None => match stored.get(&plan.uuid_of(f.id)) {
                    Some(status) => Err(StoreError::conflict(
                        T::ENTITY,
                        f.id,
                        format!("status is {status}, lease not held by this token"),
                    )),
                    None => Err(StoreError::not_found(T::ENTITY, f.id)),
                },
            }
        });
        Ok(results.collect())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::queue) const TABLE: QueueTable = QueueTable {
        table: "mail_deliveries",
        ready: "mail_deliveries_ready",
        waiting: &["pending", "retrying"],
        leased: "sending",
        due: "next_attempt_at",
        order: ClaimOrder::DueFirst,
        claim_commit: Commit::Durable,
        finish_commit: Commit::Durable,
        dead: None,
    };

    #[test]
    fn the_claim_reads_the_ready_table_in_its_index_order() {
        let sql = TABLE.claim_sql();
        assert!(
            sql.contains(
                "SELECT id FROM mail_deliveries_ready WHERE due <= $3 \
                 ORDER BY due, created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED"
            ),
            "{sql}"
        );
        // A claimed item's ready row waits until its lease lapses; only claimed ones move.
        assert!(
            sql.contains(
                "UPDATE mail_deliveries_ready r SET due = $2 \
                 WHERE r.id = ANY(ARRAY(SELECT id FROM claimed))"
            ),
            "{sql}"
        );
        // Picked items are found by primary key, never by a join the planner may turn
        // into a scan of the whole table, only while claimable, and never waited for.
        assert!(
            sql.contains(
                "WHERE q.id = ANY(ARRAY(SELECT id FROM mail_deliveries \
                 WHERE id = ANY(ARRAY(SELECT id FROM picked)) \
                 AND status IN ('pending', 'retrying', 'sending') FOR UPDATE SKIP LOCKED))"
            ),
            "{sql}"
        );
        let jobs = QueueTable {
            order: ClaimOrder::OldestFirst,
            ..TABLE
        };
        let sql = jobs.claim_sql();
        assert!(sql.contains("ORDER BY created_at, id LIMIT $4"), "{sql}");
    }

    #[test]
    fn a_relaxed_statement_sets_its_own_commit_before_it_writes() {
        let relaxed = QueueTable {
            claim_commit: Commit::Relaxed,
            finish_commit: Commit::Relaxed,
            ..TABLE
        };
        let claim = relaxed.claim_sql();
        assert!(
            claim.starts_with(
                "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS off), \
                 picked AS"
            ),
            "{claim}"
        );
        assert!(
            claim.contains("WHERE due <= $3 AND (SELECT off FROM relaxed) IS NOT NULL ORDER BY"),
            "{claim}"
        );
        let finish = relaxed.finish_sql(&[], None);
        assert!(
            finish.starts_with("WITH relaxed AS (SELECT set_config("),
            "{finish}"
        );
        assert!(
            finish
                .contains("AND q.lease_token = u.token AND (SELECT off FROM relaxed) IS NOT NULL"),
            "{finish}"
        );
        // Durable statements say nothing of it.
        assert!(!TABLE.claim_sql().contains("relaxed"));
        assert!(!TABLE.finish_sql(&[], None).contains("relaxed"));
    }

    #[test]
    fn a_change_of_status_keeps_the_ready_row_in_step() {
        let sql = TABLE.keep_ready("UPDATE mail_deliveries q SET x = 1 RETURNING q.*", None);
        assert!(
            sql.starts_with("WITH changed AS (UPDATE mail_deliveries q SET x = 1"),
            "{sql}"
        );
        // Waiting items at their due time, leased ones at their lease's expiry.
        assert!(
            sql.contains(
                "CASE WHEN status = 'sending' THEN COALESCE(lease_until, next_attempt_at) \
                 ELSE next_attempt_at END"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("ON CONFLICT (id) DO UPDATE SET due = EXCLUDED.due"),
            "{sql}"
        );
        // Done items leave the ready table.
        assert!(
            sql.contains(
                "DELETE FROM mail_deliveries_ready WHERE id = ANY(ARRAY(SELECT id FROM changed \
                 WHERE status NOT IN ('pending', 'retrying', 'sending')))"
            ),
            "{sql}"
        );
        assert!(sql.ends_with("SELECT * FROM changed"), "{sql}");
    }

    #[test]
    fn finish_columns_are_numbered_after_the_common_four() {
        let columns = [
            FinishColumn {
                name: "due",
                sql_type: "timestamptz",
                set: Some("next_attempt_at = u.due"),
            },
            FinishColumn {
                name: "note",
                sql_type: "text",
                set: None,
            },
        ];
        let sql = TABLE.finish_sql(&columns, Some("x AS (SELECT 1)"));
        assert!(
            sql.starts_with("WITH changed AS (UPDATE mail_deliveries q"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "(SELECT *, 'sending'::text AS held FROM unnest($1::uuid[], $2::uuid[], \
                 $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[]) \
                 AS u(id, token, status, at, due, note) OFFSET 0) AS u"
            ),
            "{sql}"
        );
        // Items found by primary key, and changed only while their token holds the lease.
        assert!(
            sql.contains(
                "WHERE q.id = ANY($1) AND q.id = u.id AND q.status = u.held \
                 AND q.lease_token = u.token"
            ),
            "{sql}"
        );
        assert!(sql.contains("RETURNING q.*, u.note)"), "{sql}");
        assert!(
            sql.ends_with(", x AS (SELECT 1) SELECT * FROM changed"),
            "{sql}"
        );
    }
}
