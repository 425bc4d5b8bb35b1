//! The runtime's side of orders by e-mail: [`OrdersDesk`] over the players' orders
//! path, so mailed orders are checked, forwarded and recorded exactly like orders sent
//! over HTTP.
//!
//! A mail may be processed well after it arrived (the engine was down, the worker
//! retried it after its lease lapsed), so its orders are recorded as sent when the mail
//! arrived, taken only for the turn they were written for, and only while nothing the
//! player sent later is in force: a turn played since the mail arrived, or orders sent
//! after it (by mail or over the web), refuse it with the reason, whatever order the
//! mails are processed in. A mail processed again after a crash finds its own recorded
//! submission and answers with its verdict, without a second engine call.

use async_trait::async_trait;

use super::orders::Sent;
use super::{RuntimeError, RuntimeService};
use crate::domain::play::OrdersSubmission;
use crate::domain::{GameId, Timestamp, UserId};
use crate::ports::{MailedOrdersVerdict, OrdersDesk, OrdersDeskError, Refusal};
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
        let refused = |game_name: Option<String>, reason: Refusal| OrdersDeskError::Refused {
            game_name,
            reason,
        };
        let game = self.game(game_id).await.map_err(|e| desk_error(None, e))?;
        let name = Some(game.settings.name.as_str().to_owned());
        let progress = self
            .progress(&game, None)
            .await
            .map_err(|e| desk_error(name.clone(), e))?;
        let Some(current) = progress.current_turn else {
            return Err(refused(
                name,
                Refusal::NotInPlay {
                    status: game.status.to_string(),
                },
            ));
        };
        let turn = current.saturating_add(1);
        let late = |e| desk_error(name.clone(), e);
        let actor = Actor {
            user_id,
            is_admin: false,
        };
        let value = serde_json::Value::String(orders.to_owned());
        // Mailed orders are recorded as sent when their mail arrived: this mail's own
        // submission (it was processed before, and a crash lost its end) is the one with
        // its text and that instant.
        let own = |s: &OrdersSubmission| {
            s.submitted_at == received_at && s.orders == value && s.user_id == user_id
        };
        let latest = |turn| async move {
            let read = self.orders(actor, game_id, turn).await.map_err(late)?;
            Ok::<_, OrdersDeskError>(read.latest)
        };
        let in_force = latest(turn).await?;
        let played = self
            .archive
            .latest_turn(game_id)
            .await
            .map_err(|e| late(e.into()))?;
        let replayed = match in_force.as_ref().filter(|s| own(s)) {
            Some(same) => Some((turn, same.clone())),
            // Processed, then a turn ran before the crash was recovered from.
            None if current > 0 => latest(current)
                .await?
                .filter(|s| own(s))
                .map(|same| (current, same)),
            None => None,
        };
        if let Some((taken_for, same)) = replayed {
            return Ok(MailedOrdersVerdict {
                game_name: game.settings.name.as_str().to_owned(),
                turn: taken_for,
                // A turn already played has no deadline any more.
                deadline: progress.next_turn_at.filter(|_| taken_for == turn),
                accepted: same.accepted,
                errors: same.errors,
            });
        }
        if let Some(played) = played.filter(|t| t.turn > 0 && t.played_at > received_at) {
            return Err(refused(
                name,
                Refusal::TooLate {
                    played: played.turn,
                    turn,
                },
            ));
        }
        // Orders sent after this mail and in force stay: checked under the race's orders
        // lease, with the engine call and the record.
        let verdict = match self
            .submit_orders_sent(actor, game_id, turn, &value, Sent::At(received_at))
            .await
        {
            Ok(verdict) => verdict,
            Err(RuntimeError::OrdersSuperseded { turn }) => {
                return Err(refused(name, Refusal::Superseded { turn }));
            }
            // The engine read them and said no in its own way (a 4xx with its reason):
            // recorded as a refusal, and answered as one, as a replay of this mail is.
            Err(RuntimeError::EngineRefused { message, .. }) => crate::ports::OrdersVerdict {
                accepted: false,
                errors: vec![message],
            },
            Err(error) => return Err(late(error)),
        };
        Ok(MailedOrdersVerdict {
            game_name: game.settings.name.as_str().to_owned(),
            turn,
            deadline: progress.next_turn_at,
            accepted: verdict.accepted,
            errors: verdict.errors,
        })
    }

    async fn plays_in(&self, user_id: UserId, game_id: GameId) -> Result<bool, OrdersDeskError> {
        plays_in(self, user_id, game_id).await
    }

    async fn game_name(&self, game_id: GameId) -> Option<String> {
        let game = self.game(game_id).await.ok()?;
        Some(game.settings.name.as_str().to_owned())
    }
}

