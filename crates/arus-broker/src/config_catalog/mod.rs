//! Apache Kafka's own catalog of broker configs, generated from the Kafka jars (see
//! `crates/arus-broker/config-catalog/GenerateConfigCatalog.java`): every key of the broker's
//! `ConfigDef` with its type, default, validator, importance, documentation and dynamic update
//! mode, plus Kafka's synonym lists. Arus reports and validates broker configs from this table
//! so that every valid Kafka key is known, whether or not Arus implements its feature.

#[rustfmt::skip]
mod kafka;

pub use kafka::{BROKER_CONFIG_SYNONYMS, BROKER_CONFIGS, KAFKA_VERSION, TOPIC_CONFIG_SYNONYMS};

use crate::config_defs::{ConfigType, Validator};

/// Kafka's `ConfigDef.Importance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Importance {
    High,
    Medium,
    Low,
}

/// How a broker config may change at run time, as Kafka's documentation and
/// `DynamicBrokerConfig.dynamicConfigUpdateModes()` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateMode {
    /// Only in `server.properties`; a restart applies a change.
    ReadOnly,
    /// Dynamic, for one broker only (resource name = node id).
    PerBroker,
    /// Dynamic, for one broker or as the cluster-wide default (resource name "").
    ClusterWide,
}

impl UpdateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateMode::ReadOnly => "read-only",
            UpdateMode::PerBroker => "per-broker",
            UpdateMode::ClusterWide => "cluster-wide",
        }
    }
}

/// One key of Kafka's broker `ConfigDef`.
#[derive(Debug)]
pub struct BrokerConfigEntry {
    pub name: &'static str,
    pub kind: ConfigType,
    /// `ConfigDef.convertToString` of the default; `None` when Kafka has none (reported as
    /// null) or for passwords.
    pub default: Option<&'static str>,
    /// Kafka's validator where Arus can check it (ranges and string choices); `Any` for the
    /// others, whose values are still checked against the type.
    pub validator: Validator,
    pub importance: Importance,
    pub mode: UpdateMode,
    /// In `DynamicBrokerConfig.DYNAMIC_SECURITY_CONFIGS`: changeable only with a
    /// `listener.name.<listener>.` prefix.
    pub listener_prefix_only: bool,
    /// Kafka's internal configs, which DescribeConfigs does not list unless they are set.
    pub internal: bool,
    pub doc: &'static str,
}

/// The Kafka definition of a broker key.
pub fn kafka_broker_config(name: &str) -> Option<&'static BrokerConfigEntry> {
    BROKER_CONFIGS
        .binary_search_by(|e| e.name.cmp(name))
        .ok()
        .map(|i| &BROKER_CONFIGS[i])
}

/// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms(name, false)`.
pub fn kafka_broker_synonyms(name: &str) -> Vec<&str> {
    BROKER_CONFIG_SYNONYMS
        .iter()
        .find(|(k, _)| *k == name)
        .map_or_else(|| vec![name], |(_, list)| list.to_vec())
}

/// Kafka's `ServerTopicConfigSynonyms.ALL_TOPIC_CONFIG_SYNONYMS` of a topic config: the broker
/// keys setting its default, in Kafka's order, with the factor converting to the topic unit.
pub fn kafka_topic_synonyms(topic_key: &str) -> &'static [(&'static str, i64)] {
    TOPIC_CONFIG_SYNONYMS
        .iter()
        .find(|(k, _)| *k == topic_key)
        .map_or(&[], |(_, list)| list)
}

/// Kafka's `KafkaConfig.maybeSensitive(configType(name))`: passwords, and every key whose type
/// Kafka cannot tell (unknown keys, which could hold a plugin's secret), are hidden.
pub fn is_sensitive(name: &str) -> bool {
    let base = listener_base_name(name).unwrap_or(name);
    kafka_broker_config(base).is_none_or(|e| e.kind == ConfigType::Password)
}

