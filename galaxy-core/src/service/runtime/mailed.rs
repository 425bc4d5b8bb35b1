//! The runtime's side of orders by e-mail: [`OrdersDesk`] over the players' orders
//! path, so mailed orders are checked, forwarded and recorded exactly like orders sent
//! over HTTP.

use async_trait::async_trait;

use super::{RuntimeError, RuntimeService};
use crate::domain::{GameId, UserId};
use crate::ports::{MailedOrdersVerdict, OrdersDesk, OrdersDeskError};
use crate::service::{Actor, ErrorKind, ServiceError};

#[async_trait]
impl OrdersDesk for RuntimeService {
    async fn submit_mailed_orders(
        &self,
        user_id: UserId,
        game_id: GameId,
        orders: &str,
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
        let actor = Actor {
            user_id,
            is_admin: false,
        };
        let value = serde_json::Value::String(orders.to_owned());
        let verdict = self
            .submit_orders(actor, game_id, turn, &value)
            .await
            .map_err(|e| desk_error(name.clone(), e))?;
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
