//! Login limits: codes issued per e-mail and per client IP, unused codes per e-mail, and
//! wrong codes per e-mail over all its codes; sequentially and under concurrency.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use galaxy_core::ports::ChallengeScope;
use galaxy_core::service::auth::{AuthConfig, AuthError, RateLimitScope};
use galaxy_core::service::{ErrorKind, ServiceError};

use crate::harness::{Harness, email_scope, ip, wrong};

#[tokio::test]
async fn codes_per_email_are_rate_limited() {
    // Five unused codes may wait at once here, so that the window is what refuses.
    let h = Harness::with_config(AuthConfig {
        live_per_email: 5,
        ..AuthConfig::default()
    });
    for _ in 0..5 {
        h.auth.request_login_code("a@x.org", None).await.unwrap();
        h.clock.advance(TimeDelta::minutes(1));
    }
    let err = h
        .auth
        .request_login_code("A@x.org", ip("192.0.2.9"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::RateLimited {
                scope: RateLimitScope::Email,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    // The oldest code was issued 5 minutes ago and counts for 15.
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)));
    assert_eq!(h.mails().await.len(), 5);
    assert_eq!(h.issued_for(email_scope("a@x.org")).await, 5);
    let by_ip = ChallengeScope::ClientIp("192.0.2.9".into());
    assert_eq!(h.issued_for(by_ip).await, 0);

    h.auth.request_login_code("b@x.org", None).await.unwrap();
    h.clock
        .advance(TimeDelta::minutes(10) - TimeDelta::seconds(1));
    assert!(h.auth.request_login_code("a@x.org", None).await.is_err());
    h.clock.advance(TimeDelta::seconds(1));
    h.auth.request_login_code("a@x.org", None).await.unwrap();
}

#[tokio::test]
async fn codes_per_client_ip_are_rate_limited() {
    let mut config = AuthConfig::default();
    config.per_ip.max = 3;
    let h = Harness::with_config(config);
    for n in 0..3 {
        let email = format!("p{n}@x.org");
        h.auth
            .request_login_code(&email, ip("198.51.100.7"))
            .await
            .unwrap();
    }
    h.clock.advance(TimeDelta::seconds(30));
    let err = h
        .auth
        .request_login_code("p9@x.org", ip("198.51.100.7"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::RateLimited {
                scope: RateLimitScope::ClientIp,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(15 * 60 - 30)));
    assert_eq!(h.mails().await.len(), 3);
    assert_eq!(h.issued_for(email_scope("p9@x.org")).await, 0);

    h.auth
        .request_login_code("p9@x.org", ip("198.51.100.8"))
        .await
        .unwrap();
    h.auth.request_login_code("p9@x.org", None).await.unwrap();
}

#[tokio::test]
async fn unused_codes_per_email_are_capped() {
    let h = Harness::new();
    let mut issued = Vec::new();
    for _ in 0..3 {
        issued.push(h.auth.request_login_code("a@x.org", None).await.unwrap());
        h.clock.advance(TimeDelta::minutes(1));
    }
    let err = h
        .auth
        .request_login_code("a@x.org", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::RateLimited {
                scope: RateLimitScope::LiveCodes,
                ..
            }
        ),
        "{err:?}"
    );
    // The oldest code expires 10 minutes after it was issued, 3 minutes ago.
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7 * 60)));
    assert!(err.to_string().contains("unused login codes"), "{err}");
    assert_eq!(h.mails().await.len(), 3);

    // Using a code frees its place at once.
    let first = issued[0].challenge_id;
    let code = h.code_for(first).await;
    h.auth
        .create_session(&first.to_string(), &code, None)
        .await
        .unwrap();
    h.auth.request_login_code("a@x.org", None).await.unwrap();
}

#[tokio::test]
async fn wrong_codes_per_email_are_budgeted_over_all_its_codes() {
    let h = Harness::new();
    // Two codes, five wrong guesses each: the default budget of 10 is spent.
    for _ in 0..2 {
        let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
        let id = issued.challenge_id.to_string();
        let code = h.code_for(issued.challenge_id).await;
        for _ in 0..5 {
            let err = h.auth.create_session(&id, &wrong(&code), None).await;
            assert!(
                matches!(
                    err,
                    Err(AuthError::InvalidCode { .. } | AuthError::ChallengeLocked)
                ),
                "{err:?}"
            );
        }
        h.clock.advance(TimeDelta::minutes(1));
    }
    h.clock.advance(TimeDelta::minutes(4));
    let third = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let id = third.challenge_id.to_string();
    let code = h.code_for(third.challenge_id).await;
    // Even the right code is refused, so the answer tells nothing about the code.
    let err = h.auth.create_session(&id, &code, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::RateLimited {
                scope: RateLimitScope::FailedCodes,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    // The first code's five wrong guesses leave the window 15 minutes after it was
    // issued, 6 minutes ago.
    assert_eq!(err.retry_after(), Some(Duration::from_secs(9 * 60)));
    assert!(err.to_string().contains("wrong login codes"), "{err}");
    let untouched = h.challenge(third.challenge_id).await;
    assert_eq!(untouched.failed_attempts, 0);

    // Another address has its own budget.
    h.login("b@x.org").await;

    h.clock.advance(TimeDelta::minutes(9));
    let new = h.auth.create_session(&id, &code, None).await.unwrap();
    assert_eq!(new.user.email.as_str(), "a@x.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_over_several_codes_stop_at_the_budget() {
    let mut config = AuthConfig::default();
    config.failed_per_email.max = 4;
    let h = Arc::new(Harness::with_config(config));
    let mut ids = Vec::new();
    for _ in 0..3 {
        let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
        ids.push(issued.challenge_id);
    }
    let guesses: Vec<_> = (0..30)
        .map(|i| {
            let (h, id) = (h.clone(), ids[i % 3].to_string());
            tokio::spawn(async move { h.auth.create_session(&id, "0000000000", None).await })
        })
        .collect();
    let mut wrong = 0;
    for guess in guesses {
        match guess.await.unwrap() {
            Err(AuthError::InvalidCode { .. }) => wrong += 1,
            Err(
                AuthError::RateLimited {
                    scope: RateLimitScope::FailedCodes,
                    ..
                }
                | AuthError::ChallengeContended,
            ) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(wrong, 4);
    let mut recorded = 0;
    for id in ids {
        recorded += h.challenge(id).await.failed_attempts;
    }
    assert_eq!(recorded, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_for_one_address_issue_exactly_the_limit() {
    let h = Arc::new(Harness::with_config(AuthConfig {
        live_per_email: 50,
        ..AuthConfig::default()
    }));
    let requests: Vec<_> = (0..100)
        .map(|i| {
            let h = h.clone();
            let client = ip(&format!("198.51.100.{}", i % 50));
            tokio::spawn(async move { h.auth.request_login_code("a@x.org", client).await })
        })
        .collect();
    let mut issued = 0;
    for request in requests {
        match request.await.unwrap() {
            Ok(_) => issued += 1,
            Err(AuthError::RateLimited {
                scope: RateLimitScope::Email,
                ..
            }) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(issued, 5);
    assert_eq!(h.issued_for(email_scope("a@x.org")).await, 5);
    assert_eq!(h.mails().await.len(), 5);
}
