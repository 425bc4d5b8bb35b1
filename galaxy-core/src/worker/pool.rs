//! [`TaskPool`]: the bounded set of background tasks a worker's passes start and do not
//! wait for (runtime jobs, turns), so one slow item never holds up the next pass.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// At most `size` tasks at once, each holding a slot until it ends.
///
/// A pass takes the slots that are free ([`TaskPool::free`], or [`TaskPool::wait_free`]
/// to wait for the first one), claims that many items and [spawns](TaskPool::spawn) one
/// task per item with its slot; [`TaskPool::drain`] awaits every task in flight (at
/// shutdown, and in tests that want a pass's effects). Dropping the pool aborts its tasks:
/// an item's lease then lapses and another worker takes it over, as after a crash.
pub(crate) struct TaskPool {
    /// What the tasks are, for the log line of one that panicked.
    what: &'static str,
    /// One permit per slot. A running task holds one, so waiting for a permit is waiting
    /// for the first task to end.
    slots: Arc<Semaphore>,
    /// The tasks in flight (a std mutex: never held across an await).
    running: Mutex<JoinSet<()>>,
    /// How many of them wait for a slot ([`TaskPool::spawn_queued`]).
    queued: Arc<watch::Sender<usize>>,
}

impl TaskPool {
    /// A pool of `size` slots (at least one) for tasks described as `what` in logs.
    pub(crate) fn new(what: &'static str, size: usize) -> Self {
        Self {
            what,
            slots: Arc::new(Semaphore::new(size.max(1))),
            running: Mutex::new(JoinSet::new()),
            queued: Arc::new(watch::Sender::new(0)),
        }
    }

    fn running(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slots free now, perhaps none; collects the tasks that ended first.
    pub(crate) fn free(&self) -> Vec<OwnedSemaphorePermit> {
        self.reap();
        let take_free = || Arc::clone(&self.slots).try_acquire_owned().ok();
        std::iter::from_fn(take_free).collect()
    }

    /// The slots free now; when none is, waits for the first task to end. `None` once
    /// `cancel` fires.
    pub(crate) async fn wait_free(
        &self,
        cancel: &CancellationToken,
    ) -> Option<Vec<OwnedSemaphorePermit>> {
        if cancel.is_cancelled() {
            return None;
        }
        let mut slots = self.free();
        if slots.is_empty() {
            tokio::select! {
                slot = Arc::clone(&self.slots).acquire_owned() => slots.push(slot.ok()?),
                () = cancel.cancelled() => return None,
            }
            slots.extend(self.free());
        }
        Some(slots)
    }

    /// Runs `work` in a task of its own, holding `slot` until it ends: that is what frees
    /// the slot.
    pub(crate) fn spawn(
        &self,
        slot: OwnedSemaphorePermit,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        self.running().spawn(async move {
            work.await;
            drop(slot);
        });
    }

    /// Runs `work` in a task of its own once a slot is free: the task waits for one,
    /// behind the tasks that hold them. For items claimed in batches, so that a batch
    /// is fed through the slots as they free up without the claimer waiting for it.
    /// Should `cancel` fire first (shutdown), the task runs `give_up` instead, at once
    /// and without a slot: an item not begun is handed back rather than left waiting
    /// behind slow ones.
    pub(crate) fn spawn_queued(
        &self,
        cancel: &CancellationToken,
        work: impl Future<Output = ()> + Send + 'static,
        give_up: impl Future<Output = ()> + Send + 'static,
    ) {
        let slots = Arc::clone(&self.slots);
        let queued = Queued::new(Arc::clone(&self.queued));
        let cancel = cancel.clone();
        self.running().spawn(async move {
            let slot = tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                slot = slots.acquire_owned() => slot.ok(),
            };
            drop(queued);
            match slot {
                Some(slot) => {
                    work.await;
                    drop(slot);
                }
                None => give_up.await,
            }
        });
    }

    /// How many tasks wait for a slot.
    pub(crate) fn queued(&self) -> usize {
        *self.queued.borrow()
    }

    /// Waits until no task waits for a slot, or `wait` has passed.
    pub(crate) async fn until_unqueued(&self, wait: Duration) {
        let mut queued = self.queued.subscribe();
        let empty = queued.wait_for(|n| *n == 0);
        // The sender lives as long as the pool: the wait ends with the count or the time.
        let _ = tokio::time::timeout(wait, empty).await;
    }

    /// Collects the tasks that ended, so the set does not grow.
    fn reap(&self) {
        let mut running = self.running();
        while let Some(done) = running.try_join_next() {
            self.note_ended(done);
        }
    }

    /// Waits for every task in flight, also those spawned meanwhile, and returns how many
    /// it waited for.
    pub(crate) async fn drain(&self) -> usize {
        let mut ended = 0;
        loop {
            // Taken out of the lock, which is never held across an await.
            let mut running = std::mem::take(&mut *self.running());
            if running.is_empty() {
                return ended;
            }
            while let Some(done) = running.join_next().await {
                self.note_ended(done);
                ended += 1;
            }
        }
    }

