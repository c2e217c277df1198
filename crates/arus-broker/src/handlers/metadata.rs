//! Metadata: brokers, cluster id, controller, and topics with their partitions. Unknown
//! topics are created when both the request and `auto.create.topics.enable` allow it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_protocol::messages::MetadataRequest;
use arus_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use arus_protocol::{ErrorCode, Uuid};
use tracing::info;

use crate::Broker;
use crate::authorized_operations;
use crate::topics::{NewTopic, Topic, TopicError, validate_topic_name};

fn describe_topic(topic: &Topic, node: i32, with_ops: bool) -> MetadataResponseTopic {
    MetadataResponseTopic {
        topic_authorized_operations: authorized_operations::topic(with_ops),
        error_code: ErrorCode::None.code(),
        name: Some(topic.name.clone()),
        topic_id: topic.id,
        is_internal: topic.internal,
        partitions: topic
            .partitions()
            .iter()
            .map(|p| MetadataResponsePartition {
                error_code: ErrorCode::None.code(),
                partition_index: p.index,
                leader_id: node,
                leader_epoch: 0,
                replica_nodes: vec![node],
                isr_nodes: vec![node],
                offline_replicas: vec![],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn topic_error(name: Option<String>, id: Uuid, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: code.code(),
        name,
        topic_id: id,
        ..Default::default()
    }
}

/// Creates `name` with the broker's defaults, as auto-creation does.
fn auto_create(broker: &Broker, name: &str) -> Result<Arc<Topic>, TopicError> {
    let topic = broker.topics.get_or_create(NewTopic {
        name: name.to_string(),
        partitions: broker.config.num_partitions,
        replication_factor: broker.config.default_replication_factor,
        configs: BTreeMap::new(),
    })?;
    info!(topic = %name, "auto-created topic");
    Ok(topic)
}

pub fn handle(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    let node = broker.node_id();
    let listener = broker.advertised_listener();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let with_ops = request.include_topic_authorized_operations;
    let allow_auto = request.allow_auto_topic_creation && broker.config.auto_create_topics_enable;
    let topics = match requested {
        None => broker
            .topics
            .all()
            .iter()
            .map(|t| describe_topic(t, node, with_ops))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|req| {
                let name = req.name.clone();
                match name {
                    // A non-zero id wins over the name, as in Kafka's KafkaApis: the Java
                    // consumer asks for assigned topic ids it cannot name with name "" (the
                    // field's default), e.g. under a regex subscription.
                    Some(name) if req.topic_id == Uuid::ZERO => {
                        if let Some(t) = broker.topics.get(&name) {
                            return describe_topic(&t, node, with_ops);
                        }
                        if validate_topic_name(&name).is_err() {
                            return topic_error(
                                Some(name),
                                Uuid::ZERO,
                                ErrorCode::InvalidTopicException,
                            );
                        }
                        if !allow_auto {
                            return topic_error(
                                Some(name),
                                Uuid::ZERO,
                                ErrorCode::UnknownTopicOrPartition,
                            );
                        }
                        match auto_create(broker, &name) {
                            Ok(t) => describe_topic(&t, node, with_ops),
                            Err(e) => topic_error(Some(name), Uuid::ZERO, e.code()),
                        }
                    }
                    _ => match broker.topics.get_by_id(&req.topic_id) {
                        Some(t) => describe_topic(&t, node, with_ops),
                        None => topic_error(None, req.topic_id, ErrorCode::UnknownTopicId),
                    },
                }
            })
            .collect(),
    };
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: node,
            host: listener.host,
            port: listener.port as i32,
            rack: None,
            ..Default::default()
        }],
        cluster_id: Some(broker.topics.cluster_id().to_string()),
        controller_id: node,
        cluster_authorized_operations: authorized_operations::cluster(
            request.include_cluster_authorized_operations,
        ),
        topics,
        ..Default::default()
    }
}
