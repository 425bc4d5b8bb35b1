//! Geo wiring: the locator chosen at start, and the writer that keeps each user's
//! country current off the request path.
//!
//! Every authenticated request is counted per (user, country) by
//! [`GeoService::record`](galaxy_core::service::geo::GeoService::record), in memory; the
//! `GeoFlusher` worker writes the sums every `GALAXY_GEO_FLUSH_INTERVAL`, and shutdown
//! drains the rest after HTTP has drained. When the country a request resolves to differs
//! from the one the (cached) user carries, [`CountryUpdates::note`] queues it and
//! [`CountryUpdates::run`] writes it with `UserStore::touch_user` in the background: a
//! request never waits on the store, and a user whose country does not change causes no
//! write at all.
//!
//! With `GALAXY_GEOIP_DB` set, the locator is that MaxMind database, opened and verified
//! at start (a missing or corrupt file stops start-up) and reloaded in the background
//! when the file changes; unset, the adapters' locator answers (`unknown` for every
//! address unless an embedding program plugged in its own).

use std::collections::HashMap;
use std::net::IpAddr;
#[cfg(feature = "geoip")]
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use galaxy_core::domain::UserId;
use galaxy_core::domain::user::User;
use galaxy_core::ports::{Clock, GeoLocator, UNKNOWN_COUNTRY, UserStore};
#[cfg(feature = "geoip")]
use galaxy_geoip::MaxMindLocator;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "geoip")]
use crate::error::AppError;

/// Most users whose new country may wait to be written. Past it a change is not queued;
/// it is noticed again at that user's next request, so nothing is lost for good.
pub const MAX_QUEUED_COUNTRIES: usize = 10_000;

/// The locator of a server without a GeoIP database: every address is `unknown` (what
/// `galaxy_geoip::UnknownLocator` does, here so that builds without the `geoip` feature
/// have it too).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnknownLocator;

impl GeoLocator for UnknownLocator {
    fn country(&self, _ip: IpAddr) -> String {
        UNKNOWN_COUNTRY.to_owned()
    }
}

/// Opens and verifies the MaxMind database at `path` (`GALAXY_GEOIP_DB`) on the blocking
/// pool. A missing, unreadable or corrupt file is an error naming the variable, the
/// file and the reason.
#[cfg(feature = "geoip")]
pub async fn open_database(path: &Path) -> Result<Arc<MaxMindLocator>, AppError> {
    let owned = path.to_owned();
    match tokio::task::spawn_blocking(move || MaxMindLocator::open(owned)).await {
        Ok(Ok(locator)) => Ok(Arc::new(locator)),
        Ok(Err(error)) => Err(AppError::GeoIp(error)),
        Err(error) => Err(AppError::Setting {
            variable: "GALAXY_GEOIP_DB",
            reason: format!("opening {} did not finish: {error}", path.display()),
        }),
    }
}

/// Users' new countries, queued by requests and written by a background task.
pub struct CountryUpdates {
    /// Where countries are written: the user cache, so the next request of the user
    /// sees the new country and queues nothing.
    users: Arc<dyn UserStore>,
    /// Stamps `last_seen_at` along with the country.
    clock: Arc<dyn Clock>,
    /// The latest country per user not yet written. A std mutex: held for a map update,
    /// never across an await.
    queued: Mutex<HashMap<UserId, String>>,
    /// Wakes [`Self::run`] when something is queued (a permit is kept if it is busy).
    wake: Notify,
}

