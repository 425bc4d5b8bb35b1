//! Games: settings, the status state machine of SPEC section 3 and its history records.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::schedule::TurnSchedule;
use super::{GameId, InvalidTransition, Timestamp, UserId};

/// Where a game stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameStatus {
    /// Being set up by its host; invisible to others.
    Draft,
    /// Accepting applications.
    EnrollmentOpen,
    /// Enrollment over, waiting to start.
    EnrollmentClosed,
    /// A start job is running.
    Starting,
    /// The start failed; an admin may retry.
    StartFailed,
    /// Turns are being played.
    Running,
    /// Turns are suspended (admin or health).
    Paused,
    /// The engine declared the game over.
    Finished,
    /// Called off.
    Cancelled,
}

impl GameStatus {
    /// Every status, in life order (for exhaustive tests and stores).
    pub const ALL: [GameStatus; 9] = [
        Self::Draft,
        Self::EnrollmentOpen,
        Self::EnrollmentClosed,
        Self::Starting,
        Self::StartFailed,
        Self::Running,
        Self::Paused,
        Self::Finished,
        Self::Cancelled,
    ];

    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::EnrollmentOpen => "enrollment_open",
            Self::EnrollmentClosed => "enrollment_closed",
            Self::Starting => "starting",
            Self::StartFailed => "start_failed",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    /// Whether no transition leaves this status.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Finished | Self::Cancelled)
    }

    /// Whether entering this status owes lobby effects after the change commits: the
    /// closing mail and the auto-start for `enrollment_closed`, the stop job and the
    /// cancellation mail for `cancelled`. Such a transition is stored unannounced (the
    /// history row is the effects' outbox) until the lobby marks it done, so a crash
    /// between the change and its effects never loses them. Each of these statuses is
    /// entered at most once per game, so the game and the status name the transition.
    pub fn owes_lobby_effects(self) -> bool {
        matches!(self, Self::EnrollmentClosed | Self::Cancelled)
    }

    /// Whether (self -> to) by `trigger` is in the transition table.
    pub fn allows(self, to: GameStatus, trigger: GameTrigger) -> bool {
        use GameStatus::*;
        use GameTrigger::*;
        match (self, to) {
            (Draft, EnrollmentOpen) => matches!(trigger, Host | Admin),
            (Draft | EnrollmentOpen | EnrollmentClosed | StartFailed, Cancelled) => {
                matches!(trigger, Host | Admin | Sweeper)
            }
            (EnrollmentOpen, EnrollmentClosed) => {
                matches!(trigger, Host | Admin | System | Sweeper)
            }
            (EnrollmentClosed, Starting) => matches!(trigger, Host | Admin | System),
            (StartFailed, Starting) => trigger == Admin,
            (Starting, Running | Paused | StartFailed) => trigger == RuntimeEvent,
            (Running, Paused) => matches!(trigger, Admin | RuntimeEvent),
            (Paused, Running) => trigger == Admin,
            (Running | Paused, Finished) => trigger == Engine,
            (Running | Paused, Cancelled) => trigger == Admin,
            _ => false,
        }
    }

    /// Checks a transition against the table.
    pub fn check(self, to: GameStatus, trigger: GameTrigger) -> Result<(), InvalidTransition> {
        if self.allows(to, trigger) {
            Ok(())
        } else {
            Err(InvalidTransition::new("game", self, to, trigger))
        }
    }
}

impl fmt::Display for GameStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who or what asks for a game transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameTrigger {
    /// The game's host.
    Host,
    /// A platform admin.
    Admin,
    /// The platform itself (auto-close at max players, auto-start).
    System,
    /// The lobby sweeper (enrollment deadline passed).
    Sweeper,
    /// The runtime reporting a start result or a health verdict.
    RuntimeEvent,
    /// The engine reporting the game over.
    Engine,
}

