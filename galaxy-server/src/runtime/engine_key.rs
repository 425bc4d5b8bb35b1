//! The installation's engine token key (see `galaxy_core::domain::engine_auth`): from
//! `GALAXY_ENGINE_SECRET`, or else generated once and kept in the data directory, so a
//! restarted server still holds the key its running engines were started with.

use std::io::Write;
use std::path::{Path, PathBuf};

use galaxy_core::domain::engine_auth::EngineTokenKey;
use galaxy_core::ports::SecretGenerator;
use secrecy::ExposeSecret;

use crate::app::AppError;
use crate::config::Config;

/// The file of a generated secret, under `GALAXY_DATA_DIR`.
pub const SECRET_FILE: &str = "engine-secret";

/// Where the generated secret lives for `data_dir`.
pub fn secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRET_FILE)
}

/// The key: `GALAXY_ENGINE_SECRET` when set; otherwise the secret in
/// `$GALAXY_DATA_DIR/engine-secret`, made (mode 600, 64 random hex characters) on the
/// first start. Replicas must share the variable (or the directory).
pub(crate) fn engine_key(
    config: &Config,
    secrets: &dyn SecretGenerator,
) -> Result<EngineTokenKey, AppError> {
    let unusable = |reason: String| AppError::Setting {
        variable: "GALAXY_ENGINE_SECRET",
        reason,
    };
    if let Some(secret) = &config.runtime.engines.secret {
        let bytes = secret.expose_secret().as_bytes().to_vec();
        return EngineTokenKey::from_bytes(bytes).map_err(|e| unusable(e.to_string()));
    }
    let path = secret_path(&config.data_dir);
    let io = |what: &str, source| AppError::Io {
        what: format!("{what} {} (or set GALAXY_ENGINE_SECRET)", path.display()),
        source,
    };
    let secret = match std::fs::read_to_string(&path) {
        Ok(secret) => secret.trim().to_owned(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|e| io("cannot create the directory of", e))?;
            let fresh = secrets.session_token().expose();
            match write_new(&path, &fresh) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "engine secret generated");
                    fresh
                }
                // Another process of the same data directory made it first: use theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read_to_string(&path)
                        .map_err(|e| io("cannot read", e))?
                        .trim()
                        .to_owned()
                }
                Err(error) => return Err(io("cannot write", error)),
            }
        }
        Err(error) => return Err(io("cannot read", error)),
    };
    EngineTokenKey::from_bytes(secret.into_bytes())
        .map_err(|e| unusable(format!("{} holds no usable secret: {e}", path.display())))
}

/// Writes `secret` to a file that must not exist yet, readable by its owner only.
fn write_new(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    use galaxy_core::domain::GameId;
    use galaxy_ports::system::OsSecretGenerator;

    use super::*;

    fn config(dir: &Path, secret: Option<&str>) -> Config {
        let mut vars = HashMap::from([("GALAXY_DATA_DIR".to_owned(), dir.display().to_string())]);
        if let Some(secret) = secret {
            vars.insert("GALAXY_ENGINE_SECRET".to_owned(), secret.to_owned());
        }
        Config::from_vars(&vars).unwrap()
    }

    #[test]
    fn a_generated_secret_is_kept_private_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let game = GameId::from_uuid(uuid::Uuid::now_v7());
        let first = engine_key(&config(&data, None), &OsSecretGenerator).unwrap();
        let mode = std::fs::metadata(secret_path(&data))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = engine_key(&config(&data, None), &OsSecretGenerator).unwrap();
        assert_eq!(
            first.token_for(game),
            again.token_for(game),
            "a restart agrees"
        );

        let other = tempfile::tempdir().unwrap();
        let elsewhere = engine_key(&config(other.path(), None), &OsSecretGenerator).unwrap();
        assert_ne!(first.token_for(game), elsewhere.token_for(game));

        // The variable wins, and needs no file.
        let secret = "an operator's secret of 32 chars!";
        let set = engine_key(&config(other.path(), Some(secret)), &OsSecretGenerator).unwrap();
        let expected = EngineTokenKey::from_bytes(secret.as_bytes().to_vec()).unwrap();
        assert_eq!(set.token_for(game), expected.token_for(game));
    }
}
