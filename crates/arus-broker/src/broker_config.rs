//! Broker-level configuration: Kafka's property names and defaults, parsed from a
//! `server.properties`-style map. The binary layers the file, `ARUS_` environment variables
//! and command-line overrides into that map before calling [`BrokerConfig::from_properties`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::config_defs::{TOPIC_CONFIGS, topic_config};
use crate::dynamic_config::{self, DynamicConfigError, DynamicConfigs, DynamicScope, Synonym};
use crate::topic_settings::ConfigSource;

/// A named listener (`NAME://host:port`, PLAINTEXT). Port 0 asks the OS for a free port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerConfigError {
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("line {line} of the properties file is not `key=value`: {text:?}")]
    Syntax { line: usize, text: String },
    /// The node, listener and quorum keys, with Kafka's message.
    #[error(transparent)]
    Node(#[from] arus_node::NodeConfigError),
}

/// Broker properties Arus understands, besides the `log.*` synonyms of topic configs.
pub const BROKER_KEYS: &[(&str, &str, &str)] = &[
    ("node.id", "1", "The node id of this broker."),
    (
        "log.dirs",
        "./arus-data",
        "A comma-separated list of the directories where the log data is stored.",
    ),
    (
        "listeners",
        arus_node::config::DEFAULT_LISTENERS,
        "Comma-separated NAME://host:port listeners (names mapped to PLAINTEXT by listener.security.protocol.map; the controller.listener.names ones serve the controller quorum).",
    ),
    (
        "process.roles",
        "broker,controller",
        "The roles of this node: broker, controller, or both. Unset: the one-node cluster (both roles, itself the only voter, directories formatted on first start); set: a KRaft node whose directories `arus storage format` prepares.",
    ),
    (
        "controller.listener.names",
        "",
        "The listeners of the controller quorum (Kafka's key); not advertised to clients.",
    ),
    (
        "inter.broker.listener.name",
        "",
        "The listener brokers use to reach each other (default: the PLAINTEXT listener).",
    ),
    (
        "listener.security.protocol.map",
        arus_node::config::DEFAULT_PROTOCOL_MAP,
        "Listener name to security protocol; Arus serves PLAINTEXT only and refuses the others at start.",
    ),
    (
        "advertised.listeners",
        "",
        "Listeners advertised to clients (defaults to listeners).",
    ),
    (
        "num.partitions",
        "1",
        "Default number of partitions for auto-created topics.",
    ),
    (
        "default.replication.factor",
        "1",
        "Default replication factor for auto-created topics.",
    ),
    (
        "auto.create.topics.enable",
        "true",
        "Create topics on Metadata or Produce requests for unknown topics.",
    ),
    (
        "delete.topic.enable",
        "true",
        "Whether topics can be deleted.",
    ),
    (
        "socket.request.max.bytes",
        "104857600",
        "The maximum size of a request frame.",
    ),
    (
        "connections.max.idle.ms",
        "600000",
        "Idle connections are closed after this long.",
    ),
    (
        "log.flush.scheduler.interval.ms",
        "1000",
        "How often the background flusher checks flush.ms.",
    ),
    (
        "group.initial.rebalance.delay.ms",
        "3000",
        "How long the first rebalance of an empty group waits for more members to join.",
    ),
    (
        "group.min.session.timeout.ms",
        "6000",
        "The smallest session timeout a group member may ask for.",
    ),
    (
        "group.max.session.timeout.ms",
        "1800000",
        "The largest session timeout a group member may ask for.",
    ),
    (
        "group.max.size",
        "2147483647",
        "The maximum number of members of a classic group.",
    ),
    (
        "group.consumer.session.timeout.ms",
        "45000",
        "The session timeout of members of consumer groups (KIP-848 protocol).",
    ),
    (
        "group.consumer.regex.refresh.interval.ms",
        "600000",
        "The interval at which the group coordinator will refresh the topics matching the group subscribed regexes (KIP-848 protocol).",
    ),
    (
        "group.consumer.heartbeat.interval.ms",
        "5000",
        "The heartbeat interval given to members of consumer groups (KIP-848 protocol).",
    ),
    (
        "offsets.topic.num.partitions",
        "50",
        "The number of partitions of the __consumer_offsets topic (set before it is created).",
    ),
    (
        "offsets.retention.minutes",
        "10080",
        "How long committed offsets of an empty group are kept.",
    ),
    (
        "offsets.retention.check.interval.ms",
        "600000",
        "How often expired committed offsets are removed.",
    ),
    (
        "offset.metadata.max.bytes",
        "4096",
        "The maximum size of the metadata string of a committed offset.",
    ),
    (
        "transaction.state.log.num.partitions",
        "50",
        "The number of partitions of the __transaction_state topic (set before it is created).",
    ),
    (
        "transaction.max.timeout.ms",
        "900000",
        "The largest transaction timeout a producer may ask for.",
    ),
    (
        "transactional.id.expiration.ms",
        "604800000",
        "How long the coordinator keeps a transactional id that sends no transaction requests.",
    ),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
        "How often the coordinator aborts transactions that ran past their timeout.",
    ),
    (
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        "3600000",
        "How often the coordinator removes expired transactional ids.",
    ),
    (
        "producer.id.expiration.ms",
        "86400000",
        "How long a partition keeps the state of an idle producer id (for idempotence).",
    ),
    (
        "producer.id.expiration.check.interval.ms",
        "600000",
        "How often idle producer ids are removed from partitions.",
    ),
    (
        "transaction.partition.verification.enable",
        "true",
        "Check with the transaction coordinator that a transactional batch's partition was added to the transaction (KIP-890).",
    ),
    (
        "num.recovery.threads.per.data.dir",
        "2",
        "Threads that open (and after a crash, recover) partitions at start-up.",
    ),
    (
        "arus.request.read.timeout.ms",
        "60000",
        "Arus only: a request whose first bytes arrived must arrive whole within this time, or the connection is closed (a client trickling a request byte by byte would otherwise hold its connection and buffer forever).",
    ),
    (
        "arus.queued.max.request.bytes.per.connection",
        "16777216",
        "Arus only: one connection stops being read while the requests it sent and that are not yet answered hold more than this many bytes (a single request may still be up to socket.request.max.bytes).",
    ),
    (
        "arus.acks.all.fsync",
        "true",
        "Arus only: answer an acks=all produce after its batch is fsynced (group commit). false answers once the batch is in the page cache, as Apache Kafka does with its default flush settings (its durability comes from replication, not fsync); a machine crash can then lose acknowledged writes.",
    ),
    (
        "telemetry.max.bytes",
        "1048576",
        "The largest metrics payload a client may push with PushTelemetry (KIP-714).",
    ),
    (
        "arus.single.node.quorum",
        "true",
        "Arus only, without process.roles: true (the default) runs the one-node cluster on the KRaft code path (node 1, broker and controller, the only voter, metadata in a Raft log; a directory of the single-node release is upgraded into that log on its first start, docs/cluster.md); false keeps the single-node release's file-backed store (arus-metadata.json and friends), which no longer receives new features.",
    ),
    (
        "arus.telemetry.retained.bytes",
        "67108864",
        "Arus only: the memory the last pushed telemetry payload of every client instance may hold in total; the oldest payloads are dropped first.",
    ),
];

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// The node's identity, roles, listeners and quorum (`arus_node`).
    pub node: arus_node::NodeConfig,
    /// The cluster id and directory ids read from (or written to) `meta.properties` at
    /// start-up by `arus_node::storage::prepare_for_start`; `None` when the broker is
    /// opened without that step (tests), and a new directory then gets a random cluster id.
    pub identity: Option<arus_node::storage::Identity>,
    /// The metadata directory: `metadata.log.dir`, by default the first entry of
    /// `log.dirs`. Broker-wide files live here (see `crate::log_dirs`).
    pub log_dir: PathBuf,
    /// Every entry of `log.dirs`, in order; partitions are spread over them.
    pub log_dirs: Vec<PathBuf>,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub socket_request_max_bytes: usize,
    pub connections_max_idle_ms: u64,
    /// `queued.max.request.bytes`; `None` for -1 (no limit, Kafka's default).
    pub queued_max_request_bytes: Option<usize>,
    /// `arus.queued.max.request.bytes.per.connection`.
    pub queued_max_request_bytes_per_connection: usize,
    /// `arus.request.read.timeout.ms`.
    pub request_read_timeout_ms: u64,
    pub flush_scheduler_interval_ms: u64,
    pub group_initial_rebalance_delay_ms: i64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: i32,
    pub group_consumer_session_timeout_ms: i32,
    /// `group.consumer.regex.refresh.interval.ms`.
    pub group_consumer_regex_refresh_interval_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
    pub offsets_topic_num_partitions: i32,
    pub offsets_retention_minutes: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: i32,
    pub transaction_state_log_num_partitions: i32,
    pub transaction_max_timeout_ms: i32,
    pub transactional_id_expiration_ms: i64,
    pub transaction_abort_timed_out_interval_ms: i64,
    pub transaction_remove_expired_interval_ms: i64,
    pub producer_id_expiration_ms: i64,
    pub producer_id_expiration_check_interval_ms: i64,
    pub transaction_partition_verification_enable: bool,
    pub num_recovery_threads_per_data_dir: usize,
    /// `arus.acks.all.fsync`: whether acks=all waits for the fsync (see [`BROKER_KEYS`]).
    pub acks_all_fsync: bool,
    /// Every property set explicitly (file, environment or flag), for DescribeConfigs sources
    /// and for topic-config defaults taken from broker synonyms.
    pub explicit: BTreeMap<String, String>,
    /// The dynamic layers (KIP-226) of the broker with this log directory and node id,
    /// bound on first use.
    pub dynamic: DynamicSlot,
}

