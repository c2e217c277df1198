//! KIP-848 consumer groups through the broker's handlers: three members converge on a
//! 6-partition topic, one leaves and the other two take its partitions, commits are checked
//! against member epochs, the group-id namespace is shared with classic groups, and a
//! restart reloads the group from `__consumer_offsets` (after which the timer fences the
//! members that stopped heartbeating).

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use arus_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use arus_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use arus_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, Bytes, ErrorCode, Request, Response, Uuid};

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut props = BTreeMap::new();
    props.insert("log.dirs".to_string(), dir.display().to_string());
    props.insert(
        "group.initial.rebalance.delay.ms".to_string(),
        "0".to_string(),
    );
    props.insert("offsets.topic.num.partitions".to_string(), "3".to_string());
    // Short session timeout so the test sees the timer fence silent members.
    props.insert(
        "group.consumer.session.timeout.ms".to_string(),
        "1500".to_string(),
    );
    props.insert(
        "group.consumer.heartbeat.interval.ms".to_string(),
        "100".to_string(),
    );
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
    match broker
        .handle_from(&header, req, Some("127.0.0.1".parse().unwrap()))
        .await
    {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

#[derive(Default)]
struct Client {
    id: String,
    epoch: i32,
    owned: BTreeMap<Uuid, BTreeSet<i32>>,
}

impl Client {
    fn new(id: &str) -> Client {
        Client {
            id: id.into(),
            ..Default::default()
        }
    }

    fn partitions(&self) -> usize {
        self.owned.values().map(BTreeSet::len).sum()
    }
}

async fn heartbeat(broker: &Arc<Broker>, group: &str, c: &mut Client, epoch: i32) -> i16 {
    let req = Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: c.id.clone(),
        member_epoch: epoch,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: (epoch == 0).then(|| vec!["t".into()]),
        topic_partitions: Some(
            c.owned
                .iter()
                .map(|(t, ps)| TopicPartitions {
                    topic_id: *t,
                    partitions: ps.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    });
    let Response::ConsumerGroupHeartbeat(r) =
        call(broker, ApiKey::ConsumerGroupHeartbeat, 1, req).await
    else {
        panic!()
    };
    if r.error_code == 0 {
        c.epoch = r.member_epoch;
        if let Some(a) = r.assignment {
            c.owned = a
                .topic_partitions
                .into_iter()
                .map(|t| (t.topic_id, t.partitions.into_iter().collect()))
                .collect();
        }
    }
    r.error_code
}

/// Heartbeats every member until each owns `want` partitions, all disjoint.
async fn converge(broker: &Arc<Broker>, members: &mut [Client], want: usize) {
    for _ in 0..50 {
        for c in members.iter_mut() {
            let epoch = c.epoch;
            assert_eq!(heartbeat(broker, "cg", c, epoch).await, 0, "{}", c.id);
        }
        let all: Vec<(Uuid, i32)> = members
            .iter()
            .flat_map(|c| {
                c.owned
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            })
            .collect();
        let distinct: BTreeSet<_> = all.iter().collect();
        if members.iter().all(|c| c.partitions() == want) && distinct.len() == all.len() {
            return;
        }
    }
    panic!(
        "did not converge: {:?}",
        members
            .iter()
            .map(|c| (&c.id, c.epoch, &c.owned))
            .collect::<Vec<_>>()
    );
}

async fn describe(
    broker: &Arc<Broker>,
    group: &str,
) -> consumer_group_describe_response::DescribedGroup {
    let Response::ConsumerGroupDescribe(r) = call(
        broker,
        ApiKey::ConsumerGroupDescribe,
        0,
        Request::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
            group_ids: vec![group.into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    r.groups.into_iter().next().unwrap()
}

async fn commit(broker: &Arc<Broker>, member: &str, epoch: i32, offset: i64) -> i16 {
    let Response::OffsetCommit(r) = call(
        broker,
        ApiKey::OffsetCommit,
        9,
        Request::OffsetCommit(OffsetCommitRequest {
            group_id: "cg".into(),
            generation_id_or_member_epoch: epoch,
            member_id: member.into(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    r.topics[0].partitions[0].error_code
}

async fn fetch_committed(broker: &Arc<Broker>) -> (i16, i64) {
    let Response::OffsetFetch(r) = call(
        broker,
        ApiKey::OffsetFetch,
        9,
        Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: "cg".into(),
                member_epoch: -1,
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
    let g = &r.groups[0];
    let offset = g
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.committed_offset);
    (g.error_code, offset)
}

#[tokio::test]
async fn members_converge_leave_and_the_group_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker
        .topics
        .create(arus_broker::topics::NewTopic {
            name: "t".into(),
            partitions: 6,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
    broker.groups.wait_loaded().await;

    let mut members = vec![Client::new("m1"), Client::new("m2"), Client::new("m3")];
    for c in members.iter_mut() {
        assert_eq!(heartbeat(&broker, "cg", c, 0).await, 0);
    }
    converge(&broker, &mut members, 2).await;
    let d = describe(&broker, "cg").await;
    assert_eq!(d.error_code, 0);
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.members.len(), 3);
    assert!(d.members.iter().all(|m| m.client_host == "/127.0.0.1"));
    assert!(d.members.iter().all(|m| m.client_id == "test-client"));

    // Commits carry the member epoch.
    let m1_epoch = members[0].epoch;
    assert_eq!(commit(&broker, "m1", m1_epoch, 42).await, 0);
    assert_eq!(
        commit(&broker, "m1", m1_epoch + 7, 43).await,
        ErrorCode::StaleMemberEpoch.code()
    );
    assert_eq!(
        commit(&broker, "nobody", m1_epoch, 43).await,
        ErrorCode::UnknownMemberId.code()
    );
    assert_eq!(fetch_committed(&broker).await, (0, 42));

    // One member leaves; the other two take its partitions.
    let mut m3 = members.pop().unwrap();
    assert_eq!(heartbeat(&broker, "cg", &mut m3, -1).await, 0);
    converge(&broker, &mut members, 3).await;

    // Shared namespace: classic JoinGroup on a consumer group, and the reverse.
    let Response::JoinGroup(j) = call(
        &broker,
        ApiKey::JoinGroup,
        5,
        Request::JoinGroup(JoinGroupRequest {
            group_id: "cg".into(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"\0\0\0\0\0\x01\0\x01t\xff\xff\xff\xff"),
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(j.error_code, ErrorCode::InconsistentGroupProtocol.code());
    let Response::ListGroups(l) = call(
        &broker,
        ApiKey::ListGroups,
        5,
        Request::ListGroups(ListGroupsRequest {
            types_filter: vec!["consumer".into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(l.groups.len(), 1);
    assert_eq!(l.groups[0].group_id, "cg");
    assert_eq!(l.groups[0].group_type, "consumer");
    assert_eq!(l.groups[0].group_state, "Stable");

    let epochs: BTreeMap<String, (i32, usize)> = members
        .iter()
        .map(|c| (c.id.clone(), (c.epoch, c.partitions())))
        .collect();
    broker.shutdown();
    drop(broker);

    // Restart: the group, its members' epochs and assignments, and the offsets come back.
    let broker = open(dir.path());
    broker.groups.wait_loaded().await;
    let d = describe(&broker, "cg").await;
    assert_eq!(d.error_code, 0);
    let loaded: BTreeMap<String, (i32, usize)> = d
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                (
                    m.member_epoch,
                    m.assignment
                        .topic_partitions
                        .iter()
                        .map(|t| t.partitions.len())
                        .sum(),
                ),
            )
        })
        .collect();
    assert_eq!(loaded, epochs);
    assert_eq!(fetch_committed(&broker).await, (0, 42));
    // Known members carry on with their epochs after the restart.
    for c in members.iter_mut() {
        let epoch = c.epoch;
        assert_eq!(heartbeat(&broker, "cg", c, epoch).await, 0);
    }

    // Nobody heartbeats: the timer fences both members after the session timeout.
    let mut state = String::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = describe(&broker, "cg").await.group_state;
        if state == "Empty" {
            break;
        }
    }
    assert_eq!(state, "Empty");

    // An empty consumer group can be deleted (with its offsets).
    let Response::DeleteGroups(r) = call(
        &broker,
        ApiKey::DeleteGroups,
        2,
        Request::DeleteGroups(DeleteGroupsRequest {
            groups_names: vec!["cg".into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(
        describe(&broker, "cg").await.error_code,
        ErrorCode::GroupIdNotFound.code()
    );
    assert_eq!(fetch_committed(&broker).await, (0, -1));
    broker.shutdown();
}

#[tokio::test]
async fn a_consumer_group_replaces_only_an_empty_classic_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker
        .topics
        .create(arus_broker::topics::NewTopic {
            name: "t".into(),
            partitions: 6,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
    broker.groups.wait_loaded().await;

    // A classic group with a member.
    let Response::JoinGroup(j) = call(
        &broker,
        ApiKey::JoinGroup,
        3,
        Request::JoinGroup(JoinGroupRequest {
            group_id: "busy".into(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"\0\0\0\0\0\x01\0\x01t\xff\xff\xff\xff"),
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(j.error_code, 0);
    let mut c = Client::new("x");
    assert_eq!(
        heartbeat(&broker, "busy", &mut c, 0).await,
        ErrorCode::GroupIdNotFound.code()
    );
    let Response::DescribeGroups(d) = call(
        &broker,
        ApiKey::DescribeGroups,
        5,
        Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec!["busy".into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(d.groups[0].protocol_type, "consumer");
    assert_eq!(
        describe(&broker, "busy").await.error_message.as_deref(),
        Some("Group busy is not a consumer group.")
    );

    // Offsets committed without group management make an empty classic group: a consumer
    // group takes its id and keeps the offsets.
    let Response::OffsetCommit(r) = call(
        &broker,
        ApiKey::OffsetCommit,
        9,
        Request::OffsetCommit(OffsetCommitRequest {
            group_id: "cg".into(),
            generation_id_or_member_epoch: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 7,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let mut c = Client::new("y");
    assert_eq!(heartbeat(&broker, "cg", &mut c, 0).await, 0);
    assert_eq!(describe(&broker, "cg").await.error_code, 0);
    assert_eq!(fetch_committed(&broker).await, (0, 7));
    let Response::DescribeGroups(d) = call(
        &broker,
        ApiKey::DescribeGroups,
        5,
        Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec!["cg".into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(d.groups[0].group_state, "Dead");
    broker.shutdown();
}
