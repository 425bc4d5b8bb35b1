//! Applies the other processes' notes to this process's caches (see the
//! [module docs](super)), and keeps entries short-lived while the bus is interrupted.

use std::sync::{Arc, Weak};
use std::time::Duration;

use galaxy_core::ports::{ChangeNote, ChangeSubscription};
use tokio_util::sync::CancellationToken;

use super::{GameCache, SessionCache, UserCache};

/// The gauge saying whether this process hears the others (1) or its caches run on
/// short expiry (0).
pub const BUS_CONNECTED_METRIC: &str = "galaxy_cache_bus_connected";

/// The caches a note may concern, held weakly: the caches hold the bus, so a strong
/// hold here would keep an app that was dropped without serving (a router-only test, a
/// failed build) alive with its bus for ever.
#[derive(Clone)]
pub struct Caches {
    /// Sessions (dropped on session and user notes).
    sessions: Weak<SessionCache>,
    /// Users.
    users: Weak<UserCache>,
    /// Games.
    games: Weak<GameCache>,
}

impl Caches {
    /// The caches of one app.
    pub fn new(
        sessions: &Arc<SessionCache>,
        users: &Arc<UserCache>,
        games: &Arc<GameCache>,
    ) -> Self {
        Self {
            sessions: Arc::downgrade(sessions),
            users: Arc::downgrade(users),
            games: Arc::downgrade(games),
        }
    }

    fn forget_all(&self) {
        if let Some(c) = self.sessions.upgrade() {
            c.forget_all();
        }
        if let Some(c) = self.users.upgrade() {
            c.forget_all();
        }
        if let Some(c) = self.games.upgrade() {
            c.forget_all();
        }
    }

    /// Whether the app the caches belong to is gone.
    fn gone(&self) -> bool {
        self.sessions.strong_count() == 0
            && self.users.strong_count() == 0
            && self.games.strong_count() == 0
    }

    /// Applies one note; returns whether the bus is interrupted after it.
    pub fn apply(&self, note: ChangeNote) -> bool {
        match note {
            ChangeNote::Changed(change) => {
                if let Some(c) = self.sessions.upgrade() {
                    c.forget(change);
                }
                if let Some(c) = self.users.upgrade() {
                    c.forget(change);
                }
                if let Some(c) = self.games.upgrade() {
                    c.forget(change);
                }
                false
            }
            ChangeNote::Interrupted => {
                tracing::warn!("cache bus interrupted: caches run on short expiry");
                self.forget_all();
                true
            }
            ChangeNote::Resumed => {
                tracing::info!("cache bus resumed: caches start over");
                self.forget_all();
                false
            }
        }
    }
}

/// Applies `notes` to `caches` until `stop` is cancelled or the bus closes. While the
/// bus is interrupted every cache is emptied each `degraded_ttl`, so no entry served
/// is older than that.
pub async fn follow(
    caches: Caches,
    mut notes: ChangeSubscription,
    degraded_ttl: Duration,
    stop: CancellationToken,
) {
    let mut interrupted = false;
    metrics::gauge!(BUS_CONNECTED_METRIC).set(1.0);
    let mut expiry = tokio::time::interval(degraded_ttl);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            note = notes.next() => match note {
                Some(_) if caches.gone() => return,
                Some(note) => {
                    interrupted = caches.apply(note);
                    metrics::gauge!(BUS_CONNECTED_METRIC).set(if interrupted { 0.0 } else { 1.0 });
                    if interrupted {
                        expiry.reset();
                    }
                }
                None => return,
            },
            _ = expiry.tick(), if interrupted => caches.forget_all(),
        }
    }
}
