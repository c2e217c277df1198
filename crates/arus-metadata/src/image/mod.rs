//! [`MetadataImage`]: the cluster's metadata at one offset of the metadata log, immutable.
//!
//! Cloning an image copies a handful of `Arc`s: every section (features, brokers, topics,
//! configs, security) is an `Arc`'d map of `Arc`'d entries, so request handlers share one
//! image without locks and a [`crate::MetadataDelta`] that touches one topic copies the
//! topic maps' pointers and that topic, never the other topics.

pub mod cluster;
pub mod configs;
pub mod security;
pub mod topics;

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_protocol::Uuid;

pub use cluster::{
    BrokerRegistration, ClusterImage, ControllerRegistration, Endpoint, VersionRange,
};
pub use configs::{ConfigMap, ConfigResource, ConfigsImage, resource_type};
pub use security::{QuotaEntity, SecurityImage};
pub use topics::{
    LOST_DIRECTORY, LeaderRecoveryState, MIGRATING_DIRECTORY, NO_LEADER, NO_LEADER_CHANGE,
    PartitionError, PartitionRegistration, TopicImage, TopicsImage, UNASSIGNED_DIRECTORY,
};

/// The `metadata.version` feature's name.
pub const METADATA_VERSION: &str = "metadata.version";
/// The `kraft.version` feature's name: owned by the Raft layer, never stored in the image
/// (Kafka's `FeaturesDelta` ignores it too).
pub const KRAFT_VERSION: &str = "kraft.version";

/// Where an image stands in the metadata log: the offset and leader epoch of the last
/// record applied (Kafka's `MetadataProvenance`); -1/-1 before any record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetadataProvenance {
    pub offset: i64,
    pub epoch: i32,
}

impl MetadataProvenance {
    pub const EMPTY: MetadataProvenance = MetadataProvenance {
        offset: -1,
        epoch: -1,
    };

    pub fn new(offset: i64, epoch: i32) -> MetadataProvenance {
        MetadataProvenance { offset, epoch }
    }
}

/// A partition named by topic id and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicIdPartition {
    pub topic_id: Uuid,
    pub partition: i32,
}

/// The whole cluster metadata at one point of the log. See the module doc for sharing.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataImage {
    pub(crate) cluster_id: Arc<str>,
    pub(crate) provenance: MetadataProvenance,
    pub(crate) features: Arc<BTreeMap<String, i16>>,
    pub(crate) cluster: ClusterImage,
    pub(crate) topics: TopicsImage,
    pub(crate) configs: ConfigsImage,
    /// The first producer id of the next block to hand out; -1 before any block.
    pub(crate) next_producer_id: i64,
    pub(crate) security: SecurityImage,
}

impl MetadataImage {
    /// The image before the first record. The cluster id is not a metadata record (it is
    /// in `meta.properties` and the Raft layer), so the node provides it.
    pub fn empty(cluster_id: impl Into<Arc<str>>) -> MetadataImage {
        MetadataImage {
            cluster_id: cluster_id.into(),
            provenance: MetadataProvenance::EMPTY,
            features: Arc::default(),
            cluster: ClusterImage::default(),
            topics: TopicsImage::default(),
            configs: ConfigsImage::default(),
            next_producer_id: -1,
            security: SecurityImage::default(),
        }
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn provenance(&self) -> MetadataProvenance {
        self.provenance
    }

    /// True if no record has been applied to this image's content.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
            && self.cluster.brokers.is_empty()
            && self.cluster.controllers.is_empty()
            && self.topics.is_empty()
            && self.configs.resources.is_empty()
            && self.next_producer_id < 0
            && self.security == SecurityImage::default()
    }

    // ----- features -----

    /// Finalized features (name -> level), including `metadata.version`.
    pub fn features(&self) -> &BTreeMap<String, i16> {
        &self.features
    }

    pub fn feature_level(&self, name: &str) -> Option<i16> {
        self.features.get(name).copied()
    }

    /// The `metadata.version` feature level, if finalized.
    pub fn metadata_version(&self) -> Option<i16> {
        self.feature_level(METADATA_VERSION)
    }

    // ----- brokers and controllers -----

    pub fn cluster(&self) -> &ClusterImage {
        &self.cluster
    }

    pub fn broker(&self, id: i32) -> Option<&Arc<BrokerRegistration>> {
        self.cluster.broker(id)
    }

