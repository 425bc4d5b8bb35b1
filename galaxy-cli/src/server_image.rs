//! `galaxy-cli server image`: builds the server's Docker image `FROM scratch` from a
//! static `galaxy-server` binary, locally (there is no registry); deploy/compose.yaml
//! runs it.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use galaxy_docker::image::{self, SERVER_TAG};
use galaxy_docker::{DockerConfig, DockerRuntime};

/// Options of `server image`.
#[derive(Debug, Args)]
pub struct ServerImageArgs {
    /// The image's tag (what deploy/compose.yaml runs as GALAXY_SERVER_IMAGE).
    #[arg(long, default_value = SERVER_TAG)]
    tag: String,
    /// A static galaxy-server binary to use instead of building one.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The Galaxy workspace the server is built from.
    #[arg(long, default_value = ".")]
    workspace: PathBuf,
    /// Cargo's target directory for the static build [default: <workspace>/target/static].
    #[arg(long)]
    target_dir: Option<PathBuf>,
}

/// Builds the image; the message to print on success.
pub async fn run(args: ServerImageArgs) -> anyhow::Result<String> {
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
                "building the static server binary into {}",
                target_dir.display()
            );
            image::build_static_server(&args.workspace, &target_dir)
                .await
                .context("cannot build the static server binary")?
        }
    };
    let id = image::build_server_image(docker.client(), &binary, &args.tag)
        .await
        .with_context(|| format!("cannot build the image {}", args.tag))?;
    Ok(format!(
        "built {} ({id}) from {}",
        args.tag,
        binary.display()
    ))
}
