//! The Race Name Directory as the lobby uses it: claims made by applications, their
//! registration on approval, and owners letting names go.
//!
//! Invariant kept here: a pending claim belongs to exactly one pending application (the
//! entry's `application_id`). So applying with a name you hold pending for another
//! pending application is refused ([`LobbyError::RaceNameInUse`]) until that one is
//! decided, and rejecting or withdrawing an application frees the claim only if it is
//! still that application's.

use super::{LobbyError, LobbyService};
use crate::domain::Timestamp;
use crate::domain::UserId;
use crate::domain::application::{Application, ApplicationStatus};
use crate::domain::race_name::{RaceName, RaceNameEntry, RaceNameKey, RaceNameStatus};
use crate::ports::StoreError;
use crate::service::Actor;

impl LobbyService {
    /// The caller's pending and registered race names.
    pub async fn my_race_names(&self, actor: Actor) -> Result<Vec<RaceNameEntry>, LobbyError> {
        Ok(self.ports.race_names.list_race_names(actor.user_id).await?)
    }

    /// Releases one of the caller's registered names. A name held for a pending
    /// application, or used by a live application in a game not yet over, stays (409).
    pub async fn release_race_name(
        &self,
        actor: Actor,
        name: &str,
    ) -> Result<RaceNameEntry, LobbyError> {
        let name = RaceName::parse(name).map_err(|e| LobbyError::validation("race_name", e))?;
        let key = name.key();
        let now = self.now();
        let entry = self
            .ports
            .race_names
            .get_race_name(&key)
            .await?
            .filter(|e| e.owner == actor.user_id)
            .ok_or_else(|| LobbyError::not_found("race name", &name))?;
        match entry.status {
            RaceNameStatus::Registered => {}
            RaceNameStatus::PendingRegistration if !entry.is_expired(now) => {
                return Err(LobbyError::RaceNameInUse {
                    name: entry.name.to_string(),
                });
            }
            _ => return Err(LobbyError::not_found("race name", &name)),
        }
        if self
            .used_by_live_application(entry.owner, &entry.key)
            .await?
        {
            return Err(LobbyError::RaceNameInUse {
                name: entry.name.to_string(),
            });
        }
        // Checked again by the store under the entry's lock: an application stored with
        // the name since the check above is seen there.
        let released = self
            .ports
            .race_names
            .release_race_name(&key, actor.user_id, RaceNameStatus::Registered, now)
            .await;
        match released {
            Ok(released) => Ok(released),
            // Still the caller's registered name: a live application uses it. Otherwise it
            // was released (another tab) or changed hands meanwhile.
            Err(StoreError::Conflict { .. }) => {
                let now_held = self.ports.race_names.get_race_name(&key).await?;
                match now_held {
                    Some(e)
                        if e.owner == actor.user_id && e.status == RaceNameStatus::Registered =>
                    {
                        Err(LobbyError::RaceNameInUse {
                            name: entry.name.to_string(),
                        })
                    }
                    _ => Err(LobbyError::not_found("race name", &name)),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Whether any live application of the name's owner, in a game not yet over, uses
    /// the name. Every one counts, not only the application recorded on `entry`: a
    /// registered name reused for later games keeps the application that first claimed
    /// it, and one name may serve in several games at once.
    async fn used_by_live_application(
        &self,
        owner: UserId,
        key: &RaceNameKey,
    ) -> Result<bool, LobbyError> {
        let applications = self
            .ports
            .applications
            .list_user_applications(owner)
            .await?;
        for application in applications
            .iter()
            .filter(|a| a.status.is_live() && a.race_name.key() == *key)
        {
            match self.ports.games.get_game(application.game_id).await {
                Ok(game) if !game.status.is_terminal() => return Ok(true),
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(false)
    }

    /// Claims the application's race name before the application is stored. Returns
    /// whether this call made a new pending claim (which the caller must release if
    /// storing the application fails); an owner's registered name is reused as it is.
    pub(super) async fn claim_for_application(
        &self,
        application: &Application,
        now: Timestamp,
    ) -> Result<bool, LobbyError> {
        let key = application.race_name.key();
        if let Some(prior) = self.ports.race_names.get_race_name(&key).await? {
            if prior.blocks(application.user_id, now) {
                return Err(LobbyError::RaceNameTaken {
                    name: application.race_name.to_string(),
                });
            }
            let own_live_claim = prior.owner == application.user_id
                && prior.status == RaceNameStatus::PendingRegistration
                && !prior.is_expired(now);
            if let Some(other) = prior.application_id.filter(|_| own_live_claim) {
                match self.ports.applications.get_application(other).await {
                    Ok(other) if other.status == ApplicationStatus::Pending => {
                        return Err(LobbyError::RaceNameInUse {
                            name: application.race_name.to_string(),
                        });
                    }
                    // Approved but not registered yet (a crash): repair, then reuse.
                    Ok(other) if other.status == ApplicationStatus::Approved => {
                        self.secure_name(&other).await?;
                    }
                    Ok(_) | Err(StoreError::NotFound { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        let stored = self
            .reserve(&self.pending_entry(application, now), now)
            .await?;
        Ok(stored.status == RaceNameStatus::PendingRegistration
            && stored.application_id == Some(application.id))
    }

    /// Before approving: makes sure the applicant still holds the name, renewing this
    /// application's claim to a whole time to live (or taking it again, lapsed); someone
    /// else holding it now refuses the approval. The renewal matters should registering
    /// the name after the approval fail: the sweeper registers it only while the claim
    /// is still the applicant's, and a claim about to lapse could be taken by another
    /// player first.
    pub(super) async fn hold_name_for(&self, application: &Application) -> Result<(), LobbyError> {
        let now = self.now();
        let key = application.race_name.key();
        match self.ports.race_names.get_race_name(&key).await? {
            Some(entry)
                if entry.owner == application.user_id
                    && (entry.status == RaceNameStatus::Registered
                        || (entry.status == RaceNameStatus::PendingRegistration
                            && !entry.is_expired(now)
                            && entry.application_id != Some(application.id))) =>
            {
                Ok(())
            }
            Some(entry) if entry.blocks(application.user_id, now) => {
                Err(LobbyError::RaceNameTaken {
                    name: application.race_name.to_string(),
                })
            }
            _ => self
                .reserve(&self.pending_entry(application, now), now)
                .await
                .map(drop),
        }
    }

    /// After approval: registers the application's name for its player. A claim that
    /// lapsed (expired, or released by the sweeper) is claimed again first.
    pub(super) async fn secure_name(
        &self,
        application: &Application,
    ) -> Result<RaceNameEntry, LobbyError> {
        let now = self.now();
        let key = application.race_name.key();
        let names = &self.ports.race_names;
        match names
            .register_race_name(&key, application.user_id, now)
            .await
        {
            Ok(entry) => return Ok(entry),
            Err(
                StoreError::Conflict { .. }
                | StoreError::InvalidTransition(_)
                | StoreError::NotFound { .. },
            ) => {}
            Err(error) => return Err(error.into()),
        }
        self.reserve(&self.pending_entry(application, now), now)
            .await?;
        Ok(names
            .register_race_name(&key, application.user_id, now)
            .await?)
    }

    /// Frees the pending claim of a rejected or withdrawn application, if it is still
    /// that application's (the store checks, under the entry's lock: the player may have
    /// applied elsewhere with the name meanwhile, and that application holds the claim
    /// now) and no other live application of its owner uses the name (two applications
    /// made at once share one claim). A failure is logged: the claim then lapses at its
    /// TTL and the sweeper frees it.
    pub(super) async fn release_claim(&self, application: &Application) {
        let key = application.race_name.key();
        let owner = application.user_id;
        match self.used_by_live_application(owner, &key).await {
            Ok(false) => {}
            Ok(true) => return,
            Err(error) => {
                tracing::warn!(%error, application_id = %application.id, "race-name claim kept: its other uses not read");
                return;
            }
        }
        let names = &self.ports.race_names;
        match names
            .release_claim(&key, owner, application.id, self.now())
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
            Err(error) => {
                tracing::warn!(%error, application_id = %application.id, "race-name claim not released");
            }
        }
    }

    fn pending_entry(&self, application: &Application, now: Timestamp) -> RaceNameEntry {
        RaceNameEntry::pending(
            application.race_name.clone(),
            application.user_id,
            application.game_id,
            application.id,
            now,
            self.config.race_name_ttl,
        )
    }

    /// Reserves a claim; another holder makes it [`LobbyError::RaceNameTaken`].
    async fn reserve(
        &self,
        entry: &RaceNameEntry,
        now: Timestamp,
    ) -> Result<RaceNameEntry, LobbyError> {
        match self.ports.race_names.reserve_race_name(entry, now).await {
            Ok(stored) => Ok(stored),
            Err(StoreError::Duplicate { .. }) => Err(LobbyError::RaceNameTaken {
                name: entry.name.to_string(),
            }),
            Err(error) => Err(error.into()),
        }
    }
}