impl GameTrigger {
    /// Every trigger.
    pub const ALL: [GameTrigger; 6] = [
        Self::Host,
        Self::Admin,
        Self::System,
        Self::Sweeper,
        Self::RuntimeEvent,
        Self::Engine,
    ];

    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Admin => "admin",
            Self::System => "system",
            Self::Sweeper => "sweeper",
            Self::RuntimeEvent => "runtime_event",
            Self::Engine => "engine",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

impl fmt::Display for GameTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub mod reasons;

/// One status change, as appended to the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameTransition {
    /// The game.
    pub game_id: GameId,
    /// Status before.
    pub from: GameStatus,
    /// Status after.
    pub to: GameStatus,
    /// What asked for it.
    pub trigger: GameTrigger,
    /// The user who asked (host or admin), if any.
    pub actor: Option<UserId>,
    /// Free-text reason (e.g. the start failure).
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// A game setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GameSettingsError {
    /// Game names are 3..=64 printable characters.
    #[error(
        "game name must be 3 to 64 printable characters, without control or invisible \
         formatting characters (got {0} characters)"
    )]
    Name(usize),
    /// Player bounds are 2 <= min <= max <= 64.
    #[error("players must satisfy 2 <= min ({min}) <= max ({max}) <= {MAX_PLAYERS}")]
    Players {
        /// Asked minimum.
        min: u32,
        /// Asked maximum.
        max: u32,
    },
    /// The deadline must be in the future.
    #[error("enrollment deadline must be in the future")]
    DeadlinePassed,
    /// Engine names are 1..=32 of `[a-z0-9_-]`.
    #[error("engine name {0:?} must be 1 to 32 of a-z, 0-9, '_' or '-'")]
    EngineName(String),
    /// Engine settings are a JSON object of at most [`MAX_ENGINE_SETTINGS_BYTES`].
    #[error("engine settings {0}")]
    EngineSettings(String),
}

/// The largest engine settings object a game may carry, serialised.
pub const MAX_ENGINE_SETTINGS_BYTES: usize = 16 * 1024;

/// What a game tells its engine at `/admin/init` as `settings` (galaxy size, options):
/// a JSON object of at most [`MAX_ENGINE_SETTINGS_BYTES`], opaque to the platform; the
/// engine validates it and refuses bad values at init.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineSettings(serde_json::Map<String, serde_json::Value>);

impl EngineSettings {
    /// Accepts a JSON object (`null` means none) of at most the size bound.
    pub fn parse(value: serde_json::Value) -> Result<Self, GameSettingsError> {
        let object = match value {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(object) => object,
            other => {
                let kind = match other {
                    serde_json::Value::Bool(_) => "a boolean",
                    serde_json::Value::Number(_) => "a number",
                    serde_json::Value::String(_) => "a string",
                    _ => "an array",
                };
                return Err(GameSettingsError::EngineSettings(format!(
                    "must be a JSON object, got {kind}"
                )));
            }
        };
        let size = serde_json::to_vec(&object).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_ENGINE_SETTINGS_BYTES {
            return Err(GameSettingsError::EngineSettings(format!(
                "are {size} bytes, at most {MAX_ENGINE_SETTINGS_BYTES} are accepted"
            )));
        }
        Ok(Self(object))
    }

    /// The settings as a JSON object.
    pub fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }

    /// The settings as a JSON value (always an object).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.clone())
    }
}

/// Most players a game may have.
pub const MAX_PLAYERS: u32 = 64;

/// A game's display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GameName(String);

impl GameName {
    /// Trims; 3..=64 characters, none of them control, format (bidi overrides,
    /// zero-width) or otherwise invisible characters (see
    /// [`forbidden_in_names`](super::text::forbidden_in_names)).
    pub fn parse(input: &str) -> Result<Self, GameSettingsError> {
        let name = Self::parse_stored(input)?;
        if name.0.chars().any(super::text::forbidden_in_names) {
            return Err(GameSettingsError::Name(name.0.chars().count()));
        }
        Ok(name)
    }

