//! [`MetadataDelta`]: records replayed onto a base image, giving the next image.
//!
//! The delta keeps a working copy of each section of the base image (the same `Arc`s until
//! a record changes them: the first change to a section copies its map of pointers, later
//! ones edit in place), plus what changed relative to the base, which is what a broker
//! reacts to ([`MetadataDelta::local_changes`]). Each record is checked before anything is
//! changed, so a record that fails leaves the delta as it was.
//!
//! Metadata transactions (KIP-868: `BeginTransactionRecord` ... `EndTransactionRecord`, or
//! `AbortTransactionRecord` to drop what came since the begin) are kept here rather than in
//! a loader: begin saves the working copy, abort restores it.

mod cluster;
mod topics;

use std::collections::BTreeSet;
use std::sync::Arc;

use arus_protocol::Uuid;

use crate::image::{
    ClusterImage, ConfigResource, ConfigsImage, MetadataImage, MetadataProvenance, PartitionError,
    SecurityImage, TopicIdPartition, TopicsImage,
};
use crate::record::MetadataRecord;

/// A record that cannot be applied to the image it is replayed onto.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("no topic with id {0}")]
    UnknownTopicId(Uuid),
    #[error("no topic named {0}")]
    UnknownTopicName(String),
    #[error("no partition {topic_id}:{partition}")]
    UnknownPartition { topic_id: Uuid, partition: i32 },
    #[error("a topic with id {0} already exists")]
    TopicIdExists(Uuid),
    #[error("topic name {name} already belongs to topic id {existing}")]
    TopicNameExists { name: String, existing: Uuid },
    #[error("invalid partition {topic_id}:{partition}")]
    InvalidPartition {
        topic_id: Uuid,
        partition: i32,
        #[source]
        source: PartitionError,
    },
    #[error("tried to {action} broker {broker}, but that broker was not registered")]
    UnknownBroker { broker: i32, action: &'static str },
    #[error(
        "tried to {action} broker {broker}, but the given epoch, {given}, did not match the \
         current broker epoch, {current}"
    )]
    BrokerEpochMismatch {
        broker: i32,
        action: &'static str,
        given: i64,
        current: i64,
    },
    #[error("unknown value for the fenced field of BrokerRegistrationChangeRecord: {0}")]
    InvalidFencingChange(i8),
    #[error(
        "unknown value for the inControlledShutdown field of BrokerRegistrationChangeRecord: {0}"
    )]
    InvalidControlledShutdownChange(i8),
    #[error(
        "unsupported metadata.version level {0} (the minimum is {MIN_METADATA_VERSION}, 3.3-IV3)"
    )]
    UnsupportedMetadataVersion(i16),
    #[error("no ACL with id {0}")]
    UnknownAcl(Uuid),
    #[error("BeginTransactionRecord while already in a metadata transaction")]
    NestedTransaction,
    #[error("{0} without a BeginTransactionRecord")]
    NoTransaction(&'static str),
}

/// The lowest `metadata.version` level Kafka 4.x accepts (3.3-IV3).
pub const MIN_METADATA_VERSION: i16 = 7;

/// The working copy and what changed; cloned whole to checkpoint a transaction.
#[derive(Debug, Clone)]
pub(crate) struct DeltaState {
    pub(crate) features: Arc<std::collections::BTreeMap<String, i16>>,
    pub(crate) cluster: ClusterImage,
    pub(crate) topics: TopicsImage,
    pub(crate) configs: ConfigsImage,
    pub(crate) next_producer_id: i64,
    pub(crate) security: SecurityImage,
    /// Partitions a PartitionRecord, PartitionChangeRecord or ClearElrRecord touched, of
    /// topics that still exist (Kafka's `TopicDelta.partitionChanges`).
    pub(crate) changed_partitions: BTreeSet<TopicIdPartition>,
    /// Topics of the base image removed by a RemoveTopicRecord.
    pub(crate) removed_topics: BTreeSet<Uuid>,
    /// Topics created by a TopicRecord and not removed since.
    pub(crate) created_topics: BTreeSet<Uuid>,
}

impl DeltaState {
    fn of(image: &MetadataImage) -> DeltaState {
        DeltaState {
            features: image.features.clone(),
            cluster: image.cluster.clone(),
            topics: image.topics.clone(),
            configs: image.configs.clone(),
            next_producer_id: image.next_producer_id,
            security: image.security.clone(),
            changed_partitions: BTreeSet::new(),
            removed_topics: BTreeSet::new(),
            created_topics: BTreeSet::new(),
        }
    }
}

