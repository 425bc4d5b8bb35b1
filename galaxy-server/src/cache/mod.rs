//! Write-through caches in front of the stores the hot paths read: sessions (every
//! authenticated request resolves a bearer token), users (and every such request reads
//! the caller) and games.
//!
//! Each cache is a decorator implementing the same port trait as the store it wraps, so
//! services cannot tell the difference:
//! - **reads** of one entity (by id, by token hash, by e-mail) are served from memory;
//!   a miss falls through to the store and the answer is remembered;
//! - **writes** go to the store first and, once it acknowledged them, update memory with
//!   the row the store returned (so a failed write never shows in the cache), unless
//!   another write or another process's note came in meanwhile: then the entry is
//!   dropped, since the row may be older than what that one wrote;
//! - **lists** (pages, filters, histories) go to the store: they are admin and sweeper
//!   reads, where keeping paging semantics identical matters more than speed;
//! - [`warm`](SessionCache::warm) loads every active session, every user and every game at
//!   start-up, so the first requests after a restart are memory-speed too, and so that
//!   `/readyz` only says ready once they are.
//!
//! A miss that races a write cannot re-insert a stale row: every write bumps an epoch,
//! and a miss only stores what it read if no write happened meanwhile.
//!
//! ## Several processes on one database
//!
//! Every write a cache applies is announced on the [`ChangeBus`] (after the store
//! acknowledged it) as the session, user or game it changed; [`coherence::follow`]
//! applies the other processes' notes by dropping the entry, so their next read goes
//! to the store. Inserts are not announced: no other process can hold a copy of a row
//! that did not exist (misses are never cached). While the bus is interrupted, every
//! cache is emptied every `GALAXY_CACHE_DEGRADED_TTL`, so no entry is older than that;
//! when it resumes, everything cached before is dropped (notes may have been missed).
//!
//! A note that cannot be sent (a busy pool, a dropped connection) is tried again in the
//! background, for up to ten minutes. What remains: a process that dies between a commit
//! and its note leaves the others with a stale copy (until their next restart or bus
//! gap). The window is one round
//! trip; closing it would take the note into the writing transaction (a trigger), at
//! the price of a note for every write of every table, touches included.

pub mod coherence;
mod games;
pub use games::GAME_TRANSITIONS_METRIC;
mod sessions;
mod users;

#[cfg(test)]
mod tests;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use galaxy_core::ports::{Change, ChangeBus};

pub use games::GameCache;
pub use sessions::SessionCache;
pub use users::UserCache;

/// Cached entries plus the write epoch that keeps racing misses from storing stale rows.
#[derive(Debug, Default)]
struct Shared<T> {
    /// The maps, behind one lock so an entry and its secondary index change together.
    state: RwLock<Epoch<T>>,
}

#[derive(Debug, Default)]
struct Epoch<T> {
    /// Bumped by every write; a miss remembers it before reading the store.
    epoch: u64,
    /// The cached entries.
    data: T,
}

impl<T> Shared<T> {
    /// Reads the entries.
    fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters (each write is a few inserts), so a poisoned lock is taken over.
        let guard = self.state.read().unwrap_or_else(PoisonError::into_inner);
        f(&guard.data)
    }

    /// The current epoch, taken before a miss reads the store.
    fn epoch(&self) -> u64 {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .epoch
    }

    /// Applies an acknowledged write.
    fn write<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self.state.write().unwrap_or_else(PoisonError::into_inner);
        guard.epoch += 1;
        f(&mut guard.data)
    }

    /// Applies an acknowledged write whose store call began at `epoch`: `f` (remember
    /// the row it returned) if no other write happened since, else `otherwise` (forget
    /// the entry): another write of this process, or another process's note, may be
    /// newer than this row, and putting it back would undo it (a block undone by a
    /// profile change that committed just before it). Bumps the epoch either way.
    fn write_since(&self, epoch: u64, f: impl FnOnce(&mut T), otherwise: impl FnOnce(&mut T)) {
        let mut guard = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let unchanged = guard.epoch == epoch;
        guard.epoch += 1;
        if unchanged {
            f(&mut guard.data);
        } else {
            otherwise(&mut guard.data);
        }
    }

    /// Stores what a miss read, unless a write happened since `epoch`.
    fn fill(&self, epoch: u64, f: impl FnOnce(&mut T)) {
        self.fill_or(epoch, f, |_| {});
    }

    /// As [`Shared::fill`], and when a write happened since `epoch`, runs `otherwise`
    /// instead (under the same lock).
    fn fill_or(&self, epoch: u64, f: impl FnOnce(&mut T), otherwise: impl FnOnce(&mut T)) {
        let mut guard = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if guard.epoch == epoch {
            f(&mut guard.data);
        } else {
            otherwise(&mut guard.data);
        }
    }
}

