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
use crate::cluster::ClusterView;
use crate::cluster::describe::{self, Describing};
use crate::topics::{NewTopic, Topic, TopicError, validate_topic_name};

/// What every topic of one response is described with: the view read once, the request's
/// listener and version.
struct Describer<'a> {
    view: &'a ClusterView,
    listener: &'a str,
    version: i16,
    with_ops: bool,
}

fn describe_topic(topic: &Topic, d: &Describer) -> MetadataResponseTopic {
    let with_ops = d.with_ops;
    MetadataResponseTopic {
        topic_authorized_operations: authorized_operations::topic(with_ops),
        error_code: ErrorCode::None.code(),
        name: Some(topic.name.clone()),
        topic_id: topic.id,
        is_internal: topic.internal,
        // Every partition the topic has in the cluster, hosted here or not.
        partitions: (0..topic.partition_count())
            .map(|index| {
                let described = describe::partition(
                    d.view,
                    topic.id,
                    index,
                    d.listener,
                    Describing::Metadata { version: d.version },
                );
                MetadataResponsePartition {
                    error_code: described.error.code(),
                    partition_index: index,
                    leader_id: described.leader_id,
                    leader_epoch: described.leader_epoch,
                    replica_nodes: described.replicas,
                    isr_nodes: described.isr,
                    offline_replicas: described.offline_replicas,
                    ..Default::default()
                }
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

/// The answer to a request that came in on the broker's client listener.
pub fn handle(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    handle_on_listener(
        broker,
        request,
        version,
        &crate::cluster::request_listener(broker),
    )
}

/// `listener`: the name of the listener the request came in on; brokers and leaders are
/// described by their endpoints on it.
pub fn handle_on_listener(
    broker: &Broker,
    request: MetadataRequest,
    version: i16,
    listener: &str,
) -> MetadataResponse {
    let view = broker.cluster.current();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let d = Describer {
        view: &view,
        listener,
        version,
        with_ops: request.include_topic_authorized_operations,
    };
    let allow_auto = request.allow_auto_topic_creation && broker.config.auto_create_topics_enable;
    let topics = match requested {
        None => broker
            .topics
            .all()
            .iter()
            .map(|t| describe_topic(t, &d))
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
                            return describe_topic(&t, &d);
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
                            Ok(t) => describe_topic(&t, &d),
                            Err(e) => topic_error(Some(name), Uuid::ZERO, e.code()),
                        }
                    }
                    _ => match broker.topics.get_by_id(&req.topic_id) {
                        Some(t) => describe_topic(&t, &d),
                        None => topic_error(None, req.topic_id, ErrorCode::UnknownTopicId),
                    },
                }
            })
            .collect(),
    };
    MetadataResponse {
        brokers: describe::alive_brokers(&view, listener)
            .into_iter()
            .map(|n| MetadataResponseBroker {
                node_id: n.id,
                host: n.host,
                port: n.port,
                rack: n.rack,
                ..Default::default()
            })
            .collect(),
        cluster_id: Some(view.cluster_id().to_string()),
        // As Kafka's KRaft brokers (KIP-590): a random alive broker, which forwards what is
        // meant for the controller.
        controller_id: view.random_alive_broker().unwrap_or(-1),
        cluster_authorized_operations: authorized_operations::cluster(
            request.include_cluster_authorized_operations,
        ),
        topics,
        ..Default::default()
    }
}
