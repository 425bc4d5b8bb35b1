//! The listener's bounds on clients: open connections in all and per client, and
//! messages per client per window. A client is an IPv4 address or an IPv6 /64
//! ([`client_network`]). In memory, per process: a replica counts its own clients (the MX
//! spreads them).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use galaxy_core::domain::limit::{OpenSlot, OpenSlots, client_network};

use super::SmtpInConfig;

/// The shared counters.
pub(crate) struct Limits {
    /// Open connections, in all and per address.
    connections: Arc<OpenSlots<IpAddr>>,
    rate_count: usize,
    rate_window: Duration,
    /// When each address's recent messages began.
    messages: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// Whether a connection may proceed; dropping an admitted one frees its place.
pub(crate) enum Admission {
    /// Over a connection bound: answer 421 and close.
    Refused,
    /// In.
    Admitted(OpenSlot<IpAddr>),
}

impl Limits {
    pub(crate) fn new(config: &SmtpInConfig) -> Self {
        Self {
            connections: OpenSlots::new(config.max_connections, config.client_connections),
            rate_count: usize::try_from(config.rate_count).unwrap_or(usize::MAX),
            rate_window: config.rate_window,
            messages: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection from `ip`'s client, unless a bound is reached.
    pub(crate) fn admit(&self, ip: IpAddr) -> Admission {
        match self.connections.admit(client_network(ip)) {
            Ok(slot) => Admission::Admitted(slot),
            Err(_) => Admission::Refused,
        }
    }

    /// Counts one message from `ip`'s client (at `MAIL`); `false` when its window is full.
    pub(crate) fn take_message(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut messages = self.lock();
        let times = messages.entry(client_network(ip)).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.rate_window)
        {
            times.pop_front();
        }
        if times.len() >= self.rate_count {
            return false;
        }
        times.push_back(now);
        // Forget idle addresses now and then, so the map stays bounded.
        if messages.len() > 10_000 {
            let window = self.rate_window;
            messages.retain(|_, t| {
                t.back()
                    .is_some_and(|last| now.duration_since(*last) < window)
            });
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits(client_connections: usize, rate_count: u32) -> Limits {
        Limits::new(&SmtpInConfig {
            hostname: "mx.galaxy.test".into(),
            max_message_bytes: 1024,
            max_connections: 100,
            client_connections,
            rate_count,
            rate_window: Duration::from_secs(3600),
            timeout: Duration::from_secs(60),
            session_limit: Duration::from_secs(600),
            tls: None,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_is_its_ipv4() {
        let l = limits(1, 100);
        let first = l.admit(ip("2001:db8:1:2::1"));
        assert!(matches!(first, Admission::Admitted(_)));
        assert!(
            matches!(l.admit(ip("2001:db8:1:2:ffff::9")), Admission::Refused),
            "another address of the same /64 is the same client"
        );
        assert!(matches!(
            l.admit(ip("2001:db8:1:3::1")),
            Admission::Admitted(_)
        ));
        let v4 = l.admit(ip("192.0.2.7"));
        assert!(matches!(v4, Admission::Admitted(_)));
        assert!(matches!(
            l.admit(ip("::ffff:192.0.2.7")),
            Admission::Refused
        ));
        drop(first);
        assert!(matches!(
            l.admit(ip("2001:db8:1:2::2")),
            Admission::Admitted(_)
        ));
    }

    #[test]
    fn messages_are_counted_per_client() {
        let l = limits(10, 2);
        assert!(l.take_message(ip("2001:db8:1:2::1")));
        assert!(l.take_message(ip("2001:db8:1:2::2")));
        assert!(
            !l.take_message(ip("2001:db8:1:2::3")),
            "the /64's window is full"
        );
        assert!(l.take_message(ip("2001:db8:1:3::1")));
        assert!(l.take_message(ip("192.0.2.7")));
        assert!(l.take_message(ip("::ffff:192.0.2.7")));
        assert!(!l.take_message(ip("192.0.2.7")));
    }
}
