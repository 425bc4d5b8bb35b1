//! The change-bus conformance suite on the in-memory bus.

use galaxy_ports::conformance;
use galaxy_ports::memory::MemoryChangeBus;

#[tokio::test]
async fn memory_change_bus_passes_the_suite() {
    conformance::changes::run_all(|| async {
        let a = MemoryChangeBus::new();
        let b = a.replica();
        (a, b)
    })
    .await;
}
