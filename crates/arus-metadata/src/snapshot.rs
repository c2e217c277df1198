//! [`MetadataImage::to_records`]: an image as the records that rebuild it from empty (the
//! content of a metadata snapshot), in the order of Kafka's `MetadataImage.write`:
//! features (`metadata.version` first), brokers, controllers, topics each followed by its
//! partitions, configs, client quotas, the producer-id block, ACLs, SCRAM credentials,
//! delegation tokens.

use arus_protocol::metadata::client_quota_record::EntityData;
use arus_protocol::metadata::{
    ClientQuotaRecord, ConfigRecord, FeatureLevelRecord, ProducerIdsRecord, TopicRecord,
};

use crate::image::{METADATA_VERSION, MetadataImage};
use crate::record::MetadataRecord;

impl MetadataImage {
    /// The records that, replayed onto `MetadataImage::empty(cluster_id)` and applied at
    /// this image's provenance, give an image equal to this one.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out: Vec<MetadataRecord> = Vec::new();
        let feature = |name: &str, level: i16| FeatureLevelRecord {
            name: name.to_string(),
            feature_level: level,
        };
        if let Some(level) = self.metadata_version() {
            out.push(feature(METADATA_VERSION, level).into());
        }
        for (name, level) in self.features.iter() {
            if name != METADATA_VERSION {
                out.push(feature(name, *level).into());
            }
        }
        out.extend(self.cluster.brokers().map(|b| b.to_record().into()));
        out.extend(self.cluster.controllers().map(|c| c.to_record().into()));
        for topic in self.topics.iter() {
            out.push(
                TopicRecord {
                    name: topic.name.clone(),
                    topic_id: topic.id,
                }
                .into(),
            );
            for (&id, p) in &topic.partitions {
                out.push(p.to_record(topic.id, id).into());
            }
        }
        for (resource, configs) in self.configs.iter() {
            for (key, value) in configs.iter() {
                out.push(
                    ConfigRecord {
                        resource_type: resource.resource_type,
                        resource_name: resource.name.clone(),
                        name: key.clone(),
                        value: Some(value.clone()),
                    }
                    .into(),
                );
            }
        }
        for (entity, quotas) in self.security.client_quotas.iter() {
            let entity: Vec<EntityData> = entity
                .iter()
                .map(|(t, n)| EntityData {
                    entity_type: t.clone(),
                    entity_name: n.clone(),
                })
                .collect();
            for (key, value) in quotas.iter() {
                out.push(
                    ClientQuotaRecord {
                        entity: entity.clone(),
                        key: key.clone(),
                        value: *value,
                        remove: false,
                    }
                    .into(),
                );
            }
        }
        if self.next_producer_id >= 0 {
            out.push(
                ProducerIdsRecord {
                    broker_id: -1,
                    broker_epoch: -1,
                    next_producer_id: self.next_producer_id,
                }
                .into(),
            );
        }
        out.extend(self.security.acls.values().map(|a| a.clone().into()));
        out.extend(self.security.scram.values().map(|s| s.clone().into()));
        out.extend(
            self.security
                .delegation_tokens
                .values()
                .map(|t| t.clone().into()),
        );
        out
    }
}
