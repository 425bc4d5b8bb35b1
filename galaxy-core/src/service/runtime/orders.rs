//! Orders submissions, one at a time per race. A submission holds its race's orders
//! lease ([`OrdersStore::lease_orders`](crate::ports::OrdersStore::lease_orders)) from
//! its checks through the engine call to its record, whichever process sends it (a
//! page, the API, a mail): without it, an older mail's orders could reach the engine
//! after newer ones that were recorded in force, and a turn would run on orders nobody
//! sees as the race's. A seat handover takes the same lease, so orders in flight finish
//! under the player who sent them.

use std::future::Future;
use std::time::Duration;

use chrono::TimeDelta;

use super::lease::{detached, holding_lease};
use super::{RuntimeError, RuntimeService};
use crate::domain::lease::Lease;
use crate::domain::play::OrdersSubmission;
use crate::domain::{GameId, LeaseToken, SubmissionId, Timestamp};
use crate::ports::{OrdersVerdict, StoreError};
use crate::service::Actor;

/// How long an orders lease holds unless renewed (its holder renews it every third of
/// this while it works): what a holder that died keeps the race's orders waiting. The
/// processes sharing a store must agree on the time to well within this.
const ORDERS_LEASE: TimeDelta = TimeDelta::seconds(10);

/// How long a submission waits for the one in flight before [`RuntimeError::OrdersBusy`]:
/// a lapsing lease's length, well inside a request's time budget.
const ORDERS_WAIT: Duration = Duration::from_secs(10);

/// How many submissions a race may make for one turn (each is kept, with the engine's
/// verdict, and each costs an engine call): far above a player revising orders, a bound
/// on a client in a loop. Past it, [`RuntimeError::RateLimited`].
pub const MAX_SUBMISSIONS_PER_TURN: u64 = 50;

/// The most errors of one verdict kept and shown (each at most 500 characters): an
/// engine is third-party code, and its verdict is stored with the submission, shown on
/// the game page and mailed back to the player.
pub const MAX_VERDICT_ERRORS: usize = 20;

/// An engine's verdict errors as they are kept: each cleaned like any engine text a
/// player reads (no control or bidi characters, bounded), blank ones dropped, at most
/// [`MAX_VERDICT_ERRORS`] with a last line saying how many more there were.
fn verdict_errors(errors: &[String]) -> Vec<String> {
    let mut clean: Vec<String> = errors
        .iter()
        .filter_map(|error| super::error::clean_engine_text(error))
        .collect();
    if clean.len() > MAX_VERDICT_ERRORS {
        let more = clean.len() - (MAX_VERDICT_ERRORS - 1);
        clean.truncate(MAX_VERDICT_ERRORS - 1);
        clean.push(format!("... and {more} more"));
    }
    clean
}

/// The `Retry-After` of a submission past [`MAX_SUBMISSIONS_PER_TURN`]: a hint only (the
/// bound lifts with the next turn, whose time the submission does not read).
const SUBMISSIONS_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// How often a submission waiting for the lease asks again.
const ORDERS_LEASE_POLL: Duration = Duration::from_millis(50);

impl RuntimeService {
    /// Submits the caller's orders for `turn` (the engine's current turn + 1) and records
    /// the submission with the engine's verdict. Orders for a turn played already are
    /// [`RuntimeError::TurnNotNext`] and a race's submission past
    /// [`MAX_SUBMISSIONS_PER_TURN`] for the turn [`RuntimeError::RateLimited`], both told
    /// before the engine hears of them. An engine that refuses the request (4xx)
    /// gives a client error with its message, and the refusal is recorded too. Another
    /// submission of the race's orders in flight is waited for (up to ten seconds; then
    /// [`RuntimeError::OrdersBusy`]). The submission runs in a task of its own: a caller
    /// that goes away (a request timeout) does not cut it off between the engine's
    /// answer and the record.
    pub async fn submit_orders(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
        orders: &serde_json::Value,
    ) -> Result<OrdersVerdict, RuntimeError> {
        self.submit_orders_sent(actor, game_id, turn, orders, Sent::Now)
            .await
    }

    /// [`RuntimeService::submit_orders`] from a page that showed `shown` as the race's
    /// latest submission for `turn` (`None`: none yet): refused with
    /// [`RuntimeError::OrdersSuperseded`] when another is latest by now, checked under
    /// the race's lease; but when the latest are these very orders, sent by the same
    /// player (the form sent again after it was taken), their verdict, as recorded. What a browser's form sends, so that a form sent again (Reload
    /// after sending, Back from a report, a second tab) never replaces orders its player
    /// did not see: sent by mail, over the API or from another tab since.
    pub async fn submit_orders_over(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
        orders: &serde_json::Value,
        shown: Option<SubmissionId>,
    ) -> Result<OrdersVerdict, RuntimeError> {
        self.submit_orders_sent(actor, game_id, turn, orders, Sent::Over(shown))
            .await
    }

