//! The group coordinator through the broker's handlers: a deferred JoinGroup answered when
//! the initial delay ends, committed offsets answered after they are durable, and groups
//! and offsets rebuilt from `__consumer_offsets` after a restart.

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use arus_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use arus_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use arus_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, Bytes, ErrorCode, Request, Response};

fn open(dir: &std::path::Path, delay_ms: u32) -> Arc<Broker> {
    let mut props = BTreeMap::new();
    props.insert("log.dirs".to_string(), dir.display().to_string());
    props.insert(
        "group.initial.rebalance.delay.ms".to_string(),
        delay_ms.to_string(),
    );
    props.insert("offsets.topic.num.partitions".to_string(), "3".to_string());
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

async fn call(broker: &Arc<Broker>, key: ApiKey, version: i16, req: Request) -> Response {
    let header = RequestHeader {
        request_api_key: key as i16,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("test-client".into()),
        ..Default::default()
    };
    match broker.handle(&header, req).await {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

fn join_req(member: &str) -> Request {
    Request::JoinGroup(JoinGroupRequest {
        group_id: "g".into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"\0\0\0\0\0\x01\0\x01t\xff\xff\xff\xff"),
            ..Default::default()
        }],
        ..Default::default()
    })
}

#[tokio::test]
async fn a_group_forms_commits_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path(), 200);
    broker
        .topics
        .create(arus_broker::topics::NewTopic {
            name: "t".into(),
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
    broker.groups.wait_loaded().await;

    let Response::FindCoordinator(f) = call(
        &broker,
        ApiKey::FindCoordinator,
        4,
        Request::FindCoordinator(FindCoordinatorRequest {
            key_type: 0,
            coordinator_keys: vec!["g".into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(f.coordinators[0].error_code, 0);
    assert_eq!(f.coordinators[0].node_id, 1);
    assert!(broker.topics.get("__consumer_offsets").unwrap().internal);

    // v9: MEMBER_ID_REQUIRED, then a join that waits for the 200 ms initial delay.
    let Response::JoinGroup(j) = call(&broker, ApiKey::JoinGroup, 9, join_req("")).await else {
        panic!()
    };
    assert_eq!(j.error_code, ErrorCode::MemberIdRequired.code());
    let member = j.member_id;
    let started = std::time::Instant::now();
    let Response::JoinGroup(j) = call(&broker, ApiKey::JoinGroup, 9, join_req(&member)).await
    else {
        panic!()
    };
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    assert_eq!(j.error_code, 0);
    assert_eq!(j.generation_id, 1);
    assert_eq!(j.leader, member);
    assert_eq!(j.protocol_type.as_deref(), Some("consumer"));

    let Response::SyncGroup(s) = call(
        &broker,
        ApiKey::SyncGroup,
        5,
        Request::SyncGroup(SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: member.clone(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![SyncGroupRequestAssignment {
                member_id: member.clone(),
                assignment: Bytes::from_static(b"assigned"),
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(s.error_code, 0);
    assert_eq!(&s.assignment[..], b"assigned");

    let Response::OffsetCommit(c) = call(
        &broker,
        ApiKey::OffsetCommit,
        9,
        Request::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: 1,
            member_id: member.clone(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![
                    OffsetCommitRequestPartition {
                        partition_index: 1,
                        committed_offset: 17,
                        committed_leader_epoch: 0,
                        committed_metadata: Some("meta".into()),
                        ..Default::default()
                    },
                    OffsetCommitRequestPartition {
                        partition_index: 5,
                        committed_offset: 1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    let codes: Vec<i16> = c.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(
        codes,
        vec![0, ErrorCode::UnknownTopicOrPartition.code()],
        "the commit is durable when answered; unknown partitions are refused"
    );
    broker.shutdown();
    drop(broker);

    let broker = open(dir.path(), 200);
    broker.groups.wait_loaded().await;
    let Response::OffsetFetch(f) = call(
        &broker,
        ApiKey::OffsetFetch,
        8,
        Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: "g".into(),
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    let p = &f.groups[0].topics[0].partitions[0];
    assert_eq!(
        (p.partition_index, p.committed_offset, p.metadata.as_deref()),
        (1, 17, Some("meta"))
    );
    let Response::DescribeGroups(d) = call(
        &broker,
        ApiKey::DescribeGroups,
        5,
        Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec!["g".into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    let g = &d.groups[0];
    assert_eq!(g.group_state, "Stable");
    assert_eq!(g.members[0].member_id, member);
    assert_eq!(&g.members[0].member_assignment[..], b"assigned");
    // The loaded member carries on in its generation.
    let Response::Heartbeat(h) = call(
        &broker,
        ApiKey::Heartbeat,
        4,
        Request::Heartbeat(HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: member.clone(),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(h.error_code, 0);
    broker.shutdown();
}
