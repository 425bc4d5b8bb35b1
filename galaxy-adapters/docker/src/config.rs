//! The Docker runtime's settings.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The port every engine listens on inside its container (`GALAXY_ENGINE_ADDR=0.0.0.0:8080`).
pub const ENGINE_PORT: u16 = 8080;

/// Where each game's data volume is mounted (`GALAXY_ENGINE_DATA_DIR=/data`).
pub const DATA_MOUNT: &str = "/data";

/// The user engines run as unless configured otherwise: `nobody:nogroup` by number, so it
/// exists in every image, `FROM scratch` included, and owns nothing on the host.
pub const ENGINE_USER: &str = "65534:65534";

/// The range per-game networks are carved from unless configured otherwise: 8192 games of
/// one `/29` each, outside Docker's own default pools (`172.17.0.0/12`,
/// `192.168.0.0/16`).
pub const DEFAULT_SUBNETS: &str = "10.213.0.0/16";

/// The size of one game's network: `/29`, eight addresses: network, gateway (`.1`, the
/// host), engine (`.2`, fixed), one spare, three for servers' containers joining it
/// (`.4/30`, the only range Docker assigns from), broadcast.
pub const GAME_PREFIX: u8 = 29;

/// How the platform reaches the engines, and what the engines can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// Each game's engine alone on its own `--internal` Docker network, a `/29` from
    /// [`GameNetworks::subnets`], at a fixed address (`.2`): it can reach neither the
    /// outside world nor another engine. The endpoint is `http://<that address>:8080`: the
    /// host reaches it directly (a server on the host), and a server in a container
    /// reaches it once joined to the network ([`GameNetworks::server_container`]).
    /// Nothing is published. The default.
    GameNetworks(GameNetworks),
    /// Publish the engine's port 8080 on the host's 127.0.0.1, at a free host port the
    /// runtime picks at create: the endpoint is `http://127.0.0.1:<host port>`. The port is
    /// fixed in the container's configuration, so it stays the same across Docker's
    /// restarts (an ephemeral `-p 127.0.0.1::8080` port changes on every start), and no
    /// new container gets the port of another engine container, even a stopped one
    /// ([`DockerRuntime::loopback_ports_in_use`](crate::DockerRuntime::loopback_ports_in_use)). The
    /// engines share Docker's default bridge: they can reach each other and the outside
    /// world (Docker cannot publish a port of an `--internal` network). For hosts that
    /// cannot route to container addresses (Docker Desktop, rootless Docker).
    LoopbackPort,
    /// Attach each container to this user-defined Docker network (created at connect when
    /// missing); the endpoint is `http://galaxy-game-{game_id}:8080`, resolved by Docker's
    /// DNS. For a server that runs in a container on the same network. Nothing is
    /// published; the engines share the network, so they can reach each other (and the
    /// outside world, unless the operator made the network `--internal`).
    Network(String),
}

impl Default for Addressing {
    /// One network per game from [`DEFAULT_SUBNETS`], the server on the host.
    fn default() -> Self {
        Self::GameNetworks(GameNetworks::default())
    }
}

/// The settings of [`Addressing::GameNetworks`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GameNetworks {
    /// The range each game's `/29` is taken from. It must not overlap a network the host
    /// routes elsewhere: Docker only checks its own networks.
    pub subnets: Subnets,
    /// The server's own container (name or id) when the server runs in a container: it
    /// is connected to each game's network before the engine starts, and disconnected
    /// when the engine's container is removed. `None`: the server runs on the host, which
    /// reaches every bridge network directly.
    pub server_container: Option<String>,
}

/// An IPv4 range given as CIDR (`10.213.0.0/16`), carved into one `/29` per game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnets {
    /// The first address, with the host bits cleared.
    base: u32,
    /// The prefix length, 8..=[`GAME_PREFIX`].
    prefix: u8,
}

/// A range that cannot hold game networks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubnetsError {
    /// Not `a.b.c.d/n`.
    #[error("{0:?} is not an IPv4 range like 10.213.0.0/16")]
    Syntax(String),
    /// A prefix too long to hold one `/29`, or too short to be sane.
    #[error("the range's prefix must be 8 to {GAME_PREFIX}, got /{0}")]
    Prefix(u8),
    /// Host bits set (`10.213.0.1/16`): probably not the range meant.
    #[error("{0} has host bits set; did you mean its network address?")]
    HostBits(String),
}

impl Subnets {
    /// How many game networks the range holds.
    pub fn capacity(&self) -> u32 {
        1 << (GAME_PREFIX - self.prefix)
    }

    /// The `slot`th `/29` of the range (`None` past its end).
    pub fn slot(&self, slot: u32) -> Option<GameSubnet> {
        (slot < self.capacity()).then(|| GameSubnet {
            base: self.base + (slot << (32 - GAME_PREFIX)),
        })
    }
}

impl Default for Subnets {
    fn default() -> Self {
        Self {
            base: u32::from(Ipv4Addr::new(10, 213, 0, 0)),
            prefix: 16,
        }
    }
}

