//! The runtime's side of orders by e-mail: [`OrdersDesk`] over the players' orders
//! path, so mailed orders are checked, forwarded and recorded exactly like orders sent
//! over HTTP.
//!
//! A mail may be processed well after it arrived (the engine was down, the worker
//! retried it after its lease lapsed), so its orders are taken only for the turn they
//! were written for, and only while nothing the player sent later is in force: a turn
//! played since the mail arrived, or a later submission of other orders, refuses it with
//! the reason. A mail processed again after a crash whose orders are the ones in force
//! gets their recorded verdict, without a second engine call.

use async_trait::async_trait;

use super::{RuntimeError, RuntimeService};
use crate::domain::{GameId, Timestamp, UserId};
use crate::ports::{MailedOrdersVerdict, OrdersDesk, OrdersDeskError, OrdersVerdict};
use crate::service::{Actor, ErrorKind, ServiceError};

#[async_trait]
impl OrdersDesk for RuntimeService {
    async fn submit_mailed_orders(
        &self,
        user_id: UserId,
        game_id: GameId,
        orders: &str,
        received_at: Timestamp,
    ) -> Result<MailedOrdersVerdict, OrdersDeskError> {
        let refused = |game_name: Option<String>, reason: String| OrdersDeskError::Refused {
            game_name,
            reason,
        };
        let game = self.game(game_id).await.map_err(|e| desk_error(None, e))?;
        let name = Some(game.settings.name.as_str().to_owned());
        let progress = self
            .progress(&game)
            .await
            .map_err(|e| desk_error(name.clone(), e))?;
        let Some(current) = progress.current_turn else {
            return Err(refused(
                name,
                format!("the game is {} and takes no orders", game.status),
            ));
        };
        let turn = current.saturating_add(1);
        let late = |e| desk_error(name.clone(), e);
        let played = self
            .archive
            .latest_turn(game_id)
            .await
            .map_err(|e| late(e.into()))?;
        if let Some(played) = played.filter(|t| t.turn > 0 && t.played_at > received_at) {
            return Err(refused(
                name,
                format!(
                    "this mail arrived before turn {} was played but could not be taken in \
                     time; its orders were not applied to turn {turn}: send them again if \
                     they still stand",
                    played.turn
                ),
            ));
        }
        let actor = Actor {
            user_id,
            is_admin: false,
        };
        let value = serde_json::Value::String(orders.to_owned());
        let in_force = self
            .orders(actor, game_id, turn)
            .await
            .map_err(late)?
            .latest;
        let verdict = match in_force.filter(|s| s.submitted_at >= received_at) {
            // This mail, processed again after a crash: its verdict stands.
            Some(same) if same.orders == value && same.user_id == user_id => OrdersVerdict {
                accepted: same.accepted,
                errors: same.errors,
            },
            Some(_) => {
                return Err(refused(
                    name,
                    format!(
                        "orders for turn {turn} sent after this mail are in force; this \
                         mail's orders were not applied"
                    ),
                ));
            }
            None => self
                .submit_orders(actor, game_id, turn, &value)
                .await
                .map_err(late)?,
        };
        Ok(MailedOrdersVerdict {
            game_name: game.settings.name.as_str().to_owned(),
            turn,
            deadline: progress.next_turn_at,
            accepted: verdict.accepted,
            errors: verdict.errors,
        })
    }
}

/// A runtime error as the mail reply tells it: a dependency down is worth a retry,
/// anything else is the answer.
fn desk_error(game_name: Option<String>, error: RuntimeError) -> OrdersDeskError {
    match error.kind() {
        ErrorKind::Unavailable | ErrorKind::Internal => {
            OrdersDeskError::Unavailable(error.to_string())
        }
        ErrorKind::NotFound => OrdersDeskError::Refused {
            game_name,
            reason: "you do not play in this game".to_owned(),
        },
        _ => OrdersDeskError::Refused {
            game_name,
            reason: error.to_string(),
        },
    }
}
