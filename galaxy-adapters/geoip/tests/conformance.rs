//! The `GeoLocator` conformance suite of galaxy-ports on both locators of this crate: the
//! MaxMind one with the test database (tests/data, made by scripts/make-test-mmdb.py) and
//! the one that knows no address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use galaxy_geoip::{MaxMindLocator, UnknownLocator};
use galaxy_ports::conformance::locator::run_all;

#[test]
fn the_maxmind_locator_conforms() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-country.mmdb");
    let known: Vec<(IpAddr, &str)> = [
        ("81.2.69.160", "GB"),
        ("2.125.160.216", "GB"),
        ("175.16.199.7", "CN"),
        ("2001:218::1", "JP"),
        ("2a02:ff40::1", "SE"),
        ("89.160.20.128", "SE"),
    ]
    .into_iter()
    .map(|(ip, code)| (ip.parse().unwrap(), code))
    .collect();
    run_all(Arc::new(MaxMindLocator::open(path).unwrap()), &known);
}

#[test]
fn the_unknown_locator_conforms() {
    run_all(Arc::new(UnknownLocator), &[]);
}
