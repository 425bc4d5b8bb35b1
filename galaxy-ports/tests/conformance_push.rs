//! The push-log conformance suite on the in-memory log.

use galaxy_ports::conformance;
use galaxy_ports::memory::MemoryPushLog;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_push_log_passes_the_suite() {
    conformance::push::run_all(|| async { MemoryPushLog::new() }).await;
}
