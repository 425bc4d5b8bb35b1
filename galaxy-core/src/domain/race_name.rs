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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone, Utc};
    use proptest::prelude::*;
    use uuid::Uuid;

    fn key(s: &str) -> RaceNameKey {
        RaceName::parse(s).unwrap().key()
    }

    fn err(s: &str) -> RaceNameError {
        RaceName::parse(s).unwrap_err()
    }

    #[test]
    fn normalises_whitespace_nfc_and_apostrophe() {
        let name = RaceName::parse("  Star \u{3000}  Born\u{2019}s   E\u{301}lite \n").unwrap();
        assert_eq!(name.as_str(), "Star Born's \u{c9}lite");
        assert_eq!(name.to_string(), name.as_str());
    }

    fn collide(a: &str, b: &str) -> bool {
        key(a) == key(b)
    }

    #[test]
    fn case_and_look_alike_variants_collide() {
        // Case, digit zero, Cyrillic о and О, Greek ο.
        for variant in "ZORG zorg Z0rg Z0RG Z\u{43e}rg Z\u{41e}RG Z\u{3bf}rg".split(' ') {
            assert!(collide(variant, "Zorg"), "{variant}");
        }
        assert!(collide("Stra\u{df}e", "STRASSE"));
        assert!(collide("Mod", "rnod"));
        let (athena, athena_shouted) = (
            "\u{391}\u{3b8}\u{3b7}\u{3bd}\u{3ac}",
            "\u{391}\u{398}\u{397}\u{39d}\u{386}",
        );
        assert!(collide(athena, athena_shouted));
        assert!(collide("\u{420}\u{430}\u{441}\u{430}", "PACA")); // Cyrillic Раса
    }

    #[test]
    fn distinct_names_do_not_collide() {
        for (a, b) in [
            ("Zorg", "Zerg"),
            ("Zorg", "Zorg Prime"),
            ("Star-Born", "StarBorn"),
        ] {
            assert!(!collide(a, b), "{a} {b}");
        }
        // Look-alikes only in capitals do not collide: folding comes first (module doc).
        assert!(!collide("Ivan", "lvan"));
        assert!(
            !collide("\u{396}ORG", "ZORG"),
            "Greek capital zeta folds to ζ"
        );
    }

    #[test]
    fn bad_inputs_give_the_right_error() {
        use RaceNameError::*;
        let forbidden = |ch, position| ForbiddenCharacter { ch, position };
        assert_eq!(err("   \t "), Empty);
        assert_eq!(err(" Z "), TooShort { length: 1, min: 2 });
        let (length, max) = (33, RaceName::MAX_CHARS);
        assert_eq!(err(&"x".repeat(33)), TooLong { length, max });
        assert_eq!(err("Zorg\u{1F47D}"), forbidden('\u{1F47D}', 5), "emoji");
        assert_eq!(err("Zo\trg"), forbidden('\t', 3), "control");
        assert_eq!(err("Zo\u{200b}rg"), forbidden('\u{200b}', 3), "invisible");
        assert_eq!(err("Zorg!"), forbidden('!', 5), "punctuation");
        assert_eq!(err("Zorg\u{b2}"), forbidden('\u{b2}', 5)); // compatibility form
        assert_eq!(err("\u{16a0}\u{16a1}"), forbidden('\u{16a0}', 1)); // runic
        assert_eq!(err("-Zorg"), InvalidStart { found: '-' });
        assert_eq!(err("Zorg'"), InvalidEnd { found: '\'' });
        let (first, second, position) = (' ', '-', 6);
        let adjacent = AdjacentSeparators {
            first,
            second,
            position,
        };
        assert_eq!(err("Zorg - Prime"), adjacent);
        let (ch, position) = ('\u{301}', 4);
        assert_eq!(err("Zo \u{301}rg"), MisplacedMark { ch, position });
        let message = err("Zorg\u{1F47D}").to_string();
        assert!(
            message.contains("U+1F47D") && message.contains("position 5"),
            "{message}"
        );
        assert!(err("Z").to_string().contains("1 character"));
        assert!(err(&"x".repeat(40)).to_string().contains("40 characters"));
    }

    #[test]
    fn accepts_scripts_marks_digits_and_separators() {
        let hebrew_han_devanagari = [
            "\u{5de}\u{5d6}\u{5e8}",
            "\u{9f8d}\u{65cf}",
            "\u{915}\u{93f}",
        ];
        for ok in ["K'tang-7", "42", "x\u{302}x", "\u{141}\u{f3}d\u{17a}"] {
            assert!(RaceName::parse(ok).is_ok(), "{ok:?}");
        }
        for ok in hebrew_han_devanagari {
            assert!(RaceName::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn serde_goes_through_parse() {
        let name: RaceName = serde_json::from_str("\"  Zorg  Prime \"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"Zorg Prime\"");
        assert!(serde_json::from_str::<RaceName>("\"!\"").is_err());
        let status = serde_json::to_string(&RaceNameStatus::PendingRegistration).unwrap();
        assert_eq!(status, "\"pending_registration\"");
    }

    #[test]
    fn status_round_trips_through_str() {
        use RaceNameStatus::*;
        for status in [PendingRegistration, Registered, Released] {
            assert_eq!(status.as_str().parse(), Ok(status));
        }
        assert!("active".parse::<RaceNameStatus>().is_err());
    }

    fn at(minute: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, minute, 0).unwrap()
    }

    fn user(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }

    /// "Zorg", claimed by user 1 at minute 0, lapsing at minute 10.
    fn entry() -> RaceNameEntry {
        let game = GameId::from_uuid(Uuid::from_u128(9));
        let app = ApplicationId::from_uuid(Uuid::from_u128(8));
        let name = RaceName::parse("Zorg").unwrap();
        RaceNameEntry::pending(name, user(1), game, app, at(0), TimeDelta::minutes(10))
    }

    #[test]
    fn pending_blocks_others_until_it_expires() {
        let e = entry();
        assert_eq!((e.key.clone(), e.expires_at), (key("ZORG"), Some(at(10))));
        assert!(e.blocks(user(2), at(9)) && !e.blocks(user(1), at(9)));
        assert!(!e.is_expired(at(9)) && e.is_expired(at(10)));
        assert!(!e.blocks(user(2), at(10)));
    }

    #[test]
    fn approval_registers_and_owner_release_frees() {
        let mut e = entry();
        e.register(at(5)).unwrap();
        assert_eq!((e.status, e.expires_at), (RaceNameStatus::Registered, None));
        assert_eq!((e.created_at, e.updated_at), (at(0), at(5)));
        assert!(e.blocks(user(2), at(59)) && !e.blocks(user(1), at(59)));
        assert!(e.register(at(6)).is_err());
        e.release(at(7)).unwrap();
        assert_eq!((e.status, e.updated_at), (RaceNameStatus::Released, at(7)));
        assert!(!e.blocks(user(2), at(8)));
        let refused = e.release(at(8)).unwrap_err();
        assert_eq!(
            (refused.from.as_str(), refused.to.as_str()),
            ("released", "released")
        );
        assert!(e.register(at(8)).is_err());
        assert_eq!(e.updated_at, at(7), "a refused transition changes nothing");
    }

    #[test]
    fn pending_can_be_released_and_expired_cannot_be_approved() {
        let mut withdrawn = entry();
        withdrawn.release(at(3)).unwrap();
        assert_eq!(withdrawn.status, RaceNameStatus::Released);
        let mut lapsed = entry();
        assert_eq!(lapsed.register(at(10)).unwrap_err().to, "registered");
        assert_eq!(lapsed.status, RaceNameStatus::PendingRegistration);
        lapsed.release(at(11)).unwrap();
        assert_eq!(
            (lapsed.status, lapsed.expires_at),
            (RaceNameStatus::Released, None)
        );
    }

    /// Name-like inputs: words of letters (several scripts, case-tricky ones, marks,
    /// digits) joined by separators or messy whitespace; most parse, some do not.
    fn name_like() -> impl Strategy<Value = String> {
        const LETTERS: &str = "aAzZoO0l1IiMmrn\u{df}\u{131}\u{130}\u{1f0}\u{3c2}\u{3a3}\u{396}\
            \u{43e}\u{41e}\u{3bf}\u{e9}\u{c9}\u{301}\u{308}\u{915}\u{93f}\u{5d0}\u{4e00}\
            \u{ac00}\u{10d0}\u{1f600}";
        let letter = prop::sample::select(LETTERS.chars().collect::<Vec<_>>());
        let word = prop::collection::vec(letter, 1..8).prop_map(String::from_iter);
        let separator = prop::sample::select(vec![" ", "-", "'", "\u{2019}", "  ", "\u{a0}"]);
        let rest = prop::collection::vec((separator, word.clone()), 0..4);
        (word, rest, "[ \n]{0,2}").prop_map(|(first, rest, pad)| {
            let body = rest
                .iter()
                .fold(first, |body, (sep, word)| body + sep + word);
            format!("{pad}{body}{pad}")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = RaceName::parse(&s);
        }

        #[test]
        fn display_reparses_to_an_equal_name_with_the_same_key(s in name_like()) {
            if let Ok(name) = RaceName::parse(&s) {
                let again = RaceName::parse(name.as_str());
                prop_assert_eq!(again.as_ref().map(RaceName::key), Ok(name.key()));
                prop_assert_eq!(again, Ok(name));
            }
        }

        #[test]
        fn changing_case_never_changes_the_key(s in name_like()) {
            if let Ok(name) = RaceName::parse(&s) {
                for changed in [name.as_str().to_uppercase(), name.as_str().to_lowercase()] {
                    if let Ok(other) = RaceName::parse(&changed) {
                        prop_assert_eq!(other.key(), name.key(), "{:?} vs {:?}", name, other);
                    }
                }
            }
        }
    }
}
