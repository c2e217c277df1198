//! The controller's side of each forwarded or controller-only request (Kafka's
//! `ControllerApis`): a Kafka request in, the controller's records and the Kafka response
//! out. The decisions and their error codes and messages are `arus_controller`'s; this
//! module only translates between the wire types and the controller's results.

use arus_controller::{ConfigValidator, Controller, ControllerError, TopicIdSource};
use arus_metadata::MetadataRecord;
use arus_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse as LegacyResourceResponse, AlterConfigsResponse,
};
use arus_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use arus_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use arus_protocol::messages::create_topics_response::{CreatableTopicResult, CreateTopicsResponse};
use arus_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use arus_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};
use arus_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use arus_protocol::messages::list_partition_reassignments_response::ListPartitionReassignmentsResponse;
use arus_protocol::messages::update_features_response::{
    UpdatableFeatureResult, UpdateFeaturesResponse,
};
use arus_protocol::messages::{
    AllocateProducerIdsResponse, BrokerHeartbeatResponse, BrokerRegistrationResponse,
    UnregisterBrokerResponse,
};
use arus_protocol::{ErrorCode, Request, Response, Uuid};

use crate::controller_driver::ControllerRequestError;

type Decided = Result<(Vec<MetadataRecord>, Response), ControllerRequestError>;

fn error_parts(e: &ControllerError) -> (i16, Option<String>) {
    (e.code.code(), e.message.clone())
}

/// A per-item result as the response's error code and message.
fn result_parts(result: &Result<(), ControllerError>) -> (i16, Option<String>) {
    match result {
        Ok(()) => (0, None),
        Err(e) => error_parts(e),
    }
}

