//! Dynamic broker configs (Kafka's `DynamicBrokerConfig`, KIP-226): broker properties that
//! AlterConfigs/IncrementalAlterConfigs change at runtime, either for this broker (resource
//! BROKER named by its node id) or as the cluster-wide default (resource BROKER named "").
//!
//! Precedence, lowest first, as Kafka: built-in default < static (file, environment, flags)
//! < dynamic cluster default < dynamic per-broker value.
//!
//! On-disk format (`dynamic-configs.json` in the log directory, format version 1):
//! ```json
//! {"version":1,"cluster_default":{"log.retention.ms":"3600000"},"brokers":{"1":{"compression.type":"lz4"}}}
//! ```
//! `brokers` is keyed by node id; only this node's entry is applied, the others are kept as
//! they are. Written whole to `dynamic-configs.json.tmp`, fsynced, renamed over the old file
//! and the directory fsynced, so a crash leaves the old or the new file, never a torn one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::broker::Broker;
use crate::broker_config::BROKER_KEYS;
use crate::config_defs::{ConfigDef, ConfigType, ConfigValueError, TOPIC_CONFIGS, Validator};
use crate::topic_settings::ConfigSource;
use crate::topics::TopicError;

pub const DYNAMIC_CONFIG_FILE: &str = "dynamic-configs.json";
pub const DYNAMIC_CONFIG_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DynamicConfigFile {
    pub version: u32,
    #[serde(default)]
    pub cluster_default: BTreeMap<String, String>,
    /// Per-broker values keyed by node id (decimal).
    #[serde(default)]
    pub brokers: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DynamicConfigError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dynamic config file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "dynamic config file {path} has format version {found}; this Arus reads version {DYNAMIC_CONFIG_VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
    /// The file could not be loaded at startup; changes are refused so that it is not
    /// overwritten with an empty set.
    #[error("dynamic broker configs are unavailable: {0}")]
    Unavailable(String),
}

/// Which dynamic layer a BROKER resource addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicScope {
    /// Resource name = this node's id: `DYNAMIC_BROKER_CONFIG`.
    Broker,
    /// Resource name "": `DYNAMIC_DEFAULT_BROKER_CONFIG`.
    ClusterDefault,
}

impl DynamicScope {
    pub fn source(self) -> ConfigSource {
        match self {
            DynamicScope::Broker => ConfigSource::DynamicBrokerConfig,
            DynamicScope::ClusterDefault => ConfigSource::DynamicDefaultBrokerConfig,
        }
    }
}

