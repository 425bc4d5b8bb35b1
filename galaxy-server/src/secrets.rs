//! The installation's secrets: each from its variable, or else generated once and kept
//! in the data directory (mode 600), so a restarted server still holds the secret its
//! earlier run used — the engine token key (see `galaxy_core::domain::engine_auth`) its
//! running engines were started with, the login-code key the codes out were hashed
//! under. Replicas share the variable (or the directory).

use std::io::Write;
use std::path::{Path, PathBuf};

use galaxy_core::domain::Timestamp;
use galaxy_core::domain::auth::CodeKey;
use galaxy_core::domain::engine_auth::EngineTokenKey;
use galaxy_core::domain::mail_in::OrdersKey;
use galaxy_core::ports::{KeyFingerprint, KeyRegistry, SecretGenerator};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;
use crate::error::AppError;

/// The file of a generated engine secret, under `GALAXY_DATA_DIR`.
pub const SECRET_FILE: &str = "engine-secret";
/// The file of a generated login-code key, under `GALAXY_DATA_DIR`.
pub const CODE_KEY_FILE: &str = "login-code-key";

/// Where the generated engine secret lives for `data_dir`.
pub fn secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRET_FILE)
}

/// The keys made from the login-code secret, read once at start-up.
pub(crate) struct LoginKeys {
    /// What login codes are hashed under.
    pub(crate) code: CodeKey,
    /// What orders tokens are derived under: the same secret under a label of its own,
    /// so replicas that share the secret show the same orders addresses.
    pub(crate) orders: OrdersKey,
}

/// The login-code secret (`GALAXY_LOGIN_CODE_KEY`, else
/// `$GALAXY_DATA_DIR/login-code-key`), read once: its keys are made (so a secret too
/// short is refused before it is recorded), then it is compared with the one the other
/// servers of the store hold ([`check_agreed`]).
pub(crate) async fn agreed_login_keys(
    config: &Config,
    secrets: &dyn SecretGenerator,
    registry: &dyn KeyRegistry,
    now: Timestamp,
) -> Result<LoginKeys, AppError> {
    let secret = login_code_secret(config, secrets)?;
    let keys = login_keys_of(&secret)?;
    check_agreed(registry, "GALAXY_LOGIN_CODE_KEY", &secret, now).await?;
    Ok(keys)
}

/// The engine token key (`GALAXY_ENGINE_SECRET`, else `$GALAXY_DATA_DIR/engine-secret`),
/// read once, made, then compared with the other servers' ([`check_agreed`]).
pub(crate) async fn agreed_engine_key(
    config: &Config,
    secrets: &dyn SecretGenerator,
    registry: &dyn KeyRegistry,
    now: Timestamp,
) -> Result<EngineTokenKey, AppError> {
    let secret = engine_secret(config, secrets)?;
    let key = engine_key_of(&secret)?;
    check_agreed(registry, "GALAXY_ENGINE_SECRET", &secret, now).await?;
    Ok(key)
}

fn login_keys_of(secret: &SecretString) -> Result<LoginKeys, AppError> {
    let material = secret.expose_secret().as_bytes();
    Ok(LoginKeys {
        code: CodeKey::derive(material).map_err(login_code_setting)?,
        orders: OrdersKey::derive(material).map_err(login_code_setting)?,
    })
}

fn engine_key_of(secret: &SecretString) -> Result<EngineTokenKey, AppError> {
    EngineTokenKey::from_bytes(secret.expose_secret().as_bytes().to_vec()).map_err(|e| {
        AppError::Setting {
            variable: "GALAXY_ENGINE_SECRET",
            reason: e.to_string(),
        }
    })
}

/// The engine token key alone (tests).
#[cfg(test)]
fn engine_key(config: &Config, secrets: &dyn SecretGenerator) -> Result<EngineTokenKey, AppError> {
    engine_key_of(&engine_secret(config, secrets)?)
}

/// The login-code keys alone (tests).
#[cfg(test)]
fn login_keys(config: &Config, secrets: &dyn SecretGenerator) -> Result<LoginKeys, AppError> {
    login_keys_of(&login_code_secret(config, secrets)?)
}

/// The installation's engine secret: `GALAXY_ENGINE_SECRET`, else
/// `$GALAXY_DATA_DIR/engine-secret`.
fn engine_secret(config: &Config, secrets: &dyn SecretGenerator) -> Result<SecretString, AppError> {
    installation_secret(
        config,
        "GALAXY_ENGINE_SECRET",
        config.runtime.engines.secret.as_ref(),
        SECRET_FILE,
        secrets,
    )
}

/// Compares the secret of `variable` this server holds with the one the first server of
/// the installation recorded in `registry` (recording it when none is), so replicas that
/// hold different values (each left to generate its own, or a value changed on one of
/// them) refuse to start instead of refusing each other's login codes and engine tokens.
async fn check_agreed(
    registry: &dyn KeyRegistry,
    variable: &'static str,
    secret: &SecretString,
    now: Timestamp,
) -> Result<(), AppError> {
    let held = KeyFingerprint::of(variable, secret.expose_secret().as_bytes());
    let recorded = registry
        .record_key(variable, held, now)
        .await
        .map_err(|source| AppError::KeyRegistry { variable, source })?;
    if recorded.fingerprint == held {
        return Ok(());
    }
    Err(AppError::Setting {
        variable,
        reason: format!(
            "this server's value (fingerprint {held}) differs from the one the other servers \
             of this database hold (fingerprint {}, recorded {}): give every replica the same \
             value (or the same GALAXY_DATA_DIR). After changing it on purpose, stop every \
             server and run `galaxy-cli secrets reset`",
            recorded.fingerprint,
            recorded.recorded_at.format("%Y-%m-%d %H:%M:%S UTC"),
        ),
    })
}

