//! The table of every topic-level config Kafka documents, with Kafka 4.0's defaults, types and
//! validation, and the broker property each one inherits its default from (its synonym).
//!
//! Keeping the table as data means DescribeConfigs, CreateTopics validation, AlterConfigs and
//! the CLI all agree on one definition of each key.

/// Kafka's `ConfigType` numbers as carried by DescribeConfigs v3+.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

/// What values a key accepts beyond its type.
#[derive(Clone, Copy, Debug)]
pub enum Validator {
    Any,
    /// Inclusive numeric range.
    Range(f64, f64),
    /// One of these strings (case-sensitive, as Kafka).
    OneOf(&'static [&'static str]),
    /// Comma-separated list whose items are each one of these.
    ListOf(&'static [&'static str]),
    /// Inclusive integer range, or exactly the extra value (Kafka's `GzipCompression`
    /// level validator: 1..=9 or -1 for zlib's default).
    RangeOrExactly(f64, f64, f64),
    /// Kafka's `ThrottledReplicaListValidator`: `*`, or `partition:broker` pairs.
    ThrottledReplicas,
}

#[derive(Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    pub validator: Validator,
    /// Broker property that supplies the default when set (Kafka's "synonym").
    pub broker_synonym: Option<&'static str>,
    pub doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

macro_rules! def {
    ($name:expr, $kind:ident, $default:expr, $validator:expr, $syn:expr, $doc:expr) => {
        ConfigDef {
            name: $name,
            kind: ConfigType::$kind,
            default: $default,
            validator: $validator,
            broker_synonym: $syn,
            doc: $doc,
        }
    };
}

