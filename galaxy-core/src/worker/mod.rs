//! Long-running loops. Each worker exposes a deterministic `tick()` (one pass over its
//! queue) so tests drive it without timers, and is run in production by [`run_every`],
//! which stops when its cancellation token fires.

pub mod mail;
pub mod notification;
pub(crate) mod pool;
pub mod retention;

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

/// What one pass of a worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickReport {
    /// Items handled in this pass (0 means the queue looked idle).
    pub handled: usize,
}

/// A worker with a deterministic step.
#[async_trait]
pub trait Worker: Send + Sync {
    /// Name for logs and metrics.
    fn name(&self) -> &'static str;
    /// One pass. Errors are logged by the loop and the next pass retries.
    async fn tick(&self) -> Result<TickReport, crate::ports::StoreError>;

    /// Waits for every item a pass started but did not wait for, and returns how many it
    /// waited for. A worker that runs its items in the background (the runtime job pool,
    /// whose pass only claims what fits its free slots so that a long start never holds
    /// up a stop) overrides it; for the others a pass finishes its items and this returns
    /// 0 at once. [`run_every`] calls it when it stops, so shutdown awaits every item in
    /// flight; [`Worker::run_until_idle`] calls it when a pass claims nothing.
    async fn drain(&self) -> usize {
        0
    }

    /// One pass with every item it started finished: [`Worker::tick`], then
    /// [`Worker::drain`]. What a test asserts on after a pass, and what a tool that wants
    /// a pass's effects before it goes on calls; the production loop ([`run_every`]) does
    /// not wait, so that one slow item never holds up the next pass.
    async fn tick_and_drain(&self) -> Result<TickReport, crate::ports::StoreError> {
        let report = self.tick().await?;
        self.drain().await;
        Ok(report)
    }

    /// Runs passes, each ticked and [drained](Worker::drain) so that its items are
    /// finished, until one handles nothing (for tests and start-up draining). Stops after
    /// `max_passes` so a queue that never empties cannot hang a test.
    async fn run_until_idle(&self, max_passes: usize) -> Result<usize, crate::ports::StoreError> {
        let mut total = 0;
        for _ in 0..max_passes {
            let report = self.tick().await?;
            let finished = self.drain().await;
            if report.handled == 0 && finished == 0 {
                break;
            }
            total += report.handled;
        }
        Ok(total)
    }
}

/// Runs `worker.tick()` every `interval` (immediately again while passes find work)
/// until `cancel` fires, then [drains](Worker::drain) it. A tick in progress is finished,
/// never abandoned mid-item, and items running in the background are awaited.
pub async fn run_every(worker: &dyn Worker, interval: Duration, cancel: CancellationToken) {
    loop {
        let busy = match worker.tick().await {
            Ok(report) => report.handled > 0,
            Err(error) => {
                tracing::warn!(worker = worker.name(), %error, "worker pass failed");
                false
            }
        };
        if cancel.is_cancelled() {
            break;
        }
        if busy {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    let finished = worker.drain().await;
    tracing::info!(worker = worker.name(), finished, "worker stopped");
}
