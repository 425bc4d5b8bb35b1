//! Games: creation, the host's and admins' status changes, and reading.

use chrono::TimeDelta;

use super::{LobbyError, LobbyService, manager_trigger};
use crate::domain::game::{
    EngineName, EngineSettings, Game, GameName, GameSettings, GameSettingsError, GameStatus,
    GameTrigger, Visibility,
};
use crate::domain::page::{Page, PageRequest};
use crate::domain::pbem::PbemSettingsInput;
use crate::domain::runtime::{JobKind, JobStatus, RuntimeJob};
use crate::domain::schedule::TurnSchedule;
use crate::domain::{GameId, JobId, Timestamp, UserId};
use crate::ports::GameFilter;
use crate::service::Actor;

/// How many idempotency keys one start attempt tries before giving up, when the runtime
/// already consumed the jobs under the earlier ones (see [`LobbyService::start`]).
const START_KEY_ATTEMPTS: u32 = 8;

/// A request to create a game, as the API receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGame {
    /// Display name, 3..=64 characters.
    pub name: String,
    /// Fewest approved players to close enrollment (>= 2).
    pub min_players: u32,
    /// Most approved players (<= 64).
    pub max_players: u32,
    /// When enrollment ends; must be in the future.
    pub enrollment_deadline: Timestamp,
    /// A cron expression in UTC, e.g. `0 18 * * 1,3,5`.
    pub turn_schedule: String,
    /// A registered engine; `None` means the reference engine.
    pub engine: Option<String>,
    /// Whether applications are approved without the host.
    pub auto_approve: bool,
    /// Whether the game is listed publicly.
    pub visibility: Visibility,
    /// Passed to the engine at init: a JSON object of at most 16 KiB (`Null`: none).
    pub engine_settings: serde_json::Value,
    /// Whether every race's reports are revealed to all players after the finish.
    pub reveal_reports_after_finish: bool,
    /// The play-by-email settings as given (omitted ones take their defaults).
    pub pbem: PbemSettingsInput,
}

/// The longest name text the lobby search takes (a game name is at most 64 characters).
pub const MAX_LOBBY_SEARCH_BYTES: usize = 256;

/// What a player looks for in the lobby; the default finds every open public game.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LobbySearch {
    /// Only games whose name contains this text (case ignored, matched literally);
    /// blank means no filter.
    pub name: Option<String>,
    /// Only games with a free seat.
    pub free_seat: bool,
}

impl LobbyService {
    /// Creates a draft game hosted by `actor`, who must be active and entitled to host.
    pub async fn create_game(&self, actor: Actor, new: NewGame) -> Result<Game, LobbyError> {
        let now = self.now();
        let settings = self.parse_settings(new, now)?;
        self.check_schedule(&actor, &settings.schedule, now)?;
        let host = self.active_user(&actor, now).await?;
        if !host.entitlements.may_host_games {
            return Err(LobbyError::forbidden("the account may not host games"));
        }
        let game = Game::new(
            GameId::from_uuid(self.ports.ids.uuid()),
            host.id,
            settings,
            now,
        );
        if actor.is_admin {
            self.ports.games.insert_game(&game).await?;
            return Ok(game);
        }
        let max = self.config.max_hosted_games;
        if !self.ports.games.insert_hosted_game(&game, max).await? {
            return Err(LobbyError::forbidden(format!(
                "already hosting {max} game(s) not yet finished, the limit (a game you \
                 cancelled in the last day still counts); finish or cancel one, or try again \
                 a day after your last cancellation"
            )));
        }
        Ok(game)
    }

