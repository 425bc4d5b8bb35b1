//! The in-memory push log: the one log of a single process (dev mode, embedded use), and
//! of the "replicas" of one test process, which share it by cloning.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use galaxy_core::domain::Timestamp;
use galaxy_core::domain::push::{LoggedPushEvent, NewPushEvent};
use galaxy_core::ports::{Appended, PushLog, PushLogPage, PushLogWatch, StoreError};
use tokio::sync::watch;

/// A [`PushLog`] in memory. Clones share the log (and its epoch). Its epoch is random, so
/// cursors of an earlier process get a resync, as they must: its events are gone.
#[derive(Debug, Clone)]
pub struct MemoryPushLog {
    /// Shared by the clones.
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// This log's lifetime.
    epoch: u64,
    /// The events and the counters, under one lock so every method is atomic.
    state: Mutex<State>,
    /// Bumped on every append, to wake readers.
    wake: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Kept events, in sequence order.
    events: VecDeque<LoggedPushEvent>,
    /// The sequence of each kept event, by id: appending a known id appends nothing.
    ids: HashMap<uuid::Uuid, u64>,
    /// The last sequence given out.
    last: u64,
    /// The highest sequence purged.
    purged_through: u64,
}

impl Default for MemoryPushLog {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPushLog {
    /// An empty log with a random epoch.
    pub fn new() -> Self {
        Self::with_epoch(rand::random())
    }

    /// An empty log with the given epoch (tests that compare cursors).
    pub fn with_epoch(epoch: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                epoch,
                state: Mutex::new(State::default()),
                wake: watch::Sender::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Events currently kept.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.lock().events.is_empty()
    }
}

#[async_trait]
impl PushLog for MemoryPushLog {
    fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    async fn append(&self, event: &NewPushEvent) -> Result<Appended, StoreError> {
        let mut state = self.lock();
        if let Some(&sequence) = state.ids.get(&event.event_id) {
            return Ok(Appended {
                sequence,
                duplicate: true,
            });
        }
        let sequence = state.last.saturating_add(1);
        state.last = sequence;
        let mut event = event.clone();
        if let Some(last) = state.events.back() {
            event.occurred_at = event.occurred_at.max(last.event.occurred_at);
        }
        state.ids.insert(event.event_id, sequence);
        state.events.push_back(LoggedPushEvent { sequence, event });
        drop(state);
        self.inner.wake.send_modify(|n| *n = n.wrapping_add(1));
        Ok(Appended {
            sequence,
            duplicate: false,
        })
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<PushLogPage, StoreError> {
        let state = self.lock();
        let start = state.events.partition_point(|e| e.sequence <= after);
        Ok(PushLogPage {
            events: state.events.range(start..).take(limit).cloned().collect(),
            purged_through: state.purged_through,
        })
    }

    fn watch(&self) -> PushLogWatch {
        PushLogWatch::new(self.inner.wake.subscribe())
    }

    async fn purge(&self, before: Timestamp, keep: usize) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let old = state
            .events
            .partition_point(|e| e.event.occurred_at < before);
        let surplus = state.events.len().saturating_sub(keep);
        let count = old.max(surplus);
        let purged: Vec<_> = state.events.drain(..count).collect();
        for logged in &purged {
            state.ids.remove(&logged.event.event_id);
        }
        if let Some(last) = purged.last() {
            state.purged_through = state.purged_through.max(last.sequence);
        }
        Ok(purged.len() as u64)
    }
}
