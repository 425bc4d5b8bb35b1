//! The listener's bounds on clients: open connections in all and per address, and
//! messages per address per window. In memory, per process: a replica counts its own
//! clients (the MX spreads them).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use galaxy_core::domain::limit::{OpenSlot, OpenSlots};

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

    /// Counts a new connection from `ip`, unless a bound is reached.
    pub(crate) fn admit(&self, ip: IpAddr) -> Admission {
        match self.connections.admit(ip) {
            Ok(slot) => Admission::Admitted(slot),
            Err(_) => Admission::Refused,
        }
    }

    /// Counts one message from `ip` (at `MAIL`); `false` when its window is full.
    pub(crate) fn take_message(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut messages = self.lock();
        let times = messages.entry(ip).or_default();
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