/// Records replayed onto a base image. See the module doc.
#[derive(Debug, Clone)]
pub struct MetadataDelta {
    pub(crate) base: MetadataImage,
    pub(crate) state: DeltaState,
    /// The working copy at the last BeginTransactionRecord, while in a transaction.
    checkpoint: Option<Box<DeltaState>>,
    /// Loading a snapshot ([`Self::for_snapshot`]): a TopicRecord for a topic the base
    /// already has restates it rather than creating it.
    pub(crate) loading_snapshot: bool,
}

impl MetadataDelta {
    /// A delta on top of `base`, with no change yet.
    pub fn new(base: &MetadataImage) -> MetadataDelta {
        MetadataDelta {
            base: base.clone(),
            state: DeltaState::of(base),
            checkpoint: None,
            loading_snapshot: false,
        }
    }

    /// A delta that loads a snapshot onto `base`: the working copy starts empty, so after
    /// the snapshot's records it is the snapshot's image, and whatever `base` had that the
    /// snapshot lacks counts as removed (Kafka's `finishSnapshot`); [`Self::local_changes`]
    /// then tells a node what the snapshot changed for it.
    pub fn for_snapshot(base: &MetadataImage) -> MetadataDelta {
        let empty = MetadataImage::empty(base.cluster_id.clone());
        MetadataDelta {
            base: base.clone(),
            state: DeltaState::of(&empty),
            checkpoint: None,
            loading_snapshot: true,
        }
    }

    /// The image this delta started from.
    pub fn base(&self) -> &MetadataImage {
        &self.base
    }

    /// True between a BeginTransactionRecord and its End/Abort: the node should not
    /// publish an image until the transaction ends.
    pub fn in_transaction(&self) -> bool {
        self.checkpoint.is_some()
    }

    /// Applies one record. On error nothing changed.
    pub fn replay(&mut self, record: &MetadataRecord) -> Result<(), DeltaError> {
        use MetadataRecord as R;
        match record {
            R::Topic(r) => self.replay_topic(r),
            R::Partition(r) => self.replay_partition(r),
            R::PartitionChange(r) => self.replay_partition_change(r),
            R::RemoveTopic(r) => self.replay_remove_topic(r),
            R::ClearElr(r) => self.replay_clear_elr(r),
            R::RegisterBroker(r) => {
                self.replay_register_broker(r);
                Ok(())
            }
            R::UnregisterBroker(r) => {
                self.replay_unregister_broker(r.broker_id);
                Ok(())
            }
            R::FenceBroker(r) => self.replay_fencing(r.id, r.epoch, true),
            R::UnfenceBroker(r) => self.replay_fencing(r.id, r.epoch, false),
            R::BrokerRegistrationChange(r) => self.replay_registration_change(r),
            R::RegisterController(r) => {
                self.replay_register_controller(r);
                Ok(())
            }
            R::UnregisterController(r) => {
                self.replay_unregister_controller(r.controller_id);
                Ok(())
            }
            R::FeatureLevel(r) => self.replay_feature_level(r),
            R::Config(r) => {
                let resource = ConfigResource::new(r.resource_type, r.resource_name.clone());
                self.state
                    .configs
                    .set(resource, r.name.clone(), r.value.clone());
                Ok(())
            }
            R::ProducerIds(r) => {
                self.state.next_producer_id = r.next_producer_id;
                Ok(())
            }
            R::ClientQuota(r) => {
                self.replay_client_quota(r);
                Ok(())
            }
            R::AccessControlEntry(r) => {
                Arc::make_mut(&mut self.state.security.acls).insert(r.id, r.clone());
                Ok(())
            }
            R::RemoveAccessControlEntry(r) => {
                if !self.state.security.acls.contains_key(&r.id) {
                    return Err(DeltaError::UnknownAcl(r.id));
                }
                Arc::make_mut(&mut self.state.security.acls).remove(&r.id);
                Ok(())
            }
            R::UserScramCredential(r) => {
                let key = (r.mechanism, r.name.clone());
                Arc::make_mut(&mut self.state.security.scram).insert(key, r.clone());
                Ok(())
            }
            R::RemoveUserScramCredential(r) => {
                let key = (r.mechanism, r.name.clone());
                if self.state.security.scram.contains_key(&key) {
                    Arc::make_mut(&mut self.state.security.scram).remove(&key);
                }
                Ok(())
            }
            R::DelegationToken(r) => {
                let tokens = Arc::make_mut(&mut self.state.security.delegation_tokens);
                tokens.insert(r.token_id.clone(), r.clone());
                Ok(())
            }
            R::RemoveDelegationToken(r) => {
                if self
                    .state
                    .security
                    .delegation_tokens
                    .contains_key(&r.token_id)
                {
                    Arc::make_mut(&mut self.state.security.delegation_tokens).remove(&r.token_id);
                }
                Ok(())
            }
            // NoOpRecord only advances the offset; ZkMigrationStateRecord is ignored by
            // Kafka 4.x (ZooKeeper migration is gone).
            R::NoOp(_) | R::ZkMigrationState(_) => Ok(()),
            R::BeginTransaction(_) => {
                if self.checkpoint.is_some() {
                    return Err(DeltaError::NestedTransaction);
                }
                self.checkpoint = Some(Box::new(self.state.clone()));
                Ok(())
            }
            R::EndTransaction(_) => match self.checkpoint.take() {
                Some(_) => Ok(()),
                None => Err(DeltaError::NoTransaction("EndTransactionRecord")),
            },
            R::AbortTransaction(_) => match self.checkpoint.take() {
                Some(saved) => {
                    self.state = *saved;
                    Ok(())
                }
                None => Err(DeltaError::NoTransaction("AbortTransactionRecord")),
            },
        }
    }

