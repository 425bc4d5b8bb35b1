//! Transaction-scoped advisory locks that serialise the count-then-write steps of the
//! limits (login codes per address and per client, active and hosted games per user)
//! and of display names that must not look like another user's.
//!
//! A limit counts rows and then inserts one; two transactions doing that side by side
//! would both see room. Each such transaction first takes `pg_advisory_xact_lock` on a
//! key derived from the bucket it counts (the e-mail, the client, the user), so writers
//! of one bucket queue there, and each counts after its predecessor committed (under
//! READ COMMITTED every statement sees what committed before it started). Writers of
//! different buckets never wait for each other. The locks are released at commit or
//! rollback, also when the connection dies, so none can be left behind.

use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};

use galaxy_core::ports::StoreError;

use crate::error::db;

/// What a lock key guards, part of the hashed input so buckets of different kinds never
/// share a key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bucket {
    /// Login challenges of one e-mail address (issue limits and the wrong-code budget).
    LoginEmail,
    /// Login challenges requested from one client.
    LoginClient,
    /// The games one user is active in (the active-games entitlement): applications to
    /// games and to open seats.
    ActiveGames,
    /// Unfinished games one user hosts (the hosted-games cap).
    HostedGames,
    /// Users whose display names share one look-alike key.
    DisplayName,
    /// Appends to the push event log (one bucket: appends commit in sequence order).
    PushAppend,
    /// Sends of one orders-by-mail budget (replies of a player, refusals to an address).
    MailInSend,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Self::LoginEmail => "galaxy:login-email:",
            Self::LoginClient => "galaxy:login-client:",
            Self::ActiveGames => "galaxy:active-games:",
            Self::HostedGames => "galaxy:hosted-games:",
            Self::DisplayName => "galaxy:display-name:",
            Self::PushAppend => "galaxy:push-append:",
            Self::MailInSend => "galaxy:mail-in-send:",
        }
    }
}

/// The 64-bit advisory lock key of one bucket: the first 8 bytes of a SHA-256 of its
/// kind and value. A collision (as likely as any 64-bit one) only makes two buckets
/// queue together; it never lets a limit pass.
pub(crate) fn key(bucket: Bucket, value: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(bucket.name().as_bytes())
        .chain_update(value.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Takes the advisory locks of `keys` for the rest of `tx`, in ascending key order so
/// that two transactions wanting overlapping sets can never deadlock.
pub(crate) async fn lock(
    tx: &mut Transaction<'static, Postgres>,
    entity: &'static str,
    mut keys: Vec<i64>,
) -> Result<(), StoreError> {
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut **tx)
            .await
            .map_err(db(entity))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_kinds_do_not_share_them() {
        let email = key(Bucket::LoginEmail, "a@example.org");
        assert_eq!(email, key(Bucket::LoginEmail, "a@example.org"));
        assert_ne!(email, key(Bucket::LoginClient, "a@example.org"));
        assert_ne!(email, key(Bucket::LoginEmail, "b@example.org"));
        assert_ne!(key(Bucket::ActiveGames, "x"), key(Bucket::LoginClient, "x"));
    }
}
