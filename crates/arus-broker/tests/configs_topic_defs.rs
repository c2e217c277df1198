//! The topic-config table against Kafka 4.x's documented definitions (`TopicConfig` and
//! `LogConfig.CONFIG`): every documented key is present with Kafka's type and default, and
//! the validators accept and refuse the boundary values Kafka does.

use arus_broker::config_defs::{ConfigType, TOPIC_CONFIGS, topic_config};

/// (key, type, default) as Kafka 4.1 documents them.
const KAFKA: &[(&str, ConfigType, &str)] = &[
    ("cleanup.policy", ConfigType::List, "delete"),
    ("compression.gzip.level", ConfigType::Int, "-1"),
    ("compression.lz4.level", ConfigType::Int, "9"),
    ("compression.type", ConfigType::String, "producer"),
    ("compression.zstd.level", ConfigType::Int, "3"),
    ("delete.retention.ms", ConfigType::Long, "86400000"),
    ("file.delete.delay.ms", ConfigType::Long, "60000"),
    ("flush.messages", ConfigType::Long, "9223372036854775807"),
    ("flush.ms", ConfigType::Long, "9223372036854775807"),
    (
        "follower.replication.throttled.replicas",
        ConfigType::List,
        "",
    ),
    ("index.interval.bytes", ConfigType::Int, "4096"),
    (
        "leader.replication.throttled.replicas",
        ConfigType::List,
        "",
    ),
    ("local.retention.bytes", ConfigType::Long, "-2"),
    ("local.retention.ms", ConfigType::Long, "-2"),
    (
        "max.compaction.lag.ms",
        ConfigType::Long,
        "9223372036854775807",
    ),
    ("max.message.bytes", ConfigType::Int, "1048588"),
    (
        "message.timestamp.after.max.ms",
        ConfigType::Long,
        "3600000",
    ),
    (
        "message.timestamp.before.max.ms",
        ConfigType::Long,
        "9223372036854775807",
    ),
    ("message.timestamp.type", ConfigType::String, "CreateTime"),
    ("min.cleanable.dirty.ratio", ConfigType::Double, "0.5"),
    ("min.compaction.lag.ms", ConfigType::Long, "0"),
    ("min.insync.replicas", ConfigType::Int, "1"),
    ("preallocate", ConfigType::Boolean, "false"),
    ("remote.log.copy.disable", ConfigType::Boolean, "false"),
    ("remote.log.delete.on.disable", ConfigType::Boolean, "false"),
    ("remote.storage.enable", ConfigType::Boolean, "false"),
    ("retention.bytes", ConfigType::Long, "-1"),
    ("retention.ms", ConfigType::Long, "604800000"),
    ("segment.bytes", ConfigType::Int, "1073741824"),
    ("segment.index.bytes", ConfigType::Int, "10485760"),
    ("segment.jitter.ms", ConfigType::Long, "0"),
    ("segment.ms", ConfigType::Long, "604800000"),
    (
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "false",
    ),
];

#[test]
fn every_documented_topic_config_with_kafkas_type_and_default() {
    for (key, kind, default) in KAFKA {
        let def = topic_config(key).unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(def.kind, *kind, "{key}");
        assert_eq!(def.default, *default, "{key}");
        assert!(!def.doc.is_empty(), "{key}");
    }
    assert_eq!(
        TOPIC_CONFIGS.len(),
        KAFKA.len(),
        "keys Kafka does not document"
    );
}

fn ok(key: &str, value: &str) -> bool {
    topic_config(key).unwrap().validate(value).is_ok()
}

#[test]
fn validators_accept_and_refuse_kafkas_boundaries() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "message.timestamp.type",
            &["CreateTime", "LogAppendTime"],
            &["createtime", "Now"],
        ),
        ("message.timestamp.before.max.ms", &["0"], &["-1"]),
        ("message.timestamp.after.max.ms", &["0"], &["-1"]),
        ("min.insync.replicas", &["1", "3"], &["0", "-1"]),
        (
            "compression.type",
            &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"],
            &["none", "GZIP", "brotli"],
        ),
        (
            "compression.gzip.level",
            &["-1", "1", "9"],
            &["0", "10", "-2"],
        ),
        ("compression.lz4.level", &["1", "17"], &["0", "18"]),
        (
            "compression.zstd.level",
            &["-131072", "22"],
            &["-131073", "23"],
        ),
        ("segment.index.bytes", &["4"], &["3"]),
        ("segment.bytes", &["1048576"], &["1048575"]),
        ("segment.ms", &["1"], &["0"]),
        (
            "cleanup.policy",
            &["delete", "compact", "compact,delete", ""],
            &["shred", "delete,shred"],
        ),
        (
            "min.cleanable.dirty.ratio",
            &["0", "1", "0.25"],
            &["1.01", "-0.1"],
        ),
        ("max.compaction.lag.ms", &["1"], &["0"]),
        ("min.compaction.lag.ms", &["0"], &["-1"]),
        ("retention.ms", &["-1", "0"], &["-2"]),
        // LogConfig defines retention.bytes without a validator.
        ("retention.bytes", &["-1", "-5", "0"], &["lots"]),
        ("local.retention.ms", &["-2"], &["-3"]),
        ("max.message.bytes", &["0"], &["-1", "2147483648"]),
        ("flush.messages", &["1"], &["0"]),
        (
            "leader.replication.throttled.replicas",
            &["", "*", "0:1,1:2"],
            &["0", "x:1", "*,0:1"],
        ),
        ("preallocate", &["true", "FALSE"], &["yes"]),
    ];
    for (key, good, bad) in cases {
        for v in *good {
            assert!(ok(key, v), "{key}={v} should be accepted");
        }
        for v in *bad {
            assert!(!ok(key, v), "{key}={v} should be refused");
        }
    }
}

#[test]
fn refusals_read_like_kafkas_config_exceptions() {
    let msg = |key: &str, v: &str| {
        topic_config(key)
            .unwrap()
            .validate(v)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        msg("min.insync.replicas", "0"),
        "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"
    );
    assert_eq!(
        msg("min.cleanable.dirty.ratio", "2"),
        "Invalid value 2 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"
    );
    assert_eq!(
        msg("cleanup.policy", "compact,shred"),
        "Invalid value shred for configuration cleanup.policy: String must be one of: compact, delete"
    );
    assert_eq!(
        msg("retention.ms", "soon"),
        "Invalid value soon for configuration retention.ms: Not a number of type LONG"
    );
}