    /// [`RuntimeService::submit_orders`] for orders sent as `sent` says. Mailed orders
    /// ([`Sent::At`] their arrival) are recorded as sent then, so that later orders
    /// replace earlier ones by when they were sent, not when they were processed; orders
    /// in force that were sent after them are kept: [`RuntimeError::OrdersSuperseded`].
    pub(super) async fn submit_orders_sent(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
        orders: &serde_json::Value,
        sent: Sent,
    ) -> Result<OrdersVerdict, RuntimeError> {
        let max = self.max_orders_bytes;
        let size = serde_json::to_vec(orders).map_or(usize::MAX, |bytes| bytes.len());
        if size > max {
            return Err(RuntimeError::OrdersTooLarge { size, max });
        }
        let race = self.seat(actor, game_id).await?.race;
        let this = self.clone();
        let orders = orders.clone();
        detached(async move {
            this.submit_leased(actor, game_id, turn, &orders, sent, (race, size))
                .await
        })
        .await
    }

    /// [`RuntimeService::submit_orders_sent`] from its race on (with the orders' size):
    /// the checks, the engine call and the record, under the race's orders lease.
    async fn submit_leased(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
        orders: &serde_json::Value,
        sent: Sent,
        (race, size): (String, usize),
    ) -> Result<OrdersVerdict, RuntimeError> {
        let race = race.as_str();
        self.under_orders_lease(game_id, race, |holder| async move {
            // Read again under the lease: the seat may have been handed over meanwhile.
            let seat = self.seat(actor, game_id).await?;
            if seat.race != race {
                return Err(RuntimeError::not_found("race", race));
            }
            if let Sent::Over(shown) = sent {
                let latest = self.orders.latest_orders(game_id, race, turn).await?;
                match latest {
                    None if shown.is_none() => {}
                    Some(latest) if Some(latest.id) == shown => {}
                    // These very orders in force, sent by this player again (Reload after
                    // sending): their verdict, without a second engine call or record.
                    Some(same) if same.user_id == actor.user_id && same.orders == *orders => {
                        return Ok(OrdersVerdict {
                            accepted: same.accepted,
                            errors: same.errors,
                        });
                    }
                    _ => return Err(RuntimeError::OrdersSuperseded { turn }),
                }
            }
            let sent_at = match sent {
                Sent::At(at) => Some(at),
                Sent::Now | Sent::Over(_) => None,
            };
            if let Some(sent_at) = sent_at {
                let in_force = self.orders.latest_orders(game_id, race, turn).await?;
                match in_force.as_ref() {
                    Some(latest) if latest.submitted_at > sent_at => {
                        return Err(RuntimeError::OrdersSuperseded { turn });
                    }
                    // These very orders, recorded by a run of the same mail that got here
                    // first (its claim lapsed while it worked): its verdict, no second
                    // engine call.
                    Some(same)
                        if same.submitted_at == sent_at
                            && same.user_id == actor.user_id
                            && same.orders == *orders =>
                    {
                        return Ok(OrdersVerdict {
                            accepted: same.accepted,
                            errors: same.errors.clone(),
                        });
                    }
                    _ => {}
                }
            }
            // Orders for a turn played already stop here, before the engine and the record
            // (the stored turn may lag the engine's by a turn being played, never lead it;
            // the turn runner takes no orders lease, so a turn played in this very moment
            // may still meet them at the engine, whose refusal is then recorded).
            let current = self.runtime_of(game_id).await?.current_turn;
            if turn <= current {
                return Err(RuntimeError::TurnNotNext {
                    asked: turn,
                    next: current.saturating_add(1),
                });
            }
            // Each submission is kept (the turn's history) and costs an engine call: a
            // bound per race and turn, counted under the lease, so two at once cannot
            // both be the last one allowed.
            let made = self.orders.count_orders(game_id, race, turn).await?;
            if made >= MAX_SUBMISSIONS_PER_TURN {
                return Err(RuntimeError::RateLimited {
                    what: "too many orders submissions for this turn; the orders in force \
                           stay, and the next turn takes new ones",
                    retry_after: SUBMISSIONS_RETRY_AFTER,
                });
            }
            // Still the holder, checked just before the engine hears of these orders: a
            // submission whose lease lapsed meanwhile (and another took it) stops here.
            let lease = Lease::new(holder, self.statuses.now(), ORDERS_LEASE);
            if !self.orders.renew_orders(game_id, race, lease).await? {
                return Err(RuntimeError::OrdersBusy);
            }
            let engine = &self.engines.client;
            let call = engine.submit_orders(&seat.target, race, turn, orders);
            let answer = self
                .engines
                .engine_call(call)
                .await
                .map_err(RuntimeError::engine);
            let verdict = match &answer {
                Ok(verdict) => OrdersVerdict {
                    accepted: verdict.accepted,
                    errors: verdict_errors(&verdict.errors),
                },
                Err(RuntimeError::EngineRefused { message, .. }) => OrdersVerdict {
                    accepted: false,
                    errors: vec![message.clone()],
                },
                Err(_) => return answer,
            };
            let submission = OrdersSubmission {
                id: SubmissionId::from_uuid(self.statuses.time.uuid()),
                game_id,
                race: race.to_owned(),
                user_id: actor.user_id,
                turn,
                submitted_at: sent_at.unwrap_or_else(|| self.statuses.now()),
                size: u64::try_from(size).unwrap_or(u64::MAX),
                accepted: verdict.accepted,
                errors: verdict.errors,
                orders: orders.clone(),
            };
            // Recorded only while the lease is still this submission's (the store checks
            // it in the same statement): one that lost it after the engine call is not
            // recorded over the submission holding it now, and its sender is told to
            // send again.
            match self.orders.record_orders(&submission, holder).await {
                Ok(()) => {}
                Err(StoreError::Conflict { .. }) => {
                    tracing::warn!(%game_id, race, "orders lease lost before the record; orders not recorded");
                    return Err(RuntimeError::OrdersBusy);
                }
                Err(error) => return Err(error.into()),
            }
            // A submission replaces a "ready without orders": the verdict now decides.
            self.pbem
                .unmark_ready(game_id, race, actor.user_id, turn)
                .await;
            answer
        })
        .await
    }

