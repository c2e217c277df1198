//! A broker that is one node of a cluster coordinates only the groups and transactional ids
//! whose internal partition it leads: the others are NOT_COORDINATOR on every group and
//! transaction API (Kafka's coordinator runtime and `TransactionStateManager`), and
//! ListGroups / ListTransactions list only its own.
//!
//! `__consumer_offsets` and `__transaction_state` have two partitions each: node 1 (this
//! broker) leads partition 0 of both, node 2 partition 1.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

mod common;

use std::sync::Arc;

use arus_broker::Broker;
use arus_broker::cluster::{BrokerNode, ClusterView, Endpoint, PartitionPlacement};
use arus_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use arus_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use arus_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use arus_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response};

const NOT_COORDINATOR: i16 = ErrorCode::NotCoordinator as i16;

/// The first `prefix-N` whose coordinator partition (of 2) is `partition`.
fn key_on(prefix: &str, partition: i32, partition_for: fn(&str, i32) -> i32) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|k| partition_for(k, 2) == partition)
        .unwrap()
}

struct Keys {
    group_here: String,
    group_there: String,
    txn_here: String,
    txn_there: String,
}

fn keys() -> Keys {
    let groups = arus_group::records::offsets_partition_for;
    let txns = arus_txn::records::transaction_partition_for;
    Keys {
        group_here: key_on("group", 0, groups),
        group_there: key_on("group", 1, groups),
        txn_here: key_on("txn", 0, txns),
        txn_there: key_on("txn", 1, txns),
    }
}

async fn broker(dir: &std::path::Path) -> Arc<Broker> {
    let broker = common::open_broker(
        dir,
        &[
            ("offsets.topic.num.partitions", "2"),
            ("transaction.state.log.num.partitions", "2"),
            ("group.initial.rebalance.delay.ms", "0"),
        ],
    );
    common::create_topic(&broker, "t", &[]);
    arus_broker::groups::offsets_topic(&broker).unwrap();
    arus_broker::txn::transaction_state_topic(&broker).unwrap();
    broker.groups.wait_loaded().await;
    broker.txns.wait_loaded().await;
    broker
}

/// Node 1 leads partition 0 of both internal topics, node 2 partition 1; `t` is led here.
fn install_two_nodes(broker: &Broker) {
    let listener = broker.advertised_listener().name;
    let node = |id: i32| {
        BrokerNode::new(
            id,
            [(
                listener.clone(),
                Endpoint {
                    host: format!("node-{id}"),
                    port: 9000 + id as u16,
                },
            )],
        )
    };
    let led_by = |leader: i32| PartitionPlacement {
        leader: Some(leader),
        leader_epoch: 1,
        replicas: vec![leader],
        isr: vec![leader],
        ..Default::default()
    };
    let mut view = ClusterView::new(broker.topics.cluster_id(), 1, Some(1))
        .with_broker(node(1))
        .with_broker(node(2))
        .with_partition(broker.topics.get("t").unwrap().id, 0, led_by(1));
    for internal in ["__consumer_offsets", "__transaction_state"] {
        let id = broker.topics.get(internal).unwrap().id;
        view = view
            .with_partition(id, 0, led_by(1))
            .with_partition(id, 1, led_by(2));
    }
    broker.cluster.install(view);
}

