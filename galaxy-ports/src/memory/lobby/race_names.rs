//! The Race Name Directory: one entry per uniqueness key.

use async_trait::async_trait;
use galaxy_core::domain::race_name::{RaceNameEntry, RaceNameKey, RaceNameStatus};
use galaxy_core::domain::{ApplicationId, InvalidTransition, Timestamp, UserId};
use galaxy_core::ports::{RaceNameStore, StoreError};

use super::{LobbyState, MemoryLobbyStore};

impl LobbyState {
    /// The entry for `key` if `owner` holds it; `Conflict` when someone else does.
    fn owned_entry(
        &mut self,
        key: &RaceNameKey,
        owner: UserId,
    ) -> Result<&mut RaceNameEntry, StoreError> {
        let entry = self
            .race_names
            .get_mut(key)
            .ok_or_else(|| StoreError::not_found("race name", key.as_str()))?;
        if entry.owner != owner {
            return Err(StoreError::conflict(
                "race name",
                key.as_str(),
                format!("owned by user {}, not {owner}", entry.owner),
            ));
        }
        Ok(entry)
    }
}

#[async_trait]
impl RaceNameStore for MemoryLobbyStore {
    async fn reserve_race_name(
        &self,
        entry: &RaceNameEntry,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let mut state = self.state();
        if let Some(existing) = state.race_names.get(&entry.key) {
            if existing.blocks(entry.owner, now) {
                return Err(StoreError::duplicate("race name", entry.name.as_str()));
            }
            if existing.owner == entry.owner && existing.status == RaceNameStatus::Registered {
                return Ok(existing.clone());
            }
        }
        state.race_names.insert(entry.key.clone(), entry.clone());
        Ok(entry.clone())
    }

    async fn get_race_name(&self, key: &RaceNameKey) -> Result<Option<RaceNameEntry>, StoreError> {
        Ok(self.state().race_names.get(key).cloned())
    }

    async fn register_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let mut state = self.state();
        let entry = state.owned_entry(key, owner)?;
        match entry.status {
            RaceNameStatus::Registered => return Ok(entry.clone()),
            RaceNameStatus::Released => {
                return Err(StoreError::conflict(
                    "race name",
                    key.as_str(),
                    "released, not pending",
                ));
            }
            RaceNameStatus::PendingRegistration => {}
        }
        // Refuses an expired claim (`InvalidTransition`) and then changes nothing.
        let mut registered = entry.clone();
        registered.register(at)?;
        *entry = registered.clone();
        Ok(registered)
    }

    async fn release_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        expected: RaceNameStatus,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        // The table first, as for every compare-and-set: only live entries are released.
        if expected == RaceNameStatus::Released {
            return Err(InvalidTransition::new("race_name", expected, expected, "release").into());
        }
        let mut state = self.state();
        if expected == RaceNameStatus::Registered {
            let in_use = state.applications.values().any(|a| {
                a.user_id == owner
                    && a.status.is_live()
                    && a.race_name.key() == *key
                    && state
                        .games
                        .get(&a.game_id)
                        .is_some_and(|g| !g.status.is_terminal())
            });
            if in_use {
                return Err(StoreError::conflict(
                    "race name",
                    key.as_str(),
                    "used by a live application in a game not yet over",
                ));
            }
        }
        let entry = state.owned_entry(key, owner)?;
        if entry.status != expected {
            return Err(StoreError::conflict(
                "race name",
                key.as_str(),
                format!("status is {}, expected {expected}", entry.status),
            ));
        }
        entry.release(at)?;
        Ok(entry.clone())
    }

    async fn release_claim(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        application: ApplicationId,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let mut state = self.state();
        let entry = state.owned_entry(key, owner)?;
        entry
            .release_claim_of(application, at)
            .map_err(|e| StoreError::conflict("race name", key.as_str(), e.to_string()))?;
        Ok(entry.clone())
    }

    async fn release_expired_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let mut state = self.state();
        let entry = state.owned_entry(key, owner)?;
        entry
            .release_expired(now)
            .map_err(|e| StoreError::conflict("race name", key.as_str(), e.to_string()))?;
        Ok(entry.clone())
    }

    async fn list_race_names(&self, owner: UserId) -> Result<Vec<RaceNameEntry>, StoreError> {
        let state = self.state();
        let mut list: Vec<RaceNameEntry> = state
            .race_names
            .values()
            .filter(|e| e.owner == owner && e.status != RaceNameStatus::Released)
            .cloned()
            .collect();
        list.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()).then(a.key.cmp(&b.key)));
        Ok(list)
    }

    async fn expired_pending_race_names(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RaceNameEntry>, StoreError> {
        let state = self.state();
        let mut expired: Vec<&RaceNameEntry> = state
            .race_names
            .values()
            .filter(|e| e.is_expired(now))
            .collect();
        expired.sort_by_key(|e| (e.expires_at, e.created_at, e.key.clone()));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(expired.into_iter().take(limit).cloned().collect())
    }
}
