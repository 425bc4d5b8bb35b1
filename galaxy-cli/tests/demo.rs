//! `galaxy-cli demo` end to end: the real binary starts an in-process dev server, bots
//! play three forced turns on the process runtime, and the standings are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn the_demo_plays_three_turns_in_process_and_prints_standings() {
    let output = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(["demo", "--players", "2", "--turns", "3"])
        .output()
        .expect("galaxy-cli runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("is running with 2 bots"), "{stdout}");
    assert!(
        stdout.contains("final standings after turn 3 (3 turn(s) played"),
        "{stdout}"
    );
    for race in ["Aldebarans", "Betelgeusians"] {
        assert!(stdout.contains(race), "{race} missing: {stdout}");
    }
}

#[test]
fn the_demo_refuses_a_mail_dir_without_a_url_and_too_few_players() {
    for args in [
        &["demo", "--mail-dir", "/tmp"][..],
        &["demo", "--players", "1"][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
            .args(args)
            .output()
            .expect("galaxy-cli runs");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}
