//! The store and notifier decorators of the runtime test world (included by
//! `runtime_world.rs`; in a folder of its own so Cargo does not build it as a test): a
//! shared fault injector that fails the `k`-th write, and the wrappers that count their
//! writes through it (plus their older, targeted failures).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use galaxy_core::domain::game::{Game, GameStatus, GameTransition};
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::play::{PlayedTurn, TurnReport};
use galaxy_core::domain::runtime::{RuntimeBinding, RuntimeJob, RuntimeRecord, RuntimeStatus};
use galaxy_core::domain::{GameId, JobId, LeaseToken, Timestamp};
use galaxy_core::ports::*;
use galaxy_ports::memory::{MemoryLobbyStore, MemoryPlayStore, MemoryRuntimeStore};

use super::harness::Journal;

/// A fault injector shared by the wrapped stores and the notifier: once armed, every
/// write they take is counted and the `k`-th fails, as if the database went away there.
#[derive(Default)]
pub struct Faults {
    /// Writes counted since the last [`Faults::arm`].
    writes: AtomicUsize,
    /// The write that fails (1-based); 0 never fails.
    fail_at: AtomicUsize,
    /// What each counted write was, in order (to name the step a failing case broke).
    log: Mutex<Vec<String>>,
    /// The name of a write whose next occurrences fail, and how many more fail.
    fail_named: Mutex<Option<(String, usize)>>,
}

impl Faults {
    /// Starts counting writes from zero; the `k`-th fails (`0`: none, only count).
    pub fn arm(&self, k: usize) {
        self.log.lock().unwrap().clear();
        self.writes.store(0, Ordering::SeqCst);
        self.fail_at.store(k, Ordering::SeqCst);
    }

    /// No write fails any more.
    pub fn disarm(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
        *self.fail_named.lock().unwrap() = None;
    }

    /// The next `times` writes named `what` (`notify race_idle`, `archive_turn`, ...)
    /// fail, wherever they come.
    pub fn fail_next(&self, what: &str, times: usize) {
        *self.fail_named.lock().unwrap() = Some((what.to_owned(), times));
    }

    /// The writes counted since the last [`Faults::arm`], in order.
    pub fn writes(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Counts a write; fails if it is the armed one.
    fn write(&self, what: &str) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.lock().unwrap().push(what.to_owned());
        let named = match &mut *self.fail_named.lock().unwrap() {
            Some((name, left)) if name == what && *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        if named || n == self.fail_at.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(format!(
                "injected fault at write {n} ({what})"
            )));
        }
        Ok(())
    }
}

/// Remembers every notification raised; idempotent by key like the real notifier (a
/// repeat with a stored key stores nothing), and its writes can fail ([`Faults`]).
#[derive(Default)]
pub struct Notes(Mutex<Vec<NewNotification>>, Arc<Faults>);

impl Notes {
    /// Notes whose writes `faults` can fail.
    pub fn with_faults(faults: Arc<Faults>) -> Self {
        Self(Mutex::default(), faults)
    }

    /// The notifications stored under one idempotency key.
    pub fn keyed(&self, key: &str) -> Vec<NewNotification> {
        let notes = self.0.lock().unwrap();
        notes
            .iter()
            .filter(|n| n.idempotency_key == key)
            .cloned()
            .collect()
    }

    /// Every notification raised, in order.
    pub fn all(&self) -> Vec<NewNotification> {
        self.0.lock().unwrap().clone()
    }

    /// The notifications of one kind, in order.
    pub fn of(&self, kind: NotificationKind) -> Vec<NewNotification> {
        let notes = self.0.lock().unwrap();
        notes.iter().filter(|n| n.kind == kind).cloned().collect()
    }
}

#[async_trait]
impl Notifier for Notes {
    async fn notify(&self, notification: NewNotification) -> Result<(), NotifyError> {
        self.1
            .write(&format!("notify {}", notification.kind.as_str()))?;
        let mut notes = self.0.lock().unwrap();
        if notes
            .iter()
            .all(|n| n.idempotency_key != notification.idempotency_key)
        {
            notes.push(notification);
        }
        Ok(())
    }
}

