//! A simple bot player: orders for the next turn from nothing but a race's report.
//! Used by the tests and the demo; it plays legally, not well.

use std::collections::{BTreeMap, BTreeSet};

use crate::game::report::{PlanetView, Report};
use crate::game::{Order, Production};

/// Industry a planet builds up before it builds ships.
const DEVELOPED: u32 = 50;
/// Warships gathered before they attack.
const STRIKE_FORCE: u32 = 3;

/// The bot's orders after reading `report` (an empty list once the race is out).
pub fn orders(report: &Report) -> Vec<Order> {
    if !report.alive || report.finished {
        return Vec::new();
    }
    let me = report.race.as_str();
    let cargo: BTreeSet<&str> = report
        .designs
        .iter()
        .filter(|d| d.design.cargo > 0)
        .map(|d| d.name.as_str())
        .collect();
    let armed: BTreeSet<&str> = report
        .designs
        .iter()
        .filter(|d| d.design.attack > 0)
        .map(|d| d.name.as_str())
        .collect();
    let mut orders = Vec::new();
    let mut targeted: BTreeSet<u32> = report
        .fleets
        .iter()
        .filter(|f| f.owner == me)
        .filter_map(|f| f.to)
        .collect();
    let mine: Vec<&PlanetView> = report
        .planets
        .iter()
        .filter(|p| p.owner.as_deref() == Some(me))
        .collect();
    let free_targets = report
        .planets
        .iter()
        .filter(|p| !p.visible || p.owner.is_none())
        .count();

    for (n, planet) in mine.iter().enumerate() {
        let wanted = if planet.industry.unwrap_or(0) < DEVELOPED.min(planet.size) {
            Production::Industry
        } else if (report.turn as usize + n).is_multiple_of(3) && free_targets > targeted.len() {
            Production::Ships {
                design: "Colony Ship".to_owned(),
            }
        } else {
            Production::Ships {
                design: "Warship".to_owned(),
            }
        };
        if planet.production.as_ref() != Some(&wanted) {
            orders.push(match wanted {
                Production::Industry => Order::BuildIndustry { planet: planet.id },
                Production::Ships { design } => Order::BuildShips {
                    planet: planet.id,
                    design,
                },
            });
        }
    }

    for fleet in report.fleets.iter().filter(|f| f.owner == me) {
        let Some(at) = fleet.at else { continue };
        let Some(here) = report.planets.iter().find(|p| p.id == at) else {
            continue;
        };
        let mut sending: BTreeMap<u32, BTreeMap<String, u32>> = BTreeMap::new();
        for (design, count) in fleet
            .ships
            .iter()
            .filter(|(d, _)| cargo.contains(d.as_str()))
        {
            for _ in 0..*count {
                let target = nearest(report, here, |p| {
                    (!p.visible || p.owner.as_deref() != Some(me)) && !targeted.contains(&p.id)
                });
                let Some(target) = target else { break };
                targeted.insert(target);
                *sending
                    .entry(target)
                    .or_default()
                    .entry(design.clone())
                    .or_default() += 1;
            }
        }
        let warships: BTreeMap<String, u32> = fleet
            .ships
            .iter()
            .filter(|(d, _)| armed.contains(d.as_str()))
            .map(|(d, n)| (d.clone(), *n))
            .collect();
        if warships.values().sum::<u32>() >= STRIKE_FORCE {
            let enemy = |p: &PlanetView| p.visible && p.owner.as_deref().is_some_and(|o| o != me);
            let target = nearest(report, here, enemy)
                .or_else(|| nearest(report, here, |p| p.owner.as_deref() != Some(me)));
            if let Some(target) = target {
                let group = sending.entry(target).or_default();
                for (design, n) in warships {
                    *group.entry(design).or_default() += n;
                }
            }
        }
        for (to, ships) in sending {
            orders.push(Order::Move {
                fleet: fleet.id,
                to,
                ships: Some(ships),
            });
        }
    }
    orders
}

/// The planet nearest to `from` (other than it) that matches, ties to the lower id.
fn nearest(
    report: &Report,
    from: &PlanetView,
    matches: impl Fn(&PlanetView) -> bool,
) -> Option<u32> {
    let d2 = |p: &PlanetView| {
        let dx = i64::from(p.x) - i64::from(from.x);
        let dy = i64::from(p.y) - i64::from(from.y);
        dx * dx + dy * dy
    };
    report
        .planets
        .iter()
        .filter(|p| p.id != from.id && matches(p))
        .min_by_key(|p| (d2(p), p.id))
        .map(|p| p.id)
}