    /// A schedule must fire after now, and (unless an admin creates the game) leave at
    /// least `min_turn_period` between two turns.
    fn check_schedule(
        &self,
        actor: &Actor,
        schedule: &TurnSchedule,
        now: Timestamp,
    ) -> Result<(), LobbyError> {
        if schedule.next_after(now).is_none() {
            let message = format!("turn schedule {schedule:?} never fires after now");
            return Err(LobbyError::validation("turn_schedule", message));
        }
        let min = self.config.min_turn_period;
        if actor.is_admin || min <= TimeDelta::zero() {
            return Ok(());
        }
        if let Some(gap) = schedule.gap_shorter_than(now, min) {
            let message = format!(
                "turn schedule {} would run turns {} apart; turns must be at least {} apart",
                schedule.as_str(),
                humanize(gap),
                humanize(min)
            );
            return Err(LobbyError::validation("turn_schedule", message));
        }
        Ok(())
    }

    fn parse_settings(&self, new: NewGame, now: Timestamp) -> Result<GameSettings, LobbyError> {
        let name = GameName::parse(&new.name).map_err(|e| LobbyError::validation("name", e))?;
        let schedule = TurnSchedule::parse(&new.turn_schedule)
            .map_err(|e| LobbyError::validation("turn_schedule", e))?;
        let engine = match new.engine.as_deref() {
            None => EngineName::reference(),
            Some(raw) => EngineName::parse(raw).map_err(|e| LobbyError::validation("engine", e))?,
        };
        if !self.config.engines.contains(&engine) {
            let known: Vec<&str> = self.config.engines.iter().map(EngineName::as_str).collect();
            let message = format!(
                "engine {:?} is not registered (known: {})",
                engine.as_str(),
                known.join(", ")
            );
            return Err(LobbyError::validation("engine", message));
        }
        let pbem = new
            .pbem
            .resolve(&schedule, now)
            .map_err(|error| LobbyError::validation(error.field, error.message))?;
        let settings = GameSettings {
            name,
            min_players: new.min_players,
            max_players: new.max_players,
            enrollment_deadline: new.enrollment_deadline,
            schedule,
            engine,
            auto_approve: new.auto_approve,
            visibility: new.visibility,
            engine_settings: EngineSettings::parse(new.engine_settings)
                .map_err(|error| LobbyError::validation("engine_settings", error))?,
            reveal_reports_after_finish: new.reveal_reports_after_finish,
            pbem,
        };
        settings.validate(now).map_err(|error| {
            let field = match &error {
                GameSettingsError::Players { min, max } if *min < 2 || min > max => "min_players",
                GameSettingsError::Players { .. } => "max_players",
                GameSettingsError::DeadlinePassed => "enrollment_deadline",
                GameSettingsError::Name(_) => "name",
                GameSettingsError::EngineName(_) => "engine",
                GameSettingsError::EngineSettings(_) => "engine_settings",
            };
            LobbyError::validation(field, error)
        })?;
        Ok(settings)
    }

    /// `draft -> enrollment_open`, by the host or an admin.
    pub async fn open(&self, actor: Actor, game_id: GameId) -> Result<Game, LobbyError> {
        let game = self.load_game(Some(actor), game_id).await?;
        let trigger = manager_trigger(&actor, &game, GameStatus::EnrollmentOpen)?;
        self.change_status(
            &game,
            GameStatus::EnrollmentOpen,
            trigger,
            Some(actor.user_id),
            None,
        )
        .await
    }

    /// `enrollment_open -> enrollment_closed`, by the host or an admin, once at least
    /// `min_players` are approved. With auto-start configured the game then starts.
    pub async fn close(&self, actor: Actor, game_id: GameId) -> Result<Game, LobbyError> {
        let game = self.load_game(Some(actor), game_id).await?;
        let trigger = manager_trigger(&actor, &game, GameStatus::EnrollmentClosed)?;
        if !game.has_quorum() {
            return Err(LobbyError::NoQuorum {
                approved: game.approved_count,
                min: game.settings.min_players,
            });
        }
        let closed = self
            .change_status(
                &game,
                GameStatus::EnrollmentClosed,
                trigger,
                Some(actor.user_id),
                None,
            )
            .await?;
        Ok(self.after_close(closed).await)
    }