/// The turn archive, which can be made to fail `archive_turn` as if the database went
/// away between the engine's answer and the archive.
pub struct FlakyArchive {
    /// The real store.
    pub inner: Arc<MemoryPlayStore>,
    /// `archive_turn` calls that fail before it works again.
    pub failures: AtomicUsize,
    /// Injected faults on every write.
    pub faults: Arc<Faults>,
    /// Runs once right after the next turn is archived: what a player does while the
    /// turn is archived but its record not yet moved on.
    pub after_archive: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
}

impl FlakyArchive {
    /// Runs `hook` right after the next `archive_turn` is stored, before it returns.
    pub fn after_next_archive(&self, hook: futures::future::BoxFuture<'static, ()>) {
        *self.after_archive.lock().unwrap() = Some(hook);
    }
}

#[async_trait]
impl TurnArchiveStore for FlakyArchive {
    async fn archive_turn(&self, t: &PlayedTurn, r: &[TurnReport]) -> Result<bool, StoreError> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::unavailable("connection reset"));
        }
        self.faults.write("archive_turn")?;
        let stored = self.inner.archive_turn(t, r).await;
        let hook = self.after_archive.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        stored
    }
    async fn list_turns(&self, g: GameId) -> Result<Vec<PlayedTurn>, StoreError> {
        self.inner.list_turns(g).await
    }
    async fn latest_turn(&self, g: GameId) -> Result<Option<PlayedTurn>, StoreError> {
        self.inner.latest_turn(g).await
    }
    async fn unannounced_turns(
        &self,
        a: Option<PlayedTurn>,
        n: u32,
    ) -> Result<Vec<PlayedTurn>, StoreError> {
        self.inner.unannounced_turns(a, n).await
    }
    async fn mark_announced(&self, g: GameId, t: u32, at: Timestamp) -> Result<(), StoreError> {
        self.faults.write("mark_announced")?;
        self.inner.mark_announced(g, t, at).await
    }
    async fn get_report(&self, g: GameId, t: u32, r: &str) -> Result<TurnReport, StoreError> {
        self.inner.get_report(g, t, r).await
    }
}

/// The game store, journaling every status change it commits.
pub struct JournalGames {
    inner: Arc<MemoryLobbyStore>,
    journal: Arc<Journal>,
    /// Injected faults on status changes.
    faults: Arc<Faults>,
    /// A concurrent writer: `(to, change)` commits `change` from the game's status of the
    /// moment just before the next status change to `to` runs, once (it wins the race).
    cut_in: Mutex<Option<(GameStatus, GameStatusChange)>>,
    /// Games whose `get_game` answers a copy held from earlier, as a replica's cache does
    /// before another replica's change reaches it; `get_game_fresh` reads the store.
    stale: Mutex<Vec<Game>>,
    /// Runs once just before the next status change (another writer landing between a
    /// caller's earlier step and its compare-and-set).
    before_change: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
}

impl JournalGames {
    /// Wraps `inner`, journaling to `journal`; `faults` can fail status changes.
    pub fn new(inner: Arc<MemoryLobbyStore>, journal: Arc<Journal>, faults: Arc<Faults>) -> Self {
        Self {
            inner,
            journal,
            faults,
            cut_in: Mutex::new(None),
            stale: Mutex::new(Vec::new()),
            before_change: Mutex::new(None),
        }
    }

    /// Runs `hook` just before the next status change.
    pub fn before_next_change(&self, hook: futures::future::BoxFuture<'static, ()>) {
        *self.before_change.lock().unwrap() = Some(hook);
    }

    /// From now on `get_game` of `game` answers it as it is now, whatever changes later
    /// (a cache whose change note was lost); `get_game_fresh` still reads the store.
    pub async fn hold_stale(&self, game: GameId) {
        let held = self.inner.get_game(game).await.unwrap();
        self.stale.lock().unwrap().push(held);
    }

    /// Before the next status change to `to`, `change` lands first (as another caller's
    /// change would between the caller's read and its compare-and-set).
    pub fn cut_in_before(&self, to: GameStatus, change: GameStatusChange) {
        *self.cut_in.lock().unwrap() = Some((to, change));
    }
}

