//! Keyset pagination shared by every list query.

use serde::{Deserialize, Serialize};

/// The largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 200;

/// A page size was outside `1..=MAX_PAGE_SIZE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("page size must be between 1 and {MAX_PAGE_SIZE}, got {0}")]
pub struct InvalidPageSize(pub u32);

/// Which slice of an ordered list to return: at most `limit` items strictly after the
/// item whose sort key is `after` (an opaque string the store produced as
/// `Page::next_after`). Every list is ordered by creation time, then id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    limit: u32,
    after: Option<String>,
}

impl PageRequest {
    /// A first page of `limit` items.
    pub fn first(limit: u32) -> Result<Self, InvalidPageSize> {
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(InvalidPageSize(limit));
        }
        Ok(Self { limit, after: None })
    }

    /// The page after the one that ended with `after` (a `Page::next_after` value).
    pub fn after(limit: u32, after: impl Into<String>) -> Result<Self, InvalidPageSize> {
        let mut page = Self::first(limit)?;
        page.after = Some(after.into());
        Ok(page)
    }

    /// Maximum number of items.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The continuation key, if this is not the first page.
    pub fn after_key(&self) -> Option<&str> {
        self.after.as_deref()
    }
}

impl Default for PageRequest {
    /// The first 50 items.
    fn default() -> Self {
        Self {
            limit: 50,
            after: None,
        }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Pass to `PageRequest::after` for the next page; `None` when this is the last page.
    pub next_after: Option<String>,
}

impl<T> Page<T> {
    /// An empty last page.
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            next_after: None,
        }
    }
}
