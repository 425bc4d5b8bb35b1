//! Turn reports: what each race can see, as structured data plus the mail text.
//!
//! A race sees its own planets and fleets, and anything within the scan range of them:
//! other planets' owners and industry, other races' fleets. Beyond that it knows the map
//! (names, positions, sizes) and nothing else. Standings are public.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::turn::{Battle, TurnLog};
use super::{Design, Game, Position, Production, Standing, text};

/// One race's report of one turn (`GET /reports/{race}/{turn}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The race.
    pub race: String,
    /// The turn it reports (0: the starting position).
    pub turn: u32,
    /// The report as plain text, for mail.
    pub text: String,
    /// Whether the race is still in the game.
    pub alive: bool,
    /// Whether the game is over.
    pub finished: bool,
    /// The winner, once finished with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// Every race's standing.
    pub standings: Vec<Standing>,
    /// The race's designs.
    pub designs: Vec<DesignView>,
    /// Every planet of the map, with details where the race can see them.
    pub planets: Vec<PlanetView>,
    /// The race's fleets and the other fleets it can see.
    pub fleets: Vec<FleetView>,
    /// Battles the race fought in or that happened at its planets.
    pub battles: Vec<Battle>,
    /// What happened to the race this turn, plus public news.
    pub events: Vec<String>,
}

/// A design and its cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesignView {
    /// The design's name.
    pub name: String,
    /// Its characteristics.
    #[serde(flatten)]
    pub design: Design,
    /// Production points per ship.
    pub cost: u32,
}

/// A planet as the race sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanetView {
    /// The planet's id (used in orders).
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Map position.
    pub x: u32,
    /// Map position.
    pub y: u32,
    /// The most industry it can hold.
    pub size: u32,
    /// Within the race's scan range (or its own): owner and industry are known.
    pub visible: bool,
    /// The owner, when visible (`None`: neutral, or unknown when not visible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Its industry, when visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<u32>,
    /// What it builds, on the race's own planets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<Production>,
    /// Production points carried over, on the race's own planets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u32>,
}

/// A fleet as the race sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetView {
    /// The fleet's id (used in orders, for the race's own fleets).
    pub id: u32,
    /// The owning race.
    pub owner: String,
    /// Ship counts by design name.
    pub ships: BTreeMap<String, u32>,
    /// Map position (one decimal).
    pub x: f64,
    /// Map position (one decimal).
    pub y: f64,
    /// The planet it orbits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u32>,
    /// Where it left, when travelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
    /// Where it goes, when travelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// Its speed, for the race's own fleets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
    /// Turns until arrival, for the race's own travelling fleets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<u32>,
}

/// Every race's report of the game's current turn.
pub fn all(game: &Game, log: &TurnLog) -> BTreeMap<String, Report> {
    game.races
        .iter()
        .map(|race| (race.name.clone(), one(game, log, &race.name)))
        .collect()
}

/// One race's report of the current turn.
fn one(game: &Game, log: &TurnLog, race: &str) -> Report {
    let own = |owner: &str| owner == race;
    let range = f64::from(game.settings.scan_range);
    let eyes: Vec<(f64, f64)> = game
        .planets
        .iter()
        .filter(|p| p.owner.as_deref() == Some(race))
        .map(|p| (f64::from(p.x), f64::from(p.y)))
        .chain(
            game.fleets
                .values()
                .filter(|f| own(&f.owner))
                .map(|f| game.fleet_xy(f)),
        )
        .collect();
    let sees = |(x, y): (f64, f64)| eyes.iter().any(|(ex, ey)| (ex - x).hypot(ey - y) <= range);

    let planets = game
        .planets
        .iter()
        .map(|p| {
            let mine = p.owner.as_deref() == Some(race);
            let visible = mine || sees((f64::from(p.x), f64::from(p.y)));
            PlanetView {
                id: p.id,
                name: p.name.clone(),
                x: p.x,
                y: p.y,
                size: p.size,
                visible,
                owner: p.owner.clone().filter(|_| visible),
                industry: visible.then_some(p.industry),
                production: mine.then(|| p.production.clone()),
                progress: mine.then_some(p.progress),
            }
        })
        .collect();

    let fleets = game
        .fleets
        .values()
        .filter(|f| own(&f.owner) || sees(game.fleet_xy(f)))
        .map(|f| {
            let (x, y) = game.fleet_xy(f);
            let mine = own(&f.owner);
            let speed = game.fleet_speed(f);
            let (at, from, to, eta) = match &f.position {
                Position::At { planet } => (Some(*planet), None, None, None),
                Position::Moving {
                    from,
                    to,
                    travelled,
                } => {
                    let left = (game.distance(*from, *to) - travelled).max(0.0);
                    let eta = (speed > 0).then(|| (left / f64::from(speed)).ceil() as u32);
                    (None, Some(*from), Some(*to), eta.filter(|_| mine))
                }
            };
            FleetView {
                id: f.id,
                owner: f.owner.clone(),
                ships: f.ships.clone(),
                x: (x * 10.0).round() / 10.0,
                y: (y * 10.0).round() / 10.0,
                at,
                from,
                to,
                speed: mine.then_some(speed),
                eta,
            }
        })
        .collect();

    let told = |audience: &[String]| audience.is_empty() || audience.iter().any(|a| a == race);
    let designs = game
        .race(race)
        .map(|r| {
            r.designs
                .iter()
                .map(|(name, d)| DesignView {
                    name: name.clone(),
                    design: *d,
                    cost: d.cost(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut report = Report {
        race: race.to_owned(),
        turn: game.turn,
        text: String::new(),
        alive: game.race(race).is_some_and(|r| r.alive),
        finished: game.finished,
        winner: game.winner.clone(),
        standings: game.standings(),
        designs,
        planets,
        fleets,
        battles: log
            .battles
            .iter()
            .filter(|b| told(&b.audience))
            .cloned()
            .collect(),
        events: log
            .events
            .iter()
            .filter(|e| told(&e.audience))
            .map(|e| e.text.clone())
            .collect(),
    };
    report.text = text::render(&report);
    report
}
