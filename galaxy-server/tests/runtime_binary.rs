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

/// Settings that validate on their own but cannot be used once start-up tries them (a
/// GeoIP file that is not there) are configuration errors too: exit 2, which a
/// supervisor configured not to restart on it (systemd's `RestartPreventExitStatus=2`)
/// leaves stopped.
#[test]
fn a_setting_unusable_at_start_up_exits_2_naming_the_variable() {
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("no-such.mmdb");
    let out = Command::new(env!("CARGO_BIN_EXE_galaxy-server"))
        .arg("dev")
        .env("GALAXY_DATA_DIR", data.path())
        .env("GALAXY_GEOIP_DB", &missing)
        .env("GALAXY_HTTP_ADDR", "127.0.0.1:0")
        .env("GALAXY_GRPC_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GALAXY_GEOIP_DB"), "{stderr}");
}
