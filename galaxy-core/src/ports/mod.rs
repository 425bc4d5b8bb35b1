//! The ports: async traits the hexagon needs from the outside world.
//!
//! Store ports persist domain entities; every status change is a compare-and-set
//! (`Conflict` when the stored status is not the expected one, `InvalidTransition` when the
//! change is not in the table), and every work queue is claimed with a lease. Errors carry
//! no adapter types: adapters map their own errors to [`StoreError`] at their edge.
//!
//! With the `mock` feature every trait has a mockall mock (`MockUserStore`, ...).

mod changes;
mod delivery;
mod error;
mod geo;
mod lobby;
mod mail_in;
mod pbem;
mod play;
mod push;
mod runtime;
mod system;
mod users;

pub use changes::*;
pub use delivery::*;
pub use error::*;
pub use geo::*;
pub use lobby::*;
pub use mail_in::*;
pub use pbem::*;
pub use play::*;
pub use push::*;
pub use runtime::*;
pub use system::*;
pub use users::*;
