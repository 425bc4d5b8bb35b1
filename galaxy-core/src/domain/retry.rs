//! Retry policy shared by every outbox: exponential backoff with a cap, +-20% jitter and an
//! attempt budget.
//!
//! The jitter is an input (a number in `[0, 1)` drawn by the caller from the
//! `SecretGenerator` port), so the policy stays pure and tests can pin it.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// The fraction by which a delay is spread around its nominal value (+-20%).
pub const JITTER_FRACTION: f64 = 0.2;

/// A retry policy was configured with values that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryPolicyError {
    /// The first delay must be positive.
    #[error("initial backoff must be positive")]
    NonPositiveInitial,
    /// The cap must be at least the first delay.
    #[error("maximum backoff must be at least the initial backoff")]
    CapBelowInitial,
    /// At least one attempt must be allowed.
    #[error("attempt budget must be at least 1")]
    ZeroBudget,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryAfter(TimeDelta),
    /// The attempt budget is spent: give up (dead letter).
    GiveUp,
}

/// Exponential backoff with a cap, jitter and an attempt budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    initial: TimeDelta,
    max: TimeDelta,
    max_attempts: u32,
}

impl RetryPolicy {
    /// Builds a policy: the first retry waits about `initial`, each further one twice as
    /// long up to `max`; after `max_attempts` failed attempts the item is dead.
    pub fn new(
        initial: TimeDelta,
        max: TimeDelta,
        max_attempts: u32,
    ) -> Result<Self, RetryPolicyError> {
        if initial <= TimeDelta::zero() {
            return Err(RetryPolicyError::NonPositiveInitial);
        }
        if max < initial {
            return Err(RetryPolicyError::CapBelowInitial);
        }
        if max_attempts == 0 {
            return Err(RetryPolicyError::ZeroBudget);
        }
        Ok(Self {
            initial,
            max,
            max_attempts,
        })
    }

    /// The attempt budget.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The nominal (un-jittered) delay after the `attempt`-th failure (1-based):
    /// `initial * 2^(attempt-1)`, capped at `max`. Non-decreasing in `attempt`.
    pub fn nominal_delay(&self, attempt: u32) -> TimeDelta {
        let exponent = attempt.saturating_sub(1).min(62);
        let factor = 1_i64 << exponent;
        let millis = self.initial.num_milliseconds().saturating_mul(factor);
        TimeDelta::milliseconds(millis).min(self.max)
    }

    /// The delay after the `attempt`-th failure with jitter applied: `unit` in `[0, 1)`
    /// maps linearly onto `[-20%, +20%]` of the nominal delay. Values outside `[0, 1]`
    /// are clamped, so a bad random source cannot produce a negative delay.
    pub fn jittered_delay(&self, attempt: u32, unit: f64) -> TimeDelta {
        let unit = if unit.is_nan() {
            0.5
        } else {
            unit.clamp(0.0, 1.0)
        };
        let nominal = self.nominal_delay(attempt).num_milliseconds() as f64;
        let spread = (unit * 2.0 - 1.0) * JITTER_FRACTION;
        TimeDelta::milliseconds((nominal * (1.0 + spread)).round() as i64)
    }

    /// Decides what follows the `attempts_made`-th failed attempt.
    pub fn after_failure(&self, attempts_made: u32, unit: f64) -> RetryDecision {
        if attempts_made >= self.max_attempts {
            RetryDecision::GiveUp
        } else {
            RetryDecision::RetryAfter(self.jittered_delay(attempts_made, unit))
        }
    }
}

impl Default for RetryPolicy {
    /// 30 s, doubling to at most 1 h, 8 attempts.
    fn default() -> Self {
        Self {
            initial: TimeDelta::seconds(30),
            max: TimeDelta::hours(1),
            max_attempts: 8,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_unworkable_policies() {
        let s = TimeDelta::seconds;
        assert_eq!(
            RetryPolicy::new(s(0), s(1), 1),
            Err(RetryPolicyError::NonPositiveInitial)
        );
        assert_eq!(
            RetryPolicy::new(s(2), s(1), 1),
            Err(RetryPolicyError::CapBelowInitial)
        );
        assert_eq!(
            RetryPolicy::new(s(1), s(1), 0),
            Err(RetryPolicyError::ZeroBudget)
        );
    }

    #[test]
    fn doubles_then_caps_then_gives_up() {
        let p = RetryPolicy::new(TimeDelta::seconds(1), TimeDelta::seconds(5), 5).unwrap();
        let delays: Vec<_> = (1..=5).map(|a| p.nominal_delay(a).num_seconds()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        assert_eq!(
            p.after_failure(4, 0.5),
            RetryDecision::RetryAfter(TimeDelta::seconds(5))
        );
        assert_eq!(p.after_failure(5, 0.5), RetryDecision::GiveUp);
    }

    proptest! {
        #[test]
        fn nominal_is_non_decreasing_up_to_the_cap(
            initial_ms in 1i64..100_000,
            extra_ms in 0i64..10_000_000,
            attempt in 1u32..200,
        ) {
            let p = RetryPolicy::new(
                TimeDelta::milliseconds(initial_ms),
                TimeDelta::milliseconds(initial_ms + extra_ms),
                10,
            ).unwrap();
            let now = p.nominal_delay(attempt);
            let next = p.nominal_delay(attempt + 1);
            prop_assert!(next >= now);
            prop_assert!(next <= TimeDelta::milliseconds(initial_ms + extra_ms));
            prop_assert!(now >= TimeDelta::milliseconds(initial_ms));
        }

        #[test]
        fn jitter_stays_within_twenty_percent(
            initial_ms in 1i64..100_000,
            attempt in 1u32..40,
            unit in proptest::num::f64::ANY,
        ) {
            let p = RetryPolicy::new(
                TimeDelta::milliseconds(initial_ms),
                TimeDelta::hours(1),
                10,
            ).unwrap();
            let nominal = p.nominal_delay(attempt).num_milliseconds() as f64;
            let got = p.jittered_delay(attempt, unit).num_milliseconds() as f64;
            prop_assert!(got >= (nominal * 0.8).floor());
            prop_assert!(got <= (nominal * 1.2).ceil());
        }
    }
}
