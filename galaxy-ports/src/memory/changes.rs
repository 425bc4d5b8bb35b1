//! The in-memory change bus: the single process of dev mode (where nobody else needs to
//! hear anything), and the "replicas" of one test process, which share a hub.

use std::sync::Arc;

use async_trait::async_trait;
use galaxy_core::ports::{
    Change, ChangeBus, ChangeEnvelope, ChangeNote, ChangeSubscription, StoreError,
};
use tokio::sync::broadcast;

/// How many notes a slow subscriber may fall behind before it is told to drop its cache.
const CAPACITY: usize = 4096;

/// A [`ChangeBus`] for one process of a hub; [`replica`](Self::replica) adds another.
#[derive(Debug, Clone)]
pub struct MemoryChangeBus {
    /// This process's id, so its own notes are not handed back to it.
    own: uuid::Uuid,
    /// Shared by every process of the hub.
    notes: Arc<broadcast::Sender<ChangeEnvelope>>,
}

impl Default for MemoryChangeBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryChangeBus {
    /// A hub with one process.
    pub fn new() -> Self {
        let (notes, _) = broadcast::channel(CAPACITY);
        Self {
            own: uuid::Uuid::new_v4(),
            notes: Arc::new(notes),
        }
    }

    /// Another process on the same hub: it hears this one's notes and vice versa.
    pub fn replica(&self) -> Self {
        Self {
            own: uuid::Uuid::new_v4(),
            notes: self.notes.clone(),
        }
    }

    /// Tells every subscriber of the hub the link is down (to test how caches degrade).
    pub fn interrupt(&self) {
        self.link(ChangeNote::Interrupted);
    }

    /// Tells every subscriber of the hub the link is back.
    pub fn resume(&self) {
        self.link(ChangeNote::Resumed);
    }

    /// How many subscriptions of the hub are open: a test sees from it that a follower
    /// (an app's cache-coherence task) has stopped and let go of its subscription.
    pub fn subscribers(&self) -> usize {
        self.notes.receiver_count()
    }

    fn link(&self, note: ChangeNote) {
        // No subscriber is not an error: nobody caches anything then.
        let _ = self.notes.send(ChangeEnvelope { origin: None, note });
    }
}

#[async_trait]
impl ChangeBus for MemoryChangeBus {
    async fn publish(&self, change: Change) -> Result<(), StoreError> {
        let _ = self.notes.send(ChangeEnvelope {
            origin: Some(self.own),
            note: ChangeNote::Changed(change),
        });
        Ok(())
    }

    fn subscribe(&self) -> ChangeSubscription {
        ChangeSubscription::new(self.own, self.notes.subscribe())
    }
}
