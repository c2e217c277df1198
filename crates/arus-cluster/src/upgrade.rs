//! Upgrade in place: the first batch of the metadata log of a directory the single-node
//! release wrote (see `arus_broker::single_node_files` for what it kept where).
//!
//! The batch holds, in Kafka's snapshot order: the finalized features, every topic with its
//! partitions — all replicas on this node, which leads them at epoch 0 — and its config
//! overrides, the dynamic broker configs (BROKER `""` and `<node id>`), GROUP and
//! CLIENT_METRICS configs, and a ProducerIdsRecord whose next block starts past every id
//! the old release may have handed out. Topic ids are kept, so clients that cached them and
//! the `partition.metadata` files stay valid. The node's own registration is not part of it:
//! the node registers like any broker once the quorum runs.

use std::path::PathBuf;

use arus_broker::single_node_files::{self, SingleNodeMetadata};
use arus_metadata::MetadataRecord;
use arus_metadata::image::resource_type;
use arus_protocol::metadata::{
    ConfigRecord, FeatureLevelRecord, PartitionRecord, ProducerIdsRecord, TopicRecord,
};

/// The records that carry `old` into the metadata log of node `node_id`.
pub fn bootstrap_records(old: &SingleNodeMetadata, node_id: i32) -> Vec<MetadataRecord> {
    let mut out: Vec<MetadataRecord> = Vec::new();
    let mut features: Vec<_> = old
        .features
        .levels
        .iter()
        .filter(|(_, l)| **l != 0)
        .collect();
    // metadata.version first, as Kafka's bootstrap does.
    features.sort_by_key(|(name, _)| *name != "metadata.version");
    for (name, level) in features {
        out.push(
            FeatureLevelRecord {
                name: name.clone(),
                feature_level: *level,
            }
            .into(),
        );
    }
    for t in &old.topics {
        out.push(
            TopicRecord {
                name: t.name.clone(),
                topic_id: t.id,
            }
            .into(),
        );
        for p in 0..t.partitions {
            out.push(
                PartitionRecord {
                    partition_id: p,
                    topic_id: t.id,
                    replicas: vec![node_id],
                    isr: vec![node_id],
                    leader: node_id,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    ..Default::default()
                }
                .into(),
            );
        }
        out.extend(configs(resource_type::TOPIC, &t.name, &t.configs));
    }
    for (name, configs_of) in &old.broker_configs {
        out.extend(configs(resource_type::BROKER, name, configs_of));
    }
    for (name, configs_of) in &old.group_configs {
        out.extend(configs(resource_type::GROUP, name, configs_of));
    }
    for (name, configs_of) in &old.client_metrics_configs {
        out.extend(configs(resource_type::CLIENT_METRICS, name, configs_of));
    }
    out.push(
        ProducerIdsRecord {
            broker_id: node_id,
            broker_epoch: -1,
            next_producer_id: old.next_producer_id,
        }
        .into(),
    );
    out
}

/// Whether `dir` still holds any of the single-node release's metadata files.
pub fn has_single_node_files(dir: &std::path::Path) -> bool {
    single_node_files::FILES
        .iter()
        .any(|name| dir.join(name).exists())
}

/// Sets the single-node release's files in `dir` aside once the metadata log's first batch
/// is committed and applied here (the image then has a `metadata.version`): from then on
/// the log alone is read. A crash before the rename leaves the files in place; the next
/// start reads them again, but the controller writes its bootstrap batch only to an empty
/// log, so nothing is written twice, and this runs again.
pub async fn retire_once_committed(metadata: crate::publisher::MetadataHandle, dir: PathBuf) {
    if !metadata
        .wait_for_image(|image| image.metadata_version().is_some())
        .await
    {
        return;
    }
    let shown = dir.display().to_string();
    match tokio::task::spawn_blocking(move || single_node_files::retire(&dir)).await {
        Ok(Ok(())) => tracing::info!(
            dir = %shown,
            "the single-node release's metadata files are in the metadata log; renamed to *{}",
            single_node_files::RETIRED_SUFFIX
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot set aside the single-node release's files; the next start retries")
        }
        Err(e) => {
            tracing::warn!(error = %e, "setting aside the single-node release's files failed")
        }
    }
}

fn configs<'a>(
    kind: i8,
    name: &'a str,
    values: &'a std::collections::BTreeMap<String, String>,
) -> impl Iterator<Item = MetadataRecord> + 'a {
    values.iter().map(move |(k, v)| {
        ConfigRecord {
            resource_type: kind,
            resource_name: name.to_string(),
            name: k.clone(),
            value: Some(v.clone()),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_metadata::{MetadataDelta, MetadataImage, MetadataProvenance};

    fn fixture() -> (tempfile::TempDir, SingleNodeMetadata) {
        let dir = tempfile::tempdir().unwrap();
        let tar = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../arus/tests/fixtures/previous-release/single-node.tar.gz"
        );
        assert!(
            std::process::Command::new("tar")
                .args(["-xzf", tar, "-C"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success()
        );
        let old = arus_broker::single_node_files::read(&dir.path().join("data"))
            .unwrap()
            .unwrap();
        (dir, old)
    }

    #[test]
    fn the_single_node_release_becomes_an_image_with_the_same_ids_and_configs() {
        let (_dir, old) = fixture();
        let records = bootstrap_records(&old, 1);
        let mut delta = MetadataDelta::new(&MetadataImage::empty(old.cluster_id.as_str()));
        delta.replay_all(&records).unwrap();
        let image = delta.apply(MetadataProvenance::new(1, 1));
        for t in &old.topics {
            let got = image.topic(&t.name).unwrap();
            assert_eq!(got.id, t.id, "{}", t.name);
            assert_eq!(got.partitions.len() as i32, t.partitions);
            for (k, v) in &t.configs {
                assert_eq!(image.topic_config(&t.name, k), Some(v.as_str()));
            }
            assert!(
                got.partitions
                    .values()
                    .all(|p| p.leader == 1 && p.isr == vec![1])
            );
        }
        assert_eq!(image.next_producer_id(), old.next_producer_id);
        assert_eq!(image.feature_level("transaction.version"), Some(2));
        assert_eq!(image.metadata_version(), Some(33));
        // Every record survives the log's encoding.
        for r in &records {
            assert_eq!(&MetadataRecord::decode(r.encode().unwrap()).unwrap(), r);
        }
    }
}
