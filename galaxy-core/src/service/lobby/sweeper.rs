//! The lobby sweeper: frees race-name claims whose TTL ran out, closes or cancels games
//! whose enrollment deadline passed (SPEC section 3, lobby), and completes the effects a
//! failure left owed by a closed or cancelled game (`effects.rs`).

use async_trait::async_trait;

use super::{LobbyError, LobbyService};
use crate::domain::application::ApplicationStatus;
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::race_name::RaceNameEntry;
use crate::ports::StoreError;
use crate::worker::{TickReport, Worker};

/// How many expired claims and how many games one pass looks at, by default.
pub const DEFAULT_SWEEP_BATCH: u32 = 100;

/// The lobby's periodic worker. Each pass acts on at most `batch` expired claims and
/// `batch` games; everything it does is a compare-and-set, so several sweepers (or a
/// sweeper racing a host) never act twice on one item.
#[derive(Debug, Clone)]
pub struct LobbySweeper {
    /// The lobby whose state it sweeps (same ports, same configuration).
    lobby: LobbyService,
    /// Items per kind per pass, so one pass stays short.
    batch: u32,
}

impl LobbySweeper {
    /// A sweeper over `lobby` with the default batch size.
    pub fn new(lobby: LobbyService) -> Self {
        Self {
            lobby,
            batch: DEFAULT_SWEEP_BATCH,
        }
    }

    /// Sets how many items of each kind one pass handles (at least 1).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Frees (or, when the application was approved meanwhile, registers) every expired
    /// pending claim in the batch; returns how many it acted on.
    async fn sweep_race_names(&self) -> Result<usize, StoreError> {
        let lobby = &self.lobby;
        let now = lobby.now();
        let expired = lobby
            .ports
            .race_names
            .expired_pending_race_names(now, self.batch)
            .await?;
        let mut handled = 0;
        for entry in expired {
            match self.settle_expired_claim(&entry).await {
                Ok(true) => handled += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, owner = %entry.owner, "expired race-name claim not settled");
                }
            }
        }
        Ok(handled)
    }

    /// One expired claim: registered when its application was approved (an approval
    /// whose registration was lost to a crash), released otherwise. `false` when
    /// someone else acted on it first.
    async fn settle_expired_claim(&self, entry: &RaceNameEntry) -> Result<bool, LobbyError> {
        let lobby = &self.lobby;
        if let Some(id) = entry.application_id {
            match lobby.ports.applications.get_application(id).await {
                Ok(app)
                    if app.status == ApplicationStatus::Approved && app.user_id == entry.owner =>
                {
                    lobby.secure_name(&app).await?;
                    return Ok(true);
                }
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        // Only while the claim is still expired: one renewed since it was listed (its
        // owner applied with the name again) stays theirs.
        match lobby
            .ports
            .race_names
            .release_expired_race_name(&entry.key, entry.owner, lobby.now())
            .await
        {
            Ok(_) => Ok(true),
            Err(
                StoreError::Conflict { .. }
                | StoreError::InvalidTransition(_)
                | StoreError::NotFound { .. },
            ) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Applies [`Game::deadline_verdict`] to every game of the batch past its deadline;
    /// returns how many games changed.
    async fn sweep_deadlines(&self) -> Result<usize, StoreError> {
        let lobby = &self.lobby;
        let now = lobby.now();
        let due = lobby
            .ports
            .games
            .games_past_deadline(now, self.batch)
            .await?;
        let mut handled = 0;
        for game in due {
            let Some(to) = game.deadline_verdict(now) else {
                continue;
            };
            match self.apply_verdict(&game, to).await {
                Ok(()) => handled += 1,
                Err(LobbyError::StatusChanged { .. } | LobbyError::InvalidTransition(_)) => {}
                Err(error) => {
                    tracing::warn!(%error, game_id = %game.id, "deadline verdict not applied");
                }
            }
        }
        Ok(handled)
    }

    async fn apply_verdict(&self, game: &Game, to: GameStatus) -> Result<(), LobbyError> {
        let lobby = &self.lobby;
        let reason = Some(crate::domain::game::reasons::ENROLLMENT_DEADLINE_PASSED);
        // The verdict rests on the approved count as read: an approval landing meanwhile
        // (a game reaching its quorum at the last moment) voids it, and the next pass
        // judges the game again.
        let mut change = lobby.status_change(to, GameTrigger::Sweeper, None, reason);
        change.expected_approved = Some(game.approved_count);
        let changed = lobby.compare_and_set(game, &change).await?;
        if changed.status == GameStatus::Cancelled {
            lobby.after_cancel(game.status, &changed).await;
        } else {
            lobby.after_close(changed).await;
        }
        Ok(())
    }
}

#[async_trait]
impl Worker for LobbySweeper {
    fn name(&self) -> &'static str {
        "lobby_sweeper"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        let names = self.sweep_race_names().await?;
        let games = self.sweep_deadlines().await?;
        // Last, so a verdict of this pass whose effects failed is retried at the next.
        let owed = self.lobby.complete_owed_effects(self.batch).await?;
        Ok(TickReport {
            handled: names + games + owed,
        })
    }
}