impl FromStr for Subnets {
    type Err = SubnetsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (base, prefix) =
            parse_cidr(text.trim()).ok_or_else(|| SubnetsError::Syntax(text.to_owned()))?;
        if !(8..=GAME_PREFIX).contains(&prefix) {
            return Err(SubnetsError::Prefix(prefix));
        }
        if base & !mask(prefix) != 0 {
            return Err(SubnetsError::HostBits(text.trim().to_owned()));
        }
        Ok(Self { base, prefix })
    }
}

impl fmt::Display for Subnets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// One game's `/29`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GameSubnet {
    /// Its network address.
    base: u32,
}

impl GameSubnet {
    /// Its network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    /// The gateway: the host's address on the network.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// The engine's fixed address.
    pub fn engine(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 2)
    }

    /// The addresses Docker assigns by itself (`.4/30`): to servers' containers joining
    /// the network. Kept apart from the engine's, which a container joining before the
    /// engine first starts would otherwise take (measured: the engine's start then fails
    /// with "Address already in use").
    pub fn dynamic_range(&self) -> String {
        format!("{}/30", Ipv4Addr::from(self.base + 4))
    }

    /// Whether it shares an address with `cidr` (Docker's form, `a.b.c.d/n`); an IPv6 or
    /// unreadable range shares nothing.
    pub fn overlaps(&self, cidr: &str) -> bool {
        let Some((base, prefix)) = parse_cidr(cidr) else {
            return false;
        };
        let common = mask(prefix.min(GAME_PREFIX));
        base & common == self.base & common
    }
}

impl fmt::Display for GameSubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{GAME_PREFIX}", self.network())
    }
}

/// `a.b.c.d/n` as (address, prefix).
fn parse_cidr(text: &str) -> Option<(u32, u8)> {
    let (address, prefix) = text.split_once('/')?;
    let address: Ipv4Addr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some((u32::from(address), prefix))
}

/// The network mask of a prefix length.
fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

/// Settings of a [`DockerRuntime`](crate::DockerRuntime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// How engines are reached, and what they reach.
    pub addressing: Addressing,
    /// Docker's `on-failure` restart policy: how many times Docker restarts a crashed
    /// engine (0 turns the policy off: `no`).
    pub max_restarts: u32,
    /// Pull an image that is missing locally from its registry. Off by default: images
    /// are built locally (`galaxy-cli engine image`) and a pull would only fail slowly.
    pub pull_missing_images: bool,
    /// The user engines run as (`uid[:gid]` or a name the image knows); `None` keeps the
    /// image's own `USER`. The data volume must be writable by it: an image declares
    /// `/data` owned by that user, and Docker gives a new volume that owner.
    pub engine_user: Option<String>,
}

impl Default for DockerConfig {
    /// A network per game, five restarts, no pulls, engines as [`ENGINE_USER`].
    fn default() -> Self {
        Self {
            addressing: Addressing::default(),
            max_restarts: 5,
            pull_missing_images: false,
            engine_user: Some(ENGINE_USER.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ranges_parse_and_carve_into_slash_29s() {
        let range: Subnets = "10.213.0.0/16".parse().unwrap();
        assert_eq!(range, Subnets::default());
        assert_eq!(range.to_string(), "10.213.0.0/16");
        assert_eq!(range.capacity(), 8192);
        let first = range.slot(0).unwrap();
        assert_eq!(first.to_string(), "10.213.0.0/29");
        assert_eq!(first.gateway(), Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(first.engine(), Ipv4Addr::new(10, 213, 0, 2));
        assert_eq!(first.dynamic_range(), "10.213.0.4/30");
        let second = range.slot(1).unwrap();
        assert_eq!(second.to_string(), "10.213.0.8/29");
        assert_eq!(range.slot(8191).unwrap().to_string(), "10.213.255.248/29");
        assert_eq!(range.slot(8192), None);
        let one: Subnets = "192.0.2.8/29".parse().unwrap();
        assert_eq!((one.capacity(), one.slot(1)), (1, None));
    }

    #[test]
    fn bad_ranges_say_why() {
        for (text, error) in [
            ("10.213.0.0", SubnetsError::Syntax("10.213.0.0".into())),
            ("fd00::/64", SubnetsError::Syntax("fd00::/64".into())),
            ("10.0.0.0/30", SubnetsError::Prefix(30)),
            ("10.0.0.0/4", SubnetsError::Prefix(4)),
            (
                "10.213.0.1/16",
                SubnetsError::HostBits("10.213.0.1/16".into()),
            ),
        ] {
            assert_eq!(text.parse::<Subnets>(), Err(error), "{text}");
        }
    }

    #[test]
    fn overlaps_compare_the_common_prefix() {
        let slot = Subnets::default().slot(1).unwrap(); // 10.213.0.8/29
        assert!(slot.overlaps("10.213.0.8/29"));
        assert!(slot.overlaps("10.213.0.0/16"), "inside a larger network");
        assert!(slot.overlaps("10.213.0.12/30"), "holding a smaller one");
        assert!(!slot.overlaps("10.213.0.0/29"));
        assert!(!slot.overlaps("172.17.0.0/16"));
        assert!(!slot.overlaps("fd00::/64"));
        assert!(slot.overlaps("0.0.0.0/0"));
    }
}
