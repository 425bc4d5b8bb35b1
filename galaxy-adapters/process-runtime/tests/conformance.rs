//! The `ContainerRuntime` conformance suite of galaxy-ports on the process runtime, with
//! the real reference engine binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::ports::EngineClient;
use galaxy_ports::conformance::container::{RuntimeFixture, run_all};
use galaxy_process_runtime::{ProcessRuntime, ProcessRuntimeConfig, RestartPolicy};

/// Runtimes under one temporary directory, one sub-directory each.
struct Fixture {
    root: tempfile::TempDir,
}

#[async_trait]
impl RuntimeFixture for Fixture {
    type Runtime = ProcessRuntime;

    async fn runtime(&self) -> ProcessRuntime {
        let dir = self.root.path().join(uuid::Uuid::now_v7().to_string());
        let mut config = ProcessRuntimeConfig::new(&dir);
        config.restart = RestartPolicy {
            max_restarts: 1,
            delay: Duration::from_millis(100),
        };
        ProcessRuntime::new(config).unwrap()
    }

    fn engine(&self) -> String {
        common::engine_binary().display().to_string()
    }

    fn missing_engine(&self) -> String {
        self.root
            .path()
            .join("no-such-engine")
            .display()
            .to_string()
    }

    async fn crash(&self, runtime: &ProcessRuntime, container_id: &str) {
        common::kill_9(runtime.pid(container_id).expect("the engine runs"));
    }

    fn client(&self) -> Arc<dyn EngineClient> {
        Arc::new(common::client())
    }

    fn patience(&self) -> Duration {
        Duration::from_secs(30)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_runtime_conforms() {
    let fixture = Fixture {
        root: tempfile::tempdir().unwrap(),
    };
    run_all(&fixture).await;
}
