//! ElectLeaders, AlterPartitionReassignments and ListPartitionReassignments on one node,
//! answered as Kafka's controller (`ReplicationControlManager`) answers them.
//!
//! With a single node every partition has exactly one replica, this node, which is also its
//! preferred leader and its leader. Hence:
//!
//! - a preferred or unclean election is never needed (ELECTION_NOT_NEEDED; when all
//!   partitions are asked for, Kafka leaves those out and lists each topic empty);
//! - the only valid reassignment target is `[this node]`, the current assignment, which
//!   Kafka accepts as a no-op change that completes at once; a target naming any other
//!   broker is INVALID_REPLICA_ASSIGNMENT "... no such broker is registered.";
//! - no reassignment is ever in progress: cancelling is NO_REASSIGNMENT_IN_PROGRESS and the
//!   list is empty.
//!
//! `AllowReplicationFactorChange = false` (v1) can never apply: a valid target always has the
//! current replication factor, 1.

use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use arus_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};
use arus_protocol::messages::{
    AlterPartitionReassignmentsRequest, ElectLeadersRequest, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
};
use tracing::info;

use crate::Broker;

/// Kafka's `Errors.ELECTION_NOT_NEEDED` message, sent with every such partition result.
const ELECTION_NOT_NEEDED_MESSAGE: &str = "Leader election not needed for topic partition.";

/// `ElectionType`: 0 preferred, 1 unclean.
fn known_election_type(t: i8) -> bool {
    t == 0 || t == 1
}

pub fn elect_leaders(broker: &Broker, request: ElectLeadersRequest) -> ElectLeadersResponse {
    if !known_election_type(request.election_type) {
        let message = format!("Unknown election type {}", request.election_type);
        info!(%message, "ElectLeaders refused");
        return ElectLeadersResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            replica_election_results: request
                .topic_partitions
                .unwrap_or_default()
                .into_iter()
                .map(|t| ReplicaElectionResult {
                    topic: t.topic,
                    partition_result: t
                        .partitions
                        .into_iter()
                        .map(|p| PartitionResult {
                            partition_id: p,
                            error_code: ErrorCode::InvalidRequest.code(),
                            error_message: Some(message.clone()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let results = match request.topic_partitions {
        // Every partition: those already led by their preferred leader are left out, which
        // on one node is all of them.
        None => broker
            .topics
            .all()
            .iter()
            .map(|t| ReplicaElectionResult {
                topic: t.name.clone(),
                partition_result: vec![],
                ..Default::default()
            })
            .collect(),
        Some(topics) => topics
            .into_iter()
            .map(|t| {
                let topic = broker.topics.get(&t.topic);
                let partition_result = t
                    .partitions
                    .iter()
                    .map(|&p| {
                        let (code, message) = match &topic {
                            None => (
                                ErrorCode::UnknownTopicOrPartition,
                                format!("No such topic as {}", t.topic),
                            ),
                            Some(topic) if !topic.has_partition(p) => (
                                ErrorCode::UnknownTopicOrPartition,
                                format!("No such partition as {}-{p}", t.topic),
                            ),
                            Some(_) => (
                                ErrorCode::ElectionNotNeeded,
                                ELECTION_NOT_NEEDED_MESSAGE.to_string(),
                            ),
                        };
                        PartitionResult {
                            partition_id: p,
                            error_code: code.code(),
                            error_message: Some(message),
                            ..Default::default()
                        }
                    })
                    .collect();
                ReplicaElectionResult {
                    topic: t.topic,
                    partition_result,
                    ..Default::default()
                }
            })
            .collect(),
    };
    ElectLeadersResponse {
        error_code: ErrorCode::None.code(),
        replica_election_results: results,
        ..Default::default()
    }
}

/// `ReplicationControlManager.validateManualPartitionAssignment` with this node as the
/// only registered broker.
fn validate_target(replicas: &[i32], node: i32) -> Result<(), String> {
    if replicas.is_empty() {
        return Err("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if id != node {
            return Err(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            ));
        }
        if previous == Some(id) {
            return Err(format!(
                "The manual partition assignment includes the broker {id} more than once."
            ));
        }
        previous = Some(id);
    }
    Ok(())
}

pub fn alter_reassignments(
    broker: &Broker,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let node = broker.node_id();
    // Kafka 4.4 leaves the top-level message "" when nothing was asked, null otherwise.
    let error_message = request.topics.is_empty().then(String::new);
    let responses = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topics.get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let index = p.partition_index;
                    let outcome = match (&topic, p.replicas) {
                        (None, _) => Err((
                            ErrorCode::UnknownTopicOrPartition,
                            Some(format!("Unable to find a topic named {}.", t.name)),
                        )),
                        (Some(topic), _) if !topic.has_partition(index) => Err((
                            ErrorCode::UnknownTopicOrPartition,
                            Some(format!("Unable to find partition {}:{index}.", t.name)),
                        )),
                        // Kafka sends no message when it is the code's default one.
                        (Some(_), None) => Err((ErrorCode::NoReassignmentInProgress, None)),
                        (Some(_), Some(replicas)) => validate_target(&replicas, node)
                            .map_err(|m| (ErrorCode::InvalidReplicaAssignment, Some(m))),
                    };
                    let (code, message) = match outcome {
                        Ok(()) => (ErrorCode::None, None),
                        Err((code, message)) => {
                            info!(topic = %t.name, partition = index, code = code.name(), ?message,
                                "partition reassignment refused");
                            (code, message)
                        }
                    };
                    ReassignablePartitionResponse {
                        partition_index: index,
                        error_code: code.code(),
                        error_message: message,
                        ..Default::default()
                    }
                })
                .collect();
            ReassignableTopicResponse {
                name: t.name,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    AlterPartitionReassignmentsResponse {
        allow_replication_factor_change: request.allow_replication_factor_change,
        error_code: ErrorCode::None.code(),
        error_message,
        responses,
        ..Default::default()
    }
}

/// Nothing is ever being reassigned on one node (an accepted target completes at once).
pub fn list_reassignments(
    _request: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse {
        error_code: ErrorCode::None.code(),
        error_message: None,
        topics: vec![],
        ..Default::default()
    }
}
