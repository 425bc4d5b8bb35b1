//! [`UserStore`] on the `users` table.

use async_trait::async_trait;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::user::{DisplayName, Email, Entitlements, Locale, Role, User, UserStatus};
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{ProfileChange, StoreError, UserStore};
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::error::{corrupt, db};
use crate::locks::{self, Bucket};
use crate::rows::{RowExt, contains_pattern, cursor, page_limit, page_of, u32_param};

const USER: &str = "user";

/// Maps a `users` row.
fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
    let roles: Vec<String> = row.col(USER, "roles")?;
    let roles = roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| corrupt(USER, "roles", format!("unknown role {r:?}")))
        })
        .collect::<Result<Vec<Role>, StoreError>>()?;
    let blocked_until: Option<Timestamp> = row.col(USER, "blocked_until")?;
    let status: String = row.col(USER, "status")?;
    let status = match (status.as_str(), blocked_until) {
        ("active", _) => UserStatus::Active,
        ("blocked", Some(until)) => UserStatus::Blocked { until },
        ("blocked_permanently", _) => UserStatus::BlockedPermanently,
        (other, _) => {
            return Err(corrupt(
                USER,
                "status",
                format!("unreadable status {other:?}"),
            ));
        }
    };
    Ok(User {
        id: UserId::from_uuid(row.col(USER, "id")?),
        email: row.col_parse(USER, "email", Email::parse)?,
        display_name: row.col_parse(USER, "display_name", DisplayName::parse_stored)?,
        locale: row.col_parse(USER, "locale", Locale::parse)?,
        country: row.col(USER, "country")?,
        roles,
        status,
        entitlements: Entitlements {
            max_active_games: row.col_u32(USER, "max_active_games")?,
            may_host_games: row.col(USER, "may_host_games")?,
        },
        email_notifications: row.col(USER, "email_notifications")?,
        created_at: row.col(USER, "created_at")?,
        last_seen_at: row.col(USER, "last_seen_at")?,
    })
}

/// The `blocked_until` column of a status.
fn blocked_until(status: &UserStatus) -> Option<Timestamp> {
    match status {
        UserStatus::Blocked { until } => Some(*until),
        UserStatus::Active | UserStatus::BlockedPermanently => None,
    }
}

/// Roles as stored: sorted, deduplicated, always with `player`.
fn normalised_roles(roles: &[Role]) -> Vec<&'static str> {
    let mut roles = roles.to_vec();
    roles.push(Role::Player);
    roles.sort();
    roles.dedup();
    roles.iter().map(Role::as_str).collect()
}

impl PgStore {
    /// The user row after an update, or `NotFound` when no row matched.
    fn updated_user(row: Option<PgRow>, id: UserId) -> Result<User, StoreError> {
        match row {
            Some(row) => user_from_row(&row),
            None => Err(StoreError::not_found(USER, id)),
        }
    }
}