/// A broker key's effective value, where it came from, and its synonyms in Kafka's order.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerValue {
    pub value: String,
    pub source: ConfigSource,
    pub synonyms: Vec<Synonym>,
}

/// A broker key as DescribeConfigs reports it (see [`BrokerConfig::describe_key`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DescribedBrokerKey {
    pub value: Option<String>,
    pub source: ConfigSource,
    pub sensitive: bool,
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Where a `BrokerConfig` finds its dynamic layers. A clone starts unbound and binds to the
/// same shared layers if it keeps the log directory and node id, or to its own if a test
/// changed them.
#[derive(Default)]
pub struct DynamicSlot(OnceLock<Arc<DynamicConfigs>>);

impl Clone for DynamicSlot {
    fn clone(&self) -> Self {
        DynamicSlot::default()
    }
}

impl std::fmt::Debug for DynamicSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynamicSlot")
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self::from_properties(BTreeMap::new()).expect("built-in defaults are valid")
    }
}

/// Parses `key=value` lines; `#` and `!` start comments, as in Java properties files.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, BrokerConfigError> {
    let mut map = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once(['=', ':']) else {
            return Err(BrokerConfigError::Syntax {
                line: i + 1,
                text: raw.to_string(),
            });
        };
        map.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(map)
}

fn listener(e: &arus_node::Endpoint) -> Listener {
    Listener {
        name: e.name.clone(),
        host: e.host.clone(),
        port: e.port,
    }
}

