//! A topic's effective configuration: its overrides layered over the broker's defaults,
//! resolved once per change into typed values the hot path reads without parsing.

use std::collections::BTreeMap;

use arus_log::LogConfig;
use arus_records::{Compression, TimestampType};

use crate::broker_config::BrokerConfig;
use crate::config_defs::{ConfigValueError, TOPIC_CONFIGS, topic_config};

/// Where an effective value came from (Kafka's `ConfigSource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    /// A BROKER_LOGGER resource's log level.
    DynamicBrokerLoggerConfig = 6,
    /// A client-metrics subscription's own value (KIP-714).
    ClientMetricsConfig = 7,
    /// A group's own value (KIP-848 group configs).
    GroupConfig = 8,
}

#[derive(Clone, Debug)]
pub struct TopicSettings {
    pub overrides: BTreeMap<String, String>,
    pub max_message_bytes: usize,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub index_interval_bytes: u32,
    pub segment_index_bytes: u64,
    pub flush_messages: u64,
    pub flush_ms: i64,
    /// `cleanup.policy` contains `compact`: the log cleaner keeps the latest record per key.
    pub compacted: bool,
    /// `cleanup.policy` contains `delete`: retention deletes old segments; DeleteRecords is
    /// allowed.
    pub delete_enabled: bool,
    /// `retention.ms` (-1: unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: unlimited).
    pub retention_bytes: i64,
    /// `file.delete.delay.ms`: how long a deleted segment's files stay before the unlink.
    pub file_delete_delay_ms: i64,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones and transaction markers.
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub timestamp_type: TimestampType,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `None` keeps the producer's codec (`compression.type=producer`).
    pub compression: Option<Compression>,
    /// `min.insync.replicas`: acks=all is refused NOT_ENOUGH_REPLICAS below it, and the
    /// high watermark does not advance (KIP-966).
    pub min_insync_replicas: usize,
}

/// Checks every override key and value.
pub fn validate_overrides(overrides: &BTreeMap<String, String>) -> Result<(), ConfigValueError> {
    for (k, v) in overrides {
        let def = topic_config(k).ok_or_else(|| ConfigValueError::UnknownKey(k.clone()))?;
        def.validate(v)?;
        if k == "remote.storage.enable" && v.trim().eq_ignore_ascii_case("true") {
            return Err(ConfigValueError::Invalid {
                key: k.clone(),
                value: v.clone(),
                reason: "tiered storage is not supported by Arus".into(),
            });
        }
    }
    Ok(())
}

impl TopicSettings {
    /// Resolves overrides over broker defaults. Overrides must have been validated.
    pub fn resolve(broker: &BrokerConfig, overrides: BTreeMap<String, String>) -> TopicSettings {
        let value = |key: &str| -> String {
            overrides
                .get(key)
                .cloned()
                .or_else(|| broker.topic_default(key).map(|(v, _)| v))
                .unwrap_or_default()
        };
        let long = |key: &str| value(key).trim().parse::<i64>().unwrap_or(i64::MAX);
        let compression = match value("compression.type").trim() {
            "producer" => None,
            "uncompressed" => Some(Compression::None),
            other => Compression::from_name(other),
        };
        TopicSettings {
            max_message_bytes: long("max.message.bytes").clamp(0, i32::MAX as i64) as usize,
            segment_bytes: long("segment.bytes").max(1) as u64,
            segment_ms: long("segment.ms").max(1),
            index_interval_bytes: long("index.interval.bytes").clamp(0, u32::MAX as i64) as u32,
            segment_index_bytes: long("segment.index.bytes").max(4) as u64,
            flush_messages: long("flush.messages").max(1) as u64,
            flush_ms: long("flush.ms").max(0),
            compacted: value("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "compact"),
            delete_enabled: value("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "delete"),
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            file_delete_delay_ms: long("file.delete.delay.ms").max(0),
            delete_retention_ms: long("delete.retention.ms").max(0),
            min_compaction_lag_ms: long("min.compaction.lag.ms").max(0),
            max_compaction_lag_ms: long("max.compaction.lag.ms").max(1),
            min_cleanable_dirty_ratio: value("min.cleanable.dirty.ratio")
                .trim()
                .parse::<f64>()
                .unwrap_or(0.5)
                .clamp(0.0, 1.0),
            timestamp_type: if value("message.timestamp.type").trim() == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            compression,
            min_insync_replicas: long("min.insync.replicas").clamp(1, i32::MAX as i64) as usize,
            overrides,
        }
    }

    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            index_interval_bytes: self.index_interval_bytes,
            segment_index_bytes: self.segment_index_bytes,
        }
    }

    /// Every topic config with its effective value and source, in name order. Synonyms
    /// follow Kafka's `ConfigHelper`: the topic override, then each broker synonym's dynamic
    /// per-broker, dynamic default, static and default values.
    pub fn describe(&self, broker: &BrokerConfig) -> Vec<DescribedConfig> {
        TOPIC_CONFIGS
            .iter()
            .map(|def| {
                let (value, source) = match self.overrides.get(def.name) {
                    Some(v) => (v.clone(), ConfigSource::TopicConfig),
                    None => broker
                        .topic_default_with_source(def.name)
                        .unwrap_or((def.default.to_string(), ConfigSource::DefaultConfig)),
                };
                let mut synonyms = Vec::new();
                if let Some(v) = self.overrides.get(def.name) {
                    synonyms.push((def.name.to_string(), v.clone(), ConfigSource::TopicConfig));
                }
                // A config without a broker synonym (remote.*, throttled replicas) has no
                // synonyms beyond its override, as in Kafka.
                for (name, _, kafka_default) in crate::dynamic_config::topic_synonyms(def.name) {
                    synonyms.extend(broker.broker_value_chain(name, kafka_default, true));
                }
                DescribedConfig {
                    name: def.name,
                    value,
                    source,
                    synonyms,
                    def,
                }
            })
            .collect()
    }
}

pub struct DescribedConfig {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    pub synonyms: Vec<(String, String, ConfigSource)>,
    pub def: &'static crate::config_defs::ConfigDef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_beat_broker_defaults() {
        let mut props = BTreeMap::new();
        props.insert("log.retention.ms".to_string(), "1000".to_string());
        props.insert("message.max.bytes".to_string(), "5000".to_string());
        let broker = BrokerConfig::from_properties(props).unwrap();
        let mut o = BTreeMap::new();
        o.insert("max.message.bytes".to_string(), "2048".to_string());
        o.insert("cleanup.policy".to_string(), "compact,delete".to_string());
        let s = TopicSettings::resolve(&broker, o);
        assert_eq!(s.max_message_bytes, 2048);
        assert!(s.compacted);
        let described = s.describe(&broker);
        let retention = described.iter().find(|d| d.name == "retention.ms").unwrap();
        assert_eq!(retention.value, "1000");
        assert_eq!(retention.source, ConfigSource::StaticBrokerConfig);
        let max = described
            .iter()
            .find(|d| d.name == "max.message.bytes")
            .unwrap();
        assert_eq!(max.source, ConfigSource::TopicConfig);
    }

    #[test]
    fn unknown_and_invalid_overrides_are_rejected() {
        let mut o = BTreeMap::new();
        o.insert("retention.mss".to_string(), "1".to_string());
        assert!(matches!(
            validate_overrides(&o),
            Err(ConfigValueError::UnknownKey(_))
        ));
        let mut o = BTreeMap::new();
        o.insert("remote.storage.enable".to_string(), "true".to_string());
        assert!(validate_overrides(&o).is_err());
    }
}
