//! Players' orders and reports, forwarded to the engine for the caller's own race only:
//! the race is looked up from the caller's approved application, never taken from the
//! request, so a player can neither read nor command another race.

use super::{RuntimeError, RuntimeService};
use crate::domain::GameId;
use crate::domain::application::ApplicationStatus;
use crate::domain::game::{Game, GameStatus};
use crate::ports::OrdersVerdict;
use crate::service::Actor;

/// Where a player's request goes: the engine and the caller's race.
struct Seat {
    /// The engine's base URL.
    endpoint: String,
    /// The caller's race name.
    race: String,
}

impl RuntimeService {
    /// Submits the caller's orders for `turn` (the engine's current turn + 1); the engine's
    /// verdict is returned as is. `orders` is passed through untouched, size-bounded.
    pub async fn submit_orders(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
        orders: &serde_json::Value,
    ) -> Result<OrdersVerdict, RuntimeError> {
        let max = self.shared.config.max_orders_bytes;
        let size = serde_json::to_vec(orders).map_or(usize::MAX, |bytes| bytes.len());
        if size > max {
            return Err(RuntimeError::OrdersTooLarge { size, max });
        }
        let seat = self.seat(actor, game_id).await?;
        let engine = &self.shared.ports.engine;
        let call = engine.submit_orders(&seat.endpoint, &seat.race, turn, orders);
        self.shared
            .engine_call(call)
            .await
            .map_err(RuntimeError::engine)
    }

    /// The caller's report for `turn`, as the engine wrote it (`{race, turn, text, ...}`).
    pub async fn report(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
    ) -> Result<serde_json::Value, RuntimeError> {
        let seat = self.seat(actor, game_id).await?;
        let engine = &self.shared.ports.engine;
        let call = engine.report(&seat.endpoint, &seat.race, turn);
        self.shared
            .engine_call(call)
            .await
            .map_err(RuntimeError::engine)
    }

    /// The caller's seat in a running or paused game. Not a player -> `NotFound` (the
    /// game's runtime is none of their business); a game not in play -> `Conflict`.
    async fn seat(&self, actor: Actor, game_id: GameId) -> Result<Seat, RuntimeError> {
        let game: Game = self.game(game_id).await?;
        let applications = &self.shared.ports.applications;
        let application = applications
            .find_live_application(game_id, actor.user_id)
            .await?
            .filter(|a| a.status == ApplicationStatus::Approved)
            .ok_or_else(|| RuntimeError::not_found("game", game_id))?;
        if !matches!(game.status, GameStatus::Running | GameStatus::Paused) {
            return Err(RuntimeError::WrongStatus {
                action: "play",
                status: game.status,
            });
        }
        let record = self.runtime_of(game_id).await?;
        let binding = record.binding.ok_or_else(|| RuntimeError::Unhealthy {
            reason: "no engine is bound to the game".into(),
        })?;
        Ok(Seat {
            endpoint: binding.engine_endpoint,
            race: application.race_name.as_str().to_owned(),
        })
    }
}
