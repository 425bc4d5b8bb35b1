//! Users: e-mail identity, roles, entitlements and the block state machine.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{InvalidTransition, Timestamp, UserId};

/// An e-mail address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// Nothing was given.
    #[error("email is empty")]
    Empty,
    /// Longer than 254 characters (RFC 5321 path limit).
    #[error("email is {0} characters long, the maximum is 254")]
    TooLong(usize),
    /// There is no single `@` separating a local part and a domain.
    #[error("email must contain exactly one '@' between a local part and a domain")]
    NoAt,
    /// The local part is empty or longer than 64 characters.
    #[error("the part before '@' must be 1 to 64 characters")]
    LocalPart,
    /// The domain is not dot-separated labels of letters, digits and hyphens.
    #[error("the domain {0:?} is not a valid host name")]
    Domain(String),
    /// Whitespace, control characters or characters mail systems refuse.
    #[error("email contains the forbidden character {0:?}")]
    Forbidden(char),
}

/// A normalised e-mail address: trimmed, domain lower-cased, local part lower-cased too
/// (the platform treats `Alice@x` and `alice@x` as the same account, as nearly every
/// mail provider does).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let length = trimmed.chars().count();
        if length > 254 {
            return Err(EmailError::TooLong(length));
        }
        if let Some(c) = trimmed
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(*c))
        {
            return Err(EmailError::Forbidden(c));
        }
        let (local, domain) = trimmed.split_once('@').ok_or(EmailError::NoAt)?;
        if domain.contains('@') {
            return Err(EmailError::NoAt);
        }
        if local.is_empty() || local.chars().count() > 64 {
            return Err(EmailError::LocalPart);
        }
        let domain = domain.to_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if !domain.split('.').all(label_ok) {
            return Err(EmailError::Domain(domain));
        }
        Ok(Self(format!("{}@{}", local.to_lowercase(), domain)))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// A profile field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Display names are 1 to 64 printable characters.
    #[error("display name must be 1 to 64 printable characters")]
    DisplayName,
    /// The display name reads as the platform's staff ("admin", "Galaxy ...").
    #[error("display name {0:?} looks like the platform's staff; choose another")]
    ReservedDisplayName(String),
    /// The display name looks like another user's (same look-alike key).
    #[error("display name {0:?} looks like another user's; choose another")]
    LooksLikeAnother(String),
    /// Locales are BCP 47 tags such as `en` or `pt-BR`.
    #[error("locale {0:?} is not a language tag such as 'en' or 'pt-BR'")]
    Locale(String),
}

