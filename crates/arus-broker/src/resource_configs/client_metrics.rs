//! Client-metrics subscriptions (KIP-714): the keys of a CLIENT_METRICS resource, how an
//! IncrementalAlterConfigs on one is applied and validated, and the parsed subscription the
//! telemetry APIs match clients against. Messages and codes are Kafka 4.4's
//! (`ClientMetricsConfigs.validate`, `ConfigDef.parse`, `ConfigAdminManager`), checked
//! against a real broker:
//!
//! - only `metrics` (LIST), `interval.ms` (INT, 100..=3600000, default 300000) and `match`
//!   (LIST of `attribute=regex`) exist; any other key is INVALID_REQUEST;
//! - a LIST item may not be empty (`a,,b`): INVALID_CONFIG; duplicates are accepted;
//! - an unparsable `interval.ms` is INVALID_CONFIG, one out of range INVALID_REQUEST;
//! - a `match` item must split on `=` into exactly two parts (Java's `String.split`, which
//!   drops trailing empty parts), name one of the six client attributes and compile as a
//!   regular expression, else INVALID_CONFIG "Illegal client matching pattern: ...";
//! - APPEND and SUBTRACT are refused on every key ("... its type is not LIST", as Kafka
//!   says even of the LIST keys), SET without a value is INVALID_REQUEST.
//!
//! Differs from Kafka: patterns are compiled by Rust's `regex`, which refuses the few Java
//! constructs it lacks (look-around, back-references); those subscriptions are refused with
//! Kafka's message instead of accepted.

use arus_protocol::ErrorCode;
use regex::Regex;

use super::{ConfigMap, parse_int, parse_list};
use crate::config_defs::ConfigType;

pub const METRICS: &str = "metrics";
pub const INTERVAL_MS: &str = "interval.ms";
pub const MATCH: &str = "match";

pub const INTERVAL_MS_DEFAULT: i32 = 300_000;
const MIN_INTERVAL_MS: i32 = 100;
const MAX_INTERVAL_MS: i32 = 3_600_000;

/// `metrics` value subscribing to every metric.
pub const ALL_METRICS: &str = "*";

/// The client attributes a `match` pattern may test.
pub const MATCH_ATTRIBUTES: &[&str] = &[
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];

/// A key: name, type, default, documentation — in DescribeConfigs order (by name).
pub struct Key {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    pub doc: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: INTERVAL_MS,
        kind: ConfigType::Int,
        default: "300000",
        doc: "Metrics push interval in milliseconds",
    },
    Key {
        name: MATCH,
        kind: ConfigType::List,
        default: "",
        doc: "Client match criteria",
    },
    Key {
        name: METRICS,
        kind: ConfigType::List,
        default: "",
        doc: "Telemetry metric name prefix list",
    },
];

pub type Refusal = (ErrorCode, String);

/// The IncrementalAlterConfigs operations.
pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

/// Applies one IncrementalAlterConfigs operation to a subscription's keys.
pub fn apply_op(
    map: &mut ConfigMap,
    key: &str,
    op: i8,
    value: Option<&str>,
) -> Result<(), Refusal> {
    match op {
        OP_SET => {
            let Some(value) = value else {
                return Err((
                    ErrorCode::InvalidRequest,
                    format!("Null value not supported for : {key}"),
                ));
            };
            map.insert(key.to_string(), value.to_string());
            Ok(())
        }
        OP_DELETE => {
            map.remove(key);
            Ok(())
        }
        OP_APPEND | OP_SUBTRACT => Err((
            ErrorCode::InvalidConfig,
            format!(
                "Can't {} to key {key} because its type is not LIST.",
                if op == OP_APPEND {
                    "APPEND"
                } else {
                    "SUBTRACT"
                }
            ),
        )),
        other => Err((
            ErrorCode::InvalidRequest,
            format!("Unknown config operation {other}"),
        )),
    }
}

