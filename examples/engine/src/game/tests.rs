//! Rule tests on the pure game: movement, colonisation, production, combat, invasion,
//! elimination, the end, visibility, and whole bot games.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::{Fleet, Game, Order, Position, Report, Settings};
use crate::bot;

fn game(races: &[&str], settings: Settings) -> Game {
    let races = races
        .iter()
        .map(|r| ((*r).to_owned(), format!("player-{r}")))
        .collect();
    Game::new("test".into(), 77, settings, races)
}

fn home(g: &Game, race: &str) -> u32 {
    g.planets
        .iter()
        .find(|p| p.owner.as_deref() == Some(race))
        .unwrap()
        .id
}

fn put_fleet(g: &mut Game, race: &str, planet: u32, ships: &[(&str, u32)]) -> u32 {
    let id = g.next_fleet_id;
    g.next_fleet_id += 1;
    let ships = ships.iter().map(|(d, n)| ((*d).to_owned(), *n)).collect();
    g.fleets.insert(
        id,
        Fleet {
            id,
            owner: race.into(),
            ships,
            position: Position::At { planet },
        },
    );
    id
}

fn order(g: &mut Game, race: &str, orders: Vec<Order>) {
    let json = serde_json::to_value(&orders).unwrap();
    let checked = super::orders::validate(g, race, &json).unwrap();
    g.orders.insert(race.to_owned(), checked);
}

#[test]
fn fleets_travel_by_speed_and_arrive() {
    let mut g = game(&["A", "B"], Settings::default());
    let start = home(&g, "A");
    let target = home(&g, "B");
    let fleet = put_fleet(&mut g, "A", start, &[("Scout", 1)]);
    order(
        &mut g,
        "A",
        vec![Order::Move {
            fleet,
            to: target,
            ships: None,
        }],
    );
    let turns = (g.distance(start, target) / 8.0).ceil() as u32;
    assert!(turns >= 2);
    for _ in 1..turns {
        g.run_turn();
        assert!(matches!(g.fleets[&fleet].position, Position::Moving { .. }));
    }
    let reports = g.run_turn();
    // A lone scout reaches B's home: no battle (it cannot shoot), no capture (no cargo).
    assert_eq!(g.fleets[&fleet].position, Position::At { planet: target });
    assert_eq!(g.planets[target as usize].owner.as_deref(), Some("B"));
    assert!(reports["A"].events.iter().any(|e| e.contains("arrived")));
}

#[test]
fn a_colony_ship_settles_a_neutral_planet_and_is_used_up() {
    let mut g = game(&["A", "B"], Settings::default());
    let start = home(&g, "A");
    // The first neutral planet generated lies near the first home.
    let target = 2;
    assert!(g.planets[target as usize].owner.is_none());
    let fleet = put_fleet(&mut g, "A", start, &[("Colony Ship", 1), ("Warship", 1)]);
    let ships = BTreeMap::from([("Colony Ship".to_owned(), 1)]);
    order(
        &mut g,
        "A",
        vec![Order::Move {
            fleet,
            to: target,
            ships: Some(ships),
        }],
    );
    for _ in 0..5 {
        g.run_turn();
    }
    let planet = &g.planets[target as usize];
    assert_eq!(planet.owner.as_deref(), Some("A"));
    assert!(
        planet.industry >= 3,
        "colonists, then growth: {}",
        planet.industry
    );
    let colony_ships: u32 = g
        .fleets
        .values()
        .filter_map(|f| f.ships.get("Colony Ship"))
        .sum();
    assert_eq!(colony_ships, 0);
    assert_eq!(
        g.fleets[&fleet].ships.get("Warship"),
        Some(&1),
        "the rest stayed home"
    );
}

#[test]
fn industry_grows_then_ships_are_built() {
    let mut g = game(&["A", "B"], Settings::default());
    let planet = home(&g, "A");
    g.run_turn();
    assert_eq!(
        g.planets[planet as usize].industry, 25,
        "20 points buy 5 industry"
    );
    order(
        &mut g,
        "A",
        vec![Order::BuildShips {
            planet,
            design: "Warship".into(),
        }],
    );
    g.run_turn();
    assert!(
        g.fleets.is_empty(),
        "25 points do not pay a 33-point warship"
    );
    let reports = g.run_turn();
    let built: u32 = g
        .fleets
        .values()
        .filter(|f| f.owner == "A")
        .filter_map(|f| f.ships.get("Warship"))
        .sum();
    assert_eq!(built, 1);
    assert_eq!(g.planets[planet as usize].progress, 50 - 33);
    assert!(
        reports["A"]
            .events
            .iter()
            .any(|e| e.contains("built 1 Warship"))
    );
    assert!(
        reports["B"].events.iter().all(|e| !e.contains("built")),
        "B is not told"
    );
}

