//! What the versions Kafka 4.4 added mean, through the real handlers: topics named by id
//! (Produce v13, OffsetCommit v10, OffsetFetch v10, TxnOffsetCommit v6), DescribeGroups v6's
//! GROUP_ID_NOT_FOUND, DeleteGroups v3, ListOffsets v11, ListTransactions v2 patterns and
//! ConsumerGroupDescribe v1 member types. (ApiVersions v5 is tested beside its handler and,
//! over a socket, in `crates/arus/tests/api_versions_44.rs`.)

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

mod common;

use std::sync::Arc;
use std::time::Duration;

use arus_broker::{Broker, Outcome};
use arus_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use arus_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use arus_protocol::messages::*;
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use arus_records::{BatchBuilder, Compression};

const UNKNOWN_ID: Uuid = Uuid([7; 16]);

async fn call(broker: &Arc<Broker>, version: i16, req: Request) -> Response {
    let header = RequestHeader {
        request_api_key: req.api_key() as i16,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("protocol-44".into()),
        ..Default::default()
    };
    match broker.handle(&header, req).await {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

async fn setup(dir: &std::path::Path) -> (Arc<Broker>, Uuid) {
    let broker = common::open_broker(dir, &[("group.initial.rebalance.delay.ms", "0")]);
    common::create_topic(&broker, "t", &[]);
    broker.groups.wait_loaded().await;
    broker.txns.wait_loaded().await;
    let id = broker.topics.get("t").unwrap().id;
    (broker, id)
}

fn batch(value: &str) -> arus_protocol::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, None, Some(value.as_bytes()), &[]);
    b.build().unwrap()
}

