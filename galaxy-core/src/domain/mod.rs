//! The pure, synchronous domain: ids, value objects, entities and their state machines.
//!
//! Nothing here does I/O or reads a clock: every function that depends on time takes the
//! current instant as an argument, and every function that needs randomness takes the
//! random input as an argument, so the whole module is deterministic under test.

pub mod application;
pub mod auth;
pub mod engine_auth;
pub mod error;
pub mod game;
pub mod health;
pub mod ids;
pub mod lease;
pub mod limit;
pub mod mail;
pub mod mail_in;
pub mod notification;
pub mod page;
pub mod pbem;
pub mod play;
pub mod push;
pub mod race_name;
pub mod retry;
pub mod runtime;
pub mod schedule;
pub mod text;
pub mod user;

pub use error::InvalidTransition;
pub use ids::*;

/// An instant in UTC. All domain time is UTC; presentation converts at the edge.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
