//! The options of `backup` and `restore`, settled as the server would have them: the data
//! directory and the container runtime from the option, else the environment over the
//! configuration file, else the server's defaults.

use std::path::PathBuf;

use clap::Args;
use galaxy_server::config::Layered;

/// Options of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The directory to write (must not exist yet).
    #[arg(long)]
    pub(super) out: PathBuf,
    /// The server's data directory (default: GALAXY_DATA_DIR of the environment or the
    /// configuration file, else ./galaxy-data).
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir_given: Option<PathBuf>,
    /// The server's container runtime, which says where the engines' data lives (default:
    /// GALAXY_RUNTIME of the environment or the configuration file, else the server's own
    /// default, `docker`). With `docker` the engines' data volumes are backed up too
    /// (Docker is reached as the server reaches it: `DOCKER_HOST` or the local socket);
    /// with `process` their data is in the data directory, copied with it.
    #[arg(long = "runtime", value_name = "RUNTIME", value_parser = parse_runtime)]
    runtime_given: Option<Runtime>,
    /// The data directory in effect ([`BackupArgs::settle`]).
    #[arg(skip)]
    pub(super) data_dir: PathBuf,
    /// The runtime in effect ([`BackupArgs::settle`]).
    #[arg(skip)]
    pub(super) runtime: Runtime,
}

impl BackupArgs {
    /// Settles the data directory and the runtime as the server would have them: the
    /// option, else `settings` (the environment over the configuration file), else the
    /// server's defaults. A runtime name the server would refuse is refused here too.
    pub fn settle(&mut self, settings: &Layered) -> anyhow::Result<()> {
        self.data_dir = data_dir(self.data_dir_given.take(), settings);
        self.runtime = match (self.runtime_given, settings.value("GALAXY_RUNTIME")) {
            (Some(runtime), _) => runtime,
            (None, Some(name)) => parse_runtime(name).map_err(|e| anyhow::anyhow!(e))?,
            (None, None) => Runtime::Docker,
        };
        Ok(())
    }
}

