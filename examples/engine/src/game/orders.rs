//! Orders: their JSON form and their validation against the current state.
//!
//! A submission is all or nothing: every order is checked, each bad one gets a reason,
//! and only a submission without any reason is stored.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Design, Game, MAX_DESIGN_VALUE, Position};

/// Most orders in one submission.
pub const MAX_ORDERS: usize = 500;
/// Most designs a race may own (the starting ones included).
pub const MAX_DESIGNS: usize = 32;
/// Longest design name, in characters.
pub const MAX_DESIGN_NAME: usize = 32;

/// One order, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Order {
    /// Adds a ship design (usable by production orders of the same submission).
    Design {
        /// Unique among the race's designs.
        name: String,
        /// 0..=20.
        attack: u32,
        /// 0..=20.
        defence: u32,
        /// 0..=20.
        speed: u32,
        /// 0..=20.
        cargo: u32,
    },
    /// Makes a planet raise its industry.
    BuildIndustry {
        /// The race's planet.
        planet: u32,
    },
    /// Makes a planet build ships of a design.
    BuildShips {
        /// The race's planet.
        planet: u32,
        /// One of the race's designs.
        design: String,
    },
    /// Sends an orbiting fleet, or some of its ships as a new fleet, to a planet.
    Move {
        /// The race's fleet, orbiting a planet.
        fleet: u32,
        /// The destination planet.
        to: u32,
        /// Ship counts by design to split off; absent means the whole fleet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ships: Option<BTreeMap<String, u32>>,
    },
}