/// The installation's login-code secret: `GALAXY_LOGIN_CODE_KEY`, else
/// `$GALAXY_DATA_DIR/login-code-key`.
fn login_code_secret(
    config: &Config,
    secrets: &dyn SecretGenerator,
) -> Result<SecretString, AppError> {
    installation_secret(
        config,
        "GALAXY_LOGIN_CODE_KEY",
        config.login_code_key.as_ref(),
        CODE_KEY_FILE,
        secrets,
    )
}

/// A login-code secret no key can be made from, as the setting's error.
fn login_code_setting(error: impl std::fmt::Display) -> AppError {
    AppError::Setting {
        variable: "GALAXY_LOGIN_CODE_KEY",
        reason: error.to_string(),
    }
}

/// `configured` when set; otherwise the secret in `$GALAXY_DATA_DIR/<file>`, made
/// (mode 600, 64 random hex characters) on the first start.
fn installation_secret(
    config: &Config,
    variable: &'static str,
    configured: Option<&SecretString>,
    file: &str,
    secrets: &dyn SecretGenerator,
) -> Result<SecretString, AppError> {
    if let Some(secret) = configured {
        return Ok(secret.clone());
    }
    let path = config.data_dir.join(file);
    let io = |what: &str, source| AppError::Io {
        what: format!("{what} {} (or set {variable})", path.display()),
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
                    tracing::info!(path = %path.display(), variable, "secret generated");
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
    // A generated secret is 64 characters: fewer than 32 in the file is a write cut short
    // (a full disk) or a hand edit gone wrong, and the message names the file.
    if secret.len() < MIN_FILE_SECRET {
        return Err(AppError::Setting {
            variable,
            reason: format!(
                "{} holds {} bytes, fewer than {MIN_FILE_SECRET}: restore it from a backup, or \
                 delete it to have a new one generated (what depends on the old one, such as \
                 running engines or pending login codes, stops working), or set {variable}",
                path.display(),
                secret.len()
            ),
        });
    }
    Ok(SecretString::from(secret))
}

/// The shortest secret a file may hold (what the settings ask of a configured one).
const MIN_FILE_SECRET: usize = 32;

/// Writes `secret` to a file that must not exist yet, readable by its owner only, whole
/// or not at all: written and synced under a temporary name of its own (random, created
/// new: replicas sharing the data directory may all be PID 1 in their containers), then
/// linked into place, which fails with `AlreadyExists` if another process made it first,
/// so a full disk never leaves a file cut short that every later start would read. On a
/// file system without hard links it is created in place, as a last resort.
fn write_new(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let create = |at: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(at)
    };
    let fill = |mut file: std::fs::File| {
        file.write_all(secret.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = create(&temporary).and_then(fill);
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    // The temporary name goes whatever happened (the link, if made, keeps the data).
    let _ = std::fs::remove_file(&temporary);
    match linked {
        // No hard links here (`EOPNOTSUPP`, or `EPERM` on some file systems).
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            create(path).and_then(fill)
        }
        other => other,
    }
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

    #[test]
    fn a_secret_file_cut_short_stops_start_up_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(secret_path(dir.path()), "").unwrap();
        let Err(error) = engine_key(&config(dir.path(), None), &OsSecretGenerator) else {
            panic!("an empty secret file was taken");
        };
        let message = error.to_string();
        assert!(message.contains("engine-secret"), "{message}");
        assert!(error.is_configuration(), "{message}");
        // A new one is written whole, under a temporary name first (none is left).
        std::fs::remove_file(secret_path(dir.path())).unwrap();
        engine_key(&config(dir.path(), None), &OsSecretGenerator).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["engine-secret"]);
        assert_eq!(
            std::fs::read_to_string(secret_path(dir.path()))
                .unwrap()
                .trim()
                .len(),
            64
        );
    }

    #[test]
    fn the_login_code_key_is_generated_once_per_data_directory() {
        use galaxy_core::domain::ChallengeId;
        use galaxy_core::domain::auth::LoginCode;
        let dir = tempfile::tempdir().unwrap();
        let (id, code) = (
            ChallengeId::from_uuid(uuid::Uuid::now_v7()),
            LoginCode::parse("123456").unwrap(),
        );
        let first = login_keys(&config(dir.path(), None), &OsSecretGenerator)
            .unwrap()
            .code;
        let again = login_keys(&config(dir.path(), None), &OsSecretGenerator)
            .unwrap()
            .code;
        assert_eq!(code.hash_for(id, &first), code.hash_for(id, &again));
        let mode = std::fs::metadata(dir.path().join(CODE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = tempfile::tempdir().unwrap();
        let elsewhere = login_keys(&config(other.path(), None), &OsSecretGenerator)
            .unwrap()
            .code;
        assert_ne!(code.hash_for(id, &first), code.hash_for(id, &elsewhere));

        // The orders key comes from the same file: the same directory, the same orders
        // addresses; another directory, others.
        use galaxy_core::domain::mail_in::TokenSeed;
        let seed = TokenSeed::from_bytes([4; TokenSeed::LENGTH]);
        let orders = |dir: &Path| {
            login_keys(&config(dir, None), &OsSecretGenerator)
                .unwrap()
                .orders
                .token(&seed)
        };
        assert_eq!(orders(dir.path()), orders(dir.path()));
        assert_ne!(orders(dir.path()), orders(other.path()));
    }
}
