//! In a cluster the group and transaction coordinators serve only the ids whose internal
//! partition this node leads: NOT_COORDINATOR for the others, COORDINATOR_LOAD_IN_PROGRESS
//! while a newly led partition is replayed, and the state back intact when leadership
//! returns. The broker is driven as the cluster adapter drives it: topic specs applied to
//! the registry, the role changes handed to the coordinators.

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arus_broker::coordinator_shards::follow_leadership;
use arus_broker::partition::role::LocalRole;
use arus_broker::topics::driven::TopicSpec;
use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use arus_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use arus_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, Bytes, ErrorCode, Request, Response, Uuid};

const OFFSETS_PARTITIONS: i32 = 2;

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let props = BTreeMap::from([
        ("log.dirs".to_string(), dir.display().to_string()),
        // A JoinGroup stays pending for the whole test.
        (
            "group.initial.rebalance.delay.ms".to_string(),
            "600000".to_string(),
        ),
    ]);
    let config = BrokerConfig::from_properties(props).unwrap();
    Broker::open_driven(config, "test-cluster".into()).unwrap()
}

fn leader(epoch: i32) -> LocalRole {
    LocalRole::Leader { epoch }
}

fn follower(epoch: i32) -> LocalRole {
    LocalRole::Follower { leader: 2, epoch }
}

fn spec(name: &str, id: u8, count: i32, local: &[(i32, LocalRole)]) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        id: Uuid([id; 16]),
        partition_count: count,
        local: local.iter().copied().collect(),
        configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
    }
}

