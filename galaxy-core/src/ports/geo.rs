//! Ports for geo: the country of a client address and per-user country counters.

use std::net::IpAddr;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{Timestamp, UserId};

/// The country code used when an address cannot be placed.
pub const UNKNOWN_COUNTRY: &str = "unknown";

/// Finds the country of an address. Never fails: private, loopback and unknown
/// addresses give [`UNKNOWN_COUNTRY`].
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait GeoLocator: Send + Sync {
    /// ISO 3166-1 alpha-2 code, or `unknown`.
    fn country(&self, ip: IpAddr) -> String;
}

/// One counter increment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoIncrement {
    /// Who.
    pub user_id: UserId,
    /// From where.
    pub country: String,
    /// How many requests.
    pub count: u64,
}

/// A stored counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoCount {
    /// From where.
    pub country: String,
    /// How many requests in all.
    pub count: u64,
    /// When last counted.
    pub last_seen_at: Timestamp,
}

/// Per-user country counters.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait GeoCounterStore: Send + Sync {
    /// Adds a batch of increments atomically.
    async fn add_geo_counts(
        &self,
        increments: &[GeoIncrement],
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// A user's counters, highest count first.
    async fn geo_counts(&self, user_id: UserId) -> Result<Vec<GeoCount>, StoreError>;
}