/// The data directory: `given`, else `GALAXY_DATA_DIR` of `settings`, else the server's
/// default.
fn data_dir(given: Option<PathBuf>, settings: &Layered) -> PathBuf {
    given
        .or_else(|| settings.value("GALAXY_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// The server's default `GALAXY_DATA_DIR`.
const DEFAULT_DATA_DIR: &str = "./galaxy-data";

/// The container runtimes of `GALAXY_RUNTIME`, as far as a backup cares: a backup taken
/// with another runtime than the server's would leave the engines' data behind, so an
/// unknown name is refused rather than read as "no volumes".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Runtime {
    /// One container per game; its data in a Docker volume.
    #[default]
    Docker,
    /// Engines as local processes; their data under `$GALAXY_DATA_DIR/engines`.
    Process,
    /// No engine runs.
    None,
}

/// Reads a runtime name as the server reads `GALAXY_RUNTIME`: trimmed, and empty as unset
/// (the server's default, `docker`).
fn parse_runtime(text: &str) -> Result<Runtime, String> {
    match text.trim() {
        "" | "docker" => Ok(Runtime::Docker),
        "process" => Ok(Runtime::Process),
        "none" => Ok(Runtime::None),
        other => Err(format!(
            "{other:?} is not a container runtime: docker, process or none (the server's \
             GALAXY_RUNTIME)"
        )),
    }
}

/// Options of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory.
    #[arg(long)]
    pub(super) from: PathBuf,
    /// The data directory to restore into, empty or absent (default: GALAXY_DATA_DIR of
    /// the environment or the configuration file; one of the three must name it).
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir_given: Option<PathBuf>,
    /// The data directory in effect ([`RestoreArgs::settle`]).
    #[arg(skip)]
    pub(super) data_dir: PathBuf,
}

impl RestoreArgs {
    /// Settles the data directory as [`BackupArgs::settle`] does, except that one must
    /// be named (the option, the environment or the file): a restore never fills
    /// `./galaxy-data` of wherever it was run by default, where the server would not
    /// look (the systemd unit sets `GALAXY_DATA_DIR` in its own environment).
    pub fn settle(&mut self, settings: &Layered) -> anyhow::Result<()> {
        if self.data_dir_given.is_none() && settings.value("GALAXY_DATA_DIR").is_none() {
            anyhow::bail!(
                "name the server's data directory to restore into: --data-dir, \
                 GALAXY_DATA_DIR, or data_dir in the --config file"
            );
        }
        self.data_dir = data_dir(self.data_dir_given.take(), settings);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::*;

    #[test]
    fn runtime_names_are_read_as_the_server_reads_them() {
        for (text, runtime) in [
            ("docker", Runtime::Docker),
            (" docker ", Runtime::Docker),
            ("", Runtime::Docker),
            ("  ", Runtime::Docker),
            ("process", Runtime::Process),
            ("none\n", Runtime::None),
        ] {
            assert_eq!(parse_runtime(text), Ok(runtime), "{text:?}");
        }
        for text in ["dokcer", "Docker", "kubernetes"] {
            let Err(message) = parse_runtime(text) else {
                panic!("{text:?} was taken");
            };
            assert!(message.contains("docker, process or none"), "{message}");
        }
    }

    /// `backup`'s command line alone.
    #[derive(Debug, clap::Parser)]
    struct BackupLine {
        #[command(flatten)]
        args: BackupArgs,
    }

    fn settled(line: &[&str], settings: &Layered) -> anyhow::Result<BackupArgs> {
        use clap::Parser as _;
        let mut args = BackupLine::try_parse_from(line)?.args;
        args.settle(settings)?;
        Ok(args)
    }

    /// The option wins, then the environment, then the configuration file, then the
    /// server's defaults, as the server reads its settings; a runtime the server would
    /// refuse is refused from the file too.
    #[test]
    fn the_data_directory_and_runtime_come_as_the_server_takes_them() {
        use std::collections::HashMap;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("galaxy.toml");
        std::fs::write(&file, "data_dir = \"/srv/galaxy\"\nruntime = \"process\"\n").unwrap();
        let none = HashMap::new();
        let from_file = Layered::load(Some(&file), &none).unwrap();
        let out = ["backup", "--out", "/tmp/b"];
        let args = settled(&out, &from_file).unwrap();
        assert_eq!(
            (args.data_dir.as_path(), args.runtime),
            (Path::new("/srv/galaxy"), Runtime::Process)
        );
        let env = HashMap::from([("GALAXY_RUNTIME".to_owned(), "none".to_owned())]);
        let layered = Layered::load(Some(&file), &env).unwrap();
        let args = settled(&out, &layered).unwrap();
        assert_eq!(args.runtime, Runtime::None, "the environment over the file");
        let given = [
            "backup",
            "--out",
            "/tmp/b",
            "--data-dir",
            "/d",
            "--runtime",
            "docker",
        ];
        let args = settled(&given, &layered).unwrap();
        assert_eq!(
            (args.data_dir.as_path(), args.runtime),
            (Path::new("/d"), Runtime::Docker)
        );
        let args = settled(&out, &Layered::load(None, &none).unwrap()).unwrap();
        assert_eq!(
            (args.data_dir.as_path(), args.runtime),
            (Path::new("./galaxy-data"), Runtime::Docker)
        );
        std::fs::write(&file, "runtime = \"kubernetes\"\n").unwrap();
        let bad = Layered::load(Some(&file), &none).unwrap();
        assert!(settled(&out, &bad).is_err());
    }

    /// `restore` never picks the built-in data directory: it must be named.
    #[test]
    fn a_restore_needs_its_data_directory_named() {
        use clap::Parser as _;
        use std::collections::HashMap;
        #[derive(Debug, clap::Parser)]
        struct RestoreLine {
            #[command(flatten)]
            args: RestoreArgs,
        }
        let none = HashMap::new();
        let nothing = Layered::load(None, &none).unwrap();
        let mut args = RestoreLine::try_parse_from(["restore", "--from", "/b"])
            .unwrap()
            .args;
        let refused = args.settle(&nothing).unwrap_err();
        assert!(refused.to_string().contains("--data-dir"), "{refused}");
        let env = HashMap::from([("GALAXY_DATA_DIR".to_owned(), "/var/lib/galaxy".to_owned())]);
        let mut args = RestoreLine::try_parse_from(["restore", "--from", "/b"])
            .unwrap()
            .args;
        args.settle(&Layered::load(None, &env).unwrap()).unwrap();
        assert_eq!(args.data_dir, Path::new("/var/lib/galaxy"));
    }
}
