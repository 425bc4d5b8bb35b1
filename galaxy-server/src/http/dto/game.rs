//! Games, applications and race names.

use chrono::{DateTime, Utc};
use galaxy_core::domain::application::Application;
use galaxy_core::domain::game::{Game, Visibility};
use galaxy_core::domain::pbem::{PbemSettingsInput, RaceState, format_duration};
use galaxy_core::domain::race_name::RaceNameEntry;
use galaxy_core::service::lobby::NewGame;
use galaxy_core::service::runtime::RaceView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Who can see a game in the public list.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Visibility)]
pub enum VisibilityDto {
    /// Listed in `GET /public/games` while enrollment is open.
    #[default]
    Public,
    /// Reachable by id only.
    Private,
}

impl From<VisibilityDto> for Visibility {
    fn from(value: VisibilityDto) -> Self {
        match value {
            VisibilityDto::Public => Self::Public,
            VisibilityDto::Private => Self::Private,
        }
    }
}

impl From<Visibility> for VisibilityDto {
    fn from(value: Visibility) -> Self {
        match value {
            Visibility::Public => Self::Public,
            Visibility::Private => Self::Private,
        }
    }
}

/// `POST /user/games`: a new draft game hosted by the caller.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGameRequest {
    /// Display name, 3 to 64 characters.
    #[schema(example = "Friday night galaxy")]
    pub name: String,
    /// Fewest approved players to close enrollment (at least 2).
    #[schema(example = 2)]
    pub min_players: u32,
    /// Most approved players (at most 64).
    #[schema(example = 8)]
    pub max_players: u32,
    /// When enrollment ends (RFC 3339, in the future).
    pub enrollment_deadline: DateTime<Utc>,
    /// Turn times: a 5-field cron expression in UTC.
    #[schema(example = "0 18 * * 1,3,5")]
    pub turn_schedule: String,
    /// A registered engine; the reference engine when absent.
    pub engine: Option<String>,
    /// Approve applications without the host (default false).
    #[serde(default)]
    pub auto_approve: bool,
    /// Default `public`.
    #[serde(default)]
    pub visibility: VisibilityDto,
    /// Passed to the engine as `settings` at init (galaxy size, options; see the engine's
    /// documentation): a JSON object of at most 16 KiB. The engine validates it when the
    /// game starts; a refusal makes the start fail with the engine's reason.
    #[schema(value_type = Option<Object>, example = json!({"planets_per_race": 4}))]
    #[serde(default)]
    pub engine_settings: Option<serde_json::Value>,
    /// Whether every player may read every race's reports once the game is finished
    /// (default true).
    #[serde(default = "default_true")]
    pub reveal_reports_after_finish: bool,
    /// Run a turn as soon as every live race is ready (default true).
    pub early_turn: Option<bool>,
    /// After an early turn, the next deadline is the first scheduled time at least this
    /// far away (default `"1h"`; durations like `"45s"`, `"90m"`, `"24h"`, `"2d"`).
    #[schema(example = "1h")]
    pub min_turn_gap: Option<String>,
    /// Reminders before each deadline to players without orders, each shorter than the
    /// turn period (default `["24h", "2h"]`, those shorter than the period).
    #[schema(example = json!(["24h", "2h"]))]
    pub reminders: Option<Vec<String>>,
    /// Consecutive turns without orders after which a race is idle (default 3).
    pub idle_after: Option<u32>,
    /// Vacation turns each player may take (default 2).
    pub vacation_turns: Option<u32>,
    /// Hide the sender's race of messages from their recipients (default false).
    pub anonymous_messages: Option<bool>,
}

fn default_true() -> bool {
    true
}

