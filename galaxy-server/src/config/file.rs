//! The optional configuration file (TOML) beside the environment, and the effective
//! configuration `galaxy-server config check` prints.
//!
//! The file holds settings under their variable names without the `GALAXY_` prefix, in
//! lower case (`http_addr = "0.0.0.0:8080"`, `database_max_connections = 20`); a list
//! may be a TOML array (`bootstrap_admins = ["a@example.org", "b@example.org"]`), joined
//! with that setting's own separator ([`LIST_SEPARATORS`]: `;` for the engine lists), and
//! an array for a setting that is not a list is an error. Values are validated exactly as
//! the environment's. The environment wins over the file, the file over the defaults, so
//! a container can override one setting of a shared file. A key that is not a setting is
//! an error naming the file and the key: in a file a typo is never silently ignored.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, LIST_SEPARATORS, SECRET_SETTINGS, SETTINGS, Setting};

/// The variable that names the configuration file (also `galaxy-server --config`).
pub const CONFIG_FILE_VARIABLE: &str = "GALAXY_CONFIG_FILE";

/// `GALAXY_*` variables that are not the server's settings but are meant for programs
/// that may share its environment: the engines (the contract's variables, and
/// `GALAXY_ENGINE_LOG`, which the process runtime passes on) and galaxy-cli.
const FOR_OTHER_PROGRAMS: &[&str] = &[
    "GALAXY_GAME_ID",
    "GALAXY_ENGINE_ADDR",
    "GALAXY_ENGINE_DATA_DIR",
    "GALAXY_ENGINE_TOKEN",
    "GALAXY_ENGINE_LOG",
    "GALAXY_ENGINE_BIN",
    "GALAXY_URL",
];

/// Where a setting's effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Its documented default.
    Default,
    /// The configuration file.
    File,
    /// A `GALAXY_*` environment variable.
    Environment,
}

impl Source {
    /// How `config check` names the source.
    pub fn label(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::File => "file",
            Self::Environment => "environment",
        }
    }
}

/// The settings of the environment over those of a file: what [`Config`] is built from,
/// with each value's source kept for `config check` and for mode defaults that apply only
/// where the operator chose nothing.
#[derive(Debug, Clone, Default)]
pub struct Layered {
    /// The merged `GALAXY_*` variables.
    vars: HashMap<String, String>,
    /// Where each set variable came from.
    sources: HashMap<String, Source>,
    /// The file read, if any.
    file: Option<PathBuf>,
}

/// The file key of a setting: `GALAXY_HTTP_ADDR` → `http_addr`.
pub fn key_of(variable: &str) -> String {
    variable
        .strip_prefix("GALAXY_")
        .unwrap_or(variable)
        .to_ascii_lowercase()
}

impl Layered {
    /// The process environment over the file that `file` (else `GALAXY_CONFIG_FILE`) names.
    pub fn from_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(file, &std::env::vars().collect())
    }

    /// `env` over the file that `file` (else `env`'s `GALAXY_CONFIG_FILE`) names.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let path = file.map(Path::to_path_buf).or_else(|| {
            env.get(CONFIG_FILE_VARIABLE)
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        let mut layered = Self::default();
        if let Some(path) = &path {
            for (variable, value) in read_file(path)? {
                layered.sources.insert(variable.clone(), Source::File);
                layered.vars.insert(variable, value);
            }
        }
        for (name, value) in env {
            // The standard OpenTelemetry variables are read too (never from the file).
            let ours = name.starts_with("GALAXY_") || name.starts_with("OTEL_");
            if ours && !value.trim().is_empty() {
                layered.sources.insert(name.clone(), Source::Environment);
                layered.vars.insert(name.clone(), value.clone());
            }
        }
        layered.file = path;
        Ok(layered)
    }

    /// The `GALAXY_*` environment variables that are not settings (a typo such as
    /// `GALAXY_HTTP_ADR`), sorted: ignored, so start-up and `config check` warn about
    /// each. (A file's unknown key stops start-up instead; the environment of a server
    /// may hold variables meant for other programs.)
    pub fn unknown_variables(&self) -> Vec<&str> {
        let mut unknown: Vec<&str> = self
            .sources
            .iter()
            .filter(|(_, source)| **source == Source::Environment)
            .map(|(name, _)| name.as_str())
            .filter(|name| name.starts_with("GALAXY_") && *name != CONFIG_FILE_VARIABLE)
            .filter(|name| !SETTINGS.iter().any(|s| s.variable == *name))
            .filter(|name| !FOR_OTHER_PROGRAMS.contains(name))
            .collect();
        unknown.sort_unstable();
        unknown
    }

    /// Validates every setting and builds the configuration.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::from_vars(&self.vars)
    }

    /// The value `variable` has, from the environment or else the file, unvalidated:
    /// for tools that need one setting of the server's configuration (`galaxy-cli`'s
    /// database URL, data directory and runtime) without judging the rest.
    pub fn value(&self, variable: &str) -> Option<&str> {
        self.vars.get(variable).map(String::as_str)
    }

    /// Whether the operator set `variable` (in the file or the environment).
    pub fn is_set(&self, variable: &str) -> bool {
        self.sources.contains_key(variable)
    }

    /// The file read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Every setting with its effective value (secrets shown as `<redacted>` when set,
    /// `-` when a setting without a default is unset) and its source.
    pub fn effective(&self) -> Vec<(&'static Setting, String, Source)> {
        SETTINGS
            .iter()
            .map(|setting| match self.vars.get(setting.variable) {
                Some(value) => {
                    let source = self
                        .sources
                        .get(setting.variable)
                        .copied()
                        .unwrap_or(Source::Environment);
                    let shown = if SECRET_SETTINGS.contains(&setting.variable) {
                        "<redacted>".to_owned()
                    } else {
                        value.clone()
                    };
                    (setting, shown, source)
                }
                None => (setting, setting.default.to_owned(), Source::Default),
            })
            .collect()
    }
}

