//! Lookups and opening errors against real MaxMind DB files (see `tests/data`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::PathBuf;

use galaxy_core::ports::{GeoLocator, UNKNOWN_COUNTRY};
use galaxy_geoip::{GeoIpError, MaxMindLocator, UnknownLocator};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn locator() -> MaxMindLocator {
    MaxMindLocator::open(fixture("test-country.mmdb")).unwrap()
}

#[test]
fn known_addresses_give_their_country() {
    let locator = locator();
    for (address, expected) in [
        ("81.2.69.160", "GB"),
        ("81.2.69.0", "GB"),
        ("81.2.69.255", "GB"),
        ("2.125.160.216", "GB"), // a City-shaped record
        ("175.16.199.7", "CN"),
        ("2001:218::1", "JP"),
        ("2001:218:ffff::abcd", "JP"),
        ("2a02:ff40::1", "SE"),
        ("::ffff:81.2.69.160", "GB"), // IPv4-mapped IPv6 is IPv4
        ("::ffff:175.16.199.7", "CN"),
        ("89.160.20.128", "SE"), // only a registered country
    ] {
        assert_eq!(locator.country(ip(address)), expected, "{address}");
    }
}

#[test]
fn unplaceable_addresses_are_unknown() {
    let locator = locator();
    for address in [
        // Non-public: never looked up, even where the database has data (10.0.0.0/8).
        "10.1.2.3",
        "::ffff:10.1.2.3",
        "127.0.0.1",
        "192.168.0.10",
        "172.16.5.4",
        "100.64.0.1",
        "169.254.0.1",
        "0.0.0.0",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "2001:db8::1",
        // Public but not in the database.
        "8.8.8.8",
        "81.2.70.1",
        "2c0f:f248::1",
        // In the database without a usable code.
        "198.51.0.5", // "XYZ"
        "1.1.1.1",    // no country at all
    ] {
        assert_eq!(locator.country(ip(address)), UNKNOWN_COUNTRY, "{address}");
    }
}

#[test]
fn metadata_is_reported() {
    let info = locator().info();
    assert_eq!(info.database_type, "Galaxy-Test-Country");
    assert_eq!(info.build_epoch, 1_767_225_600);
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let path = fixture("no-such-file.mmdb");
    let error = MaxMindLocator::open(&path).unwrap_err();
    assert!(matches!(error, GeoIpError::Read { .. }), "{error:?}");
    assert_eq!(error.path(), path);
    let message = error.to_string();
    assert!(message.contains("no-such-file.mmdb"), "{message}");
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn a_directory_is_a_read_error() {
    let error = MaxMindLocator::open(fixture("")).unwrap_err();
    assert!(matches!(error, GeoIpError::Read { .. }), "{error:?}");
}

#[test]
fn a_truncated_file_is_invalid() {
    let error = MaxMindLocator::open(fixture("test-country-corrupt.mmdb")).unwrap_err();
    assert!(matches!(error, GeoIpError::Invalid { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("test-country-corrupt.mmdb"), "{message}");
    assert!(message.contains("not a valid MaxMind DB"), "{message}");
}

#[test]
fn a_damaged_data_section_is_invalid() {
    // Metadata and search tree are intact, so the reader opens it: only verifying the
    // whole file finds the damage.
    let path = fixture("test-country-damaged.mmdb");
    assert!(maxminddb::Reader::from_source(std::fs::read(&path).unwrap()).is_ok());
    let error = MaxMindLocator::open(&path).unwrap_err();
    assert!(matches!(error, GeoIpError::Invalid { .. }), "{error:?}");
}

#[test]
fn a_file_of_another_format_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("GeoLite2-Country.mmdb");
    std::fs::write(&path, b"<html>403 Forbidden</html>").unwrap();
    let error = MaxMindLocator::open(&path).unwrap_err();
    assert!(matches!(error, GeoIpError::Invalid { .. }), "{error:?}");
    std::fs::write(&path, b"").unwrap();
    let error = MaxMindLocator::open(&path).unwrap_err();
    assert!(matches!(error, GeoIpError::Invalid { .. }), "{error:?}");
}

#[test]
fn lookups_run_from_many_threads() {
    let locator = std::sync::Arc::new(locator());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let locator = std::sync::Arc::clone(&locator);
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    assert_eq!(locator.country(ip("2001:218::1")), "JP");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn without_a_database_everything_is_unknown() {
    for address in ["81.2.69.160", "2001:218::1", "127.0.0.1"] {
        assert_eq!(
            UnknownLocator.country(ip(address)),
            UNKNOWN_COUNTRY,
            "{address}"
        );
    }
}
