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
use crate::config_catalog::{self, UpdateMode};
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
    /// In a cluster, changes go through the controller and arrive with the metadata.
    #[error("dynamic broker configs are changed by the controller in a cluster")]
    Driven,
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
    /// In a cluster the layers follow the metadata ([`DynamicConfigs::apply_from_metadata`]):
    /// no file is read or written, and only validate-only changes are made here.
    driven: std::sync::atomic::AtomicBool,
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
        let layers = std::iter::once((DynamicScope::ClusterDefault, &mut file.cluster_default))
            .chain(
                file.brokers
                    .values_mut()
                    .map(|layer| (DynamicScope::Broker, layer)),
            );
        for (scope, layer) in layers {
            layer.retain(|k, v| {
                let single = BTreeMap::from([(k.clone(), v.clone())]);
                match validate_dynamic(&single, scope) {
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
            driven: std::sync::atomic::AtomicBool::new(false),
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
            driven: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn load_error(&self) -> Option<&str> {
        self.load_error.as_deref().filter(|_| !self.is_driven())
    }

    /// Switches to the cluster mode: the layers change only by
    /// [`DynamicConfigs::apply_from_metadata`], and the file is no longer written.
    pub fn set_driven(&self) {
        self.driven.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_driven(&self) -> bool {
        self.driven.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Replaces both layers of this node with what the cluster metadata holds (the BROKER
    /// configs of resource `""` and of this node's id), in memory only. Returns the layers
    /// before and after, (cluster default, this broker) each, for the side effects
    /// ([`after_layer_change`]).
    pub fn apply_from_metadata(
        &self,
        cluster_default: BTreeMap<String, String>,
        this_broker: BTreeMap<String, String>,
    ) -> [(BTreeMap<String, String>, BTreeMap<String, String>); 2] {
        self.set_driven();
        let _guard = self.change.lock();
        let before = [
            self.layer(DynamicScope::ClusterDefault),
            self.layer(DynamicScope::Broker),
        ];
        {
            let mut state = self.state.write();
            state.cluster_default = cluster_default.clone();
            if this_broker.is_empty() {
                state.brokers.remove(&self.node_id.to_string());
            } else {
                state
                    .brokers
                    .insert(self.node_id.to_string(), this_broker.clone());
            }
        }
        let [default_before, broker_before] = before;
        [
            (default_before, cluster_default),
            (broker_before, this_broker),
        ]
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
        if let Some(e) = self.load_error() {
            return Err(DynamicConfigError::Unavailable(e.to_string()).into());
        }
        let before = self.layer(scope);
        let mut after = before.clone();
        change(&mut after)?;
        if validate_only || after == before {
            return Ok(false);
        }
        if self.is_driven() {
            return Err(DynamicConfigError::Driven.into());
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

/// A broker property Arus knows: every key of Kafka's broker `ConfigDef` (from
/// [`crate::config_catalog`]) and Arus's own `arus.*` keys.
#[derive(Clone, Copy, Debug)]
pub struct BrokerConfigKey {
    pub name: &'static str,
    pub kind: ConfigType,
    /// The default in effect: Arus's where Arus has its own (e.g. `queued.max.request.bytes`,
    /// `log.dirs`), else Kafka's; `None` where Kafka has none (reported as null).
    pub default: Option<&'static str>,
    pub validator: Validator,
    pub doc: &'static str,
    pub mode: UpdateMode,
    /// `mode != ReadOnly`: in Kafka's `DynamicBrokerConfig.ALL_DYNAMIC_CONFIGS`.
    pub dynamic: bool,
    /// Kafka's dynamic security configs, changeable only with a listener prefix.
    pub listener_prefix_only: bool,
    /// Kafka's internal configs (not listed by DescribeConfigs unless set).
    pub internal: bool,
    /// Whether Arus acts on the key; the others are accepted, stored and reported only.
    pub implemented: bool,
}

impl BrokerConfigKey {
    pub fn validate(&self, value: &str) -> Result<(), ConfigValueError> {
        ConfigDef {
            name: self.name,
            kind: self.kind,
            default: self.default.unwrap_or(""),
            validator: self.validator,
            broker_synonym: None,
            doc: self.doc,
        }
        .validate(value)
    }
}

/// Kafka broker keys Arus acts on besides [`BROKER_KEYS`] and the broker synonyms of the
/// topic configs it implements. Keep in step with the code that reads them.
const HONOURED_KAFKA_KEYS: &[&str] = &[
    // The controller's periodic elections (`arus-cluster`'s `controller_driver`).
    "auto.leader.rebalance.enable",
    "broker.heartbeat.interval.ms",
    "broker.id",
    "broker.rack",
    "broker.session.timeout.ms",
    // Read into `arus_node::NodeConfig`; the cluster (`arus-cluster`) acts on them.
    "controller.quorum.bootstrap.servers",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms",
    "controller.quorum.voters",
    "leader.imbalance.check.interval.seconds",
    "log.dir",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.enable",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.threads",
    "log.retention.check.interval.ms",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "max.incremental.fetch.session.cache.slots",
    "metadata.log.dir",
    // The internal topics' replication (`forwarding::auto_create`).
    "offsets.topic.replication.factor",
    // Read by the replica fetchers (`arus-cluster`'s `replica_fetcher`).
    "num.replica.fetchers",
    "queued.max.request.bytes",
    "replica.fetch.backoff.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.min.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "transaction.state.log.min.isr",
    "transaction.state.log.replication.factor",
    "unclean.leader.election.interval.ms",
    // KIP-392's rack-aware selector (`cluster::replica_selector`).
    "replica.selector.class",
    // The leaders' ISR shrink (`partition::leader`, `arus-cluster`'s `leader_replicas`).
    "replica.lag.time.max.ms",
];

/// Arus's own default of a key it sets differently from Kafka (only where Arus's value is
/// what runs: the listener, data directory and node id of a local broker, and bounded
/// request memory).
fn arus_default(name: &str) -> Option<&'static str> {
    match name {
        "queued.max.request.bytes" => Some("268435456"),
        _ => BROKER_KEYS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, d, _)| *d),
    }
}

fn arus_doc(name: &str) -> Option<&'static str> {
    BROKER_KEYS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, d)| *d)
}

static KEYS: std::sync::LazyLock<Vec<BrokerConfigKey>> = std::sync::LazyLock::new(build_keys);

fn build_keys() -> Vec<BrokerConfigKey> {
    let implemented_topic_synonym = |name: &str| {
        TOPIC_CONFIGS.iter().any(|d| {
            config_catalog::kafka_topic_synonyms(d.name)
                .iter()
                .any(|(s, _)| *s == name)
        })
    };
    let mut keys: Vec<BrokerConfigKey> = config_catalog::BROKER_CONFIGS
        .iter()
        .map(|e| {
            let own_default = arus_default(e.name).filter(|d| !d.is_empty());
            BrokerConfigKey {
                name: e.name,
                kind: e.kind,
                default: own_default.or(e.default),
                validator: e.validator,
                doc: arus_doc(e.name).unwrap_or(e.doc),
                mode: e.mode,
                dynamic: e.mode != UpdateMode::ReadOnly,
                listener_prefix_only: e.listener_prefix_only,
                internal: e.internal,
                implemented: arus_doc(e.name).is_some()
                    || HONOURED_KAFKA_KEYS.contains(&e.name)
                    || implemented_topic_synonym(e.name),
            }
        })
        .collect();
    // Arus's own keys (`arus.*`): static, strings or numbers as their parsers expect.
    for (name, default, doc) in BROKER_KEYS {
        if config_catalog::kafka_broker_config(name).is_none() {
            keys.push(BrokerConfigKey {
                name,
                kind: if *default == "true" || *default == "false" {
                    ConfigType::Boolean
                } else if default.parse::<i64>().is_ok() {
                    ConfigType::Long
                } else {
                    ConfigType::String
                },
                default: Some(default),
                validator: Validator::Any,
                doc,
                mode: UpdateMode::ReadOnly,
                dynamic: false,
                listener_prefix_only: false,
                internal: false,
                implemented: true,
            });
        }
    }
    keys.sort_by(|a, b| a.name.cmp(b.name));
    keys
}

/// Every broker key Arus knows, sorted by name.
pub fn broker_config_keys() -> &'static [BrokerConfigKey] {
    &KEYS
}

pub fn broker_config_key(name: &str) -> Option<BrokerConfigKey> {
    KEYS.binary_search_by(|k| k.name.cmp(name))
        .ok()
        .map(|i| KEYS[i])
}

/// A broker key a config inherits from: (name, multiplier to the config's unit, Kafka's
/// default of that key).
pub type SynonymName = (&'static str, i64, Option<&'static str>);

/// One reported synonym: (name, value, source).
pub type Synonym = (String, String, ConfigSource);

/// The broker keys a topic config inherits from, in Kafka's order
/// (`ServerTopicConfigSynonyms`), with their multipliers and Kafka's defaults (those are the
/// topic defaults: `flush.ms` falls back to `log.flush.scheduler.interval.ms`, whose Kafka
/// default is `Long.MAX_VALUE` even though Arus's flusher wakes every second).
pub fn topic_synonyms(topic_key: &str) -> Vec<SynonymName> {
    config_catalog::kafka_topic_synonyms(topic_key)
        .iter()
        .map(|(name, factor)| {
            let default = config_catalog::kafka_broker_config(name).and_then(|k| k.default);
            (*name, *factor, default)
        })
        .collect()
}

/// The broker keys whose values make up a broker key's effective value: the time configs
/// fall back to their coarser units (`log.retention.ms` to `.minutes` and `.hours`), every
/// other key only to itself. Each comes with its multiplier to `broker_key`'s unit and its
/// default.
pub fn broker_synonyms(broker_key: &str) -> Vec<SynonymName> {
    for (_, list) in config_catalog::TOPIC_CONFIG_SYNONYMS {
        if list.len() > 1 && list.first().is_some_and(|(k, _)| *k == broker_key) {
            return list
                .iter()
                .map(|(n, f)| (*n, *f, broker_config_key(n).and_then(|k| k.default)))
                .collect();
        }
    }
    match broker_config_key(broker_key) {
        Some(k) => vec![(k.name, 1, k.default)],
        None => Vec::new(),
    }
}

/// Checks a change of one dynamic layer as Kafka 4.4's `DynamicBrokerConfig.validateConfigs`
/// does, in its order: read-only keys (all named in one message), security configs without
/// a listener prefix, each known key's type and validator, then (for the cluster default)
/// per-broker keys. Keys Kafka does not know are accepted and kept, as Kafka keeps them
/// (for plugins); Arus warns that they have no effect. The error is (Kafka error code,
/// message).
pub fn validate_dynamic(
    props: &BTreeMap<String, String>,
    scope: DynamicScope,
) -> Result<(), (arus_protocol::ErrorCode, String)> {
    use arus_protocol::ErrorCode;
    let keys: Vec<(&str, Option<BrokerConfigKey>)> = props
        .keys()
        .map(|n| (n.as_str(), broker_config_key(n)))
        .collect();
    let refuse = |names: Vec<&str>, what: &str| -> Result<(), (ErrorCode, String)> {
        if names.is_empty() {
            return Ok(());
        }
        Err((
            ErrorCode::InvalidRequest,
            format!(
                "{what}: {}",
                config_catalog::java_hash_set_display(&names, props.len())
            ),
        ))
    };
    refuse(
        keys.iter()
            .filter(|(_, k)| k.is_some_and(|k| !k.dynamic))
            .map(|(n, _)| *n)
            .collect(),
        "Cannot update these configs dynamically",
    )?;
    refuse(
        keys.iter()
            .filter(|(_, k)| k.is_some_and(|k| k.listener_prefix_only))
            .map(|(n, _)| *n)
            .collect(),
        "These security configs can be dynamically updated only per-listener using the listener prefix",
    )?;
    for (name, value) in props {
        let base = config_catalog::listener_base_name(name).unwrap_or(name);
        if let Some(k) = broker_config_key(base).filter(|k| k.dynamic) {
            k.validate(value)
                .map_err(|e| (ErrorCode::InvalidRequest, e.to_string()))?;
        }
    }
    if scope == DynamicScope::ClusterDefault {
        refuse(
            keys.iter()
                .filter(|(n, k)| {
                    k.is_some_and(|k| k.mode == UpdateMode::PerBroker)
                        || config_catalog::listener_base_name(n).is_some_and(|b| {
                            !matches!(
                                b,
                                "max.connections"
                                    | "max.connection.creation.rate"
                                    | "num.network.threads"
                            )
                        })
                })
                .map(|(n, _)| *n)
                .collect(),
            "Cannot update these configs at default cluster level, broker id must be specified",
        )?;
    }
    Ok(())
}

/// What a change of one dynamic layer from `before` to `after` sets off, whether an
/// AlterConfigs on this broker or the cluster metadata made it: topics re-resolve their
/// settings when a broker default of a topic config changed.
pub fn after_layer_change(
    broker: &Broker,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Result<(), TopicError> {
    let touches_topics = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .any(|k| {
            TOPIC_CONFIGS
                .iter()
                .any(|d| d.broker_synonym == Some(k.as_str()))
        });
    if touches_topics {
        reresolve_all(broker)?;
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
            br#"{"version":1,"cluster_default":{"log.retention.ms":"abc","log.dirs":"/x","log.segment.bytes":"2097152"},"brokers":{"1":{"ssl.keystore.type":"JKS","plugin.key":"1"}}}"#,
        )
        .unwrap();
        let layers = DynamicConfigs::open(dir.path(), 1).unwrap();
        assert_eq!(
            layers.layer(DynamicScope::ClusterDefault),
            BTreeMap::from([("log.segment.bytes".to_string(), "2097152".to_string())])
        );
        assert_eq!(
            layers.layer(DynamicScope::Broker),
            BTreeMap::from([("plugin.key".to_string(), "1".to_string())])
        );
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
            "log.retention.hours",
            "log.roll.hours",
            "num.partitions",
        ] {
            assert!(broker_config_key(k).is_some_and(|k| !k.dynamic), "{k}");
        }
        // Kafka 4.4.0's answers to the same changes (kafka-configs against a real broker).
        let props = BTreeMap::from([
            ("log.dirs".to_string(), "/x".to_string()),
            ("node.id".to_string(), "3".to_string()),
            ("num.partitions".to_string(), "3".to_string()),
        ]);
        let (code, msg) = validate_dynamic(&props, DynamicScope::Broker).unwrap_err();
        assert_eq!(code, arus_protocol::ErrorCode::InvalidRequest);
        assert_eq!(
            msg,
            "Cannot update these configs dynamically: [node.id, num.partitions, log.dirs]"
        );
        let props = BTreeMap::from([("log.cleaner.threads".to_string(), "abc".to_string())]);
        let (code, msg) = validate_dynamic(&props, DynamicScope::Broker).unwrap_err();
        assert_eq!(code, arus_protocol::ErrorCode::InvalidRequest);
        assert_eq!(
            msg,
            "Invalid value abc for configuration log.cleaner.threads: Not a number of type INT"
        );
        let props = BTreeMap::from([("ssl.keystore.type".to_string(), "PKCS12".to_string())]);
        assert_eq!(
            validate_dynamic(&props, DynamicScope::Broker)
                .unwrap_err()
                .1,
            "These security configs can be dynamically updated only per-listener using the listener prefix: [ssl.keystore.type]"
        );
        let relogin = BTreeMap::from([(
            "sasl.kerberos.min.time.before.relogin".to_string(),
            "70000".to_string(),
        )]);
        assert_eq!(validate_dynamic(&relogin, DynamicScope::Broker), Ok(()));
        assert_eq!(
            validate_dynamic(&relogin, DynamicScope::ClusterDefault)
                .unwrap_err()
                .1,
            "Cannot update these configs at default cluster level, broker id must be specified: [sasl.kerberos.min.time.before.relogin]"
        );
        // Keys Kafka does not know are kept (for plugins), as Kafka keeps them.
        let props = BTreeMap::from([("no.such.key".to_string(), "1".to_string())]);
        assert_eq!(validate_dynamic(&props, DynamicScope::Broker), Ok(()));
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