/// Decides `request` (at `version`). `next_offset` is the log index the records will get;
/// `now_ms` the controller's clock.
pub fn decide(
    controller: &mut Controller,
    request: Request,
    version: i16,
    next_offset: i64,
    now_ms: i64,
    ids: &mut dyn TopicIdSource,
    validator: &dyn ConfigValidator,
) -> Decided {
    match request {
        Request::CreateTopics(r) => Ok(match controller.create_topics(&r, ids, validator) {
            Ok(outcome) => {
                let topics = outcome
                    .response
                    .into_iter()
                    .map(|(name, result)| match result {
                        Ok(created) => CreatableTopicResult {
                            name,
                            topic_id: created.topic_id,
                            num_partitions: created.num_partitions,
                            replication_factor: created.replication_factor,
                            ..Default::default()
                        },
                        Err(e) => CreatableTopicResult {
                            name,
                            error_code: e.code.code(),
                            error_message: e.message,
                            num_partitions: -1,
                            replication_factor: -1,
                            ..Default::default()
                        },
                    })
                    .collect();
                (
                    outcome.records,
                    Response::CreateTopics(CreateTopicsResponse {
                        topics,
                        ..Default::default()
                    }),
                )
            }
            Err(e) => {
                // A request-level refusal applies to every topic.
                let topics = r
                    .topics
                    .iter()
                    .map(|t| CreatableTopicResult {
                        name: t.name.clone(),
                        error_code: e.code.code(),
                        error_message: e.message.clone(),
                        num_partitions: -1,
                        replication_factor: -1,
                        ..Default::default()
                    })
                    .collect();
                (
                    Vec::new(),
                    Response::CreateTopics(CreateTopicsResponse {
                        topics,
                        ..Default::default()
                    }),
                )
            }
        }),
        Request::DeleteTopics(r) => {
            let outcome = controller.delete_topics(&r);
            let responses = outcome
                .response
                .into_iter()
                .map(|(name, topic_id, result)| {
                    let (error_code, error_message) = result_parts(&result);
                    DeletableTopicResult {
                        name,
                        topic_id,
                        error_code,
                        error_message,
                        ..Default::default()
                    }
                })
                .collect();
            Ok((
                outcome.records,
                Response::DeleteTopics(DeleteTopicsResponse {
                    responses,
                    ..Default::default()
                }),
            ))
        }
        Request::CreatePartitions(r) => {
            let (records, results) = match controller.create_partitions(&r) {
                Ok(outcome) => (outcome.records, outcome.response),
                // A request-level refusal applies to every topic.
                Err(e) => (
                    Vec::new(),
                    r.topics
                        .iter()
                        .map(|t| (t.name.clone(), Err(e.clone())))
                        .collect(),
                ),
            };
            let results = results
                .into_iter()
                .map(|(name, result)| {
                    let (error_code, error_message) = result_parts(&result);
                    CreatePartitionsTopicResult {
                        name,
                        error_code,
                        error_message,
                        ..Default::default()
                    }
                })
                .collect();
            Ok((
                records,
                Response::CreatePartitions(CreatePartitionsResponse {
                    results,
                    ..Default::default()
                }),
            ))
        }
        Request::IncrementalAlterConfigs(r) => {
            let outcome = controller.incremental_alter_configs(&r, validator);
            let responses = outcome
                .response
                .into_iter()
                .map(|(resource, result)| {
                    let (error_code, error_message) = result_parts(&result);
                    AlterConfigsResourceResponse {
                        error_code,
                        error_message,
                        resource_type: resource.resource_type,
                        resource_name: resource.name,
                        ..Default::default()
                    }
                })
                .collect();
            Ok((
                outcome.records,
                Response::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
                    responses,
                    ..Default::default()
                }),
            ))
        }
        Request::AlterConfigs(r) => {
            let outcome = controller.alter_configs(&r, validator);
            let responses = outcome
                .response
                .into_iter()
                .map(|(resource, result)| {
                    let (error_code, error_message) = result_parts(&result);
                    LegacyResourceResponse {
                        error_code,
                        error_message,
                        resource_type: resource.resource_type,
                        resource_name: resource.name,
                        ..Default::default()
                    }
                })
                .collect();
            Ok((
                outcome.records,
                Response::AlterConfigs(AlterConfigsResponse {
                    responses,
                    ..Default::default()
                }),
            ))
        }
        Request::ElectLeaders(r) => Ok(match controller.elect_leaders(&r) {
            Ok(outcome) => {
                let results = outcome
                    .response
                    .into_iter()
                    .map(|(topic, partitions)| ReplicaElectionResult {
                        topic,
                        partition_result: partitions
                            .into_iter()
                            .map(|(partition_id, result)| {
                                let (error_code, error_message) = result_parts(&result);
                                PartitionResult {
                                    partition_id,
                                    error_code,
                                    error_message,
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect();
                (
                    outcome.records,
                    Response::ElectLeaders(ElectLeadersResponse {
                        replica_election_results: results,
                        ..Default::default()
                    }),
                )
            }
            Err(e) => (
                Vec::new(),
                Response::ElectLeaders(ElectLeadersResponse {
                    error_code: e.code.code(),
                    ..Default::default()
                }),
            ),
        }),
        // From a partition leader changing its ISR; a refused request as a whole (a stale
        // broker epoch) is its top-level error, per-partition refusals are in the response.
        Request::AlterPartition(r) => Ok(match controller.alter_partition(&r, version) {
            Ok(outcome) => (outcome.records, Response::AlterPartition(outcome.response)),
            Err(e) => (
                Vec::new(),
                Response::AlterPartition(arus_protocol::messages::AlterPartitionResponse {
                    error_code: e.code.code(),
                    ..Default::default()
                }),
            ),
        }),
        Request::UpdateFeatures(r) => Ok(match controller.update_features(&r, version) {
            Ok(outcome) => (
                outcome.records,
                Response::UpdateFeatures(UpdateFeaturesResponse {
                    // Per-feature results on success for v0 and v1 only, as Kafka 4.4.
                    results: if version <= 1 {
                        r.feature_updates
                            .iter()
                            .map(|u| UpdatableFeatureResult {
                                feature: u.feature.clone(),
                                error_code: 0,
                                error_message: Some("NONE".into()),
                                ..Default::default()
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                }),
            ),
            Err(e) => (
                Vec::new(),
                Response::UpdateFeatures(UpdateFeaturesResponse {
                    error_code: e.code.code(),
                    error_message: Some(format!(
                        "The update failed for all features since the following feature had an error: {}",
                        e.message.unwrap_or_default()
                    )),
                    ..Default::default()
                }),
            ),
        }),
        Request::BrokerRegistration(r) => {
            Ok(match controller.register_broker(&r, next_offset, now_ms) {
                Ok(outcome) => (
                    outcome.records,
                    Response::BrokerRegistration(BrokerRegistrationResponse {
                        broker_epoch: outcome.response,
                        ..Default::default()
                    }),
                ),
                Err(e) => (
                    Vec::new(),
                    Response::BrokerRegistration(BrokerRegistrationResponse {
                        error_code: e.code.code(),
                        broker_epoch: -1,
                        ..Default::default()
                    }),
                ),
            })
        }
        Request::BrokerHeartbeat(r) => {
            Ok(match controller.broker_heartbeat(&r, next_offset, now_ms) {
                Ok(outcome) => (
                    outcome.records,
                    Response::BrokerHeartbeat(BrokerHeartbeatResponse {
                        is_caught_up: outcome.response.is_caught_up,
                        is_fenced: outcome.response.is_fenced,
                        should_shut_down: outcome.response.should_shut_down,
                        ..Default::default()
                    }),
                ),
                Err(e) => (
                    Vec::new(),
                    Response::BrokerHeartbeat(BrokerHeartbeatResponse {
                        error_code: e.code.code(),
                        is_fenced: true,
                        ..Default::default()
                    }),
                ),
            })
        }
        Request::AllocateProducerIds(r) => Ok(
            match controller.allocate_producer_ids(r.broker_id, r.broker_epoch) {
                Ok(outcome) => (
                    outcome.records,
                    Response::AllocateProducerIds(AllocateProducerIdsResponse {
                        producer_id_start: outcome.response.first_producer_id,
                        producer_id_len: outcome.response.size,
                        ..Default::default()
                    }),
                ),
                Err(e) => (
                    Vec::new(),
                    Response::AllocateProducerIds(AllocateProducerIdsResponse {
                        error_code: e.code.code(),
                        producer_id_start: -1,
                        producer_id_len: 0,
                        ..Default::default()
                    }),
                ),
            },
        ),
        Request::UnregisterBroker(r) => Ok(match controller.unregister_broker(r.broker_id) {
            Ok(outcome) => (
                outcome.records,
                Response::UnregisterBroker(UnregisterBrokerResponse::default()),
            ),
            Err(e) => (
                Vec::new(),
                Response::UnregisterBroker(UnregisterBrokerResponse {
                    error_code: e.code.code(),
                    error_message: e.message,
                    ..Default::default()
                }),
            ),
        }),
        // Kafka answers with a null message (`setErrorMessage(null)`).
        Request::ListPartitionReassignments(r) => Ok((
            Vec::new(),
            Response::ListPartitionReassignments(ListPartitionReassignmentsResponse {
                error_message: None,
                topics: controller.list_partition_reassignments(r.topics.as_deref()),
                ..Default::default()
            }),
        )),
        Request::AlterPartitionReassignments(r) => {
            let outcome = controller.alter_partition_reassignments(&r);
            let responses = outcome
                .response
                .into_iter()
                .map(|(name, partitions)| ReassignableTopicResponse {
                    name,
                    partitions: partitions
                        .into_iter()
                        .map(|(partition_index, result)| {
                            let (error_code, error_message) = result_parts(&result);
                            ReassignablePartitionResponse {
                                partition_index,
                                error_code,
                                error_message,
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect();
            Ok((
                outcome.records,
                Response::AlterPartitionReassignments(AlterPartitionReassignmentsResponse {
                    allow_replication_factor_change: r.allow_replication_factor_change,
                    // Kafka 4.4 leaves the top-level message "" when nothing was asked.
                    error_message: r.topics.is_empty().then(String::new),
                    responses,
                    ..Default::default()
                }),
            ))
        }
        other => Err(ControllerRequestError::Unsupported(
            other.api_key().name().to_string(),
        )),
    }
}

/// An id that no topic may have (Kafka's zero id), for requests that failed before one
/// was chosen.
pub const NO_TOPIC_ID: Uuid = Uuid::ZERO;

/// The error code for a request this controller cannot serve.
pub fn unsupported_code() -> ErrorCode {
    ErrorCode::UnsupportedVersion
}