impl From<CreateGameRequest> for NewGame {
    fn from(request: CreateGameRequest) -> Self {
        Self {
            name: request.name,
            min_players: request.min_players,
            max_players: request.max_players,
            enrollment_deadline: request.enrollment_deadline,
            turn_schedule: request.turn_schedule,
            engine: request.engine,
            auto_approve: request.auto_approve,
            visibility: request.visibility.into(),
            engine_settings: request.engine_settings.unwrap_or(serde_json::Value::Null),
            reveal_reports_after_finish: request.reveal_reports_after_finish,
            pbem: PbemSettingsInput {
                early_turn: request.early_turn,
                min_turn_gap: request.min_turn_gap,
                reminders: request.reminders,
                idle_after: request.idle_after,
                vacation_turns: request.vacation_turns,
                anonymous_messages: request.anonymous_messages,
            },
        }
    }
}

/// A game's settings, fixed at creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct GameSettingsView {
    /// Fewest approved players to close enrollment.
    pub min_players: u32,
    /// Most approved players.
    pub max_players: u32,
    /// When enrollment ends.
    pub enrollment_deadline: DateTime<Utc>,
    /// Turn times (cron, UTC).
    pub turn_schedule: String,
    /// The engine.
    pub engine: String,
    /// Whether applications are approved without the host.
    pub auto_approve: bool,
    /// `public` or `private`.
    pub visibility: VisibilityDto,
    /// What the engine gets as `settings` at init.
    #[schema(value_type = Object)]
    pub engine_settings: serde_json::Value,
    /// Whether every race's reports are revealed to all players after the finish.
    pub reveal_reports_after_finish: bool,
    /// Whether a turn runs as soon as every live race is ready.
    pub early_turn: bool,
    /// The least time from an early turn to the next deadline.
    #[schema(example = "1h")]
    pub min_turn_gap: String,
    /// Reminders before each deadline, longest first.
    #[schema(example = json!(["24h", "2h"]))]
    pub reminders: Vec<String>,
    /// Missed turns in a row after which a race is idle.
    pub idle_after: u32,
    /// Vacation turns each player may take.
    pub vacation_turns: u32,
    /// Whether messages hide their sender's race from recipients.
    pub anonymous_messages: bool,
}

/// One race of a started game as every player sees it (never its orders).
#[derive(Debug, Serialize, ToSchema)]
pub struct RaceStateView {
    /// The race.
    pub race: String,
    /// Whether it is ready for the coming turn (orders accepted, or marked ready).
    pub ready: bool,
    /// `active`, `idle`, `vacation`, `open_seat` or `eliminated` (no longer alive in the
    /// latest standings).
    #[schema(example = "active")]
    pub state: String,
}

impl From<RaceView> for RaceStateView {
    fn from(view: RaceView) -> Self {
        Self {
            race: view.race,
            ready: view.ready,
            state: view.state.as_str().to_owned(),
        }
    }
}

