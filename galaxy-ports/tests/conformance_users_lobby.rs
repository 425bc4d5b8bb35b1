//! The in-memory user and lobby stores pass the conformance suites every adapter runs.

use galaxy_ports::conformance::{lobby, race_names, users};
use galaxy_ports::memory::{MemoryLobbyStore, MemoryPbemStore, MemoryUserStore};

#[tokio::test(flavor = "multi_thread")]
async fn memory_user_store_conforms() {
    users::run_all(|| async { MemoryUserStore::default() }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_lobby_store_conforms() {
    lobby::run_all(|| async { MemoryLobbyStore::default() }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_lobby_and_pbem_stores_conform_together() {
    lobby::run_with_pbem(|| async {
        let lobby = MemoryLobbyStore::default();
        let pbem = MemoryPbemStore::beside(&lobby);
        (lobby, pbem)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_race_name_store_conforms() {
    race_names::run_all(|| async { MemoryLobbyStore::default() }).await;
}
