//! Turn resolution: orders, movement, combat, colonisation, production, elimination,
//! the end of the game. Each phase is a method on [`Game`], run in a fixed order.

use std::collections::{BTreeMap, BTreeSet};

pub use super::combat::Battle;
use super::{Fleet, Game, Order, Position, Production, Report, Rng, report};

/// Production points one point of industry costs.
pub const INDUSTRY_COST: u32 = 4;
/// Most ships one planet builds in one turn.
const MAX_SHIPS_PER_TURN: u32 = 1000;

/// What happened during a turn, for the reports.
#[derive(Debug, Default)]
pub struct TurnLog {
    /// Messages and who may read them.
    pub events: Vec<Event>,
    /// Battles fought.
    pub battles: Vec<Battle>,
}

/// One message of a report.
#[derive(Debug)]
pub struct Event {
    /// The races told (empty: every race).
    pub audience: Vec<String>,
    /// The message.
    pub text: String,
}

impl TurnLog {
    pub(super) fn tell(&mut self, audience: &[&str], text: String) {
        let audience = audience.iter().map(|s| (*s).to_owned()).collect();
        self.events.push(Event { audience, text });
    }
}

impl Game {
    /// Runs the next turn and returns every race's report of it.
    pub fn run_turn(&mut self) -> BTreeMap<String, Report> {
        let mut log = TurnLog::default();
        self.turn += 1;
        let mut rng = Rng::new(self.seed, u64::from(self.turn));
        let orders = std::mem::take(&mut self.orders);
        let alive: Vec<String> = self
            .races
            .iter()
            .filter(|r| r.alive)
            .map(|r| r.name.clone())
            .collect();
        let orders: Vec<(&String, &Order)> = alive
            .iter()
            .flat_map(|race| {
                orders
                    .get(race)
                    .into_iter()
                    .flatten()
                    .map(move |o| (race, o))
            })
            .collect();
        for (race, order) in &orders {
            self.apply_standing_order(race, order);
        }
        for (race, order) in &orders {
            if let Order::Move { fleet, to, ships } = order {
                self.depart(race, *fleet, *to, ships.as_ref());
            }
        }
        self.advance(&mut log);
        self.battles(&mut rng, &mut log);
        self.settle(&mut log);
        self.produce(&mut log);
        self.merge_fleets();
        self.eliminate(&mut log);
        self.check_end(&mut log);
        report::all(self, &log)
    }

    /// Designs and production orders.
    fn apply_standing_order(&mut self, race: &str, order: &Order) {
        let (planet, production) = match order {
            Order::Design {
                name,
                attack,
                defence,
                speed,
                cargo,
            } => {
                if let Some(r) = self.races.iter_mut().find(|r| r.name == race) {
                    let design = super::Design {
                        attack: *attack,
                        defence: *defence,
                        speed: *speed,
                        cargo: *cargo,
                    };
                    r.designs.entry(name.clone()).or_insert(design);
                }
                return;
            }
            Order::BuildIndustry { planet } => (*planet, Production::Industry),
            Order::BuildShips { planet, design } => (
                *planet,
                Production::Ships {
                    design: design.clone(),
                },
            ),
            Order::Move { .. } => return,
        };
        if let Some(p) = self.planets.get_mut(planet as usize)
            && p.owner.as_deref() == Some(race)
            && p.production != production
        {
            p.production = production;
            p.progress = 0;
        }
    }

    /// Sends a fleet, or the named ships of it as a new fleet, towards `to`.
    fn depart(&mut self, race: &str, id: u32, to: u32, ships: Option<&BTreeMap<String, u32>>) {
        let Some(fleet) = self.fleets.get(&id).filter(|f| f.owner == race) else {
            return;
        };
        let Position::At { planet: from } = fleet.position else {
            return;
        };
        if self.planet(to).is_none() || to == from {
            return;
        }
        let moving = Position::Moving {
            from,
            to,
            travelled: 0.0,
        };
        let subset: BTreeMap<String, u32> = match ships {
            None => fleet.ships.clone(),
            Some(wanted) => wanted
                .iter()
                .filter_map(|(d, n)| Some((d.clone(), (*n).min(*fleet.ships.get(d)?))))
                .filter(|(_, n)| *n > 0)
                .collect(),
        };
        if subset.is_empty() {
            return;
        }
        let candidate = Fleet {
            id: self.next_fleet_id,
            owner: race.to_owned(),
            ships: subset,
            position: moving,
        };
        if self.fleet_speed(&candidate) == 0 {
            return;
        }
        if candidate.ships == fleet.ships {
            if let Some(f) = self.fleets.get_mut(&id) {
                f.position = candidate.position;
            }
            return;
        }
        if let Some(f) = self.fleets.get_mut(&id) {
            for (design, n) in &candidate.ships {
                if let Some(have) = f.ships.get_mut(design) {
                    *have -= n;
                }
            }
            f.ships.retain(|_, n| *n > 0);
        }
        self.next_fleet_id += 1;
        self.fleets.insert(candidate.id, candidate);
    }