async fn commit(broker: &Arc<Broker>, group: &str, version: i16) -> i16 {
    let req = Request::OffsetCommit(OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            // v10 names topics by id.
            topic_id: broker.topics.get("t").unwrap().id,
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 5,
                committed_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    match common::call(broker, ApiKey::OffsetCommit, version, req).await {
        Response::OffsetCommit(r) => r.topics[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

async fn init_producer_id(broker: &Arc<Broker>, txn: &str) -> InitProducerIdResponse {
    let req = Request::InitProducerId(InitProducerIdRequest {
        transactional_id: Some(txn.into()),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    });
    match common::call(broker, ApiKey::InitProducerId, 5, req).await {
        Response::InitProducerId(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn group_apis_answer_not_coordinator_for_groups_coordinated_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let k = keys();
    // Both groups exist while this node still coordinates everything.
    assert_eq!(commit(&broker, &k.group_here, 9).await, 0);
    assert_eq!(commit(&broker, &k.group_there, 9).await, 0);
    install_two_nodes(&broker);

    assert_eq!(commit(&broker, &k.group_here, 9).await, 0);
    for version in [2, 9, 10] {
        assert_eq!(
            commit(&broker, &k.group_there, version).await,
            NOT_COORDINATOR
        );
    }

    let join = |group: String| JoinGroupRequest {
        group_id: group,
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: "m".into(),
        protocol_type: "consumer".into(),
        ..Default::default()
    };
    let Response::JoinGroup(r) = common::call(
        &broker,
        ApiKey::JoinGroup,
        9,
        Request::JoinGroup(join(k.group_there.clone())),
    )
    .await
    else {
        panic!()
    };
    assert_eq!((r.error_code, r.member_id.as_str()), (NOT_COORDINATOR, "m"));
    let Response::SyncGroup(r) = common::call(
        &broker,
        ApiKey::SyncGroup,
        5,
        Request::SyncGroup(SyncGroupRequest {
            group_id: k.group_there.clone(),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, NOT_COORDINATOR);
    let Response::Heartbeat(r) = common::call(
        &broker,
        ApiKey::Heartbeat,
        4,
        Request::Heartbeat(HeartbeatRequest {
            group_id: k.group_there.clone(),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, NOT_COORDINATOR);
    let Response::LeaveGroup(r) = common::call(
        &broker,
        ApiKey::LeaveGroup,
        5,
        Request::LeaveGroup(LeaveGroupRequest {
            group_id: k.group_there.clone(),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, NOT_COORDINATOR);

    // OffsetFetch: per partition before v2, top-level v2–v7, per group from v8.
    for version in [1, 2, 7] {
        let req = Request::OffsetFetch(OffsetFetchRequest {
            group_id: k.group_there.clone(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "t".into(),
                partition_indexes: vec![0],
                ..Default::default()
            }]),
            ..Default::default()
        });
        let Response::OffsetFetch(r) =
            common::call(&broker, ApiKey::OffsetFetch, version, req).await
        else {
            panic!()
        };
        let partition = r.topics[0].partitions[0].error_code;
        if version >= 2 {
            assert_eq!(
                (r.error_code, partition),
                (NOT_COORDINATOR, NOT_COORDINATOR)
            );
        } else {
            assert_eq!((r.error_code, partition), (0, NOT_COORDINATOR));
        }
    }
    let req = Request::OffsetFetch(OffsetFetchRequest {
        groups: vec![
            OffsetFetchRequestGroup {
                group_id: k.group_here.clone(),
                topics: None,
                ..Default::default()
            },
            OffsetFetchRequestGroup {
                group_id: k.group_there.clone(),
                topics: None,
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    let Response::OffsetFetch(r) = common::call(&broker, ApiKey::OffsetFetch, 9, req).await else {
        panic!()
    };
    assert_eq!(r.groups[0].error_code, 0);
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 5);
    assert_eq!(r.groups[1].error_code, NOT_COORDINATOR);

    let req = Request::DescribeGroups(DescribeGroupsRequest {
        groups: vec![k.group_here.clone(), k.group_there.clone()],
        ..Default::default()
    });
    let Response::DescribeGroups(r) = common::call(&broker, ApiKey::DescribeGroups, 6, req).await
    else {
        panic!()
    };
    assert_eq!(r.groups[0].error_code, 0);
    assert_eq!(r.groups[1].error_code, NOT_COORDINATOR);

    let req = Request::OffsetDelete(OffsetDeleteRequest {
        group_id: k.group_there.clone(),
        topics: vec![OffsetDeleteRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetDeleteRequestPartition {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::OffsetDelete(r) = common::call(&broker, ApiKey::OffsetDelete, 0, req).await
    else {
        panic!()
    };
    assert_eq!(r.error_code, NOT_COORDINATOR);

    let Response::ConsumerGroupHeartbeat(r) = common::call(
        &broker,
        ApiKey::ConsumerGroupHeartbeat,
        1,
        Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
            group_id: k.group_there.clone(),
            member_id: "m".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            topic_partitions: Some(vec![]),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, NOT_COORDINATOR);
    let Response::ConsumerGroupDescribe(r) = common::call(
        &broker,
        ApiKey::ConsumerGroupDescribe,
        1,
        Request::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
            group_ids: vec![k.group_there.clone()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.groups[0].error_code, NOT_COORDINATOR);

    // Only the groups of the partitions this node leads are listed.
    let Response::ListGroups(r) = common::call(
        &broker,
        ApiKey::ListGroups,
        5,
        Request::ListGroups(ListGroupsRequest::default()),
    )
    .await
    else {
        panic!()
    };
    let listed: Vec<&str> = r.groups.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(listed, vec![k.group_here.as_str()]);

    let req = Request::DeleteGroups(DeleteGroupsRequest {
        groups_names: vec![k.group_there.clone(), k.group_here.clone()],
        ..Default::default()
    });
    let Response::DeleteGroups(r) = common::call(&broker, ApiKey::DeleteGroups, 2, req).await
    else {
        panic!()
    };
    let codes: Vec<(&str, i16)> = r
        .results
        .iter()
        .map(|g| (g.group_id.as_str(), g.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (k.group_there.as_str(), NOT_COORDINATOR),
            (k.group_here.as_str(), 0)
        ]
    );
}

#[tokio::test]
async fn transaction_apis_answer_not_coordinator_for_ids_coordinated_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let k = keys();
    let there = init_producer_id(&broker, &k.txn_there).await;
    assert_eq!(there.error_code, 0);
    install_two_nodes(&broker);

    let here = init_producer_id(&broker, &k.txn_here).await;
    assert_eq!(here.error_code, 0);
    let r = init_producer_id(&broker, &k.txn_there).await;
    assert_eq!((r.error_code, r.producer_id), (NOT_COORDINATOR, -1));

    let (pid, epoch) = (there.producer_id, there.producer_epoch);
    let req = Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: k.txn_there.clone(),
        v3_and_below_producer_id: pid,
        v3_and_below_producer_epoch: epoch,
        v3_and_below_topics: vec![AddPartitionsToTxnTopic {
            name: "t".into(),
            partitions: vec![0],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::AddPartitionsToTxn(r) =
        common::call(&broker, ApiKey::AddPartitionsToTxn, 3, req).await
    else {
        panic!()
    };
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        NOT_COORDINATOR
    );
    let req = Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
        transactions: vec![AddPartitionsToTxnTransaction {
            transactional_id: k.txn_there.clone(),
            producer_id: pid,
            producer_epoch: epoch,
            topics: vec![AddPartitionsToTxnTopic {
                name: "t".into(),
                partitions: vec![0],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::AddPartitionsToTxn(r) =
        common::call(&broker, ApiKey::AddPartitionsToTxn, 5, req).await
    else {
        panic!()
    };
    assert_eq!(
        r.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code,
        NOT_COORDINATOR
    );

    let Response::AddOffsetsToTxn(r) = common::call(
        &broker,
        ApiKey::AddOffsetsToTxn,
        4,
        Request::AddOffsetsToTxn(AddOffsetsToTxnRequest {
            transactional_id: k.txn_there.clone(),
            producer_id: pid,
            producer_epoch: epoch,
            group_id: k.group_here.clone(),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, NOT_COORDINATOR);
    let Response::EndTxn(r) = common::call(
        &broker,
        ApiKey::EndTxn,
        5,
        Request::EndTxn(EndTxnRequest {
            transactional_id: k.txn_there.clone(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: true,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, NOT_COORDINATOR);

    let Response::DescribeTransactions(r) = common::call(
        &broker,
        ApiKey::DescribeTransactions,
        0,
        Request::DescribeTransactions(DescribeTransactionsRequest {
            transactional_ids: vec![k.txn_here.clone(), k.txn_there.clone()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    let codes: Vec<i16> = r.transaction_states.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, NOT_COORDINATOR]);

    let Response::ListTransactions(r) = common::call(
        &broker,
        ApiKey::ListTransactions,
        1,
        Request::ListTransactions(ListTransactionsRequest {
            duration_filter: -1,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    let listed: Vec<&str> = r
        .transaction_states
        .iter()
        .map(|t| t.transactional_id.as_str())
        .collect();
    assert_eq!(listed, vec![k.txn_here.as_str()]);
}
