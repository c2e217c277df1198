//! The KIP-848 consumer group protocol: ConsumerGroupHeartbeat and ConsumerGroupDescribe.
//! The rules live in `arus_group::consumer_group`; these handlers add what Kafka's
//! `GroupMetadataManager` does around them: the shared group-id namespace with classic
//! groups, and the answer released only once the records are fsynced.

use std::sync::Arc;

use arus_group::consumer_group::{GroupError, HeartbeatContext};
use arus_protocol::ErrorCode;
use arus_protocol::messages::consumer_group_describe_response::DescribedGroup;
use arus_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use tracing::warn;

use crate::Broker;
use crate::groups::RegistryMetadata;

/// Kafka's `AclEntry.supportedOperations(GROUP)` without an authorizer: READ, DELETE,
/// DESCRIBE.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

fn error(code: ErrorCode, message: Option<String>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        error_code: code.code(),
        error_message: message,
        ..Default::default()
    }
}

/// Kafka's `isConsumerGroupProtocolEnabled`: KIP-848 groups need `group.version` 1.
fn consumer_protocol_enabled(broker: &Broker) -> bool {
    broker.features.level(crate::features::GROUP_VERSION) >= 1
}

/// The message of Kafka's `UnsupportedVersionException` for `Errors.UNSUPPORTED_VERSION`.
const UNSUPPORTED_VERSION_MESSAGE: &str = "The version of API is not supported.";

/// KIP-848 responses carry the exception's message: Kafka's coordinator runtime throws
/// NOT_COORDINATOR with its default one (loading is answered without a message, as at
/// start-up).
fn not_coordinator_message(code: ErrorCode) -> Option<String> {
    (code == ErrorCode::NotCoordinator).then(|| "This is not the correct coordinator.".to_string())
}

pub async fn heartbeat(
    broker: &Arc<Broker>,
    r: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> ConsumerGroupHeartbeatResponse {
    if !consumer_protocol_enabled(broker) {
        tracing::debug!(group_id = %r.group_id, "ConsumerGroupHeartbeat refused: group.version is 0");
        return error(
            ErrorCode::UnsupportedVersion,
            Some(UNSUPPORTED_VERSION_MESSAGE.into()),
        );
    }
    let driver = broker.groups.clone();
    if let Some(code) = driver.coordinator_error(broker, &r.group_id) {
        return error(code, not_coordinator_message(code));
    }
    let ctx = HeartbeatContext {
        client_id,
        client_host,
        api_version: version,
    };
    let (result, after) = driver.locked_groups(broker, |g, now| {
        let gid = r.group_id.as_str();
        // Shared namespace: a classic group with members keeps its id; an empty one is
        // deleted (its offsets stay) when a consumer group takes the id (Kafka's
        // `getOrMaybeCreateConsumerGroup` + `maybeDeleteEmptyClassicGroup`). Mixed groups
        // (online upgrade) are not supported.
        let classic = !g.consumer.contains(gid) && g.classic.group_state(gid).is_some();
        if classic && !g.classic.is_empty_group(gid) {
            return Err(GroupError {
                code: ErrorCode::GroupIdNotFound,
                message: format!("Group {gid} is not a consumer group."),
            });
        }
        let metadata = RegistryMetadata(&broker.topics);
        let (resp, records) = g.consumer.heartbeat(now, &ctx, &r, &metadata)?;
        if classic {
            g.classic.remove_empty_group_metadata(gid, now);
        }
        g.records.extend(records);
        Ok(resp)
    });
    let persisted = driver.finish(broker, after).await;
    match (result, persisted) {
        (Err(e), _) => e.to_heartbeat_response(),
        (Ok(_), Err(e)) => {
            warn!(error = %e, "consumer group records not persisted");
            error(e.code(), Some(e.to_string()))
        }
        (Ok(resp), Ok(())) => resp,
    }
}

pub fn describe(
    broker: &Arc<Broker>,
    r: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let driver = &broker.groups;
    let ops = if r.include_authorized_operations {
        GROUP_OPERATIONS
    } else {
        i32::MIN
    };
    if !consumer_protocol_enabled(broker) {
        return ConsumerGroupDescribeResponse {
            groups: r
                .group_ids
                .into_iter()
                .map(|group_id| DescribedGroup {
                    error_code: ErrorCode::UnsupportedVersion.code(),
                    error_message: Some(UNSUPPORTED_VERSION_MESSAGE.into()),
                    group_id,
                    authorized_operations: i32::MIN,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    if !driver.is_loaded() {
        return ConsumerGroupDescribeResponse {
            groups: r
                .group_ids
                .into_iter()
                .map(|group_id| DescribedGroup {
                    error_code: ErrorCode::CoordinatorLoadInProgress.code(),
                    group_id,
                    authorized_operations: i32::MIN,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let metadata = RegistryMetadata(&broker.topics);
    let mut resp = driver.read_groups(|classic, consumer| {
        let mut resp = consumer.describe(&r.group_ids, &metadata);
        for g in &mut resp.groups {
            if g.error_code == ErrorCode::GroupIdNotFound.code()
                && classic.group_state(&g.group_id).is_some()
            {
                g.error_message = Some(format!("Group {} is not a consumer group.", g.group_id));
            }
        }
        resp
    });
    for g in &mut resp.groups {
        // A group whose partition another node leads is not this node's to describe.
        if let Some(code) = driver.coordinator_error(broker, &g.group_id) {
            *g = DescribedGroup {
                error_code: code.code(),
                error_message: not_coordinator_message(code),
                group_id: std::mem::take(&mut g.group_id),
                authorized_operations: i32::MIN,
                ..Default::default()
            };
        }
        if g.error_code == 0 {
            g.authorized_operations = ops;
        }
    }
    resp
}