/// Applies `specs` and hands the role changes to the coordinators, as the adapter does.
/// What the cluster's applier does with an image: roles, coordinators, then each led
/// partition's leadership (here: this node its only replica, so its high watermark follows
/// its appends; a promoted follower waits for this before it counts anything replicated).
fn apply(broker: &Arc<Broker>, specs: &[TopicSpec]) {
    let applied = broker.topics.apply(specs).unwrap();
    assert!(applied.failures.is_empty(), "{:?}", applied.failures);
    follow_leadership(broker, &applied.changes);
    for spec in specs {
        for (&index, role) in &spec.local {
            let LocalRole::Leader { epoch } = *role else {
                continue;
            };
            let p = broker
                .topics
                .get(&spec.name)
                .unwrap()
                .partition(index)
                .unwrap();
            let config = arus_replication::LeaderConfig {
                local_broker_id: 1,
                local_broker_epoch: -1,
                replica_lag_time_max_ms: 30_000,
                min_insync_replicas: 1,
            };
            let alone = arus_replication::Leadership {
                leader_epoch: epoch,
                partition_epoch: epoch,
                replicas: vec![1],
                isr: vec![1],
            };
            p.set_leadership(config, &alone, Default::default(), 0);
        }
    }
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

/// A group id whose `__consumer_offsets` partition is `partition`.
fn group_on(partition: i32) -> String {
    (0..)
        .map(|i| format!("group-{i}"))
        .find(|g| arus_group::records::offsets_partition_for(g, OFFSETS_PARTITIONS) == partition)
        .unwrap()
}

/// A transactional id whose `__transaction_state` partition is `partition`.
fn txn_on(partition: i32, count: i32) -> String {
    (0..)
        .map(|i| format!("txn-{i}"))
        .find(|t| arus_txn::records::transaction_partition_for(t, count) == partition)
        .unwrap()
}

async fn commit(broker: &Arc<Broker>, group: &str, offset: i64) -> i16 {
    let r = call(
        broker,
        ApiKey::OffsetCommit,
        8,
        Request::OffsetCommit(OffsetCommitRequest {
            group_id: group.into(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    committed_metadata: Some(String::new()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await;
    let Response::OffsetCommit(r) = r else {
        panic!("{r:?}")
    };
    r.topics[0].partitions[0].error_code
}

/// (group error, committed offset of t-0) as OffsetFetch v8 reports them.
async fn fetch(broker: &Arc<Broker>, group: &str) -> (i16, i64) {
    let r = call(
        broker,
        ApiKey::OffsetFetch,
        8,
        Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.into(),
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await;
    let Response::OffsetFetch(r) = r else {
        panic!("{r:?}")
    };
    let g = &r.groups[0];
    let offset = g
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.committed_offset);
    (g.error_code, offset)
}

/// Polls OffsetFetch until the group's partition has loaded (the loader runs on a thread).
async fn fetch_once_loaded(broker: &Arc<Broker>, group: &str) -> (i16, i64) {
    for _ in 0..2000 {
        let answer = fetch(broker, group).await;
        if answer.0 != ErrorCode::CoordinatorLoadInProgress.code() {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the group's partition never loaded")
}

fn join(group: &str, member_id: &str) -> Request {
    Request::JoinGroup(JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"\0\0\0\0\0\x01\0\x01t\xff\xff\xff\xff"),
            ..Default::default()
        }],
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_served_only_where_their_partition_is_led() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let (here, elsewhere) = (group_on(0), group_on(1));
    // Before any metadata: nothing is led here.
    assert_eq!(
        fetch(&broker, &here).await.0,
        ErrorCode::NotCoordinator.code()
    );
    let user = spec("t", 1, 1, &[(0, leader(0))]);
    let offsets = |p0: LocalRole| {
        // Partition 1 has no replica here at all.
        spec("__consumer_offsets", 2, OFFSETS_PARTITIONS, &[(0, p0)])
    };
    apply(&broker, &[user.clone(), offsets(leader(1))]);
    assert_eq!(fetch_once_loaded(&broker, &here).await, (0, -1));
    assert_eq!(commit(&broker, &here, 42).await, 0);
    assert_eq!(fetch(&broker, &here).await, (0, 42));
    // The other partition is led by node 2: every group API refuses its groups.
    assert_eq!(
        commit(&broker, &elsewhere, 1).await,
        ErrorCode::NotCoordinator.code()
    );
    assert_eq!(
        fetch(&broker, &elsewhere).await.0,
        ErrorCode::NotCoordinator.code()
    );
    let Response::JoinGroup(j) = call(&broker, ApiKey::JoinGroup, 9, join(&elsewhere, "")).await
    else {
        panic!()
    };
    assert_eq!(j.error_code, ErrorCode::NotCoordinator.code());
    // Told to lead a partition it holds no replica of, the coordinator does not serve its
    // groups from nothing.
    broker.groups.on_become_leader(&broker, 1, 5);
    assert_eq!(
        fetch_once_loaded(&broker, &elsewhere).await.0,
        ErrorCode::NotCoordinator.code()
    );

    // A join waiting for the initial rebalance delay when leadership moves away is
    // answered NOT_COORDINATOR, so its client finds the new coordinator.
    let Response::JoinGroup(first) = call(&broker, ApiKey::JoinGroup, 9, join(&here, "")).await
    else {
        panic!()
    };
    assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
    let pending = {
        let broker = broker.clone();
        let group = here.clone();
        let member = first.member_id.clone();
        tokio::spawn(
            async move { call(&broker, ApiKey::JoinGroup, 9, join(&group, &member)).await },
        )
    };
    let waited = async {
        for _ in 0..2000 {
            let listed = call(
                &broker,
                ApiKey::ListGroups,
                4,
                Request::ListGroups(ListGroupsRequest::default()),
            )
            .await;
            let Response::ListGroups(l) = listed else {
                panic!()
            };
            if l.groups
                .iter()
                .any(|g| g.group_id == here && g.group_state != "Empty")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the join never reached the coordinator")
    };
    waited.await;
    apply(&broker, &[user.clone(), offsets(follower(2))]);
    let Response::JoinGroup(j) = pending.await.unwrap() else {
        panic!()
    };
    assert_eq!(j.error_code, ErrorCode::NotCoordinator.code());
    assert_eq!(
        fetch(&broker, &here).await.0,
        ErrorCode::NotCoordinator.code()
    );

    // Leadership returns: the partition is replayed and the committed offset is intact.
    apply(&broker, &[user, offsets(leader(3))]);
    assert_eq!(fetch_once_loaded(&broker, &here).await, (0, 42));
}

async fn init_producer_id(broker: &Arc<Broker>, txn: &str) -> (i16, i64, i16) {
    let r = call(
        broker,
        ApiKey::InitProducerId,
        4,
        Request::InitProducerId(InitProducerIdRequest {
            transactional_id: Some(txn.into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }),
    )
    .await;
    let Response::InitProducerId(r) = r else {
        panic!("{r:?}")
    };
    (r.error_code, r.producer_id, r.producer_epoch)
}

async fn init_once_loaded(broker: &Arc<Broker>, txn: &str) -> (i16, i64, i16) {
    for _ in 0..2000 {
        let answer = init_producer_id(broker, txn).await;
        if answer.0 != ErrorCode::CoordinatorLoadInProgress.code() {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the transaction partition never loaded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_ids_are_served_only_where_their_partition_is_led() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let count = 2;
    let (here, elsewhere) = (txn_on(0, count), txn_on(1, count));
    let state = |p0: LocalRole| {
        spec(
            "__transaction_state",
            3,
            count,
            &[(0, p0), (1, follower(1))],
        )
    };
    apply(&broker, &[state(leader(1))]);
    let (code, producer_id, epoch) = init_once_loaded(&broker, &here).await;
    assert_eq!(code, 0);
    assert!(producer_id >= 0);
    assert_eq!(
        init_producer_id(&broker, &elsewhere).await.0,
        ErrorCode::NotCoordinator.code()
    );
    let list = call(
        &broker,
        ApiKey::ListTransactions,
        1,
        Request::ListTransactions(ListTransactionsRequest::default()),
    )
    .await;
    let Response::ListTransactions(l) = list else {
        panic!()
    };
    assert_eq!(l.error_code, 0);
    assert_eq!(
        l.transaction_states
            .iter()
            .map(|t| t.transactional_id.as_str())
            .collect::<Vec<_>>(),
        vec![here.as_str()]
    );

    apply(&broker, &[state(follower(2))]);
    assert_eq!(
        init_producer_id(&broker, &here).await.0,
        ErrorCode::NotCoordinator.code()
    );
    // Back as leader: the id's state was replayed, so the producer keeps its id and the
    // epoch moves on from the one it had.
    apply(&broker, &[state(leader(3))]);
    let (code, again, next_epoch) = init_once_loaded(&broker, &here).await;
    assert_eq!(code, 0);
    assert_eq!(again, producer_id);
    assert_eq!(next_epoch, epoch + 1);
}
