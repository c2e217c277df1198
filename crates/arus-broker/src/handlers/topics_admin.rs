//! CreateTopics, DeleteTopics and CreatePartitions, with Kafka's validation and messages.

use std::collections::{BTreeMap, HashMap};

use arus_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use arus_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use arus_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use arus_protocol::messages::{CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest};
use arus_protocol::{ErrorCode, Uuid};

use crate::broker::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::topic_settings::TopicSettings;
use crate::topics::{NewTopic, TopicError};
use crate::txn::TRANSACTION_STATE_TOPIC;

fn failed(name: String, code: ErrorCode, message: String) -> CreatableTopicResult {
    CreatableTopicResult {
        name,
        error_code: code.code(),
        error_message: Some(message),
        num_partitions: -1,
        replication_factor: -1,
        configs: None,
        ..Default::default()
    }
}

/// A new topic's configs as CreateTopics v5+ reports them: `overrides` resolved against the
/// broker's defaults.
pub(crate) fn described_configs(
    broker: &Broker,
    overrides: BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    TopicSettings::resolve(&broker.config, overrides)
        .describe(&broker.config)
        .into_iter()
        .map(|d| CreatableTopicConfigs {
            name: d.name.to_string(),
            value: Some(d.value),
            read_only: false,
            config_source: d.source as i8,
            is_sensitive: false,
            ..Default::default()
        })
        .collect()
}

pub fn create_topics(
    broker: &Broker,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *counts.entry(t.name.as_str()).or_default() += 1;
    }
    let duplicates: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k.to_string())
        .collect();
    let node = broker.node_id();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        if duplicates.contains(&t.name) {
            results.push(failed(
                t.name.clone(),
                ErrorCode::InvalidRequest,
                format!(
                    "Create topics request contains multiple entries for the topic {}",
                    t.name
                ),
            ));
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut null_config = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.clone(), v.clone());
                }
                None => null_config = Some(c.name.clone()),
            }
        }
        if let Some(key) = null_config {
            results.push(failed(
                t.name.clone(),
                ErrorCode::InvalidConfig,
                format!("Null value not supported for topic configs: {key}"),
            ));
            continue;
        }
        let (partitions, replication_factor) = if t.assignments.is_empty() {
            (
                if t.num_partitions == -1 {
                    broker.config.num_partitions
                } else {
                    t.num_partitions
                },
                if t.replication_factor == -1 {
                    broker.config.default_replication_factor
                } else {
                    t.replication_factor
                },
            )
        } else {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                results.push(failed(
                    t.name.clone(),
                    ErrorCode::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
                continue;
            }
            let mut sorted: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
            sorted.sort_unstable();
            let contiguous = sorted.iter().enumerate().all(|(i, p)| *p == i as i32);
            let bad_broker = t
                .assignments
                .iter()
                .find(|a| a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| *b != node));
            if !contiguous || bad_broker.is_some() {
                results.push(failed(
                    t.name.clone(),
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Replica assignments must name partitions 0..n and only broker {node}."
                    ),
                ));
                continue;
            }
            let rf = t.assignments[0].broker_ids.len() as i16;
            (t.assignments.len() as i32, rf)
        };
        let new = NewTopic {
            name: t.name.clone(),
            partitions,
            replication_factor,
            configs,
        };
        let outcome = if request.validate_only {
            broker.topics.validate_new(&new).map(|_| None)
        } else {
            broker.topics.create(new.clone()).map(Some)
        };
        match outcome {
            Ok(created) => {
                let described = (version >= 5).then(|| described_configs(broker, new.configs));
                results.push(CreatableTopicResult {
                    name: t.name.clone(),
                    topic_id: created.map(|c| c.id).unwrap_or(Uuid::ZERO),
                    error_code: ErrorCode::None.code(),
                    error_message: None,
                    num_partitions: partitions,
                    replication_factor,
                    configs: described,
                    ..Default::default()
                });
            }
            Err(e) => results.push(failed(t.name.clone(), e.code(), e.to_string())),
        }
    }
    CreateTopicsResponse {
        topics: results,
        ..Default::default()
    }
}

pub fn delete_topics(
    broker: &Broker,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // v0-5 name topics in `topic_names`; v6 in `topics`, by name or by id.
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::ZERO))
            .collect()
    };
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let resolved = match (&name, id) {
                (Some(n), _) => broker
                    .topics
                    .get(n)
                    .ok_or(ErrorCode::UnknownTopicOrPartition),
                (None, id) => broker
                    .topics
                    .get_by_id(&id)
                    .ok_or(ErrorCode::UnknownTopicId),
            };
            // Internal topics may be deleted, as in Kafka 4 (KRaft): the coordinator whose
            // log it was forgets what it held, and the topic is created again on next use.
            let result = resolved.and_then(|t| {
                broker
                    .topics
                    .delete(&t.name)
                    .map(|_| t)
                    .map_err(|e| e.code())
            });
            if let Ok(t) = &result {
                match t.name.as_str() {
                    OFFSETS_TOPIC => broker.groups.offsets_topic_deleted(broker),
                    TRANSACTION_STATE_TOPIC => broker.txns.transaction_topic_deleted(broker),
                    _ => {}
                }
            }
            match result {
                Ok(t) => DeletableTopicResult {
                    name: Some(t.name.clone()),
                    topic_id: t.id,
                    error_code: ErrorCode::None.code(),
                    ..Default::default()
                },
                Err(code) => DeletableTopicResult {
                    name: name.clone(),
                    topic_id: id,
                    error_code: code.code(),
                    error_message: Some(match code {
                        ErrorCode::UnknownTopicOrPartition => {
                            "This server does not host this topic-partition.".to_string()
                        }
                        ErrorCode::UnknownTopicId => {
                            "This server does not host this topic ID.".into()
                        }
                        other => other.name().to_string(),
                    }),
                    ..Default::default()
                },
            }
        })
        .collect();
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

pub fn create_partitions(
    broker: &Broker,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let node = broker.node_id();
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let result = (|| {
                let topic = broker.topics.get(&t.name).ok_or(TopicError::Unknown)?;
                if let Some(assignments) = &t.assignments {
                    let added = (t.count - topic.partition_count()).max(0) as usize;
                    if assignments.len() != added
                        || assignments
                            .iter()
                            .any(|a| a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| *b != node))
                    {
                        return Err(TopicError::InvalidReplicaAssignment(format!(
                            "Replica assignments must list one entry per new partition, naming only broker {node}."
                        )));
                    }
                }
                broker.topics.add_partitions(&t.name, t.count, request.validate_only)
            })();
            match result {
                Ok(()) => CreatePartitionsTopicResult {
                    name: t.name,
                    error_code: ErrorCode::None.code(),
                    error_message: None,
                    ..Default::default()
                },
                Err(e) => CreatePartitionsTopicResult {
                    name: t.name,
                    error_code: e.code().code(),
                    error_message: Some(e.to_string()),
                    ..Default::default()
                },
            }
        })
        .collect();
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}
