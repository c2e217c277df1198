//! Classic group membership and administration: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, DescribeGroups, ListGroups, DeleteGroups. The rules live in `arus-group`;
//! these handlers normalise each request version, call the coordinator through the driver,
//! and shape the answer for the version asked (fields a version lacks are cleared).

use std::sync::Arc;

use arus_group::{JoinParams, SyncParams};
use arus_protocol::ErrorCode;
use arus_protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};
use arus_protocol::messages::describe_groups_response::{DescribeGroupsResponse, DescribedGroup};
use arus_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use arus_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use arus_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, SyncGroupRequest,
    SyncGroupResponse,
};
use tracing::warn;

use crate::Broker;
use crate::cluster::coordinators::{self, Coordinator};

/// Kafka's `AclEntry.supportedOperations(GROUP)` without an authorizer: READ, DELETE,
/// DESCRIBE (bit positions are `AclOperation` codes).
fn group_authorized_operations(requested: bool) -> i32 {
    if requested {
        (1 << 3) | (1 << 6) | (1 << 8)
    } else {
        i32::MIN
    }
}

fn shape_join(mut r: JoinGroupResponse, version: i16) -> JoinGroupResponse {
    if version < 7 {
        r.protocol_type = None;
        if r.protocol_name.is_none() {
            r.protocol_name = Some(String::new());
        }
    }
    if version < 9 {
        r.skip_assignment = false;
    }
    r
}

fn join_failed(code: ErrorCode, member_id: &str, version: i16) -> JoinGroupResponse {
    shape_join(
        JoinGroupResponse {
            error_code: code.code(),
            generation_id: -1,
            protocol_name: None,
            member_id: member_id.to_string(),
            ..Default::default()
        },
        version,
    )
}

pub async fn join_group(
    broker: &Arc<Broker>,
    r: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let driver = broker.groups.clone();
    if let Some(code) = driver.coordinator_error(broker, &r.group_id) {
        return join_failed(code, &r.member_id, version);
    }
    let params = JoinParams {
        group_id: r.group_id,
        member_id: r.member_id,
        group_instance_id: if version >= 5 {
            r.group_instance_id
        } else {
            None
        },
        session_timeout_ms: r.session_timeout_ms,
        // v0 had no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            r.rebalance_timeout_ms
        } else {
            r.session_timeout_ms
        },
        protocol_type: r.protocol_type,
        protocols: r
            .protocols
            .into_iter()
            .map(|p| (p.name, p.metadata))
            .collect(),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let member_id = params.member_id.clone();
    let (reply, after) = driver.locked_join_groups(broker, |g, now| {
        let gid = params.group_id.as_str();
        if g.consumer.contains(gid) {
            // Kafka 4.0's `classicGroupJoin`: an empty consumer group is deleted and the
            // classic group created in its place; a non-empty one would take the member as
            // a classic member of a mixed group (online upgrade), which Arus does not
            // support: answered as Kafka does for protocols the group cannot support.
            match g.consumer.delete_group(gid) {
                Ok(records) => g.records.extend(records),
                Err(_) => {
                    return arus_group::Reply::Now(JoinGroupResponse {
                        error_code: ErrorCode::InconsistentGroupProtocol.code(),
                        generation_id: -1,
                        protocol_name: None,
                        member_id: String::new(),
                        ..Default::default()
                    });
                }
            }
        }
        g.classic.join_group(params, now)
    });
    if let Err(e) = driver.finish(broker, after).await {
        warn!(error = %e, "group metadata not persisted");
    }
    let resp = match reply {
        Ok(r) => r,
        Err(rx) => match rx.await {
            Ok(r) => r,
            Err(_) => return join_failed(ErrorCode::CoordinatorNotAvailable, &member_id, version),
        },
    };
    shape_join(resp, version)
}

fn shape_sync(mut r: SyncGroupResponse, version: i16) -> SyncGroupResponse {
    if version < 5 {
        r.protocol_type = None;
        r.protocol_name = None;
    }
    r
}

