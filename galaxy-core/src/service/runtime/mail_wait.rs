//! A scheduled turn's wait for the mailed orders of its last moments: mailed orders count
//! by when they arrived, so a turn due now waits (a bounded while) for the mail received
//! before its deadline that has not been read yet.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::turns::TurnRunner;
use crate::domain::Timestamp;
use crate::domain::runtime::RuntimeRecord;

/// How often a turn waiting for inbound mail looks again.
const MAIL_WAIT_POLL: Duration = Duration::from_millis(250);

/// Waits, up to the turn's mail grace, while inbound mail received between the game's
/// previous turn and this turn's `deadline` waits for its first try or is being
/// processed: it may hold orders for this very turn, and mailed orders count by when
/// they arrived, so the turn waits for them rather than refuse them as too late. Any
/// such mail counts, whatever its game (the store does not know a mail's game before it
/// is read); mail received before the previous turn (too late for this one anyway) or
/// after the deadline, and mail tried already and waiting to be tried again, do not. A
/// store that cannot say lets the turn go (logged). `false` when `cancel` fired meanwhile
/// (shutdown): the turn is not to run here.
pub(super) async fn mail_before(
    turns: &TurnRunner,
    record: &RuntimeRecord,
    deadline: Timestamp,
    cancel: &CancellationToken,
) -> bool {
    let Some(inbound) = &turns.inbound else {
        return true;
    };
    let game_id = record.game_id;
    let since = match turns.archive.latest_turn(game_id).await {
        Ok(latest) => latest.map_or(Timestamp::UNIX_EPOCH, |turn| turn.played_at),
        Err(error) => {
            tracing::warn!(%error, %game_id, "the previous turn not read; the turn runs without waiting for mail");
            return true;
        }
    };
    let until = tokio::time::Instant::now() + turns.settings.mail_grace;
    let mut waited = false;
    loop {
        let now = turns.statuses.now();
        match inbound.inbound_pending(since, deadline, now).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                tracing::warn!(%error, %game_id, "waiting inbound mail not read; the turn runs");
                break;
            }
        }
        if tokio::time::Instant::now() >= until {
            tracing::warn!(
                %game_id,
                grace = ?turns.settings.mail_grace,
                "inbound mail received before the deadline still waits; the turn runs without it"
            );
            return true;
        }
        waited = true;
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(MAIL_WAIT_POLL) => {}
        }
    }
    if waited {
        tracing::info!(%game_id, "the turn waited for the inbound mail received before its deadline");
    }
    true
}
