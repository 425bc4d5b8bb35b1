//! Health events of the in-memory runtime store.

use async_trait::async_trait;
use galaxy_core::domain::GameId;
use galaxy_core::domain::health::{HealthEvent, HealthEventKind};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::ports::{HealthEventStore, StoreError};

use super::MemoryRuntimeStore;
use crate::memory::paging::{Order, paginate};

#[async_trait]
impl HealthEventStore for MemoryRuntimeStore {
    async fn append_health_event(&self, event: &HealthEvent) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.health_events.contains_key(&event.id) {
            return Err(StoreError::duplicate("health event", event.id));
        }
        state.health_events.insert(event.id, event.clone());
        Ok(())
    }

    async fn list_health_events(
        &self,
        game_id: Option<GameId>,
        page: &PageRequest,
    ) -> Result<Page<HealthEvent>, StoreError> {
        let state = self.lock();
        let rows = state
            .health_events
            .values()
            .filter(|e| game_id.is_none_or(|g| e.game_id == g));
        let key = |e: &HealthEvent| (e.occurred_at, e.id.as_uuid());
        paginate(rows, key, Order::Descending, page)
    }

    async fn count_health_events(
        &self,
        game_id: Option<GameId>,
        kind: HealthEventKind,
    ) -> Result<u64, StoreError> {
        let state = self.lock();
        let count = state
            .health_events
            .values()
            .filter(|e| e.kind == kind && game_id.is_none_or(|g| e.game_id == g))
            .count();
        Ok(count as u64)
    }
}
