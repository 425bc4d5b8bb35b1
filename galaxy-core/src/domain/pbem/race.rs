//! The platform's record of each race of a running game (who plays it, missed turns,
//! idle, ready mark, vacation, open seat), what it is for the coming turn, whether a
//! turn may run early, and each player's preferences.

use serde::{Deserialize, Serialize};

use crate::domain::{GameId, Timestamp, UserId};

/// What a race is, as every player of the game sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaceState {
    /// Played by its player.
    Active,
    /// Missed `idle_after` turns in a row; the engine plays it without orders.
    Idle,
    /// Its player is on vacation this turn.
    Vacation,
    /// Idle, and its host offers the seat to a replacement player.
    OpenSeat,
    /// Out of the game: the engine's latest standings have it no longer alive. It owes
    /// no orders and no turn waits for it. (Told from the standings, never stored.)
    Eliminated,
}

impl RaceState {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Idle => "idle",
            Self::Vacation => "vacation",
            Self::OpenSeat => "open_seat",
            Self::Eliminated => "eliminated",
        }
    }
}

/// A player's vacation in one game: the turns booked (current or coming; past ones are
/// kept until the next booking) and what is left of the game's budget, so a form or a
/// client offers only what a booking would accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vacation {
    /// The first turn of the vacation booked, if any.
    pub from: Option<u32>,
    /// Its last turn.
    pub until: Option<u32>,
    /// Vacation turns taken or booked so far in the game.
    pub used: u32,
    /// Vacation turns left to book.
    pub left: u32,
}

/// The platform's record of one race of a running game: who plays it, its missed turns,
/// vacation and seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceRecord {
    /// The game.
    pub game_id: GameId,
    /// The race (as the engine knows it; never changes).
    pub race: String,
    /// Who plays it now (a replacement player takes it over).
    pub user_id: UserId,
    /// Consecutive turns run without its orders (vacation turns do not count).
    pub missed_turns: u32,
    /// Whether it went idle (and has not sent orders since).
    pub idle: bool,
    /// The turn whose tally made it idle, while the notice of it (`race_idle`, to its
    /// player and the host) is still owed: set by the tally in the same write as `idle`,
    /// cleared once the notice is raised ([`PbemStore::idle_notice_raised`]) or the race
    /// is back, so a crash or a failing notifier between the two loses no notice.
    ///
    /// [`PbemStore::idle_notice_raised`]: crate::ports::PbemStore::idle_notice_raised
    pub idle_notice: Option<u32>,
    /// The turn its player declared ready for without orders, if any.
    pub ready_turn: Option<u32>,
    /// When that mark was made: a mark made after its turn was played does not count
    /// for it ([`ready`](Self::ready) with `as_of`). `None` for a mark stored before marks
    /// had a time, which counts as made in time.
    pub ready_at: Option<Timestamp>,
    /// The first turn of its current or coming vacation.
    pub vacation_from: Option<u32>,
    /// The last turn of that vacation.
    pub vacation_until: Option<u32>,
    /// Vacation turns taken (or booked) so far in the game.
    pub vacation_used: u32,
    /// Whether the host opened its seat to replacements.
    pub seat_open: bool,
}

impl RaceRecord {
    /// A fresh record for `race` played by `user_id`.
    pub fn new(game_id: GameId, race: impl Into<String>, user_id: UserId) -> Self {
        Self {
            game_id,
            race: race.into(),
            user_id,
            missed_turns: 0,
            idle: false,
            idle_notice: None,
            ready_turn: None,
            ready_at: None,
            vacation_from: None,
            vacation_until: None,
            vacation_used: 0,
            seat_open: false,
        }
    }

    /// The race is played again (its orders were in for a tallied turn, or its player
    /// took the open seat back): no missed turns, not idle (no idle notice owed any
    /// more), its seat closed.
    pub fn back_in_play(&mut self) {
        self.missed_turns = 0;
        self.idle = false;
        self.idle_notice = None;
        self.seat_open = false;
    }

    /// The seat goes to `player`, a replacement: the race starts afresh for them, as it
    /// did for its first player (not idle, no missed turns, no ready mark, no vacation and
    /// a whole vacation budget: what the previous player booked was their absence, not
    /// the newcomer's), its seat closed. Returns the previous player.
    pub fn hand_over(&mut self, player: UserId) -> UserId {
        let previous = self.user_id;
        *self = Self::new(self.game_id, std::mem::take(&mut self.race), player);
        previous
    }

