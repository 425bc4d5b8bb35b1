//! Tests of the configuration: defaults, bad values, secrets, and the operations doc.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use secrecy::ExposeSecret;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn default_is_every_documented_default() {
    let parsed = Config::from_vars(&HashMap::new()).unwrap();
    assert_eq!(format!("{:?}", Config::default()), format!("{parsed:?}"));
}

#[test]
fn the_builder_validates_like_the_environment_and_refuses_unknown_names() {
    let config = Config::builder()
        .set("GALAXY_MAIL_INTERVAL", "50ms")
        .set("GALAXY_HTTP_ADDR", "127.0.0.1:0")
        .build()
        .unwrap();
    assert_eq!(config.mail_interval, Duration::from_millis(50));
    assert_eq!(config.http_addr.to_string(), "127.0.0.1:0");

    let from_builder = Config::builder()
        .set("GALAXY_SESSION_TTL", "100000000d")
        .build()
        .unwrap_err()
        .to_string();
    let from_env = Config::from_vars(&vars(&[("GALAXY_SESSION_TTL", "100000000d")]))
        .unwrap_err()
        .to_string();
    assert_eq!(from_builder, from_env);
    assert!(
        from_builder.starts_with("GALAXY_SESSION_TTL="),
        "{from_builder}"
    );

    let typo = Config::builder()
        .set("GALAXY_MAIL_INTERVALL", "1s")
        .build()
        .unwrap_err();
    assert!(
        matches!(&typo, ConfigError::Unknown { variable } if variable == "GALAXY_MAIL_INTERVALL"),
        "{typo:?}"
    );
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let c = Config::from_vars(&HashMap::new()).unwrap();
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:8081");
    assert_eq!(c.metrics_addr, None);
    assert_eq!(c.login_code_ttl, Duration::from_secs(600));
    assert_eq!(
        c.rate_limit_email,
        RateLimit {
            count: 5,
            window: Duration::from_secs(900)
        }
    );
    assert_eq!(
        c.rate_limit_wrong_codes,
        RateLimit {
            count: 10,
            window: Duration::from_secs(900)
        }
    );
    assert_eq!(c.login_max_unused_codes, 3);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.geo_flush_interval, Duration::from_secs(30));
    assert_eq!(c.geoip_reload_interval, Duration::from_secs(60));
    assert_eq!(c.geo_shutdown_timeout, Duration::from_secs(5));
    assert!(c.trusted_proxies.is_empty() && c.geoip_db.is_none());
    assert!(c.require_database_url().is_err());
}