/// The metric counting failed tries to send a note (each is tried again for up to ten
/// minutes; meanwhile the others may keep a stale copy).
pub const PUBLISH_FAILURES_METRIC: &str = "galaxy_cache_publish_failures_total";

/// The first pause before a note that could not be sent is tried again (doubled up to
/// [`RETRY_MAX`]).
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest pause between two tries of one note.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long a note is tried again before it is given up (the others then keep their
/// copy until their next bus gap).
const RETRY_FOR: Duration = Duration::from_secs(600);

/// Announces `change` to the other processes. A failure is logged and counted, not
/// returned (the write itself succeeded and the caller must hear so), and the note is
/// tried again in the background until it is sent: a logout, a revocation or a block
/// whose note failed (a busy pool, a dropped connection) would otherwise leave the other
/// replicas honouring the old session or status for as long as their bus stays up. A
/// late note only drops an entry, so sending it late, or twice, is harmless.
async fn announce(bus: &Arc<dyn ChangeBus>, change: Change) {
    let Err(error) = bus.publish(change).await else {
        return;
    };
    tracing::warn!(?change, %error, "could not announce a cache change to other replicas; retrying");
    metrics::counter!(PUBLISH_FAILURES_METRIC).increment(1);
    let bus = Arc::clone(bus);
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut pause = RETRY_FIRST;
        while started.elapsed() < RETRY_FOR {
            tokio::time::sleep(pause).await;
            match bus.publish(change).await {
                Ok(()) => {
                    tracing::info!(?change, "cache change announced after a retry");
                    return;
                }
                Err(error) => {
                    metrics::counter!(PUBLISH_FAILURES_METRIC).increment(1);
                    tracing::debug!(?change, %error, "cache change still not announced");
                }
            }
            pause = pause.saturating_mul(2).min(RETRY_MAX);
        }
        tracing::error!(
            ?change,
            "gave up announcing a cache change; other replicas may keep a stale copy until their next bus gap"
        );
    });
}

/// The bus of a cache built without one: a hub with this process alone.
fn solo_bus() -> Arc<dyn ChangeBus> {
    Arc::new(galaxy_ports::memory::MemoryChangeBus::new())
}

/// Why warming a cache failed.
#[derive(Debug, thiserror::Error)]
#[error("warming the {cache} cache failed: {source}")]
pub struct WarmError {
    /// Which cache.
    pub cache: &'static str,
    /// The store's error.
    #[source]
    pub source: galaxy_core::ports::StoreError,
}

/// Reads every page of a paged list, `MAX_PAGE_SIZE` items at a time.
async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, galaxy_core::ports::StoreError>
where
    F: FnMut(galaxy_core::domain::page::PageRequest) -> Fut,
    Fut:
        Future<Output = Result<galaxy_core::domain::page::Page<T>, galaxy_core::ports::StoreError>>,
{
    use galaxy_core::domain::page::{MAX_PAGE_SIZE, PageRequest};
    let invalid =
        |e: galaxy_core::domain::page::InvalidPageSize| galaxy_core::ports::StoreError::internal(e);
    let mut items = Vec::new();
    let mut request = PageRequest::first(MAX_PAGE_SIZE).map_err(invalid)?;
    loop {
        let page = fetch(request).await?;
        items.extend(page.items);
        match page.next_after {
            Some(after) => request = PageRequest::after(MAX_PAGE_SIZE, after).map_err(invalid)?,
            None => return Ok(items),
        }
    }
}
