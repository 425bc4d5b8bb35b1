//! Why a GeoIP database could not be opened or reloaded.

use std::path::PathBuf;

/// Why a database file was refused. Each variant names the file and keeps the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoIpError {
    /// The file could not be read (missing, unreadable, a directory...).
    #[error("cannot read GeoIP database {path}: {source}", path = path.display())]
    Read {
        /// The database file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is no valid MaxMind DB (truncated, damaged, another format).
    #[error("GeoIP database {path} is not a valid MaxMind DB: {source}", path = path.display())]
    Invalid {
        /// The database file.
        path: PathBuf,
        /// What the reader found wrong.
        #[source]
        source: maxminddb::MaxMindDbError,
    },
}

impl GeoIpError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Read { path, .. } | Self::Invalid { path, .. } => path,
        }
    }
}
