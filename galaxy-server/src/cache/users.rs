//! The user cache: the caller of every authenticated request, read from memory.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::user::{Email, Entitlements, Role, User, UserStatus};
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{Change, ChangeBus, ProfileChange, StoreError, UserStore};

use super::{Shared, WarmError, all_pages, announce, solo_bus};

/// A [`UserStore`] decorator that answers `get_user` and `find_user_by_email` from memory
/// (see the [module docs](super) for the rules).
pub struct UserCache {
    /// The store every write goes to first.
    inner: Arc<dyn UserStore>,
    /// Users by id, and ids by e-mail.
    cached: Shared<Users>,
    /// Where changes are announced to the other processes.
    bus: Arc<dyn ChangeBus>,
}

#[derive(Debug, Default)]
struct Users {
    by_id: HashMap<UserId, User>,
    by_email: HashMap<Email, UserId>,
}

impl Users {
    fn put(&mut self, user: User) {
        self.by_email.insert(user.email.clone(), user.id);
        self.by_id.insert(user.id, user);
    }

    fn remove(&mut self, id: UserId) {
        if let Some(user) = self.by_id.remove(&id) {
            self.by_email.remove(&user.email);
        }
    }
}

impl UserCache {
    /// An empty cache in front of `inner`.
    pub fn new(inner: Arc<dyn UserStore>) -> Self {
        Self {
            inner,
            cached: Shared::default(),
            bus: solo_bus(),
        }
    }

    /// Announces its writes on `bus` (the default is a bus with this process alone).
    pub fn with_bus(mut self, bus: Arc<dyn ChangeBus>) -> Self {
        self.bus = bus;
        self
    }

    /// Drops a user another process changed.
    pub fn forget(&self, change: Change) {
        if let Change::User(id) = change {
            self.cached.write(|c| c.remove(id));
        }
    }

    /// Drops every user held in memory.
    pub fn forget_all(&self) {
        self.cached.write(|c| *c = Users::default());
    }

    /// Loads every user, page by page; returns how many.
    pub async fn warm(&self) -> Result<usize, WarmError> {
        let epoch = self.cached.epoch();
        let users = all_pages(|page| {
            let inner = self.inner.clone();
            async move { inner.list_users(&page).await }
        })
        .await
        .map_err(|source| WarmError {
            cache: "user",
            source,
        })?;
        let count = users.len();
        self.cached.fill(epoch, |cached| {
            for user in users {
                cached.put(user);
            }
        });
        Ok(count)
    }

    /// How many users are held in memory.
    pub fn len(&self) -> usize {
        self.cached.read(|c| c.by_id.len())
    }

    /// Whether no user is held in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remembers the row a write begun at `epoch` returned (and announces it), or forgets
    /// the user when the write failed (a conflict means memory and store disagree) or
    /// another write came in meanwhile ([`Shared::write_since`]).
    async fn after_write(
        &self,
        id: UserId,
        epoch: u64,
        result: Result<User, StoreError>,
    ) -> Result<User, StoreError> {
        match result {
            Ok(user) => {
                self.cached
                    .write_since(epoch, |c| c.put(user.clone()), |c| c.remove(id));
                announce(&self.bus, Change::User(id)).await;
                Ok(user)
            }
            Err(error) => {
                self.cached.write(|c| c.remove(id));
                Err(error)
            }
        }
    }
}

#[async_trait]
impl UserStore for UserCache {
    async fn insert_user(&self, user: &User) -> Result<User, StoreError> {
        let stored = self.inner.insert_user(user).await?;
        self.cached.write(|c| c.put(stored.clone()));
        Ok(stored)
    }

    async fn get_user(&self, id: UserId) -> Result<User, StoreError> {
        if let Some(user) = self.cached.read(|c| c.by_id.get(&id).cloned()) {
            return Ok(user);
        }
        let epoch = self.cached.epoch();
        let user = self.inner.get_user(id).await?;
        self.cached.fill(epoch, |c| c.put(user.clone()));
        Ok(user)
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let hit = self.cached.read(|c| {
            c.by_email
                .get(email)
                .and_then(|id| c.by_id.get(id))
                .cloned()
        });
        if hit.is_some() {
            return Ok(hit);
        }
        let epoch = self.cached.epoch();
        let found = self.inner.find_user_by_email(email).await?;
        if let Some(user) = &found {
            self.cached.fill(epoch, |c| c.put(user.clone()));
        }
        Ok(found)
    }

    async fn list_users(&self, page: &PageRequest) -> Result<Page<User>, StoreError> {
        self.inner.list_users(page).await
    }

    async fn search_users(&self, text: &str, page: &PageRequest) -> Result<Page<User>, StoreError> {
        self.inner.search_users(text, page).await
    }

    async fn list_admins(&self) -> Result<Vec<User>, StoreError> {
        self.inner.list_admins().await
    }

    async fn update_profile(&self, id: UserId, change: &ProfileChange) -> Result<User, StoreError> {
        let epoch = self.cached.epoch();
        let result = self.inner.update_profile(id, change).await;
        self.after_write(id, epoch, result).await
    }

    async fn update_user_status(
        &self,
        id: UserId,
        expected: UserStatus,
        to: UserStatus,
    ) -> Result<User, StoreError> {
        let epoch = self.cached.epoch();
        let result = self.inner.update_user_status(id, expected, to).await;
        self.after_write(id, epoch, result).await
    }

    async fn set_roles(&self, id: UserId, roles: &[Role]) -> Result<User, StoreError> {
        let epoch = self.cached.epoch();
        let result = self.inner.set_roles(id, roles).await;
        self.after_write(id, epoch, result).await
    }

    async fn set_entitlements(
        &self,
        id: UserId,
        entitlements: Entitlements,
    ) -> Result<User, StoreError> {
        let epoch = self.cached.epoch();
        let result = self.inner.set_entitlements(id, entitlements).await;
        self.after_write(id, epoch, result).await
    }

    async fn touch_user(
        &self,
        id: UserId,
        at: Timestamp,
        country: Option<String>,
    ) -> Result<(), StoreError> {
        let moved = country.is_some();
        self.inner.touch_user(id, at, country.clone()).await?;
        // The store returns nothing, so apply the same rule it does (touches may land
        // out of order: last-seen only moves forward) instead of dropping the entry,
        // which would send the next request of this user to the store.
        self.cached.write(|c| {
            if let Some(user) = c.by_id.get_mut(&id) {
                user.last_seen_at = user.last_seen_at.max(at);
                if let Some(country) = country {
                    user.country = country;
                }
            }
        });
        // A new country is worth a note; last-seen alone is not (it moves with every
        // request, and a copy a little behind misleads nobody).
        if moved {
            announce(&self.bus, Change::User(id)).await;
        }
        Ok(())
    }
}
