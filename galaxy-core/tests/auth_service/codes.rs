//! Checking codes: wrong, locked, expired, malformed, and guessed concurrently.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::auth::{ChallengeStatus, LoginChallenge, LoginCode};
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::{ChallengeId, Timestamp};
use galaxy_core::ports::{Admission, ChallengeScope, ChallengeStore, IssueLimits, StoreError};
use galaxy_core::service::auth::{AuthConfig, AuthError};
use galaxy_core::service::{ErrorKind, ServiceError};
use galaxy_ports::memory::MemoryUserStore;

use crate::harness::{Harness, first_code, ip, wrong};

#[tokio::test]
async fn wrong_code_then_right_code() {
    let h = Harness::new();
    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let code = h.code_for(issued.challenge_id).await;
    let id = issued.challenge_id.to_string();
    let err = h
        .auth
        .create_session(&id, &wrong(&code), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidCode { remaining: 4 }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    h.auth.create_session(&id, &code, None).await.unwrap();
}

/// A visitor whose language the client knows (the web pages: the browser's) gets the
/// code in it and, signing up, an account in it; an account's own locale wins over it.
#[tokio::test]
async fn the_code_mail_speaks_the_visitors_language_and_a_new_account_keeps_it() {
    use galaxy_core::domain::user::Locale;
    let h = Harness::new();
    let de = Locale::parse("de").unwrap();
    let issued = h
        .auth
        .request_login_code_in("neu@x.org", None, Some(&de))
        .await
        .unwrap();
    let mails = h.mails().await;
    let mail = &mails.last().unwrap().mail;
    assert_eq!(mail.locale, de);
    assert_eq!(mail.subject, "Dein Galaxy-Anmeldecode");
    assert!(
        mail.text_body.contains("Minuten ab jetzt"),
        "{}",
        mail.text_body
    );
    let html = mail.html_body.as_deref().unwrap();
    let code = first_code(&mail.text_body).unwrap();
    assert!(html.contains(&format!("<strong>{code}</strong>")), "{html}");
    let id = issued.challenge_id.to_string();
    let session = h
        .auth
        .create_session_in(&id, &code, None, Some(&de))
        .await
        .unwrap();
    assert_eq!(session.user.locale, de);
    // The account is German now; an English page asking for a code does not change it,
    // and an English account stays English on a German page.
    let en = Locale::parse("en").unwrap();
    h.auth
        .request_login_code_in("neu@x.org", None, Some(&en))
        .await
        .unwrap();
    let mails = h.mails().await;
    assert_eq!(mails.last().unwrap().mail.locale, de);
    h.login("old@x.org").await;
    h.auth
        .request_login_code_in("old@x.org", None, Some(&de))
        .await
        .unwrap();
    let mails = h.mails().await;
    let mail = &mails.last().unwrap().mail;
    assert_eq!(mail.locale, en);
    assert!(mail.text_body.starts_with("Your Galaxy login code is "));
    assert!(
        mail.text_body.contains("minutes from now"),
        "{}",
        mail.text_body
    );
}

#[tokio::test]
async fn max_wrong_codes_lock_the_challenge() {
    let h = Harness::new();
    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let code = h.code_for(issued.challenge_id).await;
    let id = issued.challenge_id.to_string();
    for remaining in (1..=4).rev() {
        let err = h.auth.create_session(&id, &wrong(&code), None).await;
        assert!(
            matches!(err, Err(AuthError::InvalidCode { remaining: r }) if r == remaining),
            "{err:?}"
        );
    }
    let err = h.auth.create_session(&id, &wrong(&code), None).await;
    assert!(matches!(err, Err(AuthError::ChallengeLocked)), "{err:?}");
    let err = h.auth.create_session(&id, &code, None).await.unwrap_err();
    assert!(matches!(err, AuthError::ChallengeLocked), "{err:?}");
    let stored = h.challenge(issued.challenge_id).await;
    assert_eq!(stored.status, ChallengeStatus::Locked);
    assert_eq!(stored.failed_attempts, 5);
}

#[tokio::test]
async fn expired_code_is_refused() {
    let h = Harness::new();
    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let code = h.code_for(issued.challenge_id).await;
    let id = issued.challenge_id.to_string();
    h.clock.advance(TimeDelta::minutes(10));
    let err = h.auth.create_session(&id, &code, None).await.unwrap_err();
    assert!(matches!(err, AuthError::ChallengeExpired), "{err:?}");
    let stored = h.challenge(issued.challenge_id).await;
    assert_eq!(stored.status, ChallengeStatus::Expired);
    let err = h.auth.create_session(&id, &code, None).await.unwrap_err();
    assert!(matches!(err, AuthError::ChallengeExpired), "{err:?}");
}

#[tokio::test]
async fn bad_inputs_are_rejected_without_changing_state() {
    let h = Harness::new();
    for bad in ["", "nobody", "a b@x.org", "a@-x.org"] {
        let err = h.auth.request_login_code(bad, ip("192.0.2.1")).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Validation, "{bad:?}");
    }
    assert!(h.mails().await.is_empty());
    let by_ip = ChallengeScope::ClientIp("192.0.2.1".into());
    assert_eq!(h.issued_for(by_ip).await, 0);

    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let id = issued.challenge_id.to_string();
    let code = h.code_for(issued.challenge_id).await;
    let cases = [
        ("not-a-uuid", code.as_str(), ErrorKind::InvalidRequest),
        (id.as_str(), "12345", ErrorKind::Validation),
        (id.as_str(), "12ab56", ErrorKind::Validation),
        (id.as_str(), "12345678901", ErrorKind::Validation),
    ];
    for (challenge, code, kind) in cases {
        let err = h.auth.create_session(challenge, code, None).await;
        assert_eq!(err.unwrap_err().kind(), kind, "{challenge:?} {code:?}");
    }
    let unknown = uuid::Uuid::from_u128(1).to_string();
    let err = h.auth.create_session(&unknown, &code, None).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    let stored = h.challenge(issued.challenge_id).await;
    assert_eq!(
        (stored.status, stored.failed_attempts),
        (ChallengeStatus::Issued, 0)
    );

    for token in ["", "abc", "z".repeat(64).as_str()] {
        let err = h.auth.authenticate(token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert_eq!(
            h.auth.logout(token).await.unwrap_err().kind(),
            ErrorKind::Unauthenticated
        );
    }
    let unknown_token = "ab".repeat(32);
    let err = h.auth.authenticate(&unknown_token).await.unwrap_err();
    assert!(matches!(err, AuthError::InvalidSession), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_guesses_never_exceed_the_budget() {
    let h = Arc::new(Harness::new());
    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let code = h.code_for(issued.challenge_id).await;
    let id = issued.challenge_id.to_string();
    let guesses = (0..32).map(|_| {
        let (h, id, guess) = (h.clone(), id.clone(), wrong(&code));
        tokio::spawn(async move { h.auth.create_session(&id, &guess, None).await })
    });
    let mut rejected = 0;
    for guess in guesses.collect::<Vec<_>>() {
        match guess.await.unwrap() {
            Err(AuthError::InvalidCode { .. }) => rejected += 1,
            Err(AuthError::ChallengeLocked | AuthError::ChallengeContended) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(rejected, 4);
    let stored = h.challenge(issued.challenge_id).await;
    assert_eq!(stored.failed_attempts, 5);
    assert_eq!(stored.status, ChallengeStatus::Locked);
    let err = h.auth.create_session(&id, &code, None).await.unwrap_err();
    assert!(matches!(err, AuthError::ChallengeLocked), "{err:?}");
}

/// A challenge store where another client's wrong guess lands between the service's
/// read and its write, once.
struct RacingChallenges {
    inner: Arc<MemoryUserStore>,
    raced: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl ChallengeStore for RacingChallenges {
    async fn issue_challenge(
        &self,
        challenge: &LoginChallenge,
        limits: &IssueLimits,
    ) -> Result<Admission, StoreError> {
        self.inner.issue_challenge(challenge, limits).await
    }
    async fn get_challenge(&self, id: ChallengeId) -> Result<LoginChallenge, StoreError> {
        self.inner.get_challenge(id).await
    }
    async fn update_challenge(
        &self,
        challenge: &LoginChallenge,
        status: ChallengeStatus,
        failed: u32,
        budget: &RateLimit,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let mut other = self.inner.get_challenge(challenge.id).await?;
            let before = (other.status, other.failed_attempts);
            let wrong = LoginCode::parse("0000000000").unwrap();
            other.check(&wrong, &crate::harness::test_key(), other.issued_at);
            let raced = self
                .inner
                .update_challenge(&other, before.0, before.1, budget, now)
                .await?;
            assert_eq!(raced, Admission::Admitted);
        }
        self.inner
            .update_challenge(challenge, status, failed, budget, now)
            .await
    }
    async fn challenge_issue_times(
        &self,
        scope: &ChallengeScope,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError> {
        self.inner.challenge_issue_times(scope, since).await
    }
    async fn withdraw_challenge(&self, id: ChallengeId) -> Result<bool, StoreError> {
        self.inner.withdraw_challenge(id).await
    }
    async fn purge_challenges(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_challenges(before).await
    }
}

#[tokio::test]
async fn a_lost_compare_and_set_is_reread_not_overwritten() {
    let inner = Arc::new(MemoryUserStore::new());
    let racing: Arc<dyn ChallengeStore> = Arc::new(RacingChallenges {
        inner: inner.clone(),
        raced: false.into(),
    });
    let mut h = Harness::with_challenges(AuthConfig::default(), Some(racing));
    h.store = inner;
    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let code = h.code_for(issued.challenge_id).await;
    let id = issued.challenge_id.to_string();
    let err = h.auth.create_session(&id, &wrong(&code), None).await;
    // The competing guess counted too: two attempts spent, none lost.
    assert!(
        matches!(err, Err(AuthError::InvalidCode { remaining: 3 })),
        "{err:?}"
    );
    assert_eq!(h.challenge(issued.challenge_id).await.failed_attempts, 2);
}