/// The two dynamic layers of one broker, persisted in its log directory.
#[derive(Debug)]
pub struct DynamicConfigs {
    dir: PathBuf,
    node_id: i32,
    state: RwLock<DynamicConfigFile>,
    load_error: Option<String>,
    /// Serializes read-modify-write changes so that concurrent alters do not lose updates.
    change: Mutex<()>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DynamicConfigError + '_ {
    move |source| DynamicConfigError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the file, or `None` for a log directory without one.
pub fn load_file(dir: &Path) -> Result<Option<DynamicConfigFile>, DynamicConfigError> {
    let path = dir.join(DYNAMIC_CONFIG_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let file: DynamicConfigFile =
        serde_json::from_slice(&bytes).map_err(|source| DynamicConfigError::Corrupt {
            path: path.clone(),
            source,
        })?;
    if file.version != DYNAMIC_CONFIG_VERSION {
        return Err(DynamicConfigError::Version {
            path,
            found: file.version,
        });
    }
    Ok(Some(file))
}

/// Atomically replaces the file (same protocol as [`crate::store::save`]).
pub fn save_file(dir: &Path, file: &DynamicConfigFile) -> Result<(), DynamicConfigError> {
    let path = dir.join(DYNAMIC_CONFIG_FILE);
    let bytes = serde_json::to_vec_pretty(file).map_err(|source| DynamicConfigError::Corrupt {
        path: path.clone(),
        source,
    })?;
    crate::store::replace_atomically(dir, DYNAMIC_CONFIG_FILE, &bytes)
        .map_err(|(path, source)| DynamicConfigError::Io { path, source })
}

impl DynamicConfigs {
    /// Loads the layers of `node_id` from `dir` (empty if the file does not exist).
    pub fn open(dir: &Path, node_id: i32) -> Result<DynamicConfigs, DynamicConfigError> {
        let mut file = load_file(dir)?.unwrap_or(DynamicConfigFile {
            version: DYNAMIC_CONFIG_VERSION,
            ..Default::default()
        });
        // Like Kafka's `DynamicBrokerConfig` at startup: entries that are no longer valid
        // (hand edits, keys a newer Arus accepted) are ignored with a warning, not fatal.
        for layer in std::iter::once(&mut file.cluster_default).chain(file.brokers.values_mut()) {
            layer.retain(|k, v| {
                let single = BTreeMap::from([(k.clone(), v.clone())]);
                match validate_dynamic(&single) {
                    Ok(()) => true,
                    Err((_, reason)) => {
                        tracing::warn!(key = %k, %reason, "ignoring invalid dynamic broker config");
                        false
                    }
                }
            });
        }
        Ok(DynamicConfigs {
            dir: dir.to_path_buf(),
            node_id,
            state: RwLock::new(file),
            load_error: None,
            change: Mutex::new(()),
        })
    }

    /// Empty layers that refuse every change, for a file that failed to load.
    fn unavailable(dir: &Path, node_id: i32, error: String) -> DynamicConfigs {
        DynamicConfigs {
            dir: dir.to_path_buf(),
            node_id,
            state: RwLock::new(DynamicConfigFile {
                version: DYNAMIC_CONFIG_VERSION,
                ..Default::default()
            }),
            load_error: Some(error),
            change: Mutex::new(()),
        }
    }

    pub fn load_error(&self) -> Option<&str> {
        self.load_error.as_deref()
    }

    /// The values set in one layer.
    pub fn layer(&self, scope: DynamicScope) -> BTreeMap<String, String> {
        let state = self.state.read();
        match scope {
            DynamicScope::ClusterDefault => state.cluster_default.clone(),
            DynamicScope::Broker => state
                .brokers
                .get(&self.node_id.to_string())
                .cloned()
                .unwrap_or_default(),
        }
    }

    pub fn get(&self, scope: DynamicScope, key: &str) -> Option<String> {
        let state = self.state.read();
        match scope {
            DynamicScope::ClusterDefault => state.cluster_default.get(key).cloned(),
            DynamicScope::Broker => state
                .brokers
                .get(&self.node_id.to_string())
                .and_then(|m| m.get(key))
                .cloned(),
        }
    }

    /// The dynamic value of `key`: per-broker first, then the cluster default.
    pub fn value(&self, key: &str) -> Option<(String, ConfigSource)> {
        [DynamicScope::Broker, DynamicScope::ClusterDefault]
            .into_iter()
            .find_map(|s| self.get(s, key).map(|v| (v, s.source())))
    }

    /// Read-modify-write of one layer under the change lock: `change` edits a copy; unless
    /// `validate_only`, the result is persisted and then made visible. Returns whether the
    /// layer changed.
    pub fn update<E: From<DynamicConfigError>>(
        &self,
        scope: DynamicScope,
        validate_only: bool,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), E>,
    ) -> Result<bool, E> {
        let _guard = self.change.lock();
        if let Some(e) = &self.load_error {
            return Err(DynamicConfigError::Unavailable(e.clone()).into());
        }
        let before = self.layer(scope);
        let mut after = before.clone();
        change(&mut after)?;
        if validate_only || after == before {
            return Ok(false);
        }
        let mut file = self.state.read().clone();
        match scope {
            DynamicScope::ClusterDefault => file.cluster_default = after,
            DynamicScope::Broker => {
                if after.is_empty() {
                    file.brokers.remove(&self.node_id.to_string());
                } else {
                    file.brokers.insert(self.node_id.to_string(), after);
                }
            }
        }
        save_file(&self.dir, &file)?;
        *self.state.write() = file;
        Ok(true)
    }
}

/// One live [`DynamicConfigs`] per (log directory, node id) in the process, so that every
/// copy of a `BrokerConfig` of the same broker sees the same layers. Weak: when the broker
/// is dropped, the next open reloads from disk.
static LIVE: std::sync::Mutex<Vec<(PathBuf, i32, Weak<DynamicConfigs>)>> =
    std::sync::Mutex::new(Vec::new());

/// The shared layers of the broker with this log directory and node id, loading them on
/// first use. A file that fails to load yields empty layers that refuse changes, and the
/// error (so that `Broker::open` can refuse to start).
pub fn shared(dir: &Path, node_id: i32) -> (Arc<DynamicConfigs>, Option<DynamicConfigError>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|(_, _, w)| w.strong_count() > 0);
    if let Some(found) = live
        .iter()
        .find(|(d, n, _)| d == dir && *n == node_id)
        .and_then(|(_, _, w)| w.upgrade())
    {
        return (found, None);
    }
    let (layers, error) = match DynamicConfigs::open(dir, node_id) {
        Ok(l) => (Arc::new(l), None),
        Err(e) => (
            Arc::new(DynamicConfigs::unavailable(dir, node_id, e.to_string())),
            Some(e),
        ),
    };
    live.push((dir.to_path_buf(), node_id, Arc::downgrade(&layers)));
    (layers, error)
}