/// Whether the user plays a race of the game now ([`OrdersDesk::plays_in`]): a
/// store that fails is `Unavailable`.
pub(super) async fn plays_in(
    runtime: &RuntimeService,
    user_id: UserId,
    game_id: GameId,
) -> Result<bool, OrdersDeskError> {
    let actor = Actor {
        user_id,
        is_admin: false,
    };
    match runtime.own_race(actor, game_id).await {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
        Err(error) => Err(desk_error(None, error)),
    }
}

/// A runtime error as the mail reply tells it: a dependency down is worth a retry (an
/// engine being recreated, with none bound to the game for the moment, too), anything
/// else is the answer.
fn desk_error(game_name: Option<String>, error: RuntimeError) -> OrdersDeskError {
    match &error {
        RuntimeError::Unhealthy { .. } => return OrdersDeskError::Unavailable(error.to_string()),
        // The game left play meanwhile (it finished, an admin stopped it).
        RuntimeError::WrongStatus { status, .. } => {
            return OrdersDeskError::Refused {
                game_name,
                reason: Refusal::NotInPlay {
                    status: status.to_string(),
                },
            };
        }
        RuntimeError::OrdersTooLarge { size, max } => {
            return OrdersDeskError::Refused {
                game_name,
                reason: Refusal::TooLarge {
                    size: *size,
                    max: *max,
                },
            };
        }
        // The only limit on submitting orders: submissions per race and turn.
        RuntimeError::RateLimited { .. } => {
            return OrdersDeskError::Refused {
                game_name,
                reason: Refusal::TooMany,
            };
        }
        RuntimeError::RaceEliminated { race } => {
            return OrdersDeskError::Refused {
                game_name,
                reason: Refusal::Eliminated { race: race.clone() },
            };
        }
        RuntimeError::TurnNotNext { asked, next } => {
            return OrdersDeskError::Refused {
                game_name,
                reason: Refusal::NotNextTurn {
                    turn: *asked,
                    next: *next,
                },
            };
        }
        _ => {}
    }
    match error.kind() {
        ErrorKind::Unavailable | ErrorKind::Internal => {
            OrdersDeskError::Unavailable(error.to_string())
        }
        ErrorKind::NotFound => OrdersDeskError::Refused {
            game_name,
            reason: Refusal::NotAPlayer,
        },
        _ => OrdersDeskError::Refused {
            game_name,
            reason: Refusal::Other(error.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_between_two_containers_is_retried_and_a_stranger_refused() {
        let between = RuntimeError::Unhealthy {
            reason: "no engine is bound to the game".into(),
        };
        assert!(matches!(
            desk_error(None, between),
            OrdersDeskError::Unavailable(_)
        ));
        let stranger = RuntimeError::not_found("game", "g");
        assert!(matches!(
            desk_error(Some("Vega".into()), stranger),
            OrdersDeskError::Refused {
                reason: Refusal::NotAPlayer,
                ..
            }
        ));
    }

    #[test]
    fn the_desk_s_own_refusals_keep_their_meaning_for_the_reply_s_language() {
        let refused = |error| match desk_error(None, error) {
            OrdersDeskError::Refused { reason, .. } => reason,
            other => panic!("not a refusal: {other:?}"),
        };
        assert!(matches!(
            refused(RuntimeError::OrdersTooLarge { size: 9, max: 8 }),
            Refusal::TooLarge { size: 9, max: 8 }
        ));
        assert!(matches!(
            refused(RuntimeError::TurnNotNext { asked: 4, next: 5 }),
            Refusal::NotNextTurn { turn: 4, next: 5 }
        ));
        let limited = RuntimeError::RateLimited {
            what: "too many orders submissions for this turn",
            retry_after: std::time::Duration::from_secs(60),
        };
        assert!(matches!(refused(limited), Refusal::TooMany));
        let out = RuntimeError::RaceEliminated {
            race: "Zorgons".into(),
        };
        assert_eq!(
            refused(out),
            Refusal::Eliminated {
                race: "Zorgons".into()
            }
        );
    }
}
