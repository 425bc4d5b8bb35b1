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

#[cfg(test)]
mod tests {
    //! Two "replicas" (caches on one in-memory store and one in-memory hub): a write on
    //! one drops the other's copy; an interruption empties the caches every TTL; a
    //! resumption starts over.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use galaxy_core::domain::UserId;
    use galaxy_core::domain::user::{Email, User, UserStatus};
    use galaxy_core::ports::{ChangeBus, UserStore};
    use galaxy_ports::memory::{InMemoryStores, MemoryChangeBus};

    use super::*;

    /// Far above what an in-process note takes, so only a lost note fails the test.
    const PATIENCE: Duration = Duration::from_secs(10);

    struct Replica {
        caches: Caches,
        users: Arc<UserCache>,
        /// Keep the caches `caches` points to alive.
        _others: (Arc<SessionCache>, Arc<GameCache>),
    }

    fn replica(stores: &InMemoryStores, bus: &MemoryChangeBus) -> Replica {
        let bus: Arc<dyn ChangeBus> = Arc::new(bus.clone());
        let sessions = Arc::new(SessionCache::new(stores.users.clone()).with_bus(bus.clone()));
        let users = Arc::new(UserCache::new(stores.users.clone()).with_bus(bus.clone()));
        let games = Arc::new(
            GameCache::new(stores.lobby.clone(), stores.lobby.clone()).with_bus(bus.clone()),
        );
        let caches = Caches::new(&sessions, &users, &games);
        Replica {
            caches,
            users,
            _others: (sessions, games),
        }
    }

    async fn until_empty(users: &UserCache) {
        tokio::time::timeout(PATIENCE, async {
            while !users.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the cache emptied in time");
    }

    #[tokio::test]
    async fn a_write_on_one_replica_drops_the_copy_on_the_other() {
        let stores = InMemoryStores::new();
        let hub = MemoryChangeBus::new();
        let other = hub.replica();
        let (a, b) = (replica(&stores, &hub), replica(&stores, &other));
        let stop = CancellationToken::new();
        let follower = tokio::spawn(follow(
            b.caches.clone(),
            other.subscribe(),
            Duration::from_secs(3600),
            stop.clone(),
        ));
        let id = UserId::from_uuid(uuid::Uuid::now_v7());
        let now = galaxy_core::domain::Timestamp::from_timestamp(1_893_456_000, 0).unwrap();
        let user = User::new(id, Email::parse("ann@example.org").unwrap(), now);
        a.users.insert_user(&user).await.unwrap();
        assert_eq!(
            b.users.get_user(id).await.unwrap().status,
            UserStatus::Active
        );
        assert_eq!(b.users.len(), 1, "b holds a copy");

        let blocked = UserStatus::BlockedPermanently;
        a.users
            .update_user_status(id, UserStatus::Active, blocked)
            .await
            .unwrap();
        until_empty(&b.users).await;
        assert_eq!(b.users.get_user(id).await.unwrap().status, blocked);
        stop.cancel();
        follower.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupted_bus_expires_entries_and_a_resumed_one_starts_over() {
        let stores = InMemoryStores::new();
        let hub = MemoryChangeBus::new();
        let b = replica(&stores, &hub);
        let stop = CancellationToken::new();
        let ttl = Duration::from_secs(2);
        let follower = tokio::spawn(follow(b.caches.clone(), hub.subscribe(), ttl, stop.clone()));
        let id = UserId::from_uuid(uuid::Uuid::now_v7());
        let now = galaxy_core::domain::Timestamp::from_timestamp(1_893_456_000, 0).unwrap();
        stores
            .users
            .insert_user(&User::new(
                id,
                Email::parse("bob@example.org").unwrap(),
                now,
            ))
            .await
            .unwrap();

        hub.interrupt();
        until_empty(&b.users).await;
        // Cached again, and gone again within one TTL (the clock is paused: the sleep
        // below advances it exactly).
        b.users.get_user(id).await.unwrap();
        assert_eq!(b.users.len(), 1);
        tokio::time::sleep(ttl + Duration::from_millis(10)).await;
        assert!(b.users.is_empty(), "expired while interrupted");

        hub.resume();
        tokio::time::sleep(Duration::from_millis(1)).await;
        b.users.get_user(id).await.unwrap();
        tokio::time::sleep(ttl * 3).await;
        assert_eq!(b.users.len(), 1, "no expiry once resumed");
        stop.cancel();
        follower.await.unwrap();
    }
}