/// A broker property Arus knows, with its Kafka type, default and validation.
#[derive(Clone, Copy, Debug)]
pub struct BrokerConfigKey {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    pub validator: Validator,
    pub doc: &'static str,
    /// In Kafka's `DynamicBrokerConfig.AllDynamicConfigs`: alterable at runtime.
    pub dynamic: bool,
}

impl BrokerConfigKey {
    pub fn validate(&self, value: &str) -> Result<(), ConfigValueError> {
        ConfigDef {
            name: self.name,
            kind: self.kind,
            default: self.default,
            validator: self.validator,
            broker_synonym: None,
            doc: self.doc,
        }
        .validate(value)
    }
}

const INT_MAX: f64 = 2147483647.0;

macro_rules! key {
    ($name:expr, $kind:ident, $default:expr, $validator:expr, $dynamic:expr, $doc:expr) => {
        BrokerConfigKey {
            name: $name,
            kind: ConfigType::$kind,
            default: $default,
            validator: $validator,
            doc: $doc,
            dynamic: $dynamic,
        }
    };
}

/// Broker keys that are not the synonym of a topic config, with Kafka's definitions.
/// Dynamic ones come from `LogCleaner.ReconfigurableConfigs`, `DynamicThreadPool`,
/// `SocketServer.ReconfigurableConfigs` and `DynamicProducerStateManagerConfig`; Arus accepts
/// and reports them, though it has no cleaner or thread pools to resize.
static OTHER_KEYS: &[BrokerConfigKey] = &[
    key!(
        "background.threads",
        Int,
        "10",
        Validator::Range(1.0, INT_MAX),
        true,
        "The number of threads to use for various background processing tasks."
    ),
    key!(
        "log.cleaner.backoff.ms",
        Long,
        "15000",
        Validator::Range(0.0, f64::MAX),
        true,
        "The amount of time to sleep when there are no logs to clean."
    ),
    key!(
        "log.cleaner.dedupe.buffer.size",
        Long,
        "134217728",
        Validator::Any,
        true,
        "The total memory used for log deduplication across all cleaner threads."
    ),
    key!(
        "log.cleaner.enable",
        Boolean,
        "true",
        Validator::Any,
        false,
        "Enable the log cleaner process to run on the server (compacted topics, including the internal ones, need it)."
    ),
    key!(
        "log.cleaner.io.buffer.load.factor",
        Double,
        "0.9",
        Validator::Any,
        true,
        "Log cleaner dedupe buffer load factor."
    ),
    key!(
        "log.cleaner.io.buffer.size",
        Int,
        "524288",
        Validator::Range(0.0, INT_MAX),
        true,
        "The total memory used for log cleaner I/O buffers across all cleaner threads."
    ),
    key!(
        "log.cleaner.io.max.bytes.per.second",
        Double,
        "1.7976931348623157E308",
        Validator::Any,
        true,
        "The log cleaner will be throttled so that the sum of its read and write i/o will be less than this value on average."
    ),
    key!(
        "log.cleaner.threads",
        Int,
        "1",
        Validator::Range(0.0, INT_MAX),
        true,
        "The number of background threads to use for log cleaning."
    ),
    key!(
        "log.retention.check.interval.ms",
        Long,
        "300000",
        Validator::Range(1.0, f64::MAX),
        false,
        "The frequency in milliseconds that the log cleaner checks whether any log is eligible for deletion."
    ),
    key!(
        "log.retention.hours",
        Int,
        "168",
        Validator::Any,
        false,
        "The number of hours to keep a log file before deleting it, tertiary to log.retention.ms."
    ),
    key!(
        "log.roll.hours",
        Int,
        "168",
        Validator::Range(1.0, INT_MAX),
        false,
        "The maximum time before a new log segment is rolled out (in hours), secondary to log.roll.ms."
    ),
    key!(
        "log.roll.jitter.hours",
        Int,
        "0",
        Validator::Range(0.0, INT_MAX),
        false,
        "The maximum jitter to subtract from logRollTimeMillis (in hours), secondary to log.roll.jitter.ms."
    ),
    key!(
        "max.connection.creation.rate",
        Int,
        "2147483647",
        Validator::Range(0.0, INT_MAX),
        true,
        "The maximum connection creation rate allowed in the broker at any time."
    ),
    key!(
        "max.connections",
        Int,
        "2147483647",
        Validator::Range(0.0, INT_MAX),
        true,
        "The maximum number of connections allowed in the broker at any time."
    ),
    key!(
        "max.connections.per.ip",
        Int,
        "2147483647",
        Validator::Range(0.0, INT_MAX),
        true,
        "The maximum number of connections allowed from each ip address."
    ),
    key!(
        "max.connections.per.ip.overrides",
        String,
        "",
        Validator::Any,
        true,
        "A comma-separated list of per-ip or hostname overrides to the default maximum number of connections. An example value is \"hostName:100,127.0.0.1:200\""
    ),
    key!(
        "num.io.threads",
        Int,
        "8",
        Validator::Range(1.0, INT_MAX),
        true,
        "The number of threads that the server uses for processing requests."
    ),
    key!(
        "num.network.threads",
        Int,
        "3",
        Validator::Range(1.0, INT_MAX),
        true,
        "The number of threads that the server uses for receiving requests from the network and sending responses to the network."
    ),
    key!(
        "num.recovery.threads.per.data.dir",
        Int,
        "2",
        Validator::Range(1.0, INT_MAX),
        true,
        "The number of threads per data directory to be used for log recovery at startup and flushing at shutdown."
    ),
    key!(
        "num.replica.fetchers",
        Int,
        "1",
        Validator::Any,
        true,
        "Number of fetcher threads used to replicate records from each source broker."
    ),
    key!(
        "producer.id.expiration.ms",
        Int,
        "86400000",
        Validator::Range(1.0, INT_MAX),
        true,
        "How long a partition keeps the state of an idle producer id (for idempotence)."
    ),
    key!(
        "queued.max.request.bytes",
        Long,
        "268435456",
        Validator::Range(-1.0, f64::MAX),
        false,
        "The number of bytes of requests read and not yet answered before no more requests are read (-1: no limit). Kafka's default is -1; Arus bounds it by default so that unfinished requests cannot exhaust a small machine's memory. Must be at least 4/3 of socket.request.max.bytes (requests above 1 MiB may use 3/4 of the pool)."
    ),
    key!(
        "transaction.partition.verification.enable",
        Boolean,
        "true",
        Validator::Any,
        true,
        "Check with the transaction coordinator that a transactional batch's partition was added to the transaction (KIP-890)."
    ),
];

