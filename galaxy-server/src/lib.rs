#![doc = include_str!("../README.md")]

pub mod adapters;
pub mod app;
pub mod cache;
pub mod config;
#[cfg(feature = "postgres")]
pub mod database;
pub mod delivery;
pub mod dev;
pub mod error;
pub mod geo;
pub mod http;
pub mod lifecycle;
mod listener;
pub mod mail_in;
pub mod metering;
pub mod monitor;
pub mod runtime;
mod schedule;
pub mod secrets;
pub mod state;
pub mod telemetry;
#[cfg(feature = "web")]
pub mod web;

pub use adapters::{Adapters, ReadinessCheck};
pub use app::{App, AppError};
pub use config::{Config, ConfigBuilder};
pub use lifecycle::{Listeners, ShutdownReport, shutdown_signal};