/// Validates the keys a subscription would have and returns them in the form they are
/// stored and described in (lists joined by ",", the interval as a plain number).
pub fn validate(name: &str, map: &ConfigMap) -> Result<ConfigMap, Refusal> {
    if name.is_empty() {
        return Err((
            ErrorCode::InvalidRequest,
            "Subscription name can't be empty".into(),
        ));
    }
    if let Some(unknown) = map.keys().find(|k| !KEYS.iter().any(|d| d.name == *k)) {
        return Err((
            ErrorCode::InvalidRequest,
            format!("Unknown client metrics configuration: {unknown}"),
        ));
    }
    // `ConfigDef.parse` order: metrics, interval.ms, match.
    let metrics = map.get(METRICS).map(|v| list(METRICS, v)).transpose()?;
    let interval = map
        .get(INTERVAL_MS)
        .map(|v| parse_int(INTERVAL_MS, v).map_err(|m| (ErrorCode::InvalidConfig, m)))
        .transpose()?;
    let patterns = map.get(MATCH).map(|v| list(MATCH, v)).transpose()?;
    if let Some(ms) = interval
        && !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms)
    {
        return Err((
            ErrorCode::InvalidRequest,
            format!(
                "Invalid value {ms} for {INTERVAL_MS}, interval must be between 100 and 3600000 (1 hour)"
            ),
        ));
    }
    if let Some(patterns) = &patterns {
        parse_patterns(patterns)?;
    }
    let mut normal = ConfigMap::new();
    if let Some(m) = metrics {
        normal.insert(METRICS.into(), m.join(","));
    }
    if let Some(ms) = interval {
        normal.insert(INTERVAL_MS.into(), ms.to_string());
    }
    if let Some(p) = patterns {
        normal.insert(MATCH.into(), p.join(","));
    }
    Ok(normal)
}

fn list(key: &str, value: &str) -> Result<Vec<String>, Refusal> {
    let items = parse_list(value);
    if items.iter().any(String::is_empty) {
        return Err((
            ErrorCode::InvalidConfig,
            format!("Configuration '{key}' values must not be empty."),
        ));
    }
    Ok(items)
}

/// `(attribute, whole-value regex)` per `match` item.
pub fn parse_patterns(patterns: &[String]) -> Result<Vec<(String, Regex)>, Refusal> {
    patterns
        .iter()
        .map(|p| {
            let illegal = || {
                (
                    ErrorCode::InvalidConfig,
                    format!("Illegal client matching pattern: {p}"),
                )
            };
            let parts = java_split(p, '=');
            if parts.len() != 2 {
                return Err(illegal());
            }
            let attribute = parts[0].trim();
            if !MATCH_ATTRIBUTES.contains(&attribute) {
                return Err(illegal());
            }
            // Java's `Matcher.matches()` tests the whole value.
            let regex = Regex::new(&format!("^(?:{})$", parts[1].trim())).map_err(|_| illegal())?;
            Ok((attribute.to_string(), regex))
        })
        .collect()
}

/// Java's `String.split(sep)`: trailing empty parts are dropped.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts == [""] {
        return vec![""];
    }
    parts
}

/// A stored subscription, ready to be matched against clients.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub name: String,
    pub metrics: Vec<String>,
    pub interval_ms: i32,
    pub patterns: Vec<(String, Regex)>,
}

