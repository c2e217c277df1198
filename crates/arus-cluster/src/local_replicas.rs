//! Before the active controller commits new partitions it placed on its own node, it has
//! that node's broker open them (see `arus_broker::topics::driven::prepared` for why and
//! for the invariants). A topic whose local partitions cannot be opened is taken out of
//! the batch and answered KAFKA_STORAGE_ERROR; the others go ahead.
//!
//! This only covers the controller's own node — other brokers are not asked, as Kafka's
//! controller asks none — so on a multi-node cluster it is a stricter check where it is
//! free, not a guarantee. On the one-node cluster it is the whole guarantee: a creation
//! either happened and is answered with success, or did not and is answered the error.
//!
//! [`plan`] and [`refuse`] are pure; [`LocalReplicas`] is the broker behind a trait so the
//! driver can be tested without one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arus_broker::Broker;
use arus_broker::topics::driven::prepared::PrepareSpec;
use arus_metadata::image::resource_type;
use arus_metadata::{MetadataImage, MetadataRecord};
use arus_protocol::messages::create_topics_response::CreatableTopicResult;
use arus_protocol::{ErrorCode, Response, Uuid};

/// The broker of the controller's node, as the driver uses it (blocking calls: the driver
/// runs them off the async threads).
pub trait LocalReplicas: Send + Sync {
    /// Opens the partitions of `spec`, all or none.
    fn prepare(&self, spec: &PrepareSpec) -> Result<(), String>;
    /// The batch with `topic`'s partitions committed at `offset`.
    fn committed(&self, topic: Uuid, offset: i64);
    /// The batch with `topic`'s partitions was not committed by this controller.
    fn discard(&self, topic: Uuid);
}

/// The broker in the same process.
pub struct BrokerReplicas(pub Arc<Broker>);

impl LocalReplicas for BrokerReplicas {
    fn prepare(&self, spec: &PrepareSpec) -> Result<(), String> {
        self.0.topics.prepare(spec).map_err(|e| e.to_string())
    }
    fn committed(&self, topic: Uuid, offset: i64) {
        self.0.topics.commit_prepared(topic, offset)
    }
    fn discard(&self, topic: Uuid) {
        self.0.topics.discard_prepared(topic)
    }
}

/// The new partitions `records` place on `node`, per topic, with the role they give it.
/// Topics created by `records` take their config overrides from them; new partitions of a
/// topic of `image` keep that topic's settings.
pub fn plan(node: i32, records: &[MetadataRecord], image: &MetadataImage) -> Vec<PrepareSpec> {
    let mut created: BTreeMap<Uuid, String> = BTreeMap::new();
    let mut configs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut specs: BTreeMap<Uuid, PrepareSpec> = BTreeMap::new();
    for r in records {
        match r {
            MetadataRecord::Topic(t) => {
                created.insert(t.topic_id, t.name.clone());
            }
            MetadataRecord::Config(c) if c.resource_type == resource_type::TOPIC => {
                if let Some(v) = &c.value {
                    configs
                        .entry(c.resource_name.clone())
                        .or_default()
                        .insert(c.name.clone(), v.clone());
                }
            }
            MetadataRecord::Partition(p) if p.replicas.contains(&node) => {
                let name = match created.get(&p.topic_id) {
                    Some(n) => n.clone(),
                    None => match image.topic_by_id(&p.topic_id) {
                        Some(t) => t.name.clone(),
                        // Not a topic this batch or the image knows: nothing to open.
                        None => continue,
                    },
                };
                let role = crate::applier::role_of(node, p.leader, p.leader_epoch);
                specs
                    .entry(p.topic_id)
                    .or_insert_with(|| PrepareSpec {
                        name,
                        id: p.topic_id,
                        partitions: BTreeMap::new(),
                        configs: None,
                    })
                    .partitions
                    .insert(p.partition_id, role);
            }
            _ => {}
        }
    }
    specs
        .into_values()
        .map(|mut s| {
            if created.contains_key(&s.id) {
                s.configs = Some(configs.remove(&s.name).unwrap_or_default());
            }
            s
        })
        .collect()
}

/// A topic the local broker could not open partitions for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub id: Uuid,
    pub name: String,
    pub message: String,
}

