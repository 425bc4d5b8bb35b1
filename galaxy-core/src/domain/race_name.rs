//! Race names and the platform-wide Race Name Directory that keeps them unique.
//!
//! A [`RaceName`] is what a player types, cleaned up and validated. Its [`RaceNameKey`] is
//! what uniqueness is decided on: two names collide iff their keys are equal, so "Zorg",
//! "ZORG", "Z0rg" and "Zоrg" (Cyrillic `о`) all claim the same directory entry.
//!
//! # What a valid race name is
//! 1. Parsing NFC-normalises the input, trims whitespace at both ends, turns every inner
//!    run of (non-control) whitespace into one ASCII space, and stores the typographic
//!    apostrophe `’` (U+2019, what phone keyboards type) as `'`.
//! 2. The result has 2..=32 characters (Unicode scalar values).
//! 3. Every character is one of: a letter or digit of any script that UTS #39 lists as
//!    `Identifier_Status=Allowed` (this keeps out emoji, symbols, control and invisible
//!    characters, compatibility forms like `²` or `ﬁ`, and obsolete scripts); a combining
//!    mark (also `Allowed`) directly after a letter, digit or mark; or one of the
//!    separators space, `-` (U+002D) and `'` (U+0027).
//! 4. It starts with a letter or digit, does not end with a separator, and no two
//!    separators are adjacent ("Zorg - Prime" is refused, "Zorg-Prime" is fine).
//!
//! # How the key is computed
//! NFKC, then case folding (each character upper- then lower-cased, so `ß` ~ `ss` and
//! `ς` ~ `σ`), then the UTS #39 confusable skeleton, then case folding again. The skeleton
//! decides what is confusable: it maps digit `0` to letter `O` (so "Z0rg" ~ "Zorg") and
//! `1` to `l`, `m` to `rn`, Cyrillic and Greek look-alikes to Latin. Folding comes first
//! so that case never matters; the price is that look-alikes only in capitals are missed
//! (`I` is `i` there and does not collide with `l`, Greek `Ζ` is `ζ`, not `z`). Skeleton
//! then fold, the other order, would instead merge `i` with `l` ("Bill" ~ "Biii").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::GeneralSecurityProfile;

use crate::domain::{ApplicationId, GameId, InvalidTransition, Timestamp, UserId};

/// The state machine name used in [`InvalidTransition`] errors.
const MACHINE: &str = "race_name";

/// Why a string is not a valid race name; positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RaceNameError {
    /// Nothing but whitespace was given.
    #[error("race name is empty")]
    Empty,
    /// Fewer characters than [`RaceName::MIN_CHARS`].
    #[error("race name is too short: {length} character(s), at least {min} required")]
    TooShort {
        /// Characters after normalisation.
        length: usize,
        /// The minimum.
        min: usize,
    },
    /// More characters than [`RaceName::MAX_CHARS`].
    #[error("race name is too long: {length} characters, at most {max} allowed")]
    TooLong {
        /// Characters after normalisation.
        length: usize,
        /// The maximum.
        max: usize,
    },
    /// A character outside the allowed set (emoji, symbol, control, restricted script...).
    #[error(
        "race name character {ch:?} (U+{:04X}) at position {position} is not allowed: use \
         letters, digits, single spaces, hyphens or apostrophes",
        u32::from(*ch)
    )]
    ForbiddenCharacter {
        /// The offending character.
        ch: char,
        /// Its position.
        position: usize,
    },
    /// A combining mark that does not follow a letter, digit or another mark.
    #[error(
        "race name combining mark U+{:04X} at position {position} does not follow a letter \
         or digit",
        u32::from(*ch)
    )]
    MisplacedMark {
        /// The offending mark.
        ch: char,
        /// Its position.
        position: usize,
    },
    /// The first character is a separator.
    #[error("race name must start with a letter or digit, not {found:?}")]
    InvalidStart {
        /// The first character.
        found: char,
    },
    /// The last character is a separator.
    #[error("race name must end with a letter or digit, not {found:?}")]
    InvalidEnd {
        /// The last character.
        found: char,
    },
    /// Two separators (space, `-`, `'`) in a row.
    #[error(
        "race name has two separators in a row ({first:?} then {second:?}) at position \
         {position}: a space, hyphen or apostrophe must stand between letters or digits"
    )]
    AdjacentSeparators {
        /// The first separator.
        first: char,
        /// The second separator.
        second: char,
        /// Position of the second separator.
        position: usize,
    },
}

/// A validated race name in its display form; see the module doc for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RaceName(String);

/// The uniqueness key of a race name: names collide iff their keys are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RaceNameKey(String);

/// What role a character plays in a name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Base,
    Mark,
    Separator,
}

