//! Open seats: the host offers an idle race to replacement players, users apply, the
//! host approves one (who takes the race over under the same name, with all its
//! archived reports), and the old player may reclaim the seat while it is open.

use serde_json::json;

use super::{Pbem, RuntimeError, RuntimeService, next_turn, owed_notice_game, race_records};
use crate::domain::game::{Game, GameStatus};
use crate::domain::notification::NotificationKind;
use crate::domain::pbem::{RaceRecord, SeatApplication, SeatApplicationStatus};
use crate::domain::user::User;
use crate::domain::{GameId, SeatApplicationId, UserId};
use crate::ports::{SeatApplicationInsert, StoreError};
use crate::service::Actor;

/// An application for an open seat, as its host sees it.
pub type SeatApplicationView = SeatApplication;

impl RuntimeService {
    /// The game and the record of `race` in it, for a seat action: the game must be in
    /// play, the race known (404 otherwise).
    async fn seat_of(
        &self,
        game_id: GameId,
        race: &str,
    ) -> Result<(Game, RaceRecord), RuntimeError> {
        let game = self.game(game_id).await?;
        let record = race_records(&self.pbem, &game)
            .await?
            .into_iter()
            .find(|r| r.race == race)
            .ok_or_else(|| RuntimeError::not_found("race", race))?;
        if !matches!(game.status, GameStatus::Running | GameStatus::Paused) {
            return Err(RuntimeError::WrongStatus {
                action: "change a seat of",
                status: game.status,
            });
        }
        Ok((game, record))
    }

    /// Only the game's host (or an admin) acts on seats: 403 for anyone else.
    fn host_only(actor: &Actor, game: &Game) -> Result<(), RuntimeError> {
        if actor.is_admin || actor.user_id == game.host {
            Ok(())
        } else {
            Err(RuntimeError::Forbidden {
                reason: "only the game's host manages seats",
            })
        }
    }

    /// The host opens an idle race's seat to replacement players. 409 when the race is
    /// not idle (or the seat is open already).
    pub async fn open_seat(
        &self,
        actor: Actor,
        game_id: GameId,
        race: &str,
    ) -> Result<RaceRecord, RuntimeError> {
        let (game, record) = self.seat_of(game_id, race).await?;
        Self::host_only(&actor, &game)?;
        Ok(self.pbem.store.open_seat(game_id, &record.race).await?)
    }

    /// A user applies for an open seat. 409 when the seat is not open or the caller
    /// already plays in the game (or has an application pending); 403 when the caller
    /// is active in as many games as their account allows (a pending seat application
    /// counts, as a pending application to a game does).
    pub async fn apply_for_seat(
        &self,
        actor: Actor,
        game_id: GameId,
        race: &str,
    ) -> Result<SeatApplication, RuntimeError> {
        let (game, record) = self.seat_of(game_id, race).await?;
        let user = self.active_caller(actor).await?;
        if actor.user_id == game.host {
            return Err(RuntimeError::Forbidden {
                reason: "the host may not take a seat in their own game",
            });
        }
        let application = SeatApplication {
            id: SeatApplicationId::from_uuid(self.pbem.uuid()),
            game_id,
            race: record.race,
            user_id: actor.user_id,
            status: SeatApplicationStatus::Pending,
            created_at: self.pbem.now(),
        };
        let max = user.entitlements.max_active_games;
        match self.pbem.store.apply_for_seat(&application, max).await {
            Ok(SeatApplicationInsert::Inserted) => Ok(application),
            Ok(SeatApplicationInsert::TooManyActiveGames { live }) => {
                Err(RuntimeError::TooManyActiveGames { live, max })
            }
            Err(StoreError::Duplicate { .. }) => Err(RuntimeError::Store(StoreError::Conflict {
                entity: "seat application",
                id: format!("{game_id}/{race}"),
                detail: "an application of yours is pending".into(),
            })),
            Err(error) => Err(error.into()),
        }
    }