pub async fn sync_group(
    broker: &Arc<Broker>,
    r: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let driver = broker.groups.clone();
    if let Some(code) = driver.coordinator_error(broker, &r.group_id) {
        return SyncGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let params = SyncParams {
        group_id: r.group_id,
        generation_id: r.generation_id,
        member_id: r.member_id,
        group_instance_id: if version >= 3 {
            r.group_instance_id
        } else {
            None
        },
        protocol_type: if version >= 5 { r.protocol_type } else { None },
        protocol_name: if version >= 5 { r.protocol_name } else { None },
        assignments: r
            .assignments
            .into_iter()
            .map(|a| (a.member_id, a.assignment))
            .collect(),
    };
    let (reply, after) = driver.locked_sync(broker, |c, now| c.sync_group(params, now));
    let persisted = driver.finish(broker, after).await;
    let mut resp = match reply {
        Ok(r) => r,
        Err(rx) => match rx.await {
            Ok(r) => r,
            Err(_) => SyncGroupResponse {
                error_code: ErrorCode::CoordinatorNotAvailable.code(),
                ..Default::default()
            },
        },
    };
    if let Err(e) = persisted
        && resp.error_code == 0
    {
        resp.error_code = e.code().code();
        resp.assignment = Default::default();
    }
    shape_sync(resp, version)
}

pub fn heartbeat(broker: &Arc<Broker>, r: HeartbeatRequest, version: i16) -> HeartbeatResponse {
    let driver = broker.groups.clone();
    if let Some(code) = driver.coordinator_error(broker, &r.group_id) {
        return HeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let instance = if version >= 3 {
        r.group_instance_id
    } else {
        None
    };
    // A heartbeat writes no records; the timer task may still have work (it was woken).
    let (code, after) = driver.locked(broker, |c, now| {
        c.heartbeat(
            &r.group_id,
            r.generation_id,
            &r.member_id,
            instance.as_deref(),
            now,
        )
    });
    spawn_finish(broker, after);
    HeartbeatResponse {
        error_code: code.code(),
        ..Default::default()
    }
}

/// Releases answers an operation completed without making the caller wait for them.
fn spawn_finish(broker: &Arc<Broker>, after: crate::groups::AfterLock) {
    let broker = broker.clone();
    tokio::spawn(async move {
        if let Err(e) = broker.groups.finish(&broker, after).await {
            warn!(error = %e, "group records not persisted");
        }
    });
}

pub async fn leave_group(
    broker: &Arc<Broker>,
    r: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let driver = broker.groups.clone();
    if let Some(code) = driver.coordinator_error(broker, &r.group_id) {
        return LeaveGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        r.members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect()
    } else {
        vec![(r.member_id.clone(), None)]
    };
    let (result, after) = driver.locked(broker, |c, now| c.leave_group(&r.group_id, &members, now));
    if let Err(e) = driver.finish(broker, after).await {
        warn!(error = %e, "group records not persisted");
    }
    match result {
        Err(code) => LeaveGroupResponse {
            error_code: code.code(),
            ..Default::default()
        },
        Ok(codes) if version < 3 => LeaveGroupResponse {
            error_code: codes.first().copied().unwrap_or(ErrorCode::None).code(),
            ..Default::default()
        },
        Ok(codes) => LeaveGroupResponse {
            error_code: 0,
            members: members
                .into_iter()
                .zip(codes)
                .map(|((member_id, group_instance_id), code)| MemberResponse {
                    member_id,
                    group_instance_id,
                    error_code: code.code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
    }
}

/// A group DescribeGroups cannot describe: Dead, and from v6 (KIP-1043) GROUP_ID_NOT_FOUND
/// with Kafka's message.
fn not_found(group_id: &str, message: String, version: i16) -> DescribedGroup {
    let v6 = version >= 6;
    DescribedGroup {
        error_code: if v6 {
            ErrorCode::GroupIdNotFound.code()
        } else {
            0
        },
        error_message: v6.then_some(message),
        group_id: group_id.to_string(),
        group_state: "Dead".into(),
        ..Default::default()
    }
}

pub fn describe_groups(
    broker: &Arc<Broker>,
    r: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let driver = &broker.groups;
    let ops = group_authorized_operations(version >= 3 && r.include_authorized_operations);
    let groups = r
        .groups
        .iter()
        .map(|id| {
            let mut g = if let Some(code) = driver.coordinator_error(broker, id) {
                DescribedGroup {
                    error_code: code.code(),
                    group_id: id.clone(),
                    ..Default::default()
                }
            } else {
                driver.read_groups(|c, consumer| {
                    if consumer.contains(id) {
                        // Kafka (`classicGroup` throws GroupIdNotFoundException): a consumer
                        // group is described as Dead, with the error from v6 (below).
                        not_found(id, format!("Group {id} is not a classic group."), version)
                    } else {
                        let g = c.describe(id);
                        if g.group_state == "Dead" {
                            not_found(id, format!("Group {id} not found."), version)
                        } else {
                            g
                        }
                    }
                })
            };
            g.authorized_operations = ops;
            if version < 4 {
                for m in &mut g.members {
                    m.group_instance_id = None;
                }
            }
            g
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}

pub fn list_groups(broker: &Arc<Broker>, r: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let driver = &broker.groups;
    if let Some(code) = driver.list_error() {
        return ListGroupsResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let states: Vec<String> = if version >= 4 {
        r.states_filter.iter().map(|s| s.to_lowercase()).collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if version >= 5 {
        r.types_filter.iter().map(|s| s.to_lowercase()).collect()
    } else {
        Vec::new()
    };
    // (group id, protocol type, state, type): classic groups, then KIP-848 consumer groups
    // (whose ids the classic side may also hold, for their committed offsets only).
    let all: Vec<(String, String, String, &str)> = driver.read_groups(|c, consumer| {
        let mut all: Vec<_> = c
            .list()
            .into_iter()
            .filter(|g| !consumer.contains(&g.group_id))
            .map(|g| {
                (
                    g.group_id,
                    g.protocol_type,
                    g.state.name().to_string(),
                    "classic",
                )
            })
            .collect();
        all.extend(consumer.group_ids().map(|id| {
            (
                id.to_string(),
                "consumer".to_string(),
                consumer.state_name(id).to_string(),
                "consumer",
            )
        }));
        all
    });
    // A coordinator lists the groups of the partitions it owns; the admin client asks every
    // broker and merges.
    let groups = all
        .into_iter()
        .filter(|g| coordinators::coordinates(broker, Coordinator::Group, &g.0))
        .filter(|g| states.is_empty() || states.contains(&g.2.to_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.3))
        .map(|(group_id, protocol_type, state, kind)| ListedGroup {
            group_id,
            protocol_type,
            group_state: if version >= 4 { state } else { String::new() },
            group_type: if version >= 5 {
                kind.to_string()
            } else {
                String::new()
            },
            ..Default::default()
        })
        .collect();
    ListGroupsResponse {
        error_code: 0,
        groups,
        ..Default::default()
    }
}

pub async fn delete_groups(broker: &Arc<Broker>, r: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let driver = broker.groups.clone();
    if !driver.is_loaded() {
        return DeleteGroupsResponse {
            results: r
                .groups_names
                .into_iter()
                .map(|group_id| DeletableGroupResult {
                    group_id,
                    error_code: ErrorCode::CoordinatorLoadInProgress.code(),
                    // v3 carries a cause; Kafka gives one only for a failure of the whole
                    // request (its exception's message), none for a per-group code.
                    error_message: Some("The group coordinator is still loading.".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    // Groups whose partition another node leads (or is loading) are not touched.
    let refused: Vec<Option<ErrorCode>> = r
        .groups_names
        .iter()
        .map(|id| driver.coordinator_error(broker, id))
        .collect();
    let (codes, after) = driver.locked_groups(broker, |g, now| {
        r.groups_names
            .iter()
            .zip(&refused)
            .map(|(id, refused)| {
                if let Some(code) = refused {
                    return *code;
                }
                if !g.consumer.contains(id) {
                    return g.classic.delete_groups(std::slice::from_ref(id), now)[0];
                }
                // Kafka's `deleteGroups`: the offsets' tombstones, then the group's.
                match g.consumer.delete_group(id) {
                    Ok(records) => {
                        // The classic side holds the consumer group's offsets, if any.
                        g.classic.delete_groups(std::slice::from_ref(id), now);
                        g.records.extend(records);
                        ErrorCode::None
                    }
                    Err(code) => code,
                }
            })
            .collect::<Vec<_>>()
    });
    let persisted = driver.finish(broker, after).await;
    DeleteGroupsResponse {
        results: r
            .groups_names
            .into_iter()
            .zip(codes)
            .map(|(group_id, code)| match (&persisted, code) {
                (Err(e), ErrorCode::None) => DeletableGroupResult {
                    group_id,
                    error_code: e.code().code(),
                    error_message: Some(e.to_string()),
                    ..Default::default()
                },
                _ => DeletableGroupResult {
                    group_id,
                    error_code: code.code(),
                    ..Default::default()
                },
            })
            .collect(),
        ..Default::default()
    }
}
