//! Long-running loops. Each worker exposes a deterministic `tick()` (one pass over its
//! queue) so tests drive it without timers, and is run in production by [`run_every`],
//! which stops when its cancellation token fires.

pub mod mail;
pub mod notification;

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

    /// Ticks until a pass handles nothing (for tests and start-up draining). Stops after
    /// `max_passes` so a queue that never empties cannot hang a test.
    async fn run_until_idle(&self, max_passes: usize) -> Result<usize, crate::ports::StoreError> {
        let mut total = 0;
        for _ in 0..max_passes {
            let report = self.tick().await?;
            if report.handled == 0 {
                break;
            }
            total += report.handled;
        }
        Ok(total)
    }
}

/// Runs `worker.tick()` every `interval` (immediately again while passes find work)
/// until `cancel` fires. A tick in progress is finished, never abandoned mid-item.
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
    tracing::info!(worker = worker.name(), "worker stopped");
}
