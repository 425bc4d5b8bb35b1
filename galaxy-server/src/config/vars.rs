//! Reading one variable: its value or its documented default, checked against what the
//! setting expects (a range, a shape), with an error that names the variable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, DURATION_RANGES, RateLimit, SETTINGS};
use crate::http::client_ip::TrustedProxies;

/// Reads variables from a map (the process environment in production, a literal map in
/// tests).
pub(super) struct Vars<'a>(pub(super) &'a HashMap<String, String>);

impl Vars<'_> {
    pub(super) fn raw(&self, variable: &'static str) -> Option<&str> {
        self.0
            .get(variable)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn default_of(variable: &'static str) -> &'static str {
        SETTINGS
            .iter()
            .find(|s| s.variable == variable)
            .map(|s| s.default)
            .unwrap_or("-")
    }

    pub(super) fn parse_with<T>(
        &self,
        variable: &'static str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let value = self.raw(variable).unwrap_or(Self::default_of(variable));
        parse(value).ok_or_else(|| ConfigError::Invalid {
            variable,
            value: value.to_owned(),
            expected: expected.to_owned(),
        })
    }

    pub(super) fn parsed<T: FromStr>(
        &self,
        variable: &'static str,
        expected: &str,
    ) -> Result<T, ConfigError> {
        self.parse_with(variable, expected, |v| v.parse().ok())
    }

    /// A duration within the variable's range of [`DURATION_RANGES`] (a variable
    /// without one is a bug of this crate, reported as a bad setting).
    pub(super) fn duration(&self, variable: &'static str) -> Result<Duration, ConfigError> {
        let range = DURATION_RANGES
            .iter()
            .find(|(v, _, _)| *v == variable)
            .and_then(|(_, low, high)| {
                Some((
                    *low,
                    *high,
                    humantime::parse_duration(low).ok()?,
                    humantime::parse_duration(high).ok()?,
                ))
            });
        let Some((low_text, high_text, low, high)) = range else {
            return Err(ConfigError::Invalid {
                variable,
                value: self.raw(variable).unwrap_or_default().to_owned(),
                expected: "a setting this build knows the range of (a bug: please report it)"
                    .to_owned(),
            });
        };
        let expected =
            format!("a duration from {low_text} to {high_text}, such as 30s, 10m, 1h or 7d");
        self.parse_with(variable, &expected, |v| {
            humantime::parse_duration(v)
                .ok()
                .filter(|d| (low..=high).contains(d) && (!d.is_zero() || low.is_zero()))
        })
    }

    pub(super) fn optional_addr(
        &self,
        variable: &'static str,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        self.raw(variable)
            .map(|v| {
                v.parse().map_err(|_| ConfigError::Invalid {
                    variable,
                    value: v.to_owned(),
                    expected: "an address such as 127.0.0.1:9090".to_owned(),
                })
            })
            .transpose()
    }

    pub(super) fn secret(&self, variable: &'static str) -> Option<SecretString> {
        self.raw(variable).map(|v| SecretString::from(v.to_owned()))
    }

    pub(super) fn trusted_proxies(
        &self,
        variable: &'static str,
    ) -> Result<TrustedProxies, ConfigError> {
        let Some(list) = self.raw(variable) else {
            return Ok(TrustedProxies::none());
        };
        TrustedProxies::parse(list).map_err(|entry| ConfigError::Invalid {
            variable,
            value: entry,
            expected: "comma-separated IP addresses or CIDR networks such as 10.0.0.0/8,::1"
                .to_owned(),
        })
    }

    /// `count/window`, the count 1 to 1,000,000 and the window 1s to 30d.
    pub(super) fn rate_limit(&self, variable: &'static str) -> Result<RateLimit, ConfigError> {
        let expected = "count/window such as 5/15m (count 1 to 1000000, window 1s to 30d)";
        self.parse_with(variable, expected, |v| {
            let (count, window) = v.split_once('/')?;
            let count = count
                .trim()
                .parse()
                .ok()
                .filter(|c| (1..=1_000_000).contains(c))?;
            let window = humantime::parse_duration(window.trim()).ok().filter(|d| {
                (Duration::from_secs(1)..=Duration::from_secs(30 * 86_400)).contains(d)
            })?;
            Some(RateLimit { count, window })
        })
    }
}
