//! Combat and conquest: battles wherever hostile ships meet (rounds of simultaneous,
//! seeded shots), then colonisation and invasion of planets left to one race.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::turn::TurnLog;
use super::{Design, Game, Position, Production, Rng};

/// Most rounds of one battle; a stalemate (nobody able to hurt anybody) ends sooner.
const MAX_ROUNDS: u32 = 30;

/// All ships of one design of one race in a battle.
#[derive(Debug, Clone)]
pub(super) struct Group {
    /// The race.
    pub race: String,
    /// The design's name.
    pub design: String,
    /// The design's characteristics.
    pub stats: Design,
    /// Ships still in the fight.
    pub count: u32,
}

/// Fights until at most one race has ships left, nobody can shoot, or the round limit.
/// Counts are reduced in place; returns the number of rounds fought.
///
/// In each round every ship with attack fires once at an enemy ship drawn uniformly from
/// those alive at the start of the round; it destroys it with probability
/// attack / (attack + target defence). Losses apply at the end of the round, so the order
/// of groups gives nobody the first shot.
pub(super) fn fight(groups: &mut [Group], rng: &mut Rng) -> u32 {
    let mut rounds = 0;
    while rounds < MAX_ROUNDS && can_fight(groups) {
        rounds += 1;
        let counts: Vec<u32> = groups.iter().map(|g| g.count).collect();
        let mut kills = vec![0u32; groups.len()];
        for (shooter, group) in groups.iter().enumerate() {
            if group.stats.attack == 0 || counts[shooter] == 0 {
                continue;
            }
            let enemies: Vec<usize> = (0..groups.len())
                .filter(|j| groups[*j].race != group.race && counts[*j] > 0)
                .collect();
            let total: u64 = enemies.iter().map(|j| u64::from(counts[*j])).sum();
            for _ in 0..counts[shooter] {
                let mut pick = rng.below(total);
                let mut target = None;
                for j in &enemies {
                    let n = u64::from(counts[*j]);
                    if pick < n {
                        target = Some(*j);
                        break;
                    }
                    pick -= n;
                }
                let Some(target) = target else { break };
                let attack = u64::from(group.stats.attack);
                let defence = u64::from(groups[target].stats.defence);
                if rng.below(attack + defence) < attack {
                    kills[target] += 1;
                }
            }
        }
        for (group, killed) in groups.iter_mut().zip(kills) {
            group.count -= killed.min(group.count);
        }
    }
    rounds
}

/// At least two races have ships and one of them can shoot.
fn can_fight(groups: &[Group]) -> bool {
    let alive: Vec<&Group> = groups.iter().filter(|g| g.count > 0).collect();
    let Some(first) = alive.first() else {
        return false;
    };
    let two_sides = alive.iter().any(|g| g.race != first.race);
    two_sides && alive.iter().any(|g| g.stats.attack > 0)
}

/// A battle, as its participants see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Battle {
    /// Where.
    pub planet: u32,
    /// The planet's name.
    pub planet_name: String,
    /// Rounds fought.
    pub rounds: u32,
    /// Ships present at the start, by race and design.
    pub ships: BTreeMap<String, BTreeMap<String, u32>>,
    /// Ships destroyed, by race and design.
    pub losses: BTreeMap<String, BTreeMap<String, u32>>,
    /// Races told about it: the fighters and the planet's owner.
    #[serde(skip)]
    pub audience: Vec<String>,
}

impl Game {
    /// Races present at each planet, by planet (fleets in id order).
    fn presence(&self) -> BTreeMap<u32, BTreeSet<String>> {
        let mut at: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        for fleet in self.fleets.values() {
            if let Position::At { planet } = fleet.position {
                at.entry(planet).or_default().insert(fleet.owner.clone());
            }
        }
        at
    }

    /// A battle wherever ships of two races or more orbit the same planet.
    pub(super) fn battles(&mut self, rng: &mut Rng, log: &mut TurnLog) {
        for (planet, races) in self.presence() {
            if races.len() < 2 {
                continue;
            }
            let mut ships: BTreeMap<(String, String), u32> = BTreeMap::new();
            for f in self
                .fleets
                .values()
                .filter(|f| f.position == Position::At { planet })
            {
                for (design, n) in &f.ships {
                    let total = ships.entry((f.owner.clone(), design.clone())).or_default();
                    *total = total.saturating_add(*n);
                }
            }
            let mut groups: Vec<Group> = ships
                .iter()
                .map(|((race, design), count)| {
                    let stats = self
                        .race(race)
                        .and_then(|r| r.designs.get(design))
                        .copied()
                        .unwrap_or_default();
                    Group {
                        race: race.clone(),
                        design: design.clone(),
                        stats,
                        count: *count,
                    }
                })
                .collect();
            let rounds = fight(&mut groups, rng);
            let mut battle = Battle {
                planet,
                planet_name: self
                    .planet(planet)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                rounds,
                ships: BTreeMap::new(),
                losses: BTreeMap::new(),
                audience: races.iter().cloned().collect(),
            };
            for g in &groups {
                let before = ships
                    .get(&(g.race.clone(), g.design.clone()))
                    .copied()
                    .unwrap_or(0);
                battle
                    .ships
                    .entry(g.race.clone())
                    .or_default()
                    .insert(g.design.clone(), before);
                if before > g.count {
                    let lost = before - g.count;
                    battle
                        .losses
                        .entry(g.race.clone())
                        .or_default()
                        .insert(g.design.clone(), lost);
                    self.remove_ships(planet, &g.race, &g.design, lost);
                }
            }
            if let Some(owner) = self.planet(planet).and_then(|p| p.owner.clone())
                && !battle.audience.contains(&owner)
            {
                battle.audience.push(owner);
            }
            log.battles.push(battle);
        }
    }