/// The settings of a TOML file, by variable name.
fn read_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let error = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The parser's message quotes the offending line, which may hold a secret.
        let at = e
            .span()
            .map(|s| format!(" at line {}", text[..s.start].lines().count().max(1)))
            .unwrap_or_default();
        error(format!("not valid TOML{at}"))
    })?;
    let mut out = Vec::new();
    for (key, value) in table {
        let variable = format!("GALAXY_{}", key.to_ascii_uppercase());
        let known = SETTINGS.iter().any(|s| s.variable == variable);
        if !known || variable == CONFIG_FILE_VARIABLE || key != key.to_ascii_lowercase() {
            return Err(error(format!(
                "`{key}` is not a setting (keys are the variables without GALAXY_, in lower \
                 case, e.g. http_addr; docs/operations.md lists every one)"
            )));
        }
        let text = match &value {
            toml::Value::Array(items) => {
                let Some(separator) = list_separator(&variable) else {
                    return Err(error(format!(
                        "`{key}` is not a list: give it one value, not an array"
                    )));
                };
                items
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .map(|items| items.join(&separator.to_string()))
            }
            other => scalar(other),
        }
        .ok_or_else(|| {
            error(format!(
                "`{key}` must be a string, number, boolean or (for a list) an array of them"
            ))
        })?;
        out.push((variable, text));
    }
    Ok(out)
}

/// The separator of a list setting's entries (what a TOML array is joined with), `None`
/// for a setting that takes one value.
fn list_separator(variable: &str) -> Option<char> {
    LIST_SEPARATORS
        .iter()
        .find(|(list, _)| *list == variable)
        .map(|(_, separator)| *separator)
}

/// A TOML scalar as the environment would spell it.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether `config defaults` can write a setting's documented default as a value (some
/// defaults are descriptions, like `docker (dev: process)`).
fn literal_default(setting: &Setting) -> bool {
    setting.default != "-" && !setting.default.contains(['<', '('])
}

/// `galaxy-server config defaults`: a TOML file with every setting, its meaning as a
/// comment, and its default (commented out, so the file changes nothing until edited).
pub fn defaults_toml() -> String {
    let mut out = String::from(
        "# galaxy-server configuration file (GALAXY_CONFIG_FILE or --config).\n\
         # Every setting at its default; the environment's GALAXY_* variables win over\n\
         # this file. Uncomment and edit what differs. docs/operations.md explains each.\n",
    );
    for setting in SETTINGS {
        let _ = writeln!(out, "\n# {} ({})", setting.meaning, setting.variable);
        let key = key_of(setting.variable);
        if literal_default(setting) {
            let _ = writeln!(out, "# {key} = {:?}", setting.default);
        } else {
            let _ = writeln!(out, "# {key} =   (default: {})", setting.default);
        }
    }
    out
}

/// `galaxy-server config check`'s listing: one `VARIABLE = value  (source)` line per
/// setting, secrets redacted.
pub fn effective_listing(layered: &Layered) -> String {
    let mut out = String::new();
    if let Some(file) = layered.file() {
        let _ = writeln!(out, "# file: {}", file.display());
    }
    for (setting, value, source) in layered.effective() {
        let _ = writeln!(out, "{} = {value}  ({})", setting.variable, source.label());
    }
    out
}