#[async_trait]
impl GameStore for JournalGames {
    async fn insert_game(&self, game: &Game) -> Result<(), StoreError> {
        self.inner.insert_game(game).await
    }
    async fn insert_hosted_game(&self, game: &Game, max: u32) -> Result<bool, StoreError> {
        self.inner.insert_hosted_game(game, max).await
    }
    async fn get_game(&self, id: GameId) -> Result<Game, StoreError> {
        let held = self
            .stale
            .lock()
            .unwrap()
            .iter()
            .find(|g| g.id == id)
            .cloned();
        match held {
            Some(game) => Ok(game),
            None => self.inner.get_game(id).await,
        }
    }
    async fn get_game_fresh(&self, id: GameId) -> Result<Game, StoreError> {
        self.inner.get_game(id).await
    }
    async fn list_games(&self, f: &GameFilter, p: &PageRequest) -> Result<Page<Game>, StoreError> {
        self.inner.list_games(f, p).await
    }
    async fn update_game_status(
        &self,
        id: GameId,
        from: GameStatus,
        change: &GameStatusChange,
    ) -> Result<Game, StoreError> {
        self.faults.write("update_game_status")?;
        let hook = self.before_change.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        let cut_in = {
            let mut armed = self.cut_in.lock().unwrap();
            match armed.take() {
                Some((to, first)) if to == change.to => Some(first),
                other => {
                    *armed = other;
                    None
                }
            }
        };
        if let Some(first) = cut_in {
            let now = self.inner.get_game(id).await?.status;
            self.inner.update_game_status(id, now, &first).await?;
            self.journal.push(format!("game {} (cut in)", first.to));
        }
        let game = self.inner.update_game_status(id, from, change).await?;
        self.journal.push(format!("game {}", change.to));
        Ok(game)
    }
    async fn game_transitions(&self, id: GameId) -> Result<Vec<GameTransition>, StoreError> {
        self.inner.game_transitions(id).await
    }
    async fn unannounced_transitions(&self, n: u32) -> Result<Vec<GameTransition>, StoreError> {
        self.inner.unannounced_transitions(n).await
    }
    async fn mark_transition_announced(
        &self,
        id: GameId,
        to: GameStatus,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.faults.write("mark_transition_announced")?;
        self.inner.mark_transition_announced(id, to, at).await
    }
    async fn games_past_deadline(&self, now: Timestamp, n: u32) -> Result<Vec<Game>, StoreError> {
        self.inner.games_past_deadline(now, n).await
    }
}

/// The record store, whose `set_binding` can be made to fail (the orphan path).
pub struct FlakyRecords {
    inner: Arc<MemoryRuntimeStore>,
    /// While set, `set_binding` fails as if the database went away.
    pub fail_binding: AtomicBool,
    /// Injected faults on every write.
    faults: Arc<Faults>,
    /// Runs once just before the next `claim_turn` (another request landing between a
    /// caller's read and its claim).
    before_claim_turn: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
    /// Runs once just before the next `set_schedule` (a request landing between a
    /// caller's status change and its schedule write).
    before_set_schedule: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
    /// Runs once just after the next `list_records` (a request landing between a pass's
    /// listing and its work on what it listed).
    after_list: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
}

impl FlakyRecords {
    /// Wraps `inner`, working normally until `faults` or `fail_binding` say otherwise.
    pub fn new(inner: Arc<MemoryRuntimeStore>, faults: Arc<Faults>) -> Self {
        let fail_binding = AtomicBool::new(false);
        Self {
            inner,
            fail_binding,
            faults,
            before_claim_turn: Mutex::new(None),
            before_set_schedule: Mutex::new(None),
            after_list: Mutex::new(None),
        }
    }

    /// Runs `hook` just after the next `list_records`.
    pub fn after_next_list(&self, hook: futures::future::BoxFuture<'static, ()>) {
        *self.after_list.lock().unwrap() = Some(hook);
    }

    /// Runs `hook` just before the next `set_schedule`.
    pub fn before_next_set_schedule(&self, hook: futures::future::BoxFuture<'static, ()>) {
        *self.before_set_schedule.lock().unwrap() = Some(hook);
    }