    /// Whether its player is on vacation for `turn`.
    pub fn on_vacation(&self, turn: u32) -> bool {
        matches!((self.vacation_from, self.vacation_until), (Some(from), Some(until)) if (from..=until).contains(&turn))
    }

    /// Vacation turns its player may still book out of the game's `budget`.
    pub fn vacation_left(&self, budget: u32) -> u32 {
        budget.saturating_sub(self.vacation_used)
    }

    /// Its vacation as its player sees it, against the game's `budget`: what a player
    /// needs to know before booking more.
    pub fn vacation(&self, budget: u32) -> Vacation {
        Vacation {
            from: self.vacation_from,
            until: self.vacation_until,
            used: self.vacation_used,
            left: self.vacation_left(budget),
        }
    }

    /// The turns a vacation of `turns` from `from` covers, as `(first, last)`: it
    /// extends a current or coming vacation that reaches `from` (or the turn before),
    /// else starts at `from`.
    pub fn vacation_span(&self, from: u32, turns: u32) -> (u32, u32) {
        match (self.vacation_from, self.vacation_until) {
            (Some(start), Some(end)) if end.saturating_add(1) >= from && turns > 0 => (
                start.min(from),
                end.max(from.saturating_sub(1)).saturating_add(turns),
            ),
            _ => (from, from.saturating_add(turns).saturating_sub(1)),
        }
    }

    /// What the race is for `turn` (the turn being played next).
    pub fn state(&self, turn: u32) -> RaceState {
        if self.seat_open {
            RaceState::OpenSeat
        } else if self.idle {
            RaceState::Idle
        } else if self.on_vacation(turn) {
            RaceState::Vacation
        } else {
            RaceState::Active
        }
    }

    /// Whether the race is ready for `turn`: its latest submission was accepted
    /// (`orders_in`) or its player marked it ready without orders. With `as_of` (the
    /// instant the turn was played), only a mark made by then counts, as only orders
    /// recorded by then do: a mark that arrived after the turn ran changes nothing.
    pub fn ready(&self, turn: u32, orders_in: bool, as_of: Option<Timestamp>) -> bool {
        let in_time = match (self.ready_at, as_of) {
            (Some(at), Some(as_of)) => at <= as_of,
            _ => true,
        };
        orders_in || (self.ready_turn == Some(turn) && in_time)
    }

    /// Whether an early turn waits for this race: only active races do.
    pub fn holds_early_turn(&self, turn: u32) -> bool {
        self.state(turn) == RaceState::Active
    }
}

/// A change to a race's "ready without orders" mark ([`RaceRecord::ready_turn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyMark {
    /// Ready for this turn without orders, marked at this instant (so the turn's tally
    /// can tell a mark made after the turn was played). Marking the turn already marked
    /// keeps the earlier instant: a second mark (another device, a retry) must not push
    /// a mark made in time past the turn.
    Set(u32, Timestamp),
    /// The mark for this turn taken back (orders submitted for it now decide). A mark for
    /// another turn stays: the mark of a turn already played is what its tally reads,
    /// whatever the player sends for the next one before the tally.
    Clear(u32),
}

impl ReadyMark {
    /// Applies this change to `record`'s mark (its turn and time).
    pub fn apply(self, record: &mut RaceRecord) {
        match self {
            Self::Set(turn, at) => {
                let earlier = record.ready_at.filter(|_| record.ready_turn == Some(turn));
                record.ready_turn = Some(turn);
                record.ready_at = Some(earlier.map_or(at, |earlier| earlier.min(at)));
            }
            Self::Clear(turn) if record.ready_turn == Some(turn) => {
                record.ready_turn = None;
                record.ready_at = None;
            }
            Self::Clear(_) => {}
        }
    }
}

/// Whether `turn` may run early: at least one active race, and every active race ready.
/// `ready(race)` says whether a race is ready; races eliminated by the engine are not in
/// `races`.
pub fn early_turn_ready(
    races: &[RaceRecord],
    turn: u32,
    ready: impl Fn(&RaceRecord) -> bool,
) -> bool {
    let mut waiting = races.iter().filter(|r| r.holds_early_turn(turn)).peekable();
    waiting.peek().is_some() && waiting.all(ready)
}

/// A player's preferences for one game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GamePreferences {
    /// Whether they get deadline reminders.
    pub reminders: bool,
    /// Whether messages from other races also come by mail (push always).
    pub message_mail: bool,
}

