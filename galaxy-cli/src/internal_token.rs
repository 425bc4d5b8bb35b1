//! The server's internal token for the commands that call its internal interfaces
//! (`mail-in`, `push tail`): from a file (`--token-file`, readable by the service user
//! only, and never on a command line where `ps` shows it to every local user) or from
//! `GALAXY_INTERNAL_TOKEN`, or else the server's configuration file (`--config`).

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use galaxy_server::config::Layered;
use secrecy::SecretString;

/// The token as the server reads it: `GALAXY_INTERNAL_TOKEN` of the environment, else
/// `internal_token` of its configuration file (`file`, galaxy-cli's `--config`, else the
/// one `GALAXY_CONFIG_FILE` names); `None` when neither sets it.
pub fn configured(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    // The variable first: the file is read (and must be readable) only when it is unset.
    if let Some(token) = std::env::var_os("GALAXY_INTERNAL_TOKEN") {
        return token
            .into_string()
            .map(Some)
            .map_err(|_| anyhow!("GALAXY_INTERNAL_TOKEN is not UTF-8"));
    }
    let settings = Layered::from_env(file).context("cannot read the configuration")?;
    Ok(settings.value("GALAXY_INTERNAL_TOKEN").map(str::to_owned))
}

/// The token: read from `file` when given (it wins: the variable may be set for the
/// server itself), else `value` (a flag or the variable, as the command takes it).
/// Surrounding whitespace (a file's final newline) is dropped; an empty token is an
/// error.
pub fn internal_token(value: Option<&str>, file: Option<&Path>) -> anyhow::Result<SecretString> {
    let token = match (value, file) {
        (_, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --token-file {}", path.display()))?,
        (Some(value), None) => value.to_owned(),
        (None, None) => {
            return Err(anyhow!(
                "GALAXY_INTERNAL_TOKEN (or --token-file, or internal_token in the --config \
                 file) must be set"
            ));
        }
    };
    let token = token.trim();
    if token.is_empty() {
        bail!("the internal token is empty");
    }
    Ok(SecretString::from(token.to_owned()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_token_comes_from_one_place_and_is_never_empty() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("no temporary directory");
        };
        let file = dir.path().join("token");
        assert!(std::fs::write(&file, "s3cret-token\n").is_ok());
        let from_file = internal_token(None, Some(&file)).map(|t| t.expose_secret().to_owned());
        assert_eq!(from_file.ok().as_deref(), Some("s3cret-token"));
        let given = internal_token(Some(" t0ken "), None).map(|t| t.expose_secret().to_owned());
        assert_eq!(given.ok().as_deref(), Some("t0ken"));
        let both = internal_token(Some("t"), Some(&file)).map(|t| t.expose_secret().to_owned());
        assert_eq!(both.ok().as_deref(), Some("s3cret-token"), "the file wins");
        assert!(internal_token(None, None).is_err(), "neither");
        assert!(internal_token(Some("  "), None).is_err(), "empty");
        assert!(internal_token(None, Some(&dir.path().join("missing"))).is_err());
    }
}
