//! The metadata files of the single-node release (up to tag `v0.1.0-single-node`), read once
//! to carry their content into the cluster's metadata log (upgrade in place), then set aside.
//!
//! Those files are `arus-metadata.json` (cluster id; topics with ids, partition counts and
//! config overrides; see [`crate::store`]), `dynamic-configs.json` (dynamic broker configs,
//! [`crate::dynamic_config`]), `resource-configs.json` (GROUP and CLIENT_METRICS configs,
//! [`crate::resource_configs`]), `producer-id-block` ([`crate::txn::producer_ids`]) and
//! `arus-features.json` ([`crate::features::store`]), all in the metadata directory.
//! Partition directories, `__consumer_offsets` and `__transaction_state` are not metadata and
//! stay as they are, so committed offsets and transaction state need no conversion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arus_protocol::Uuid;

use crate::dynamic_config::{self, DynamicConfigError};
use crate::features::store::FeatureStoreError;
use crate::features::{self, Finalized};
use crate::resource_configs::{ResourceConfigs, ResourceConfigsError, ResourceKind};
use crate::store::{self, StoreError};
use crate::txn::producer_ids::{ProducerIdBlocks, ProducerIdError};

/// The files [`read`] takes in, in the metadata directory.
pub const FILES: &[&str] = &[
    store::METADATA_FILE,
    dynamic_config::DYNAMIC_CONFIG_FILE,
    crate::resource_configs::RESOURCE_CONFIGS_FILE,
    crate::txn::producer_ids::PRODUCER_ID_FILE,
    features::store::FEATURES_FILE,
];

/// Suffix [`retire`] gives the files once their content is in the metadata log.
pub const RETIRED_SUFFIX: &str = ".migrated";

#[derive(Clone, Debug, PartialEq)]
pub struct SingleNodeTopic {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// Everything the single-node release kept outside partition logs.
#[derive(Clone, Debug, PartialEq)]
pub struct SingleNodeMetadata {
    pub cluster_id: String,
    pub topics: Vec<SingleNodeTopic>,
    /// Dynamic broker configs by resource name: `""` is the cluster default, a decimal node
    /// id one broker's own (Kafka's BROKER resource names).
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    pub client_metrics_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The first producer id never handed out: the next block starts here.
    pub next_producer_id: i64,
    pub features: Finalized,
}

#[derive(Debug, thiserror::Error)]
pub enum SingleNodeFilesError {
    #[error(transparent)]
    Topics(#[from] StoreError),
    #[error(transparent)]
    DynamicConfigs(#[from] DynamicConfigError),
    #[error(transparent)]
    ResourceConfigs(#[from] ResourceConfigsError),
    #[error(transparent)]
    ProducerIds(#[from] ProducerIdError),
    #[error(transparent)]
    Features(#[from] FeatureStoreError),
    #[error("{path}: topic {topic} has the malformed id {id:?}")]
    TopicId {
        path: PathBuf,
        topic: String,
        id: String,
    },
    #[error("cannot set aside {path}: {source}")]
    Retire {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the single-node release's metadata in `dir`, or `None` when `dir` has none (a new
/// directory, or one already upgraded). Reads only: nothing is created or changed.
pub fn read(dir: &Path) -> Result<Option<SingleNodeMetadata>, SingleNodeFilesError> {
    let Some(file) = store::load(dir)? else {
        return Ok(None);
    };
    let mut topics = Vec::with_capacity(file.topics.len());
    for t in file.topics {
        let id = parse_hex(&t.id).ok_or_else(|| SingleNodeFilesError::TopicId {
            path: dir.join(store::METADATA_FILE),
            topic: t.name.clone(),
            id: t.id.clone(),
        })?;
        topics.push(SingleNodeTopic {
            name: t.name,
            id,
            partitions: t.partitions,
            configs: t.configs,
        });
    }
    let mut broker_configs = BTreeMap::new();
    if let Some(d) = dynamic_config::load_file(dir)? {
        if !d.cluster_default.is_empty() {
            broker_configs.insert(String::new(), d.cluster_default);
        }
        for (node, configs) in d.brokers {
            if !configs.is_empty() {
                broker_configs.insert(node, configs);
            }
        }
    }
    let resources = ResourceConfigs::open(dir)?;
    let features = if dir.join(features::store::FEATURES_FILE).exists() {
        features::store::load_or_init(dir)?
    } else {
        // What the release before features served (see `features::store::load_or_init`).
        Finalized::upgraded()
    };
    Ok(Some(SingleNodeMetadata {
        cluster_id: file.cluster_id,
        topics,
        broker_configs,
        group_configs: resources.all(ResourceKind::Group),
        client_metrics_configs: resources.all(ResourceKind::ClientMetrics),
        next_producer_id: ProducerIdBlocks::open(dir)?.next_block_start(),
        features,
    }))
}

/// Renames the files [`read`] took in to `<name>.migrated` (and fsyncs the directory), so
/// that the next start reads the metadata log only. Called once their content is committed
/// there; a crash before leaves them to be read again, which the caller must tolerate (the
/// log then already holds them).
pub fn retire(dir: &Path) -> Result<(), SingleNodeFilesError> {
    for name in FILES {
        let from = dir.join(name);
        if !from.exists() {
            continue;
        }
        let to = dir.join(format!("{name}{RETIRED_SUFFIX}"));
        std::fs::rename(&from, &to)
            .map_err(|source| SingleNodeFilesError::Retire { path: from, source })?;
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SingleNodeFilesError::Retire {
            path: dir.to_path_buf(),
            source,
        })
}

fn parse_hex(s: &str) -> Option<Uuid> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(Uuid(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture the upgrade test uses: a directory written by the single-node release.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let tar = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../arus/tests/fixtures/previous-release/single-node.tar.gz"
        );
        let ok = std::process::Command::new("tar")
            .args(["-xzf", tar, "-C"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        dir
    }

    #[test]
    fn reads_everything_the_single_node_release_wrote() {
        let dir = fixture();
        let data = dir.path().join("data");
        let m = read(&data).unwrap().unwrap();
        assert_eq!(m.cluster_id.len(), 22);
        let names: Vec<_> = m.topics.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"orders") && names.contains(&"__consumer_offsets"));
        let orders = m.topics.iter().find(|t| t.name == "orders").unwrap();
        assert_eq!(orders.partitions, 3);
        assert_eq!(orders.configs["retention.ms"], "86400000");
        assert_eq!(m.broker_configs[""]["log.retention.ms"], "604800001");
        assert_eq!(m.broker_configs["1"]["log.cleaner.threads"], "2");
        assert_eq!(
            m.group_configs["fixture-group"]["consumer.session.timeout.ms"],
            "50000"
        );
        assert!(m.next_producer_id >= 1000, "{}", m.next_producer_id);
        assert_eq!(m.features.level("transaction.version"), 2);
    }

    #[test]
    fn retire_sets_the_files_aside_and_read_then_finds_nothing() {
        let dir = fixture();
        let data = dir.path().join("data");
        retire(&data).unwrap();
        assert!(read(&data).unwrap().is_none());
        for name in FILES {
            assert!(!data.join(name).exists());
            assert!(
                data.join(format!("{name}{RETIRED_SUFFIX}")).exists(),
                "{name}"
            );
        }
    }

    #[test]
    fn an_empty_directory_has_nothing_to_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