/// Every broker key Arus knows, sorted by name.
pub fn broker_config_keys() -> Vec<BrokerConfigKey> {
    let mut keys: Vec<BrokerConfigKey> = OTHER_KEYS.to_vec();
    // Kafka's `DynamicLogConfig.ReconfigurableConfigs`: the primary broker synonym of every
    // topic config.
    for def in TOPIC_CONFIGS {
        if let Some(syn) = def.broker_synonym
            && !keys.iter().any(|k| k.name == syn)
        {
            keys.push(BrokerConfigKey {
                name: syn,
                kind: def.kind,
                default: def.default,
                validator: def.validator,
                doc: def.doc,
                dynamic: true,
            });
        }
    }
    for (name, default, doc) in BROKER_KEYS {
        if !keys.iter().any(|k| k.name == *name) {
            keys.push(BrokerConfigKey {
                name,
                kind: static_kind(name),
                default,
                validator: Validator::Any,
                doc,
                dynamic: false,
            });
        }
    }
    keys.sort_by(|a, b| a.name.cmp(b.name));
    keys
}

/// Kafka's type of the static broker keys in [`BROKER_KEYS`] (`KafkaConfig` and the
/// coordinator configs); the rest are strings.
fn static_kind(name: &str) -> ConfigType {
    match name {
        "auto.create.topics.enable" | "delete.topic.enable" => ConfigType::Boolean,
        "connections.max.idle.ms"
        | "log.flush.scheduler.interval.ms"
        | "offsets.retention.check.interval.ms" => ConfigType::Long,
        "node.id"
        | "default.replication.factor"
        | "num.partitions"
        | "socket.request.max.bytes"
        | "group.initial.rebalance.delay.ms"
        | "group.min.session.timeout.ms"
        | "group.max.session.timeout.ms"
        | "group.max.size"
        | "group.consumer.session.timeout.ms"
        | "group.consumer.heartbeat.interval.ms"
        | "offsets.topic.num.partitions"
        | "offsets.retention.minutes"
        | "offset.metadata.max.bytes"
        | "transaction.state.log.num.partitions"
        | "transaction.max.timeout.ms"
        | "transactional.id.expiration.ms"
        | "transaction.abort.timed.out.transaction.cleanup.interval.ms"
        | "transaction.remove.expired.transaction.cleanup.interval.ms"
        | "producer.id.expiration.check.interval.ms" => ConfigType::Int,
        _ => ConfigType::String,
    }
}

