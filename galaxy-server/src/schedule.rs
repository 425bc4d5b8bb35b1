//! [`ScheduledWorker`]: a worker with its idle interval, as the parts of the app hand
//! their workers to the composition root ([`crate::app`]) and the lifecycle runs them.

use std::sync::Arc;
use std::time::Duration;

use galaxy_core::worker::Worker;

/// A worker and how often it runs when idle.
pub(crate) struct ScheduledWorker {
    /// The worker.
    pub(crate) worker: Arc<dyn Worker>,
    /// Pause between passes that found nothing to do.
    pub(crate) interval: Duration,
}