#[test]
fn battles_are_seen_by_those_involved_only() {
    let settings = Settings {
        scan_range: 1,
        ..Settings::default()
    };
    let mut g = game(&["A", "B", "C"], settings);
    let b_home = home(&g, "B");
    put_fleet(&mut g, "A", b_home, &[("Warship", 10)]);
    put_fleet(&mut g, "B", b_home, &[("Scout", 2)]);
    let reports = g.run_turn();
    let scouts: u32 = g.fleets.values().filter_map(|f| f.ships.get("Scout")).sum();
    assert_eq!(scouts, 0, "ten warships destroy two scouts");
    assert_eq!(reports["A"].battles.len(), 1);
    assert_eq!(reports["B"].battles.len(), 1);
    assert_eq!(reports["B"].battles[0].losses["B"]["Scout"], 2);
    assert!(reports["C"].battles.is_empty());
    assert!(reports["A"].text.contains("Battles"));
}

#[test]
fn an_invaded_last_planet_eliminates_its_race_and_ends_the_game() {
    let mut g = game(&["A", "B"], Settings::default());
    let b_home = home(&g, "B");
    put_fleet(&mut g, "A", b_home, &[("Warship", 3), ("Colony Ship", 1)]);
    let reports = g.run_turn();
    let planet = &g.planets[b_home as usize];
    assert_eq!(planet.owner.as_deref(), Some("A"));
    assert_eq!(planet.industry, 12, "half of B's 25 after its production");
    assert!(!g.races[1].alive);
    assert_eq!(g.races[1].eliminated_on, Some(1));
    assert!(g.finished);
    assert_eq!(g.winner.as_deref(), Some("A"));
    let b = &reports["B"];
    assert!(!b.alive && b.finished);
    assert!(b.text.contains("eliminated"));
    assert!(b.events.iter().any(|e| e.contains("invaded")));
    assert_eq!(g.standings()[1].score, 0.0);
}

#[test]
fn the_turn_limit_ends_the_game_with_the_best_score_winning() {
    let settings = Settings {
        max_turns: 2,
        ..Settings::default()
    };
    let mut tie = game(&["A", "B"], settings.clone());
    tie.run_turn();
    assert!(!tie.finished);
    tie.run_turn();
    assert!(tie.finished);
    assert_eq!(tie.winner, None, "equal homes, equal scores");
    let mut ahead = game(&["A", "B"], settings);
    let planet = home(&ahead, "B");
    put_fleet(&mut ahead, "B", planet, &[("Scout", 1)]);
    ahead.run_turn();
    ahead.run_turn();
    assert_eq!(ahead.winner.as_deref(), Some("B"));
}

#[test]
fn a_report_shows_only_what_its_race_can_see() {
    let settings = Settings {
        scan_range: 5,
        ..Settings::default()
    };
    let mut g = game(&["A", "B"], settings);
    let (a_home, b_home) = (home(&g, "A"), home(&g, "B"));
    put_fleet(&mut g, "B", b_home, &[("Warship", 4)]);
    let reports = g.run_turn();
    let a = &reports["A"];
    let b_planet = a.planets.iter().find(|p| p.id == b_home).unwrap();
    assert!(!b_planet.visible);
    assert_eq!((b_planet.owner.as_ref(), b_planet.industry), (None, None));
    assert!(a.fleets.is_empty(), "B's fleet is out of sight");
    assert!(a.designs.iter().any(|d| d.name == "Warship"));
    let own = a.planets.iter().find(|p| p.id == a_home).unwrap();
    assert!(own.production.is_some());
    let b = &reports["B"];
    assert_eq!(b.fleets.len(), 1);
    assert!(b.fleets[0].speed.is_some());
    assert!(!b.text.contains("Other fleets in sight"));
}

/// Plays a whole game with bots; every bot submission must pass validation.
fn bot_game(seed: u64) -> (Game, Vec<BTreeMap<String, Report>>) {
    let settings = Settings {
        max_turns: 60,
        planets_per_race: 3,
        ..Settings::default()
    };
    let races = ["Ants", "Bees", "Cats", "Dogs"]
        .iter()
        .map(|r| ((*r).to_owned(), "p".to_owned()))
        .collect();
    let mut g = Game::new("bots".into(), seed, settings, races);
    let mut history = vec![super::report::all(&g, &super::TurnLog::default())];
    while !g.finished {
        let latest = history.last().unwrap().clone();
        for (race, report) in &latest {
            let orders = serde_json::to_value(bot::orders(report)).unwrap();
            let checked = super::orders::validate(&g, race, &orders);
            assert!(checked.is_ok(), "turn {}: {race}: {checked:?}", g.turn);
            g.orders.insert(race.clone(), checked.unwrap());
        }
        history.push(g.run_turn());
        assert!(g.turn <= 60);
    }
    (g, history)
}

#[test]
fn a_bot_game_ends_with_standings_and_replays_identically() {
    let (g, history) = bot_game(2024);
    assert!(g.finished);
    let standings = g.standings();
    assert_eq!(standings.len(), 4);
    assert!(standings.iter().any(|s| s.score > 0.0));
    let last = history.last().unwrap();
    assert!(
        last.values()
            .all(|r| r.finished && r.text.contains("The game is over"))
    );
    let fights: usize = history
        .iter()
        .flat_map(|t| t.values())
        .map(|r| r.battles.len())
        .sum();
    assert!(fights > 0, "bots meet and fight");
    let (again, replay) = bot_game(2024);
    assert_eq!(g, again);
    assert_eq!(history, replay);
    let (_, other) = bot_game(2025);
    assert_ne!(history[1], other[1]);
}
