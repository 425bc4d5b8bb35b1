//! What every HTTP handler can reach: the services, the internal token and readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use galaxy_core::ports::Clock;
use galaxy_core::service::auth::AuthService;
use galaxy_core::service::lobby::LobbyService;
use galaxy_core::service::mail::MailAdminService;
use galaxy_core::service::notification::NotificationService;
use galaxy_core::service::user::UserService;
use secrecy::SecretString;

/// Shared, cheaply cloned handler state.
#[derive(Clone)]
pub struct AppState {
    /// Login codes, sessions, token checks.
    pub auth: Arc<AuthService>,
    /// Profiles and admin user management.
    pub users: Arc<UserService>,
    /// Games, applications, race names.
    pub lobby: Arc<LobbyService>,
    /// Mail outbox administration.
    pub mail_admin: Arc<MailAdminService>,
    /// Notification dead letters.
    pub notifications: Arc<NotificationService>,
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
}