/// `listener.name.<listener>.<config>` → `<config>` (Kafka's `LISTENER_CONFIG_REGEX`).
pub fn listener_base_name(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("listener.name.")?;
    let (listener, base) = rest.split_once('.')?;
    (!listener.is_empty()).then_some(base)
}

/// A set of config names as Kafka's error messages print a `java.util.HashSet` of them
/// (`[a, b]` in hash-bucket order), so that messages naming several keys match Kafka's.
///
/// `HashSet(Collection)` sizes its table to the next power of two of
/// `max(total / 0.75 + 1, 16)`, where `total` is the number of keys in the request; the set
/// is iterated bucket by bucket, where a key's bucket is its spread `String.hashCode()` masked
/// by the table size. Keys sharing a bucket keep the order they were inserted in, which comes
/// from another hash table: approximated here by their bucket in a 16-slot table, then name.
pub fn java_hash_set_display(names: &[&str], total: usize) -> String {
    let wanted = ((total as f32 / 0.75) as usize + 1).max(16);
    let table = wanted.next_power_of_two();
    let mut sorted: Vec<&str> = names.to_vec();
    sorted.sort_by_key(|n| {
        let h = java_spread_hash(n);
        (h as usize & (table - 1), h as usize & 15, n.to_string())
    });
    format!("[{}]", sorted.join(", "))
}

/// `HashMap.hash`: `String.hashCode()` with its high bits folded into the low ones.
fn java_spread_hash(s: &str) -> u32 {
    let h = s
        .encode_utf16()
        .fold(0u32, |h, c| h.wrapping_mul(31).wrapping_add(c as u32));
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_kafkas() {
        assert_eq!(KAFKA_VERSION, "4.4.0");
        for pair in BROKER_CONFIGS.windows(2) {
            assert!(pair[0].name < pair[1].name);
        }
        let relogin = kafka_broker_config("sasl.kerberos.min.time.before.relogin").unwrap();
        assert_eq!(relogin.kind, ConfigType::Long);
        assert_eq!(relogin.default, Some("60000"));
        assert_eq!(relogin.mode, UpdateMode::PerBroker);
        assert_eq!(
            kafka_broker_config("log.retention.ms").unwrap().mode,
            UpdateMode::ClusterWide
        );
        assert_eq!(
            kafka_broker_config("log.dirs").unwrap().mode,
            UpdateMode::ReadOnly
        );
        assert_eq!(
            kafka_broker_config("log.retention.ms").unwrap().default,
            None
        );
        assert!(
            kafka_broker_config("ssl.keystore.type")
                .unwrap()
                .listener_prefix_only
        );
        assert!(kafka_broker_config("no.such.key").is_none());
        assert_eq!(
            kafka_broker_synonyms("log.retention.hours"),
            [
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours"
            ]
        );
        assert_eq!(kafka_broker_synonyms("num.partitions"), ["num.partitions"]);
        assert_eq!(
            kafka_topic_synonyms("retention.ms"),
            &[
                ("log.retention.ms", 1),
                ("log.retention.minutes", 60_000),
                ("log.retention.hours", 3_600_000)
            ]
        );
    }

    #[test]
    fn sensitivity_follows_kafka() {
        assert!(is_sensitive("ssl.keystore.password"));
        assert!(is_sensitive("listener.name.plaintext.ssl.key.password"));
        assert!(is_sensitive("some.plugin.secret"));
        assert!(!is_sensitive("log.retention.ms"));
        assert!(!is_sensitive("listener.name.plaintext.ssl.keystore.type"));
    }

    #[test]
    fn hash_set_order_matches_kafkas_messages() {
        // Kafka 4.4.0 answered `--add-config log.dirs=/x,node.id=3,num.partitions=3` with
        // "Cannot update these configs dynamically: [node.id, num.partitions, log.dirs]".
        assert_eq!(
            java_hash_set_display(&["log.dirs", "node.id", "num.partitions"], 3),
            "[node.id, num.partitions, log.dirs]"
        );
        assert_eq!(java_hash_set_display(&["log.dirs"], 1), "[log.dirs]");
    }
}
