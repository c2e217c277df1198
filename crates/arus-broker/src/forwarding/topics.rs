//! CreateTopics, DeleteTopics and CreatePartitions in a cluster. The request-level checks
//! Kafka's `ControllerApis` makes around the controller (duplicate names, the metadata
//! topic, `delete.topic.enable`, name-or-id) are made here, so that only well-formed
//! entries travel; the controller decides the rest.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arus_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use arus_protocol::messages::create_topics_response::{CreatableTopicResult, CreateTopicsResponse};
use arus_protocol::messages::delete_topics_request::DeleteTopicState;
use arus_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use arus_protocol::messages::{CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest};
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use tracing::info;

use super::{forward, unexpected};
use crate::broker::Broker;
use crate::controller_channel::{ControllerChannel, ForwardError};

/// Kafka's `Topic.CLUSTER_METADATA_TOPIC_NAME`.
pub const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// Items that appear more than once, in order of their first repetition.
fn duplicates<T: Eq + std::hash::Hash + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    let mut twice: Vec<T> = Vec::new();
    for n in items {
        if !seen.insert(n.clone()) && !twice.contains(&n) {
            twice.push(n);
        }
    }
    twice
}

pub(super) async fn create_topics(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    mut request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let duplicate = duplicates(request.topics.iter().map(|t| t.name.clone()));
    let metadata_topic = request
        .topics
        .iter()
        .any(|t| t.name == CLUSTER_METADATA_TOPIC && !duplicate.contains(&t.name));
    request
        .topics
        .retain(|t| !duplicate.contains(&t.name) && t.name != CLUSTER_METADATA_TOPIC);
    // The configs each topic asked for, to describe them if the controller did not.
    let overrides: BTreeMap<String, BTreeMap<String, String>> = request
        .topics
        .iter()
        .map(|t| {
            let configs = t
                .configs
                .iter()
                .filter_map(|c| c.value.clone().map(|v| (c.name.clone(), v)))
                .collect();
            (t.name.clone(), configs)
        })
        .collect();
    let names: Vec<String> = request.topics.iter().map(|t| t.name.clone()).collect();
    let mut response = if request.topics.is_empty() {
        CreateTopicsResponse::default()
    } else {
        let timeout = request.timeout_ms;
        match forward(
            broker,
            channel,
            Request::CreateTopics(request),
            version,
            Some(timeout),
        )
        .await
        {
            Ok(Response::CreateTopics(r)) => r,
            Ok(other) => failed_creation(&names, &unexpected("CreateTopics", &other)),
            Err(e) => failed_creation(&names, &e),
        }
    };
    for t in response.topics.iter_mut() {
        let undescribed = t.configs.as_ref().is_none_or(Vec::is_empty);
        if version >= 5 && t.error_code == ErrorCode::None.code() && undescribed {
            let asked = overrides.get(&t.name).cloned().unwrap_or_default();
            t.configs = Some(crate::handlers::topics_admin::described_configs(
                broker, asked,
            ));
        }
    }
    for name in duplicate {
        response
            .topics
            .push(refused_creation(name, "Duplicate topic name.".into()));
    }
    if metadata_topic {
        info!("refused to create the internal topic {CLUSTER_METADATA_TOPIC}");
        response.topics.push(refused_creation(
            CLUSTER_METADATA_TOPIC.into(),
            format!("Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited."),
        ));
    }
    response
}

fn refused_creation(name: String, message: String) -> CreatableTopicResult {
    CreatableTopicResult {
        name,
        error_code: ErrorCode::InvalidRequest.code(),
        error_message: Some(message),
        num_partitions: -1,
        replication_factor: -1,
        ..Default::default()
    }
}