impl BrokerConfig {
    pub fn from_properties(explicit: BTreeMap<String, String>) -> Result<Self, BrokerConfigError> {
        let get = |k: &str| -> String {
            explicit.get(k).cloned().unwrap_or_else(|| {
                BROKER_KEYS
                    .iter()
                    .find(|(n, _, _)| *n == k)
                    .map(|(_, d, _)| d.to_string())
                    .unwrap_or_default()
            })
        };
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, BrokerConfigError> {
            v.trim().parse().map_err(|_| BrokerConfigError::Invalid {
                key: key.into(),
                value: v.into(),
                reason: "not a valid number".into(),
            })
        }
        fn boolean(key: &str, v: &str) -> Result<bool, BrokerConfigError> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(BrokerConfigError::Invalid {
                    key: key.into(),
                    value: v.into(),
                    reason: "expected true or false".into(),
                }),
            }
        }
        // Validate topic-config synonyms set at broker level with the topic rules.
        for def in TOPIC_CONFIGS {
            if let Some(syn) = def.broker_synonym
                && let Some(v) = explicit.get(syn)
            {
                def.validate(v).map_err(|e| BrokerConfigError::Invalid {
                    key: syn.into(),
                    value: v.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        // Kafka keys whose feature Arus does not implement are still checked against Kafka's
        // type and validator, as Kafka refuses to start with an invalid value.
        for (key, value) in &explicit {
            if let Some(k) = dynamic_config::broker_config_key(key).filter(|k| !k.implemented) {
                k.validate(value).map_err(|e| BrokerConfigError::Invalid {
                    key: key.clone(),
                    value: value.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        let node = arus_node::NodeConfig::from_properties(&explicit)?;
        let listeners: Vec<Listener> = node.listeners.iter().map(listener).collect();
        let advertised: Vec<Listener> = node.advertised_listeners.iter().map(listener).collect();
        let log_dirs = node.log_dirs.clone();
        let log_dir = node.metadata_log.dir.clone();
        let node_id = node.node_id;
        let cfg = BrokerConfig {
            node_id,
            node,
            identity: None,
            log_dir,
            log_dirs,
            listeners,
            advertised_listeners: advertised,
            num_partitions: num("num.partitions", &get("num.partitions"))?,
            default_replication_factor: num(
                "default.replication.factor",
                &get("default.replication.factor"),
            )?,
            auto_create_topics_enable: boolean(
                "auto.create.topics.enable",
                &get("auto.create.topics.enable"),
            )?,
            delete_topic_enable: boolean("delete.topic.enable", &get("delete.topic.enable"))?,
            socket_request_max_bytes: num(
                "socket.request.max.bytes",
                &get("socket.request.max.bytes"),
            )?,
            connections_max_idle_ms: num(
                "connections.max.idle.ms",
                &get("connections.max.idle.ms"),
            )?,
            queued_max_request_bytes: {
                let key = "queued.max.request.bytes";
                let v = explicit.get(key).map(String::as_str).unwrap_or("268435456");
                match num::<i64>(key, v)? {
                    -1 => None,
                    n if n >= 0 => Some(n as usize),
                    _ => {
                        return Err(BrokerConfigError::Invalid {
                            key: key.into(),
                            value: v.into(),
                            reason: "must be -1 (no limit) or a number of bytes".into(),
                        });
                    }
                }
            },
            queued_max_request_bytes_per_connection: num(
                "arus.queued.max.request.bytes.per.connection",
                &get("arus.queued.max.request.bytes.per.connection"),
            )?,
            request_read_timeout_ms: num(
                "arus.request.read.timeout.ms",
                &get("arus.request.read.timeout.ms"),
            )?,
            flush_scheduler_interval_ms: num(
                "log.flush.scheduler.interval.ms",
                &get("log.flush.scheduler.interval.ms"),
            )?,
            group_initial_rebalance_delay_ms: num(
                "group.initial.rebalance.delay.ms",
                &get("group.initial.rebalance.delay.ms"),
            )?,
            group_min_session_timeout_ms: num(
                "group.min.session.timeout.ms",
                &get("group.min.session.timeout.ms"),
            )?,
            group_max_session_timeout_ms: num(
                "group.max.session.timeout.ms",
                &get("group.max.session.timeout.ms"),
            )?,
            group_max_size: num("group.max.size", &get("group.max.size"))?,
            group_consumer_session_timeout_ms: num(
                "group.consumer.session.timeout.ms",
                &get("group.consumer.session.timeout.ms"),
            )?,
            group_consumer_regex_refresh_interval_ms: num(
                "group.consumer.regex.refresh.interval.ms",
                &get("group.consumer.regex.refresh.interval.ms"),
            )?,
            group_consumer_heartbeat_interval_ms: num(
                "group.consumer.heartbeat.interval.ms",
                &get("group.consumer.heartbeat.interval.ms"),
            )?,
            offsets_topic_num_partitions: num(
                "offsets.topic.num.partitions",
                &get("offsets.topic.num.partitions"),
            )?,
            offsets_retention_minutes: num(
                "offsets.retention.minutes",
                &get("offsets.retention.minutes"),
            )?,
            offsets_retention_check_interval_ms: num(
                "offsets.retention.check.interval.ms",
                &get("offsets.retention.check.interval.ms"),
            )?,
            offset_metadata_max_bytes: num(
                "offset.metadata.max.bytes",
                &get("offset.metadata.max.bytes"),
            )?,
            transaction_state_log_num_partitions: num(
                "transaction.state.log.num.partitions",
                &get("transaction.state.log.num.partitions"),
            )?,
            transaction_max_timeout_ms: num(
                "transaction.max.timeout.ms",
                &get("transaction.max.timeout.ms"),
            )?,
            transactional_id_expiration_ms: num(
                "transactional.id.expiration.ms",
                &get("transactional.id.expiration.ms"),
            )?,
            transaction_abort_timed_out_interval_ms: num(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                &get("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
            )?,
            transaction_remove_expired_interval_ms: num(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                &get("transaction.remove.expired.transaction.cleanup.interval.ms"),
            )?,
            producer_id_expiration_ms: num(
                "producer.id.expiration.ms",
                &get("producer.id.expiration.ms"),
            )?,
            producer_id_expiration_check_interval_ms: num(
                "producer.id.expiration.check.interval.ms",
                &get("producer.id.expiration.check.interval.ms"),
            )?,
            transaction_partition_verification_enable: boolean(
                "transaction.partition.verification.enable",
                &get("transaction.partition.verification.enable"),
            )?,
            num_recovery_threads_per_data_dir: num(
                "num.recovery.threads.per.data.dir",
                &get("num.recovery.threads.per.data.dir"),
            )?,
            acks_all_fsync: boolean("arus.acks.all.fsync", &get("arus.acks.all.fsync"))?,
            explicit,
            dynamic: DynamicSlot::default(),
        };
        if cfg.num_partitions < 1 {
            return Err(BrokerConfigError::Invalid {
                key: "num.partitions".into(),
                value: cfg.num_partitions.to_string(),
                reason: "must be at least 1".into(),
            });
        }
        for (key, value, ok) in [
            (
                "offsets.topic.num.partitions",
                cfg.offsets_topic_num_partitions as i64,
                cfg.offsets_topic_num_partitions >= 1,
            ),
            (
                "group.max.size",
                cfg.group_max_size as i64,
                cfg.group_max_size >= 1,
            ),
            (
                "group.consumer.session.timeout.ms",
                cfg.group_consumer_session_timeout_ms as i64,
                cfg.group_consumer_session_timeout_ms >= 1,
            ),
            (
                "group.consumer.regex.refresh.interval.ms",
                cfg.group_consumer_regex_refresh_interval_ms as i64,
                cfg.group_consumer_regex_refresh_interval_ms >= 10_000,
            ),
            (
                "group.consumer.heartbeat.interval.ms",
                cfg.group_consumer_heartbeat_interval_ms as i64,
                cfg.group_consumer_heartbeat_interval_ms >= 1,
            ),
            (
                "offsets.retention.minutes",
                cfg.offsets_retention_minutes,
                cfg.offsets_retention_minutes >= 1,
            ),
            (
                "offsets.retention.check.interval.ms",
                cfg.offsets_retention_check_interval_ms,
                cfg.offsets_retention_check_interval_ms >= 1,
            ),
            (
                "transaction.state.log.num.partitions",
                cfg.transaction_state_log_num_partitions as i64,
                cfg.transaction_state_log_num_partitions >= 1,
            ),
            (
                "transaction.max.timeout.ms",
                cfg.transaction_max_timeout_ms as i64,
                cfg.transaction_max_timeout_ms >= 1,
            ),
            (
                "transactional.id.expiration.ms",
                cfg.transactional_id_expiration_ms,
                cfg.transactional_id_expiration_ms >= 1,
            ),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                cfg.transaction_abort_timed_out_interval_ms,
                cfg.transaction_abort_timed_out_interval_ms >= 1,
            ),
            (
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                cfg.transaction_remove_expired_interval_ms,
                cfg.transaction_remove_expired_interval_ms >= 1,
            ),
            (
                "producer.id.expiration.ms",
                cfg.producer_id_expiration_ms,
                cfg.producer_id_expiration_ms >= 1,
            ),
            (
                "producer.id.expiration.check.interval.ms",
                cfg.producer_id_expiration_check_interval_ms,
                cfg.producer_id_expiration_check_interval_ms >= 1,
            ),
            (
                "group.initial.rebalance.delay.ms",
                cfg.group_initial_rebalance_delay_ms,
                cfg.group_initial_rebalance_delay_ms >= 0,
            ),
        ] {
            if !ok {
                return Err(BrokerConfigError::Invalid {
                    key: key.into(),
                    value: value.to_string(),
                    reason: "out of range".into(),
                });
            }
        }
        // Kafka loads `replica.selector.class` as a Java class and fails to start on one it
        // cannot find; Arus has the rack-aware selector only (KIP-392).
        if let Some(class) = cfg.explicit.get("replica.selector.class")
            && !class.trim().is_empty()
            && class.trim() != crate::cluster::replica_selector::RACK_AWARE_SELECTOR
        {
            return Err(BrokerConfigError::Invalid {
                key: "replica.selector.class".into(),
                value: class.clone(),
                reason: format!(
                    "Arus offers one replica selector: {}",
                    crate::cluster::replica_selector::RACK_AWARE_SELECTOR
                ),
            });
        }
        // Requests above 1 MiB may hold only 3/4 of the pool (arus-server's `memory`): that
        // share must fit the largest request, or such a request could never be read whole.
        let needed = cfg.socket_request_max_bytes.div_ceil(3).saturating_mul(4);
        if let Some(queued) = cfg.queued_max_request_bytes
            && queued < needed
        {
            return Err(BrokerConfigError::Invalid {
                key: "queued.max.request.bytes".into(),
                value: queued.to_string(),
                reason: format!(
                    "must be -1 or at least 4/3 of socket.request.max.bytes ({needed}): requests above 1 MiB may use 3/4 of it"
                ),
            });
        }
        Ok(cfg)
    }

    /// Explicitly set keys that Arus does not act on, each with a hint when there is more to
    /// say than "unknown": a valid Kafka broker key whose feature Arus does not implement is
    /// accepted and reported by DescribeConfigs but has no effect; a topic config set at broker
    /// level names the broker key that sets its default. Every key the broker honours is
    /// marked implemented in [`dynamic_config::broker_config_keys`], so the warning never
    /// names a key that works.
    pub fn unknown_keys(&self) -> Vec<(&str, Option<String>)> {
        self.explicit
            .keys()
            .map(String::as_str)
            // Kafka's quota on log-directory moves: a dynamic broker config outside the
            // catalog; Arus reads it from the static properties (see `log_dirs::mover`).
            .filter(|k| *k != crate::log_dirs::mover::THROTTLE_KEY)
            .filter_map(|k| match dynamic_config::broker_config_key(k) {
                Some(key) if key.implemented => None,
                Some(_) => Some((
                    k,
                    Some(format!(
                        "{k} is an Apache Kafka {} broker config that Arus does not implement: \
                         it is accepted and reported by DescribeConfigs but has no effect",
                        crate::config_catalog::KAFKA_VERSION
                    )),
                )),
                None => {
                    let hint = topic_config(k).and_then(|d| d.broker_synonym).map(|syn| {
                        format!(
                            "{k} is a topic config: set it per topic, or its broker default with {syn}"
                        )
                    });
                    Some((k, hint))
                }
            })
            .collect()
    }

    /// The dynamic layers of this broker, loaded from `dynamic-configs.json` in the log
    /// directory on first use. If the file is unreadable the layers are empty and refuse
    /// changes; [`BrokerConfig::load_dynamic`] reports that error.
    pub fn dynamic(&self) -> &Arc<DynamicConfigs> {
        self.dynamic
            .0
            .get_or_init(|| dynamic_config::shared(&self.log_dir, self.node_id).0)
    }

    /// Binds the dynamic layers now, failing if the file is unreadable: a broker should not
    /// start (and later overwrite the file) with its dynamic configs silently dropped.
    pub fn load_dynamic(&self) -> Result<&Arc<DynamicConfigs>, DynamicConfigError> {
        let layers = self.dynamic();
        match layers.load_error() {
            Some(e) => Err(DynamicConfigError::Unavailable(e.to_string())),
            None => Ok(layers),
        }
    }

    /// The chain of values for a broker key, highest precedence first, as Kafka's
    /// `DynamicBrokerConfig` reports synonyms: dynamic per-broker (only if `per_broker`),
    /// dynamic cluster default, static, then Kafka's default.
    pub fn broker_value_chain(
        &self,
        key: &str,
        kafka_default: Option<&str>,
        per_broker: bool,
    ) -> Vec<Synonym> {
        let layers = self.dynamic();
        let mut chain = Vec::new();
        if per_broker && let Some(v) = layers.get(DynamicScope::Broker, key) {
            chain.push((key.to_string(), v, ConfigSource::DynamicBrokerConfig));
        }
        if let Some(v) = layers.get(DynamicScope::ClusterDefault, key) {
            chain.push((key.to_string(), v, ConfigSource::DynamicDefaultBrokerConfig));
        }
        if let Some(v) = self.explicit.get(key) {
            chain.push((key.to_string(), v.clone(), ConfigSource::StaticBrokerConfig));
        }
        if let Some(d) = kafka_default {
            chain.push((key.to_string(), d.to_string(), ConfigSource::DefaultConfig));
        }
        chain
    }

    /// The effective value of a broker key with its source and synonyms (Kafka's order);
    /// `None` for a key Arus does not know.
    pub fn broker_value(&self, key: &str, per_broker: bool) -> Option<BrokerValue> {
        let names = dynamic_config::broker_synonyms(key);
        let mut synonyms = Vec::new();
        let mut effective = None;
        for (name, factor, default) in names {
            let chain = self.broker_value_chain(name, default, per_broker);
            if effective.is_none()
                && let Some((_, v, source)) = chain.first()
            {
                // `log.retention.hours=2` makes `log.retention.ms` 7200000.
                let value = if factor == 1 {
                    v.clone()
                } else {
                    v.trim()
                        .parse::<i64>()
                        .map_or_else(|_| v.clone(), |n| n.saturating_mul(factor).to_string())
                };
                effective = Some((value, *source));
            }
            synonyms.extend(chain);
        }
        let (value, source) = effective.or_else(|| {
            dynamic_config::broker_config_key(key)
                .and_then(|k| k.default)
                .map(|d| (d.to_string(), ConfigSource::DefaultConfig))
        })?;
        Some(BrokerValue {
            value,
            source,
            synonyms,
        })
    }

    /// A broker key as Kafka 4.4's DescribeConfigs reports it (`ConfigHelper.
    /// createBrokerConfigEntry`): the key's own value (no unit conversion: with only
    /// `log.retention.hours` set, `log.retention.ms` is null), and its synonyms layer by layer
    /// (dynamic per-broker, dynamic default, static, default), each layer in Kafka's synonym
    /// order, with those before the key's own name dropped. Sensitive keys (passwords and
    /// keys Kafka does not know) have null values. `per_broker` false is the cluster-default
    /// resource's view: its value is the dynamic default, the only synonym reported.
    pub fn describe_key(&self, key: &str, per_broker: bool) -> DescribedBrokerKey {
        let layers = self.dynamic();
        let known = dynamic_config::broker_config_key(key);
        let sensitive = match &known {
            Some(k) if k.kind == crate::config_defs::ConfigType::Password => true,
            Some(_) => false,
            None => crate::config_catalog::is_sensitive(key),
        };
        let names: Vec<String> = match crate::config_catalog::listener_base_name(key) {
            Some(base) => vec![key.to_string(), base.to_string()],
            None => crate::config_catalog::kafka_broker_synonyms(key)
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        let default_of =
            |name: &str| dynamic_config::broker_config_key(name).and_then(|k| k.default);
        let mut synonyms = Vec::new();
        let sources = [
            ConfigSource::DynamicBrokerConfig,
            ConfigSource::DynamicDefaultBrokerConfig,
            ConfigSource::StaticBrokerConfig,
            ConfigSource::DefaultConfig,
        ];
        let layer_value = |source: ConfigSource, name: &str| -> Option<String> {
            match source {
                ConfigSource::DynamicBrokerConfig if per_broker => {
                    layers.get(DynamicScope::Broker, name)
                }
                ConfigSource::DynamicDefaultBrokerConfig => {
                    layers.get(DynamicScope::ClusterDefault, name)
                }
                // Kafka's `populateSynonyms`: each of node.id and broker.id stands for the
                // other when only one is set.
                ConfigSource::StaticBrokerConfig => {
                    self.explicit.get(name).cloned().or_else(|| {
                        let other = match name {
                            "node.id" => "broker.id",
                            "broker.id" => "node.id",
                            _ => return None,
                        };
                        self.explicit.get(other).cloned()
                    })
                }
                ConfigSource::DefaultConfig => default_of(name).map(str::to_string),
                _ => None,
            }
        };
        for source in sources {
            for name in &names {
                if let Some(v) = layer_value(source, name) {
                    synonyms.push((name.clone(), (!sensitive).then_some(v), source));
                }
            }
        }
        // The cluster-default resource reports only the dynamic default (Kafka 4.4).
        if !per_broker {
            synonyms.retain(|(_, _, s)| *s == ConfigSource::DynamicDefaultBrokerConfig);
        }
        let first_own = synonyms
            .iter()
            .position(|(n, _, _)| n == key)
            .unwrap_or(synonyms.len());
        synonyms.drain(..first_own);
        let value = if per_broker {
            sources.iter().find_map(|s| layer_value(*s, key))
        } else {
            layers.get(DynamicScope::ClusterDefault, key)
        };
        DescribedBrokerKey {
            value: value.filter(|_| !sensitive),
            source: synonyms
                .first()
                .map_or(ConfigSource::DefaultConfig, |(_, _, s)| *s),
            sensitive,
            synonyms,
        }
    }

    /// The keys DescribeConfigs lists for this broker: Kafka's non-internal broker keys and
    /// Arus's own, plus every key set statically or dynamically (Kafka's
    /// `originals ++ nonInternalValues`).
    pub fn described_keys(&self) -> Vec<String> {
        let layers = self.dynamic();
        let mut keys: std::collections::BTreeSet<String> = dynamic_config::broker_config_keys()
            .iter()
            .filter(|k| !k.internal)
            .map(|k| k.name.to_string())
            .collect();
        keys.extend(self.explicit.keys().cloned());
        keys.extend(layers.layer(DynamicScope::Broker).into_keys());
        keys.extend(layers.layer(DynamicScope::ClusterDefault).into_keys());
        keys.into_iter().collect()
    }

    /// The effective value of a broker key now (dynamic layers included), for components
    /// that must follow dynamic changes (e.g. `producer.id.expiration.ms`).
    pub fn effective(&self, key: &str) -> Option<String> {
        self.broker_value(key, true).map(|v| v.value)
    }

    /// [`BrokerConfig::effective`] as a number, `fallback` if unknown or unparsable (values
    /// are validated when set, so that only happens for keys Arus does not know).
    pub fn effective_i64(&self, key: &str, fallback: i64) -> i64 {
        self.effective(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(fallback)
    }

    /// [`BrokerConfig::effective`] as a boolean, `fallback` if unknown.
    pub fn effective_bool(&self, key: &str, fallback: bool) -> bool {
        match self.effective(key) {
            Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
            Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
            _ => fallback,
        }
    }

    /// The broker-level default of a topic config with its source: the first broker synonym
    /// set in any layer (dynamic per-broker, dynamic default, static; `log.retention.ms`
    /// before `.minutes` before `.hours`), else Kafka's topic default.
    pub fn topic_default_with_source(&self, key: &str) -> Option<(String, ConfigSource)> {
        let def = topic_config(key)?;
        for (name, factor, _) in dynamic_config::topic_synonyms(key) {
            if let Some((_, v, source)) =
                self.broker_value_chain(name, None, true).into_iter().next()
            {
                if factor == 1 {
                    return Some((v, source));
                }
                if let Ok(n) = v.trim().parse::<i64>() {
                    return Some((n.saturating_mul(factor).to_string(), source));
                }
            }
        }
        Some((def.default.to_string(), ConfigSource::DefaultConfig))
    }

    /// The broker-level default for a topic config, and whether it was set (statically or
    /// dynamically) rather than Kafka's default.
    pub fn topic_default(&self, key: &str) -> Option<(String, bool)> {
        self.topic_default_with_source(key)
            .map(|(v, s)| (v, s != ConfigSource::DefaultConfig))
    }

    /// The broker listeners as advertised to clients: `advertised.listeners`, else
    /// `listeners`, never the controller listeners (Kafka's
    /// `effectiveAdvertisedBrokerListeners`), with a wildcard host replaced by 127.0.0.1
    /// and port 0 by the port the listener of that name bound (`bound_ports` is in
    /// `listeners` order).
    pub fn advertised(&self, bound_ports: &[u16]) -> Vec<Listener> {
        self.advertised_listeners
            .iter()
            .map(|l| Listener {
                name: l.name.clone(),
                host: if l.host == "0.0.0.0" || l.host == "::" {
                    "127.0.0.1".into()
                } else {
                    l.host.clone()
                },
                port: if l.port == 0 {
                    self.listeners
                        .iter()
                        .position(|b| b.name == l.name)
                        .and_then(|i| bound_ports.get(i).copied())
                        .unwrap_or(0)
                } else {
                    l.port
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_useful_local_broker() {
        let c = BrokerConfig::default();
        assert_eq!(c.listeners[0].host, "127.0.0.1");
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.log_dir, PathBuf::from("./arus-data"));
        assert_eq!(c.log_dirs, vec![PathBuf::from("./arus-data")]);
        assert!(c.auto_create_topics_enable);
    }

    #[test]
    fn only_the_rack_aware_replica_selector_is_accepted() {
        let props = |text: &str| BrokerConfig::from_properties(parse_properties(text).unwrap());
        assert!(
            props(
                "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"
            )
            .is_ok()
        );
        assert!(props("replica.selector.class=").is_ok());
        let refused = props("replica.selector.class=com.example.Nearest").unwrap_err();
        assert!(
            refused.to_string().contains("replica.selector.class"),
            "{refused}"
        );
    }

    #[test]
    fn every_log_dir_is_kept_and_metadata_log_dir_defaults_to_the_first() {
        let props = |text: &str| BrokerConfig::from_properties(parse_properties(text).unwrap());
        let c = props("log.dirs=/a, /b ,/c").unwrap();
        assert_eq!(
            c.log_dirs,
            vec![
                PathBuf::from("/a"),
                PathBuf::from("/b"),
                PathBuf::from("/c")
            ]
        );
        assert_eq!(c.log_dir, PathBuf::from("/a"));
        let c = props("log.dirs=/a,/b\nmetadata.log.dir=/m").unwrap();
        assert_eq!(c.log_dir, PathBuf::from("/m"));
        assert!(c.unknown_keys().is_empty());
        assert!(props("log.dirs= , ").is_err());
    }

    #[test]
    fn properties_parse_and_validate() {
        let map = parse_properties("# c\nnum.partitions=3\nlog.retention.hours = 2\n").unwrap();
        let c = BrokerConfig::from_properties(map).unwrap();
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.topic_default("retention.ms").unwrap().0, "7200000");
        let bad = parse_properties("log.cleanup.policy=shred").unwrap();
        assert!(BrokerConfig::from_properties(bad).is_err());
        assert!(parse_properties("novalue").is_err());
        let odd = parse_properties("log.retention.ms=5\nsome.plugin.setting=x").unwrap();
        let c = BrokerConfig::from_properties(odd).unwrap();
        assert_eq!(c.unknown_keys(), vec![("some.plugin.setting", None)]);
    }

    #[test]
    fn kafka_keys_arus_does_not_implement_are_known_and_checked() {
        let props = parse_properties(
            "sasl.kerberos.min.time.before.relogin=70000\nquota.window.num=11\n\
             no.such.key=1\n",
        )
        .unwrap();
        let c = BrokerConfig::from_properties(props).unwrap();
        let unknown = c.unknown_keys();
        assert_eq!(unknown.len(), 3, "{unknown:?}");
        for (key, hint) in &unknown {
            let kafka_key = *key != "no.such.key";
            assert_eq!(
                hint.as_deref()
                    .is_some_and(|h| h.contains("Arus does not implement")),
                kafka_key,
                "{key}: {hint:?}"
            );
        }
        let bad = parse_properties("sasl.kerberos.min.time.before.relogin=soon").unwrap();
        let err = BrokerConfig::from_properties(bad).unwrap_err().to_string();
        assert!(err.contains("Not a number of type LONG"), "{err}");
    }

    #[test]
    fn the_request_pool_must_hold_the_largest_request_in_its_large_share() {
        let with = |queued: &str| {
            BrokerConfig::from_properties(BTreeMap::from([
                (
                    "socket.request.max.bytes".to_string(),
                    "3000000".to_string(),
                ),
                ("queued.max.request.bytes".to_string(), queued.to_string()),
            ]))
        };
        assert!(with("3000000").is_err());
        assert!(with("4000000").is_ok());
        assert!(with("-1").is_ok());
    }

    #[test]
    fn every_honoured_key_is_known_and_a_topic_key_gets_a_hint() {
        let props = parse_properties(
            "log.retention.check.interval.ms=100\nlog.segment.delete.delay.ms=5\n\
             log.retention.minutes=3\nlog.cleaner.threads=2\nfile.delete.delay.ms=7\n",
        )
        .unwrap();
        let c = BrokerConfig::from_properties(props).unwrap();
        assert_eq!(c.effective_i64("log.retention.check.interval.ms", 0), 100);
        assert_eq!(c.topic_default("file.delete.delay.ms").unwrap().0, "5");
        let unknown = c.unknown_keys();
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert_eq!(unknown[0].0, "file.delete.delay.ms");
        assert!(
            unknown[0]
                .1
                .as_deref()
                .unwrap()
                .contains("log.segment.delete.delay.ms")
        );
    }

    #[test]
    fn node_keys_are_described_as_in_effect() {
        let c = BrokerConfig::default();
        let roles = c.describe_key("process.roles", true);
        assert_eq!(roles.value.as_deref(), Some("broker,controller"));
        assert_eq!(roles.source, ConfigSource::DefaultConfig);
        assert!(c.unknown_keys().is_empty());
        let props = parse_properties(
            "process.roles=broker,controller\nnode.id=2\ncontroller.quorum.voters=2@h:9093\n\
             listeners=PLAINTEXT://:0,CONTROLLER://:0\ncontroller.listener.names=CONTROLLER\n",
        )
        .unwrap();
        let c = BrokerConfig::from_properties(props).unwrap();
        let roles = c.describe_key("process.roles", true);
        assert_eq!(roles.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(c.node_id, 2);
        // Both listeners are bound; only the broker one is advertised, with its bound port.
        assert_eq!(c.listeners.len(), 2);
        let advertised = c.advertised(&[9092, 9093]);
        assert_eq!(advertised.len(), 1);
        assert_eq!(
            (advertised[0].name.as_str(), advertised[0].port),
            ("PLAINTEXT", 9092)
        );
        assert!(c.unknown_keys().is_empty(), "{:?}", c.unknown_keys());
        let bad = parse_properties("process.roles=broker,controller\n").unwrap();
        assert!(matches!(
            BrokerConfig::from_properties(bad),
            Err(BrokerConfigError::Node(_))
        ));
    }

    #[test]
    fn precedence_is_default_static_cluster_default_per_broker() {
        let dir = tempfile::tempdir().unwrap();
        let mut props = BTreeMap::new();
        props.insert("log.dirs".to_string(), dir.path().display().to_string());
        props.insert("log.retention.minutes".to_string(), "3".to_string());
        props.insert("producer.id.expiration.ms".to_string(), "5000".to_string());
        let c = BrokerConfig::from_properties(props).unwrap();
        assert_eq!(
            c.topic_default_with_source("retention.ms"),
            Some(("180000".into(), ConfigSource::StaticBrokerConfig))
        );
        assert_eq!(c.effective_i64("producer.id.expiration.ms", 0), 5000);
        let layers = c.load_dynamic().unwrap();
        for (scope, value) in [
            (DynamicScope::ClusterDefault, "1000"),
            (DynamicScope::Broker, "2000"),
        ] {
            layers
                .update::<DynamicConfigError>(scope, false, |m| {
                    m.insert("log.retention.ms".into(), value.into());
                    m.insert("producer.id.expiration.ms".into(), value.into());
                    Ok(())
                })
                .unwrap();
            assert_eq!(
                c.topic_default_with_source("retention.ms"),
                Some((value.to_string(), scope.source()))
            );
            assert_eq!(
                c.effective_i64("producer.id.expiration.ms", 0),
                value.parse::<i64>().unwrap()
            );
        }
        // A clone with the same directory shares the layers.
        assert_eq!(
            c.clone().effective("log.retention.ms").as_deref(),
            Some("2000")
        );
        let v = c.broker_value("log.retention.ms", true).unwrap();
        let sources: Vec<_> = v
            .synonyms
            .iter()
            .map(|(n, _, s)| (n.as_str(), *s))
            .collect();
        assert_eq!(
            sources,
            [
                ("log.retention.ms", ConfigSource::DynamicBrokerConfig),
                ("log.retention.ms", ConfigSource::DynamicDefaultBrokerConfig),
                ("log.retention.minutes", ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", ConfigSource::DefaultConfig),
            ]
        );
        // Without per-broker values (the cluster-default resource's view).
        let v = c.broker_value("log.retention.ms", false).unwrap();
        assert_eq!(v.value, "1000");
        assert_eq!(v.source, ConfigSource::DynamicDefaultBrokerConfig);
    }
}
