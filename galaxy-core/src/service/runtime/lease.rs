//! Holding a lease while the work it covers runs: one renewal loop for the runtime's
//! leased work (runtime jobs, turns, orders submissions), each renewing through its own
//! store call; and running such work where a caller that goes away cannot cut it off.

use std::future::Future;
use std::time::Duration;

use chrono::TimeDelta;

use super::RuntimeError;
use crate::ports::StoreError;

/// Runs `work` in a task of its own and waits for it: a caller that goes away (a request
/// timeout, a closed connection) does not cut it off halfway (an engine past a turn, or
/// holding orders, with nothing recorded). A panic in it panics here.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, RuntimeError>> + Send + 'static,
) -> Result<T, RuntimeError> {
    match tokio::spawn(work).await {
        Ok(done) => done,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(StoreError::unavailable(error).into()),
    }
}

/// The shortest pause between two renewals of a lease, whatever the lease says.
const MIN_RENEWAL: Duration = Duration::from_millis(10);

/// Runs `work` while renewing its lease every third of `lease` with `renew` (which extends
/// the lease its holder's token holds, `Conflict` otherwise): work that outlasts one lease
/// (a start, an engine's slow turn) keeps it from other claimers. A lease lost anyway
/// (renewals failing for a whole lease, and another claim took it) is not renewed again:
/// the work runs on, and its final write is refused. `holder` names it in the log.
pub(crate) async fn holding_lease<T, R, F>(
    lease: TimeDelta,
    holder: &str,
    renew: F,
    work: impl Future<Output = T>,
) -> T
where
    F: Fn() -> R,
    R: Future<Output = Result<(), StoreError>>,
{
    let every = (lease / 3).to_std().unwrap_or(MIN_RENEWAL).max(MIN_RENEWAL);
    let keep = async {
        loop {
            tokio::time::sleep(every).await;
            match renew().await {
                Ok(()) => {}
                Err(StoreError::Conflict { .. }) => {
                    tracing::warn!(
                        holder,
                        "lease lost while working; another claimer may work on it too"
                    );
                    return std::future::pending::<std::convert::Infallible>().await;
                }
                Err(error) => tracing::warn!(%error, holder, "lease not renewed; trying again"),
            }
        }
    };
    tokio::select! {
        biased;
        done = work => done,
        never = keep => match never {},
    }
}
