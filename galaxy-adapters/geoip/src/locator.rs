//! [`MaxMindLocator`]: the country of an address from a MaxMind DB file that can be
//! replaced while the server runs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use galaxy_core::ports::{GeoLocator, UNKNOWN_COUNTRY};
use maxminddb::{PathElement, Reader};

use crate::error::GeoIpError;
use crate::reserved::is_non_public;

/// What a loaded database says about itself (from its metadata), for logs and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// The database's own name of its kind, e.g. `GeoLite2-Country` or `GeoIP2-City`.
    pub database_type: String,
    /// When the database was built, in seconds since the Unix epoch.
    pub build_epoch: u64,
}

/// A [`GeoLocator`] over a MaxMind DB file (GeoLite2 / GeoIP2 Country or City, or any
/// database with the same `country.iso_code` / `registered_country.iso_code` fields).
///
/// The whole file is read into memory rather than memory-mapped: a mapped file that an
/// updater rewrites in place can crash the process (SIGBUS), a copy cannot. Lookups take
/// a read lock only long enough to clone an [`Arc`], so a reload never stalls them; see
/// [`MaxMindLocator::reload_if_changed`] for how the file is watched.
pub struct MaxMindLocator {
    /// The file watched for replacements.
    path: PathBuf,
    /// The database in use; a reload swaps the `Arc`, lookups in flight keep the old one.
    current: RwLock<Arc<Database>>,
    /// The file as last tried (loaded or refused), so a refused file is reported once
    /// rather than at every poll and is tried again as soon as it changes. The lock also
    /// keeps two reloads from running at once.
    last_tried: Mutex<Option<Fingerprint>>,
}

impl std::fmt::Debug for MaxMindLocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxMindLocator")
            .field("path", &self.path)
            .field("database", &self.database().info)
            .finish_non_exhaustive()
    }
}

impl MaxMindLocator {
    /// Opens the database at `path`. A missing, unreadable, truncated or damaged file is
    /// an error naming the file and the reason (the whole file is verified, so damage
    /// cannot surface later as wrong answers). Reads the file synchronously: call it at
    /// start-up, or through `spawn_blocking` from async code.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, GeoIpError> {
        let path = path.into();
        // Taken before the read, so a write that lands during the read changes the
        // fingerprint again and is picked up by the next reload.
        let fingerprint = Fingerprint::of(&path).map_err(|source| GeoIpError::Read {
            path: path.clone(),
            source,
        })?;
        let database = Database::load(&path)?;
        tracing::info!(
            path = %path.display(),
            database_type = %database.info.database_type,
            build_epoch = database.info.build_epoch,
            "GeoIP database loaded"
        );
        Ok(Self {
            path,
            current: RwLock::new(Arc::new(database)),
            last_tried: Mutex::new(Some(fingerprint)),
        })
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata of the database in use.
    pub fn info(&self) -> DatabaseInfo {
        self.database().info.clone()
    }

