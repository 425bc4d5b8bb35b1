//! Reloading a replaced database file, and keeping the old one when the new is bad.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use galaxy_core::ports::GeoLocator;
use galaxy_core::worker::Worker;
use galaxy_geoip::{DatabaseReloader, GeoIpError, MaxMindLocator, watch};
use tokio_util::sync::CancellationToken;

/// An address that is GB in the main fixture and FR in the alternative one.
const PROBE: &str = "81.2.69.160";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn probe(locator: &MaxMindLocator) -> String {
    locator.country(PROBE.parse::<IpAddr>().unwrap())
}

/// A temporary copy of the main fixture, and the locator over it.
fn copy_of_main() -> (tempfile::TempDir, PathBuf, Arc<MaxMindLocator>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("GeoLite2-Country.mmdb");
    std::fs::copy(fixture("test-country.mmdb"), &path).unwrap();
    let locator = Arc::new(MaxMindLocator::open(&path).unwrap());
    assert_eq!(probe(&locator), "GB");
    (dir, path, locator)
}

/// Replaces `target` atomically with a copy of the fixture `name`, as updaters do.
fn replace_atomically(target: &Path, name: &str) {
    let staging = target.with_extension("tmp");
    std::fs::copy(fixture(name), &staging).unwrap();
    std::fs::rename(&staging, target).unwrap();
}

/// Polls `locator` until the probe gives `expected`, failing after a generous deadline.
async fn eventually(locator: &MaxMindLocator, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = probe(locator);
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {got}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn an_unchanged_file_is_not_reloaded() {
    let (_dir, _path, locator) = copy_of_main();
    assert!(!locator.reload_if_changed().unwrap());
    assert!(!locator.reload_if_changed().unwrap());
    assert_eq!(probe(&locator), "GB");
}

#[test]
fn a_replaced_file_is_loaded() {
    let (_dir, path, locator) = copy_of_main();
    replace_atomically(&path, "test-country-alt.mmdb");
    assert!(locator.reload_if_changed().unwrap());
    assert_eq!(probe(&locator), "FR");
    assert_eq!(locator.country("2001:218::1".parse().unwrap()), "US");
    assert!(!locator.reload_if_changed().unwrap());
}

#[test]
fn a_file_rewritten_in_place_is_loaded() {
    let (_dir, path, locator) = copy_of_main();
    std::fs::write(
        &path,
        std::fs::read(fixture("test-country-alt.mmdb")).unwrap(),
    )
    .unwrap();
    assert!(locator.reload_if_changed().unwrap());
    assert_eq!(probe(&locator), "FR");
}

#[test]
fn a_corrupt_replacement_keeps_the_old_database() {
    let (_dir, path, locator) = copy_of_main();
    for bad in ["test-country-corrupt.mmdb", "test-country-damaged.mmdb"] {
        replace_atomically(&path, bad);
        let error = locator.reload_if_changed().unwrap_err();
        assert!(matches!(error, GeoIpError::Invalid { .. }), "{error:?}");
        assert_eq!(error.path(), path);
        assert_eq!(probe(&locator), "GB", "after {bad}");
        // The same bad file is reported once, not at every poll.
        assert!(!locator.reload_if_changed().unwrap());
    }
    // A good file after a bad one is taken.
    replace_atomically(&path, "test-country-alt.mmdb");
    assert!(locator.reload_if_changed().unwrap());
    assert_eq!(probe(&locator), "FR");
}

#[test]
fn a_deleted_file_keeps_the_old_database_until_it_returns() {
    let (_dir, path, locator) = copy_of_main();
    std::fs::remove_file(&path).unwrap();
    let error = locator.reload_if_changed().unwrap_err();
    assert!(matches!(error, GeoIpError::Read { .. }), "{error:?}");
    assert!(!locator.reload_if_changed().unwrap());
    assert_eq!(probe(&locator), "GB");
    replace_atomically(&path, "test-country-alt.mmdb");
    assert!(locator.reload_if_changed().unwrap());
    assert_eq!(probe(&locator), "FR");
}

#[tokio::test]
async fn the_reloader_worker_reports_what_it_did() {
    let (_dir, path, locator) = copy_of_main();
    let reloader = DatabaseReloader::new(Arc::clone(&locator));
    assert_eq!(reloader.tick().await.unwrap().handled, 0);
    replace_atomically(&path, "test-country-corrupt.mmdb");
    // Refused: logged, not a worker error, nothing handled.
    assert_eq!(reloader.tick().await.unwrap().handled, 0);
    assert_eq!(probe(&locator), "GB");
    replace_atomically(&path, "test-country-alt.mmdb");
    assert_eq!(reloader.tick().await.unwrap().handled, 1);
    assert_eq!(probe(&locator), "FR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_picks_up_replacements_and_stops_on_cancel() {
    let (_dir, path, locator) = copy_of_main();
    let cancel = CancellationToken::new();
    let watcher = tokio::spawn(watch(
        Arc::clone(&locator),
        Duration::from_millis(10),
        cancel.clone(),
    ));

    replace_atomically(&path, "test-country-alt.mmdb");
    eventually(&locator, "FR").await;

    // Whether or not a poll catches the corrupt file in between, the loop goes on and
    // takes the next good one.
    replace_atomically(&path, "test-country-corrupt.mmdb");
    replace_atomically(&path, "test-country.mmdb");
    eventually(&locator, "GB").await;

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("watcher stops on cancel")
        .unwrap();
}
