#![doc = include_str!("../README.md")]

mod error;
mod locator;
mod reload;
mod reserved;

pub use error::GeoIpError;
pub use locator::{DatabaseInfo, MaxMindLocator, UnknownLocator};
pub use reload::{DEFAULT_RELOAD_INTERVAL, DatabaseReloader, ReloadFailure, watch};
pub use reserved::is_non_public;
