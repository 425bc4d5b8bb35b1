//! [`ChallengeStore`] and [`SessionStore`] on `login_challenges` and `sessions`.
//!
//! The login limits are counted from `login_challenges` inside the transaction that
//! writes, under the advisory locks of the address (and client) counted: see
//! [`crate::locks`].

use async_trait::async_trait;
use galaxy_core::domain::auth::{
    ChallengeStatus, LoginChallenge, SecretHash, Session, SessionStatus,
};
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::user::Email;
use galaxy_core::domain::{ChallengeId, SessionId, Timestamp, UserId};
use galaxy_core::ports::{
    Admission, ChallengeScope, ChallengeStore, IssueLimits, SessionStore, StoreError,
    failed_codes_reached,
};
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::error::{corrupt, db};
use crate::locks::{self, Bucket};
use crate::rows::{RowExt, u32_param};

const CHALLENGE: &str = "login challenge";
const SESSION: &str = "session";

/// A 32-byte hash column.
fn hash_col(
    row: &PgRow,
    entity: &'static str,
    column: &'static str,
) -> Result<SecretHash, StoreError> {
    let bytes: Vec<u8> = row.col(entity, column)?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| corrupt(entity, column, format!("{} bytes, expected 32", b.len())))?;
    Ok(SecretHash::from_bytes(bytes))
}

fn challenge_from_row(row: &PgRow) -> Result<LoginChallenge, StoreError> {
    Ok(LoginChallenge {
        id: ChallengeId::from_uuid(row.col(CHALLENGE, "id")?),
        email: row.col_parse(CHALLENGE, "email", Email::parse)?,
        code_hash: hash_col(row, CHALLENGE, "code_hash")?,
        client_ip: row.col(CHALLENGE, "client_ip")?,
        status: row.col_name(CHALLENGE, "status", ChallengeStatus::parse)?,
        failed_attempts: row.col_u32(CHALLENGE, "failed_attempts")?,
        max_attempts: row.col_u32(CHALLENGE, "max_attempts")?,
        issued_at: row.col(CHALLENGE, "issued_at")?,
        expires_at: row.col(CHALLENGE, "expires_at")?,
    })
}

fn session_from_row(row: &PgRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from_uuid(row.col(SESSION, "id")?),
        user_id: UserId::from_uuid(row.col(SESSION, "user_id")?),
        token_hash: hash_col(row, SESSION, "token_hash")?,
        status: row.col_name(SESSION, "status", SessionStatus::parse)?,
        created_at: row.col(SESSION, "created_at")?,
        expires_at: row.col(SESSION, "expires_at")?,
        revoked_at: row.col(SESSION, "revoked_at")?,
    })
}

fn sessions_from_rows(rows: &[PgRow]) -> Result<Vec<Session>, StoreError> {
    rows.iter().map(session_from_row).collect()
}

