//! Configs of resources that are neither topics nor brokers: client-metrics subscriptions
//! (KIP-714, resource type CLIENT_METRICS) and groups (KIP-848 group configs, resource type
//! GROUP). Each resource is a name with a map of the keys set on it; keys not set take their
//! defaults (Kafka's, or the broker's for group keys). What each kind accepts is in
//! [`client_metrics`] and [`group`]; this module keeps the maps durably.
//!
//! On-disk format (`resource-configs.json` in the log directory, format version 1):
//! ```json
//! {"version":1,
//!  "client_metrics":{"sub1":{"interval.ms":"60000","metrics":"org.apache.kafka.producer."}},
//!  "groups":{"g1":{"consumer.session.timeout.ms":"50000"}}}
//! ```
//! A resource whose last key is deleted disappears (Kafka then no longer lists it). The file
//! is written whole to `resource-configs.json.tmp`, fsynced, renamed over the old one and the
//! directory fsynced ([`crate::store::replace_atomically`]); the in-memory maps change only
//! after that succeeded, so the client hears success only for a durable change, and a crash
//! leaves the old or the new file.

pub mod client_metrics;
pub mod group;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub const RESOURCE_CONFIGS_FILE: &str = "resource-configs.json";
pub const RESOURCE_CONFIGS_VERSION: u32 = 1;

/// One resource's keys and values, as set by the operator.
pub type ConfigMap = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    ClientMetrics,
    Group,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct ResourceConfigsFile {
    version: u32,
    #[serde(default)]
    client_metrics: BTreeMap<String, ConfigMap>,
    #[serde(default)]
    groups: BTreeMap<String, ConfigMap>,
}

impl ResourceConfigsFile {
    fn kind(&self, kind: ResourceKind) -> &BTreeMap<String, ConfigMap> {
        match kind {
            ResourceKind::ClientMetrics => &self.client_metrics,
            ResourceKind::Group => &self.groups,
        }
    }