pub fn broker_config_key(name: &str) -> Option<BrokerConfigKey> {
    broker_config_keys().into_iter().find(|k| k.name == name)
}

/// A broker key a config inherits from: (name, multiplier to the config's unit, Kafka's
/// default of that key).
pub type SynonymName = (&'static str, i64, Option<&'static str>);

/// One reported synonym: (name, value, source).
pub type Synonym = (String, String, ConfigSource);

/// Kafka's `ServerTopicConfigSynonyms.ALL_TOPIC_CONFIG_SYNONYMS` where a topic config has
/// more than one broker name: (broker key, multiplier to the topic unit, Kafka's default of
/// that broker key). Every other topic config has its one `broker_synonym`, whose Kafka
/// default is the topic default.
const MULTI_SYNONYMS: &[(&str, &[SynonymName])] = &[
    (
        "retention.ms",
        &[
            ("log.retention.ms", 1, None),
            ("log.retention.minutes", 60_000, None),
            ("log.retention.hours", 3_600_000, Some("168")),
        ],
    ),
    (
        "segment.jitter.ms",
        &[
            ("log.roll.jitter.ms", 1, None),
            ("log.roll.jitter.hours", 3_600_000, Some("0")),
        ],
    ),
    (
        "segment.ms",
        &[
            ("log.roll.ms", 1, None),
            ("log.roll.hours", 3_600_000, Some("168")),
        ],
    ),
];

/// The broker keys a topic config inherits from, in Kafka's order, with their multipliers
/// and Kafka defaults.
pub fn topic_synonyms(topic_key: &str) -> Vec<SynonymName> {
    if let Some((_, list)) = MULTI_SYNONYMS.iter().find(|(k, _)| *k == topic_key) {
        return list.to_vec();
    }
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.name == topic_key)
        .and_then(|d| d.broker_synonym.map(|s| vec![(s, 1, Some(d.default))]))
        .unwrap_or_default()
}

