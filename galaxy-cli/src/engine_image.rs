//! `galaxy-cli engine image`: builds the reference engine's Docker image `FROM scratch`
//! from a static `galaxy-engine` binary, locally (there is no registry).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use galaxy_docker::image::{self, DEFAULT_TAG};
use galaxy_docker::{DockerConfig, DockerRuntime};

/// Options of `engine image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The image's tag (what GALAXY_ENGINES registers).
    #[arg(long, default_value = DEFAULT_TAG)]
    tag: String,
    /// A static galaxy-engine binary to use instead of building one.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The Galaxy workspace the engine is built from.
    #[arg(long, default_value = ".")]
    workspace: PathBuf,
    /// Cargo's target directory for the static build [default: <workspace>/target/static].
    #[arg(long)]
    target_dir: Option<PathBuf>,
}

/// Builds the image; the message to print on success.
pub async fn run(args: ImageArgs) -> anyhow::Result<String> {
    // Connect first: no point building for minutes without a daemon to take the image.
    let docker = DockerRuntime::connect(DockerConfig::default())
        .await
        .context("cannot connect to Docker")?;
    let binary = match args.binary {
        Some(binary) => binary,
        None => {
            let target_dir = args
                .target_dir
                .unwrap_or_else(|| args.workspace.join("target/static"));
            eprintln!(
                "building the static engine binary into {}",
                target_dir.display()
            );
            image::build_static_engine(&args.workspace, &target_dir)
                .await
                .context("cannot build the static engine binary")?
        }
    };
    let id = image::build_engine_image(docker.client(), &binary, &args.tag)
        .await
        .with_context(|| format!("cannot build the image {}", args.tag))?;
    Ok(format!(
        "built {} ({id}) from {}",
        args.tag,
        binary.display()
    ))
}