fn produce_topic(name: &str, id: Uuid, partition: i32) -> TopicProduceData {
    TopicProduceData {
        name: name.into(),
        topic_id: id,
        partition_data: vec![PartitionProduceData {
            index: partition,
            records: Some(batch("v")),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn produce_v13_names_topics_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id) = setup(dir.path()).await;
    let r = call(
        &broker,
        13,
        Request::Produce(ProduceRequest {
            acks: 1,
            timeout_ms: 5000,
            topic_data: vec![
                produce_topic("", id, 0),
                produce_topic("", id, 4),
                produce_topic("", UNKNOWN_ID, 0),
                // v13 has no names: one alone names nothing.
                produce_topic("t", Uuid::ZERO, 0),
            ],
            ..Default::default()
        }),
    )
    .await;
    let Response::Produce(r) = r else {
        panic!("{r:?}")
    };
    let rows: Vec<(Uuid, i16, i64)> = r
        .responses
        .iter()
        .map(|t| {
            let p = &t.partition_responses[0];
            (t.topic_id, p.error_code, p.base_offset)
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (id, 0, 0),
            (id, ErrorCode::UnknownTopicOrPartition.code(), -1),
            (UNKNOWN_ID, ErrorCode::UnknownTopicId.code(), -1),
            (Uuid::ZERO, ErrorCode::UnknownTopicId.code(), -1),
        ]
    );
    // The record went to t (by id), and only there.
    let partition = broker.topics.get("t").unwrap().partition(0).unwrap();
    assert_eq!(partition.high_watermark(), 1);
    // v12 still names topics; an id there means nothing.
    let r = call(
        &broker,
        12,
        Request::Produce(ProduceRequest {
            acks: 1,
            timeout_ms: 5000,
            topic_data: vec![produce_topic("t", UNKNOWN_ID, 0)],
            ..Default::default()
        }),
    )
    .await;
    let Response::Produce(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 1);
    broker.shutdown();
}

fn commit_topic(name: &str, id: Uuid, partitions: &[(i32, i64)]) -> OffsetCommitRequestTopic {
    OffsetCommitRequestTopic {
        name: name.into(),
        topic_id: id,
        partitions: partitions
            .iter()
            .map(
                |&(partition_index, committed_offset)| OffsetCommitRequestPartition {
                    partition_index,
                    committed_offset,
                    committed_leader_epoch: -1,
                    committed_metadata: Some("m".into()),
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    }
}

/// OffsetFetch (v8+ shape) of `group`: `topics` None for all of them.
async fn offset_fetch(
    broker: &Arc<Broker>,
    version: i16,
    group: &str,
    topics: Option<Vec<(&str, Uuid, Vec<i32>)>>,
) -> Vec<(String, Uuid, i32, i64, i16)> {
    let r = call(
        broker,
        version,
        Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.into(),
                topics: topics.map(|ts| {
                    ts.into_iter()
                        .map(
                            |(name, topic_id, partition_indexes)| OffsetFetchRequestTopics {
                                name: name.into(),
                                topic_id,
                                partition_indexes,
                                ..Default::default()
                            },
                        )
                        .collect()
                }),
                member_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await;
    let Response::OffsetFetch(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.groups[0].error_code, 0);
    r.groups[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.clone(),
                    t.topic_id,
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn offset_commit_and_fetch_v10_name_topics_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id) = setup(dir.path()).await;
    let r = call(
        &broker,
        10,
        Request::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: -1,
            topics: vec![
                commit_topic("", id, &[(0, 42), (3, 1)]),
                commit_topic("", UNKNOWN_ID, &[(0, 1), (1, 1)]),
            ],
            ..Default::default()
        }),
    )
    .await;
    let Response::OffsetCommit(r) = r else {
        panic!("{r:?}")
    };
    let rows: Vec<(Uuid, i32, i16)> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic_id, p.partition_index, p.error_code))
        })
        .collect();
    let unknown_id = ErrorCode::UnknownTopicId.code();
    assert_eq!(
        rows,
        vec![
            (id, 0, 0),
            (id, 3, ErrorCode::UnknownTopicOrPartition.code()),
            (UNKNOWN_ID, 0, unknown_id),
            (UNKNOWN_ID, 1, unknown_id),
        ]
    );
    // Stored under the topic's name: a by-name fetch (v9) sees it.
    assert_eq!(
        offset_fetch(&broker, 9, "g", Some(vec![("t", Uuid::ZERO, vec![0])])).await,
        vec![("t".to_string(), Uuid::ZERO, 0, 42, 0)]
    );
    // v10 by id, with an unknown id after the known ones (as Kafka orders them).
    assert_eq!(
        offset_fetch(
            &broker,
            10,
            "g",
            Some(vec![("", UNKNOWN_ID, vec![0]), ("", id, vec![0, 1])])
        )
        .await,
        vec![
            ("t".to_string(), id, 0, 42, 0),
            ("t".to_string(), id, 1, -1, 0),
            (String::new(), UNKNOWN_ID, 0, -1, unknown_id),
        ]
    );
    // All of the group's topics: each with its id.
    assert_eq!(
        offset_fetch(&broker, 10, "g", None).await,
        vec![("t".to_string(), id, 0, 42, 0)]
    );
    // A topic deleted since has no id: a v10 answer leaves it out, v9 still names it.
    common::create_topic(&broker, "gone", &[]);
    let gone = broker.topics.get("gone").unwrap().id;
    let r = call(
        &broker,
        10,
        Request::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: -1,
            topics: vec![commit_topic("", gone, &[(0, 5)])],
            ..Default::default()
        }),
    )
    .await;
    let Response::OffsetCommit(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    broker.topics.delete("gone").unwrap();
    let all_v10 = offset_fetch(&broker, 10, "g", None).await;
    assert!(all_v10.iter().all(|row| row.0 == "t"), "{all_v10:?}");
    broker.shutdown();
}

