//! A game's engine data for backups. Under Docker an engine keeps its state in the named
//! volume of its container ([`volume_name`], mounted at [`DATA_MOUNT`]), outside the
//! data directory a backup copies. These calls move that data in and out as a tar
//! archive through Docker's archive API, so they work against a local socket and a
//! remote `DOCKER_HOST` alike, and need nothing inside the engine's image (a `FROM
//! scratch` engine has no shell or `tar`).
//!
//! A volume remembers the image its engine ran ([`IMAGE_LABEL`], set when the runtime
//! creates it), so the data of a game whose container vanished can still be taken out
//! ([`DockerRuntime::export_engine_data`]) and put back with the right image.
//!
//! The archive is held in memory: an engine's data is its saved game (the reference
//! engine's is a few kilobytes per turn); an engine with gigabytes of state should be
//! backed up with volume tooling instead.

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures::TryStreamExt;
use galaxy_core::ports::{ContainerError, ContainerRuntime};

use crate::config::DATA_MOUNT;
use crate::container::volume_name;
use crate::{DockerRuntime, error};

/// The label of a game's data volume naming the engine image that runs on it (the
/// runtime sets it when it creates the volume). A volume made by a Galaxy before this
/// label has none: its data can only be taken out through its container.
pub const IMAGE_LABEL: &str = "galaxy.image";

/// What [`DockerRuntime::export_engine_data`] found for a game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineDataExport {
    /// The engine's data, with the image that wrote it.
    Copied(EngineData),
    /// Neither a container nor a data volume of that name: there is nothing to copy.
    Absent,
    /// Only a data volume is left, and it names no image ([`IMAGE_LABEL`]: it was made
    /// by a Galaxy before volumes named theirs), so there is no image to mount it in.
    /// Re-creating the game's engine makes its data reachable again.
    UnknownImage {
        /// The volume.
        volume: String,
    },
}

/// A game's engine data as a backup keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineData {
    /// The engine image that wrote the data (to restore it with, so the files belong to
    /// the engine's user as before).
    pub image: String,
    /// A tar archive of the data mount, whose entries start with `data/`.
    pub archive: Vec<u8>,
}

impl DockerRuntime {
    /// The image the container `container_name` was created from (recorded beside its
    /// data in a backup, to restore the data with).
    pub async fn image_of(&self, container_name: &str) -> Result<String, ContainerError> {
        let what = format!("container {container_name}");
        let inspected = self
            .client()
            .inspect_container(container_name, None)
            .await
            .map_err(|e| error::map(&what, e))?;
        inspected
            .config
            .and_then(|c| c.image)
            .ok_or_else(|| ContainerError::Failed(format!("{what} names no image")))
    }