    /// Removes `count` ships of a design from a race's fleets at a planet, lowest id first.
    pub(super) fn remove_ships(&mut self, planet: u32, race: &str, design: &str, mut count: u32) {
        for fleet in self.fleets.values_mut() {
            if count == 0 {
                break;
            }
            if fleet.owner != race || fleet.position != (Position::At { planet }) {
                continue;
            }
            if let Some(have) = fleet.ships.get_mut(design) {
                let taken = count.min(*have);
                *have -= taken;
                count -= taken;
            }
            fleet.ships.retain(|_, n| *n > 0);
        }
        self.fleets.retain(|_, f| !f.ships.is_empty());
    }

    /// Colonisation and invasion: a race alone at a planet that is not its own lands
    /// one cargo ship (the largest cargo) and takes the planet.
    pub(super) fn settle(&mut self, log: &mut TurnLog) {
        for (planet, races) in self.presence() {
            let mut only = races.into_iter();
            let (Some(race), None) = (only.next(), only.next()) else {
                continue;
            };
            let Some(p) = self.planet(planet) else {
                continue;
            };
            if p.owner.as_deref() == Some(race.as_str()) {
                continue;
            }
            let Some(designs) = self.race(&race).map(|r| r.designs.clone()) else {
                continue;
            };
            let lander = self
                .fleets
                .values()
                .filter(|f| f.owner == race && f.position == Position::At { planet })
                .flat_map(|f| f.ships.keys())
                .filter_map(|d| designs.get(d).map(|s| (s.cargo, d.clone())))
                .filter(|(cargo, _)| *cargo > 0)
                .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
            let Some((cargo, design)) = lander else {
                continue;
            };
            self.remove_ships(planet, &race, &design, 1);
            let Some(p) = self.planets.get_mut(planet as usize) else {
                continue;
            };
            let previous = p.owner.replace(race.clone());
            p.industry = match previous {
                None => cargo.min(p.size),
                Some(_) => (p.industry / 2).max(1),
            };
            p.production = Production::Industry;
            p.progress = 0;
            let name = p.name.clone();
            match previous {
                None => log.tell(&[&race], format!("{race} colonised {name} (#{planet}).")),
                Some(old) => log.tell(
                    &[&race, &old],
                    format!("{race} invaded {name} (#{planet}), taking it from {old}."),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Design, Rng};
    use super::{Group, fight};

    fn group(race: &str, attack: u32, defence: u32, count: u32) -> Group {
        Group {
            race: race.into(),
            design: format!("{race}-ship"),
            stats: Design {
                attack,
                defence,
                speed: 1,
                cargo: 0,
            },
            count,
        }
    }

    #[test]
    fn the_stronger_side_wins_and_the_result_follows_the_seed() {
        let run = |seed| {
            let mut groups = vec![group("A", 6, 6, 20), group("B", 1, 1, 10)];
            let rounds = fight(&mut groups, &mut Rng::new(seed, 1));
            (rounds, groups[0].count, groups[1].count)
        };
        let (rounds, a, b) = run(5);
        assert!(rounds >= 1);
        assert_eq!(b, 0);
        assert!(a > 10);
        assert_eq!(run(5), run(5));
    }

    #[test]
    fn unarmed_ships_do_not_fight_and_one_side_alone_does_not_fight() {
        let mut unarmed = vec![group("A", 0, 1, 3), group("B", 0, 5, 3)];
        assert_eq!(fight(&mut unarmed, &mut Rng::new(1, 1)), 0);
        let mut alone = vec![group("A", 5, 1, 3), group("A", 1, 1, 3)];
        assert_eq!(fight(&mut alone, &mut Rng::new(1, 1)), 0);
        let mut empty: Vec<Group> = Vec::new();
        assert_eq!(fight(&mut empty, &mut Rng::new(1, 1)), 0);
    }
}
