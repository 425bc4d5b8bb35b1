//! Conformance suite for [`GeoLocator`]: an answer is always either
//! [`UNKNOWN_COUNTRY`] or an ISO 3166-1 alpha-2 code (two upper-case ASCII letters);
//! addresses no database can place (private, loopback, link-local, shared, documentation,
//! unspecified, in IPv4 and IPv6, and IPv4 mapped into IPv6) are `unknown`; the addresses
//! the fixture knows give their country, mapped or not; and concurrent lookups agree.
//!
//! A locator author calls [`run_all`] with the locator and the addresses its test data
//! places (none for a locator that knows no address):
//!
//! ```rust,ignore
//! let known = [("81.2.69.160".parse()?, "GB")];
//! galaxy_ports::conformance::locator::run_all(Arc::new(my_locator), &known);
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use galaxy_core::ports::{GeoLocator, UNKNOWN_COUNTRY};

const SUITE: &str = "geo locator";

/// Addresses no locator may place.
pub const UNPLACEABLE: [&str; 18] = [
    "10.1.2.3",
    "172.16.5.4",
    "192.168.0.10",
    "127.0.0.1",
    "169.254.0.1",
    "100.64.0.1",
    "0.0.0.0",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd00::1",
    "2001:db8::1",
    "::ffff:10.1.2.3",
    "::ffff:127.0.0.1",
];

/// Runs every case on `locator`; `known` pairs addresses with the code it must answer.
pub fn run_all<L: GeoLocator + 'static>(locator: Arc<L>, known: &[(IpAddr, &str)]) {
    eprintln!("conformance {SUITE}: unplaceable addresses are unknown");
    for text in UNPLACEABLE {
        let ip = parse(text);
        assert_eq!(locator.country(ip), UNKNOWN_COUNTRY, "{text}");
    }

    eprintln!("conformance {SUITE}: known addresses give their country, mapped or not");
    for (ip, code) in known {
        assert_eq!(locator.country(*ip), *code, "{ip}");
        if let IpAddr::V4(v4) = ip {
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            assert_eq!(locator.country(mapped), *code, "{mapped}");
        }
    }

    eprintln!("conformance {SUITE}: every answer is unknown or two upper-case letters");
    let sweep: Vec<IpAddr> = sweep().collect();
    for ip in &sweep {
        let code = locator.country(*ip);
        assert!(well_formed(&code), "{ip}: {code:?}");
    }

    eprintln!("conformance {SUITE}: concurrent lookups agree");
    let expected: Vec<String> = sweep.iter().map(|ip| locator.country(*ip)).collect();
    let sweep = Arc::new(sweep);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (locator, sweep) = (locator.clone(), sweep.clone());
            std::thread::spawn(move || {
                sweep
                    .iter()
                    .map(|ip| locator.country(*ip))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        match thread.join() {
            Ok(answers) => assert_eq!(answers, expected, "a lookup changed its answer"),
            Err(_) => panic!("a lookup panicked"),
        }
    }
}

fn parse(text: &str) -> IpAddr {
    match text.parse() {
        Ok(ip) => ip,
        Err(error) => panic!("{text}: {error}"),
    }
}

fn well_formed(code: &str) -> bool {
    code == UNKNOWN_COUNTRY || (code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()))
}

/// 2048 addresses spread over both families (a fixed sequence, so runs compare).
fn sweep() -> impl Iterator<Item = IpAddr> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..2048).map(move |n| {
        // xorshift64*: cheap, deterministic, well spread.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if n % 2 == 0 {
            IpAddr::from(((bits >> 32) as u32).to_be_bytes())
        } else {
            let high = u128::from(bits) << 64;
            IpAddr::from((high | u128::from(bits.rotate_left(17))).to_be_bytes())
        }
    })
}
