//! The reference engine's image and the server's: a static binary in an image `FROM
//! scratch`, built locally (there is no registry). `galaxy-cli engine image`,
//! `galaxy-cli server image` and the tests share this code.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;

use crate::config::{DATA_MOUNT, ENGINE_PORT, ENGINE_USER};

/// The reference engine's default tag (what the platform registers as `reference`). 0.2:
/// the engine checks `GALAXY_ENGINE_TOKEN` and runs as a non-root user owning `/data`.
pub const DEFAULT_TAG: &str = "galaxy-engine:0.2";

/// The target triple of the static build.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Why the image (or its binary) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The binary cannot be read.
    #[error("cannot read the engine binary {path}: {source}")]
    Binary {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The binary is not a static ELF executable, so it cannot run `FROM scratch`.
    #[error(
        "{0} is not a statically linked Linux executable; an image FROM scratch needs one (build it with RUSTFLAGS=\"-C target-feature=+crt-static\" --target {STATIC_TARGET})"
    )]
    NotStatic(PathBuf),
    /// `cargo build` of the static binary failed or could not run.
    #[error("building the static binary failed: {0}")]
    Cargo(String),
    /// The Docker daemon refused or failed the build.
    #[error("docker build of {tag} failed: {reason}")]
    Build {
        /// The tag being built.
        tag: String,
        /// Docker's reason.
        reason: String,
    },
}

/// The Dockerfile of the image: the binary alone, listening on 8080, state in `/data`,
/// run as [`ENGINE_USER`]. `/data` is an empty directory owned by that user: Docker gives
/// a new, empty volume mounted there the same owner, so the engine can write its volume
/// and nothing else (the runtime makes the root file system read-only).
pub fn dockerfile() -> String {
    format!(
        "FROM scratch\n\
         COPY galaxy-engine /galaxy-engine\n\
         COPY --chown={ENGINE_USER} data {DATA_MOUNT}\n\
         ENV GALAXY_ENGINE_ADDR=0.0.0.0:{ENGINE_PORT} GALAXY_ENGINE_DATA_DIR={DATA_MOUNT}\n\
         USER {ENGINE_USER}\n\
         EXPOSE {ENGINE_PORT}\n\
         LABEL org.opencontainers.image.title=galaxy-engine\n\
         ENTRYPOINT [\"/galaxy-engine\"]\n"
    )
}

/// The server image's default tag.
pub const SERVER_TAG: &str = "galaxy-server:0.1";

/// The Dockerfile of the server image: the static `galaxy-server` binary alone, its API on
/// 8080, metrics on 9090 and state in `/data`, run as 65534 (nobody) unless the
/// deployment says otherwise (a server that drives Docker through the mounted socket
/// needs the socket's group, or root).
pub fn server_dockerfile() -> String {
    "FROM scratch\n\
     COPY galaxy-server /galaxy-server\n\
     COPY --chown=65534:65534 data /data\n\
     ENV GALAXY_HTTP_ADDR=0.0.0.0:8080 GALAXY_METRICS_ADDR=0.0.0.0:9090 GALAXY_DATA_DIR=/data\n\
     USER 65534:65534\n\
     EXPOSE 8080 9090\n\
     LABEL org.opencontainers.image.title=galaxy-server\n\
     ENTRYPOINT [\"/galaxy-server\"]\n\
     CMD [\"serve\"]\n"
        .to_owned()
}

/// Builds the server image `tag` from a static `galaxy-server` binary; the image id.
pub async fn build_server_image(
    docker: &Docker,
    binary: &Path,
    tag: &str,
) -> Result<String, ImageError> {
    build_image(docker, binary, "galaxy-server", &server_dockerfile(), tag).await
}

/// Builds the image `tag` from a static engine binary and returns the image id. The build
/// context (the binary and the Dockerfile) is made in memory and sent to the daemon.
pub async fn build_engine_image(
    docker: &Docker,
    binary: &Path,
    tag: &str,
) -> Result<String, ImageError> {
    build_image(docker, binary, "galaxy-engine", &dockerfile(), tag).await
}

/// Builds `tag` from `dockerfile` with the static `binary` in the context as `name`.
async fn build_image(
    docker: &Docker,
    binary: &Path,
    name: &str,
    dockerfile: &str,
    tag: &str,
) -> Result<String, ImageError> {
    let bytes = tokio::fs::read(binary)
        .await
        .map_err(|source| ImageError::Binary {
            path: binary.to_owned(),
            source,
        })?;
    if !is_static_elf(&bytes) {
        return Err(ImageError::NotStatic(binary.to_owned()));
    }
    let context = build_context(name, &bytes, dockerfile).map_err(|source| ImageError::Binary {
        path: binary.to_owned(),
        source,
    })?;
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let failed = |reason: String| ImageError::Build {
        tag: tag.to_owned(),
        reason,
    };
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = progress.next().await {
        let step = step.map_err(|e| failed(e.to_string()))?;
        if let Some(detail) = step.error_detail {
            return Err(failed(detail.message.unwrap_or_default()));
        }
        if let Some(line) = step.stream.as_deref().map(str::trim_end)
            && !line.is_empty()
        {
            tracing::debug!(%tag, "{line}");
        }
    }
    let image = docker
        .inspect_image(tag)
        .await
        .map_err(|e| failed(format!("the built image cannot be inspected: {e}")))?;
    Ok(image.id.unwrap_or_default())
}

