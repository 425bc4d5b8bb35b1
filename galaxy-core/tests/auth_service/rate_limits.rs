//! Rate limits on issuing codes, per e-mail and per client IP.

use std::time::Duration;

use chrono::TimeDelta;
use galaxy_core::ports::ChallengeScope;
use galaxy_core::service::auth::{AuthConfig, AuthError, RateLimitScope};
use galaxy_core::service::{ErrorKind, ServiceError};

use crate::harness::{Harness, email_scope, ip};

#[tokio::test]
async fn codes_per_email_are_rate_limited() {
    let h = Harness::new();
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