    /// Unfenced brokers, by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &Arc<BrokerRegistration>> {
        self.cluster.live_brokers()
    }

    /// True if `id` is registered and not fenced.
    pub fn is_broker_live(&self, id: i32) -> bool {
        self.broker(id).is_some_and(|b| !b.fenced)
    }

    // ----- topics and partitions -----

    pub fn topics(&self) -> &TopicsImage {
        &self.topics
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get_by_name(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topics.get(id)
    }

    /// A topic's id by name.
    pub fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.topic(name).map(|t| t.id)
    }

    /// A partition by topic name.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionRegistration> {
        self.topic(topic)?.partition(partition)
    }

    /// A partition by topic id.
    pub fn partition_by_id(
        &self,
        topic_id: &Uuid,
        partition: i32,
    ) -> Option<&PartitionRegistration> {
        self.topic_by_id(topic_id)?.partition(partition)
    }

    /// The leader of a partition, `None` if the partition is unknown or has no leader.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.partition(topic, partition)?.leader()
    }

    /// The partitions `broker` leads, ordered by topic id then partition.
    pub fn partitions_led_by(&self, broker: i32) -> Vec<TopicIdPartition> {
        self.partitions_where(|p| p.leader == broker)
    }

    /// The partitions `broker` holds a replica of, ordered by topic id then partition.
    pub fn partitions_on(&self, broker: i32) -> Vec<TopicIdPartition> {
        self.partitions_where(|p| p.has_replica(broker))
    }

    fn partitions_where(
        &self,
        keep: impl Fn(&PartitionRegistration) -> bool,
    ) -> Vec<TopicIdPartition> {
        self.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|(_, p)| keep(p))
                    .map(|(i, _)| TopicIdPartition {
                        topic_id: t.id,
                        partition: *i,
                    })
            })
            .collect()
    }

    /// The replicas a client should consider offline, as Kafka's `KRaftMetadataCache`
    /// reports them in Metadata and DescribeTopicPartitions: not registered, fenced,
    /// without the client's listener, or in a directory the broker does not have online.
    pub fn offline_replicas(&self, partition: &PartitionRegistration, listener: &str) -> Vec<i32> {
        partition
            .replicas
            .iter()
            .copied()
            .filter(|&id| match self.broker(id) {
                None => true,
                Some(b) => {
                    b.fenced
                        || b.listener(listener).is_none()
                        || partition
                            .directory(id)
                            .is_some_and(|d| !b.has_online_dir(d))
                }
            })
            .collect()
    }

    /// This image with `records` replayed on it, at `provenance`: a one-shot
    /// [`crate::MetadataDelta`] (for tests, and writers that check their own output).
    pub fn with_records<'a>(
        &self,
        records: impl IntoIterator<Item = &'a crate::MetadataRecord>,
        provenance: MetadataProvenance,
    ) -> Result<MetadataImage, crate::DeltaError> {
        let mut delta = crate::MetadataDelta::new(self);
        delta.replay_all(records)?;
        Ok(delta.apply(provenance))
    }

    // ----- configs, producer ids, security -----

    pub fn configs(&self) -> &ConfigsImage {
        &self.configs
    }

    /// A topic's dynamic config value (not the broker default it may inherit).
    pub fn topic_config(&self, topic: &str, key: &str) -> Option<&str> {
        self.configs.value(&ConfigResource::topic(topic), key)
    }

    /// The first producer id of the next block the controller hands out; -1 before any.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    pub fn security(&self) -> &SecurityImage {
        &self.security
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::tests::{T1, broker, partition, topic};
    use arus_protocol::metadata::{PartitionChangeRecord, UnfenceBrokerRecord};

    #[test]
    fn images_are_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MetadataImage>();
    }

    #[test]
    fn offline_replicas_follow_kafka_metadata_cache() {
        let lost = PartitionChangeRecord {
            topic_id: T1,
            partition_id: 0,
            directories: Some(vec![MIGRATING_DIRECTORY, LOST_DIRECTORY, Uuid([5; 16])]),
            ..Default::default()
        };
        let image = MetadataImage::empty("c")
            .with_records(
                &[
                    broker(1, 1),
                    broker(2, 1),
                    broker(3, 1),
                    UnfenceBrokerRecord { id: 1, epoch: 1 }.into(),
                    UnfenceBrokerRecord { id: 2, epoch: 1 }.into(),
                    UnfenceBrokerRecord { id: 3, epoch: 1 }.into(),
                    topic("a", T1),
                    partition(T1, 0, &[1, 2, 3, 4], 1),
                ],
                MetadataProvenance::new(7, 1),
            )
            .unwrap();
        let p = image.partition("a", 0).unwrap();
        // 4 is not registered; everyone else is live with PLAINTEXT.
        assert_eq!(image.offline_replicas(p, "PLAINTEXT"), vec![4]);
        assert_eq!(image.offline_replicas(p, "SSL"), vec![1, 2, 3, 4]);
        let mut moved = lost.clone();
        moved.replicas = Some(vec![1, 2, 3]);
        let image = image
            .with_records(&[moved.into()], MetadataProvenance::new(8, 1))
            .unwrap();
        let p = image.partition("a", 0).unwrap();
        // 2's directory is lost; 3's is not among the broker's (none reported: online).
        assert_eq!(image.offline_replicas(p, "PLAINTEXT"), vec![2]);
        // Once 3 reports its directories and that one is not among them, it is offline.
        let mut reregister = match broker(3, 2) {
            crate::MetadataRecord::RegisterBroker(r) => r,
            _ => unreachable!(),
        };
        reregister.fenced = false;
        reregister.log_dirs = vec![Uuid([6; 16])];
        let image = image
            .with_records(&[reregister.into()], MetadataProvenance::new(9, 1))
            .unwrap();
        let p = image.partition("a", 0).unwrap();
        assert_eq!(image.offline_replicas(p, "PLAINTEXT"), vec![2, 3]);
    }

    #[test]
    fn empty_image_is_empty_and_cheap_to_clone() {
        let image = MetadataImage::empty("cluster-a");
        assert!(image.is_empty());
        assert_eq!(image.cluster_id(), "cluster-a");
        assert_eq!(image.provenance(), MetadataProvenance::EMPTY);
        assert_eq!(image.next_producer_id(), -1);
        let copy = image.clone();
        assert!(Arc::ptr_eq(&copy.topics.by_id, &image.topics.by_id));
        assert_eq!(copy, image);
    }
}