/// The broker keys a broker key is reported with (Kafka's `brokerSynonyms`): the time
/// configs list their coarser units, every other key only itself.
/// Each comes with its multiplier to `broker_key`'s unit and its Kafka default.
pub fn broker_synonyms(broker_key: &str) -> Vec<SynonymName> {
    for (_, list) in MULTI_SYNONYMS {
        if list.first().is_some_and(|(k, _, _)| *k == broker_key) {
            return list.to_vec();
        }
    }
    match broker_config_key(broker_key) {
        Some(k) => vec![(k.name, 1, Some(k.default))],
        None => Vec::new(),
    }
}

/// Checks a change of dynamic broker configs as Kafka's `DynamicBrokerConfig.validateConfigs`
/// does: non-dynamic keys first (all named in one message), then each value's type and
/// validator. Unknown keys are refused too (Kafka would keep them for plugins; Arus has none).
/// The error is (Kafka error code, message without the resource prefix).
pub fn validate_dynamic(
    props: &BTreeMap<String, String>,
) -> Result<(), (arus_protocol::ErrorCode, String)> {
    use arus_protocol::ErrorCode;
    let mut unknown = Vec::new();
    let mut read_only = Vec::new();
    for name in props.keys() {
        match broker_config_key(name) {
            None => unknown.push(name.as_str()),
            Some(k) if !k.dynamic => read_only.push(name.as_str()),
            Some(_) => {}
        }
    }
    if !read_only.is_empty() {
        return Err((
            ErrorCode::InvalidRequest,
            format!(
                "Cannot update these configs dynamically: Set({})",
                read_only.join(", ")
            ),
        ));
    }
    if let Some(name) = unknown.first() {
        return Err((
            ErrorCode::InvalidConfig,
            format!("Unknown broker config name: {name}"),
        ));
    }
    for (name, value) in props {
        if let Some(k) = broker_config_key(name) {
            k.validate(value)
                .map_err(|e| (ErrorCode::InvalidRequest, e.to_string()))?;
        }
    }
    Ok(())
}