    /// Applies records in order, stopping at the first error (records before it stay
    /// applied).
    pub fn replay_all<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a MetadataRecord>,
    ) -> Result<(), DeltaError> {
        records.into_iter().try_for_each(|r| self.replay(r))
    }

    /// The image after every record replayed so far, at `provenance` (the offset and epoch
    /// of the last of them). The delta stays usable.
    pub fn apply(&self, provenance: MetadataProvenance) -> MetadataImage {
        let s = &self.state;
        MetadataImage {
            cluster_id: self.base.cluster_id.clone(),
            provenance,
            features: s.features.clone(),
            cluster: s.cluster.clone(),
            topics: s.topics.clone(),
            configs: s.configs.clone(),
            next_producer_id: s.next_producer_id,
            security: s.security.clone(),
        }
    }

    // ----- what changed, for the node to react -----

    /// Partitions (of topics that still exist) that a record created or changed.
    pub fn changed_partitions(&self) -> &BTreeSet<TopicIdPartition> {
        &self.state.changed_partitions
    }

    /// Topics of the base image that no longer exist (removed, or absent from a snapshot).
    pub fn deleted_topic_ids(&self) -> BTreeSet<Uuid> {
        let mut deleted = self.state.removed_topics.clone();
        deleted.extend(
            self.base
                .topics
                .by_id
                .keys()
                .filter(|id| self.state.topics.get(id).is_none()),
        );
        deleted
    }

    /// Topics created by this delta (for a snapshot load: those the base did not have).
    pub fn created_topic_ids(&self) -> &BTreeSet<Uuid> {
        &self.state.created_topics
    }

    /// Brokers whose registration differs from the base image (registered, changed or
    /// gone).
    pub fn changed_brokers(&self) -> BTreeSet<i32> {
        let (old, new) = (&self.base.cluster.brokers, &self.state.cluster.brokers);
        old.keys()
            .chain(new.keys())
            .filter(|id| match (old.get(id), new.get(id)) {
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b) && a != b,
                _ => true,
            })
            .copied()
            .collect()
    }

    /// Resources whose configs differ from the base image.
    pub fn changed_configs(&self) -> BTreeSet<ConfigResource> {
        let (old, new) = (&self.base.configs.resources, &self.state.configs.resources);
        old.keys()
            .chain(new.keys())
            .filter(|r| match (old.get(*r), new.get(*r)) {
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b) && a != b,
                _ => true,
            })
            .cloned()
            .collect()
    }

    /// True if the finalized features differ from the base image.
    pub fn features_changed(&self) -> bool {
        !Arc::ptr_eq(&self.base.features, &self.state.features)
            && self.base.features != self.state.features
    }
}

#[cfg(test)]
pub(crate) mod tests;