#[async_trait]
impl ChallengeStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn issue_challenge(
        &self,
        challenge: &LoginChallenge,
        limits: &IssueLimits,
    ) -> Result<Admission, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(CHALLENGE))?;
        let email = challenge.email.as_str();
        let mut keys = vec![locks::key(Bucket::LoginEmail, email)];
        if limits.per_client.is_some() {
            keys.push(locks::key(Bucket::LoginClient, &challenge.client_ip));
        }
        locks::lock(&mut tx, CHALLENGE, keys).await?;

        let now = challenge.issued_at;
        // Everything that may count for the address: issued within its window, or
        // still unused; the shared rule in `IssueLimits::reached` decides what counts.
        let of_email: Vec<(Timestamp, String, Timestamp)> = sqlx::query_as(
            "SELECT issued_at, status, expires_at FROM login_challenges \
             WHERE email = $1 AND (issued_at > $2 OR (status = 'issued' AND expires_at > $3))",
        )
        .bind(email)
        .bind(limits.per_email.window_start(now))
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(CHALLENGE))?;
        let email_issued: Vec<Timestamp> = of_email.iter().map(|(issued, ..)| *issued).collect();
        let unused: Vec<Timestamp> = of_email
            .iter()
            .filter(|(_, status, _)| status == ChallengeStatus::Issued.as_str())
            .map(|(.., expires)| *expires)
            .collect();
        let client_issued: Vec<Timestamp> = match &limits.per_client {
            Some(limit) => sqlx::query_scalar(
                "SELECT issued_at FROM login_challenges WHERE client_ip = $1 AND issued_at > $2",
            )
            .bind(&challenge.client_ip)
            .bind(limit.window_start(now))
            .fetch_all(&mut *tx)
            .await
            .map_err(db(CHALLENGE))?,
            None => Vec::new(),
        };
        if let Some(full) = limits.reached(now, &email_issued, &unused, &client_issued) {
            // Rolled back on drop: nothing was written, and the locks go with it.
            return Ok(Admission::Refused(full));
        }

        sqlx::query(
            "INSERT INTO login_challenges (id, email, code_hash, client_ip, status, \
             failed_attempts, max_attempts, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(challenge.id.as_uuid())
        .bind(email)
        .bind(challenge.code_hash.as_bytes().as_slice())
        .bind(&challenge.client_ip)
        .bind(challenge.status.as_str())
        .bind(u32_param(challenge.failed_attempts))
        .bind(u32_param(challenge.max_attempts))
        .bind(challenge.issued_at)
        .bind(challenge.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db(CHALLENGE))?;
        tx.commit().await.map_err(db(CHALLENGE))?;
        Ok(Admission::Admitted)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_challenge(&self, id: ChallengeId) -> Result<LoginChallenge, StoreError> {
        let row = sqlx::query("SELECT * FROM login_challenges WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(CHALLENGE))?;
        match row {
            Some(row) => challenge_from_row(&row),
            None => Err(StoreError::not_found(CHALLENGE, id)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn update_challenge(
        &self,
        challenge: &LoginChallenge,
        expected_status: ChallengeStatus,
        expected_failed_attempts: u32,
        failed_codes: &RateLimit,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(CHALLENGE))?;
        // The address is the stored one: the budget belongs to whoever the challenge
        // was issued to, whatever the caller's copy says.
        let email: Option<String> =
            sqlx::query_scalar("SELECT email FROM login_challenges WHERE id = $1")
                .bind(challenge.id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(CHALLENGE))?;
        let Some(email) = email else {
            return Err(StoreError::not_found(CHALLENGE, challenge.id));
        };
        let key = locks::key(Bucket::LoginEmail, &email);
        locks::lock(&mut tx, CHALLENGE, vec![key]).await?;

        let failures: Vec<(Timestamp, i64)> = sqlx::query_as(
            "SELECT issued_at, failed_attempts FROM login_challenges \
             WHERE email = $1 AND issued_at > $2 AND failed_attempts > 0",
        )
        .bind(&email)
        .bind(failed_codes.window_start(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(db(CHALLENGE))?;
        let failures = failures
            .into_iter()
            .map(|(issued, failed)| (issued, u32::try_from(failed).unwrap_or(u32::MAX)));
        if let Some(full) = failed_codes_reached(failed_codes, now, failures) {
            return Ok(Admission::Refused(full));
        }

        let done = sqlx::query(
            "UPDATE login_challenges SET email = $4, code_hash = $5, client_ip = $6, \
             status = $7, failed_attempts = $8, max_attempts = $9, issued_at = $10, \
             expires_at = $11 \
             WHERE id = $1 AND status = $2 AND failed_attempts = $3",
        )
        .bind(challenge.id.as_uuid())
        .bind(expected_status.as_str())
        .bind(u32_param(expected_failed_attempts))
        .bind(challenge.email.as_str())
        .bind(challenge.code_hash.as_bytes().as_slice())
        .bind(&challenge.client_ip)
        .bind(challenge.status.as_str())
        .bind(u32_param(challenge.failed_attempts))
        .bind(u32_param(challenge.max_attempts))
        .bind(challenge.issued_at)
        .bind(challenge.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db(CHALLENGE))?;
        if done.rows_affected() == 1 {
            tx.commit().await.map_err(db(CHALLENGE))?;
            return Ok(Admission::Admitted);
        }
        drop(tx);
        let stored = self.get_challenge(challenge.id).await?;
        Err(StoreError::conflict(
            CHALLENGE,
            challenge.id,
            format!(
                "stored {} with {} failed attempts, expected {} with {}",
                stored.status, stored.failed_attempts, expected_status, expected_failed_attempts
            ),
        ))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn challenge_issue_times(
        &self,
        scope: &ChallengeScope,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let query = match scope {
            ChallengeScope::Email(email) => sqlx::query_scalar(
                "SELECT issued_at FROM login_challenges WHERE email = $1 AND issued_at >= $2 \
                 ORDER BY issued_at",
            )
            .bind(email.as_str()),
            ChallengeScope::ClientIp(ip) => sqlx::query_scalar(
                "SELECT issued_at FROM login_challenges \
                 WHERE client_ip = $1 AND issued_at >= $2 ORDER BY issued_at",
            )
            .bind(ip.as_str()),
        };
        query
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(db(CHALLENGE))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn withdraw_challenge(&self, id: ChallengeId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM login_challenges WHERE id = $1 AND status = 'issued'")
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db(CHALLENGE))?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn purge_challenges(&self, before: Timestamp) -> Result<u64, StoreError> {
        let sql = "WITH gone AS (DELETE FROM login_challenges WHERE id = ANY(ARRAY(\
                   SELECT id FROM login_challenges WHERE expires_at < $1 \
                   AND expires_at >= COALESCE($3, '-infinity'::timestamptz) \
                   ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)) RETURNING expires_at) \
                   SELECT count(*), max(expires_at) FROM gone";
        self.purge_in_batches(sql, before, CHALLENGE).await
    }
}

#[async_trait]
impl SessionStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, status, created_at, expires_at, \
             revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session.id.as_uuid())
        .bind(session.user_id.as_uuid())
        .bind(session.token_hash.as_bytes().as_slice())
        .bind(session.status.as_str())
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(session.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(db(SESSION))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_session(&self, id: SessionId) -> Result<Session, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(SESSION))?;
        match row {
            Some(row) => session_from_row(&row),
            None => Err(StoreError::not_found(SESSION, id)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn find_session_by_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE token_hash = $1")
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(SESSION))?;
        row.as_ref().map(session_from_row).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE user_id = $1 AND status = 'active' \
             AND expires_at > $2 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id.as_uuid())
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db(SESSION))?;
        sessions_from_rows(&rows)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn all_active_sessions(&self, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE status = 'active' AND expires_at > $1 \
             ORDER BY created_at, id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db(SESSION))?;
        sessions_from_rows(&rows)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> Result<Session, StoreError> {
        let row = sqlx::query(
            "UPDATE sessions SET status = 'revoked', revoked_at = $2 \
             WHERE id = $1 AND status = 'active' RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(SESSION))?;
        if let Some(row) = row {
            return session_from_row(&row);
        }
        let stored = self.get_session(id).await?;
        Err(StoreError::conflict(
            SESSION,
            id,
            format!("status is {}, expected active", stored.status.as_str()),
        ))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut revoked: Vec<(Timestamp, uuid::Uuid)> = sqlx::query_as(
            "UPDATE sessions SET status = 'revoked', revoked_at = $2 \
             WHERE user_id = $1 AND status = 'active' RETURNING created_at, id",
        )
        .bind(user_id.as_uuid())
        .bind(at)
        .fetch_all(&self.pool)
        .await
        .map_err(db(SESSION))?;
        revoked.sort();
        Ok(revoked
            .into_iter()
            .map(|(_, id)| SessionId::from_uuid(id))
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn purge_sessions(&self, before: Timestamp) -> Result<u64, StoreError> {
        // As `Session::ended_before`: expired, or revoked, before `before`. Each half is
        // its own purge, read by its own index (migration 0027) in its order.
        let expired = "WITH gone AS (DELETE FROM sessions WHERE id = ANY(ARRAY(\
                   SELECT id FROM sessions WHERE expires_at < $1 \
                   AND expires_at >= COALESCE($3, '-infinity'::timestamptz) \
                   ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)) RETURNING expires_at) \
                   SELECT count(*), max(expires_at) FROM gone";
        let revoked = "WITH gone AS (DELETE FROM sessions WHERE id = ANY(ARRAY(\
                   SELECT id FROM sessions WHERE revoked_at < $1 \
                   AND revoked_at >= COALESCE($3, '-infinity'::timestamptz) \
                   ORDER BY revoked_at LIMIT $2 FOR UPDATE SKIP LOCKED)) RETURNING revoked_at) \
                   SELECT count(*), max(revoked_at) FROM gone";
        let expired = self.purge_in_batches(expired, before, SESSION).await?;
        let revoked = self.purge_in_batches(revoked, before, SESSION).await?;
        Ok(expired.saturating_add(revoked))
    }
}
