//! The API's request and response bodies. Domain types never derive `ToSchema` or leak
//! into the wire format: every body is defined here and mapped from the domain, so the
//! domain can change without changing the API by accident.
//!
//! Request bodies deny unknown fields: a typo is an error, not a silently ignored field.

mod admin;
mod game;
mod page;
mod play;
mod user;

pub use admin::*;
pub use game::*;
pub use page::*;
pub use play::*;
pub use user::*;