impl Default for GamePreferences {
    fn default() -> Self {
        Self {
            reminders: true,
            message_mail: true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn early_turns_wait_for_active_races_only() {
        let game = GameId::from_uuid(uuid::Uuid::nil());
        let user = UserId::from_uuid(uuid::Uuid::nil());
        let mut a = RaceRecord::new(game, "A", user);
        let mut b = RaceRecord::new(game, "B", user);
        let ready_a = |r: &RaceRecord| r.race == "A";
        assert!(!early_turn_ready(&[a.clone(), b.clone()], 4, ready_a));
        b.idle = true;
        assert!(early_turn_ready(&[a.clone(), b.clone()], 4, ready_a));
        b.idle = false;
        b.vacation_from = Some(4);
        b.vacation_until = Some(5);
        assert_eq!(b.state(4), RaceState::Vacation);
        assert_eq!(b.state(6), RaceState::Active);
        assert!(early_turn_ready(&[a.clone(), b.clone()], 4, ready_a));
        assert!(!early_turn_ready(&[a.clone(), b.clone()], 6, ready_a));
        // Nobody active: no early turn (it would run every tick).
        a.idle = true;
        assert!(!early_turn_ready(&[a.clone(), b], 4, |_| true));
        a.ready_turn = Some(7);
        assert!(a.ready(7, false, None) && !a.ready(8, false, None) && a.ready(8, true, None));
    }

    #[test]
    fn a_mark_made_after_its_turn_was_played_does_not_count_for_it() {
        let game = GameId::from_uuid(uuid::Uuid::nil());
        let user = UserId::from_uuid(uuid::Uuid::nil());
        let played = chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::seconds(100);
        let mut race = RaceRecord::new(game, "A", user);
        ReadyMark::Set(7, played + chrono::TimeDelta::milliseconds(1)).apply(&mut race);
        assert!(race.ready(7, false, None), "the coming turn's view");
        assert!(
            !race.ready(7, false, Some(played)),
            "too late for the tally"
        );
        assert!(
            race.ready(7, true, Some(played)),
            "orders in force still count"
        );
        ReadyMark::Set(7, played).apply(&mut race);
        assert!(race.ready(7, false, Some(played)), "made as the turn ran");
        // Marked again, later: the mark made in time stands.
        ReadyMark::Set(7, played + chrono::TimeDelta::seconds(5)).apply(&mut race);
        assert_eq!(race.ready_at, Some(played));
        assert!(
            race.ready(7, false, Some(played)),
            "a second mark undid the first"
        );
        race.ready_at = None;
        assert!(
            race.ready(7, false, Some(played)),
            "a mark from before times counts"
        );
    }

    #[test]
    fn clearing_a_ready_mark_takes_back_only_that_turns() {
        let game = GameId::from_uuid(uuid::Uuid::nil());
        let user = UserId::from_uuid(uuid::Uuid::nil());
        let at = chrono::DateTime::UNIX_EPOCH;
        let mut race = RaceRecord::new(game, "A", user);
        ReadyMark::Set(3, at).apply(&mut race);
        assert_eq!((race.ready_turn, race.ready_at), (Some(3), Some(at)));
        ReadyMark::Clear(4).apply(&mut race);
        assert_eq!(race.ready_turn, Some(3), "turn 3's mark stays");
        ReadyMark::Set(4, at).apply(&mut race);
        assert_eq!(race.ready_turn, Some(4));
        ReadyMark::Clear(4).apply(&mut race);
        assert_eq!((race.ready_turn, race.ready_at), (None, None));
        ReadyMark::Clear(4).apply(&mut race);
        assert_eq!(race.ready_turn, None);
    }

    #[test]
    fn a_handed_over_race_starts_afresh_for_its_new_player() {
        let game = GameId::from_uuid(uuid::Uuid::nil());
        let (old, new) = (
            UserId::from_uuid(uuid::Uuid::from_u128(1)),
            UserId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let mut race = RaceRecord::new(game, "Bolgs", old);
        race.missed_turns = 3;
        race.idle = true;
        race.idle_notice = Some(4);
        race.ready_turn = Some(5);
        race.ready_at = Some(chrono::DateTime::UNIX_EPOCH);
        race.vacation_from = Some(5);
        race.vacation_until = Some(7);
        race.vacation_used = 3;
        race.seat_open = true;
        assert_eq!(race.state(5), RaceState::OpenSeat);
        assert_eq!(race.hand_over(new), old);
        assert_eq!(race, RaceRecord::new(game, "Bolgs", new));
        assert_eq!(race.state(5), RaceState::Active);
    }
}
