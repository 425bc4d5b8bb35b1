//! The `ContainerRuntime` conformance suite of galaxy-ports on a real Docker daemon, with
//! the reference engine image. Skipped (with the reason printed) when no daemon answers,
//! unless GALAXY_REQUIRE_DOCKER is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use common::{Cleanup, TEST_LABEL, remove_labelled, runtime_or_skip};
use galaxy_core::ports::EngineClient;
use galaxy_docker::{DockerConfig, DockerRuntime};
use galaxy_ports::conformance::container::{RuntimeFixture, run_all};

const TEST: &str = "docker-conformance";

struct Fixture {
    image: String,
}

/// A runtime on the default per-game networks whose restart policy allows one restart.
fn config() -> DockerConfig {
    DockerConfig {
        max_restarts: 1,
        ..DockerConfig::default()
    }
}

#[async_trait]
impl RuntimeFixture for Fixture {
    type Runtime = DockerRuntime;

    async fn runtime(&self) -> DockerRuntime {
        DockerRuntime::connect(config()).await.unwrap()
    }

    fn engine(&self) -> String {
        self.image.clone()
    }

    fn missing_engine(&self) -> String {
        "galaxy-engine:no-such-tag".to_owned()
    }

    /// SIGKILLs the engine process from the host: a crash as far as Docker can tell
    /// (unlike `docker kill`, which Docker counts as a manual stop and never restarts).
    async fn crash(&self, runtime: &DockerRuntime, container_id: &str) {
        let inspected = runtime
            .client()
            .inspect_container(container_id, None)
            .await
            .unwrap();
        let pid = inspected.state.unwrap().pid.unwrap();
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -KILL {pid} (the tests run as root)");
    }

    fn client(&self) -> Arc<dyn EngineClient> {
        Arc::new(common::client())
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(TEST_LABEL.to_owned(), TEST.to_owned())])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_runtime_conforms() {
    let Some(runtime) = runtime_or_skip(config()).await else {
        return;
    };
    remove_labelled(runtime.client(), TEST).await;
    let _cleanup = Cleanup {
        test: TEST,
        network: None,
    };
    let image = common::engine_image(runtime.client()).await;
    run_all(&Fixture { image }).await;
}
