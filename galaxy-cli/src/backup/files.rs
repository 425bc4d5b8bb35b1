//! The file work of a backup and a restore: private directories, paths compared once
//! their symlinks are resolved, and a copy of a directory tree that engines may still be
//! writing to.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;

/// Creates `dir` (its missing parents first) with only its owner allowed in (0700): what
/// it will hold is readable by nobody else, whatever the files' own modes. `dir` itself
/// must be new (`AlreadyExists` otherwise: one made by someone else since it was checked
/// is never written into, nor removed).
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

/// Whether this process may write into `dir`: a file written and removed again (the
/// mode bits do not tell, for root, ACLs or a read-only mount).
pub(crate) fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(".galaxy-write-probe");
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}

/// `path` made absolute with its existing part's symlinks resolved (the rest need not
/// exist yet), so that two paths can be compared for one lying inside the other.
pub(super) fn resolved(path: &Path) -> anyhow::Result<PathBuf> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(name), Some(parent)) = (existing.file_name(), existing.parent()) else {
            break;
        };
        rest.push(name);
        existing = parent;
    }
    let mut out = existing
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", existing.display()))?;
    out.extend(rest.iter().rev());
    Ok(out)
}

/// Copies the directory tree `from` to `to` (files, directories, permissions; symlinks
/// as links). An entry that vanishes while being copied (an engine replacing its state
/// file through a temporary one while the games are held) is skipped: what replaced it is
/// copied if it was listed. Errors name the entry.
pub(super) fn copy_tree(from: &Path, to: &Path, stop: &AtomicBool) -> std::io::Result<()> {
    if stop.load(Ordering::SeqCst) {
        return Err(std::io::Error::other("the copy was stopped"));
    }
    let named = |path: &Path| {
        let path = path.display().to_string();
        move |error: std::io::Error| std::io::Error::new(error.kind(), format!("{path}: {error}"))
    };
    std::fs::create_dir_all(to).map_err(named(to))?;
    let permissions = std::fs::metadata(from).map_err(named(from))?.permissions();
    std::fs::set_permissions(to, permissions).map_err(named(to))?;
    for entry in std::fs::read_dir(from).map_err(named(from))? {
        if stop.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the copy was stopped"));
        }
        let entry = entry.map_err(named(from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let copied = match entry.file_type() {
            Ok(kind) if kind.is_dir() => copy_tree(&source, &target, stop),
            Ok(kind) if kind.is_symlink() => std::fs::read_link(&source)
                .and_then(|link| std::os::unix::fs::symlink(link, &target))
                .map_err(named(&source)),
            Ok(_) => std::fs::copy(&source, &target)
                .map(drop)
                .map_err(named(&source)),
            Err(error) => Err(named(&source)(error)),
        };
        match copied {
            // Gone since it was listed: nothing of it to keep.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !source.exists() => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_directory_inside_the_data_directory_is_seen_as_such() {
        let Ok(tmp) = tempfile::tempdir() else {
            panic!("no temporary directory");
        };
        let data = tmp.path().join("data");
        let link = tmp.path().join("link");
        let made =
            std::fs::create_dir(&data).and_then(|()| std::os::unix::fs::symlink(&data, &link));
        assert!(made.is_ok(), "{made:?}");
        let inside = |out: &Path| match (resolved(&data), resolved(out)) {
            (Ok(data), Ok(out)) => out.starts_with(data),
            other => panic!("{other:?}"),
        };
        // Not there yet, through a symlink, or beside it.
        assert!(inside(&data.join("backups/2030-01-01")));
        assert!(inside(&link.join("b")));
        assert!(!inside(&tmp.path().join("data-backup")));
        assert!(!inside(&tmp.path().join("elsewhere/b")));
    }

    #[test]
    fn a_failed_copy_names_the_entry() {
        let Ok(tmp) = tempfile::tempdir() else {
            panic!("no temporary directory");
        };
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        // `sub` is a directory in the source and a file in the target.
        let made = std::fs::create_dir_all(from.join("sub"))
            .and_then(|()| std::fs::write(from.join("sub/state.json"), "{}"))
            .and_then(|()| std::fs::create_dir(&to))
            .and_then(|()| std::fs::write(to.join("sub"), "in the way"));
        assert!(made.is_ok(), "{made:?}");
        let Err(error) = copy_tree(&from, &to, &AtomicBool::new(false)) else {
            panic!("copied into a file");
        };
        assert!(error.to_string().contains("sub"), "{error}");
    }
}