    /// Whether the data volume of the container `container_name` exists (a restore
    /// must not fill one that holds a live game's data).
    pub async fn data_volume_exists(&self, container_name: &str) -> Result<bool, ContainerError> {
        let volume = volume_name(container_name);
        match self.client().inspect_volume(&volume).await {
            Ok(_) => Ok(true),
            Err(e) => match error::map(&format!("volume {volume}"), e) {
                ContainerError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    /// The engine data of the container `container_name` (running or stopped): a tar
    /// archive of its data mount, whose entries start with `data/`.
    pub async fn export_data(&self, container_name: &str) -> Result<Vec<u8>, ContainerError> {
        let what = format!("the data of container {container_name}");
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(DATA_MOUNT)
            .build();
        let chunks: Vec<bytes::Bytes> = self
            .client()
            .download_from_container(container_name, Some(options))
            .try_collect()
            .await
            .map_err(|e| error::map(&what, e))?;
        Ok(chunks.concat())
    }

    /// The engine data of the game whose container is `container_name`, and the image
    /// that wrote it: through the container when there is one (running or stopped), else
    /// from its data volume alone (the container vanished: the game waits paused for its
    /// engine to be re-created), through a helper container of the volume's image
    /// ([`IMAGE_LABEL`]) that is created and removed, never started. What was found when
    /// there is no data to copy is an [`EngineDataExport`] variant; an error is a failure
    /// to copy data that is there (a backup must stop on it).
    pub async fn export_engine_data(
        &self,
        container_name: &str,
    ) -> Result<EngineDataExport, ContainerError> {
        match self.image_of(container_name).await {
            Ok(image) => match self.export_data(container_name).await {
                Ok(archive) => return Ok(EngineDataExport::Copied(EngineData { image, archive })),
                // Removed between the two calls: its volume may still be there.
                Err(ContainerError::NotFound(_)) => {}
                Err(other) => return Err(other),
            },
            Err(ContainerError::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
        let volume = volume_name(container_name);
        let inspected = match self.client().inspect_volume(&volume).await {
            Ok(inspected) => inspected,
            Err(e) => {
                return match error::map(&format!("volume {volume}"), e) {
                    ContainerError::NotFound(_) => Ok(EngineDataExport::Absent),
                    other => Err(other),
                };
            }
        };
        let Some(image) = inspected.labels.get(IMAGE_LABEL).cloned() else {
            return Ok(EngineDataExport::UnknownImage { volume });
        };
        let helper = self.helper(container_name, &image, "backup").await?;
        let archive = self.export_data(&helper).await;
        if let Err(error) = self.remove_helper(&helper).await {
            // The data is copied; the next helper of this name replaces the leftover.
            tracing::warn!(%helper, %error, "cannot remove the backup's helper container");
        }
        Ok(EngineDataExport::Copied(EngineData {
            image,
            archive: archive?,
        }))
    }

    /// Creates (never starts) a helper container `{container_name}-{purpose}` of `image`
    /// with the data volume of `container_name` on the data mount and no network; its
    /// name.
    async fn helper(
        &self,
        container_name: &str,
        image: &str,
        purpose: &str,
    ) -> Result<String, ContainerError> {
        self.ensure_image(image).await?;
        let helper = format!("{container_name}-{purpose}");
        // A helper left behind by an earlier run that died half-way would block the name.
        match self.remove_helper(&helper).await {
            Ok(()) | Err(ContainerError::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    target: Some(DATA_MOUNT.into()),
                    source: Some(volume_name(container_name)),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                }]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&helper)
            .build();
        self.client()
            .create_container(Some(options), body)
            .await
            .map_err(|e| error::map(&format!("container {helper}"), e))?;
        Ok(helper)
    }

    /// Removes a helper container, keeping the volume.
    async fn remove_helper(&self, helper: &str) -> Result<(), ContainerError> {
        let remove = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(false)
            .build();
        self.client()
            .remove_container(helper, Some(remove))
            .await
            .map_err(|e| error::map(&format!("container {helper}"), e))
    }

    /// Fills the data volume of the (future) container `container_name` from an archive
    /// [`DockerRuntime::export_data`] wrote: the volume is created when missing (naming
    /// `image`, [`IMAGE_LABEL`]), and the archive is unpacked into it through a helper
    /// container created from `image` (the
    /// engine's, so its user owns the files as before) and removed again, never started.
    /// A container created afterwards under `container_name` finds the data.
    pub async fn import_data(
        &self,
        container_name: &str,
        image: &str,
        archive: Vec<u8>,
    ) -> Result<(), ContainerError> {
        let volume = volume_name(container_name);
        let docker = self.client();
        docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(std::collections::HashMap::from([(
                    IMAGE_LABEL.to_owned(),
                    image.to_owned(),
                )])),
                ..Default::default()
            })
            .await
            .map_err(|e| error::map(&format!("volume {volume}"), e))?;
        let helper = self.helper(container_name, image, "restore").await?;
        let what = format!("container {helper}");
        // The archive's entries are `data/...`: unpacked at `/`, they land in the mount.
        let parent = std::path::Path::new(DATA_MOUNT)
            .parent()
            .and_then(|p| p.to_str())
            .unwrap_or("/");
        let upload = UploadToContainerOptionsBuilder::default()
            .path(parent)
            .build();
        let uploaded = docker
            .upload_to_container(
                &helper,
                Some(upload),
                bollard::body_full(bytes::Bytes::from(archive)),
            )
            .await
            .map_err(|e| error::map(&format!("the data of {what}"), e));
        let removed = self.remove_helper(&helper).await;
        uploaded?;
        removed
    }
}