fn failed_creation(names: &[String], e: &ForwardError) -> CreateTopicsResponse {
    CreateTopicsResponse {
        topics: names
            .iter()
            .map(|name| CreatableTopicResult {
                name: name.clone(),
                error_code: e.code().code(),
                error_message: Some(e.to_string()),
                num_partitions: -1,
                replication_factor: -1,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(super) async fn delete_topics(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // v0-5 name topics in `topic_names`; v6 in `topics`, by name or by id.
    let targets: Vec<DeleteTopicState> = if version >= 6 {
        request.topics.clone()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| DeleteTopicState {
                name: Some(n.clone()),
                topic_id: Uuid::ZERO,
                ..Default::default()
            })
            .collect()
    };
    if !broker.config.delete_topic_enable {
        // `ControllerApis.deleteTopics` throws, and the whole request gets the error.
        let code = if version < 3 {
            ErrorCode::InvalidRequest
        } else {
            ErrorCode::TopicDeletionDisabled
        };
        info!("topic deletion refused: delete.topic.enable is false");
        return DeleteTopicsResponse {
            responses: targets
                .into_iter()
                .map(|t| DeletableTopicResult {
                    name: t.name,
                    topic_id: t.topic_id,
                    error_code: code.code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let mut refused = Vec::new();
    let refuse = |name: Option<String>, id: Uuid, message: &str| DeletableTopicResult {
        name,
        topic_id: id,
        error_code: ErrorCode::InvalidRequest.code(),
        error_message: Some(message.to_string()),
        ..Default::default()
    };
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for t in &targets {
        match (&t.name, t.topic_id == Uuid::ZERO) {
            (None, true) => refused.push(refuse(
                None,
                Uuid::ZERO,
                "Neither topic name nor id were specified.",
            )),
            (None, false) => ids.push(t.topic_id),
            (Some(n), true) => names.push(n.clone()),
            (Some(n), false) => refused.push(refuse(
                Some(n.clone()),
                t.topic_id,
                "You may not specify both topic name and topic id.",
            )),
        }
    }
    let duplicate_names = duplicates(names.into_iter());
    let duplicate_ids = duplicates(ids.into_iter());
    for n in &duplicate_names {
        refused.push(refuse(Some(n.clone()), Uuid::ZERO, "Duplicate topic name."));
    }
    for id in &duplicate_ids {
        refused.push(refuse(None, *id, "Duplicate topic id."));
    }
    let keep: Vec<DeleteTopicState> = targets
        .into_iter()
        .filter(|t| match (&t.name, t.topic_id == Uuid::ZERO) {
            (Some(n), true) => !duplicate_names.contains(n),
            (None, false) => !duplicate_ids.contains(&t.topic_id),
            _ => false,
        })
        .collect();
    let mut responses = refused;
    if !keep.is_empty() {
        let timeout = request.timeout_ms;
        let forwarded = if version >= 6 {
            DeleteTopicsRequest {
                topics: keep.clone(),
                topic_names: Vec::new(),
                timeout_ms: timeout,
                ..Default::default()
            }
        } else {
            DeleteTopicsRequest {
                topics: Vec::new(),
                topic_names: keep.iter().filter_map(|t| t.name.clone()).collect(),
                timeout_ms: timeout,
                ..Default::default()
            }
        };
        let failed = |e: ForwardError| -> Vec<DeletableTopicResult> {
            keep.iter()
                .map(|t| DeletableTopicResult {
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    error_code: e.code().code(),
                    error_message: Some(e.to_string()),
                    ..Default::default()
                })
                .collect()
        };
        match forward(
            broker,
            channel,
            Request::DeleteTopics(forwarded),
            version,
            Some(timeout),
        )
        .await
        {
            Ok(Response::DeleteTopics(r)) => responses.extend(r.responses),
            Ok(other) => responses.extend(failed(unexpected("DeleteTopics", &other))),
            Err(e) => responses.extend(failed(e)),
        }
    }
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

pub(super) async fn create_partitions(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    mut request: CreatePartitionsRequest,
    version: i16,
) -> CreatePartitionsResponse {
    let duplicate = duplicates(request.topics.iter().map(|t| t.name.clone()));
    request.topics.retain(|t| !duplicate.contains(&t.name));
    let mut results: Vec<CreatePartitionsTopicResult> = duplicate
        .into_iter()
        .map(|name| CreatePartitionsTopicResult {
            name,
            error_code: ErrorCode::InvalidRequest.code(),
            error_message: Some("Duplicate topic name.".into()),
            ..Default::default()
        })
        .collect();
    if !request.topics.is_empty() {
        let names: Vec<String> = request.topics.iter().map(|t| t.name.clone()).collect();
        let failed = |e: ForwardError| -> Vec<CreatePartitionsTopicResult> {
            names
                .iter()
                .map(|name| CreatePartitionsTopicResult {
                    name: name.clone(),
                    error_code: e.code().code(),
                    error_message: Some(e.to_string()),
                    ..Default::default()
                })
                .collect()
        };
        let timeout = request.timeout_ms;
        match forward(
            broker,
            channel,
            Request::CreatePartitions(request),
            version,
            Some(timeout),
        )
        .await
        {
            Ok(Response::CreatePartitions(r)) => results.extend(r.results),
            Ok(other) => results.extend(failed(unexpected("CreatePartitions", &other))),
            Err(e) => results.extend(failed(e)),
        }
    }
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}