/// Two pool connections are the listeners' for good: a pool of 1 or 2 stalled start-up
/// on a pool timeout, so the least accepted leaves two for the work, and the refusal
/// says why.
#[test]
fn a_pool_too_small_for_the_listeners_is_refused_saying_why() {
    let var = "GALAXY_DATABASE_MAX_CONNECTIONS";
    if !features::feature_of(var).is_none_or(features::is_enabled) {
        return;
    }
    for small in ["1", "2", "3"] {
        let err = Config::from_vars(&vars(&[(var, small)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(var) && err.contains("4 to 1000"), "{err}");
        assert!(err.contains("listeners"), "the reason: {err}");
    }
    let config = Config::from_vars(&vars(&[(var, "4")])).unwrap();
    assert_eq!(config.database_max_connections, MIN_DATABASE_CONNECTIONS);
}

/// A push window no longer than a notification route's lease would let a route sent
/// again (its worker died) append its event a second time: the first is purged by then.
#[test]
fn a_push_window_shorter_than_a_route_lease_is_refused() {
    let var = "GALAXY_PUSH_WINDOW";
    for short in ["1s", "59s", "1m"] {
        let err = Config::from_vars(&vars(&[(var, short)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(var) && err.contains("2m to 7d"), "{err}");
    }
    let config = Config::from_vars(&vars(&[(var, "2m")])).unwrap();
    assert_eq!(config.push_window, Duration::from_secs(120));
}

/// A drain delay as long as the whole shutdown budget would leave nothing for the steps
/// after it (requests in flight, workers, geo counters, the pool).
#[test]
fn a_drain_delay_that_eats_the_shutdown_budget_is_refused() {
    let drain = "GALAXY_HTTP_DRAIN_DELAY";
    let budget = "GALAXY_SHUTDOWN_TIMEOUT";
    for (delay, timeout) in [("30s", "30s"), ("40s", "30s")] {
        let err = Config::from_vars(&vars(&[(drain, delay), (budget, timeout)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(drain) && err.contains(budget), "{err}");
    }
    let config = Config::from_vars(&vars(&[(drain, "20s"), (budget, "30s")])).unwrap();
    assert_eq!(config.http_drain_delay, Duration::from_secs(20));
}

#[test]
fn bad_values_name_the_variable_and_the_expectation() {
    for (var, value, expected) in [
        ("GALAXY_HTTP_ADDR", "nowhere", "address"),
        ("GALAXY_METRICS_ADDR", "9090", "address"),
        ("GALAXY_SESSION_TTL", "forever", "duration"),
        ("GALAXY_SESSION_TTL", "0s", "duration"),
        ("GALAXY_RATE_LIMIT_IP", "20", "count/window"),
        ("GALAXY_RATE_LIMIT_WRONG_CODES", "0/15m", "count/window"),
        ("GALAXY_LOGIN_MAX_UNUSED_CODES", "0", "1 to 100"),
        ("GALAXY_LOGIN_CODE_DIGITS", "4", "6 to 10"),
        ("GALAXY_OTEL_EXPORTER", "jaeger", "none, stdout or otlp"),
        ("GALAXY_BOOTSTRAP_ADMINS", "root", "e-mail"),
        ("GALAXY_HTTP_BODY_LIMIT", "12", "byte count"),
        ("GALAXY_LOG", "info,[=broken", "tracing filter"),
        ("GALAXY_DATABASE_CONNECT_ATTEMPTS", "0", "1 to 100"),
        ("GALAXY_GEO_FLUSH_INTERVAL", "often", "duration"),
        ("GALAXY_GEOIP_RELOAD_INTERVAL", "0s", "duration"),
        ("GALAXY_GEO_SHUTDOWN_TIMEOUT", "-5s", "duration"),
        ("GALAXY_TRUSTED_PROXIES", "10.0.0.1, lb.internal", "CIDR"),
        #[cfg(feature = "smtp")]
        (
            "GALAXY_MAIL_FROM",
            "Galaxy <galaxy at example.org>",
            "mailbox",
        ),
    ] {
        let err = Config::from_vars(&vars(&[(var, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(var), "{err}");
        // A build without the setting's feature refuses it before reading its value.
        let refused = features::feature_of(var).is_some_and(|f| !features::is_enabled(f));
        assert!(refused || err.contains(expected), "{err}");
    }
}

#[test]
fn secrets_never_print() {
    let mut set = vec![("GALAXY_INTERNAL_TOKEN", "super-secret-token-123")];
    if cfg!(feature = "postgres") {
        set.push(("GALAXY_DATABASE_URL", "postgres://u:hunter2@db/galaxy"));
    }
    let c = Config::from_vars(&vars(&set)).unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("super-secret"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(
        c.internal_token.unwrap().expose_secret(),
        "super-secret-token-123"
    );
    let err = Config::from_vars(&vars(&[("GALAXY_INTERNAL_TOKEN", "short")]))
        .unwrap_err()
        .to_string();
    assert!(!err.contains("short\""), "{err}");
}

/// A malformed database URL is a configuration error (exit 2: `config check` and systemd
/// stop there instead of restarting into it), naming the variable, never the password.
#[cfg(feature = "postgres")]
#[test]
fn a_malformed_database_url_is_a_configuration_error_that_hides_the_url() {
    for url in [
        "postgres://u:hunter2@db:notaport/galaxy",
        "postgres://u:hunter2@db/galaxy?sslmode=sometimes",
        "hunter2",
    ] {
        let Err(error) = Config::from_vars(&vars(&[("GALAXY_DATABASE_URL", url)])) else {
            panic!("{url} was taken");
        };
        let text = error.to_string();
        assert!(matches!(error, ConfigError::Invalid { .. }), "{text}");
        assert!(text.contains("GALAXY_DATABASE_URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert!(
        Config::from_vars(&vars(&[(
            "GALAXY_DATABASE_URL",
            "postgres://u:hunter2@db:5432/galaxy?sslmode=require"
        )]))
        .is_ok()
    );
}

#[test]
fn every_duration_has_a_documented_range_that_start_up_enforces() {
    let doc = include_str!("../../../docs/operations.md");
    for (variable, low, high) in DURATION_RANGES {
        let setting = SETTINGS.iter().find(|s| s.variable == *variable).unwrap();
        let range = format!("Range: {low} to {high}.");
        assert!(
            setting.meaning.contains(&range),
            "{variable}: {}",
            setting.meaning
        );
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{variable}` |")))
            .unwrap();
        assert!(row.contains(&range), "docs/operations.md: {row}");
        for too_much in ["100000000d", "3651d"] {
            let err = Config::from_vars(&vars(&[(variable, too_much)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(variable), "{err}");
        }
    }
    for (variable, value) in [
        ("GALAXY_SESSION_TTL", "100000000d"),
        ("GALAXY_LOGIN_CODE_TTL", "2d"),
        ("GALAXY_RATE_LIMIT_EMAIL", "5/100000000d"),
        ("GALAXY_RATE_LIMIT_IP", "0/1m"),
    ] {
        let err = Config::from_vars(&vars(&[(variable, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(variable), "{err}");
    }
    let err = Config::from_vars(&vars(&[
        ("GALAXY_RATE_LIMIT_EMAIL", "5/2d"),
        ("GALAXY_RETAIN_CHALLENGES", "1d"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("GALAXY_RETAIN_CHALLENGES"), "{err}");
    let ok = Config::from_vars(&vars(&[("GALAXY_MIN_TURN_PERIOD", "0s")])).unwrap();
    assert!(ok.min_turn_period.is_zero());
}

#[test]
fn every_setting_is_in_the_operations_doc() {
    let doc = include_str!("../../../docs/operations.md");
    for setting in SETTINGS {
        // The whole row: `galaxy-server config defaults` prints the meaning from the code,
        // so a meaning edited only in the doc would leave the two saying different things.
        let row = format!(
            "| `{}` | {} | {} |",
            setting.variable, setting.default, setting.meaning
        );
        assert!(
            doc.lines().any(|line| line == row),
            "docs/operations.md lacks the row (or says another meaning):\n{row}"
        );
    }
    let documented = doc.matches("| `GALAXY_").count();
    assert_eq!(
        documented,
        SETTINGS.len(),
        "docs/operations.md documents settings the code does not read"
    );
}

#[test]
fn trusted_proxies_parse_addresses_and_networks() {
    let c = Config::from_vars(&vars(&[(
        "GALAXY_TRUSTED_PROXIES",
        "127.0.0.1, 10.0.0.0/8, ::1",
    )]))
    .unwrap();
    assert_eq!(
        c.trusted_proxies.to_string(),
        "127.0.0.1/32,10.0.0.0/8,::1/128"
    );
    let err = Config::from_vars(&vars(&[(
        "GALAXY_TRUSTED_PROXIES",
        "10.0.0.1, lb.internal",
    )]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("\"lb.internal\""),
        "names the bad entry: {err}"
    );
}

#[test]
fn every_feature_gated_setting_is_documented_with_its_feature() {
    use super::features::{SETTING_FEATURES, VALUE_FEATURES};
    let doc = include_str!("../../../docs/operations.md");
    let gated = SETTING_FEATURES.iter().copied().chain(
        VALUE_FEATURES
            .iter()
            .map(|(variable, _, feature)| (*variable, *feature)),
    );
    for (variable, feature) in gated {
        let setting = SETTINGS.iter().find(|s| s.variable == variable).unwrap();
        let needs = format!("eeds the `{feature}` feature.");
        assert!(
            setting.meaning.contains(&needs),
            "{variable}: {}",
            setting.meaning
        );
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{variable}` |")))
            .unwrap();
        assert!(row.contains(&needs), "docs/operations.md: {row}");
    }
}

#[test]
fn a_setting_whose_feature_is_missing_stops_start_up_naming_both() {
    use super::features::{SETTING_FEATURES, VALUE_FEATURES, is_enabled};
    let values = SETTING_FEATURES
        .iter()
        .map(|(variable, feature)| (*variable, "1", *feature))
        .chain(VALUE_FEATURES.iter().copied());
    for (variable, value, feature) in values {
        let result = Config::from_vars(&vars(&[(variable, value)]));
        if is_enabled(feature) {
            // The value may be invalid for the setting, but never for want of a feature.
            if let Err(error) = result {
                assert!(
                    !matches!(error, ConfigError::FeatureDisabled { .. }),
                    "{error}"
                );
            }
        } else {
            let error = result.unwrap_err();
            assert!(
                matches!(error, ConfigError::FeatureDisabled { .. }),
                "{variable}: {error}"
            );
            let text = error.to_string();
            assert!(
                text.contains(variable) && text.contains(&format!("`{feature}`")),
                "{text}"
            );
        }
    }
    // Values that need no feature pass in every build.
    Config::from_vars(&vars(&[
        ("GALAXY_RUNTIME", "none"),
        ("GALAXY_OTEL_EXPORTER", "stdout"),
    ]))
    .unwrap();
}
