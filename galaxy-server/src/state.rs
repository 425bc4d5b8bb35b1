//! What every HTTP handler can reach: the services, the internal token, geo and
//! readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use galaxy_core::ports::Clock;
use galaxy_core::service::auth::AuthService;
use galaxy_core::service::geo::GeoService;
use galaxy_core::service::lobby::LobbyService;
use galaxy_core::service::mail::MailAdminService;
use galaxy_core::service::mail_in::MailInService;
use galaxy_core::service::notification::NotificationService;
use galaxy_core::service::runtime::RuntimeService;
use galaxy_core::service::user::UserService;
use secrecy::SecretString;

use crate::geo::CountryUpdates;
use crate::http::client_ip::TrustedProxies;

/// Shared, cheaply cloned handler state.
#[derive(Clone)]
pub struct AppState {
    /// Login codes, sessions, token checks.
    pub auth: Arc<AuthService>,
    /// Profiles and admin user management.
    pub users: Arc<UserService>,
    /// Games, applications, race names.
    pub lobby: Arc<LobbyService>,
    /// Engines: admin runtime actions, players' orders and reports.
    pub runtime: Arc<RuntimeService>,
    /// Mail outbox administration.
    pub mail_admin: Arc<MailAdminService>,
    /// Notification dead letters.
    pub notifications: Arc<NotificationService>,
    /// Orders by e-mail; `None` when `GALAXY_MAIL_DOMAIN` is unset (its routes answer
    /// 404 `mail_in_off`).
    pub mail_in: Option<Arc<MailInService>>,
    /// Per-user country counters: every authenticated request is counted here, in
    /// memory; a worker writes the sums and shutdown drains them.
    pub geo: Arc<GeoService>,
    /// Users' changed countries, written in the background so requests never wait.
    pub countries: Arc<CountryUpdates>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (rate limits, geo).
    pub trusted_proxies: Arc<TrustedProxies>,
    /// The gateway's token; `None` disables the internal routes.
    pub internal_token: Option<Arc<SecretString>>,
    /// Whether every cache is warm and the store answers (`/readyz`).
    pub readiness: Arc<Readiness>,
    /// Time, for responses that need it.
    pub clock: Arc<dyn Clock>,
}

/// The readiness flags `/readyz` reports.
#[derive(Debug, Default)]
pub struct Readiness {
    /// Set once every cache is warm.
    caches_warm: AtomicBool,
    /// Cleared when shutdown begins, so load balancers stop routing here first.
    draining: AtomicBool,
    /// Set while a readiness check (the database ping) fails. Stored inverted so a
    /// fresh `Readiness` (no checks run yet) does not read as unreachable.
    store_unreachable: AtomicBool,
}

impl Readiness {
    /// Marks the caches warm.
    pub fn set_caches_warm(&self) {
        self.caches_warm.store(true, Ordering::SeqCst);
    }

    /// Marks the process as shutting down.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the caches are warm.
    pub fn caches_warm(&self) -> bool {
        self.caches_warm.load(Ordering::SeqCst)
    }

    /// Whether shutdown has begun.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Records the outcome of the latest readiness checks (database ping).
    pub fn set_store_reachable(&self, reachable: bool) {
        self.store_unreachable.store(!reachable, Ordering::SeqCst);
    }

    /// Whether the latest readiness checks passed.
    pub fn store_reachable(&self) -> bool {
        !self.store_unreachable.load(Ordering::SeqCst)
    }

    /// What `/readyz` answers: caches warm, store reachable, not shutting down.
    pub fn is_ready(&self) -> bool {
        self.caches_warm() && self.store_reachable() && !self.draining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_warm_reachable_and_not_draining() {
        let readiness = Readiness::default();
        assert!(!readiness.is_ready(), "cold caches");
        readiness.set_caches_warm();
        assert!(readiness.is_ready());
        readiness.set_store_reachable(false);
        assert!(!readiness.is_ready(), "database down");
        readiness.set_store_reachable(true);
        readiness.set_draining();
        assert!(!readiness.is_ready(), "shutting down");
    }
}