/// A game.
#[derive(Debug, Serialize, ToSchema)]
pub struct GameView {
    /// Stable id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The hosting user's id.
    pub host: Uuid,
    /// `draft`, `enrollment_open`, `enrollment_closed`, `starting`, `start_failed`,
    /// `running`, `paused`, `finished` or `cancelled`.
    #[schema(example = "enrollment_open")]
    pub status: String,
    /// Approved players so far.
    pub approved_count: u32,
    /// The settings.
    pub settings: GameSettingsView,
    /// The last played turn (0 once the engine is initialised); `null` before the start.
    /// Filled on single-game reads and in "my games", `null` in other lists.
    pub current_turn: Option<u32>,
    /// When the next turn runs, while the game is running (same lists as above).
    pub next_turn_at: Option<DateTime<Utc>>,
    /// How the game ended, once `finished` (same lists as above).
    pub result: Option<super::GameResultView>,
    /// Why the game is in its status when a change said so: a start failure with the
    /// engine's reason, a pause, the finish (same lists as above). When the engine or its
    /// container failed, only the host and admins get the failure's details; anyone
    /// else reads "the game's engine failed; its host and the platform's admins see the
    /// details".
    pub status_reason: Option<String>,
    /// Every race with its readiness and state, once the game started (single-game
    /// reads and "my games"; empty elsewhere).
    pub races: Vec<RaceStateView>,
    /// Races whose seat the host offers to replacement players (same lists).
    pub open_seats: Vec<String>,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl GameView {
    /// Adds the races and the open seats.
    pub fn with_races(mut self, races: Vec<RaceView>) -> Self {
        self.open_seats = races
            .iter()
            .filter(|r| r.state == RaceState::OpenSeat)
            .map(|r| r.race.clone())
            .collect();
        self.races = races.into_iter().map(RaceStateView::from).collect();
        self
    }
}

impl From<Game> for GameView {
    fn from(game: Game) -> Self {
        let settings = game.settings;
        Self {
            id: game.id.as_uuid(),
            name: settings.name.as_str().to_owned(),
            host: game.host.as_uuid(),
            status: game.status.as_str().to_owned(),
            approved_count: game.approved_count,
            settings: GameSettingsView {
                min_players: settings.min_players,
                max_players: settings.max_players,
                enrollment_deadline: settings.enrollment_deadline,
                turn_schedule: settings.schedule.as_str().to_owned(),
                engine: settings.engine.as_str().to_owned(),
                auto_approve: settings.auto_approve,
                visibility: settings.visibility.into(),
                engine_settings: settings.engine_settings.to_value(),
                reveal_reports_after_finish: settings.reveal_reports_after_finish,
                early_turn: settings.pbem.early_turn,
                min_turn_gap: format_duration(settings.pbem.min_turn_gap),
                reminders: settings
                    .pbem
                    .reminders
                    .iter()
                    .map(|r| format_duration(*r))
                    .collect(),
                idle_after: settings.pbem.idle_after,
                vacation_turns: settings.pbem.vacation_turns,
                anonymous_messages: settings.pbem.anonymous_messages,
            },
            races: Vec::new(),
            open_seats: Vec::new(),
            current_turn: None,
            next_turn_at: None,
            result: None,
            status_reason: None,
            created_at: game.created_at,
            updated_at: game.updated_at,
        }
    }
}

/// `POST /user/games/{id}/applications`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The race to play as; unique platform-wide (case- and confusable-insensitive).
    #[schema(example = "Zorgons")]
    pub race_name: String,
}

/// A player's application to join a game.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    /// Stable id.
    pub id: Uuid,
    /// The game.
    pub game_id: Uuid,
    /// The applicant.
    pub user_id: Uuid,
    /// The race name applied with.
    pub race_name: String,
    /// `pending`, `approved`, `rejected` or `withdrawn`.
    #[schema(example = "pending")]
    pub status: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it left `pending`.
    pub decided_at: Option<DateTime<Utc>>,
}

impl From<Application> for ApplicationView {
    fn from(application: Application) -> Self {
        Self {
            id: application.id.as_uuid(),
            game_id: application.game_id.as_uuid(),
            user_id: application.user_id.as_uuid(),
            race_name: application.race_name.to_string(),
            status: application.status.as_str().to_owned(),
            created_at: application.created_at,
            decided_at: application.decided_at,
        }
    }
}

/// A game's applications: all of them for its host or an admin, the caller's own for
/// anyone else.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationList {
    /// The applications.
    pub items: Vec<ApplicationView>,
}

/// A race name the caller holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct RaceNameView {
    /// The name as registered.
    pub name: String,
    /// `pending_registration` (claimed by an application), `registered` or `released`.
    pub status: String,
    /// The game of the application that claimed it.
    pub game_id: Option<Uuid>,
    /// The application that claimed it.
    pub application_id: Option<Uuid>,
    /// When a pending claim lapses.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was first claimed.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<RaceNameEntry> for RaceNameView {
    fn from(entry: RaceNameEntry) -> Self {
        Self {
            name: entry.name.to_string(),
            status: entry.status.as_str().to_owned(),
            game_id: entry.game_id.map(|id| id.as_uuid()),
            application_id: entry.application_id.map(|id| id.as_uuid()),
            expires_at: entry.expires_at,
            created_at: entry.created_at,
            updated_at: entry.updated_at,
        }
    }
}

/// The caller's pending and registered race names.
#[derive(Debug, Serialize, ToSchema)]
pub struct RaceNameList {
    /// The names.
    pub items: Vec<RaceNameView>,
}