/// `records` without those of the `refused` topics, and `response` with KAFKA_STORAGE_ERROR
/// for them (CreateTopics and CreatePartitions; other responses are returned as they are).
pub fn refuse(
    records: Vec<MetadataRecord>,
    response: Response,
    refused: &[Refused],
) -> (Vec<MetadataRecord>, Response) {
    if refused.is_empty() {
        return (records, response);
    }
    let ids: BTreeSet<Uuid> = refused.iter().map(|r| r.id).collect();
    let names: BTreeSet<&str> = refused.iter().map(|r| r.name.as_str()).collect();
    let records = records
        .into_iter()
        .filter(|r| match r {
            MetadataRecord::Topic(t) => !ids.contains(&t.topic_id),
            MetadataRecord::Partition(p) => !ids.contains(&p.topic_id),
            MetadataRecord::Config(c) => {
                c.resource_type != resource_type::TOPIC || !names.contains(c.resource_name.as_str())
            }
            _ => true,
        })
        .collect();
    let message = |name: &str| {
        refused
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.message.clone())
    };
    let code = ErrorCode::KafkaStorageError.code();
    let response = match response {
        Response::CreateTopics(mut r) => {
            for t in &mut r.topics {
                if let Some(m) = message(&t.name) {
                    t.error_code = code;
                    t.error_message = Some(m);
                    t.topic_id = Uuid::default();
                    t.num_partitions = -1;
                    t.replication_factor = -1;
                    // As the controller's own refusals (`controller_apis`) answer.
                    t.configs = CreatableTopicResult::default().configs;
                }
            }
            Response::CreateTopics(r)
        }
        Response::CreatePartitions(mut r) => {
            for t in &mut r.results {
                if let Some(m) = message(&t.name) {
                    t.error_code = code;
                    t.error_message = Some(m);
                }
            }
            Response::CreatePartitions(r)
        }
        other => other,
    };
    (records, response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_broker::partition::role::LocalRole;
    use arus_protocol::messages::create_partitions_response::{
        CreatePartitionsResponse, CreatePartitionsTopicResult,
    };
    use arus_protocol::messages::create_topics_response::CreateTopicsResponse;
    use arus_protocol::metadata::{ConfigRecord, PartitionRecord, TopicRecord};

    fn id(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    fn topic(n: u8, name: &str) -> MetadataRecord {
        MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id: id(n),
            ..Default::default()
        })
    }

    fn partition(n: u8, index: i32, replicas: &[i32], epoch: i32) -> MetadataRecord {
        MetadataRecord::Partition(PartitionRecord {
            partition_id: index,
            topic_id: id(n),
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: replicas[0],
            leader_epoch: epoch,
            ..Default::default()
        })
    }

    fn config(name: &str, key: &str, value: &str) -> MetadataRecord {
        MetadataRecord::Config(ConfigRecord {
            resource_type: resource_type::TOPIC,
            resource_name: name.into(),
            name: key.into(),
            value: Some(value.into()),
            ..Default::default()
        })
    }

    #[test]
    fn plan_takes_this_nodes_partitions_with_their_roles_and_the_new_topics_configs() {
        let records = vec![
            topic(1, "a"),
            config("a", "segment.bytes", "1048576"),
            partition(1, 0, &[1, 2], 0),
            partition(1, 1, &[2, 1], 0),
            partition(1, 2, &[2, 3], 0),
            topic(2, "b"),
            partition(2, 0, &[3], 0),
        ];
        let specs = plan(1, &records, &MetadataImage::empty("c"));
        assert_eq!(specs.len(), 1);
        let a = &specs[0];
        assert_eq!(a.name, "a");
        assert_eq!(
            a.partitions,
            BTreeMap::from([
                (0, LocalRole::Leader { epoch: 0 }),
                (
                    1,
                    LocalRole::Follower {
                        leader: 2,
                        epoch: 0
                    }
                ),
            ])
        );
        assert_eq!(
            a.configs,
            Some(BTreeMap::from([(
                "segment.bytes".to_string(),
                "1048576".to_string()
            )]))
        );
    }

    #[test]
    fn plan_skips_partitions_of_topics_it_cannot_name() {
        // A PartitionRecord for a topic neither the batch nor the image has.
        let specs = plan(1, &[partition(9, 3, &[1], 0)], &MetadataImage::empty("c"));
        assert!(specs.is_empty());
    }

    #[test]
    fn refuse_drops_the_refused_topics_records_and_answers_storage_error() {
        let records = vec![
            topic(1, "a"),
            config("a", "retention.ms", "1"),
            partition(1, 0, &[1], 0),
            topic(2, "b"),
            config("b", "retention.ms", "1"),
            partition(2, 0, &[1], 0),
        ];
        let response = Response::CreateTopics(CreateTopicsResponse {
            topics: ["a", "b"]
                .iter()
                .enumerate()
                .map(|(i, n)| CreatableTopicResult {
                    name: n.to_string(),
                    topic_id: id(i as u8 + 1),
                    num_partitions: 1,
                    replication_factor: 1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        let refused = [Refused {
            id: id(1),
            name: "a".into(),
            message: "no space".into(),
        }];
        let (records, response) = refuse(records, response, &refused);
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| match r {
            MetadataRecord::Topic(t) => t.topic_id == id(2),
            MetadataRecord::Partition(p) => p.topic_id == id(2),
            MetadataRecord::Config(c) => c.resource_name == "b",
            _ => false,
        }));
        let Response::CreateTopics(r) = response else {
            panic!()
        };
        assert_eq!(r.topics[0].error_code, ErrorCode::KafkaStorageError.code());
        assert_eq!(r.topics[0].error_message.as_deref(), Some("no space"));
        assert_eq!(r.topics[0].topic_id, Uuid::default());
        assert_eq!(r.topics[0].num_partitions, -1);
        assert_eq!(r.topics[1].error_code, 0);
        assert_eq!(r.topics[1].topic_id, id(2));
    }

    #[test]
    fn refuse_answers_create_partitions_per_topic() {
        let response = Response::CreatePartitions(CreatePartitionsResponse {
            results: vec![
                CreatePartitionsTopicResult {
                    name: "a".into(),
                    ..Default::default()
                },
                CreatePartitionsTopicResult {
                    name: "b".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let refused = [Refused {
            id: id(2),
            name: "b".into(),
            message: "too many open files".into(),
        }];
        let (records, response) = refuse(
            vec![partition(1, 1, &[1], 0), partition(2, 1, &[1], 0)],
            response,
            &refused,
        );
        assert_eq!(records.len(), 1);
        let Response::CreatePartitions(r) = response else {
            panic!()
        };
        assert_eq!(r.results[0].error_code, 0);
        assert_eq!(r.results[1].error_code, ErrorCode::KafkaStorageError.code());
    }
}
