//! A fresh auth service over in-memory stores, and helpers to drive it like a user.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::ChallengeId;
use galaxy_core::domain::auth::LoginChallenge;
use galaxy_core::domain::mail::MailDelivery;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::user::Email;
use galaxy_core::ports::{ChallengeScope, ChallengeStore, Clock, MailStore, SessionStore};
use galaxy_core::service::auth::{AuthConfig, AuthPorts, AuthService, NewSession};
use galaxy_ports::memory::{MemoryMailStore, MemoryUserStore};
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};

/// An auth service over fresh in-memory stores, with the stores at hand.
pub struct Harness {
    pub auth: AuthService,
    pub store: Arc<MemoryUserStore>,
    pub mail: Arc<MemoryMailStore>,
    pub clock: Arc<ManualClock>,
}

/// The key the harness hashes codes under (unless a test sets its own).
pub fn test_key() -> galaxy_core::domain::auth::CodeKey {
    galaxy_core::domain::auth::CodeKey::derive(b"the auth harness's login-code key").unwrap()
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(AuthConfig::default())
    }

    pub fn with_config(config: AuthConfig) -> Self {
        Self::with_challenges(config, None)
    }

    /// A harness whose challenge port is `challenges` instead of the memory store.
    pub fn with_challenges(
        config: AuthConfig,
        challenges: Option<Arc<dyn ChallengeStore>>,
    ) -> Self {
        Self::build(config, challenges, None, None)
    }

    /// A harness whose session port is `sessions` instead of the memory store.
    pub fn with_sessions(config: AuthConfig, sessions: Arc<dyn SessionStore>) -> Self {
        Self::build(config, None, Some(sessions), None)
    }

    /// A harness whose outbox is `outbox` instead of the memory store (`mail` then
    /// holds nothing).
    pub fn with_outbox(config: AuthConfig, outbox: Arc<dyn MailStore>) -> Self {
        Self::build(config, None, None, Some(outbox))
    }

    fn build(
        mut config: AuthConfig,
        challenges: Option<Arc<dyn ChallengeStore>>,
        sessions: Option<Arc<dyn SessionStore>>,
        outbox: Option<Arc<dyn MailStore>>,
    ) -> Self {
        config.code_key.get_or_insert_with(test_key);
        let store = Arc::new(MemoryUserStore::new());
        let mail = Arc::new(MemoryMailStore::default());
        let clock = Arc::new(ManualClock::at_fixed_start());
        let ports = AuthPorts {
            users: store.clone(),
            challenges: challenges.unwrap_or_else(|| store.clone() as Arc<dyn ChallengeStore>),
            sessions: sessions.unwrap_or_else(|| store.clone() as Arc<dyn SessionStore>),
            mail: outbox.unwrap_or_else(|| mail.clone() as Arc<dyn MailStore>),
            clock: clock.clone(),
            secrets: Arc::new(SeededSecretGenerator::new(7)),
        };
        let auth = AuthService::new(ports, config).unwrap();
        Self {
            auth,
            store,
            mail,
            clock,
        }
    }

    pub async fn mails(&self) -> Vec<MailDelivery> {
        let page = PageRequest::first(200).unwrap();
        self.mail.list_mail(None, &page).await.unwrap().items
    }

    /// The code the mail for `challenge` carries, read from its body as a user would.
    pub async fn code_for(&self, challenge: ChallengeId) -> String {
        let key = format!("login-code:{challenge}");
        let mail = self
            .mails()
            .await
            .into_iter()
            .find(|m| m.mail.idempotency_key == key)
            .expect("a mail for the challenge");
        first_code(&mail.mail.text_body).expect("a code in the mail")
    }

    pub async fn challenge(&self, id: ChallengeId) -> LoginChallenge {
        self.store.get_challenge(id).await.unwrap()
    }

    pub async fn issued_for(&self, scope: ChallengeScope) -> usize {
        let since = self.clock.now() - TimeDelta::days(1);
        let times = self.store.challenge_issue_times(&scope, since).await;
        times.unwrap().len()
    }

    /// A full login: request a code, read it from the mail, create a session.
    pub async fn login(&self, email: &str) -> NewSession {
        let issued = self.auth.request_login_code(email, None).await.unwrap();
        let code = self.code_for(issued.challenge_id).await;
        let id = issued.challenge_id.to_string();
        self.auth.create_session(&id, &code, None).await.unwrap()
    }
}

pub fn email_scope(email: &str) -> ChallengeScope {
    ChallengeScope::Email(Email::parse(email).unwrap())
}

pub fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

/// A well-formed code that is not `code`.
/// The first run of six or more digits in a mail's text: its code, in any language
/// (the expiry's date comes after it, in shorter runs).
pub fn first_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() >= 6)
        .map(str::to_owned)
}

pub fn wrong(code: &str) -> String {
    let first = if code.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &code[1..])
}
