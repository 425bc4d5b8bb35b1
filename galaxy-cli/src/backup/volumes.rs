//! The engine data volumes of a Docker backup, as a restore meets them: checked on the
//! Docker host before anything is restored, filled after the database is.

use std::path::Path;

use anyhow::{Context as _, bail};
use galaxy_core::ports::ContainerRuntime as _;
use galaxy_docker::{DockerConfig, DockerRuntime, volume_name};

/// The engine volumes a backup holds (Docker runtime), checked before anything is
/// restored: each must not exist yet on the Docker host.
pub(super) struct BackupVolumes {
    /// Docker, when there is a volume to fill.
    docker: Option<DockerRuntime>,
    /// `(container name, image)` of each volume.
    volumes: Vec<(String, String)>,
}

impl BackupVolumes {
    pub(super) async fn read(manifest: &serde_json::Value) -> anyhow::Result<Self> {
        let mut volumes = Vec::new();
        for volume in manifest["volumes"].as_array().into_iter().flatten() {
            let (Some(container), Some(image)) =
                (volume["container"].as_str(), volume["image"].as_str())
            else {
                bail!("the manifest's volume entry {volume} lacks container or image");
            };
            volumes.push((container.to_owned(), image.to_owned()));
        }
        if volumes.is_empty() {
            return Ok(Self {
                docker: None,
                volumes,
            });
        }
        let docker = DockerRuntime::connect(DockerConfig::default())
            .await
            .context("the backup holds Docker volumes: cannot reach Docker to restore them")?;
        for (container, _) in &volumes {
            let volume = volume_name(container);
            if docker
                .data_volume_exists(container)
                .await
                .with_context(|| format!("cannot look for the Docker volume {volume}"))?
            {
                bail!(
                    "the Docker volume {volume} exists: restore on a Docker host without \
                     this game's volume (volumes are named by game, so a copy restored \
                     beside the live server finds the live game's); remove it (docker \
                     volume rm {volume}) only if it is left from an earlier attempt at \
                     this restore, never a live game's"
                );
            }
        }
        // Each volume is filled through a helper container of its engine's image, after
        // the database is restored: a missing image found only then would leave a
        // restored database to drop by hand.
        let images: std::collections::BTreeSet<&str> =
            volumes.iter().map(|(_, image)| image.as_str()).collect();
        for image in images {
            docker.ensure_image(image).await.with_context(|| {
                format!(
                    "the backup's engine volumes need the image {image} on this Docker host \
                     (build or load it first); nothing was restored"
                )
            })?;
        }
        Ok(Self {
            docker: Some(docker),
            volumes,
        })
    }

    /// Fills a fresh data volume for each; how many.
    pub(super) async fn fill(&self, from: &Path) -> anyhow::Result<usize> {
        let Some(docker) = &self.docker else {
            return Ok(0);
        };
        for (container, image) in &self.volumes {
            let file = from.join("volumes").join(format!("{container}.tar"));
            let archive =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            docker
                .import_data(container, image, archive)
                .await
                .with_context(|| format!("cannot fill the data volume of {container}"))?;
        }
        Ok(self.volumes.len())
    }
}