async fn init_pid(broker: &Arc<Broker>, txn: &str) -> (i64, i16) {
    for _ in 0..200 {
        let r = call(
            broker,
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
        if r.error_code == ErrorCode::ConcurrentTransactions.code() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(r.error_code, 0);
        return (r.producer_id, r.producer_epoch);
    }
    panic!("InitProducerId kept answering CONCURRENT_TRANSACTIONS")
}

#[tokio::test]
async fn txn_offset_commit_v6_names_topics_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id) = setup(dir.path()).await;
    let (pid, epoch) = init_pid(&broker, "tx").await;
    let txn_commit = |topics: Vec<TxnOffsetCommitRequestTopic>| {
        Request::TxnOffsetCommit(TxnOffsetCommitRequest {
            transactional_id: "tx".into(),
            group_id: "g".into(),
            producer_id: pid,
            producer_epoch: epoch,
            generation_id_or_member_epoch: -1,
            topics,
            ..Default::default()
        })
    };
    let topic = |name: &str, topic_id: Uuid, offset: i64| TxnOffsetCommitRequestTopic {
        name: name.into(),
        topic_id,
        partitions: vec![TxnOffsetCommitRequestPartition {
            partition_index: 0,
            committed_offset: offset,
            committed_leader_epoch: -1,
            ..Default::default()
        }],
        ..Default::default()
    };
    // Without AddOffsetsToTxn: an unknown id is refused as such.
    let Response::TxnOffsetCommit(r) = call(
        &broker,
        6,
        txn_commit(vec![topic("", UNKNOWN_ID, 1), topic("", id, 1)]),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::UnknownTopicId.code()
    );
    assert_eq!(r.topics[0].topic_id, UNKNOWN_ID);
    // A fresh directory finalizes transaction.version 2, under which v5+ adds the offsets
    // partition to the transaction itself (KIP-890 part 2), so the known id is committed.
    assert_eq!(r.topics[1].partitions[0].error_code, 0);
    let Response::AddOffsetsToTxn(r) = call(
        &broker,
        3,
        Request::AddOffsetsToTxn(AddOffsetsToTxnRequest {
            transactional_id: "tx".into(),
            producer_id: pid,
            producer_epoch: epoch,
            group_id: "g".into(),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    let Response::TxnOffsetCommit(r) = call(&broker, 6, txn_commit(vec![topic("", id, 9)])).await
    else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(r.topics[0].topic_id, id);
    let Response::EndTxn(r) = call(
        &broker,
        3,
        Request::EndTxn(EndTxnRequest {
            transactional_id: "tx".into(),
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
    assert_eq!(r.error_code, 0);
    // The offset committed with the transaction, under the topic's name.
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = offset_fetch(&broker, 9, "g", Some(vec![("t", Uuid::ZERO, vec![0])])).await;
        if seen[0].3 == 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, vec![("t".to_string(), Uuid::ZERO, 0, 9, 0)]);
    broker.shutdown();
}

#[tokio::test]
async fn describe_groups_v6_reports_unknown_groups_as_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = setup(dir.path()).await;
    // A consumer-protocol group, which DescribeGroups (classic) cannot describe either.
    let Response::ConsumerGroupHeartbeat(hb) = call(
        &broker,
        1,
        Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
            group_id: "cg".into(),
            member_id: "m-1".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 60_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            topic_partitions: Some(vec![]),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(hb.error_code, 0);
    for version in [5, 6] {
        let Response::DescribeGroups(r) = call(
            &broker,
            version,
            Request::DescribeGroups(DescribeGroupsRequest {
                groups: vec!["missing".into(), "cg".into()],
                ..Default::default()
            }),
        )
        .await
        else {
            panic!()
        };
        let rows: Vec<(i16, Option<&str>, &str)> = r
            .groups
            .iter()
            .map(|g| {
                (
                    g.error_code,
                    g.error_message.as_deref(),
                    g.group_state.as_str(),
                )
            })
            .collect();
        if version == 5 {
            assert_eq!(rows, vec![(0, None, "Dead"), (0, None, "Dead")]);
        } else {
            let not_found = ErrorCode::GroupIdNotFound.code();
            assert_eq!(
                rows,
                vec![
                    (not_found, Some("Group missing not found."), "Dead"),
                    (not_found, Some("Group cg is not a classic group."), "Dead"),
                ]
            );
        }
    }
    // ConsumerGroupDescribe v1: the member joined through the consumer protocol.
    let Response::ConsumerGroupDescribe(r) = call(
        &broker,
        1,
        Request::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
            group_ids: vec!["cg".into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.groups[0].members[0].member_type, 1);
    // DeleteGroups v3: per-group codes carry no message (as Kafka).
    let Response::DeleteGroups(r) = call(
        &broker,
        3,
        Request::DeleteGroups(DeleteGroupsRequest {
            groups_names: vec!["missing".into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(
        (
            r.results[0].error_code,
            r.results[0].error_message.as_deref()
        ),
        (ErrorCode::GroupIdNotFound.code(), None)
    );
    broker.shutdown();
}

#[tokio::test]
async fn list_offsets_v11_earliest_pending_upload_is_unknown_without_tiered_storage() {
    use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = setup(dir.path()).await;
    common::produce(&broker, "t", batch("a"), 1).await;
    let Response::ListOffsets(r) = call(
        &broker,
        11,
        Request::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: [-6]
                    .into_iter()
                    .map(|timestamp| ListOffsetsPartition {
                        partition_index: 0,
                        timestamp,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    let rows: Vec<(i16, i64, i64, i32)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.timestamp, p.offset, p.leader_epoch))
        .collect();
    assert_eq!(rows, vec![(0, -1, -1, -1)]);
    broker.shutdown();
}

#[tokio::test]
async fn list_transactions_v2_filters_by_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = setup(dir.path()).await;
    for txn in ["tx-1", "tx-22", "other-tx-1"] {
        init_pid(&broker, txn).await;
    }
    let list = |version: i16, pattern: Option<&str>| {
        let broker = broker.clone();
        let pattern = pattern.map(str::to_string);
        async move {
            let Response::ListTransactions(r) = call(
                &broker,
                version,
                Request::ListTransactions(ListTransactionsRequest {
                    duration_filter: -1,
                    transactional_id_pattern: pattern,
                    ..Default::default()
                }),
            )
            .await
            else {
                panic!()
            };
            let mut ids: Vec<String> = r
                .transaction_states
                .into_iter()
                .map(|t| t.transactional_id)
                .collect();
            ids.sort();
            (r.error_code, ids)
        }
    };
    let all = vec!["other-tx-1".to_string(), "tx-1".into(), "tx-22".into()];
    assert_eq!(list(2, None).await, (0, all.clone()));
    assert_eq!(list(2, Some("")).await, (0, all.clone()));
    // The whole id must match.
    assert_eq!(
        list(2, Some("tx-[0-9]+")).await,
        (0, vec!["tx-1".to_string(), "tx-22".into()])
    );
    assert_eq!(list(2, Some("tx-2")).await, (0, vec![]));
    assert_eq!(
        list(2, Some("[")).await,
        (ErrorCode::InvalidRegularExpression.code(), vec![])
    );
    broker.shutdown();
}

#[tokio::test]
async fn list_offsets_refuses_special_timestamps_older_versions_lack() {
    use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = setup(dir.path()).await;
    common::create_topic(&broker, "u", &[]);
    let ask = |version: i16, topics: Vec<(&str, i32, i64)>| {
        let broker = broker.clone();
        let topics: Vec<ListOffsetsTopic> = topics
            .into_iter()
            .map(|(name, partition_index, timestamp)| ListOffsetsTopic {
                name: name.into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index,
                    timestamp,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        async move {
            let Response::ListOffsets(r) = call(
                &broker,
                version,
                Request::ListOffsets(ListOffsetsRequest {
                    replica_id: -1,
                    topics,
                    ..Default::default()
                }),
            )
            .await
            else {
                panic!()
            };
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.error_code)))
                .collect::<Vec<_>>()
        }
    };
    let unsupported = ErrorCode::UnsupportedVersion.code();
    // Kafka's ReplicaManager.timestampMinSupportedVersion: -3 from v7, -4 v8, -5 v9, -6 v11;
    // any other negative timestamp at no version.
    for (timestamp, first) in [(-3, 7), (-4, 8), (-5, 9), (-6, 11)] {
        assert_eq!(
            ask(first - 1, vec![("t", 0, timestamp)]).await,
            vec![("t".to_string(), unsupported)],
            "{timestamp} v{}",
            first - 1
        );
        assert_eq!(
            ask(first, vec![("t", 0, timestamp)]).await,
            vec![("t".to_string(), 0)],
            "{timestamp} v{first}"
        );
    }
    assert_eq!(
        ask(11, vec![("t", 0, -7)]).await,
        vec![("t".to_string(), unsupported)]
    );
    // A partition asked for twice: one INVALID_REQUEST entry (Kafka); others answered.
    assert_eq!(
        ask(11, vec![("t", 0, -1), ("u", 0, -1), ("t", 0, -2)]).await,
        vec![
            ("t".to_string(), ErrorCode::InvalidRequest.code()),
            ("u".to_string(), 0),
        ]
    );
    broker.shutdown();
}
