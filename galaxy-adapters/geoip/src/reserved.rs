//! Addresses that belong to no country: answered `unknown` without a database lookup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is an address no GeoIP database can place: unspecified, loopback,
/// private (RFC 1918), shared/CGNAT (100.64.0.0/10), link-local, documentation,
/// benchmarking, multicast, broadcast and reserved IPv4 ranges; unspecified, loopback,
/// unique-local (fc00::/7), link-local, site-local, multicast and documentation IPv6
/// ranges. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is judged as its IPv4 address.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => is_non_public_v6(v6),
    }
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_documentation()
        || ip.is_multicast()
        || ip.is_broadcast()
        // 0.0.0.0/8: "this network", including the unspecified address.
        || a == 0
        // 100.64.0.0/10: shared address space (carrier-grade NAT).
        || (a == 100 && (b & 0b1100_0000) == 64)
        // 192.0.0.0/24: IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15: benchmarking.
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4: reserved for future use.
        || a >= 240
}

fn is_non_public_v6(ip: Ipv6Addr) -> bool {
    let [s0, s1, ..] = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // fec0::/10: deprecated site-local addresses, private in practice.
        || (s0 & 0xffc0) == 0xfec0
        // 2001:db8::/32 and 3fff::/20: documentation.
        || (s0 == 0x2001 && s1 == 0x0db8)
        || (s0 & 0xfff0) == 0x3ff0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or_else(|_| panic!("bad test address {text}"))
    }

    #[test]
    fn non_public_ranges_are_recognised() {
        for text in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff:1::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:100.64.1.1",
        ] {
            assert!(is_non_public(ip(text)), "{text} should be non-public");
        }
    }

    #[test]
    fn public_addresses_are_looked_up() {
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "81.2.69.160",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2001:218::1",
            "2a02:ff40::1",
            "::ffff:81.2.69.160",
        ] {
            assert!(!is_non_public(ip(text)), "{text} should be public");
        }
    }
}
