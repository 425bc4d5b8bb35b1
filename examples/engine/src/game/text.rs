//! The plain-text form of a report, the part that goes into mail.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use super::report::{FleetView, Report};
use super::{INDUSTRY_COST, Production};

/// Renders a report as plain text (everything the structured form says).
pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; the Result only satisfies `fmt::Write`.
    let _ = write_report(&mut out, report);
    out
}

fn write_report(out: &mut String, r: &Report) -> fmt::Result {
    let title = format!("Galaxy report for {}, turn {}", r.race, r.turn);
    writeln!(out, "{title}\n{}", "=".repeat(title.chars().count()))?;
    if !r.alive {
        writeln!(out, "Your race has been eliminated.")?;
    }
    if r.finished {
        match &r.winner {
            Some(w) => writeln!(out, "The game is over. Winner: {w}.")?,
            None => writeln!(out, "The game is over, without a winner.")?,
        }
    }

    writeln!(out, "\nStandings")?;
    for s in &r.standings {
        let status = if s.alive { "alive" } else { "eliminated" };
        writeln!(out, "  {:<24} {:<10} {:>8.1}", s.name, status, s.score)?;
    }

    if !r.events.is_empty() {
        writeln!(out, "\nEvents")?;
        for e in &r.events {
            writeln!(out, "  - {e}")?;
        }
    }

    if !r.battles.is_empty() {
        writeln!(out, "\nBattles")?;
        for b in &r.battles {
            writeln!(
                out,
                "  At {} (#{}), {} round(s):",
                b.planet_name, b.planet, b.rounds
            )?;
            for (race, ships) in &b.ships {
                let lost = b.losses.get(race);
                writeln!(
                    out,
                    "    {race}: had {}; lost {}",
                    ships_text(ships),
                    lost.map_or("nothing".into(), ships_text)
                )?;
            }
        }
    }

    writeln!(out, "\nYour designs")?;
    for d in &r.designs {
        let s = &d.design;
        writeln!(
            out,
            "  {:<20} attack {:>2}  defence {:>2}  speed {:>2}  cargo {:>2}  cost {:>3}",
            d.name, s.attack, s.defence, s.speed, s.cargo, d.cost
        )?;
    }

    writeln!(out, "\nYour planets")?;
    for p in r
        .planets
        .iter()
        .filter(|p| p.owner.as_deref() == Some(r.race.as_str()))
    {
        let building = match &p.production {
            Some(Production::Ships { design }) => format!("ships: {design}"),
            _ => format!("industry ({INDUSTRY_COST} points each)"),
        };
        writeln!(
            out,
            "  #{:<3} {:<12} ({:>3},{:>3}) size {:>3} industry {:>3}  building {building}, progress {}",
            p.id,
            p.name,
            p.x,
            p.y,
            p.size,
            p.industry.unwrap_or(0),
            p.progress.unwrap_or(0)
        )?;
    }

    writeln!(out, "\nYour fleets")?;
    let (mine, theirs): (Vec<&FleetView>, Vec<&FleetView>) =
        r.fleets.iter().partition(|f| f.owner == r.race);
    if mine.is_empty() {
        writeln!(out, "  none")?;
    }
    let names: BTreeMap<u32, &str> = r.planets.iter().map(|p| (p.id, p.name.as_str())).collect();
    for f in mine {
        write_fleet(out, f, &names)?;
    }
    if !theirs.is_empty() {
        writeln!(out, "\nOther fleets in sight")?;
        for f in theirs {
            write_fleet(out, f, &names)?;
        }
    }

    writeln!(out, "\nOther planets")?;
    for p in r
        .planets
        .iter()
        .filter(|p| p.owner.as_deref() != Some(r.race.as_str()))
    {
        let seen = match (&p.owner, p.visible) {
            (_, false) => "not in sight".to_owned(),
            (None, true) => "neutral".to_owned(),
            (Some(o), true) => format!("{o}, industry {}", p.industry.unwrap_or(0)),
        };
        writeln!(
            out,
            "  #{:<3} {:<12} ({:>3},{:>3}) size {:>3}  {seen}",
            p.id, p.name, p.x, p.y, p.size
        )?;
    }
    Ok(())
}

fn write_fleet(out: &mut String, f: &FleetView, names: &BTreeMap<u32, &str>) -> fmt::Result {
    let name = |id: u32| names.get(&id).copied().unwrap_or("?");
    let place = match (f.at, f.to) {
        (Some(at), _) => format!("at #{at} {}", name(at)),
        (None, Some(to)) => match f.eta {
            Some(eta) => format!(
                "to #{to} {}, now at ({}, {}), arriving in {eta} turn(s)",
                name(to),
                f.x,
                f.y
            ),
            None => format!("to #{to} {}, now at ({}, {})", name(to), f.x, f.y),
        },
        (None, None) => format!("at ({}, {})", f.x, f.y),
    };
    let owner = if f.speed.is_some() {
        String::new()
    } else {
        format!("{} ", f.owner)
    };
    writeln!(
        out,
        "  {owner}fleet {} {place}: {}",
        f.id,
        ships_text(&f.ships)
    )
}

fn ships_text(ships: &BTreeMap<String, u32>) -> String {
    let parts: Vec<String> = ships.iter().map(|(d, n)| format!("{n} {d}")).collect();
    parts.join(", ")
}