/// Re-resolves every topic's settings against the current broker defaults, after a dynamic
/// change of a topic-config synonym. Uses `TopicRegistry::set_configs` with each topic's
/// unchanged overrides, which re-resolves, pushes the settings to the partitions and
/// rewrites the metadata file once per topic.
pub fn reresolve_all(broker: &Broker) -> Result<(), TopicError> {
    broker.topics.reresolve_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_persist_atomically_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let layers = DynamicConfigs::open(dir.path(), 1).unwrap();
        let changed = layers
            .update::<DynamicConfigError>(DynamicScope::ClusterDefault, false, |m| {
                m.insert("log.retention.ms".into(), "1000".into());
                Ok(())
            })
            .unwrap();
        assert!(changed);
        layers
            .update::<DynamicConfigError>(DynamicScope::Broker, false, |m| {
                m.insert("log.retention.ms".into(), "2000".into());
                Ok(())
            })
            .unwrap();
        assert_eq!(
            layers.value("log.retention.ms"),
            Some(("2000".into(), ConfigSource::DynamicBrokerConfig))
        );
        let again = DynamicConfigs::open(dir.path(), 1).unwrap();
        assert_eq!(
            again.get(DynamicScope::ClusterDefault, "log.retention.ms"),
            Some("1000".into())
        );
        // Another node id sees only the cluster default.
        let other = DynamicConfigs::open(dir.path(), 2).unwrap();
        assert_eq!(
            other.value("log.retention.ms"),
            Some(("1000".into(), ConfigSource::DynamicDefaultBrokerConfig))
        );
        assert!(!dir.path().join("dynamic-configs.json.tmp").exists());
    }

    #[test]
    fn validate_only_and_corrupt_files_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layers = DynamicConfigs::open(dir.path(), 1).unwrap();
        let changed = layers
            .update::<DynamicConfigError>(DynamicScope::Broker, true, |m| {
                m.insert("log.retention.ms".into(), "1".into());
                Ok(())
            })
            .unwrap();
        assert!(!changed);
        assert!(layers.layer(DynamicScope::Broker).is_empty());
        assert!(!dir.path().join(DYNAMIC_CONFIG_FILE).exists());

        fs::write(dir.path().join(DYNAMIC_CONFIG_FILE), b"{oops").unwrap();
        assert!(matches!(
            DynamicConfigs::open(dir.path(), 1),
            Err(DynamicConfigError::Corrupt { .. })
        ));
        let (broken, err) = shared(dir.path(), 7);
        assert!(err.is_some());
        let refused = broken.update::<DynamicConfigError>(DynamicScope::Broker, false, |m| {
            m.insert("log.retention.ms".into(), "1".into());
            Ok(())
        });
        assert!(matches!(refused, Err(DynamicConfigError::Unavailable(_))));
        // The corrupt file is left for the operator.
        assert_eq!(
            fs::read(dir.path().join(DYNAMIC_CONFIG_FILE)).unwrap(),
            b"{oops"
        );
        fs::write(
            dir.path().join(DYNAMIC_CONFIG_FILE),
            br#"{"version":9,"cluster_default":{}}"#,
        )
        .unwrap();
        assert!(matches!(
            load_file(dir.path()),
            Err(DynamicConfigError::Version { found: 9, .. })
        ));
    }

    #[test]
    fn invalid_stored_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(DYNAMIC_CONFIG_FILE),
            br#"{"version":1,"cluster_default":{"log.retention.ms":"abc","log.dirs":"/x","log.segment.bytes":"2097152"},"brokers":{"1":{"nope":"1"}}}"#,
        )
        .unwrap();
        let layers = DynamicConfigs::open(dir.path(), 1).unwrap();
        assert_eq!(
            layers.layer(DynamicScope::ClusterDefault),
            BTreeMap::from([("log.segment.bytes".to_string(), "2097152".to_string())])
        );
        assert!(layers.layer(DynamicScope::Broker).is_empty());
    }

    #[test]
    fn dynamic_keys_follow_kafka() {
        for k in [
            "log.retention.ms",
            "log.retention.bytes",
            "log.segment.bytes",
            "log.cleanup.policy",
            "log.cleaner.threads",
            "log.cleaner.min.cleanable.ratio",
            "log.cleaner.delete.retention.ms",
            "log.flush.interval.messages",
            "log.message.timestamp.type",
            "compression.type",
            "log.roll.ms",
            "log.index.interval.bytes",
            "message.max.bytes",
            "min.insync.replicas",
            "unclean.leader.election.enable",
            "producer.id.expiration.ms",
        ] {
            assert!(broker_config_key(k).is_some_and(|k| k.dynamic), "{k}");
        }
        for k in [
            "log.dirs",
            "node.id",
            "listeners",
            "log.retention.hours",
            "log.roll.hours",
            "num.partitions",
        ] {
            assert!(broker_config_key(k).is_some_and(|k| !k.dynamic), "{k}");
        }
        let props = BTreeMap::from([
            ("log.dirs".to_string(), "/x".to_string()),
            ("node.id".to_string(), "3".to_string()),
            ("log.retention.ms".to_string(), "5".to_string()),
        ]);
        let (code, msg) = validate_dynamic(&props).unwrap_err();
        assert_eq!(code, arus_protocol::ErrorCode::InvalidRequest);
        assert_eq!(
            msg,
            "Cannot update these configs dynamically: Set(log.dirs, node.id)"
        );
        let props = BTreeMap::from([("log.retention.ms".to_string(), "soon".to_string())]);
        let (_, msg) = validate_dynamic(&props).unwrap_err();
        assert_eq!(
            msg,
            "Invalid value soon for configuration log.retention.ms: Not a number of type LONG"
        );
        let props = BTreeMap::from([("no.such.key".to_string(), "1".to_string())]);
        assert_eq!(
            validate_dynamic(&props).unwrap_err().0,
            arus_protocol::ErrorCode::InvalidConfig
        );
    }

    #[test]
    fn time_synonyms_in_kafka_order() {
        let names: Vec<_> = topic_synonyms("retention.ms")
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        assert_eq!(
            names,
            [
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours"
            ]
        );
        assert_eq!(
            topic_synonyms("max.message.bytes"),
            vec![("message.max.bytes", 1, Some("1048588"))]
        );
        assert_eq!(broker_synonyms("log.roll.ms").len(), 2);
    }
}
