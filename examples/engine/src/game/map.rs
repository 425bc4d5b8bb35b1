//! Seeded map generation: home planets evenly spaced on a ring, one small neutral
//! planet near each home (so every race can expand at once), the rest scattered.

use std::collections::BTreeSet;
use std::f64::consts::TAU;

use super::{Planet, Production, Race, Rng, Settings, distance};

/// Syllables of generated planet names.
const SYLLABLES: [&str; 24] = [
    "al", "be", "cor", "da", "el", "fa", "gor", "hi", "ix", "ka", "lo", "mi", "nor", "ob", "pa",
    "qu", "ra", "sol", "tu", "ur", "ve", "wy", "xa", "ze",
];

/// Closest two planets may be, in map units.
const MIN_SEPARATION: f64 = 4.0;

/// Builds the map of a new game from its seed (random stream 0).
pub(super) fn generate(seed: u64, settings: &Settings, races: &[Race]) -> Vec<Planet> {
    let mut rng = Rng::new(seed, 0);
    let count = races.len().max(1) as f64;
    let total = count * f64::from(settings.planets_per_race + 1);
    // Roughly 150 square units per planet keeps neighbours a few turns apart.
    let side = (total * 150.0).sqrt().max(30.0).round();
    let centre = side / 2.0;
    let radius = side * 0.38;
    let offset = rng.unit() * TAU;
    let mut names = BTreeSet::new();
    let mut planets: Vec<Planet> = Vec::new();

    for (i, race) in races.iter().enumerate() {
        let angle = offset + TAU * i as f64 / count;
        let x = (centre + radius * angle.cos()).round() as u32;
        let y = (centre + radius * angle.sin()).round() as u32;
        let id = planets.len() as u32;
        planets.push(Planet {
            id,
            name: name(&mut rng, &mut names),
            x,
            y,
            size: 100,
            owner: Some(race.name.clone()),
            industry: settings.home_industry,
            production: Production::Industry,
            progress: 0,
        });
    }
    let homes: Vec<(u32, u32)> = planets.iter().map(|p| (p.x, p.y)).collect();
    for home in homes.iter().filter(|_| settings.planets_per_race > 0) {
        let spot = place(&mut rng, &planets, side, Some((*home, 6.0, 10.0)));
        push_neutral(&mut rng, &mut planets, &mut names, spot, (20, 40));
    }
    let remaining = races.len() as u32 * settings.planets_per_race.saturating_sub(1);
    for _ in 0..remaining {
        let spot = place(&mut rng, &planets, side, None);
        push_neutral(&mut rng, &mut planets, &mut names, spot, (10, 80));
    }
    planets
}

/// Adds a neutral planet of a random size at `spot`.
fn push_neutral(
    rng: &mut Rng,
    planets: &mut Vec<Planet>,
    names: &mut BTreeSet<String>,
    spot: (u32, u32),
    size: (u32, u32),
) {
    let id = planets.len() as u32;
    planets.push(Planet {
        id,
        name: name(rng, names),
        x: spot.0,
        y: spot.1,
        size: rng.range(size.0, size.1),
        owner: None,
        industry: 0,
        production: Production::Industry,
        progress: 0,
    });
}

/// A free spot: anywhere on the map, or in a ring (min..max) around a point. Gives up
/// on separation after a bounded number of tries (a crowded map is still a map).
fn place(
    rng: &mut Rng,
    planets: &[Planet],
    side: f64,
    near: Option<((u32, u32), f64, f64)>,
) -> (u32, u32) {
    let mut spot = (0, 0);
    for _ in 0..200 {
        spot = match near {
            Some((centre, min, max)) => {
                let angle = rng.unit() * TAU;
                let r = min + rng.unit() * (max - min);
                let x = (f64::from(centre.0) + r * angle.cos()).clamp(0.0, side);
                let y = (f64::from(centre.1) + r * angle.sin()).clamp(0.0, side);
                (x.round() as u32, y.round() as u32)
            }
            None => {
                let x = (rng.unit() * side).round() as u32;
                let y = (rng.unit() * side).round() as u32;
                (x, y)
            }
        };
        if planets
            .iter()
            .all(|p| distance((p.x, p.y), spot) >= MIN_SEPARATION)
        {
            break;
        }
    }
    spot
}

/// A fresh planet name of two or three syllables.
fn name(rng: &mut Rng, taken: &mut BTreeSet<String>) -> String {
    loop {
        let syllables = rng.range(2, 3);
        let mut name = String::new();
        for _ in 0..syllables {
            name.push_str(SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize]);
        }
        let mut chars = name.chars();
        let name = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
            None => continue,
        };
        if taken.insert(name.clone()) {
            return name;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Game, Settings};

    fn game(seed: u64, races: usize) -> Game {
        let races = (0..races)
            .map(|i| (format!("R{i}"), format!("p{i}")))
            .collect();
        Game::new("g".into(), seed, Settings::default(), races)
    }

    #[test]
    fn the_map_follows_from_the_seed() {
        assert_eq!(game(9, 4).planets, game(9, 4).planets);
        assert_ne!(game(9, 4).planets, game(10, 4).planets);
    }

    #[test]
    fn every_race_has_a_home_and_names_are_unique() {
        let g = game(3, 6);
        assert_eq!(g.planets.len(), 6 * 6);
        for race in &g.races {
            let homes = g
                .planets
                .iter()
                .filter(|p| p.owner.as_ref() == Some(&race.name));
            assert_eq!(homes.count(), 1);
        }
        let names: std::collections::BTreeSet<_> = g.planets.iter().map(|p| &p.name).collect();
        assert_eq!(names.len(), g.planets.len());
        for (i, p) in g.planets.iter().enumerate() {
            assert_eq!(p.id as usize, i);
        }
    }
}
