//! What the side tables of a queue answer without the item table's history: its items
//! by status, a page at a time ([`StatusPages`]), and its depth
//! ([`QueueTable::depth_sql`]).

use galaxy_core::domain::page::PageRequest;
use galaxy_core::ports::StoreError;
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::{DeadTable, QueueTable};
use crate::error::db;
use crate::rows::{cursor, page_limit};

/// The page queries of one queue's list by status: for each status a side table holds
/// (waiting and leased items in the ready table, dead letters in the dead table), a page
/// that reads that small table and joins its items; for no status, or one only the item
/// table knows (sent mail, delivered routes), the keyset page over the item table. Built
/// once per queue ([`QueueTable::status_pages`]), so every list by status of every queue
/// picks its statement the same way.
#[derive(Debug)]
pub(crate) struct StatusPages {
    /// The keyset page over the whole item table (from
    /// [`keyset_page_sql`](crate::rows::keyset_page_sql), filtered by its `status`).
    all: &'static str,
    /// The side-table page of each status a side table holds.
    by_status: Vec<(&'static str, String)>,
}

impl StatusPages {
    /// The statement listing `status` (or every item).
    fn sql(&self, status: Option<&str>) -> &str {
        status
            .and_then(|status| self.by_status.iter().find(|(s, _)| *s == status))
            .map_or(self.all, |(_, sql)| sql.as_str())
    }

    /// One page of the items in `status` (or of every item), in `(created_at, id)`
    /// order from `page`'s cursor, with one row more than the page when another follows
    /// (for [`page_of`](crate::rows::page_of)). `entity` names the items in errors.
    pub(crate) async fn fetch(
        &self,
        pool: &PgPool,
        status: Option<&str>,
        page: &PageRequest,
        entity: &'static str,
    ) -> Result<Vec<PgRow>, StoreError> {
        let (after_at, after_id) = cursor(page)?;
        // Every statement comes from a `const` queue description or a literal of this
        // crate, never from input.
        sqlx::query(sqlx::AssertSqlSafe(self.sql(status)))
            .bind(status)
            .bind(after_at)
            .bind(after_id)
            .bind(page_limit(page))
            .fetch_all(pool)
            .await
            .map_err(db(entity))
    }
}

impl QueueTable {
    /// The page queries of this queue's list by status, for its statuses `statuses`
    /// (every one its items can be in); `all` lists the whole item table.
    pub(crate) fn status_pages(
        &self,
        statuses: impl IntoIterator<Item = &'static str>,
        all: &'static str,
    ) -> StatusPages {
        let by_status = statuses
            .into_iter()
            .filter_map(|status| Some((status, self.status_page_sql(status)?)))
            .collect();
        StatusPages { all, by_status }
    }

    /// The keyset page of the items in status `status` (`$1`; `$2`, `$3` the cursor of
    /// [`cursor`](crate::rows::cursor), `$4` the limit of
    /// [`page_limit`](crate::rows::page_limit)), in `(created_at, id)` order as
    /// [`keyset_page_sql`](crate::rows::keyset_page_sql) lists the whole table, when a
    /// side table holds every item of that status: the ready table for waiting and leased
    /// ones, the dead table for dead letters. The page then reads the small side table and
    /// joins its items, instead of filtering the item table's whole history (sent mail,
    /// delivered routes). `None` for a status only the item table knows.
    fn status_page_sql(&self, status: &str) -> Option<String> {
        let side = if self.waiting.contains(&status) || status == self.leased {
            self.ready
        } else {
            self.dead.filter(|dead| dead.status == status)?.table
        };
        Some(format!(
            "SELECT q.* FROM {side} s JOIN {} q ON q.id = s.id WHERE q.status = $1 \
             AND (s.created_at, s.id) > (COALESCE($2, '-infinity'::timestamptz), \
             COALESCE($3, '00000000-0000-0000-0000-000000000000'::uuid)) \
             ORDER BY s.created_at, s.id LIMIT $4",
            self.table
        ))
    }

    /// How many items are in each status the side tables hold (waiting, leased, dead),
    /// read from them alone and their items: the queue's depth without the item table's
    /// history. Rows `(status, count)`; a status without items has none.
    pub(crate) fn depth_sql(&self) -> String {
        let dead = self
            .dead
            .map(|DeadTable { table, status }| {
                format!(" UNION ALL SELECT '{status}', count(*) FROM {table}")
            })
            .unwrap_or_default();
        format!(
            "SELECT q.status, count(*) FROM {} s JOIN {} q ON q.id = s.id \
             GROUP BY q.status{dead}",
            self.ready, self.table
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::TABLE;
    use super::*;

    #[test]
    fn a_status_a_side_table_holds_is_read_from_it() {
        let dead = QueueTable {
            dead: Some(DeadTable {
                table: "mail_deliveries_dead",
                status: "dead",
            }),
            ..TABLE
        };
        let pages = dead.status_pages(["pending", "sending", "sent", "dead"], "ALL");
        assert!(
            pages
                .sql(Some("pending"))
                .starts_with("SELECT q.* FROM mail_deliveries_ready s JOIN mail_deliveries q"),
            "{pages:?}"
        );
        assert!(
            pages
                .sql(Some("sending"))
                .contains("FROM mail_deliveries_ready s"),
            "{pages:?}"
        );
        assert!(
            pages
                .sql(Some("dead"))
                .contains("FROM mail_deliveries_dead s"),
            "{pages:?}"
        );
        // Sent mail is only in the item table's history; no status is every item.
        assert_eq!(pages.sql(Some("sent")), "ALL");
        assert_eq!(pages.sql(None), "ALL");
        // Without a dead table, dead letters are read from the item table.
        let pages = TABLE.status_pages(["dead"], "ALL");
        assert_eq!(pages.sql(Some("dead")), "ALL");
    }
}