    /// `enrollment_closed -> starting` by the host or an admin (or `start_failed ->
    /// starting`, an admin's retry), queueing the durable start job first.
    ///
    /// The job (idempotency key `start:<game>:<n>`, `n` = earlier transitions to
    /// `starting`) is queued before the compare-and-set, so a crash between the two leaves
    /// a job the runtime finds (it acts only on a `starting` game) rather than a
    /// `starting` game nobody starts. Two racing callers compute the same key and share
    /// one job; the loser of the compare-and-set gets [`LobbyError::StatusChanged`].
    pub async fn start(&self, actor: Actor, game_id: GameId) -> Result<Game, LobbyError> {
        let game = self.load_game(Some(actor), game_id).await?;
        let trigger = manager_trigger(&actor, &game, GameStatus::Starting)?;
        self.start_with(game_id, trigger, Some(actor.user_id)).await
    }

    /// Cancels a game: one not yet started (or whose start failed) by the host or an
    /// admin, a running or paused one by an admin. A game that had an engine gets a
    /// durable stop job, so its engine goes at once rather than at the next tick (the
    /// reconciler queues it again should this process die before it is queued).
    pub async fn cancel(&self, actor: Actor, game_id: GameId) -> Result<Game, LobbyError> {
        let game = self.load_game(Some(actor), game_id).await?;
        let trigger = manager_trigger(&actor, &game, GameStatus::Cancelled)?;
        let cancelled = self
            .change_status(
                &game,
                GameStatus::Cancelled,
                trigger,
                Some(actor.user_id),
                None,
            )
            .await?;
        self.after_cancel(game.status, &cancelled).await;
        Ok(cancelled)
    }

    /// One game. Drafts are visible only to their host and admins; private games to
    /// anyone who knows the id.
    pub async fn get_game(
        &self,
        actor: Option<Actor>,
        game_id: GameId,
    ) -> Result<Game, LobbyError> {
        self.load_game(actor, game_id).await
    }

    /// Public games open for enrollment, oldest first.
    pub async fn list_public_games(&self, page: &PageRequest) -> Result<Page<Game>, LobbyError> {
        self.search_public_games(&LobbySearch::default(), page)
            .await
    }

    /// Public games open for enrollment that match `search` (name, free seat), oldest
    /// first, paged: the lobby's filters, applied by the store to every game rather than
    /// to one page. 422 on `q` for a name text longer than [`MAX_LOBBY_SEARCH_BYTES`].
    pub async fn search_public_games(
        &self,
        search: &LobbySearch,
        page: &PageRequest,
    ) -> Result<Page<Game>, LobbyError> {
        let name = search
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if name.is_some_and(|n| n.len() > MAX_LOBBY_SEARCH_BYTES || n.chars().any(char::is_control))
        {
            return Err(LobbyError::validation(
                "q",
                format!(
                    "the name to look for is at most {MAX_LOBBY_SEARCH_BYTES} bytes, without \
                     control characters"
                ),
            ));
        }
        let filter = GameFilter {
            statuses: vec![GameStatus::EnrollmentOpen],
            visibility: Some(Visibility::Public),
            name_contains: name.map(str::to_owned),
            free_seat: search.free_seat,
            ..GameFilter::default()
        };
        Ok(self.ports.games.list_games(&filter, page).await?)
    }

    /// Public games in play (running or paused), oldest first: where open seats are
    /// looked for (`GET /public/games?open_seats=true`).
    pub async fn list_public_games_in_play(
        &self,
        page: &PageRequest,
    ) -> Result<Page<Game>, LobbyError> {
        let filter = GameFilter {
            statuses: vec![GameStatus::Running, GameStatus::Paused],
            visibility: Some(Visibility::Public),
            ..GameFilter::default()
        };
        Ok(self.ports.games.list_games(&filter, page).await?)
    }

