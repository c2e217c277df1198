//! Topic and partition records (Kafka's `TopicsDelta` and `TopicDelta`).

use std::sync::Arc;

use arus_protocol::Uuid;
use arus_protocol::metadata::{
    ClearElrRecord, PartitionChangeRecord, PartitionRecord, RemoveTopicRecord, TopicRecord,
};

use super::{DeltaError, MetadataDelta};
use crate::image::{ConfigResource, PartitionRegistration, TopicIdPartition, TopicImage};

impl MetadataDelta {
    /// A new topic with no partitions. Kafka would silently replace a topic with the same
    /// id (dropping its partitions) or leave two ids under one name; the controller never
    /// writes either, so both are errors here rather than a corrupt image.
    pub(super) fn replay_topic(&mut self, r: &TopicRecord) -> Result<(), DeltaError> {
        let topics = &self.state.topics;
        if topics.get(&r.topic_id).is_some() {
            return Err(DeltaError::TopicIdExists(r.topic_id));
        }
        if let Some(existing) = topics.get_by_name(&r.name) {
            return Err(DeltaError::TopicNameExists {
                name: r.name.clone(),
                existing: existing.id,
            });
        }
        let topic = TopicImage::new(r.name.clone(), r.topic_id);
        self.state.topics.put(Arc::new(topic));
        if !self.loading_snapshot || self.base.topics.get(&r.topic_id).is_none() {
            self.state.created_topics.insert(r.topic_id);
        }
        Ok(())
    }

    /// A partition's full state, new or replacing the previous one.
    pub(super) fn replay_partition(&mut self, r: &PartitionRecord) -> Result<(), DeltaError> {
        if self.state.topics.get(&r.topic_id).is_none() {
            return Err(DeltaError::UnknownTopicId(r.topic_id));
        }
        let partition = PartitionRegistration::from_record(r).map_err(|source| {
            DeltaError::InvalidPartition {
                topic_id: r.topic_id,
                partition: r.partition_id,
                source,
            }
        })?;
        self.put_partition(r.topic_id, r.partition_id, partition)
    }

    /// A change merged into an existing partition (`PartitionRegistration.merge`).
    pub(super) fn replay_partition_change(
        &mut self,
        r: &PartitionChangeRecord,
    ) -> Result<(), DeltaError> {
        let topic = self
            .state
            .topics
            .get(&r.topic_id)
            .ok_or(DeltaError::UnknownTopicId(r.topic_id))?;
        let current = topic
            .partition(r.partition_id)
            .ok_or(DeltaError::UnknownPartition {
                topic_id: r.topic_id,
                partition: r.partition_id,
            })?;
        let next = current
            .merge(r)
            .map_err(|source| DeltaError::InvalidPartition {
                topic_id: r.topic_id,
                partition: r.partition_id,
                source,
            })?;
        self.put_partition(r.topic_id, r.partition_id, next)
    }

    /// Removes a topic and its topic configs.
    ///
    /// Kafka deletes the topic's configs only if they were in the delta's base image, so
    /// configs set and the topic removed within one delta stay behind there; here they are
    /// always removed (where Kafka's deltas end depends on batching, so its outcome is not
    /// a rule to copy).
    pub(super) fn replay_remove_topic(&mut self, r: &RemoveTopicRecord) -> Result<(), DeltaError> {
        let topic = self
            .state
            .topics
            .remove(&r.topic_id)
            .ok_or(DeltaError::UnknownTopicId(r.topic_id))?;
        self.state
            .configs
            .remove_resource(&ConfigResource::topic(topic.name.clone()));
        if self.base.topics.get(&r.topic_id).is_some() {
            self.state.removed_topics.insert(r.topic_id);
        }
        self.state.created_topics.remove(&r.topic_id);
        let id = r.topic_id;
        self.state.changed_partitions.retain(|p| p.topic_id != id);
        Ok(())
    }

    /// Clears the ELR and last known ELR of every partition of one topic (or of all topics
    /// when the name is empty) that has any, as Kafka's `TopicsDelta.replay(ClearElrRecord)`:
    /// a merge, so the partition epoch is bumped.
    pub(super) fn replay_clear_elr(&mut self, r: &ClearElrRecord) -> Result<(), DeltaError> {
        let topics: Vec<&Arc<TopicImage>> = if r.topic_name.is_empty() {
            self.state.topics.iter().collect()
        } else {
            let topic = self
                .state
                .topics
                .get_by_name(&r.topic_name)
                .ok_or_else(|| DeltaError::UnknownTopicName(r.topic_name.clone()))?;
            vec![topic]
        };
        let mut cleared = Vec::new();
        for topic in topics {
            for (&id, p) in &topic.partitions {
                if p.elr.is_empty() && p.last_known_elr.is_empty() {
                    continue;
                }
                let clear = PartitionChangeRecord {
                    partition_id: id,
                    topic_id: topic.id,
                    eligible_leader_replicas: Some(Vec::new()),
                    last_known_elr: Some(Vec::new()),
                    ..Default::default()
                };
                let next = p
                    .merge(&clear)
                    .map_err(|source| DeltaError::InvalidPartition {
                        topic_id: topic.id,
                        partition: id,
                        source,
                    })?;
                cleared.push((topic.id, id, next));
            }
        }
        for (topic_id, id, partition) in cleared {
            self.put_partition(topic_id, id, partition)?;
        }
        Ok(())
    }

    fn put_partition(
        &mut self,
        topic_id: Uuid,
        id: i32,
        partition: PartitionRegistration,
    ) -> Result<(), DeltaError> {
        let partitions = self
            .state
            .topics
            .partitions_mut(&topic_id)
            .ok_or(DeltaError::UnknownTopicId(topic_id))?;
        partitions.insert(id, Arc::new(partition));
        self.state.changed_partitions.insert(TopicIdPartition {
            topic_id,
            partition: id,
        });
        Ok(())
    }
}
