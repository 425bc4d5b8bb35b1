//! Clocks and secret generators: the real ones and deterministic ones for tests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::TimeDelta;
use galaxy_core::domain::Timestamp;
use galaxy_core::domain::auth::{LoginCode, SessionToken};
use galaxy_core::ports::{Clock, SecretGenerator};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// The system's UTC clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            micros: AtomicU64::new(u64::try_from(start.timestamp_micros()).unwrap_or(0)),
        }
    }

    /// A clock standing at 2030-01-01T00:00:00Z.
    pub fn at_fixed_start() -> Self {
        Self::new(Timestamp::from_timestamp(1_893_456_000, 0).unwrap_or_default())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        let micros = u64::try_from(by.num_microseconds().unwrap_or(0)).unwrap_or(0);
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        let micros = u64::try_from(at.timestamp_micros()).unwrap_or(0);
        self.micros.store(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        let micros = i64::try_from(self.micros.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
        Timestamp::from_timestamp_micros(micros).unwrap_or_default()
    }
}

/// Ids (UUID v7) and secrets from the operating system's random source.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsSecretGenerator;

fn code_from(rng: &mut impl Rng, digits: usize) -> LoginCode {
    let digits = digits.clamp(LoginCode::MIN_DIGITS, LoginCode::MAX_DIGITS);
    let text: String = (0..digits)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    // Always valid: `digits` ASCII digits within the allowed length.
    LoginCode::parse(&text).unwrap_or_else(|_| unreachable_code())
}

#[allow(clippy::unreachable)]
fn unreachable_code() -> LoginCode {
    unreachable!("a string of 6..=10 ASCII digits is a valid login code")
}

impl SecretGenerator for OsSecretGenerator {
    fn uuid(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }

    fn login_code(&self, digits: usize) -> LoginCode {
        code_from(&mut rand::rng(), digits)
    }

    fn session_token(&self) -> SessionToken {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SessionToken::from_bytes(bytes)
    }

    fn unit(&self) -> f64 {
        rand::rng().random::<f64>()
    }
}

/// A reproducible generator for tests: ids count up from 1, secrets come from a seeded
/// RNG, `unit()` returns a fixed value (0.5 = no jitter) unless changed.
#[derive(Debug)]
pub struct SeededSecretGenerator {
    next_id: AtomicU64,
    rng: Mutex<StdRng>,
    unit: Mutex<f64>,
}

impl SeededSecretGenerator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            unit: Mutex::new(0.5),
        }
    }

    /// Fixes what `unit()` returns.
    pub fn set_unit(&self, unit: f64) {
        if let Ok(mut guard) = self.unit.lock() {
            *guard = unit;
        }
    }
}

impl SecretGenerator for SeededSecretGenerator {
    fn uuid(&self) -> uuid::Uuid {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        // Version-7 layout with the counter as timestamp, so ids sort like real ones.
        uuid::Builder::from_unix_timestamp_millis(n, &[0; 10]).into_uuid()
    }

    fn login_code(&self, digits: usize) -> LoginCode {
        match self.rng.lock() {
            Ok(mut rng) => code_from(&mut *rng, digits),
            Err(poisoned) => code_from(&mut *poisoned.into_inner(), digits),
        }
    }

    fn session_token(&self) -> SessionToken {
        let mut bytes = [0u8; 32];
        match self.rng.lock() {
            Ok(mut rng) => rng.fill_bytes(&mut bytes),
            Err(poisoned) => poisoned.into_inner().fill_bytes(&mut bytes),
        }
        SessionToken::from_bytes(bytes)
    }

    fn unit(&self) -> f64 {
        self.unit.lock().map(|u| *u).unwrap_or(0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_fixed_start();
        let t0 = clock.now();
        clock.advance(TimeDelta::seconds(90));
        assert_eq!(clock.now() - t0, TimeDelta::seconds(90));
    }

    #[test]
    fn generators_produce_valid_secrets() {
        let os = OsSecretGenerator;
        assert_eq!(os.login_code(8).expose().len(), 8);
        assert_ne!(os.session_token(), os.session_token());
        let seeded = SeededSecretGenerator::new(1);
        assert!(seeded.uuid() < seeded.uuid());
        assert_eq!(
            SeededSecretGenerator::new(9).login_code(6),
            SeededSecretGenerator::new(9).login_code(6)
        );
    }
}
