//! The habits of play-by-email hosts (SPEC section 3, play): a turn that runs as soon as
//! every live race is ready, deadline reminders, races that go idle after missed turns and
//! whose seat the host may hand to a replacement, vacation turns, and messages between
//! races. This module holds the per-game settings and the pure decisions; the stores keep
//! the per-race record and the services act on it.
//!
//! `settings` holds a game's settings, `race` the record of each race and the decisions
//! read from it, `social` seat applications and messages; everything is re-exported here.

mod race;
mod settings;
mod social;

pub use race::*;
pub use settings::*;
pub use social::*;