    /// The caller's pending applications for the open seats of a game: a page shows
    /// them waiting for the host instead of offering to apply again.
    pub async fn own_seat_applications(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<Vec<SeatApplication>, RuntimeError> {
        let game = self.game(game_id).await?;
        let records = race_records(&self.pbem, &game).await?;
        let mut own = Vec::new();
        for record in records.iter().filter(|r| r.seat_open) {
            let all = self
                .pbem
                .store
                .list_seat_applications(game_id, &record.race)
                .await?;
            own.extend(all.into_iter().filter(|a| {
                a.user_id == actor.user_id && a.status == SeatApplicationStatus::Pending
            }));
        }
        Ok(own)
    }

    /// A seat's applications, for the host.
    pub async fn seat_applications(
        &self,
        actor: Actor,
        game_id: GameId,
        race: &str,
    ) -> Result<Vec<SeatApplication>, RuntimeError> {
        let game = self.game(game_id).await?;
        Self::host_only(&actor, &game)?;
        Ok(self
            .pbem
            .store
            .list_seat_applications(game_id, race)
            .await?)
    }

    /// The host approves an application: the applicant takes the race over (same name,
    /// the engine never notices), the old player loses access; both are told. Orders of
    /// the old player in flight finish first (503 `orders_busy` when they take longer
    /// than ten seconds).
    pub async fn approve_seat_application(
        &self,
        actor: Actor,
        game_id: GameId,
        race: &str,
        application_id: SeatApplicationId,
    ) -> Result<RaceRecord, RuntimeError> {
        let (game, record) = self.seat_of(game_id, race).await?;
        Self::host_only(&actor, &game)?;
        let pbem = &self.pbem.store;
        // Under the race's orders lease: orders the old player has in flight reach the
        // engine and are recorded as theirs before the race changes hands, never after.
        let approve = |_| async {
            Ok(pbem
                .approve_seat_application(game_id, &record.race, application_id)
                .await)
        };
        let handover = match self
            .under_orders_lease(game_id, &record.race, approve)
            .await?
        {
            Ok(handover) => handover,
            Err(StoreError::NotFound { .. }) => {
                return Err(RuntimeError::not_found("seat application", application_id));
            }
            Err(error) => return Err(error.into()),
        };
        let handed = Handed {
            application: application_id,
            race: &handover.record.race,
            player: handover.record.user_id,
            previous: handover.previous,
        };
        notice_seat_change(&self.pbem, &game, &handed).await;
        Ok(handover.record)
    }

    /// The race's own player takes their open seat back.
    pub async fn reclaim_seat(
        &self,
        actor: Actor,
        game_id: GameId,
        race: &str,
    ) -> Result<RaceRecord, RuntimeError> {
        let (_, record) = self.seat_of(game_id, race).await?;
        if record.user_id != actor.user_id {
            return Err(RuntimeError::Forbidden {
                reason: "only the race's player may reclaim its seat",
            });
        }
        let pbem = &self.pbem.store;
        Ok(pbem
            .reclaim_seat(game_id, &record.race, actor.user_id)
            .await?)
    }

    /// The caller's account must be active (not blocked) to act.
    pub(super) async fn active_caller(&self, actor: Actor) -> Result<User, RuntimeError> {
        let user = self.pbem.users.get_user(actor.user_id).await?;
        if user.status.is_active_at(self.pbem.now()) {
            Ok(user)
        } else {
            Err(RuntimeError::Forbidden {
                reason: "the account is blocked",
            })
        }
    }
}

/// A seat handed over, as its notice tells it.
struct Handed<'a> {
    /// The approved application.
    application: SeatApplicationId,
    /// The race.
    race: &'a str,
    /// Its new player (the applicant).
    player: UserId,
    /// Who played it before.
    previous: UserId,
}

/// Raises the `seat_changed` notice of a handover (to the new and the previous player)
/// and marks it raised. A failure is logged and the notice stays owed: the scheduler's
/// pass raises it again ([`owed_seat_notices`]), its key making a repeat a no-op.
async fn notice_seat_change(p: &Pbem, game: &Game, handed: &Handed<'_>) {
    let raised = async {
        let turn = next_turn(p, game.id).await?;
        let payload = json!({
            "game_id": game.id,
            "game_name": game.settings.name.as_str(),
            "race": handed.race,
            "turn": turn,
        });
        let key = format!("seat_changed:{}:{}", game.id, handed.application);
        let recipients = vec![handed.previous, handed.player];
        let kind = NotificationKind::SeatChanged;
        p.notices
            .try_notify(kind, key, recipients, game.id, payload)
            .await?;
        p.store.seat_notice_raised(handed.application).await
    };
    if let Err(error) = raised.await {
        tracing::warn!(%error, application = %handed.application, "seat change notice owed; the next pass raises it");
    }
}

/// How many owed seat change notices one pass raises at most.
const OWED_PER_PASS: u32 = 100;

/// Raises the seat change notices still owed (a raise that failed, a server that died
/// right after the approval), in approval order, up to [`OWED_PER_PASS`] per pass.
pub(in crate::service::runtime) async fn owed_seat_notices(p: &Pbem) {
    let owed = match p.store.owed_seat_notices(OWED_PER_PASS).await {
        Ok(owed) => owed,
        Err(error) => {
            tracing::warn!(%error, "owed seat change notices not read");
            return;
        }
    };
    for notice in owed {
        let application = &notice.application;
        let settle = || p.store.seat_notice_raised(application.id);
        let Some(game) = owed_notice_game(p, application.game_id, "seat_changed", settle).await
        else {
            continue;
        };
        let handed = Handed {
            application: application.id,
            race: &application.race,
            player: application.user_id,
            previous: notice.previous,
        };
        notice_seat_change(p, &game, &handed).await;
    }
}