/// Builds `galaxy-engine` statically (`cargo build --release --target
/// x86_64-unknown-linux-gnu` with `-C target-feature=+crt-static`) from the workspace at
/// `workspace` into `target_dir` (keep it apart from the usual target directory, whose
/// artifacts other RUSTFLAGS would invalidate), and returns the binary's path. Cargo's
/// output goes to this process's stderr.
pub async fn build_static_engine(
    workspace: &Path,
    target_dir: &Path,
) -> Result<PathBuf, ImageError> {
    build_static(workspace, target_dir, "galaxy-engine").await
}

/// Builds `galaxy-server` statically (default features), like [`build_static_engine`].
/// Cargo's lock on `target_dir` makes concurrent callers wait for one build.
pub async fn build_static_server(
    workspace: &Path,
    target_dir: &Path,
) -> Result<PathBuf, ImageError> {
    build_static(workspace, target_dir, "galaxy-server").await
}

/// A static release build of the binary `name` of the package `name`.
async fn build_static(
    workspace: &Path,
    target_dir: &Path,
    name: &str,
) -> Result<PathBuf, ImageError> {
    if !workspace.join("examples/engine/Cargo.toml").is_file() {
        return Err(ImageError::Cargo(format!(
            "{} is not the Galaxy workspace (no examples/engine); run from it or pass the binary",
            std::path::absolute(workspace)
                .unwrap_or_else(|_| workspace.to_owned())
                .display()
        )));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = tokio::process::Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--release", "-p", name, "--bin", name])
        .args(["--target", STATIC_TARGET])
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .await
        .map_err(|e| ImageError::Cargo(format!("cannot run cargo: {e}")))?;
    if !status.success() {
        return Err(ImageError::Cargo(format!(
            "cargo build exited with {status}"
        )));
    }
    Ok(target_dir.join(STATIC_TARGET).join("release").join(name))
}

/// Where [`build_static_engine`] leaves the binary under `target_dir`.
pub fn static_binary_path(target_dir: &Path) -> PathBuf {
    target_dir
        .join(STATIC_TARGET)
        .join("release")
        .join("galaxy-engine")
}

/// The tar build context: `Dockerfile`, the binary as `name` (mode 755) and the empty
/// directory `data` (mode 700), all with mtime 0 so the same binary gives the same layers.
fn build_context(name: &str, binary: &[u8], dockerfile: &str) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut data = tar::Header::new_gnu();
    data.set_entry_type(tar::EntryType::Directory);
    data.set_size(0);
    data.set_mode(0o700);
    data.set_mtime(0);
    data.set_cksum();
    tar.append_data(&mut data, "data/", std::io::empty())?;
    for (name, mode, data) in [
        ("Dockerfile", 0o644, dockerfile.as_bytes()),
        (name, 0o755, binary),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, data)?;
    }
    tar.into_inner()
}

/// Whether `bytes` is a 64-bit little-endian ELF executable without an interpreter
/// (`PT_INTERP`), i.e. one that runs in an empty filesystem.
fn is_static_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let header_ok =
        bytes.starts_with(b"\x7fELF") && bytes.get(4) == Some(&2) && bytes.get(5) == Some(&1);
    let check = || -> Option<bool> {
        let table = usize::try_from(u64_at(0x20)?).ok()?;
        let entry = usize::from(u16_at(0x36)?);
        let count = usize::from(u16_at(0x38)?);
        let mut has_interp = false;
        for i in 0..count {
            has_interp |= u32_at(table.checked_add(i.checked_mul(entry)?)?)? == PT_INTERP;
        }
        Some(!has_interp)
    };
    header_ok && check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_context_holds_the_dockerfile_and_an_executable_binary() {
        let context = build_context("galaxy-engine", b"\x7fELF...", &dockerfile()).unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().display().to_string(),
                    header.mode().unwrap(),
                    header.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("data/".to_owned(), 0o700, 0),
                ("Dockerfile".to_owned(), 0o644, dockerfile().len() as u64),
                ("galaxy-engine".to_owned(), 0o755, 7),
            ]
        );
        assert!(dockerfile().starts_with("FROM scratch\n"));
        assert!(dockerfile().contains("COPY --chown=65534:65534 data /data\n"));
        assert!(dockerfile().contains("USER 65534:65534\n"));
        assert!(dockerfile().contains("ENTRYPOINT [\"/galaxy-engine\"]"));
    }

    #[test]
    fn only_static_elf_executables_pass() {
        // This test binary is dynamically linked (it has PT_INTERP).
        let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&own));
        assert!(!is_static_elf(b"#!/bin/sh\necho hi\n"));
        assert!(!is_static_elf(b"\x7fELF\x02\x01"));
        // A minimal ELF64 header with one PT_LOAD program header and no PT_INTERP.
        let mut elf = vec![0u8; 0x40 + 0x38];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes());
        assert!(is_static_elf(&elf));
        elf[0x40..0x44].copy_from_slice(&3u32.to_le_bytes());
        assert!(!is_static_elf(&elf));
    }
}
