//! The standings over time as an SVG line chart (one line per race), drawn on the server:
//! no script, no inline style (the CSP allows neither), colours from the stylesheet.

use std::collections::BTreeMap;

use galaxy_core::domain::play::PlayedTurn;
use maud::{Markup, html};

use super::i18n::Text;

/// The drawing area inside the SVG's view box.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// The chart of `turns` (any order), with a legend and the last turn's table for screen
/// readers and keyboard users.
pub fn standings(turns: &[PlayedTurn], text: &Text) -> Markup {
    let mut series: BTreeMap<&str, Vec<(u32, f64)>> = BTreeMap::new();
    for turn in turns {
        for standing in &turn.standings {
            series
                .entry(standing.race.as_str())
                .or_default()
                .push((turn.turn, standing.score));
        }
    }
    for points in series.values_mut() {
        points.sort_by_key(|(turn, _)| *turn);
    }
    let first = turns.iter().map(|t| t.turn).min().unwrap_or(0);
    let last = turns.iter().map(|t| t.turn).max().unwrap_or(0);
    let top = series
        .values()
        .flatten()
        .map(|(_, score)| *score)
        .filter(|s| s.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let span = f64::from(last.saturating_sub(first).max(1));
    let x = |turn: u32| LEFT + f64::from(turn - first) / span * (WIDTH - LEFT - RIGHT);
    let y = |score: f64| {
        let score = if score.is_finite() {
            score.max(0.0)
        } else {
            0.0
        };
        TOP + (1.0 - score / top) * (HEIGHT - TOP - BOTTOM)
    };
    let latest = turns.iter().max_by_key(|t| t.turn);
    html! {
        svg.chart #standings-chart role="img" aria-labelledby="chart-title" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) xmlns="http://www.w3.org/2000/svg" {
            title #chart-title { (text.standings_title) }
            line.axis x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH - RIGHT) y2=(HEIGHT - BOTTOM) {}
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(HEIGHT - BOTTOM) {}
            text x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" { (format_score(top)) }
            text x=(LEFT - 4.0) y=(HEIGHT - BOTTOM) text-anchor="end" { "0" }
            text x=(LEFT) y=(HEIGHT - 8.0) { (first) }
            text x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (text.col_turn) " " (last) }
            @for (i, (race, points)) in series.iter().enumerate() {
                polyline class=(format!("c{}", i % 8)) data-race=(race)
                    points=(points.iter().map(|(t, s)| format!("{:.1},{:.1}", x(*t), y(*s))).collect::<Vec<_>>().join(" ")) {}
            }
        }
        ul.chart-legend {
            @for (i, race) in series.keys().enumerate() {
                li { span class=(format!("swatch c{}", i % 8)) aria-hidden="true" {} (race) }
            }
        }
        @if let Some(latest) = latest {
            div.table-wrap { table #standings-table {
                caption { (text.col_turn) " " (latest.turn) }
                thead { tr { th scope="col" { (text.col_race) } th scope="col" { (text.col_score) } } }
                tbody {
                    @for standing in &latest.standings {
                        tr { td { (standing.race) } td { (format_score(standing.score)) } }
                    }
                }
            } }
        }
    }
}

fn format_score(score: f64) -> String {
    if score.fract() == 0.0 && score.abs() < 1e15 {
        format!("{score:.0}")
    } else {
        format!("{score:.2}")
    }
}
