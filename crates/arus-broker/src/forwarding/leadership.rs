//! UpdateFeatures, ElectLeaders, AlterPartitionReassignments and ListPartitionReassignments
//! in a cluster: forwarded whole (Kafka's broker checks nothing of them but authorization).
//! When the controller cannot be reached, the error fills the response as each request's
//! `getErrorResponse` does in Kafka.

use std::sync::Arc;

use arus_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use arus_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};
use arus_protocol::messages::update_features_response::UpdateFeaturesResponse;
use arus_protocol::messages::{
    AlterPartitionReassignmentsRequest, ElectLeadersRequest, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, UpdateFeaturesRequest,
};

use super::forward_as;
use crate::broker::Broker;
use crate::controller_channel::{ControllerChannel, ForwardError};

pub(super) async fn update_features(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: UpdateFeaturesRequest,
    version: i16,
) -> UpdateFeaturesResponse {
    let timeout = request.timeout_ms;
    let failed = |e: ForwardError| UpdateFeaturesResponse {
        error_code: e.code().code(),
        error_message: Some(e.to_string()),
        ..Default::default()
    };
    forward_as!(
        broker,
        channel,
        UpdateFeatures,
        request,
        version,
        Some(timeout)
    )
    .unwrap_or_else(failed)
}

pub(super) async fn elect_leaders(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let timeout = request.timeout_ms;
    let asked = request.topic_partitions.clone().unwrap_or_default();
    let failed = |e: ForwardError| ElectLeadersResponse {
        error_code: e.code().code(),
        replica_election_results: asked
            .iter()
            .map(|t| ReplicaElectionResult {
                topic: t.topic.clone(),
                partition_result: t
                    .partitions
                    .iter()
                    .map(|p| PartitionResult {
                        partition_id: *p,
                        error_code: e.code().code(),
                        error_message: Some(e.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    forward_as!(
        broker,
        channel,
        ElectLeaders,
        request,
        version,
        Some(timeout)
    )
    .unwrap_or_else(failed)
}

pub(super) async fn alter_reassignments(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let timeout = request.timeout_ms;
    let asked = request.topics.clone();
    let allow = request.allow_replication_factor_change;
    let failed = |e: ForwardError| AlterPartitionReassignmentsResponse {
        allow_replication_factor_change: allow,
        error_code: e.code().code(),
        error_message: Some(e.to_string()),
        responses: asked
            .iter()
            .map(|t| ReassignableTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| ReassignablePartitionResponse {
                        partition_index: p.partition_index,
                        error_code: e.code().code(),
                        error_message: Some(e.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    forward_as!(
        broker,
        channel,
        AlterPartitionReassignments,
        request,
        version,
        Some(timeout)
    )
    .unwrap_or_else(failed)
}

pub(super) async fn list_reassignments(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: ListPartitionReassignmentsRequest,
    version: i16,
) -> ListPartitionReassignmentsResponse {
    let timeout = request.timeout_ms;
    let failed = |e: ForwardError| ListPartitionReassignmentsResponse {
        error_code: e.code().code(),
        error_message: Some(e.to_string()),
        ..Default::default()
    };
    forward_as!(
        broker,
        channel,
        ListPartitionReassignments,
        request,
        version,
        Some(timeout)
    )
    .unwrap_or_else(failed)
}

/// DescribeQuorum: brokers forward it to the controller, as Kafka's brokers do; the
/// controller answers from the quorum it leads.
pub(super) async fn describe_quorum(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: arus_protocol::messages::DescribeQuorumRequest,
    version: i16,
) -> arus_protocol::messages::DescribeQuorumResponse {
    let failed = |e: ForwardError| arus_protocol::messages::DescribeQuorumResponse {
        error_code: e.code().code(),
        error_message: (version >= 2).then(|| e.to_string()),
        ..Default::default()
    };
    forward_as!(broker, channel, DescribeQuorum, request, version, None).unwrap_or_else(failed)
}

/// KIP-853's AddRaftVoter, forwarded as Kafka's `KafkaApis` does (`forwardToController`).
pub(super) async fn add_raft_voter(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: arus_protocol::messages::AddRaftVoterRequest,
    version: i16,
) -> arus_protocol::messages::AddRaftVoterResponse {
    let failed = |e: ForwardError| arus_protocol::messages::AddRaftVoterResponse {
        error_code: e.code().code(),
        error_message: Some(e.to_string()),
        ..Default::default()
    };
    let timeout = Some(request.timeout_ms);
    forward_as!(broker, channel, AddRaftVoter, request, version, timeout).unwrap_or_else(failed)
}

/// KIP-853's RemoveRaftVoter, forwarded like AddRaftVoter.
pub(super) async fn remove_raft_voter(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: arus_protocol::messages::RemoveRaftVoterRequest,
    version: i16,
) -> arus_protocol::messages::RemoveRaftVoterResponse {
    let failed = |e: ForwardError| arus_protocol::messages::RemoveRaftVoterResponse {
        error_code: e.code().code(),
        error_message: Some(e.to_string()),
        ..Default::default()
    };
    forward_as!(broker, channel, RemoveRaftVoter, request, version, None).unwrap_or_else(failed)
}