    /// Reads a stored name with the rules it was stored under (3..=64 characters, no
    /// control characters): a name stored before format characters were refused stays
    /// readable. New names go through [`GameName::parse`].
    pub fn parse_stored(input: &str) -> Result<Self, GameSettingsError> {
        let trimmed = input.trim();
        let n = trimmed.chars().count();
        if !(3..=64).contains(&n) || trimmed.chars().any(char::is_control) {
            return Err(GameSettingsError::Name(n));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GameName {
    type Error = GameSettingsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<GameName> for String {
    fn from(value: GameName) -> Self {
        value.0
    }
}

/// The name under which an operator registered an engine (`reference` by default).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EngineName(String);

impl EngineName {
    /// The engine every installation registers.
    pub const REFERENCE: &'static str = "reference";

    /// Parses `[a-z0-9_-]{1,32}`.
    pub fn parse(input: &str) -> Result<Self, GameSettingsError> {
        let ok = (1..=32).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(GameSettingsError::EngineName(
                input.chars().take(40).collect(),
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The reference engine.
    pub fn reference() -> Self {
        Self(Self::REFERENCE.to_owned())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EngineName {
    type Error = GameSettingsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EngineName> for String {
    fn from(value: EngineName) -> Self {
        value.0
    }
}

/// Who can see a game in the public list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed in `GET /public/games`.
    Public,
    /// Reachable by id only.
    Private,
}

impl Visibility {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// The validated settings of a new game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameSettings {
    /// Display name.
    pub name: GameName,
    /// Fewest approved players to start.
    pub min_players: u32,
    /// Most approved players.
    pub max_players: u32,
    /// When enrollment ends (the sweeper closes or cancels after it).
    pub enrollment_deadline: Timestamp,
    /// When turns run.
    pub schedule: TurnSchedule,
    /// Which registered engine runs the game.
    pub engine: EngineName,
    /// Whether applications are approved without the host.
    pub auto_approve: bool,
    /// Listing visibility.
    pub visibility: Visibility,
    /// Passed to the engine as `settings` at `/admin/init`.
    pub engine_settings: EngineSettings,
    /// Whether, once the game is finished, every player may read every race's reports
    /// (the classic end-of-game reveal); before the finish each reads only their own.
    pub reveal_reports_after_finish: bool,
    /// The play-by-email habits: early turns, reminders, idle races, vacation, messages.
    pub pbem: super::pbem::PbemSettings,
}

impl GameSettings {
    /// Checks the cross-field rules (player bounds, deadline in the future).
    pub fn validate(&self, now: Timestamp) -> Result<(), GameSettingsError> {
        if self.min_players < 2
            || self.min_players > self.max_players
            || self.max_players > MAX_PLAYERS
        {
            return Err(GameSettingsError::Players {
                min: self.min_players,
                max: self.max_players,
            });
        }
        if self.enrollment_deadline <= now {
            return Err(GameSettingsError::DeadlinePassed);
        }
        Ok(())
    }
}

/// A game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Game {
    /// Stable id.
    pub id: GameId,
    /// Creator, who manages enrollment.
    pub host: UserId,
    /// Settings chosen at creation.
    pub settings: GameSettings,
    /// Status.
    pub status: GameStatus,
    /// Approved applications; never above `max_players`.
    pub approved_count: u32,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// How long a cancelled game still counts against its host's limit of games
/// ([`Game::holds_hosting_slot_at`]).
pub const CANCELLED_KEEPS_SLOT: chrono::TimeDelta = chrono::TimeDelta::days(1);

impl Game {
    /// A new draft game.
    pub fn new(id: GameId, host: UserId, settings: GameSettings, now: Timestamp) -> Self {
        Self {
            id,
            host,
            settings,
            status: GameStatus::Draft,
            approved_count: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether the game counts against its host's limit of games (`max_hosted_games`) at
    /// `now`: while it is not finished or cancelled, and, when its host cancelled it
    /// (`host_cancelled`; not the sweeper at the enrollment deadline, not an admin), for
    /// [`CANCELLED_KEEPS_SLOT`] after, so that creating and cancelling games in a loop
    /// (each kept, each mailed, each warmed into every replica's cache) stops at the
    /// limit for a day.
    pub fn holds_hosting_slot_at(&self, now: Timestamp, host_cancelled: bool) -> bool {
        match self.status {
            GameStatus::Finished => false,
            GameStatus::Cancelled => host_cancelled && now - self.updated_at < CANCELLED_KEEPS_SLOT,
            _ => true,
        }
    }

    /// Whether enrollment has as many players as it may take.
    pub fn is_full(&self) -> bool {
        self.approved_count >= self.settings.max_players
    }

    /// Whether enough players are approved to close enrollment.
    pub fn has_quorum(&self) -> bool {
        self.approved_count >= self.settings.min_players
    }

    /// What the sweeper does with this game at `now`, if anything: past the deadline an
    /// open game closes when it has a quorum and is cancelled otherwise; a draft past its
    /// deadline is cancelled.
    pub fn deadline_verdict(&self, now: Timestamp) -> Option<GameStatus> {
        if now < self.settings.enrollment_deadline {
            return None;
        }
        match self.status {
            GameStatus::EnrollmentOpen if self.has_quorum() => Some(GameStatus::EnrollmentClosed),
            GameStatus::EnrollmentOpen | GameStatus::Draft => Some(GameStatus::Cancelled),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use GameStatus::*;
    use GameTrigger::*;

    /// The table of SPEC section 3, written out independently of `allows`.
    const TABLE: &[(GameStatus, GameStatus, &[GameTrigger])] = &[
        (Draft, EnrollmentOpen, &[Host, Admin]),
        (Draft, Cancelled, &[Host, Admin, Sweeper]),
        (EnrollmentOpen, Cancelled, &[Host, Admin, Sweeper]),
        (EnrollmentClosed, Cancelled, &[Host, Admin, Sweeper]),
        (StartFailed, Cancelled, &[Host, Admin, Sweeper]),
        (
            EnrollmentOpen,
            EnrollmentClosed,
            &[Host, Admin, System, Sweeper],
        ),
        (EnrollmentClosed, Starting, &[Host, Admin, System]),
        (StartFailed, Starting, &[Admin]),
        (Starting, Running, &[RuntimeEvent]),
        (Starting, Paused, &[RuntimeEvent]),
        (Starting, StartFailed, &[RuntimeEvent]),
        (Running, Paused, &[Admin, RuntimeEvent]),
        (Paused, Running, &[Admin]),
        (Running, Finished, &[Engine]),
        (Paused, Finished, &[Engine]),
        (Running, Cancelled, &[Admin]),
        (Paused, Cancelled, &[Admin]),
    ];

    #[test]
    fn every_triple_of_the_table_is_exactly_as_specified() {
        let mut allowed = 0;
        for from in GameStatus::ALL {
            for to in GameStatus::ALL {
                for trigger in GameTrigger::ALL {
                    let expected = TABLE
                        .iter()
                        .any(|(f, t, tr)| *f == from && *t == to && tr.contains(&trigger));
                    let got = from.check(to, trigger);
                    if expected {
                        allowed += 1;
                        assert_eq!(got, Ok(()), "{from} -> {to} by {trigger}");
                    } else {
                        let err = got.unwrap_err();
                        assert_eq!(err, InvalidTransition::new("game", from, to, trigger));
                    }
                }
            }
        }
        assert_eq!(allowed, 32);
    }

    #[test]
    fn terminal_statuses_have_no_way_out() {
        for from in [Finished, Cancelled] {
            assert!(from.is_terminal());
            for to in GameStatus::ALL {
                for trigger in GameTrigger::ALL {
                    assert!(!from.allows(to, trigger));
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in GameStatus::ALL {
            assert_eq!(GameStatus::parse(s.as_str()), Some(s));
        }
        for t in GameTrigger::ALL {
            assert_eq!(GameTrigger::parse(t.as_str()), Some(t));
        }
        assert!(GameName::parse("ab").is_err());
        assert!(EngineName::parse("Ref").is_err());
        assert!(EngineName::parse("reference").is_ok());
    }
}
