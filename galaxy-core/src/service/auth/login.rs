//! Issuing login codes and exchanging them for sessions.

use std::net::IpAddr;
use std::time::Duration;

use chrono::TimeDelta;

use super::{AuthError, AuthService, IssuedChallenge, NewSession};
use crate::domain::auth::{
    ChallengeStatus, CodeCheck, LoginChallenge, LoginCode, Session, SessionStatus,
};
use crate::domain::limit::client_network;
use crate::domain::mail::{MailDelivery, OutgoingMail};
use crate::domain::notification::NotificationKind;
use crate::domain::user::{Email, Locale, Role, User, UserStatus};
use crate::domain::{ChallengeId, MailId, SessionId, Timestamp, UserId};
use crate::ports::{Admission, IssueLimits, LimitReached, StoreError};
use crate::service::templates::{MailTemplates, TemplateContext};
use crate::service::{ErrorKind, ServiceError};

/// How often a code check is re-read and retried after losing a compare-and-set to a
/// concurrent attempt on the same challenge before giving up with a conflict.
const CHECK_ATTEMPTS: usize = 5;

/// The `kind` of login code mails in the outbox.
pub(super) const LOGIN_CODE_MAIL_KIND: &str = crate::domain::mail::LOGIN_CODE_KIND;

impl AuthService {
    /// Issues a login code for `email` and queues the mail that carries it.
    ///
    /// The answer is the same whether or not the address has an account, and for a
    /// permanently blocked account the challenge is stored (so it counts towards the
    /// rate limits like any other) but no mail is sent. Fails with
    /// [`AuthError::RateLimited`] when the address or the client IP asked for too many
    /// codes recently, or the address holds too many unused codes; the store counts and
    /// inserts in one atomic step, so concurrent requests cannot pass a limit together.
    /// A refused request stores nothing and queues nothing.
    pub async fn request_login_code(
        &self,
        email: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<IssuedChallenge, AuthError> {
        self.request_login_code_in(email, client_ip, None).await
    }

    /// [`AuthService::request_login_code`] for a visitor whose language the client
    /// knows (the web pages: the browser's): an address with no account yet gets the
    /// mail in `language`; an account's mail is in its own locale.
    pub async fn request_login_code_in(
        &self,
        email: &str,
        client_ip: Option<IpAddr>,
        language: Option<&Locale>,
    ) -> Result<IssuedChallenge, AuthError> {
        let email = Email::parse(email)?;
        let client_ip = client_ip.map(rate_limit_key);
        let now = self.clock.now();
        let id = ChallengeId::from_uuid(self.secrets.uuid());
        let code = self.secrets.login_code(self.config.code_digits);
        let limits = IssueLimits {
            per_email: self.config.per_email,
            per_client: client_ip.as_ref().map(|_| self.config.per_ip),
            live_per_email: self.config.live_per_email,
        };
        let challenge = LoginChallenge {
            id,
            email,
            code_hash: code.hash_for(id, &self.code_key),
            client_ip: client_ip.unwrap_or_else(|| "unknown".to_owned()),
            status: ChallengeStatus::Issued,
            failed_attempts: 0,
            max_attempts: self.config.max_attempts,
            issued_at: now,
            expires_at: now + self.config.code_ttl,
        };
        if let Admission::Refused(full) =
            self.challenges.issue_challenge(&challenge, &limits).await?
        {
            return Err(rate_limited(full, now));
        }

        let issued = IssuedChallenge {
            challenge_id: id,
            expires_at: challenge.expires_at,
        };
        let Err((error, mail)) = self.send_code(&challenge, &code, now, language).await else {
            return Ok(issued);
        };
        // The mail may be in the outbox even so (the store committed, its answer was
        // lost): then the code goes out, and its challenge must stay.
        let queued = match mail {
            Some(mail) => self.mail.get_mail(mail).await.map(drop),
            None => Err(StoreError::not_found("mail", "none queued")),
        };
        match queued {
            Ok(()) => {
                tracing::info!(challenge_id = %id, "login code queued (its answer was lost)");
                return Ok(issued);
            }
            // Nobody gets this code: it must not hold the address back (its limits count
            // stored challenges), so a retry once the store answers again is not refused.
            Err(StoreError::NotFound { .. }) => {
                if let Err(withdraw) = self.challenges.withdraw_challenge(id).await {
                    tracing::warn!(challenge_id = %id, error = %withdraw, "unmailed login code not withdrawn; it counts until it expires");
                }
            }
            Err(unknown) => {
                tracing::warn!(challenge_id = %id, error = %unknown, "cannot tell whether the login code was queued; it counts until it expires");
            }
        }
        Err(error)
    }

    /// Queues the mail with `code` for `challenge`, unless the address belongs to an
    /// account blocked for good (which is never told whether it exists). A failure says
    /// which mail it was queueing, if it got that far.
    async fn send_code(
        &self,
        challenge: &LoginChallenge,
        code: &LoginCode,
        now: Timestamp,
        language: Option<&Locale>,
    ) -> Result<(), (AuthError, Option<MailId>)> {
        let id = challenge.id;
        let user = self
            .users
            .find_user_by_email(&challenge.email)
            .await
            .map_err(|error| (error.into(), None))?;
        let permanently_blocked =
            user.as_ref().map(|u| u.status) == Some(UserStatus::BlockedPermanently);
        if permanently_blocked {
            tracing::info!(challenge_id = %id, "login code withheld: account blocked permanently");
        } else {
            let locale = user.as_ref().map(|u| &u.locale).or(language);
            let mail = self.login_code_mail(challenge, code, locale, now);
            self.mail
                .enqueue_mail(&mail)
                .await
                .map_err(|error| (error.into(), Some(mail.id)))?;
            tracing::info!(challenge_id = %id, "login code queued");
        }
        Ok(())
    }

    /// Exchanges a challenge id and its code for a new session, creating the account on
    /// first login.
    ///
    /// A wrong code costs one attempt of the challenge's budget, also under concurrent
    /// attempts; the code is checked before anything about the account is revealed.
    /// Bootstrap admin addresses get the admin role here; blocked accounts are refused.
    pub async fn create_session(
        &self,
        challenge_id: &str,
        code: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<NewSession, AuthError> {
        self.create_session_in(challenge_id, code, client_ip, None)
            .await
    }

    /// [`AuthService::create_session`] for a visitor whose language the client knows: an
    /// account created by this login gets `language` as its locale (so the pages and
    /// mails stay in the language the visitor saw before signing in).
    pub async fn create_session_in(
        &self,
        challenge_id: &str,
        code: &str,
        client_ip: Option<IpAddr>,
        language: Option<&Locale>,
    ) -> Result<NewSession, AuthError> {
        let challenge_id =
            ChallengeId::parse(challenge_id).map_err(|_| AuthError::MalformedId {
                kind: "challenge id",
            })?;
        let code = LoginCode::parse(code).map_err(AuthError::MalformedCode)?;
        let consumed = self.consume_challenge(challenge_id, &code).await?;
        match self
            .open_session(consumed.email.clone(), client_ip, language)
            .await
        {
            Ok(session) => Ok(session),
            Err(error) => {
                // The code was spent on a session that never came to be: a store that
                // failed gives it back, so the user's retry is not "code used".
                if matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Internal) {
                    self.give_back(consumed).await;
                }
                Err(error)
            }
        }
    }

    /// Makes `consumed` usable again with a compare-and-set from `consumed` (logged when
    /// it cannot be: the user then asks for a new code).
    async fn give_back(&self, consumed: LoginChallenge) {
        let mut back = consumed;
        if !back.give_back() {
            return;
        }
        let now = self.clock.now();
        let id = back.id;
        let given = self
            .challenges
            .update_challenge(
                &back,
                ChallengeStatus::Consumed,
                back.failed_attempts,
                &self.config.failed_per_email,
                now,
            )
            .await;
        match given {
            Ok(Admission::Admitted) => {
                tracing::info!(challenge_id = %id, "login code given back after a failed session");
            }
            Ok(Admission::Refused(_)) | Err(_) => {
                tracing::warn!(challenge_id = %id, "login code not given back; a new one is needed");
            }
        }
    }

    /// The session of a login whose code was right: the account (created at first
    /// login), the bootstrap admin role, the session itself.
    async fn open_session(
        &self,
        email: Email,
        client_ip: Option<IpAddr>,
        language: Option<&Locale>,
    ) -> Result<NewSession, AuthError> {
        let now = self.clock.now();
        let user = self.find_or_create_user(email, now, language).await?;
        if !user.status.is_active_at(now) {
            return Err(super::blocked(user.status));
        }
        let user = self.apply_bootstrap_admin(user).await?;

        let token = self.secrets.session_token();
        let session = Session {
            id: SessionId::from_uuid(self.secrets.uuid()),
            user_id: user.id,
            token_hash: token.hash(),
            status: SessionStatus::Active,
            created_at: now,
            expires_at: now + self.config.session_ttl,
            revoked_at: None,
        };
        self.sessions.insert_session(&session).await?;
        tracing::info!(
            user_id = %user.id,
            session_id = %session.id,
            client_ip = ?client_ip,
            "session created"
        );
        Ok(NewSession {
            token,
            session,
            user,
        })
    }

    /// Checks `code` against the challenge and writes the outcome back with a
    /// compare-and-set, re-reading when a concurrent attempt won the race. Returns the
    /// consumed challenge when the code was right.
    ///
    /// The store refuses the write while the address has used up its wrong codes; the
    /// refusal comes whatever the outcome of this check, so it says nothing about the
    /// code.
    async fn consume_challenge(
        &self,
        id: ChallengeId,
        code: &LoginCode,
    ) -> Result<LoginChallenge, AuthError> {
        for _ in 0..CHECK_ATTEMPTS {
            let mut challenge = match self.challenges.get_challenge(id).await {
                Ok(challenge) => challenge,
                Err(StoreError::NotFound { .. }) => return Err(AuthError::ChallengeNotFound),
                Err(error) => return Err(error.into()),
            };
            let (status, failed_attempts) = (challenge.status, challenge.failed_attempts);
            let now = self.clock.now();
            let outcome = challenge.check(code, &self.code_key, now);
            if let CodeCheck::NotIssued(status) = outcome {
                return Err(not_issued(status));
            }
            let failed_codes = &self.config.failed_per_email;
            match self
                .challenges
                .update_challenge(&challenge, status, failed_attempts, failed_codes, now)
                .await
            {
                Ok(Admission::Admitted) => {}
                Ok(Admission::Refused(full)) => {
                    tracing::info!(challenge_id = %id, scope = ?full.scope, "code not checked: address over its limit");
                    return Err(rate_limited(full, now));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
            return match outcome {
                CodeCheck::Accepted => Ok(challenge),
                CodeCheck::Rejected { remaining } => Err(AuthError::InvalidCode { remaining }),
                CodeCheck::Locked => Err(AuthError::ChallengeLocked),
                CodeCheck::Expired => Err(AuthError::ChallengeExpired),
                CodeCheck::NotIssued(status) => Err(not_issued(status)),
            };
        }
        Err(AuthError::ChallengeContended)
    }

    /// The account of `email`, created on first login. Two first logins racing each
    /// other end with the same account.
    async fn find_or_create_user(
        &self,
        email: Email,
        now: Timestamp,
        language: Option<&Locale>,
    ) -> Result<User, AuthError> {
        if let Some(user) = self.users.find_user_by_email(&email).await? {
            return Ok(user);
        }
        let mut user = User::new(UserId::from_uuid(self.secrets.uuid()), email, now);
        if let Some(language) = language {
            user.locale = language.clone();
        }
        match self.users.insert_user(&user).await {
            Ok(stored) => {
                tracing::info!(user_id = %stored.id, "user created at first login");
                Ok(stored)
            }
            Err(StoreError::Duplicate { .. }) => self
                .users
                .find_user_by_email(&user.email)
                .await?
                .ok_or_else(|| {
                    StoreError::conflict("user", &user.email, "taken but not found").into()
                }),
            Err(error) => Err(error.into()),
        }
    }

    /// Grants the admin role to a bootstrap admin address that lacks it.
    async fn apply_bootstrap_admin(&self, user: User) -> Result<User, AuthError> {
        if user.has_role(Role::Admin) || !self.config.bootstrap_admins.contains(&user.email) {
            return Ok(user);
        }
        let mut granted = user;
        granted.grant(Role::Admin);
        let user = self.users.set_roles(granted.id, &granted.roles).await?;
        tracing::info!(user_id = %user.id, "admin role granted to a bootstrap admin");
        Ok(user)
    }

    /// The outbox entry carrying `code`: the only place the clear code goes. Rendered
    /// from the `login_code` template in `locale` (the account's, else the visitor's
    /// language, else English); a template set without one falls back to the built-in.
    fn login_code_mail(
        &self,
        challenge: &LoginChallenge,
        code: &LoginCode,
        locale: Option<&Locale>,
        now: Timestamp,
    ) -> MailDelivery {
        let minutes = self.config.code_ttl.num_minutes().max(1);
        let context = TemplateContext::from_value(&serde_json::json!({
            "code": code.expose(),
            "expires_at": challenge.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            "minutes": minutes,
        }));
        let locale = locale.cloned().unwrap_or_default();
        let kind = NotificationKind::LoginCode;
        let rendered = self
            .templates
            .render(kind, &locale, &context)
            .or_else(|_| MailTemplates::builtin().render(kind, &locale, &context));
        let (locale, subject, text_body, html_body) = match rendered {
            Ok(mail) => (mail.locale, mail.subject, mail.text, Some(mail.html)),
            // Unreachable with the built-in set (it has the kind in English); the code
            // still goes out.
            Err(_) => (
                locale,
                "Your Galaxy login code".to_owned(),
                format!("Your Galaxy login code is {}\n", code.expose()),
                None,
            ),
        };
        let mail = OutgoingMail {
            idempotency_key: format!("login-code:{}", challenge.id),
            to: challenge.email.clone(),
            kind: LOGIN_CODE_MAIL_KIND.to_owned(),
            locale,
            subject,
            text_body,
            html_body,
            extras: Default::default(),
        };
        MailDelivery::new(MailId::from_uuid(self.secrets.uuid()), mail, now)
    }
}

/// The error for presenting a code to a challenge that no longer takes codes.
fn not_issued(status: ChallengeStatus) -> AuthError {
    match status {
        ChallengeStatus::Consumed => AuthError::ChallengeUsed,
        ChallengeStatus::Expired => AuthError::ChallengeExpired,
        ChallengeStatus::Locked => AuthError::ChallengeLocked,
        // `check` only reports `NotIssued` for other statuses; treat a surprise as a
        // lost race rather than a success.
        ChallengeStatus::Issued => AuthError::ChallengeContended,
    }
}

/// The refusal for a full limit, with the wait until it has room again.
fn rate_limited(full: LimitReached, now: Timestamp) -> AuthError {
    AuthError::RateLimited {
        scope: full.scope,
        retry_after: whole_seconds_up(full.frees_at - now),
    }
}

/// The per-IP rate-limit bucket of a client ([`client_network`]): `192.0.2.7`, or
/// `2001:db8:1:2::/64`.
fn rate_limit_key(ip: IpAddr) -> String {
    match client_network(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(network) => format!("{network}/64"),
    }
}

/// A wait rounded up to whole seconds (Retry-After has no fractions), at least one.
fn whole_seconds_up(wait: TimeDelta) -> Duration {
    let micros = u64::try_from(wait.num_microseconds().unwrap_or(i64::MAX)).unwrap_or(0);
    Duration::from_secs(micros.div_ceil(1_000_000).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_plain_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::2"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(rate_limit_key(a), "2001:db8:1:2::/64");
        assert_eq!(rate_limit_key(a), rate_limit_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(rate_limit_key(mapped), "192.0.2.7");
    }

    #[test]
    fn waits_round_up_to_at_least_a_second() {
        assert_eq!(whole_seconds_up(TimeDelta::zero()), Duration::from_secs(1));
        assert_eq!(
            whole_seconds_up(TimeDelta::milliseconds(1500)),
            Duration::from_secs(2)
        );
        assert_eq!(
            whole_seconds_up(TimeDelta::minutes(10)),
            Duration::from_secs(600)
        );
    }
}
