//! Tests of the parent module.
#![allow(clippy::unwrap_used, clippy::expect_used)]
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
fn only_an_expired_claim_is_released_as_expired() {
    let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let name = RaceName::parse("Zorg").unwrap();
    let mut entry = RaceNameEntry::pending(
        name,
        UserId::from_uuid(Uuid::nil()),
        GameId::from_uuid(Uuid::nil()),
        ApplicationId::from_uuid(Uuid::nil()),
        now,
        TimeDelta::hours(1),
    );
    let before = entry.clone();
    let refused = entry.release_expired(now + TimeDelta::minutes(59));
    assert_eq!(
        refused.unwrap_err().to_string(),
        "status is pending_registration, not an expired claim"
    );
    assert_eq!(entry, before, "unchanged");
    let later = now + TimeDelta::hours(1);
    entry.release_expired(later).unwrap();
    assert_eq!(
        (entry.status, entry.expires_at, entry.updated_at),
        (RaceNameStatus::Released, None, later)
    );
    let mut registered = before.clone();
    registered.register(now).unwrap();
    assert_eq!(
        registered.release_expired(later + TimeDelta::days(9)),
        Err(NotExpired {
            status: RaceNameStatus::Registered
        })
    );
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