    /// Runs `work` holding the orders lease of `race` in the game (renewed while it
    /// runs), after waiting for the holder of the moment: at most [`ORDERS_WAIT`], then
    /// [`RuntimeError::OrdersBusy`]. The lease is given up when the work ends; a caller
    /// that goes away mid-way leaves it to lapse.
    pub(super) async fn under_orders_lease<T, W>(
        &self,
        game_id: GameId,
        race: &str,
        work: impl FnOnce(LeaseToken) -> W,
    ) -> Result<T, RuntimeError>
    where
        W: Future<Output = Result<T, RuntimeError>>,
    {
        let token = self.statuses.time.lease_token();
        let take = || async move {
            let now = self.statuses.now();
            let lease = Lease::new(token, now, ORDERS_LEASE);
            self.orders.lease_orders(game_id, race, lease, now).await
        };
        let patience = tokio::time::Instant::now() + ORDERS_WAIT;
        while !take().await? {
            if tokio::time::Instant::now() >= patience {
                return Err(RuntimeError::OrdersBusy);
            }
            tokio::time::sleep(ORDERS_LEASE_POLL).await;
        }
        // Renewed, never taken again: a renewal still on its way when the work ends must
        // not bring a released lease back.
        let renew = || async move {
            let lease = Lease::new(token, self.statuses.now(), ORDERS_LEASE);
            match self.orders.renew_orders(game_id, race, lease).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(StoreError::conflict(
                    "orders lease",
                    format!("{game_id}/{race}"),
                    "taken by another submission",
                )),
                Err(error) => Err(error),
            }
        };
        let done = holding_lease(ORDERS_LEASE, "orders lease", renew, work(token)).await;
        self.release_orders_lease(game_id, race, token).await;
        done
    }

    /// Gives the orders lease up; a failure is logged (the lease then lapses).
    async fn release_orders_lease(&self, game_id: GameId, race: &str, token: LeaseToken) {
        if let Err(error) = self.orders.release_orders(game_id, race, token).await {
            tracing::warn!(%error, %game_id, race, "orders lease not released; it lapses");
        }
    }
}

/// When orders were sent, as their way in tells it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sent {
    /// Now (the API).
    Now,
    /// At this instant: a mail's arrival.
    At(Timestamp),
    /// Now, from a page that showed this submission as the latest (`None`: none).
    Over(Option<SubmissionId>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_errors_are_cleaned_and_bounded() {
        let mut errors = vec![
            "line one\nline two\u{202E}txt.exe".to_owned(),
            " \t ".to_owned(),
            "y".repeat(600),
        ];
        errors.extend((0..30).map(|i| format!("error {i}")));
        let kept = verdict_errors(&errors);
        assert_eq!(kept.len(), MAX_VERDICT_ERRORS);
        assert_eq!(kept[0], "line one line twotxt.exe");
        assert_eq!(kept[1], format!("{}...", "y".repeat(500)));
        assert_eq!(kept[2], "error 0");
        // 32 kept after the blank one went: 19 shown, 13 more.
        assert_eq!(kept[19], "... and 13 more");
        assert_eq!(verdict_errors(&["fine".to_owned()]), ["fine"]);
    }
}