    fn kind_mut(&mut self, kind: ResourceKind) -> &mut BTreeMap<String, ConfigMap> {
        match kind {
            ResourceKind::ClientMetrics => &mut self.client_metrics,
            ResourceKind::Group => &mut self.groups,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResourceConfigsError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("resource config file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "resource config file {path} has format version {found}; this Arus reads version {RESOURCE_CONFIGS_VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
    /// In a cluster, changes go through the controller and arrive with the metadata.
    #[error("resource configs are changed by the controller in a cluster")]
    Driven,
}

/// The durable maps of every CLIENT_METRICS and GROUP resource.
pub struct ResourceConfigs {
    dir: PathBuf,
    state: Mutex<ResourceConfigsFile>,
    /// In a cluster the maps follow the metadata ([`ResourceConfigs::apply_from_metadata`]):
    /// the file is no longer written, and only validate-only changes are made here.
    driven: std::sync::atomic::AtomicBool,
}

impl ResourceConfigs {
    /// Loads `dir/resource-configs.json` (nothing set if it does not exist). A corrupt file
    /// stops the broker rather than being overwritten with an empty set later.
    pub fn open(dir: &Path) -> Result<ResourceConfigs, ResourceConfigsError> {
        let path = dir.join(RESOURCE_CONFIGS_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let file: ResourceConfigsFile =
                    serde_json::from_slice(&bytes).map_err(|source| {
                        ResourceConfigsError::Corrupt {
                            path: path.clone(),
                            source,
                        }
                    })?;
                if file.version != RESOURCE_CONFIGS_VERSION {
                    return Err(ResourceConfigsError::Version {
                        path,
                        found: file.version,
                    });
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ResourceConfigsFile {
                version: RESOURCE_CONFIGS_VERSION,
                ..Default::default()
            },
            Err(source) => return Err(ResourceConfigsError::Io { path, source }),
        };
        Ok(ResourceConfigs {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            driven: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Switches to the cluster mode (see the `driven` field).
    pub fn set_driven(&self) {
        self.driven.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Replaces every resource of `kind` with what the cluster metadata holds, in memory
    /// only; resources with no key are dropped. Returns the names whose keys changed
    /// (added, altered or removed), for the side effects.
    pub fn apply_from_metadata(
        &self,
        kind: ResourceKind,
        mut all: BTreeMap<String, ConfigMap>,
    ) -> Vec<String> {
        self.set_driven();
        all.retain(|_, m| !m.is_empty());
        let mut state = self.state.lock();
        let before = state.kind(kind);
        let changed = before
            .keys()
            .chain(all.keys())
            .filter(|n| before.get(*n) != all.get(*n))
            .cloned()
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect();
        *state.kind_mut(kind) = all;
        changed
    }

    /// The keys set on `name` (empty if none).
    pub fn get(&self, kind: ResourceKind, name: &str) -> ConfigMap {
        self.state
            .lock()
            .kind(kind)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Every resource of `kind` with at least one key set, by name.
    pub fn all(&self, kind: ResourceKind) -> BTreeMap<String, ConfigMap> {
        self.state.lock().kind(kind).clone()
    }

    /// Replaces the keys of `name` with what `change` makes of them, durably. `change` may
    /// refuse (its error is returned and nothing changes); `validate_only` runs it without
    /// keeping the result. The lock is held across the write so that two alterations of the
    /// file cannot interleave.
    pub fn update<E: From<ResourceConfigsError>>(
        &self,
        kind: ResourceKind,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&mut ConfigMap) -> Result<(), E>,
    ) -> Result<ConfigMap, E> {
        let mut state = self.state.lock();
        let mut map = state.kind(kind).get(name).cloned().unwrap_or_default();
        change(&mut map)?;
        if validate_only {
            return Ok(map);
        }
        let mut next = state.clone();
        if map.is_empty() {
            next.kind_mut(kind).remove(name);
        } else {
            next.kind_mut(kind).insert(name.to_string(), map.clone());
        }
        if next != *state {
            if self.driven.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(E::from(ResourceConfigsError::Driven));
            }
            let path = self.dir.join(RESOURCE_CONFIGS_FILE);
            let bytes = serde_json::to_vec_pretty(&next).map_err(|source| {
                E::from(ResourceConfigsError::Corrupt {
                    path: path.clone(),
                    source,
                })
            })?;
            crate::store::replace_atomically(&self.dir, RESOURCE_CONFIGS_FILE, &bytes)
                .map_err(|(path, source)| E::from(ResourceConfigsError::Io { path, source }))?;
            *state = next;
        }
        Ok(map)
    }
}

/// Splits a Kafka LIST value as `ConfigDef.parseType` does: trimmed, split on commas with
/// the whitespace around them; an all-blank value is the empty list.
pub fn parse_list(value: &str) -> Vec<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return vec![];
    }
    trimmed.split(',').map(|s| s.trim().to_string()).collect()
}

/// Parses a Kafka INT as `ConfigDef.parseType` does, or gives Kafka's message.
pub fn parse_int(key: &str, value: &str) -> Result<i32, String> {
    value.trim().parse::<i32>().map_err(|_| {
        format!("Invalid value {value} for configuration {key}: Not a number of type INT")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum E {
        Refused,
        Store(#[allow(dead_code)] ResourceConfigsError),
    }
    impl From<ResourceConfigsError> for E {
        fn from(e: ResourceConfigsError) -> Self {
            E::Store(e)
        }
    }

    #[test]
    fn changes_persist_and_an_emptied_resource_disappears() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResourceConfigs::open(dir.path()).unwrap();
        store
            .update::<E>(ResourceKind::ClientMetrics, "s1", false, |m| {
                m.insert("interval.ms".into(), "1000".into());
                Ok(())
            })
            .unwrap();
        store
            .update::<E>(ResourceKind::Group, "g1", true, |m| {
                m.insert("consumer.session.timeout.ms".into(), "50000".into());
                Ok(())
            })
            .unwrap();
        assert!(matches!(
            store.update::<E>(ResourceKind::Group, "g2", false, |m| {
                m.insert("x".into(), "y".into());
                Err(E::Refused)
            }),
            Err(E::Refused)
        ));
        let reopened = ResourceConfigs::open(dir.path()).unwrap();
        assert_eq!(
            reopened
                .get(ResourceKind::ClientMetrics, "s1")
                .get("interval.ms")
                .map(String::as_str),
            Some("1000")
        );
        // Neither the validate-only change nor the refused one was kept.
        assert!(reopened.all(ResourceKind::Group).is_empty());
        reopened
            .update::<E>(ResourceKind::ClientMetrics, "s1", false, |m| {
                m.clear();
                Ok(())
            })
            .unwrap();
        let reopened = ResourceConfigs::open(dir.path()).unwrap();
        assert!(reopened.all(ResourceKind::ClientMetrics).is_empty());
    }

    #[test]
    fn a_corrupt_or_newer_file_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(RESOURCE_CONFIGS_FILE), b"{not json").unwrap();
        assert!(matches!(
            ResourceConfigs::open(dir.path()),
            Err(ResourceConfigsError::Corrupt { .. })
        ));
        fs::write(dir.path().join(RESOURCE_CONFIGS_FILE), br#"{"version":2}"#).unwrap();
        assert!(matches!(
            ResourceConfigs::open(dir.path()),
            Err(ResourceConfigsError::Version { found: 2, .. })
        ));
    }

    #[test]
    fn lists_split_as_kafka_splits_them() {
        assert_eq!(parse_list("  "), Vec::<String>::new());
        assert_eq!(parse_list("a, b ,c"), vec!["a", "b", "c"]);
        assert_eq!(parse_list("a,,b"), vec!["a", "", "b"]);
        assert_eq!(parse_list("a,"), vec!["a", ""]);
        assert_eq!(parse_int("k", " 12 "), Ok(12));
        assert_eq!(
            parse_int("k", "x"),
            Err("Invalid value x for configuration k: Not a number of type INT".into())
        );
    }
}
