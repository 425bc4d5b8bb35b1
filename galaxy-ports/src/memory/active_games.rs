//! The active-games entitlement counts across two stores. A user is active in a game not
//! yet finished or cancelled while they hold a live application in the lobby for a race
//! they still play, play a race taken over in the play-by-email record, or wait on an
//! application for one of its open seats. So the in-memory lobby and play-by-email
//! stores share one [`Ledger`]: each keeps its own lock, and a call that counts takes the
//! lobby's and then the record's, always in that order, so that two such calls never
//! wait on each other in a circle.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use galaxy_core::domain::{GameId, UserId};

use super::lobby::LobbyState;
use super::pbem::PbemState;

/// The state of the lobby store and of the play-by-email store, shared by the two
/// (see the module's documentation): [`InMemoryStores`](super::InMemoryStores) builds
/// both on one, a store built alone gets its own.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Games, applications and race names.
    pub(super) lobby: Mutex<LobbyState>,
    /// Race records, seat applications, preferences and messages.
    pub(super) pbem: Mutex<PbemState>,
}

impl Ledger {
    /// The lobby's state. Every method of both stores validates before it mutates, so a
    /// lock poisoned by a panicking holder guards consistent data and is taken over.
    pub(super) fn lobby(&self) -> MutexGuard<'_, LobbyState> {
        self.lobby.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The play-by-email record's state; taken after [`lobby`](Self::lobby) when a call
    /// needs both, never before it.
    pub(super) fn pbem(&self) -> MutexGuard<'_, PbemState> {
        self.pbem.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many games `user` is active in, by the rule of the module's documentation,
/// leaving out `besides` (the game an application is for: being active in it already,
/// the application adds no game). A game the lobby does not know (a record kept by a
/// play-by-email store built alone) is not known to have ended, so it counts.
pub(super) fn active_games(
    lobby: &LobbyState,
    pbem: &PbemState,
    user: UserId,
    besides: Option<GameId>,
) -> u32 {
    let applied = lobby
        .live_applications(user)
        .filter(|a| !pbem.handed_away(a.game_id, a.race_name.as_str(), user))
        .map(|a| a.game_id);
    let games: HashSet<_> = applied
        .chain(pbem.held_games(user))
        .filter(|game| !lobby.ended(*game) && Some(*game) != besides)
        .collect();
    u32::try_from(games.len()).unwrap_or(u32::MAX)
}
