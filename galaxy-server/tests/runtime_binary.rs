//! The binary refuses a bad runtime setting before anything starts: exit status 2 and a
//! message naming the variable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn bad_runtime_settings_exit_2_naming_the_variable() {
    let data = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("GALAXY_ENGINES", "reference"),
        ("GALAXY_PROCESS_ENGINES", "reference=; other=/bin/x"),
        ("GALAXY_RUNTIME", "kubernetes"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_galaxy-server"))
            .arg("dev")
            .env("GALAXY_DATA_DIR", data.path())
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{variable}={value}: {stderr}");
        assert!(stderr.contains(variable), "{variable}={value}: {stderr}");
    }
}
