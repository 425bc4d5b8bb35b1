//! In-memory implementations of every store port: the embedded default (`galaxy-server
//! dev`) and the state doubles of service tests.
//!
//! Each store keeps its state behind one mutex, so every method is atomic exactly as a
//! database transaction would be, and claims can never hand one item to two claimers.
//! The lobby and play-by-email stores share theirs (two mutexes, taken lobby first) for
//! what reads both: the active-games limit, a user's games.
//! State is lost when the process ends: use the Postgres adapter for anything durable.

mod active_games;
mod changes;
mod geo;
mod keys;
mod lobby;
mod mail;
mod mail_in;
mod notification;
mod paging;
mod pbem;
mod play;
mod push;
mod queue;
mod runtime;
mod users;

use std::sync::Arc;

pub use changes::MemoryChangeBus;
pub use geo::MemoryGeoStore;
pub use keys::MemoryKeyRegistry;
pub use lobby::MemoryLobbyStore;
pub use mail::MemoryMailStore;
pub use mail_in::MemoryMailInStore;
pub use notification::MemoryNotificationStore;
pub use pbem::MemoryPbemStore;
pub use play::MemoryPlayStore;
pub use push::MemoryPushLog;
pub use runtime::MemoryRuntimeStore;
pub use users::MemoryUserStore;

/// One of each in-memory store, shared behind `Arc`s, ready to hand to services. The
/// lobby and play-by-email stores share their state's ledger, as the active-games limit
/// counts what both hold.
#[derive(Debug, Clone)]
pub struct InMemoryStores {
    /// Users, login challenges and sessions.
    pub users: Arc<MemoryUserStore>,
    /// Games, applications and race names.
    pub lobby: Arc<MemoryLobbyStore>,
    /// Runtime records, jobs and health events.
    pub runtime: Arc<MemoryRuntimeStore>,
    /// The mail outbox.
    pub mail: Arc<MemoryMailStore>,
    /// Notification intents and routes.
    pub notifications: Arc<MemoryNotificationStore>,
    /// Geo counters.
    pub geo: Arc<MemoryGeoStore>,
    /// The turn archive and orders submissions.
    pub play: Arc<MemoryPlayStore>,
    /// The play-by-email record: race records, seats, preferences, messages.
    pub pbem: Arc<MemoryPbemStore>,
    /// Orders by e-mail: inbound mail, orders addresses, send budgets.
    pub mail_in: Arc<MemoryMailInStore>,
    /// The fingerprints of the installation's secrets.
    pub keys: Arc<MemoryKeyRegistry>,
}

impl InMemoryStores {
    /// Fresh, empty stores.
    pub fn new() -> Self {
        let lobby = MemoryLobbyStore::new();
        let pbem = MemoryPbemStore::beside(&lobby);
        Self {
            users: Arc::default(),
            lobby: Arc::new(lobby),
            runtime: Arc::default(),
            mail: Arc::default(),
            notifications: Arc::default(),
            geo: Arc::default(),
            play: Arc::default(),
            pbem: Arc::new(pbem),
            mail_in: Arc::default(),
            keys: Arc::default(),
        }
    }
}

impl Default for InMemoryStores {
    fn default() -> Self {
        Self::new()
    }
}
