//! Keyset pagination on the wire: `?limit=&after=` in, `{items, next_after}` out.

use galaxy_core::domain::page::{MAX_PAGE_SIZE, Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{DeadLetterView, GameView, MailView, UserView};
use crate::http::error::ApiError;

/// `?limit=&after=` on every paged list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_after` of the previous page; absent for the first page.
    pub after: Option<String>,
}

impl PageQuery {
    /// The page asked for; a bad limit is a 400 naming `limit`.
    pub fn to_request(&self) -> Result<PageRequest, ApiError> {
        page_request(self.limit.as_deref(), self.after.as_deref())
    }
}

/// Builds a [`PageRequest`] from raw query values.
pub fn page_request(limit: Option<&str>, after: Option<&str>) -> Result<PageRequest, ApiError> {
    let bad_limit = || {
        ApiError::invalid_request(format!(
            "limit must be an integer from 1 to {MAX_PAGE_SIZE}"
        ))
        .with_field("limit")
    };
    let limit = match limit {
        None => PageRequest::default().limit(),
        Some(raw) => raw.trim().parse::<u32>().map_err(|_| bad_limit())?,
    };
    let page = match after {
        None => PageRequest::first(limit),
        Some("") => {
            return Err(ApiError::invalid_request("after must not be empty").with_field("after"));
        }
        Some(after) => PageRequest::after(limit, after),
    };
    page.map_err(|_| bad_limit())
}

macro_rules! page_type {
    ($(#[$meta:meta])* $name:ident of $view:ident) => {
        $(#[$meta])*
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            /// The items, oldest first.
            pub items: Vec<$view>,
            /// Pass as `after` for the next page; `null` on the last page.
            pub next_after: Option<String>,
        }

        impl<T> From<Page<T>> for $name
        where
            $view: From<T>,
        {
            fn from(page: Page<T>) -> Self {
                Self {
                    items: page.items.into_iter().map($view::from).collect(),
                    next_after: page.next_after,
                }
            }
        }
    };
}

page_type!(
    /// One page of games.
    GamePage of GameView
);
page_type!(
    /// One page of users.
    UserPage of UserView
);
page_type!(
    /// One page of outbox mail.
    MailPage of MailView
);
page_type!(
    /// One page of notification dead letters.
    DeadLetterPage of DeadLetterView
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert_eq!(page_request(None, None).map(|p| p.limit()).ok(), Some(50));
        assert_eq!(
            page_request(Some("7"), Some("k")).map(|p| p.limit()).ok(),
            Some(7)
        );
        for bad in ["0", "201", "-1", "x", "1.5", ""] {
            assert!(page_request(Some(bad), None).is_err(), "{bad}");
        }
        assert!(page_request(None, Some("")).is_err());
    }
}