/// Checks a submission for `race`: the JSON list of order objects, or the text form (a
/// string, one order per line, see [`super::text_orders`]); the parsed orders, or one
/// reason per bad order (`order N: ...`, numbered from 1; the text form adds the line).
pub fn validate(
    game: &Game,
    race: &str,
    orders: &serde_json::Value,
) -> Result<Vec<Order>, Vec<String>> {
    let items: Vec<(String, Result<serde_json::Value, String>)> = match orders {
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("order {}", i + 1), Ok(item.clone())))
            .collect(),
        serde_json::Value::String(text) => super::text_orders::parse(text)
            .into_iter()
            .enumerate()
            .map(|(i, o)| (format!("order {} (line {})", i + 1, o.line), o.order))
            .collect(),
        _ => {
            return Err(vec![
                "orders must be a JSON array of order objects or a string of order lines"
                    .to_owned(),
            ]);
        }
    };
    if items.len() > MAX_ORDERS {
        return Err(vec![format!(
            "at most {MAX_ORDERS} orders per submission, got {}",
            items.len()
        )]);
    }
    let Some(owner) = game.race(race) else {
        return Err(vec![format!("unknown race {race}")]);
    };
    let mut check = Checker {
        game,
        race,
        designs: owner.designs.clone(),
        producing: BTreeSet::new(),
        remaining: BTreeMap::new(),
    };
    let mut parsed = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let mut named_turn = false;
    for (label, item) in items {
        // `turn N` names the turn the orders are for: a mailed reply to an old report
        // must not become the orders of a later turn.
        if let Ok(item) = &item
            && item.get("kind").and_then(serde_json::Value::as_str) == Some("turn")
        {
            let next = game.turn + 1;
            match item.get("turn").and_then(serde_json::Value::as_u64) {
                _ if named_turn => errors.push(format!("{label}: the turn is named twice")),
                Some(turn) if turn == u64::from(next) => {}
                Some(turn) => errors.push(format!(
                    "{label}: these orders name turn {turn}, but the next turn is {next}"
                )),
                None => errors.push(format!("{label}: turn needs the turn's number")),
            }
            named_turn = true;
            continue;
        }
        let result = item.and_then(|item| {
            serde_json::from_value::<Order>(item)
                .map_err(|e| e.to_string())
                .and_then(|order| check.order(&order).map(|()| order))
        });
        match result {
            Ok(order) => parsed.push(order),
            Err(reason) => errors.push(format!("{label}: {reason}")),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// What the orders checked so far have claimed, so later orders are checked against it.
struct Checker<'a> {
    /// The state the orders apply to.
    game: &'a Game,
    /// The submitting race.
    race: &'a str,
    /// The race's designs plus those added by earlier orders.
    designs: BTreeMap<String, Design>,
    /// Planets that already have a production order.
    producing: BTreeSet<u32>,
    /// Ships of each ordered fleet not yet sent anywhere (`None`: the whole fleet left).
    remaining: BTreeMap<u32, Option<BTreeMap<String, u32>>>,
}

impl Checker<'_> {
    fn order(&mut self, order: &Order) -> Result<(), String> {
        match order {
            Order::Design {
                name,
                attack,
                defence,
                speed,
                cargo,
            } => {
                let design = Design {
                    attack: *attack,
                    defence: *defence,
                    speed: *speed,
                    cargo: *cargo,
                };
                self.design(name, design)
            }
            Order::BuildIndustry { planet } => self.production(*planet),
            Order::BuildShips { planet, design } => {
                self.production(*planet)?;
                if self.designs.contains_key(design) {
                    Ok(())
                } else {
                    Err(format!("unknown design {design:?}"))
                }
            }
            Order::Move { fleet, to, ships } => self.movement(*fleet, *to, ships.as_ref()),
        }
    }

    fn design(&mut self, name: &str, design: Design) -> Result<(), String> {
        let chars = name.chars().count();
        if name.trim() != name || chars == 0 || chars > MAX_DESIGN_NAME {
            return Err(format!(
                "a design name has 1..={MAX_DESIGN_NAME} characters and no surrounding spaces"
            ));
        }
        if name.chars().any(char::is_control) {
            return Err("a design name has no control characters".to_owned());
        }
        if self.designs.contains_key(name) {
            return Err(format!("design {name:?} already exists"));
        }
        if self.designs.len() >= MAX_DESIGNS {
            return Err(format!("a race has at most {MAX_DESIGNS} designs"));
        }
        let values = [design.attack, design.defence, design.speed, design.cargo];
        if values.iter().any(|v| *v > MAX_DESIGN_VALUE) {
            return Err(format!("design values are 0..={MAX_DESIGN_VALUE}"));
        }
        if design.attack + design.defence + design.cargo == 0 {
            return Err("a design needs attack, defence or cargo".to_owned());
        }
        self.designs.insert(name.to_owned(), design);
        Ok(())
    }

    fn production(&mut self, planet: u32) -> Result<(), String> {
        let Some(p) = self.game.planet(planet) else {
            return Err(format!("unknown planet {planet}"));
        };
        if p.owner.as_deref() != Some(self.race) {
            return Err(format!("planet {planet} ({}) is not yours", p.name));
        }
        if !self.producing.insert(planet) {
            return Err(format!("planet {planet} already has a production order"));
        }
        Ok(())
    }

    fn movement(
        &mut self,
        fleet_id: u32,
        to: u32,
        ships: Option<&BTreeMap<String, u32>>,
    ) -> Result<(), String> {
        let Some(fleet) = self
            .game
            .fleets
            .get(&fleet_id)
            .filter(|f| f.owner == self.race)
        else {
            return Err(format!("you have no fleet {fleet_id}"));
        };
        let Position::At { planet } = fleet.position else {
            return Err(format!(
                "fleet {fleet_id} is in flight and cannot change course"
            ));
        };
        if self.game.planet(to).is_none() {
            return Err(format!("unknown planet {to}"));
        }
        if to == planet {
            return Err(format!("fleet {fleet_id} is already at planet {to}"));
        }
        let entry = self
            .remaining
            .entry(fleet_id)
            .or_insert_with(|| Some(fleet.ships.clone()));
        let Some(left) = entry.as_mut() else {
            return Err(format!("fleet {fleet_id} has already been sent away whole"));
        };
        let sent = match ships {
            None => std::mem::take(left),
            Some(wanted) => {
                if wanted.is_empty() || wanted.values().any(|n| *n == 0) {
                    return Err(
                        "ships must name at least one design with a count above 0".to_owned()
                    );
                }
                for (design, n) in wanted {
                    let have = left.get(design).copied().unwrap_or(0);
                    if have < *n {
                        return Err(format!(
                            "fleet {fleet_id} has {have} unsent {design:?} ships, not {n}"
                        ));
                    }
                }
                for (design, n) in wanted {
                    if let Some(have) = left.get_mut(design) {
                        *have -= n;
                    }
                }
                left.retain(|_, n| *n > 0);
                wanted.clone()
            }
        };
        if ships.is_none() {
            *entry = None;
        }
        if sent.is_empty() {
            return Err(format!("fleet {fleet_id} has no ships left to send"));
        }
        let slowest = sent
            .keys()
            .map(|d| self.designs.get(d).map_or(0, |d| d.speed))
            .min()
            .unwrap_or(0);
        if slowest == 0 {
            return Err(format!("fleet {fleet_id}: ships of speed 0 cannot move"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::super::{Fleet, Game, Position, Settings};
    use super::validate;

    fn game() -> Game {
        let races = vec![("A".into(), "p1".into()), ("B".into(), "p2".into())];
        let mut g = Game::new("g".into(), 1, Settings::default(), races);
        g.fleets.insert(
            1,
            Fleet {
                id: 1,
                owner: "A".into(),
                ships: [("Warship".to_owned(), 3), ("Scout".to_owned(), 1)].into(),
                position: Position::At { planet: 0 },
            },
        );
        g.next_fleet_id = 2;
        g
    }

    #[test]
    fn good_orders_are_accepted() {
        let orders = json!([
            {"kind": "design", "name": "Raider", "attack": 6, "defence": 1, "speed": 9, "cargo": 0},
            {"kind": "build_ships", "planet": 0, "design": "Raider"},
            {"kind": "move", "fleet": 1, "to": 3, "ships": {"Warship": 2}},
            {"kind": "move", "fleet": 1, "to": 4},
        ]);
        let parsed = validate(&game(), "A", &orders).unwrap();
        assert_eq!(parsed.len(), 4);
        assert_eq!(validate(&game(), "A", &json!([])).unwrap(), vec![]);
    }

    #[test]
    fn each_bad_order_gets_a_reason() {
        let orders = json!([
            {"kind": "build_industry", "planet": 1},
            {"kind": "build_ships", "planet": 0, "design": "Nope"},
            {"kind": "move", "fleet": 1, "to": 0},
            {"kind": "move", "fleet": 9, "to": 2},
            {"kind": "move", "fleet": 1, "to": 2, "ships": {"Warship": 4}},
            {"kind": "design", "name": "Warship", "attack": 1, "defence": 1, "speed": 1, "cargo": 0},
            {"kind": "design", "name": "Big", "attack": 21, "defence": 1, "speed": 1, "cargo": 0},
            {"kind": "launch", "planet": 0},
            {"kind": "build_industry", "planet": 0, "extra": true},
            {"kind": "build_industry", "planet": 999},
            "not an object",
        ]);
        let errors = validate(&game(), "A", &orders).unwrap_err();
        assert_eq!(errors.len(), 11, "{errors:#?}");
        assert!(errors[0].starts_with("order 1: planet 1"), "{}", errors[0]);
        assert!(errors[1].contains("unknown design"), "{}", errors[1]);
        assert!(errors[2].contains("already at planet"), "{}", errors[2]);
        assert!(errors[3].contains("no fleet 9"), "{}", errors[3]);
        assert!(errors[4].contains("not 4"), "{}", errors[4]);
        assert!(errors[5].contains("already exists"), "{}", errors[5]);
        assert!(errors[6].contains("0..=20"), "{}", errors[6]);
        assert!(errors[7].contains("unknown variant"), "{}", errors[7]);
        assert!(errors[8].contains("unknown field"), "{}", errors[8]);
        assert!(errors[9].contains("unknown planet"), "{}", errors[9]);
    }

    #[test]
    fn a_whole_fleet_leaves_once_and_other_races_cannot_order_it() {
        let twice = json!([
            {"kind": "move", "fleet": 1, "to": 2},
            {"kind": "move", "fleet": 1, "to": 3},
            {"kind": "build_industry", "planet": 0},
            {"kind": "build_industry", "planet": 0},
        ]);
        let errors = validate(&game(), "A", &twice).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        let theirs = json!([{"kind": "move", "fleet": 1, "to": 2}]);
        assert!(validate(&game(), "B", &theirs).is_err());
        assert!(validate(&game(), "A", &json!({"kind": "move"})).is_err());
    }

    #[test]
    fn the_text_form_is_checked_like_the_json_form() {
        let text = json!(
            "design Raider 6 1 9 0\nbuild_ships 0 Raider\n# split\nmove 1 3 ships=Warship:2\nmove 1 4\n"
        );
        assert_eq!(validate(&game(), "A", &text).unwrap().len(), 4);
        let bad = json!("build_industry 0\n\nbuild_industry 999\nfly away\n");
        let errors = validate(&game(), "A", &bad).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("order 2 (line 3): "), "{errors:?}");
        assert!(
            errors[1].starts_with("order 3 (line 4): unknown order"),
            "{errors:?}"
        );
        assert_eq!(
            validate(&game(), "A", &json!("  \n# nothing\n")).unwrap(),
            vec![]
        );
    }

    #[test]
    fn orders_that_name_their_turn_are_taken_only_for_that_turn() {
        let game = game();
        let next = game.turn + 1;
        let right = json!(format!("turn {next}\nbuild_industry 0\n"));
        assert_eq!(validate(&game, "A", &right).unwrap().len(), 1);
        let json_form =
            json!([{"kind": "turn", "turn": next}, {"kind": "build_industry", "planet": 0}]);
        assert_eq!(validate(&game, "A", &json_form).unwrap().len(), 1);
        // A reply to an old report: its orders are not applied to a later turn.
        let stale = json!(format!("# orders\nturn {}\nbuild_industry 0\n", next + 7));
        let errors = validate(&game, "A", &stale).unwrap_err();
        assert_eq!(
            errors,
            vec![format!(
                "order 1 (line 2): these orders name turn {}, but the next turn is {next}",
                next + 7
            )]
        );
        let twice = json!(format!("turn {next}\nturn {next}\n"));
        let errors = validate(&game, "A", &twice).unwrap_err();
        assert!(errors[0].contains("named twice"), "{errors:?}");
        let bare = json!("turn\n");
        let errors = validate(&game, "A", &bare).unwrap_err();
        assert!(errors[0].contains("turn's number"), "{errors:?}");
    }
}
