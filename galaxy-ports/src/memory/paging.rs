//! Keyset pagination over in-memory rows, shaped like the SQL the Postgres adapter runs
//! (`WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT n + 1`).
//!
//! Shared by every in-memory store.

use chrono::{DateTime, SecondsFormat, Utc};
use galaxy_core::domain::Timestamp;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::ports::StoreError;
use uuid::Uuid;

/// A row's place in a list: its creation (or occurrence) instant, then its id.
pub(in crate::memory) type SortKey = (Timestamp, Uuid);

/// Which way a list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::memory) enum Order {
    /// Oldest first (every list but health events).
    Ascending,
    /// Newest first (health events).
    Descending,
}

/// Cuts the page `request` asks for out of `rows` ordered by `key` in `order`.
///
/// The continuation key is the last returned row's sort key, so a page stays correct
/// while rows are added; it is `None` when no row follows the page.
pub(in crate::memory) fn paginate<'a, T: Clone + 'a>(
    rows: impl IntoIterator<Item = &'a T>,
    key: impl Fn(&T) -> SortKey,
    order: Order,
    request: &PageRequest,
) -> Result<Page<T>, StoreError> {
    let after = request.after_key().map(decode).transpose()?;
    let follows = |k: &SortKey| match (after, order) {
        (None, _) => true,
        (Some(a), Order::Ascending) => *k > a,
        (Some(a), Order::Descending) => *k < a,
    };
    let mut keyed: Vec<(SortKey, &T)> = rows
        .into_iter()
        .map(|row| (key(row), row))
        .filter(|(k, _)| follows(k))
        .collect();
    keyed.sort_by(|a, b| match order {
        Order::Ascending => a.0.cmp(&b.0),
        Order::Descending => b.0.cmp(&a.0),
    });
    let limit = request.limit() as usize;
    let next_after = if keyed.len() > limit {
        keyed.get(limit.saturating_sub(1)).map(|(k, _)| encode(*k))
    } else {
        None
    };
    keyed.truncate(limit);
    let items = keyed.into_iter().map(|(_, row)| row.clone()).collect();
    Ok(Page { items, next_after })
}

/// `<RFC 3339 instant with nanoseconds>~<uuid>`: exact, so rows sharing a microsecond
/// are never skipped.
fn encode((at, id): SortKey) -> String {
    format!("{}~{id}", at.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

fn decode(cursor: &str) -> Result<SortKey, StoreError> {
    let bad = || StoreError::InvalidCursor(cursor.chars().take(80).collect());
    let (at, id) = cursor.split_once('~').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
    let id = Uuid::try_parse(id).map_err(|_| bad())?;
    Ok((at.with_timezone(&Utc), id))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let key = (
            Timestamp::from_timestamp(1_893_456_000, 123_456_789).unwrap(),
            Uuid::from_u128(7),
        );
        assert_eq!(decode(&encode(key)).unwrap(), key);
        assert!(matches!(
            decode("not a cursor"),
            Err(StoreError::InvalidCursor(_))
        ));
    }
}