    /// The games `actor` hosts, in every status, oldest first.
    pub async fn list_my_games(
        &self,
        actor: Actor,
        page: &PageRequest,
    ) -> Result<Page<Game>, LobbyError> {
        let filter = GameFilter {
            host: Some(actor.user_id),
            ..GameFilter::default()
        };
        Ok(self.ports.games.list_games(&filter, page).await?)
    }

    /// Every game, optionally only those in `statuses` (admin).
    pub async fn list_all_games(
        &self,
        actor: Actor,
        statuses: Vec<GameStatus>,
        page: &PageRequest,
    ) -> Result<Page<Game>, LobbyError> {
        if !actor.is_admin {
            return Err(LobbyError::forbidden("only admins may list every game"));
        }
        let filter = GameFilter {
            statuses,
            ..GameFilter::default()
        };
        Ok(self.ports.games.list_games(&filter, page).await?)
    }

    /// The start flow shared by the host's start and auto-start.
    pub(super) async fn start_with(
        &self,
        game_id: GameId,
        trigger: GameTrigger,
        actor: Option<UserId>,
    ) -> Result<Game, LobbyError> {
        // History first, then the status: a transition to `starting` landing in between
        // shows in the status, so `n` is never stale for the status acted on. The status
        // is read past the cache: a start another replica made whose note has not come
        // yet would leave this one a second start job (its compare-and-set fails, the job
        // stays), and two starts of one game would then run at once.
        let history = self.ports.games.game_transitions(game_id).await?;
        let game = self.read_game(game_id, true).await?;
        game.status
            .check(GameStatus::Starting, trigger)
            .map_err(LobbyError::InvalidTransition)?;
        let n = history
            .iter()
            .filter(|t| t.to == GameStatus::Starting)
            .count();
        let job = self.enqueue_start_job(game_id, n).await?;
        let started = self
            .change_status(&game, GameStatus::Starting, trigger, actor, None)
            .await?;
        // A runtime worker may have claimed the job before the status changed, found the
        // game not `starting` yet and finished it without acting: queue a fresh one.
        match self.ports.jobs.get_job(job.id).await {
            Ok(seen) if is_finished(seen.status) => {
                if let Err(error) = self.enqueue_start_job(game_id, n).await {
                    tracing::error!(%error, %game_id, "game is starting but no start job could be queued");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, %game_id, "start job not re-read"),
        }
        Ok(started)
    }

    /// Queues (or finds) the live start job of attempt `n`. A job under the same key that
    /// already finished belongs to an attempt whose status change never landed, so the
    /// next key in a fixed sequence is tried; racing callers walk the same sequence.
    async fn enqueue_start_job(&self, game_id: GameId, n: usize) -> Result<RuntimeJob, LobbyError> {
        let mut last = None;
        for retry in 0..START_KEY_ATTEMPTS {
            let key = match retry {
                0 => format!("start:{game_id}:{n}"),
                r => format!("start:{game_id}:{n}:{r}"),
            };
            let id = JobId::from_uuid(self.ports.ids.uuid());
            let job = RuntimeJob::new(id, game_id, JobKind::Start, key, self.now());
            let queued = self.ports.jobs.enqueue_job(&job).await?;
            if !is_finished(queued.status) {
                return Ok(queued);
            }
            last = Some(queued.idempotency_key);
        }
        let key = last.unwrap_or_default();
        Err(
            crate::ports::StoreError::conflict("runtime job", key, "every start key is used up")
                .into(),
        )
    }
}

/// A duration as people say it: `1 s`, `5 min`, `2 h`, `3 d` (the largest whole unit).
fn humanize(delta: TimeDelta) -> String {
    let seconds = delta.num_seconds();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("min", 60)] {
        if seconds >= size && seconds % size == 0 {
            return format!("{} {unit}", seconds / size);
        }
    }
    format!("{seconds} s")
}

fn is_finished(status: JobStatus) -> bool {
    matches!(status, JobStatus::Succeeded | JobStatus::Failed)
}