/// Every topic config, sorted by name.
pub static TOPIC_CONFIGS: &[ConfigDef] = &[
    def!(
        "cleanup.policy",
        List,
        "delete",
        Validator::ListOf(&["compact", "delete"]),
        Some("log.cleanup.policy"),
        "The retention policy to use on log segments: delete, compact, or both."
    ),
    def!(
        "compression.gzip.level",
        Int,
        "-1",
        Validator::RangeOrExactly(1.0, 9.0, -1.0),
        Some("compression.gzip.level"),
        "The compression level to use if compression.type is gzip."
    ),
    def!(
        "compression.lz4.level",
        Int,
        "9",
        Validator::Range(1.0, 17.0),
        Some("compression.lz4.level"),
        "The compression level to use if compression.type is lz4."
    ),
    def!(
        "compression.type",
        String,
        "producer",
        Validator::OneOf(COMPRESSION_TYPES),
        Some("compression.type"),
        "The final compression type for the topic; 'producer' keeps the codec the producer chose."
    ),
    def!(
        "compression.zstd.level",
        Int,
        "3",
        Validator::Range(-131072.0, 22.0),
        Some("compression.zstd.level"),
        "The compression level to use if compression.type is zstd."
    ),
    def!(
        "delete.retention.ms",
        Long,
        "86400000",
        Validator::Range(0.0, f64::MAX),
        Some("log.cleaner.delete.retention.ms"),
        "How long delete tombstones are retained on compacted topics."
    ),
    def!(
        "file.delete.delay.ms",
        Long,
        "60000",
        Validator::Range(0.0, f64::MAX),
        Some("log.segment.delete.delay.ms"),
        "The time to wait before deleting a file from the filesystem."
    ),
    def!(
        "flush.messages",
        Long,
        LONG_MAX,
        Validator::Range(1.0, f64::MAX),
        Some("log.flush.interval.messages"),
        "Force an fsync of the log after this many messages (acks=all is always fsynced by Arus)."
    ),
    def!(
        "flush.ms",
        Long,
        LONG_MAX,
        Validator::Range(0.0, f64::MAX),
        Some("log.flush.interval.ms"),
        "Force an fsync of the log after this much time."
    ),
    def!(
        "follower.replication.throttled.replicas",
        List,
        "",
        Validator::ThrottledReplicas,
        None,
        "Replicas for which log replication should be throttled on the follower side."
    ),
    def!(
        "index.interval.bytes",
        Int,
        "4096",
        Validator::Range(0.0, 2147483647.0),
        Some("log.index.interval.bytes"),
        "How frequently an entry is added to the offset index."
    ),
    def!(
        "leader.replication.throttled.replicas",
        List,
        "",
        Validator::ThrottledReplicas,
        None,
        "Replicas for which log replication should be throttled on the leader side."
    ),
    def!(
        "local.retention.bytes",
        Long,
        "-2",
        Validator::Range(-2.0, f64::MAX),
        Some("log.local.retention.bytes"),
        "The maximum size of local log segments before deletion (tiered storage; -2 means retention.bytes)."
    ),
    def!(
        "local.retention.ms",
        Long,
        "-2",
        Validator::Range(-2.0, f64::MAX),
        Some("log.local.retention.ms"),
        "How long local log segments are kept (tiered storage; -2 means retention.ms)."
    ),
    def!(
        "max.compaction.lag.ms",
        Long,
        LONG_MAX,
        Validator::Range(1.0, f64::MAX),
        Some("log.cleaner.max.compaction.lag.ms"),
        "The maximum time a message will remain ineligible for compaction."
    ),
    def!(
        "max.message.bytes",
        Int,
        "1048588",
        Validator::Range(0.0, 2147483647.0),
        Some("message.max.bytes"),
        "The largest record batch size allowed."
    ),
    def!(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        Validator::Range(0.0, f64::MAX),
        Some("log.message.timestamp.after.max.ms"),
        "How far a message timestamp may be ahead of the broker's time (CreateTime topics)."
    ),
    def!(
        "message.timestamp.before.max.ms",
        Long,
        LONG_MAX,
        Validator::Range(0.0, f64::MAX),
        Some("log.message.timestamp.before.max.ms"),
        "How far a message timestamp may be behind the broker's time (CreateTime topics)."
    ),
    def!(
        "message.timestamp.type",
        String,
        "CreateTime",
        Validator::OneOf(&["CreateTime", "LogAppendTime"]),
        Some("log.message.timestamp.type"),
        "Whether the timestamp in the message is the creation time or the log append time."
    ),
    def!(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        Validator::Range(0.0, 1.0),
        Some("log.cleaner.min.cleanable.ratio"),
        "The minimum ratio of dirty log to total log for a log to be eligible for cleaning."
    ),
    def!(
        "min.compaction.lag.ms",
        Long,
        "0",
        Validator::Range(0.0, f64::MAX),
        Some("log.cleaner.min.compaction.lag.ms"),
        "The minimum time a message will remain uncompacted in the log."
    ),
    def!(
        "min.insync.replicas",
        Int,
        "1",
        Validator::Range(1.0, 2147483647.0),
        Some("min.insync.replicas"),
        "The minimum number of in-sync replicas that must acknowledge an acks=all write."
    ),
    def!(
        "preallocate",
        Boolean,
        "false",
        Validator::Any,
        Some("log.preallocate"),
        "Whether to preallocate the file on disk when creating a new log segment."
    ),
    def!(
        "remote.log.copy.disable",
        Boolean,
        "false",
        Validator::Any,
        None,
        "Disables copying of segments to remote storage (tiered storage)."
    ),
    def!(
        "remote.log.delete.on.disable",
        Boolean,
        "false",
        Validator::Any,
        None,
        "Whether remote data is deleted when tiered storage is disabled on the topic."
    ),
    def!(
        "remote.storage.enable",
        Boolean,
        "false",
        Validator::Any,
        None,
        "Whether tiered storage is enabled for the topic (not supported by Arus: must stay false)."
    ),
    def!(
        "retention.bytes",
        Long,
        "-1",
        // LogConfig defines it without a validator: any negative value means no limit.
        Validator::Any,
        Some("log.retention.bytes"),
        "The maximum size a partition can grow to before old segments are discarded (-1: no limit)."
    ),
    def!(
        "retention.ms",
        Long,
        "604800000",
        Validator::Range(-1.0, f64::MAX),
        Some("log.retention.ms"),
        "The maximum time a log is retained before old segments are discarded (-1: no limit)."
    ),
    def!(
        "segment.bytes",
        Int,
        "1073741824",
        Validator::Range(1048576.0, 2147483647.0),
        Some("log.segment.bytes"),
        "The segment file size for the log."
    ),
    def!(
        "segment.index.bytes",
        Int,
        "10485760",
        Validator::Range(4.0, 2147483647.0),
        Some("log.index.size.max.bytes"),
        "The maximum size of the offset index of a segment."
    ),
    def!(
        "segment.jitter.ms",
        Long,
        "0",
        Validator::Range(0.0, f64::MAX),
        Some("log.roll.jitter.ms"),
        "The maximum random jitter subtracted from segment.ms to avoid thundering herds of segment rolling."
    ),
    def!(
        "segment.ms",
        Long,
        "604800000",
        Validator::Range(1.0, f64::MAX),
        Some("log.roll.ms"),
        "The period of time after which the log rolls a segment even if it is not full."
    ),
    def!(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        Validator::Any,
        Some("unclean.leader.election.enable"),
        "Whether replicas not in the ISR may be elected leader as a last resort."
    ),
];

