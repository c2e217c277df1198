//! Group configs (KIP-848 and its share/streams successors): the keys of a GROUP resource
//! as Kafka 4.4's `GroupConfig` defines them, their defaults (the broker's values of their
//! synonyms), and the validation of a group's keys against the broker's bounds
//! (`group.consumer.min.session.timeout.ms` etc.), with Kafka's codes and messages, checked
//! against a real broker.
//!
//! Order of checks, as `GroupConfig.validate`: unknown names; duplicate rack tags; each
//! value's type and lower bound (`ConfigDef.parse`); the ranges set by broker configs; the
//! DLQ topic name and the streams assignor. Every refusal is INVALID_CONFIG.
//!
//! Arus's KIP-848 coordinator honours `consumer.session.timeout.ms` and
//! `consumer.heartbeat.interval.ms`; the share, streams and DLQ keys are stored, validated
//! and described (so tools behave as against Kafka) but Arus has no share or streams
//! groups to apply them to. Kafka's internal keys (`*.assignor.offload.enable`,
//! `streams.task.offset.interval.ms`, `streams.num.warmup.replicas`,
//! `streams.acceptable.recovery.lag`) are not accepted.

use arus_protocol::ErrorCode;

use super::{ConfigMap, parse_int, parse_list};
use crate::broker_config::BrokerConfig;
use crate::config_defs::ConfigType;
use crate::topic_settings::ConfigSource;

pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// What values a key takes beyond its type.
#[derive(Clone, Copy)]
enum Check {
    /// INT at least `min` (`ConfigDef.atLeast`), and within the broker bounds named by
    /// (key, default) pairs: `low..=high`, or only `..=high`.
    Int {
        min: i32,
        low: Option<(&'static str, i32)>,
        high: Option<(&'static str, i32)>,
    },
    Boolean,
    OneOf(&'static [&'static str]),
    AutoOffsetReset,
    RackTags,
    DlqTopic,
    StreamsAssignor,
}

pub struct Key {
    pub name: &'static str,
    pub kind: ConfigType,
    /// The broker config giving the default (the key itself for keys with no broker
    /// counterpart), and Kafka's default for it.
    pub synonym: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
    check: Check,
}

const fn int(
    name: &'static str,
    synonym: &'static str,
    default: &'static str,
    min: i32,
    low: Option<(&'static str, i32)>,
    high: Option<(&'static str, i32)>,
    doc: &'static str,
) -> Key {
    Key {
        name,
        kind: ConfigType::Int,
        synonym,
        default,
        doc,
        check: Check::Int { min, low, high },
    }
}

/// The keys Kafka 4.4 describes, in the order its DescribeConfigs lists them.
pub const KEYS: &[Key] = &[
    int(
        CONSUMER_SESSION_TIMEOUT_MS,
        "group.consumer.session.timeout.ms",
        "45000",
        1,
        Some(("group.consumer.min.session.timeout.ms", 45000)),
        Some(("group.consumer.max.session.timeout.ms", 60000)),
        "The timeout to detect client failures when using the consumer group protocol.",
    ),
    Key {
        name: "streams.assignor.name",
        kind: ConfigType::String,
        synonym: "group.streams.assignors",
        default: "sticky",
        doc: "The task assignor to use for this streams group, selected by short name from the assignors registered via the broker configuration group.streams.assignors. When unset, the group defaults to the first assignor configured in the broker's group.streams.assignors setting. Changing the assignor does not trigger a rebalance for the group; the new assignor takes effect on the next rebalance.",
        check: Check::StreamsAssignor,
    },
    int(
        "consumer.assignment.interval.ms",
        "group.consumer.assignment.interval.ms",
        "1000",
        0,
        Some(("group.consumer.min.assignment.interval.ms", 0)),
        Some(("group.consumer.max.assignment.interval.ms", 15000)),
        "The interval between assignment updates for a consumer group.",
    ),
    Key {
        name: "errors.deadletterqueue.copy.record.enable",
        kind: ConfigType::Boolean,
        synonym: "errors.deadletterqueue.copy.record.enable",
        default: "false",
        doc: "When writing onto the dead-letter queue topic, whether to copy the original record onto the DLQ topic, or just write a record containing the context information headers.",
        check: Check::Boolean,
    },
    Key {
        name: "share.auto.offset.reset",
        kind: ConfigType::String,
        synonym: "share.auto.offset.reset",
        default: "latest",
        doc: "The strategy to initialize the share-partition start offset. <ul><li>earliest: automatically reset the offset to the earliest offset</li><li>latest: automatically reset the offset to the latest offset</li><li>by_duration:&lt;duration&gt;: automatically reset the offset to a configured duration from the current timestamp. &lt;duration&gt; must be specified in ISO8601 format (PnDTnHnMn.nS). Negative duration is not allowed.</li><li>anything else: throw exception to the share consumer.</li></ul>",
        check: Check::AutoOffsetReset,
    },
    Key {
        name: "streams.rack.aware.assignment.tags",
        kind: ConfigType::List,
        synonym: "group.streams.rack.aware.assignment.tags",
        default: "",
        doc: "List of client tag keys used to distribute standby replicas across Kafka Streams instances. When configured, and the used broker-side assignor supports it, it will make a best-effort to distribute standby tasks over each client tag dimension.",
        check: Check::RackTags,
    },
    Key {
        name: "share.renew.acknowledge.enable",
        kind: ConfigType::Boolean,
        synonym: "share.renew.acknowledge.enable",
        default: "true",
        doc: "Whether the renew acknowledge type is enabled for the share group.",
        check: Check::Boolean,
    },
    int(
        "streams.initial.rebalance.delay.ms",
        "group.streams.initial.rebalance.delay.ms",
        "3000",
        0,
        None,
        None,
        "The amount of time the group coordinator will wait for more streams clients to join a new group before performing the first rebalance. A longer delay means potentially fewer rebalances.",
    ),
    int(
        "share.session.timeout.ms",
        "group.share.session.timeout.ms",
        "45000",
        1,
        Some(("group.share.min.session.timeout.ms", 45000)),
        Some(("group.share.max.session.timeout.ms", 60000)),
        "The timeout to detect client failures when using the share group protocol.",
    ),
    int(
        "streams.assignment.interval.ms",
        "group.streams.assignment.interval.ms",
        "1000",
        0,
        Some(("group.streams.min.assignment.interval.ms", 0)),
        Some(("group.streams.max.assignment.interval.ms", 15000)),
        "The interval between assignment updates for a streams group.",
    ),
    int(
        "share.heartbeat.interval.ms",
        "group.share.heartbeat.interval.ms",
        "5000",
        1,
        Some(("group.share.min.heartbeat.interval.ms", 5000)),
        Some(("group.share.max.heartbeat.interval.ms", 15000)),
        "The heartbeat interval given to the members of a share group.",
    ),
    int(
        "streams.heartbeat.interval.ms",
        "group.streams.heartbeat.interval.ms",
        "5000",
        1,
        Some(("group.streams.min.heartbeat.interval.ms", 5000)),
        Some(("group.streams.max.heartbeat.interval.ms", 15000)),
        "The heartbeat interval given to the members.",
    ),
    int(
        "share.delivery.count.limit",
        "group.share.delivery.count.limit",
        "5",
        2,
        Some(("group.share.min.delivery.count.limit", 2)),
        Some(("group.share.max.delivery.count.limit", 10)),
        "The maximum number of delivery attempts for a record delivered to a share group.",
    ),
    Key {
        name: "errors.deadletterqueue.topic.name",
        kind: ConfigType::String,
        synonym: "errors.deadletterqueue.topic.name",
        default: "",
        doc: "The name of the topic to be used as the dead-letter queue (DLQ) topic for this share group. If blank (the default), the group does not have a DLQ topic.",
        check: Check::DlqTopic,
    },
    int(
        CONSUMER_HEARTBEAT_INTERVAL_MS,
        "group.consumer.heartbeat.interval.ms",
        "5000",
        1,
        Some(("group.consumer.min.heartbeat.interval.ms", 5000)),
        Some(("group.consumer.max.heartbeat.interval.ms", 15000)),
        "The heartbeat interval given to the members of a consumer group.",
    ),
    int(
        "share.record.lock.duration.ms",
        "group.share.record.lock.duration.ms",
        "30000",
        1000,
        Some(("group.share.min.record.lock.duration.ms", 15000)),
        Some(("group.share.max.record.lock.duration.ms", 60000)),
        "The record acquisition lock duration in milliseconds for share groups.",
    ),
    int(
        "share.assignment.interval.ms",
        "group.share.assignment.interval.ms",
        "1000",
        0,
        Some(("group.share.min.assignment.interval.ms", 0)),
        Some(("group.share.max.assignment.interval.ms", 15000)),
        "The interval between assignment updates for a share group.",
    ),
    Key {
        name: "share.isolation.level",
        kind: ConfigType::String,
        synonym: "share.isolation.level",
        default: "read_uncommitted",
        doc: "Controls how to read records written transactionally. If set to \"read_committed\", the share group will only deliver transactional records which have been committed. If set to \"read_uncommitted\", the share group will return all messages, even transactional messages which have been aborted. Non-transactional records will be returned unconditionally in either mode.",
        check: Check::OneOf(&["read_committed", "read_uncommitted"]),
    },
    int(
        "streams.session.timeout.ms",
        "group.streams.session.timeout.ms",
        "45000",
        1,
        Some(("group.streams.min.session.timeout.ms", 45000)),
        Some(("group.streams.max.session.timeout.ms", 60000)),
        "The timeout to detect client failures when using the streams group protocol.",
    ),
    int(
        "share.partition.max.record.locks",
        "group.share.partition.max.record.locks",
        "2000",
        100,
        Some(("group.share.min.partition.max.record.locks", 100)),
        Some(("group.share.max.partition.max.record.locks", 4000)),
        "Share-group record lock limit per share-partition.",
    ),
    int(
        "streams.num.standby.replicas",
        "group.streams.num.standby.replicas",
        "0",
        0,
        None,
        Some(("group.streams.max.standby.replicas", 2)),
        "The number of standby replicas for each task.",
    ),
];

/// Order of the range checks in `GroupConfig.validateValues`.
const RANGE_ORDER: &[&str] = &[
    CONSUMER_HEARTBEAT_INTERVAL_MS,
    CONSUMER_SESSION_TIMEOUT_MS,
    "consumer.assignment.interval.ms",
    "share.heartbeat.interval.ms",
    "share.session.timeout.ms",
    "share.record.lock.duration.ms",
    "share.delivery.count.limit",
    "share.partition.max.record.locks",
    "share.assignment.interval.ms",
    "streams.heartbeat.interval.ms",
    "streams.session.timeout.ms",
    "streams.num.standby.replicas",
    "streams.assignment.interval.ms",
];

pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

pub type Refusal = (ErrorCode, String);

fn invalid(message: String) -> Refusal {
    (ErrorCode::InvalidConfig, message)
}

/// The broker's effective value of `name` with its source: a dynamic or static setting,
/// else Kafka's default. Read from the layers directly, so that group bounds and defaults an
/// operator sets are honoured even where Arus's broker catalog does not list the key.
pub fn broker_value(
    config: &BrokerConfig,
    name: &str,
    kafka_default: &str,
) -> (String, ConfigSource) {
    config
        .broker_value_chain(name, Some(kafka_default), true)
        .into_iter()
        .next()
        .map(|(_, v, source)| (v, source))
        .unwrap_or_else(|| (kafka_default.to_string(), ConfigSource::DefaultConfig))
}

fn bound(config: &BrokerConfig, (name, default): (&str, i32)) -> i32 {
    let (value, _) = broker_value(config, name, &default.to_string());
    value.trim().parse().unwrap_or(default)
}

/// Validates the keys a group would have; returns them as stored (values as given).
pub fn validate(config: &BrokerConfig, map: &ConfigMap) -> Result<(), Refusal> {
    if let Some(unknown) = map.keys().find(|k| key(k).is_none()) {
        return Err(invalid(format!("Unknown group config name: {unknown}")));
    }
    if let Some(tags) = map.get("streams.rack.aware.assignment.tags") {
        let items = parse_list(tags);
        let mut seen = std::collections::BTreeSet::new();
        if items
            .iter()
            .any(|t| !t.is_empty() && !seen.insert(t.clone()))
        {
            return Err(invalid(
                "streams.rack.aware.assignment.tags must not contain duplicate tag keys.".into(),
            ));
        }
    }
    // `ConfigDef.parse`: types and lower bounds.
    let mut ints = std::collections::BTreeMap::new();
    for k in KEYS {
        let Some(value) = map.get(k.name) else {
            continue;
        };
        let bad = |why: &str| {
            invalid(format!(
                "Invalid value {value} for configuration {}: {why}",
                k.name
            ))
        };
        match k.check {
            Check::Int { min, .. } => {
                let n = parse_int(k.name, value).map_err(invalid)?;
                if n < min {
                    return Err(bad(&format!("Value must be at least {min}")));
                }
                ints.insert(k.name, n);
            }
            Check::Boolean => {
                let v = value.trim();
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    return Err(bad("Expected value to be either true or false"));
                }
            }
            Check::OneOf(allowed) => {
                if !allowed.contains(&value.as_str()) {
                    return Err(bad(&format!(
                        "String must be one of: {}",
                        allowed.join(", ")
                    )));
                }
            }
            Check::AutoOffsetReset => {
                if !valid_auto_offset_reset(value) {
                    return Err(bad(&format!(
                        "Invalid value `{value}` for configuration {}. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.",
                        k.name
                    )));
                }
            }
            Check::RackTags => {
                if parse_list(value).iter().any(String::is_empty) {
                    return Err(invalid(format!(
                        "Configuration '{}' values must not be empty.",
                        k.name
                    )));
                }
            }
            Check::DlqTopic | Check::StreamsAssignor => {}
        }
    }
    // `GroupConfig.validateValues`: the broker's bounds.
    for name in RANGE_ORDER {
        let (Some(n), Some(k)) = (ints.get(name), key(name)) else {
            continue;
        };
        let Check::Int { low, high, .. } = k.check else {
            continue;
        };
        match (low, high) {
            (Some(low), Some(high)) => {
                let (lo, hi) = (bound(config, low), bound(config, high));
                if *n < lo || *n > hi {
                    return Err(invalid(format!(
                        "{name} must be in the range {lo} to {hi} inclusive."
                    )));
                }
            }
            (None, Some(high)) => {
                let hi = bound(config, high);
                if *n > hi {
                    return Err(invalid(format!(
                        "{name} must be less than or equal to {hi}"
                    )));
                }
            }
            _ => {}
        }
    }
    if let Some(topic) = map.get("errors.deadletterqueue.topic.name")
        && topic.starts_with("__")
    {
        return Err(invalid(
            "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'".into(),
        ));
    }
    if let Some(name) = map.get("streams.assignor.name") {
        let (registered, _) = broker_value(config, "group.streams.assignors", "sticky");
        let registered = parse_list(&registered);
        if !registered.iter().any(|r| r == name.trim()) {
            return Err(invalid(format!(
                "streams.assignor.name '{name}' is not a registered task assignor. Registered assignors are: [{}].",
                registered.join(", ")
            )));
        }
    }
    Ok(())
}

/// `earliest`, `latest` or `by_duration:<non-negative ISO-8601 duration>` (Java's
/// `Duration.parse` forms: `PnDTnHnMn.nS`, each part optional, at least one present).
fn valid_auto_offset_reset(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    if v == "earliest" || v == "latest" {
        return true;
    }
    let Some(d) = v.strip_prefix("by_duration:") else {
        return false;
    };
    let d = d.trim();
    if d.starts_with('-') {
        return false;
    }
    let Some(rest) = d.strip_prefix('p') else {
        return false;
    };
    let (days, time) = match rest.split_once('t') {
        Some((days, time)) => (days, Some(time)),
        None => (rest, None),
    };
    let mut any = false;
    if !days.is_empty() {
        let Some(n) = days.strip_suffix('d') else {
            return false;
        };
        if n.parse::<u64>().is_err() {
            return false;
        }
        any = true;
    }
    if let Some(mut time) = time {
        if time.is_empty() {
            return false;
        }
        for unit in ['h', 'm', 's'] {
            if let Some(pos) = time.find(unit) {
                let n = &time[..pos];
                let ok = if unit == 's' {
                    n.split_once('.')
                        .map_or(n.parse::<u64>().is_ok(), |(a, b)| {
                            a.parse::<u64>().is_ok()
                                && !b.is_empty()
                                && b.len() <= 9
                                && b.chars().all(|c| c.is_ascii_digit())
                        })
                } else {
                    n.parse::<u64>().is_ok()
                };
                if !ok {
                    return false;
                }
                time = &time[pos + 1..];
                any = true;
            }
        }
        if !time.is_empty() {
            return false;
        }
    }
    any
}

/// The session timeout and heartbeat interval a group's own configs set, if any.
pub fn consumer_overrides(map: &ConfigMap) -> (Option<i32>, Option<i32>) {
    let get = |k: &str| map.get(k).and_then(|v| v.trim().parse().ok());
    (
        get(CONSUMER_SESSION_TIMEOUT_MS),
        get(CONSUMER_HEARTBEAT_INTERVAL_MS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BrokerConfig {
        let mut p = std::collections::BTreeMap::new();
        p.insert("log.dirs".to_string(), "/nonexistent-arus-test".to_string());
        BrokerConfig::from_properties(p).unwrap()
    }

    fn check(pairs: &[(&str, &str)]) -> Result<(), Refusal> {
        let map: ConfigMap = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validate(&config(), &map)
    }

    fn refused(pairs: &[(&str, &str)]) -> String {
        let (code, message) = check(pairs).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidConfig);
        message
    }

    #[test]
    fn validation_follows_kafka() {
        assert_eq!(check(&[("consumer.session.timeout.ms", "50000")]), Ok(()));
        assert_eq!(
            refused(&[("consumer.session.timeout.ms", "5000")]),
            "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive."
        );
        assert_eq!(
            refused(&[("consumer.heartbeat.interval.ms", "60000")]),
            "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive."
        );
        assert_eq!(
            refused(&[("consumer.session.timeout.ms", "0")]),
            "Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1"
        );
        assert_eq!(
            refused(&[("consumer.session.timeout.ms", "abc")]),
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"
        );
        assert_eq!(
            refused(&[("consumer.session.timeout.ms", "5"), ("foo", "1")]),
            "Unknown group config name: foo"
        );
        assert_eq!(
            refused(&[("share.record.lock.duration.ms", "100")]),
            "Invalid value 100 for configuration share.record.lock.duration.ms: Value must be at least 1000"
        );
        assert_eq!(
            refused(&[("share.partition.max.record.locks", "5000")]),
            "share.partition.max.record.locks must be in the range 100 to 4000 inclusive."
        );
        assert_eq!(
            refused(&[("streams.num.standby.replicas", "3")]),
            "streams.num.standby.replicas must be less than or equal to 2"
        );
        assert_eq!(
            refused(&[("share.isolation.level", "x")]),
            "Invalid value x for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted"
        );
        assert_eq!(
            refused(&[("share.renew.acknowledge.enable", "x")]),
            "Invalid value x for configuration share.renew.acknowledge.enable: Expected value to be either true or false"
        );
        assert_eq!(
            refused(&[("share.auto.offset.reset", "middle")]),
            "Invalid value middle for configuration share.auto.offset.reset: Invalid value `middle` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."
        );
        assert_eq!(
            check(&[("share.auto.offset.reset", "by_duration:PT1H")]),
            Ok(())
        );
        assert_eq!(
            check(&[("share.auto.offset.reset", "by_duration:P2DT3M4.5S")]),
            Ok(())
        );
        assert!(check(&[("share.auto.offset.reset", "by_duration:-PT1H")]).is_err());
        assert_eq!(
            refused(&[("errors.deadletterqueue.topic.name", "__consumer_offsets")]),
            "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'"
        );
        assert_eq!(
            refused(&[("streams.assignor.name", "x")]),
            "streams.assignor.name 'x' is not a registered task assignor. Registered assignors are: [sticky]."
        );
        assert_eq!(
            refused(&[("streams.rack.aware.assignment.tags", "a,a")]),
            "streams.rack.aware.assignment.tags must not contain duplicate tag keys."
        );
        assert_eq!(
            refused(&[("streams.rack.aware.assignment.tags", "a,,b")]),
            "Configuration 'streams.rack.aware.assignment.tags' values must not be empty."
        );
        assert_eq!(
            check(&[("streams.initial.rebalance.delay.ms", "2147483647")]),
            Ok(())
        );
    }

    #[test]
    fn bounds_follow_the_broker_config() {
        let mut p = std::collections::BTreeMap::new();
        p.insert("log.dirs".to_string(), "/nonexistent-arus-test".to_string());
        p.insert(
            "group.consumer.min.session.timeout.ms".to_string(),
            "10000".to_string(),
        );
        let c = BrokerConfig::from_properties(p).unwrap();
        let map: ConfigMap = [(
            "consumer.session.timeout.ms".to_string(),
            "20000".to_string(),
        )]
        .into();
        assert_eq!(validate(&c, &map), Ok(()));
        let map: ConfigMap = [(
            "consumer.session.timeout.ms".to_string(),
            "9999".to_string(),
        )]
        .into();
        assert_eq!(
            validate(&c, &map).unwrap_err().1,
            "consumer.session.timeout.ms must be in the range 10000 to 60000 inclusive."
        );
    }
}