/// The warning for an environment variable that is not a setting.
pub fn unknown_warning(name: &str) -> String {
    format!("warning: {name} is not a setting and is ignored (docs/operations.md lists every one)")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn unknown_environment_variables_are_named_not_fatal() {
        let layered = Layered::load(
            None,
            &env(&[
                ("GALAXY_HTTP_ADR", "0.0.0.0:80"),
                ("GALAXY_HTTP_ADDR", "127.0.0.1:8080"),
                ("GALAXY_CONFIG_FILE", ""),
                ("OTEL_SERVICE_NAME", "galaxy"),
                ("GALAXY_ENGINE_LOG", "debug"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(layered.unknown_variables(), vec!["GALAXY_HTTP_ADR"]);
        assert!(layered.config().is_ok());
        assert!(unknown_warning("GALAXY_HTTP_ADR").contains("not a setting"));
    }

    #[test]
    fn the_environment_wins_over_the_file_and_the_file_over_the_defaults() {
        let f = file(
            "http_addr = \"0.0.0.0:9000\"\nmail_interval = \"2s\"\n\
             database_max_connections = 20\nbootstrap_admins = [\"a@example.org\", \"b@example.org\"]\n",
        );
        let layered = Layered::load(
            Some(f.path()),
            &env(&[("GALAXY_MAIL_INTERVAL", "300ms"), ("HOME", "/root")]),
        )
        .unwrap();
        let config = layered.config().unwrap();
        assert_eq!(config.http_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(config.mail_interval, std::time::Duration::from_millis(300));
        assert_eq!(config.database_max_connections, 20);
        assert_eq!(config.bootstrap_admins.len(), 2);
        assert!(layered.is_set("GALAXY_HTTP_ADDR") && !layered.is_set("GALAXY_LOG"));
        let listing = effective_listing(&layered);
        assert!(
            listing.contains("GALAXY_MAIL_INTERVAL = 300ms  (environment)"),
            "{listing}"
        );
        assert!(listing.contains("GALAXY_HTTP_ADDR = 0.0.0.0:9000  (file)"));
        assert!(listing.contains("GALAXY_LOG = info  (default)"));
    }

    #[test]
    fn the_file_is_named_by_galaxy_config_file_and_bad_files_name_the_problem() {
        let f = file("log_format = \"pretty\"\n");
        let path = f.path().display().to_string();
        let layered = Layered::load(None, &env(&[(CONFIG_FILE_VARIABLE, &path)])).unwrap();
        assert_eq!(
            layered.config().unwrap().log_format,
            super::super::LogFormat::Pretty
        );

        for (text, expected) in [
            (
                "mail_intervall = \"1s\"\n",
                "`mail_intervall` is not a setting",
            ),
            (
                "MAIL_INTERVAL = \"1s\"\n",
                "`MAIL_INTERVAL` is not a setting",
            ),
            ("config_file = \"/x\"\n", "`config_file` is not a setting"),
            ("[log]\nlevel = \"x\"\n", "`log` must be a string"),
            ("[smtp]\nurl = \"x\"\n", "`smtp` is not a setting"),
            ("login_code_key = \"oops\n", "not valid TOML at line 1"),
        ] {
            let f = file(text);
            let error = Layered::load(Some(f.path()), &HashMap::new()).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(
                message.contains(&f.path().display().to_string()),
                "{message}"
            );
            assert!(!message.contains("oops"), "a secret leaked: {message}");
        }
        let missing = Layered::load(Some(Path::new("/nonexistent/galaxy.toml")), &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(missing.contains("/nonexistent/galaxy.toml"), "{missing}");

        // A bad value in the file is reported as the environment's would be.
        let f = file("session_ttl = \"forever\"\n");
        let error = Layered::load(Some(f.path()), &HashMap::new())
            .unwrap()
            .config()
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("GALAXY_SESSION_TTL="), "{error}");
    }

    /// Each list's array is joined with that list's separator: the engine lists are
    /// `;`-separated, and joined with `,` two engines were one with a nonsense image that
    /// `config check` still called valid.
    #[test]
    fn an_array_is_joined_with_its_settings_own_separator() {
        let f = file(
            "engines = [\"a=img:1\", \"b=img:2\"]\n\
             process_engines = [\"c=/bin/true --x\", \"d=/bin/false\"]\n\
             engines_without_token = [\"a\", \"c\"]\n\
             trusted_proxies = [\"10.0.0.1\", \"10.1.0.0/16\"]\n\
             log = [\"info\", \"galaxy_core=debug\"]\n",
        );
        let layered = Layered::load(Some(f.path()), &HashMap::new()).unwrap();
        let config = layered.config().unwrap();
        let docker = &config.runtime.docker_engines;
        let name = |n: &str| galaxy_core::domain::game::EngineName::parse(n).unwrap();
        assert!(docker.names().contains(&name("b")), "{docker:?}");
        assert_eq!(docker.resolve(&name("a")).unwrap(), "img:1");
        assert_eq!(docker.resolve(&name("b")).unwrap(), "img:2");
        let process = &config.runtime.process_engines;
        assert_eq!(process.resolve(&name("c")).unwrap(), "/bin/true --x");
        assert_eq!(process.resolve(&name("d")).unwrap(), "/bin/false");
        assert_eq!(config.runtime.engines.without_token.len(), 2);
        assert!(config.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        let listing = effective_listing(&layered);
        assert!(
            listing.contains("GALAXY_ENGINES = a=img:1;b=img:2  (file)"),
            "{listing}"
        );
        assert!(
            listing.contains("GALAXY_LOG = info,galaxy_core=debug  (file)"),
            "{listing}"
        );

        // An array where a setting takes one value is refused, not glued together.
        for text in ["http_addr = [\"a\"]\n", "smtp_timeout = [\"1s\", \"2s\"]\n"] {
            let f = file(text);
            let message = Layered::load(Some(f.path()), &HashMap::new())
                .unwrap_err()
                .to_string();
            assert!(message.contains("is not a list"), "{text:?}: {message}");
        }
    }

    /// [`LIST_SEPARATORS`] is the separator every list setting's documentation gives, and
    /// names every such setting.
    #[test]
    fn every_documented_list_has_its_separator() {
        for setting in SETTINGS {
            let documented = if setting.meaning.starts_with("Comma-separated") {
                Some(',')
            } else if setting.meaning.contains("separated by `;`") {
                Some(';')
            } else {
                None
            };
            assert_eq!(
                list_separator(setting.variable),
                documented,
                "{}",
                setting.variable
            );
        }
        for (variable, _) in LIST_SEPARATORS {
            assert!(
                SETTINGS.iter().any(|s| s.variable == *variable),
                "{variable}"
            );
        }
    }

    #[test]
    fn secrets_are_redacted_wherever_they_come_from() {
        let f = file("database_url = \"postgres://galaxy:hunter2@db/galaxy\"\n");
        let layered = Layered::load(
            Some(f.path()),
            &env(&[("GALAXY_INTERNAL_TOKEN", "internal-token-0123456789")]),
        )
        .unwrap();
        let listing = effective_listing(&layered);
        assert!(!listing.contains("hunter2") && !listing.contains("0123456789"));
        assert!(listing.contains("GALAXY_DATABASE_URL = <redacted>  (file)"));
        assert!(listing.contains("GALAXY_INTERNAL_TOKEN = <redacted>  (environment)"));
    }

    #[test]
    fn every_setting_the_docs_call_secret_is_redacted() {
        for setting in SETTINGS {
            let says_secret = setting.meaning.to_ascii_lowercase().contains("(secret");
            if says_secret {
                assert!(
                    SECRET_SETTINGS.contains(&setting.variable),
                    "{} is documented as a secret but not in SECRET_SETTINGS",
                    setting.variable
                );
            }
        }
        for secret in SECRET_SETTINGS {
            assert!(SETTINGS.iter().any(|s| s.variable == *secret), "{secret}");
        }
    }

    #[test]
    fn the_defaults_file_uncommented_is_the_default_configuration() {
        let text = defaults_toml();
        for setting in SETTINGS {
            let key = format!("\n# {} = ", key_of(setting.variable));
            assert!(text.contains(&key), "{key} missing");
        }
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.split_once(" = \"")
                    .is_some_and(|(key, _)| SETTINGS.iter().any(|s| key_of(s.variable) == key))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let f = file(&uncommented);
        let layered = Layered::load(Some(f.path()), &HashMap::new()).unwrap();
        let literal = SETTINGS.iter().filter(|s| literal_default(s)).count();
        assert_eq!(layered.vars.len(), literal);
        assert_eq!(
            format!("{:?}", layered.config().unwrap()),
            format!("{:?}", Config::default())
        );
    }
}