#[async_trait]
impl UserStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn insert_user(&self, user: &User) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(USER))?;
        // The default name's candidates take turns with renames to any of them (see
        // `locks`; all locked at once, in one order), then the first free one is taken.
        let candidates = user.display_name.candidates(user.id);
        let keys: Vec<String> = candidates.iter().map(DisplayName::key).collect();
        let locked = keys
            .iter()
            .map(|k| locks::key(Bucket::DisplayName, k))
            .collect();
        locks::lock(&mut tx, USER, locked).await?;
        let taken: Vec<String> = sqlx::query_scalar(
            "SELECT display_name_key FROM users WHERE display_name_key = ANY($1)",
        )
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(USER))?;
        let free = candidates
            .iter()
            .zip(&keys)
            .find(|(_, key)| !taken.contains(key))
            .or(candidates.iter().zip(&keys).next_back());
        let mut user = user.clone();
        let mut name_key = user.display_name.key();
        if let Some((name, key)) = free {
            user.display_name = name.clone();
            key.clone_into(&mut name_key);
        }
        let roles: Vec<&str> = user.roles.iter().map(Role::as_str).collect();
        sqlx::query(
            "INSERT INTO users (id, email, display_name, locale, country, roles, status, \
             blocked_until, max_active_games, may_host_games, email_notifications, created_at, \
             last_seen_at, display_name_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(user.id.as_uuid())
        .bind(user.email.as_str())
        .bind(user.display_name.as_str())
        .bind(user.locale.as_str())
        .bind(&user.country)
        .bind(roles)
        .bind(user.status.as_str())
        .bind(blocked_until(&user.status))
        .bind(u32_param(user.entitlements.max_active_games))
        .bind(user.entitlements.may_host_games)
        .bind(user.email_notifications)
        .bind(user.created_at)
        .bind(user.last_seen_at)
        .bind(&name_key)
        .execute(&mut *tx)
        .await
        .map_err(db(USER))?;
        tx.commit().await.map_err(db(USER))?;
        Ok(user)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_user(&self, id: UserId) -> Result<User, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(USER))?;
        Self::updated_user(row, id)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(USER))?;
        row.as_ref().map(user_from_row).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_users(&self, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let (after_at, after_id) = cursor(page)?;
        let rows = sqlx::query(
            "SELECT * FROM users \
             WHERE (created_at, id) > (COALESCE($1, '-infinity'::timestamptz), \
                                       COALESCE($2, '00000000-0000-0000-0000-000000000000'::uuid)) \
             ORDER BY created_at, id LIMIT $3",
        )
        .bind(after_at)
        .bind(after_id)
        .bind(page_limit(page))
        .fetch_all(&self.pool)
        .await
        .map_err(db(USER))?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(users, page, |u| (u.created_at, u.id.as_uuid())))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn search_users(&self, text: &str, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let (after_at, after_id) = cursor(page)?;
        // No index serves it (a scan of the users table): an admin's search, not a hot
        // path.
        let rows = sqlx::query(
            "SELECT * FROM users \
             WHERE (email ILIKE $4 ESCAPE '\\' OR display_name ILIKE $4 ESCAPE '\\') \
               AND (created_at, id) > (COALESCE($1, '-infinity'::timestamptz), \
                                       COALESCE($2, '00000000-0000-0000-0000-000000000000'::uuid)) \
             ORDER BY created_at, id LIMIT $3",
        )
        .bind(after_at)
        .bind(after_id)
        .bind(page_limit(page))
        .bind(contains_pattern(text))
        .fetch_all(&self.pool)
        .await
        .map_err(db(USER))?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(users, page, |u| (u.created_at, u.id.as_uuid())))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_admins(&self) -> Result<Vec<User>, StoreError> {
        // Served by the partial index `users_admins` (migration 0007): admins are few,
        // and this runs on every runtime alert.
        let rows =
            sqlx::query("SELECT * FROM users WHERE 'admin' = ANY (roles) ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await
                .map_err(db(USER))?;
        rows.iter().map(user_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn update_profile(&self, id: UserId, change: &ProfileChange) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db(USER))?;
        let key = change.display_name.as_ref().map(DisplayName::key);
        if let (Some(name), Some(key)) = (&change.display_name, &key) {
            // Renames to one look-alike key take turns (see `locks`), so two users
            // cannot both take the same look-alike at once.
            locks::lock(&mut tx, USER, vec![locks::key(Bucket::DisplayName, key)]).await?;
            let stored: Option<String> =
                sqlx::query_scalar("SELECT display_name_key FROM users WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db(USER))?;
            let Some(stored) = stored else {
                return Err(StoreError::not_found(USER, id));
            };
            // A name that looks like the user's own (unchanged, or re-cased) is theirs
            // whoever else shares its key (accounts made before defaults were kept apart).
            let taken: Option<i32> = if stored == *key {
                None
            } else {
                sqlx::query_scalar(
                    "SELECT 1 FROM users WHERE display_name_key = $1 AND id <> $2 LIMIT 1",
                )
                .bind(key)
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(USER))?
            };
            if taken.is_some() {
                return Err(StoreError::duplicate("display name", name.as_str()));
            }
        }
        let row = sqlx::query(
            "UPDATE users SET display_name = COALESCE($2, display_name), \
             display_name_key = COALESCE($5, display_name_key), \
             locale = COALESCE($3, locale), \
             email_notifications = COALESCE($4, email_notifications) \
             WHERE id = $1 RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(change.display_name.as_ref().map(DisplayName::as_str))
        .bind(change.locale.as_ref().map(Locale::as_str))
        .bind(change.email_notifications)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(USER))?;
        tx.commit().await.map_err(db(USER))?;
        Self::updated_user(row, id)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn update_user_status(
        &self,
        id: UserId,
        expected: UserStatus,
        to: UserStatus,
    ) -> Result<User, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET status = $4, blocked_until = $5 \
             WHERE id = $1 AND status = $2 AND blocked_until IS NOT DISTINCT FROM $3 \
             RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(expected.as_str())
        .bind(blocked_until(&expected))
        .bind(to.as_str())
        .bind(blocked_until(&to))
        .fetch_optional(&self.pool)
        .await
        .map_err(db(USER))?;
        if let Some(row) = row {
            return user_from_row(&row);
        }
        let current = self.get_user(id).await?;
        Err(StoreError::conflict(
            USER,
            id,
            format!("status is {:?}, expected {:?}", current.status, expected),
        ))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn set_roles(&self, id: UserId, roles: &[Role]) -> Result<User, StoreError> {
        let row = sqlx::query("UPDATE users SET roles = $2 WHERE id = $1 RETURNING *")
            .bind(id.as_uuid())
            .bind(normalised_roles(roles))
            .fetch_optional(&self.pool)
            .await
            .map_err(db(USER))?;
        Self::updated_user(row, id)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn set_entitlements(
        &self,
        id: UserId,
        entitlements: Entitlements,
    ) -> Result<User, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET max_active_games = $2, may_host_games = $3 WHERE id = $1 \
             RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(u32_param(entitlements.max_active_games))
        .bind(entitlements.may_host_games)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(USER))?;
        Self::updated_user(row, id)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn touch_user(
        &self,
        id: UserId,
        at: Timestamp,
        country: Option<String>,
    ) -> Result<(), StoreError> {
        // Touches are recorded off the request path and may land out of order.
        let done = sqlx::query(
            "UPDATE users SET last_seen_at = GREATEST(last_seen_at, $2), \
             country = COALESCE($3, country) WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(at)
        .bind(country)
        .execute(&self.pool)
        .await
        .map_err(db(USER))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(USER, id));
        }
        Ok(())
    }
}
