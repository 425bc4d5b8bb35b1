//! The listener's bounds on clients: open connections in all and per address, and
//! messages per address per window. In memory, per process: a replica counts its own
//! clients (the MX spreads them).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::SmtpInConfig;

/// The shared counters.
pub(crate) struct Limits {
    /// The bounds.
    max_connections: usize,
    client_connections: usize,
    rate_count: usize,
    rate_window: Duration,
    /// Open connections per address, and in all.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: HashMap<IpAddr, usize>,
    total: usize,
    /// When each address's recent messages began.
    messages: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Whether a connection may proceed; dropping an admitted one frees its place.
pub(crate) enum Admission {
    /// Over a connection bound: answer 421 and close.
    Refused,
    /// In.
    Admitted(Permit),
}

/// An open connection's place.
pub(crate) struct Permit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.limits.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(n) = state.open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.open.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    pub(crate) fn new(config: &SmtpInConfig) -> Self {
        Self {
            max_connections: config.max_connections,
            client_connections: config.client_connections,
            rate_count: usize::try_from(config.rate_count).unwrap_or(usize::MAX),
            rate_window: config.rate_window,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection from `ip`, unless a bound is reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let mut state = self.lock();
        let from_ip = state.open.get(&ip).copied().unwrap_or(0);
        if state.total >= self.max_connections || from_ip >= self.client_connections {
            return Admission::Refused;
        }
        state.total += 1;
        *state.open.entry(ip).or_default() += 1;
        Admission::Admitted(Permit {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Counts one message from `ip` (at `MAIL`); `false` when its window is full.
    pub(crate) fn take_message(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        let times = state.messages.entry(ip).or_default();
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
        if state.messages.len() > 10_000 {
            let window = self.rate_window;
            state.messages.retain(|_, t| {
                t.back()
                    .is_some_and(|last| now.duration_since(*last) < window)
            });
        }
        true
    }
}