fn classify(ch: char) -> Option<Class> {
    match ch {
        ' ' | '-' | '\'' => Some(Class::Separator),
        // Marks first: some (Devanagari vowel signs) are also alphabetic, yet need a base.
        c if is_combining_mark(c) => c.identifier_allowed().then_some(Class::Mark),
        c if c.is_alphanumeric() && c.identifier_allowed() => Some(Class::Base),
        _ => None,
    }
}

/// NFC, trim, collapse inner whitespace runs, typographic apostrophe to ASCII.
fn normalise(input: &str) -> String {
    let nfc: String = input.nfc().collect();
    let mut out = String::with_capacity(nfc.len());
    let mut in_space = false;
    for ch in nfc.trim().chars() {
        if ch.is_whitespace() && !ch.is_control() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        out.push(if ch == '\u{2019}' { '\'' } else { ch });
    }
    out
}

fn check_characters(name: &str) -> Result<(), RaceNameError> {
    let mut prev: Option<(char, Class)> = None;
    for (index, ch) in name.chars().enumerate() {
        let position = index + 1;
        let class = classify(ch).ok_or(RaceNameError::ForbiddenCharacter { ch, position })?;
        match (prev, class) {
            (None, Class::Separator) => return Err(RaceNameError::InvalidStart { found: ch }),
            (None | Some((_, Class::Separator)), Class::Mark) => {
                return Err(RaceNameError::MisplacedMark { ch, position });
            }
            (Some((first, Class::Separator)), Class::Separator) => {
                return Err(RaceNameError::AdjacentSeparators {
                    first,
                    second: ch,
                    position,
                });
            }
            _ => {}
        }
        prev = Some((ch, class));
    }
    match prev {
        Some((found, Class::Separator)) => Err(RaceNameError::InvalidEnd { found }),
        _ => Ok(()),
    }
}

/// Case folding approximated per character as upper- then lower-casing (see module doc).
fn fold(chars: impl Iterator<Item = char>) -> impl Iterator<Item = char> {
    chars
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
}

impl RaceName {
    /// Fewest characters a name may have.
    pub const MIN_CHARS: usize = 2;
    /// Most characters a name may have.
    pub const MAX_CHARS: usize = 32;

    /// Normalises and validates `input` (see the module doc for the exact rules).
    pub fn parse(input: &str) -> Result<Self, RaceNameError> {
        let name = normalise(input);
        let length = name.chars().count();
        let (min, max) = (Self::MIN_CHARS, Self::MAX_CHARS);
        if length == 0 {
            return Err(RaceNameError::Empty);
        }
        if length < min {
            return Err(RaceNameError::TooShort { length, min });
        }
        if length > max {
            return Err(RaceNameError::TooLong { length, max });
        }
        check_characters(&name)?;
        Ok(Self(name))
    }

    /// The display form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: NFKC, case fold, UTS #39 skeleton, case fold (NFD form).
    pub fn key(&self) -> RaceNameKey {
        let folded: String = fold(self.0.nfkc()).collect();
        let skeleton = unicode_security::skeleton(&folded);
        RaceNameKey(fold(skeleton).nfd().collect())
    }
}

impl fmt::Display for RaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RaceName {
    type Error = RaceNameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RaceName> for String {
    fn from(name: RaceName) -> Self {
        name.0
    }
}

impl RaceNameKey {
    /// Wraps a key read back from storage, trusted to come from [`RaceName::key`].
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }

    /// The key text (what a store's unique index is on).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a directory entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaceNameStatus {
    /// Claimed by an application; lapses at `expires_at` unless the application is approved.
    PendingRegistration,
    /// Owned by the player and reusable in later games.
    Registered,
    /// Free again; blocks nobody.
    Released,
}

/// A string is not one of the [`RaceNameStatus`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown race name status {0:?}")]
pub struct UnknownRaceNameStatus(pub String);

impl RaceNameStatus {
    /// The stored snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PendingRegistration => "pending_registration",
            Self::Registered => "registered",
            Self::Released => "released",
        }
    }
}

impl fmt::Display for RaceNameStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RaceNameStatus {
    type Err = UnknownRaceNameStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::PendingRegistration, Self::Registered, Self::Released]
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownRaceNameStatus(s.chars().take(64).collect()))
    }
}

