//! The client's address: the TCP peer, or, when the peer is a reverse proxy the operator
//! trusts (`GALAXY_TRUSTED_PROXIES`), the address that proxy put in `X-Forwarded-For`.
//!
//! Login-code rate limits and geo read it. `X-Forwarded-For` is anyone's to write, so it
//! is believed only from trusted peers, and only as far as the chain of trusted proxies
//! goes: walking the header from the right (the entry the nearest proxy appended), the
//! first address that is not a trusted proxy is the client. An entry that is not an
//! address ends the walk at the last proxy seen, so a garbled header can never make the
//! server believe an address a trusted proxy did not write.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::state::AppState;

/// The header reverse proxies append the client's address to.
pub const FORWARDED_FOR_HEADER: &str = "x-forwarded-for";

/// Most `X-Forwarded-For` entries looked at: more hops than any real chain of proxies,
/// few enough that a padded header costs nothing.
const MAX_FORWARDED_HOPS: usize = 16;

/// One trusted network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    /// The network's address (host bits cleared).
    addr: IpAddr,
    /// Leading bits that must match.
    prefix: u8,
}

impl Network {
    fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.trim().parse().ok()?;
                let prefix: u8 = prefix.trim().parse().ok()?;
                // Addresses are compared in canonical form: an IPv4-mapped network
                // (`::ffff:10.0.0.0/104`) is the IPv4 network it maps.
                match addr.to_canonical() {
                    IpAddr::V4(v4) if addr.is_ipv6() && prefix >= 96 => (v4.into(), prefix - 96),
                    _ => (addr, prefix),
                }
            }
            None => {
                let addr = text.trim().parse::<IpAddr>().ok()?.to_canonical();
                (addr, max_prefix(addr))
            }
        };
        (prefix <= max_prefix(addr)).then(|| Self {
            addr: masked(addr, prefix),
            prefix,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && masked(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// `ip` with every bit after the first `prefix` cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed (`GALAXY_TRUSTED_PROXIES`).
/// Empty by default: the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// The trusted networks; single addresses are full-length networks.
    networks: Vec<Network>,
}

impl TrustedProxies {
    /// No trusted proxy: `X-Forwarded-For` is ignored.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list of addresses and CIDR networks
    /// (`10.0.0.0/8, 127.0.0.1, ::1`). `Err` carries the first entry that is neither.
    pub fn parse(list: &str) -> Result<Self, String> {
        let networks = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| Network::parse(entry).ok_or_else(|| entry.to_owned()))
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(ip))
    }

    /// The client's address, given the TCP peer and the request's headers (see the
    /// [module docs](self)).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        // Several headers count as one list, in order (RFC 9110, 5.3).
        let entries: Vec<&str> = headers
            .get_all(FORWARDED_FOR_HEADER)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
            let Some(ip) = parse_forwarded(entry) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.networks.iter().map(Network::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), as some proxies write them.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The client's address (see the [module docs](self)); `None` when the connection
/// reported none (an in-process call without `ConnectInfo`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// The client's address of a request, as [`ClientIp`] extracts it.
    pub fn of(parts: &Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| trusted.client_ip(addr.ip(), &parts.headers))
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(Self::of(parts, &state.trusted_proxies)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR_HEADER, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn lists_of_addresses_and_networks_parse() {
        let trusted = TrustedProxies::parse(" 10.0.0.0/8, 127.0.0.1 ,::1, 2001:db8::/32,").unwrap();
        assert_eq!(
            trusted.to_string(),
            "10.0.0.0/8,127.0.0.1/32,::1/128,2001:db8::/32"
        );
        for inside in [
            "10.1.2.3",
            "127.0.0.1",
            "::1",
            "2001:db8:1::7",
            "::ffff:10.9.9.9",
        ] {
            assert!(trusted.contains(ip(inside)), "{inside}");
        }
        for outside in ["11.0.0.1", "127.0.0.2", "::2", "2001:db9::1"] {
            assert!(!trusted.contains(ip(outside)), "{outside}");
        }
        assert_eq!(TrustedProxies::parse("").map(|t| t.is_empty()), Ok(true));
        assert!(TrustedProxies::parse("0.0.0.0/0").is_ok_and(|t| t.contains(ip("8.8.8.8"))));
        let mapped = TrustedProxies::parse("::ffff:192.0.2.0/120").unwrap();
        assert_eq!(mapped.to_string(), "192.0.2.0/24");
        assert!(mapped.contains(ip("192.0.2.9")));
        for bad in [
            "10.0.0.0/33",
            "proxy.local",
            "10.0.0/8",
            "::1/129",
            "1.2.3.4/x",
        ] {
            assert_eq!(TrustedProxies::parse(bad), Err(bad.to_owned()), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let headers = forwarded(&["81.2.69.10"]);
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &headers),
            ip("81.2.69.10")
        );
        assert_eq!(
            trusted.client_ip(ip("192.0.2.1"), &headers),
            ip("192.0.2.1")
        );
        assert_eq!(
            TrustedProxies::none().client_ip(ip("127.0.0.1"), &headers),
            ip("127.0.0.1")
        );
        assert_eq!(
            trusted.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1"),
            "no header: the proxy itself"
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let peer = ip("127.0.0.1");
        // A client that sends its own header cannot choose its address: the proxies
        // append the one they saw.
        let headers = forwarded(&["1.1.1.1, 81.2.69.10, 10.0.0.2"]);
        assert_eq!(trusted.client_ip(peer, &headers), ip("81.2.69.10"));
        let split = forwarded(&["1.1.1.1", "81.2.69.10", "10.0.0.2"]);
        assert_eq!(trusted.client_ip(peer, &split), ip("81.2.69.10"));
        let ports = forwarded(&["[2001:db8::7]:443, 10.0.0.2:8080"]);
        assert_eq!(trusted.client_ip(peer, &ports), ip("2001:db8::7"));
        let only_proxies = forwarded(&["10.0.0.3, 10.0.0.2"]);
        assert_eq!(trusted.client_ip(peer, &only_proxies), ip("10.0.0.3"));
        let garbled = forwarded(&["81.2.69.10, unknown, 10.0.0.2"]);
        assert_eq!(trusted.client_ip(peer, &garbled), ip("10.0.0.2"));
        let mapped = forwarded(&["::ffff:81.2.69.10"]);
        assert_eq!(trusted.client_ip(peer, &mapped), ip("81.2.69.10"));
    }
}