impl CountryUpdates {
    /// Updates written to `users`, stamped by `clock`.
    pub fn new(users: Arc<dyn UserStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            users,
            clock,
            queued: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    /// Queues `country` as `user`'s country if it differs from the one the user carries.
    /// `unknown` never replaces a country: a request from an address that cannot be
    /// placed (a private network, a gap in the database) says nothing about where the
    /// user is.
    pub fn note(&self, user: &User, country: String) {
        if country == user.country || country == UNKNOWN_COUNTRY {
            return;
        }
        {
            let mut queued = self.lock();
            let full = queued.len() >= MAX_QUEUED_COUNTRIES;
            match queued.get_mut(&user.id) {
                Some(waiting) if *waiting == country => return,
                Some(waiting) => *waiting = country,
                None if full => return,
                None => {
                    queued.insert(user.id, country);
                }
            }
        }
        self.wake.notify_one();
    }

    /// Users whose new country waits to be written.
    pub fn queued(&self) -> usize {
        self.lock().len()
    }

    /// Writes every queued country (the deterministic step behind [`Self::run`]) and
    /// returns how many were written. A failed write is logged and dropped: the user's
    /// cached country is still the old one, so their next request queues it again.
    pub async fn write_queued(&self) -> usize {
        let batch = std::mem::take(&mut *self.lock());
        let now = self.clock.now();
        let mut written = 0;
        for (user_id, country) in batch {
            match self.users.touch_user(user_id, now, Some(country)).await {
                Ok(()) => written += 1,
                Err(error) => {
                    tracing::warn!(%user_id, %error, "writing a user's country failed");
                }
            }
        }
        written
    }

    /// Writes countries as they are queued until `cancel` fires, then writes what is
    /// still queued (requests have stopped by then: shutdown cancels it after HTTP).
    pub async fn run(&self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.wake.notified() => {}
            }
            self.write_queued().await;
        }
        self.write_queued().await;
        tracing::info!(worker = "country_updates", "worker stopped");
    }

    /// The queue. Nothing in the critical sections can panic half-way through an
    /// update, so a poisoned lock still holds a consistent map and is taken over.
    fn lock(&self) -> MutexGuard<'_, HashMap<UserId, String>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use galaxy_core::domain::user::Email;
    use galaxy_ports::memory::MemoryUserStore;
    use galaxy_ports::system::ManualClock;

    use super::*;

    async fn setup() -> (Arc<MemoryUserStore>, CountryUpdates, User) {
        let store = Arc::new(MemoryUserStore::default());
        let clock = Arc::new(ManualClock::at_fixed_start());
        let email = Email::parse("geo@example.org").unwrap();
        let user = User::new(UserId::from_uuid(uuid::Uuid::new_v4()), email, clock.now());
        store.insert_user(&user).await.unwrap();
        let updates = CountryUpdates::new(store.clone(), clock);
        (store, updates, user)
    }

    #[tokio::test]
    async fn a_changed_country_is_queued_once_and_written() {
        let (store, updates, user) = setup().await;
        assert_eq!(user.country, UNKNOWN_COUNTRY);
        updates.note(&user, UNKNOWN_COUNTRY.to_owned());
        assert_eq!(updates.queued(), 0, "unknown never replaces a country");
        for _ in 0..3 {
            updates.note(&user, "GB".to_owned());
        }
        assert_eq!(updates.queued(), 1);
        assert_eq!(updates.write_queued().await, 1);
        let stored = store.get_user(user.id).await.unwrap();
        assert_eq!(stored.country, "GB");
        updates.note(&stored, "GB".to_owned());
        assert_eq!(updates.queued(), 0, "an unchanged country queues nothing");
        assert_eq!(updates.write_queued().await, 0);
    }

    #[tokio::test]
    async fn the_latest_country_wins() {
        let (store, updates, user) = setup().await;
        updates.note(&user, "GB".to_owned());
        updates.note(&user, "SE".to_owned());
        assert_eq!(updates.queued(), 1);
        updates.write_queued().await;
        assert_eq!(store.get_user(user.id).await.unwrap().country, "SE");
    }

    #[tokio::test]
    async fn run_writes_in_the_background_and_what_is_left_on_cancel() {
        let (store, updates, user) = setup().await;
        let updates = Arc::new(updates);
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (updates, cancel) = (updates.clone(), cancel.clone());
            async move { updates.run(cancel).await }
        });
        updates.note(&user, "GB".to_owned());
        for _ in 0..100 {
            if store.get_user(user.id).await.unwrap().country == "GB" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.get_user(user.id).await.unwrap().country, "GB");
        cancel.cancel();
        task.await.unwrap();
        // Queued after the loop stopped: written by the final pass of a new run.
        updates.note(&user, "JP".to_owned());
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        updates.run(cancelled).await;
        assert_eq!(store.get_user(user.id).await.unwrap().country, "JP");
    }
}
