//! The in-memory runtime, mail, notification and geo stores pass their conformance
//! suites (the Postgres adapter runs the very same suites).

use galaxy_ports::conformance;
use galaxy_ports::memory::{
    MemoryGeoStore, MemoryKeyRegistry, MemoryMailStore, MemoryNotificationStore, MemoryPbemStore,
    MemoryPlayStore, MemoryRuntimeStore,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_runtime_store_conforms() {
    conformance::runtime::run_all(|| async { MemoryRuntimeStore::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_mail_store_conforms() {
    conformance::mail::run_all(|| async { MemoryMailStore::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_notification_store_conforms() {
    conformance::notification::run_all(|| async { MemoryNotificationStore::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_geo_store_conforms() {
    conformance::geo::run_all(|| async { MemoryGeoStore::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_key_registry_conforms() {
    conformance::keys::run_all(|| async { MemoryKeyRegistry::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_play_store_conforms() {
    conformance::play::run_all(|| async { MemoryPlayStore::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_pbem_store_conforms() {
    conformance::pbem::run_all(|| async { MemoryPbemStore::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_mail_in_store_conforms() {
    conformance::mail_in::run_all(|| async { galaxy_ports::memory::MemoryMailInStore::default() })
        .await;
}