impl Subscription {
    /// From a stored (already validated) map; `None` if it no longer validates.
    pub fn from_stored(name: &str, map: &ConfigMap) -> Option<Subscription> {
        let normal = validate(name, map).ok()?;
        Some(Subscription {
            name: name.to_string(),
            metrics: normal
                .get(METRICS)
                .map(|v| parse_list(v))
                .unwrap_or_default(),
            interval_ms: normal
                .get(INTERVAL_MS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(INTERVAL_MS_DEFAULT),
            patterns: parse_patterns(&normal.get(MATCH).map(|v| parse_list(v)).unwrap_or_default())
                .ok()?,
        })
    }

    /// Whether a client with these attributes (`attribute`, value) matches every pattern.
    pub fn matches(&self, attribute: impl Fn(&str) -> Option<String>) -> bool {
        self.patterns
            .iter()
            .all(|(name, regex)| attribute(name).is_some_and(|v| regex.is_match(&v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> ConfigMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validation_follows_kafka() {
        let refused = |name: &str, pairs: &[(&str, &str)]| validate(name, &map(pairs)).unwrap_err();
        assert_eq!(
            refused("", &[("interval.ms", "1000")]),
            (
                ErrorCode::InvalidRequest,
                "Subscription name can't be empty".into()
            )
        );
        assert_eq!(
            refused("s", &[("interval.ms", "abc")]),
            (
                ErrorCode::InvalidConfig,
                "Invalid value abc for configuration interval.ms: Not a number of type INT".into()
            )
        );
        for bad in ["99", "3600001"] {
            assert_eq!(
                refused("s", &[("interval.ms", bad)]),
                (
                    ErrorCode::InvalidRequest,
                    format!(
                        "Invalid value {bad} for interval.ms, interval must be between 100 and 3600000 (1 hour)"
                    )
                )
            );
        }
        assert_eq!(
            refused("s", &[("foo", "1")]),
            (
                ErrorCode::InvalidRequest,
                "Unknown client metrics configuration: foo".into()
            )
        );
        for bad in [
            "foo=bar",
            "client_id=a=b",
            "client_id=[abc",
            "client_id=",
            "=x",
        ] {
            assert_eq!(
                refused("s", &[("match", bad)]),
                (
                    ErrorCode::InvalidConfig,
                    format!("Illegal client matching pattern: {bad}")
                )
            );
        }
        assert_eq!(
            refused("s", &[("metrics", "a,,b")]),
            (
                ErrorCode::InvalidConfig,
                "Configuration 'metrics' values must not be empty.".into()
            )
        );
        // Accepted, and normalised as Kafka describes them.
        let ok = validate(
            "s",
            &map(&[
                ("metrics", "a,a"),
                ("match", "client_id=.*, client_software_name = java"),
                ("interval.ms", " 1000 "),
            ]),
        )
        .unwrap();
        assert_eq!(ok.get("metrics").unwrap(), "a,a");
        assert_eq!(
            ok.get("match").unwrap(),
            "client_id=.*,client_software_name = java"
        );
        assert_eq!(ok.get("interval.ms").unwrap(), "1000");
        assert_eq!(
            validate("s", &map(&[("metrics", "")]))
                .unwrap()
                .get("metrics")
                .unwrap(),
            ""
        );
    }

    #[test]
    fn operations_follow_kafka() {
        let mut m = ConfigMap::new();
        assert_eq!(
            apply_op(&mut m, "metrics", OP_APPEND, Some("x")).unwrap_err(),
            (
                ErrorCode::InvalidConfig,
                "Can't APPEND to key metrics because its type is not LIST.".into()
            )
        );
        assert_eq!(
            apply_op(&mut m, "interval.ms", OP_SUBTRACT, Some("x")).unwrap_err(),
            (
                ErrorCode::InvalidConfig,
                "Can't SUBTRACT to key interval.ms because its type is not LIST.".into()
            )
        );
        assert_eq!(
            apply_op(&mut m, "interval.ms", OP_SET, None).unwrap_err(),
            (
                ErrorCode::InvalidRequest,
                "Null value not supported for : interval.ms".into()
            )
        );
        apply_op(&mut m, "nope", OP_DELETE, None).unwrap();
        assert!(m.is_empty());
    }

    #[test]
    fn patterns_match_whole_attribute_values() {
        let s = Subscription::from_stored(
            "s",
            &map(&[
                ("match", "client_id=app-.*,client_software_name=java"),
                ("interval.ms", "500"),
            ]),
        )
        .unwrap();
        assert_eq!(s.interval_ms, 500);
        let attrs = |id: &'static str| {
            move |k: &str| match k {
                "client_id" => Some(id.to_string()),
                "client_software_name" => Some("java".to_string()),
                _ => None,
            }
        };
        assert!(s.matches(attrs("app-1")));
        assert!(!s.matches(attrs("my-app-1")));
        let all = Subscription::from_stored("all", &map(&[("metrics", "*")])).unwrap();
        assert!(all.matches(|_| None));
        assert_eq!(all.interval_ms, INTERVAL_MS_DEFAULT);
    }
}