/// A user's chosen display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Trims and checks 1..=64 characters, none of them control, format (bidi
    /// overrides, zero-width) or otherwise invisible characters (see
    /// [`forbidden_in_names`](super::text::forbidden_in_names)).
    /// Names that read as staff (`admin`, `Galaxy Team`, `ADM1N` and other look-alikes)
    /// are refused too.
    pub fn parse(input: &str) -> Result<Self, ProfileError> {
        let name = Self::parse_stored(input)?;
        if name.0.chars().any(super::text::forbidden_in_names) {
            return Err(ProfileError::DisplayName);
        }
        if name.imitates_staff() {
            return Err(ProfileError::ReservedDisplayName(name.0));
        }
        Ok(name)
    }

    /// The names a new account of `id` may be given when this one, its default, looks
    /// like another user's, in order of preference: this name, then numbered (`bob 2` ...
    /// `bob 9`), then with a part of the id (`bob 3f9a1c`), each within 64 characters. A
    /// store takes the first whose [`key`](Self::key) nobody holds, so a first login as
    /// `bob@elsewhere` never gets the very name of an existing "Bob".
    pub fn candidates(&self, id: UserId) -> Vec<DisplayName> {
        let hex = id.as_uuid().simple().to_string();
        let tag = hex
            .get(hex.len().saturating_sub(6)..)
            .unwrap_or_default()
            .to_owned();
        let suffixes = (2..=9).map(|n| n.to_string()).chain([tag]);
        let mut names = vec![self.clone()];
        names.extend(suffixes.map(|suffix| {
            let room = 64 - 1 - suffix.chars().count();
            let base: String = self.0.chars().take(room).collect();
            DisplayName(format!("{} {suffix}", base.trim_end()))
        }));
        names
    }

    /// The confusable skeleton of the name (NFKC, case folded, UTS #39 skeleton, without
    /// spaces and punctuation): two names with the same key look alike.
    pub fn key(&self) -> String {
        use unicode_normalization::UnicodeNormalization;
        let folded: String = self.0.nfkc().flat_map(char::to_lowercase).collect();
        unicode_security::skeleton(&folded)
            .flat_map(char::to_lowercase)
            .filter(|c| c.is_alphanumeric())
            .collect()
    }

    /// Whether the name reads as the platform's staff: its key is, or starts with, a
    /// staff word.
    fn imitates_staff(&self) -> bool {
        let key = self.key();
        let word = |w: &str| {
            let shown: String = w.chars().collect();
            DisplayName(shown).key()
        };
        STAFF_WORDS.iter().any(|w| key == word(w))
            || STAFF_PREFIXES.iter().any(|p| key.starts_with(&word(p)))
    }

    /// Reads a stored name with the rules it was stored under (1..=64 characters, no
    /// control characters): a name stored before format characters were refused stays
    /// readable. New names go through [`DisplayName::parse`].
    pub fn parse_stored(input: &str) -> Result<Self, ProfileError> {
        let trimmed = input.trim();
        let n = trimmed.chars().count();
        if n == 0 || n > 64 || trimmed.chars().any(char::is_control) {
            return Err(ProfileError::DisplayName);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Display names that read as the platform's staff.
const STAFF_WORDS: [&str; 7] = [
    "admin",
    "administrator",
    "moderator",
    "staff",
    "support",
    "system",
    "root",
];
/// Beginnings of display names that read as the platform's staff or the platform itself.
const STAFF_PREFIXES: [&str; 3] = ["galaxy", "admin", "moderator"];

impl TryFrom<String> for DisplayName {
    type Error = ProfileError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DisplayName> for String {
    fn from(value: DisplayName) -> Self {
        value.0
    }
}

/// A locale for mail templates: a simplified BCP 47 tag (`en`, `de`, `pt-BR`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locale(String);

impl Locale {
    /// Parses `ll` or `ll-RR` (language 2-3 letters, region 2 letters or 3 digits).
    pub fn parse(input: &str) -> Result<Self, ProfileError> {
        let bad = || ProfileError::Locale(input.chars().take(32).collect());
        let mut parts = input.trim().split(['-', '_']);
        let lang = parts.next().unwrap_or_default();
        if !(2..=3).contains(&lang.len()) || !lang.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(bad());
        }
        let mut tag = lang.to_ascii_lowercase();
        if let Some(region) = parts.next() {
            let ok = (region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()))
                || (region.len() == 3 && region.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(bad());
            }
            tag.push('-');
            tag.push_str(&region.to_ascii_uppercase());
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self(tag))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language part alone (`pt` for `pt-BR`), for template fallback.
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

impl Default for Locale {
    fn default() -> Self {
        Self("en".to_owned())
    }
}

impl TryFrom<String> for Locale {
    type Error = ProfileError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Locale> for String {
    fn from(value: Locale) -> Self {
        value.0
    }
}

/// What a user may do on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Plays and hosts games.
    Player,
    /// Operates the platform (admin routes).
    Admin,
}

impl Role {
    /// Stable lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role name.
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "player" => Some(Role::Player),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Limits granted to one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlements {
    /// How many games not yet finished or cancelled the user may be active in at once:
    /// applied to (pending or approved), playing a race (one taken over too) or waiting
    /// on a seat application (see `ApplicationStore::count_active_games`).
    pub max_active_games: u32,
    /// Whether the user may create games.
    pub may_host_games: bool,
}

impl Default for Entitlements {
    fn default() -> Self {
        Self {
            max_active_games: 5,
            may_host_games: true,
        }
    }
}

/// Whether an account may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum UserStatus {
    /// Normal.
    Active,
    /// Blocked until the given instant (then active again).
    Blocked {
        /// When the block ends.
        until: Timestamp,
    },
    /// Blocked for good; every session was revoked.
    BlockedPermanently,
}

impl UserStatus {
    /// Stable name of the variant (`active`, `blocked`, `blocked_permanently`).
    pub fn as_str(&self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Blocked { .. } => "blocked",
            UserStatus::BlockedPermanently => "blocked_permanently",
        }
    }

    /// Whether the user may act at `now` (a temporary block that has ended counts as
    /// active).
    pub fn is_active_at(&self, now: Timestamp) -> bool {
        match self {
            UserStatus::Active => true,
            UserStatus::Blocked { until } => *until <= now,
            UserStatus::BlockedPermanently => false,
        }
    }
}

/// A block requested by an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    /// Until an instant.
    Until(Timestamp),
    /// For good (revokes every session).
    Permanent,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// Normalised, unique e-mail address.
    pub email: Email,
    /// Shown to other players.
    pub display_name: DisplayName,
    /// Language for mail.
    pub locale: Locale,
    /// ISO country code from geo lookup, `unknown` when not known.
    pub country: String,
    /// Roles, sorted and without duplicates; always contains `player`.
    pub roles: Vec<Role>,
    /// Block state.
    pub status: UserStatus,
    /// Limits.
    pub entitlements: Entitlements,
    /// Whether mail notifications are wanted (login codes are always mailed).
    pub email_notifications: bool,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last authenticated activity.
    pub last_seen_at: Timestamp,
}

impl User {
    /// A fresh player account; the display name defaults to the address's local part.
    pub fn new(id: UserId, email: Email, now: Timestamp) -> Self {
        let local = email.as_str().split('@').next().unwrap_or("player");
        let display_name =
            DisplayName::parse(local).unwrap_or_else(|_| DisplayName("player".to_owned()));
        Self {
            id,
            email,
            display_name,
            locale: Locale::default(),
            country: "unknown".to_owned(),
            roles: vec![Role::Player],
            status: UserStatus::Active,
            entitlements: Entitlements::default(),
            email_notifications: true,
            created_at: now,
            last_seen_at: now,
        }
    }

    /// Whether the user holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Adds a role (idempotent).
    pub fn grant(&mut self, role: Role) {
        if !self.roles.contains(&role) {
            self.roles.push(role);
            self.roles.sort();
        }
    }

    /// Removes a role (idempotent).
    pub fn revoke(&mut self, role: Role) {
        self.roles.retain(|held| *held != role);
    }

    /// Applies a block. Blocking a permanently blocked user is refused: the permanent
    /// block is final until an unblock.
    pub fn block(&mut self, block: Block) -> Result<(), InvalidTransition> {
        if self.status == UserStatus::BlockedPermanently {
            let to = match block {
                Block::Until(_) => "blocked",
                Block::Permanent => "blocked_permanently",
            };
            return Err(InvalidTransition::new(
                "user",
                self.status.as_str(),
                to,
                "admin",
            ));
        }
        self.status = match block {
            Block::Until(until) => UserStatus::Blocked { until },
            Block::Permanent => UserStatus::BlockedPermanently,
        };
        Ok(())
    }

    /// Lifts any block. Unblocking an active user is refused so a repeated request is
    /// visible as a no-op conflict rather than silently accepted.
    pub fn unblock(&mut self) -> Result<(), InvalidTransition> {
        if self.status == UserStatus::Active {
            return Err(InvalidTransition::new("user", "active", "active", "admin"));
        }
        self.status = UserStatus::Active;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_taken_default_name_has_numbered_and_unique_fallbacks() {
        let id = UserId::from_uuid(uuid::Uuid::from_u128(
            0xabc_def0_1234_5678_9abc_def0_1234_5678,
        ));
        let names: Vec<String> = DisplayName::parse("bob")
            .unwrap()
            .candidates(id)
            .into_iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert_eq!(names.len(), 10);
        assert_eq!(&names[..3], ["bob", "bob 2", "bob 3"]);
        assert_eq!(names[9], "bob 345678");
        let long = DisplayName::parse(&"x".repeat(64)).unwrap();
        for name in long.candidates(id) {
            assert!(name.as_str().chars().count() <= 64, "{name:?}");
            assert!(DisplayName::parse(name.as_str()).is_ok(), "{name:?}");
        }
        let keys: std::collections::HashSet<String> =
            long.candidates(id).iter().map(DisplayName::key).collect();
        assert_eq!(keys.len(), 10, "every candidate looks different");
    }

    #[test]
    fn email_is_normalised_and_bad_ones_say_why() {
        let e = Email::parse("  Alice.Smith@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "alice.smith@example.org");
        assert_eq!(e.domain(), "example.org");
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("nobody"), Err(EmailError::NoAt));
        assert_eq!(Email::parse("a@b@c"), Err(EmailError::NoAt));
        assert_eq!(Email::parse("@x.org"), Err(EmailError::LocalPart));
        assert_eq!(Email::parse("a b@x.org"), Err(EmailError::Forbidden(' ')));
        assert!(matches!(
            Email::parse("a@x..org"),
            Err(EmailError::Domain(_))
        ));
        assert!(matches!(
            Email::parse("a@-x.org"),
            Err(EmailError::Domain(_))
        ));
        let long = format!("{}@x.org", "a".repeat(300));
        assert!(matches!(Email::parse(&long), Err(EmailError::TooLong(_))));
    }

    #[test]
    fn locale_and_display_name() {
        assert_eq!(Locale::parse("pt_br").unwrap().as_str(), "pt-BR");
        assert_eq!(Locale::parse("pt-BR").unwrap().language(), "pt");
        assert!(Locale::parse("english").is_err());
        assert!(Locale::parse("en-US-x").is_err());
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(DisplayName::parse("admin\u{202E}nimda").is_err());
        assert!(DisplayName::parse("zero\u{200B}width").is_err());
        assert!(DisplayName::parse_stored("old\u{202E}name").is_ok());
        for staff in [
            "admin",
            "Admin",
            "\u{391}DMIN",
            "аdmin",
            "Galaxy Team",
            "galaxy",
            "Administrator",
            "admin-bot",
            "Moderator 2",
            "r o o t",
        ] {
            assert!(
                matches!(
                    DisplayName::parse(staff),
                    Err(ProfileError::ReservedDisplayName(_))
                ),
                "{staff}"
            );
        }
        for fine in ["Adam", "Galactic Emperor", "Rooted Tree", "Systema", "Ann"] {
            assert!(DisplayName::parse(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn block_and_unblock() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut u = User::new(
            UserId::from_uuid(uuid::Uuid::nil()),
            Email::parse("a@b.c").unwrap(),
            now,
        );
        assert!(u.unblock().is_err());
        u.block(Block::Until(now + chrono::TimeDelta::hours(1)))
            .unwrap();
        assert!(!u.status.is_active_at(now));
        assert!(u.status.is_active_at(now + chrono::TimeDelta::hours(2)));
        u.block(Block::Permanent).unwrap();
        assert!(u.block(Block::Permanent).is_err());
        u.unblock().unwrap();
        assert_eq!(u.status, UserStatus::Active);
    }
}