    /// Loads the file again if it changed (modification time, size or, on Unix, inode)
    /// since it was last tried. `Ok(true)`: a new database is in use; `Ok(false)`:
    /// nothing changed. On an error the database in use is kept, and the same bad file
    /// is not reported again until it changes.
    ///
    /// Blocking (reads and verifies the whole file): [`crate::DatabaseReloader`] runs it
    /// on tokio's blocking pool. Updaters should replace the file atomically (write a
    /// temporary file, then rename); a half-written file is refused and the finished one
    /// is loaded at the next poll.
    pub fn reload_if_changed(&self) -> Result<bool, GeoIpError> {
        let mut last_tried = self
            .last_tried
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let fingerprint = match Fingerprint::of(&self.path) {
            Ok(fingerprint) => fingerprint,
            Err(source) => {
                // A missing file is reported once, then quietly waited for.
                if last_tried.take().is_none() {
                    return Ok(false);
                }
                return Err(GeoIpError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if *last_tried == Some(fingerprint) {
            return Ok(false);
        }
        *last_tried = Some(fingerprint);
        let database = Database::load(&self.path)?;
        tracing::info!(
            path = %self.path.display(),
            database_type = %database.info.database_type,
            build_epoch = database.info.build_epoch,
            "GeoIP database reloaded"
        );
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(database);
        Ok(true)
    }

    /// The database in use. The lock is held only to clone the `Arc`; a swap cannot
    /// panic half-way, so a poisoned lock still holds a whole database.
    fn database(&self) -> Arc<Database> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl GeoLocator for MaxMindLocator {
    fn country(&self, ip: IpAddr) -> String {
        let ip = ip.to_canonical();
        if is_non_public(ip) {
            return UNKNOWN_COUNTRY.to_owned();
        }
        self.database()
            .country(ip)
            .unwrap_or_else(|| UNKNOWN_COUNTRY.to_owned())
    }
}

/// A [`GeoLocator`] without a database: every address is `unknown`. For dev mode and
/// deployments that configure no GeoIP database.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnknownLocator;

impl GeoLocator for UnknownLocator {
    fn country(&self, _ip: IpAddr) -> String {
        UNKNOWN_COUNTRY.to_owned()
    }
}

/// One loaded database file.
struct Database {
    /// The file's bytes behind the reader.
    reader: Reader<Vec<u8>>,
    /// From the metadata, kept for logs.
    info: DatabaseInfo,
}

impl Database {
    /// Reads, parses and verifies the file.
    fn load(path: &Path) -> Result<Self, GeoIpError> {
        let bytes = std::fs::read(path).map_err(|source| GeoIpError::Read {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |source| GeoIpError::Invalid {
            path: path.to_owned(),
            source,
        };
        let reader = Reader::from_source(bytes).map_err(invalid)?;
        reader.verify().map_err(invalid)?;
        let metadata = reader.metadata();
        let info = DatabaseInfo {
            database_type: metadata.database_type.clone(),
            build_epoch: metadata.build_epoch,
        };
        if !has_countries(&info.database_type) {
            tracing::warn!(
                path = %path.display(),
                database_type = %info.database_type,
                "GeoIP database is not a Country or City database; addresses may all be unknown"
            );
        }
        Ok(Self { reader, info })
    }

    /// The ISO code of the address's country, else of the country its network is
    /// registered in (satellite and anonymising providers have only that). A lookup
    /// error (an IPv6 address in an IPv4-only database, a damaged record) means unknown.
    fn country(&self, ip: IpAddr) -> Option<String> {
        let result = match self.reader.lookup(ip) {
            Ok(result) => result,
            Err(error) => {
                tracing::debug!(%ip, %error, "GeoIP lookup failed");
                return None;
            }
        };
        ["country", "registered_country"]
            .into_iter()
            .find_map(|place| {
                let path = [PathElement::Key(place), PathElement::Key("iso_code")];
                match result.decode_path::<String>(&path) {
                    Ok(code) => code,
                    Err(error) => {
                        tracing::debug!(%ip, %error, place, "GeoIP record unreadable");
                        None
                    }
                }
                .and_then(|code| iso_code(&code))
            })
    }
}

/// `code` as an upper-case ISO 3166-1 alpha-2 code, or `None` if it is not one, so a
/// database with odd values cannot put arbitrary strings into the counters.
fn iso_code(code: &str) -> Option<String> {
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| code.to_ascii_uppercase())
}

/// Whether a database of this type carries countries (GeoLite2/GeoIP2 Country, City,
/// Enterprise; DB-IP's Country and City).
fn has_countries(database_type: &str) -> bool {
    let kind = database_type.to_ascii_lowercase();
    ["country", "city", "enterprise"]
        .iter()
        .any(|word| kind.contains(word))
}

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    /// Last modification (nanosecond precision on the usual Linux filesystems).
    modified: Option<SystemTime>,
    /// Size in bytes.
    len: u64,
    /// Inode: an atomic rename changes it even when time and size match.
    inode: u64,
}

impl Fingerprint {
    fn of(path: &Path) -> std::io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_codes_are_two_letters() {
        assert_eq!(iso_code("GB").as_deref(), Some("GB"));
        assert_eq!(iso_code("jp").as_deref(), Some("JP"));
        assert_eq!(iso_code("XYZ"), None);
        assert_eq!(iso_code(""), None);
        assert_eq!(iso_code("1A"), None);
        assert_eq!(iso_code("É"), None);
    }

    #[test]
    fn country_databases_are_recognised() {
        assert!(has_countries("GeoLite2-Country"));
        assert!(has_countries("GeoIP2-City"));
        assert!(has_countries("GeoIP2-Enterprise"));
        assert!(has_countries("DBIP-Country-Lite"));
        assert!(!has_countries("GeoLite2-ASN"));
    }
}
