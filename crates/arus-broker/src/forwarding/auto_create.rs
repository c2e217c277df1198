//! Topics a broker in a cluster creates on a client's behalf, through the controller as
//! Kafka's `AutoTopicCreationManager` does: a Metadata request for a missing topic (with
//! `allow_auto_topic_creation` and `auto.create.topics.enable`), and the first
//! FindCoordinator for `__consumer_offsets` or `__transaction_state`. The broker waits
//! until its own metadata has the topics, so the request that caused the creation is
//! answered with them (Kafka answers LEADER_NOT_AVAILABLE and lets the client ask again;
//! answering once they exist saves that round trip and is what clients retry for).

use std::collections::BTreeMap;

use arus_protocol::messages::CreateTopicsRequest;
use arus_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use arus_protocol::messages::{FindCoordinatorRequest, MetadataRequest};
use arus_protocol::{Request, Response};
use tracing::{info, warn};

use super::forward;
use crate::broker::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::topics::validate_topic_name;
use crate::txn::TRANSACTION_STATE_TOPIC;

/// One topic to create, with its partition count, replication factor and overrides.
pub(crate) struct AutoTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Creates `topics` through the controller (those that exist are left alone) and waits for
/// them to reach this broker's metadata. Failures are logged: the caller answers from what
/// exists, as it would have without the creation.
pub(crate) async fn create(broker: &Broker, topics: Vec<AutoTopic>) {
    let Some(channel) = broker.controller_channel() else {
        return;
    };
    let topics: Vec<AutoTopic> = topics
        .into_iter()
        .filter(|t| broker.topics.get(&t.name).is_none())
        .collect();
    if topics.is_empty() {
        return;
    }
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let request = CreateTopicsRequest {
        topics: topics
            .into_iter()
            .map(|t| CreatableTopic {
                name: t.name,
                num_partitions: t.partitions,
                replication_factor: t.replication_factor,
                configs: t
                    .configs
                    .into_iter()
                    .map(|(name, value)| CreatableTopicConfig {
                        name,
                        value: Some(value),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        timeout_ms: super::request_timeout(broker).as_millis() as i32,
        ..Default::default()
    };
    match forward(broker, &channel, Request::CreateTopics(request), 7, None).await {
        Ok(Response::CreateTopics(r)) => {
            for t in r.topics {
                if t.error_code == 0 {
                    info!(topic = %t.name, "auto-created topic");
                } else if t.error_code != arus_protocol::ErrorCode::TopicAlreadyExists.code() {
                    warn!(topic = %t.name, error = t.error_code, message = ?t.error_message, "auto-creation refused");
                }
            }
        }
        Ok(_) => warn!(?names, "unexpected answer to an auto-creation"),
        Err(e) => warn!(?names, error = %e, "auto-creation failed"),
    }
}

/// The topics a Metadata request would auto-create.
pub(crate) fn for_metadata(broker: &Broker, request: &MetadataRequest) -> Vec<AutoTopic> {
    if !(request.allow_auto_topic_creation && broker.config.auto_create_topics_enable) {
        return Vec::new();
    }
    request
        .topics
        .iter()
        .flatten()
        .filter(|t| t.topic_id == arus_protocol::Uuid::ZERO)
        .filter_map(|t| t.name.clone())
        .filter(|n| validate_topic_name(n).is_ok() && broker.topics.get(n).is_none())
        .map(|name| AutoTopic {
            name,
            partitions: broker.config.num_partitions,
            replication_factor: broker.config.default_replication_factor,
            configs: BTreeMap::new(),
        })
        .collect()
}

/// The internal topic a FindCoordinator request needs, with Kafka's settings for it.
pub(crate) fn for_find_coordinator(
    broker: &Broker,
    request: &FindCoordinatorRequest,
    version: i16,
) -> Vec<AutoTopic> {
    let key_type = if version >= 1 { request.key_type } else { 0 };
    let (name, partitions, compression, rf_key) = match key_type {
        0 => (
            OFFSETS_TOPIC,
            broker.config.offsets_topic_num_partitions,
            "producer",
            "offsets.topic.replication.factor",
        ),
        1 => (
            TRANSACTION_STATE_TOPIC,
            broker.config.transaction_state_log_num_partitions,
            "uncompressed",
            "transaction.state.log.replication.factor",
        ),
        _ => return Vec::new(),
    };
    if broker.topics.get(name).is_some() {
        return Vec::new();
    }
    let mut configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("compression.type".to_string(), compression.to_string()),
        ("segment.bytes".to_string(), "104857600".to_string()),
    ]);
    // Kafka's replication settings for its internal topics (3 replicas by default; a cluster
    // with fewer brokers refuses the creation, INVALID_REPLICATION_FACTOR, and FindCoordinator
    // answers COORDINATOR_NOT_AVAILABLE until enough have registered). The implicit one-node
    // cluster (`arus serve` with no configuration) has exactly one broker, ever: one replica.
    let replication_factor = if broker.config.node.is_implicit() {
        1
    } else {
        broker
            .config
            .effective_i64(rf_key, 3)
            .clamp(1, i64::from(i16::MAX)) as i16
    };
    if key_type == 1 && !broker.config.node.is_implicit() {
        let min_isr = broker
            .config
            .effective_i64("transaction.state.log.min.isr", 2);
        configs.insert("min.insync.replicas".to_string(), min_isr.to_string());
    }
    vec![AutoTopic {
        name: name.to_string(),
        partitions,
        replication_factor,
        configs,
    }]
}
