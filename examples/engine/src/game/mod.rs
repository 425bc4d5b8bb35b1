//! The game itself: its state, its creation from a seed, and (in submodules) orders,
//! turn resolution, combat and reports. Pure and synchronous: no I/O, no clock.

mod combat;
mod map;
pub mod orders;
pub mod report;
mod rng;
mod text;
mod text_orders;
mod turn;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use orders::Order;
pub use report::Report;
pub use rng::Rng;
pub use turn::{Battle, INDUSTRY_COST, TurnLog};

/// Longest accepted race name, in characters.
pub const MAX_RACE_NAME: usize = 64;
/// Largest number of races in one game.
pub const MAX_RACES: usize = 64;

/// Game settings, from the `settings` object of `/admin/init` (every key optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The game ends after this turn at the latest (1..=1000).
    pub max_turns: u32,
    /// Neutral planets generated per race (0..=20).
    pub planets_per_race: u32,
    /// How far a race sees from its planets and fleets (1..=1000 map units).
    pub scan_range: u32,
    /// Industry of every home planet at turn 0 (1..=100).
    pub home_industry: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_turns: 50,
            planets_per_race: 5,
            scan_range: 25,
            home_industry: 20,
        }
    }
}

impl Settings {
    /// Reads settings from init's JSON value (`null` means all defaults).
    pub fn parse(value: &serde_json::Value) -> Result<Self, Vec<String>> {
        let settings: Self = if value.is_null() {
            Self::default()
        } else {
            serde_json::from_value(value.clone()).map_err(|e| vec![format!("settings: {e}")])?
        };
        let mut errors = Vec::new();
        let mut check = |name: &str, value: u32, low: u32, high: u32| {
            if !(low..=high).contains(&value) {
                errors.push(format!(
                    "settings.{name} must be in {low}..={high}, got {value}"
                ));
            }
        };
        check("max_turns", settings.max_turns, 1, 1000);
        check("planets_per_race", settings.planets_per_race, 0, 20);
        check("scan_range", settings.scan_range, 1, 1000);
        check("home_industry", settings.home_industry, 1, 100);
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

/// A ship design: four characteristics traded off against one cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Design {
    /// Shots' strength: chance to destroy a target is attack / (attack + its defence).
    pub attack: u32,
    /// Resistance to enemy shots.
    pub defence: u32,
    /// Map units travelled per turn (0: the ship never leaves its planet).
    pub speed: u32,
    /// Colonists carried: a cargo ship can colonise or invade a planet.
    pub cargo: u32,
}

/// Largest value of any one design characteristic.
pub const MAX_DESIGN_VALUE: u32 = 20;

impl Design {
    /// Production points one ship of this design costs.
    pub fn cost(&self) -> u32 {
        5 + 3 * self.attack + 2 * self.defence + 2 * self.speed + 4 * self.cargo
    }
}

/// The designs every race starts with.
pub fn starting_designs() -> BTreeMap<String, Design> {
    let design = |attack, defence, speed, cargo| Design {
        attack,
        defence,
        speed,
        cargo,
    };
    BTreeMap::from([
        ("Scout".to_owned(), design(0, 1, 8, 0)),
        ("Colony Ship".to_owned(), design(0, 1, 4, 3)),
        ("Warship".to_owned(), design(4, 4, 4, 0)),
    ])
}

/// One player's race.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Race {
    /// Unique in the game; also the path segment of its orders and reports.
    pub name: String,
    /// The platform's player id, kept for reports and debugging only.
    pub player_id: String,
    /// False once the race has neither planets nor ships.
    pub alive: bool,
    /// The turn it was eliminated on.
    pub eliminated_on: Option<u32>,
    /// Its designs by name (the starting ones plus its own).
    pub designs: BTreeMap<String, Design>,
}

/// What an owned planet produces each turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "build", rename_all = "snake_case")]
pub enum Production {
    /// Raise the planet's industry (4 production points per point).
    Industry,
    /// Build ships of one of the owner's designs.
    Ships {
        /// The design's name.
        design: String,
    },
}

/// A planet on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planet {
    /// Its index in [`Game::planets`].
    pub id: u32,
    /// A generated name, unique in the game.
    pub name: String,
    /// Map position.
    pub x: u32,
    /// Map position.
    pub y: u32,
    /// The most industry the planet can hold.
    pub size: u32,
    /// The owning race, `None` for a neutral planet.
    pub owner: Option<String>,
    /// Production points per turn.
    pub industry: u32,
    /// What the owner builds here.
    pub production: Production,
    /// Production points carried over towards the next ship or industry point.
    pub progress: u32,
}

/// Where a fleet is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Position {
    /// Orbiting a planet.
    At {
        /// The planet.
        planet: u32,
    },
    /// Travelling between two planets.
    Moving {
        /// Where it left.
        from: u32,
        /// Where it goes.
        to: u32,
        /// Distance covered so far.
        travelled: f64,
    },
}

/// A group of one race's ships that moves together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    /// Unique in the game, never reused.
    pub id: u32,
    /// The owning race.
    pub owner: String,
    /// Ship counts by design name (never zero counts).
    pub ships: BTreeMap<String, u32>,
    /// Where it is.
    pub position: Position,
}