    /// Logs a task that did not end normally (a panic): its item's lease lapses, and the
    /// item is taken again then.
    fn note_ended(&self, done: Result<(), JoinError>) {
        if let Err(error) = done
            && error.is_panic()
        {
            tracing::error!(%error, what = self.what, "a background task panicked; its item runs again after its lease");
        }
    }
}

/// One task counted as waiting for a slot until it has one, or is dropped waiting (an
/// aborted pool).
struct Queued(Arc<watch::Sender<usize>>);

impl Queued {
    fn new(count: Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn slots_are_held_until_their_tasks_end_and_drain_waits_for_all() {
        let pool = TaskPool::new("test tasks", 2);
        let done = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        for slot in pool.free() {
            let (done, gate) = (Arc::clone(&done), Arc::clone(&gate));
            pool.spawn(slot, async move {
                let _pass = gate.acquire().await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert!(pool.free().is_empty(), "both slots are taken");
        tokio::task::yield_now().await;
        assert_eq!(done.load(Ordering::SeqCst), 0, "the tasks wait at the gate");
        gate.add_permits(2);
        assert_eq!(pool.drain().await, 2);
        assert_eq!(done.load(Ordering::SeqCst), 2);
        assert_eq!(pool.free().len(), 2, "the slots are free again");
    }

    #[tokio::test]
    async fn wait_free_waits_for_the_first_task_and_gives_up_on_cancel() {
        let pool = TaskPool::new("test tasks", 1);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let slot = pool.free().pop().unwrap();
        pool.spawn(slot, async move {
            rx.await.ok();
        });
        let cancel = CancellationToken::new();
        let waited = tokio::time::timeout(Duration::from_millis(50), pool.wait_free(&cancel));
        assert!(waited.await.is_err(), "no slot is free");
        tx.send(()).unwrap();
        assert_eq!(pool.wait_free(&cancel).await.unwrap().len(), 1);
        cancel.cancel();
        assert!(pool.wait_free(&cancel).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn queued_tasks_run_as_slots_free_and_the_wait_for_them_is_bounded() {
        let pool = TaskPool::new("test tasks", 1);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let slot = pool.free().pop().unwrap();
        pool.spawn(slot, async move {
            rx.await.ok();
        });
        let done = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        for _ in 0..3 {
            let done = Arc::clone(&done);
            pool.spawn_queued(
                &cancel,
                async move {
                    done.fetch_add(1, Ordering::SeqCst);
                },
                async { panic!("not cancelled") },
            );
        }
        assert_eq!(pool.queued(), 3);
        let before = tokio::time::Instant::now();
        pool.until_unqueued(Duration::from_secs(3)).await;
        assert_eq!(before.elapsed(), Duration::from_secs(3), "the slot is held");
        assert_eq!((pool.queued(), done.load(Ordering::SeqCst)), (3, 0));
        tx.send(()).unwrap();
        pool.until_unqueued(Duration::from_secs(3)).await;
        assert!(
            before.elapsed() < Duration::from_secs(4),
            "not the whole wait"
        );
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.drain().await, 4);
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_pool_dropped_with_queued_tasks_aborts_them() {
        let pool = TaskPool::new("test tasks", 1);
        let slot = pool.free().pop().unwrap();
        pool.spawn(slot, std::future::pending());
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&pool.queued);
        let seen = Arc::clone(&ran);
        let cancel = CancellationToken::new();
        pool.spawn_queued(
            &cancel,
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
            },
            async { panic!("not cancelled") },
        );
        assert_eq!(*counted.borrow(), 1);
        drop(pool);
        tokio::task::yield_now().await;
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(*counted.borrow(), 0, "an aborted task is no longer counted");
    }

    #[tokio::test]
    async fn a_queued_task_gives_up_at_once_on_cancel_without_a_slot() {
        let pool = TaskPool::new("test tasks", 1);
        let slot = pool.free().pop().unwrap();
        pool.spawn(slot, std::future::pending());
        let (gave_up, ran) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let cancel = CancellationToken::new();
        let (g, r) = (Arc::clone(&gave_up), Arc::clone(&ran));
        pool.spawn_queued(
            &cancel,
            async move {
                r.fetch_add(1, Ordering::SeqCst);
            },
            async move {
                g.fetch_add(1, Ordering::SeqCst);
            },
        );
        cancel.cancel();
        pool.until_unqueued(Duration::from_secs(30)).await;
        tokio::task::yield_now().await;
        assert_eq!(pool.queued(), 0);
        assert_eq!(
            (gave_up.load(Ordering::SeqCst), ran.load(Ordering::SeqCst)),
            (1, 0),
            "handed back while the slot is still held"
        );
    }

    #[tokio::test]
    async fn a_panicking_task_frees_its_slot() {
        let pool = TaskPool::new("test tasks", 1);
        let slot = pool.free().pop().unwrap();
        pool.spawn(slot, async { panic!("boom") });
        assert_eq!(pool.drain().await, 1);
        assert_eq!(pool.free().len(), 1);
    }
}