/// Finds a topic config definition by key.
pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Why a config value was rejected; rendered into `INVALID_CONFIG` messages.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigValueError {
    #[error("Unknown topic config name: {0}")]
    UnknownKey(String),
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

impl ConfigDef {
    /// Checks `value` against this key's type and validator.
    pub fn validate(&self, value: &str) -> Result<(), ConfigValueError> {
        self.validate_as(self.name, value)
    }

    /// Like [`ConfigDef::validate`], naming `key` in the error: a broker synonym such as
    /// `log.retention.ms` is checked with its topic config's rules but reported by its own
    /// name, as Kafka does.
    pub fn validate_as(&self, key: &str, value: &str) -> Result<(), ConfigValueError> {
        let invalid = |reason: String| ConfigValueError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        };
        let v = value.trim();
        let number: Option<f64> = match self.kind {
            ConfigType::Boolean => {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    return Err(invalid("Expected value to be either true or false".into()));
                }
                None
            }
            ConfigType::Int => Some(
                v.parse::<i32>()
                    .map_err(|_| invalid("Not a number of type INT".into()))?
                    as f64,
            ),
            ConfigType::Short => Some(
                v.parse::<i16>()
                    .map_err(|_| invalid("Not a number of type SHORT".into()))?
                    as f64,
            ),
            ConfigType::Long => Some(
                v.parse::<i64>()
                    .map_err(|_| invalid("Not a number of type LONG".into()))?
                    as f64,
            ),
            ConfigType::Double => Some(
                v.parse::<f64>()
                    .map_err(|_| invalid("Not a number of type DOUBLE".into()))?,
            ),
            _ => None,
        };
        match (self.validator, number) {
            // Kafka's `ConfigDef.Range` messages.
            (Validator::Range(lo, _), Some(n)) if n < lo => {
                Err(invalid(format!("Value must be at least {lo}")))
            }
            (Validator::Range(_, hi), Some(n)) if n > hi => {
                Err(invalid(format!("Value must be no more than {hi}")))
            }
            (Validator::RangeOrExactly(lo, hi, extra), Some(n))
                if n != extra && (n < lo || n > hi) =>
            {
                Err(invalid(format!(
                    "Value must be between {lo} and {hi} or equal to {extra}"
                )))
            }
            (Validator::ThrottledReplicas, _) => {
                let items: Vec<&str> = v.split(',').map(str::trim).collect();
                let wildcard = items.len() == 1 && items[0] == "*";
                let pairs = items.iter().all(|i| {
                    i.split_once(':').is_some_and(|(p, b)| {
                        p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    })
                });
                if v.is_empty() || wildcard || pairs {
                    Ok(())
                } else {
                    Err(invalid(
                        "Must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...".into(),
                    ))
                }
            }
            (Validator::OneOf(allowed), _) if !allowed.contains(&v) => Err(invalid(format!(
                "String must be one of: {}",
                allowed.join(", ")
            ))),
            (Validator::ListOf(allowed), _) => {
                // Kafka's `ValidList` checks each item and names the item, not the list.
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !allowed.contains(&item) {
                        return Err(ConfigValueError::Invalid {
                            key: key.to_string(),
                            value: item.to_string(),
                            reason: format!("String must be one of: {}", allowed.join(", ")),
                        });
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_defaults_validate() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for def in TOPIC_CONFIGS {
            def.validate(def.default)
                .unwrap_or_else(|e| panic!("default of {} invalid: {e}", def.name));
        }
    }

    #[test]
    fn rejects_bad_values_with_reason() {
        let retention = topic_config("retention.ms").unwrap();
        assert!(retention.validate("3600000").is_ok());
        assert!(retention.validate("-2").is_err());
        assert!(retention.validate("soon").is_err());
        let policy = topic_config("cleanup.policy").unwrap();
        assert!(policy.validate("compact,delete").is_ok());
        let err = policy.validate("shred").unwrap_err().to_string();
        assert!(err.contains("cleanup.policy"), "{err}");
        assert!(
            topic_config("message.timestamp.type")
                .unwrap()
                .validate("Now")
                .is_err()
        );
    }
}
