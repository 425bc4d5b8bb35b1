//! A Galaxy server whose engines run in its own process (see README.md): in-memory
//! stores, mail written as `.eml` files under `$GALAXY_DATA_DIR/mail`, and
//! [`InProcessRuntime`] for the engines.

use std::error::Error;
use std::sync::Arc;

use galaxy_core::service::runtime::EngineRegistry;
use galaxy_custom_runtime_example::{ENGINE, InProcessRuntime, StopEnginesOnShutdown};
use galaxy_server::{App, Config, Listeners, dev, telemetry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // Dev mode's admin and file mailer; the engines are ours.
    let config = dev::dev_config(Config::from_env()?)?;
    let telemetry = telemetry::init(&config)?;
    let runtime = InProcessRuntime::new(config.data_dir.join("engines"));
    let engines = EngineRegistry::parse(&format!("reference={ENGINE}"))?;
    let adapters = dev::dev_adapters(&config)
        .with_container_runtime(Arc::new(runtime.clone()), Some(engines))
        .with_readiness_check(Arc::new(StopEnginesOnShutdown(runtime)));
    let app = App::build(config.clone(), adapters)
        .await?
        .with_telemetry(telemetry);
    let listeners = Listeners::bind(&config).await?;
    tracing::info!(addr = %config.http_addr, "serving, engines in-process");
    app.serve(listeners, galaxy_server::shutdown_signal()?)
        .await?;
    Ok(())
}
