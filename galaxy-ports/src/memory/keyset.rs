//! Keyset pagination over in-memory rows, shared by the user and lobby stores.
//!
//! The cursor handed out as `Page::next_after` encodes the sort key (creation time and
//! id) of the last item rather than its position, so a page boundary stays correct
//! when rows are added or removed between two calls, as a SQL keyset query would.

use galaxy_core::domain::Timestamp;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::ports::StoreError;
use uuid::Uuid;

/// The list order of every paged query: creation time, then id.
pub(crate) type SortKey = (Timestamp, Uuid);

/// Renders a sort key as an opaque cursor: `seconds:nanoseconds:uuid`.
fn encode((at, id): SortKey) -> String {
    format!(
        "{}:{}:{}",
        at.timestamp(),
        at.timestamp_subsec_nanos(),
        id.simple()
    )
}

/// Reads a cursor back; a cursor this module did not produce is refused.
fn decode(cursor: &str) -> Result<SortKey, StoreError> {
    // The port has no "bad input" error; an unknown cursor is reported as a cursor that
    // does not exist, which the HTTP edge can map to a client error.
    let refused =
        || StoreError::not_found("page cursor", cursor.chars().take(80).collect::<String>());
    let mut parts = cursor.splitn(3, ':');
    let (Some(secs), Some(nanos), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(refused());
    };
    let secs: i64 = secs.parse().map_err(|_| refused())?;
    let nanos: u32 = nanos.parse().map_err(|_| refused())?;
    let at = Timestamp::from_timestamp(secs, nanos).ok_or_else(refused)?;
    let id = Uuid::try_parse(id).map_err(|_| refused())?;
    Ok((at, id))
}

/// Cuts one page out of `rows` (in any order) by `key`, per `request`.
pub(crate) fn paginate<'a, T: Clone + 'a>(
    rows: impl IntoIterator<Item = &'a T>,
    key: impl Fn(&T) -> SortKey,
    request: &PageRequest,
) -> Result<Page<T>, StoreError> {
    let after = request.after_key().map(decode).transpose()?;
    let mut rows: Vec<&T> = rows
        .into_iter()
        .filter(|row| after.is_none_or(|after| key(row) > after))
        .collect();
    rows.sort_by_key(|row| key(row));
    let limit = usize::try_from(request.limit()).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_after = if more {
        rows.last().map(|row| encode(key(row)))
    } else {
        None
    };
    Ok(Page {
        items: rows.into_iter().cloned().collect(),
        next_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let key = (
            Timestamp::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default(),
            Uuid::from_u128(42),
        );
        assert_eq!(decode(&encode(key)).ok(), Some(key));
        for bad in [
            "",
            "x",
            "1:2",
            "1:2:nope",
            "a:0:00000000000000000000000000000000",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