    /// Runs `hook` just before the next `claim_turn`.
    pub fn before_next_claim_turn(&self, hook: futures::future::BoxFuture<'static, ()>) {
        *self.before_claim_turn.lock().unwrap() = Some(hook);
    }
}

#[async_trait]
impl RuntimeRecordStore for FlakyRecords {
    async fn insert_record(&self, r: &RuntimeRecord) -> Result<(), StoreError> {
        self.inner.insert_record(r).await
    }
    async fn get_record(&self, g: GameId) -> Result<RuntimeRecord, StoreError> {
        self.inner.get_record(g).await
    }
    async fn list_records(
        &self,
        s: Option<RuntimeStatus>,
        p: &PageRequest,
    ) -> Result<Page<RuntimeRecord>, StoreError> {
        let listed = self.inner.list_records(s, p).await;
        let hook = self.after_list.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        listed
    }
    async fn update_record_status(
        &self,
        g: GameId,
        e: RuntimeStatus,
        t: RuntimeStatus,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("update_record_status")?;
        self.inner.update_record_status(g, e, t, at).await
    }
    async fn set_binding(
        &self,
        g: GameId,
        b: Option<RuntimeBinding>,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        if self.fail_binding.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("connection reset"));
        }
        self.faults.write("set_binding")?;
        self.inner.set_binding(g, b, at).await
    }
    async fn set_healthy(
        &self,
        g: GameId,
        h: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("set_healthy")?;
        self.inner.set_healthy(g, h, at).await
    }
    async fn set_schedule(
        &self,
        g: GameId,
        n: Option<Timestamp>,
        s: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("set_schedule")?;
        let hook = self.before_set_schedule.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        self.inner.set_schedule(g, n, s, at).await
    }
    async fn claim_due_turns(&self, c: &ClaimRequest) -> Result<Vec<RuntimeRecord>, StoreError> {
        self.faults.write("claim_due_turns")?;
        self.inner.claim_due_turns(c).await
    }
    async fn claim_turn(&self, g: GameId, c: &ClaimRequest) -> Result<RuntimeRecord, StoreError> {
        let hook = self.before_claim_turn.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        self.faults.write("claim_turn")?;
        self.inner.claim_turn(g, c).await
    }
    async fn renew_turn_lease(
        &self,
        g: GameId,
        t: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("renew_turn_lease")?;
        self.inner.renew_turn_lease(g, t, until, at).await
    }
    async fn complete_turn(
        &self,
        g: GameId,
        t: LeaseToken,
        u: &TurnUpdate,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("complete_turn")?;
        self.inner.complete_turn(g, t, u, at).await
    }
}

/// The job store, whose writes can fail ([`Faults`]).
pub struct FaultyJobs {
    /// The real store.
    pub inner: Arc<MemoryRuntimeStore>,
    /// Injected faults on every write.
    pub faults: Arc<Faults>,
}

#[async_trait]
impl RuntimeJobStore for FaultyJobs {
    async fn enqueue_job(&self, job: &RuntimeJob) -> Result<RuntimeJob, StoreError> {
        self.faults.write("enqueue_job")?;
        self.inner.enqueue_job(job).await
    }
    async fn get_job(&self, id: JobId) -> Result<RuntimeJob, StoreError> {
        self.inner.get_job(id).await
    }
    async fn list_jobs(
        &self,
        g: Option<GameId>,
        p: &PageRequest,
    ) -> Result<Page<RuntimeJob>, StoreError> {
        self.inner.list_jobs(g, p).await
    }
    async fn claim_jobs(&self, c: &ClaimRequest) -> Result<Vec<RuntimeJob>, StoreError> {
        self.faults.write("claim_jobs")?;
        self.inner.claim_jobs(c).await
    }
    async fn renew_job_lease(
        &self,
        id: JobId,
        t: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        self.faults.write("renew_job_lease")?;
        self.inner.renew_job_lease(id, t, until, at).await
    }
    async fn complete_job(
        &self,
        id: JobId,
        t: LeaseToken,
        o: &JobOutcome,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        self.faults.write("complete_job")?;
        self.inner.complete_job(id, t, o, at).await
    }
}