    /// Moves every travelling fleet by its speed.
    fn advance(&mut self, log: &mut TurnLog) {
        let speeds: Vec<(u32, f64)> = self
            .fleets
            .values()
            .map(|f| (f.id, f64::from(self.fleet_speed(f))))
            .collect();
        for (id, speed) in speeds {
            let Some(fleet) = self.fleets.get(&id) else {
                continue;
            };
            let Position::Moving {
                from,
                to,
                travelled,
            } = fleet.position
            else {
                continue;
            };
            let travelled = travelled + speed;
            let arrived = travelled >= self.distance(from, to);
            let name = self.planet(to).map(|p| p.name.clone()).unwrap_or_default();
            let owner = fleet.owner.clone();
            if let Some(fleet) = self.fleets.get_mut(&id) {
                fleet.position = if arrived {
                    Position::At { planet: to }
                } else {
                    Position::Moving {
                        from,
                        to,
                        travelled,
                    }
                };
            }
            if arrived {
                log.tell(&[&owner], format!("Fleet {id} arrived at {name} (#{to})."));
            }
        }
    }

    /// Every owned planet spends its industry on its production.
    fn produce(&mut self, log: &mut TurnLog) {
        for i in 0..self.planets.len() {
            let p = &self.planets[i];
            let Some(owner) = p.owner.clone() else {
                continue;
            };
            let (id, name, industry) = (p.id, p.name.clone(), p.industry);
            let design = match &p.production {
                Production::Industry => None,
                Production::Ships { design } => Some(design.clone()),
            };
            let cost = design
                .as_ref()
                .and_then(|d| self.race(&owner).and_then(|r| r.designs.get(d)))
                .map(super::Design::cost);
            let p = &mut self.planets[i];
            p.progress += industry;
            let Some((design, cost)) = design.zip(cost) else {
                let gained = p.progress / INDUSTRY_COST;
                p.progress %= INDUSTRY_COST;
                p.industry = (p.industry + gained).min(p.size);
                if p.industry == p.size {
                    p.progress = 0;
                }
                continue;
            };
            let built = (p.progress / cost).min(MAX_SHIPS_PER_TURN);
            p.progress -= built * cost;
            p.progress = p.progress.min(cost);
            if built > 0 {
                self.add_ships(&owner, id, &design, built);
                log.tell(&[&owner], format!("{name} (#{id}) built {built} {design}."));
            }
        }
    }

    /// Adds new ships to the race's fleet at a planet, or to a new fleet.
    fn add_ships(&mut self, race: &str, planet: u32, design: &str, count: u32) {
        let here = self
            .fleets
            .values_mut()
            .find(|f| f.owner == race && f.position == Position::At { planet });
        match here {
            Some(fleet) => {
                let ships = fleet.ships.entry(design.to_owned()).or_default();
                *ships = ships.saturating_add(count);
            }
            None => {
                let id = self.next_fleet_id;
                self.next_fleet_id += 1;
                let ships = BTreeMap::from([(design.to_owned(), count)]);
                let fleet = Fleet {
                    id,
                    owner: race.to_owned(),
                    ships,
                    position: Position::At { planet },
                };
                self.fleets.insert(id, fleet);
            }
        }
    }

    /// A race's fleets orbiting the same planet become one (the lowest id).
    fn merge_fleets(&mut self) {
        let mut first: BTreeMap<(String, u32), u32> = BTreeMap::new();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for f in self.fleets.values() {
            if let Position::At { planet } = f.position {
                let keep = *first.entry((f.owner.clone(), planet)).or_insert(f.id);
                if keep != f.id {
                    merged.push((f.id, keep));
                }
            }
        }
        for (gone, keep) in merged {
            let Some(gone) = self.fleets.remove(&gone) else {
                continue;
            };
            if let Some(keep) = self.fleets.get_mut(&keep) {
                for (design, n) in gone.ships {
                    let ships = keep.ships.entry(design).or_default();
                    *ships = ships.saturating_add(n);
                }
            }
        }
    }

    /// A race with neither planets nor ships is out.
    fn eliminate(&mut self, log: &mut TurnLog) {
        let turn = self.turn;
        let owners: BTreeSet<&str> = self
            .planets
            .iter()
            .filter_map(|p| p.owner.as_deref())
            .chain(self.fleets.values().map(|f| f.owner.as_str()))
            .collect();
        let out: Vec<String> = self
            .races
            .iter()
            .filter(|r| r.alive && !owners.contains(r.name.as_str()))
            .map(|r| r.name.clone())
            .collect();
        for race in self.races.iter_mut().filter(|r| out.contains(&r.name)) {
            race.alive = false;
            race.eliminated_on = Some(turn);
            log.tell(&[], format!("{} has been eliminated.", race.name));
        }
    }

    /// Ends the game: last race standing, or the turn limit (best score wins, no winner
    /// on a tie).
    fn check_end(&mut self, log: &mut TurnLog) {
        let alive: Vec<&str> = self
            .races
            .iter()
            .filter(|r| r.alive)
            .map(|r| r.name.as_str())
            .collect();
        if self.races.len() >= 2 && alive.len() <= 1 {
            self.winner = alive.first().map(|s| (*s).to_owned());
        } else if self.turn >= self.settings.max_turns {
            let standings = self.standings();
            let best = standings
                .iter()
                .filter(|s| s.alive)
                .map(|s| s.score)
                .fold(f64::MIN, f64::max);
            let top: Vec<&str> = standings
                .iter()
                .filter(|s| s.alive && s.score >= best)
                .map(|s| s.name.as_str())
                .collect();
            self.winner = match top.as_slice() {
                [only] => Some((*only).to_owned()),
                _ => None,
            };
        } else {
            return;
        }
        self.finished = true;
        let text = match &self.winner {
            Some(w) => format!("The game is over after turn {}. {w} wins.", self.turn),
            None => format!(
                "The game is over after turn {}, without a winner.",
                self.turn
            ),
        };
        log.tell(&[], text);
    }
}
