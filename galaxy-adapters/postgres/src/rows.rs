//! Reading rows into domain values and writing domain values as parameters: the
//! conversions every store shares, each failing with a `StoreError::Internal` that names
//! the table and column when a stored value is one the domain refuses.

use chrono::{DateTime, SecondsFormat, Utc};
use galaxy_core::domain::lease::Lease;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::{LeaseToken, Timestamp};
use galaxy_core::ports::StoreError;
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use uuid::Uuid;

use crate::error::corrupt;

/// Typed column access that names the entity and column when decoding fails.
pub(crate) trait RowExt {
    /// The value of `column`, decoded as `T`.
    fn col<'r, T>(&'r self, entity: &'static str, column: &'static str) -> Result<T, StoreError>
    where
        T: Decode<'r, Postgres> + Type<Postgres>;

    /// A `bigint` column holding a domain `u32`.
    fn col_u32(&self, entity: &'static str, column: &'static str) -> Result<u32, StoreError> {
        let value: i64 = self.col(entity, column)?;
        u32::try_from(value).map_err(|_| corrupt(entity, column, format!("{value} is not a u32")))
    }

    /// A `bigint` column holding a domain `u64`.
    fn col_u64(&self, entity: &'static str, column: &'static str) -> Result<u64, StoreError> {
        let value: i64 = self.col(entity, column)?;
        u64::try_from(value).map_err(|_| corrupt(entity, column, format!("{value} is negative")))
    }

    /// A text column parsed by a domain parser (`as_str` names, value objects).
    fn col_parse<T, E: ToString>(
        &self,
        entity: &'static str,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        let raw: String = self.col(entity, column)?;
        parse(&raw).map_err(|error| corrupt(entity, column, error.to_string()))
    }

    /// A text column holding a stable status name, parsed by an `Option` parser.
    fn col_name<T>(
        &self,
        entity: &'static str,
        column: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        let raw: String = self.col(entity, column)?;
        parse(&raw).ok_or_else(|| corrupt(entity, column, format!("unknown name {raw:?}")))
    }

    /// A lease stored as a nullable `(token, until)` column pair.
    fn col_lease(
        &self,
        entity: &'static str,
        token: &'static str,
        until: &'static str,
    ) -> Result<Option<Lease>, StoreError> {
        let token_value: Option<Uuid> = self.col(entity, token)?;
        let until_value: Option<Timestamp> = self.col(entity, until)?;
        match (token_value, until_value) {
            (Some(t), Some(u)) => Ok(Some(Lease {
                token: LeaseToken::from_uuid(t),
                until: u,
            })),
            (None, None) => Ok(None),
            _ => Err(corrupt(entity, token, "lease token and expiry disagree")),
        }
    }
}

impl RowExt for PgRow {
    fn col<'r, T>(&'r self, entity: &'static str, column: &'static str) -> Result<T, StoreError>
    where
        T: Decode<'r, Postgres> + Type<Postgres>,
    {
        self.try_get(column)
            .map_err(|error| corrupt(entity, column, error))
    }
}

/// A domain `u32` as the `bigint` it is stored as.
pub(crate) fn u32_param(value: u32) -> i64 {
    i64::from(value)
}

/// A domain `u64` as a `bigint` (saturating: counters beyond `i64::MAX` cannot occur).
pub(crate) fn u64_param(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A claim limit as a SQL `LIMIT` parameter.
pub(crate) fn limit_param(limit: u32) -> i64 {
    i64::from(limit)
}

/// The keyset position of a page request: `(created_at, id)` of the last row of the
/// previous page, or `None` for a first page; `InvalidCursor` for a cursor this adapter
/// did not produce.
pub(crate) fn cursor(page: &PageRequest) -> Result<(Option<Timestamp>, Option<Uuid>), StoreError> {
    let Some(raw) = page.after_key() else {
        return Ok((None, None));
    };
    let refused = || StoreError::InvalidCursor(raw.chars().take(80).collect());
    let (at, id) = raw.split_once('~').ok_or_else(refused)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| refused())?;
    let id = Uuid::try_parse(id).map_err(|_| refused())?;
    Ok((Some(at.with_timezone(&Utc)), Some(id)))
}

/// Builds a page from rows fetched with `LIMIT page.limit() + 1`: the extra row only
/// tells that another page follows.
pub(crate) fn page_of<T>(
    mut items: Vec<T>,
    page: &PageRequest,
    key: impl Fn(&T) -> (Timestamp, Uuid),
) -> Page<T> {
    let limit = usize::try_from(page.limit()).unwrap_or(usize::MAX);
    let more = items.len() > limit;
    items.truncate(limit);
    let next_after = if more {
        items.last().map(|item| {
            let (at, id) = key(item);
            format!("{}~{id}", at.to_rfc3339_opts(SecondsFormat::Micros, true))
        })
    } else {
        None
    };
    Page { items, next_after }
}

/// The text of a keyset page query: `SELECT *` from `$table`, optionally filtered by
/// `$column = $1` (`$1` of SQL type `$ty`; NULL means no filter), after the cursor
/// `($2, $3)` from [`cursor`], ordered by `(created_at, $key)`, `LIMIT $4` from
/// [`page_limit`]. A macro so the text stays a `&'static str` built at compile time.
macro_rules! keyset_page_sql {
    ($table:literal, $key:literal, $column:literal, $ty:literal) => {
        concat!(
            "SELECT * FROM ",
            $table,
            " WHERE ($1::",
            $ty,
            " IS NULL OR ",
            $column,
            " = $1)",
            " AND (created_at, ",
            $key,
            ") > (COALESCE($2, '-infinity'::timestamptz),",
            " COALESCE($3, '00000000-0000-0000-0000-000000000000'::uuid))",
            " ORDER BY created_at, ",
            $key,
            " LIMIT $4"
        )
    };
}
pub(crate) use keyset_page_sql;

/// An `ILIKE ... ESCAPE '\'` pattern matching `text` anywhere, literally: the pattern's
/// own wildcards (`%`, `_`) and the escape character in `text` are escaped, so a search
/// for `a_b` finds only `a_b`.
pub(crate) fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `LIMIT` for a page query: one row more than the page, to know whether one follows.
pub(crate) fn page_limit(page: &PageRequest) -> i64 {
    i64::from(page.limit()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_invalid() {
        let first = PageRequest::first(1).unwrap_or_default();
        let at = Timestamp::from_timestamp(1_893_456_000, 123_456_000).unwrap_or_default();
        let id = Uuid::from_u128(9);
        let page = page_of(vec![(at, id), (at, id)], &first, |k| *k);
        let after = page.next_after.unwrap_or_default();
        let next = PageRequest::after(1, after).unwrap_or_default();
        assert_eq!(cursor(&next).ok(), Some((Some(at), Some(id))));
        let bad = PageRequest::after(1, "nope").unwrap_or_default();
        assert!(matches!(cursor(&bad), Err(StoreError::InvalidCursor(_))));
    }
}