/// The whole state of one game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Game {
    /// The platform's game id; a second init must name the same one.
    pub game_id: String,
    /// The seed of every random draw.
    pub seed: u64,
    /// The settings in force.
    pub settings: Settings,
    /// The last completed turn (0 right after init).
    pub turn: u32,
    /// Whether the game is over.
    pub finished: bool,
    /// The winner, once finished with one.
    pub winner: Option<String>,
    /// The races, in init order.
    pub races: Vec<Race>,
    /// The map; a planet's id is its index.
    pub planets: Vec<Planet>,
    /// The fleets by id.
    pub fleets: BTreeMap<u32, Fleet>,
    /// The id the next new fleet gets.
    pub next_fleet_id: u32,
    /// Accepted orders for the next turn, by race.
    pub orders: BTreeMap<String, Vec<Order>>,
}

/// One race's standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    /// The race.
    pub name: String,
    /// Still in the game.
    pub alive: bool,
    /// Total industry plus a tenth of the production cost of its ships.
    pub score: f64,
}

impl Game {
    /// A new game at turn 0: the map generated from `seed`, a home planet per race.
    /// `races` are (race name, player id) pairs, already validated.
    pub fn new(
        game_id: String,
        seed: u64,
        settings: Settings,
        races: Vec<(String, String)>,
    ) -> Self {
        let races: Vec<Race> = races
            .into_iter()
            .map(|(name, player_id)| Race {
                name,
                player_id,
                alive: true,
                eliminated_on: None,
                designs: starting_designs(),
            })
            .collect();
        let planets = map::generate(seed, &settings, &races);
        Self {
            game_id,
            seed,
            settings,
            turn: 0,
            finished: false,
            winner: None,
            races,
            planets,
            fleets: BTreeMap::new(),
            next_fleet_id: 1,
            orders: BTreeMap::new(),
        }
    }

    /// The race called `name`.
    pub fn race(&self, name: &str) -> Option<&Race> {
        self.races.iter().find(|r| r.name == name)
    }

    /// A planet by id.
    pub fn planet(&self, id: u32) -> Option<&Planet> {
        self.planets.get(id as usize)
    }

    /// Distance between two planets (0 for an unknown id).
    pub fn distance(&self, a: u32, b: u32) -> f64 {
        match (self.planet(a), self.planet(b)) {
            (Some(a), Some(b)) => distance((a.x, a.y), (b.x, b.y)),
            _ => 0.0,
        }
    }

    /// A fleet's map position.
    pub fn fleet_xy(&self, fleet: &Fleet) -> (f64, f64) {
        match &fleet.position {
            Position::At { planet } => self.planet_xy(*planet),
            Position::Moving {
                from,
                to,
                travelled,
            } => {
                let (fx, fy) = self.planet_xy(*from);
                let (tx, ty) = self.planet_xy(*to);
                let total = self.distance(*from, *to);
                let t = if total > 0.0 {
                    (travelled / total).min(1.0)
                } else {
                    1.0
                };
                (fx + (tx - fx) * t, fy + (ty - fy) * t)
            }
        }
    }

    /// A planet's position as floats (origin for an unknown id).
    pub fn planet_xy(&self, id: u32) -> (f64, f64) {
        self.planet(id)
            .map_or((0.0, 0.0), |p| (f64::from(p.x), f64::from(p.y)))
    }

    /// The speed of a fleet: that of its slowest design.
    pub fn fleet_speed(&self, fleet: &Fleet) -> u32 {
        let designs = self.race(&fleet.owner).map(|r| &r.designs);
        fleet
            .ships
            .keys()
            .map(|d| designs.and_then(|ds| ds.get(d)).map_or(0, |d| d.speed))
            .min()
            .unwrap_or(0)
    }

    /// Every race's standing, in init order.
    pub fn standings(&self) -> Vec<Standing> {
        self.races
            .iter()
            .map(|race| Standing {
                name: race.name.clone(),
                alive: race.alive,
                score: self.score(race),
            })
            .collect()
    }

    /// Total industry plus a tenth of the production cost of the race's ships.
    fn score(&self, race: &Race) -> f64 {
        let industry: u64 = self
            .planets
            .iter()
            .filter(|p| p.owner.as_deref() == Some(race.name.as_str()))
            .map(|p| u64::from(p.industry))
            .sum();
        let ships: u64 = self
            .fleets
            .values()
            .filter(|f| f.owner == race.name)
            .flat_map(|f| f.ships.iter())
            .map(|(d, n)| u64::from(race.designs.get(d).map_or(0, Design::cost)) * u64::from(*n))
            .sum();
        (industry * 10 + ships) as f64 / 10.0
    }
}

/// Euclidean distance.
pub fn distance(a: (u32, u32), b: (u32, u32)) -> f64 {
    let dx = f64::from(a.0) - f64::from(b.0);
    let dy = f64::from(a.1) - f64::from(b.1);
    (dx * dx + dy * dy).sqrt()
}