/// One row of the Race Name Directory: who holds which name, and how firmly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaceNameEntry {
    /// What uniqueness is enforced on; equal to `name.key()`.
    pub key: RaceNameKey,
    /// The display form as first chosen, so the owner's spelling and case are kept.
    pub name: RaceName,
    /// The player who claimed the name.
    pub owner: UserId,
    /// Where the entry is in its life.
    pub status: RaceNameStatus,
    /// The game whose application claimed the name (kept as history after approval).
    pub game_id: Option<GameId>,
    /// The application that claimed the name, so approval or rejection can find it.
    pub application_id: Option<ApplicationId>,
    /// When a pending claim lapses; `None` once registered or released.
    pub expires_at: Option<Timestamp>,
    /// When the name was first claimed.
    pub created_at: Timestamp,
    /// When the status last changed.
    pub updated_at: Timestamp,
}

impl RaceNameEntry {
    /// A claim made by applying to `game_id` with `name`, lapsing `ttl` after `now`.
    pub fn pending(
        name: RaceName,
        owner: UserId,
        game_id: GameId,
        application_id: ApplicationId,
        now: Timestamp,
        ttl: chrono::TimeDelta,
    ) -> Self {
        Self {
            key: name.key(),
            name,
            owner,
            status: RaceNameStatus::PendingRegistration,
            game_id: Some(game_id),
            application_id: Some(application_id),
            // An absurd TTL saturates instead of overflowing.
            expires_at: Some(now.checked_add_signed(ttl).unwrap_or(Timestamp::MAX_UTC)),
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether this is a pending claim whose `expires_at` is at or before `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.status == RaceNameStatus::PendingRegistration
            && self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether this entry stops `user` from claiming the name: it is active (registered, or
    /// pending and not expired) and owned by someone else.
    pub fn blocks(&self, user: UserId, now: Timestamp) -> bool {
        let active = match self.status {
            RaceNameStatus::Registered => true,
            RaceNameStatus::PendingRegistration => !self.is_expired(now),
            RaceNameStatus::Released => false,
        };
        active && self.owner != user
    }

    /// `pending_registration -> registered` on approval. An expired claim is refused: it
    /// already blocks nobody, so someone else may hold the name by now.
    pub fn register(&mut self, now: Timestamp) -> Result<(), InvalidTransition> {
        let to = RaceNameStatus::Registered;
        if self.status != RaceNameStatus::PendingRegistration {
            return Err(InvalidTransition::new(MACHINE, self.status, to, "approval"));
        }
        if self.is_expired(now) {
            return Err(InvalidTransition::new(
                MACHINE,
                "pending_registration (expired)",
                to,
                "approval",
            ));
        }
        self.status = to;
        self.expires_at = None;
        self.updated_at = now;
        Ok(())
    }

    /// `pending_registration (expired) -> released`: the sweeper's release of a claim
    /// that lapsed. A claim renewed since the sweeper listed it, or a name registered
    /// meanwhile, is refused with the status found: the sweeper never takes a name its
    /// owner holds.
    pub fn release_expired(&mut self, now: Timestamp) -> Result<(), NotExpired> {
        if !self.is_expired(now) {
            return Err(NotExpired {
                status: self.status,
            });
        }
        self.status = RaceNameStatus::Released;
        self.expires_at = None;
        self.updated_at = now;
        Ok(())
    }

    /// `pending_registration -> released` for a decided application's claim, only while
    /// the claim is still `application`'s: its owner may have applied elsewhere with the
    /// name since (that application then holds the claim), or had it registered.
    pub fn release_claim_of(
        &mut self,
        application: ApplicationId,
        now: Timestamp,
    ) -> Result<(), NotTheClaim> {
        if self.status != RaceNameStatus::PendingRegistration
            || self.application_id != Some(application)
        {
            return Err(NotTheClaim {
                status: self.status,
            });
        }
        self.status = RaceNameStatus::Released;
        self.expires_at = None;
        self.updated_at = now;
        Ok(())
    }

    /// `pending_registration | registered -> released`: expiry, withdrawal, rejection or
    /// the owner letting the name go.
    pub fn release(&mut self, now: Timestamp) -> Result<(), InvalidTransition> {
        let to = RaceNameStatus::Released;
        if self.status == to {
            return Err(InvalidTransition::new(MACHINE, self.status, to, "release"));
        }
        self.status = to;
        self.expires_at = None;
        self.updated_at = now;
        Ok(())
    }
}

/// [`RaceNameEntry::release_claim_of`] found the entry no longer the application's
/// pending claim (the stores answer it as a conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("status is {status}, or the claim is another application's")]
pub struct NotTheClaim {
    /// The entry's status.
    pub status: RaceNameStatus,
}

/// [`RaceNameEntry::release_expired`] found no expired claim (the stores answer it as a
/// conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("status is {status}, not an expired claim")]
pub struct NotExpired {
    /// The entry's status (a pending claim renewed since, or a registered name).
    pub status: RaceNameStatus,
}

#[cfg(test)]
mod tests;
