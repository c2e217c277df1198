//! A broker that is one node of a cluster: with a cluster view installed in which other
//! nodes lead some partitions, the data APIs refuse those partitions as Kafka does and point
//! clients to their leaders (KIP-951), and the metadata APIs describe the view.
//!
//! Topic `routed` (node 1 is this broker):
//! - partition 0: led by node 2 at epoch 5, replicas [2, 1] (a follower here);
//! - partition 1: led by node 3 at epoch 7, replicas [3] (no replica here);
//! - partition 2: led here at epoch 3, replicas [1, 2, 3], ISR [1, 2];
//! - partition 3: no leader, epoch 4, replicas [2, 1].
//!
//! Node 4 is registered but fenced.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

mod common;

use std::sync::Arc;

use arus_broker::Broker;
use arus_broker::cluster::{BrokerNode, ClusterView, Endpoint, PartitionPlacement};
use arus_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use arus_protocol::messages::describe_topic_partitions_request::TopicRequest;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use arus_protocol::messages::metadata_request::MetadataRequestTopic;
use arus_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response, Uuid};
use arus_records::{BatchBuilder, Compression};

const TOPIC: &str = "routed";
const NOT_LEADER: i16 = ErrorCode::NotLeaderOrFollower as i16;

fn batch() -> arus_protocol::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, None, Some(b"v"), &[]);
    b.build().unwrap()
}

/// Node `id`'s endpoint on the test listener: host `node-{id}`, port 9000 + id.
fn endpoint(id: i32) -> (String, i32) {
    (format!("node-{id}"), 9000 + id)
}

fn node(id: i32, listener: &str) -> BrokerNode {
    let (host, port) = endpoint(id);
    let mut node = BrokerNode::new(
        id,
        [(
            listener.to_string(),
            Endpoint {
                host,
                port: port as u16,
            },
        )],
    );
    node.rack = Some(format!("rack-{id}"));
    node
}

fn placement(leader: Option<i32>, epoch: i32, replicas: &[i32], isr: &[i32]) -> PartitionPlacement {
    PartitionPlacement {
        leader,
        leader_epoch: epoch,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        ..Default::default()
    }
}

/// A broker with topic `routed` (4 partitions) and the view described in the module doc.
fn routed_broker(dir: &std::path::Path) -> (Arc<Broker>, Uuid, String) {
    let broker = common::open_broker(dir, &[]);
    common::create_topic_with_partitions(&broker, TOPIC, 4);
    let id = broker.topics.get(TOPIC).unwrap().id;
    let listener = broker.advertised_listener().name;
    broker.cluster.install(routed_view(&broker, id, &listener));
    // The roles the view gives the replicas held here, as the metadata applier sets them
    // (the data APIs check a replica's own role and epoch too, as Kafka's `getLocalLog`).
    let topic = broker.topics.get(TOPIC).unwrap();
    topic.partition(0).unwrap().become_follower(2, 5).unwrap();
    topic.partition(2).unwrap().become_leader(3).unwrap();
    topic.partition(3).unwrap().become_follower(-1, 4).unwrap();
    (broker, id, listener)
}

/// The view of the module doc.
fn routed_view(broker: &Broker, id: Uuid, listener: &str) -> ClusterView {
    let mut fenced = node(4, listener);
    fenced.fenced = true;
    ClusterView::new(broker.topics.cluster_id(), 1, Some(2))
        .with_broker(node(1, listener))
        .with_broker(node(2, listener))
        .with_broker(node(3, listener))
        .with_broker(fenced)
        .with_partition(id, 0, placement(Some(2), 5, &[2, 1], &[2, 1]))
        .with_partition(id, 1, placement(Some(3), 7, &[3], &[3]))
        .with_partition(id, 2, placement(Some(1), 3, &[1, 2, 3], &[1, 2]))
        .with_partition(id, 3, placement(None, 4, &[2, 1], &[]))
}

fn log_end(broker: &Broker, index: i32) -> i64 {
    broker
        .topics
        .get(TOPIC)
        .unwrap()
        .partition(index)
        .unwrap()
        .log_end_offset()
}

async fn produce(broker: &Arc<Broker>, id: Uuid, version: i16) -> ProduceResponse {
    let (name, topic_id) = if version >= 13 {
        (String::new(), id)
    } else {
        (TOPIC.to_string(), Uuid::ZERO)
    };
    let req = Request::Produce(ProduceRequest {
        acks: 1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name,
            topic_id,
            partition_data: (0..4)
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(batch()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    match common::call(broker, ApiKey::Produce, version, req).await {
        Response::Produce(r) => r,
        other => panic!("{other:?}"),
    }
}

/// The (id, host, port, rack) of each node endpoint, in order.
fn nodes<T>(
    nodes: &[T],
    f: impl Fn(&T) -> (i32, String, i32, Option<String>),
) -> Vec<(i32, String, i32, Option<String>)> {
    nodes.iter().map(f).collect()
}

fn expected_nodes(ids: &[i32]) -> Vec<(i32, String, i32, Option<String>)> {
    ids.iter()
        .map(|id| {
            let (host, port) = endpoint(*id);
            (*id, host, port, Some(format!("rack-{id}")))
        })
        .collect()
}

#[tokio::test]
async fn produce_is_refused_with_the_current_leader_from_v10() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id, _) = routed_broker(dir.path());
    let mut written = 0;
    for version in [3, 9, 10, 12, 13] {
        let r = produce(&broker, id, version).await;
        let parts = &r.responses[0].partition_responses;
        let codes: Vec<i16> = parts.iter().map(|p| p.error_code).collect();
        assert_eq!(
            codes,
            vec![NOT_LEADER, NOT_LEADER, 0, NOT_LEADER],
            "v{version}"
        );
        assert_eq!(parts[2].base_offset, written, "v{version}");
        written += 1;
        let leaders: Vec<(i32, i32)> = parts
            .iter()
            .map(|p| (p.current_leader.leader_id, p.current_leader.leader_epoch))
            .collect();
        let endpoints = nodes(&r.node_endpoints, |n| {
            (n.node_id, n.host.clone(), n.port, n.rack.clone())
        });
        if version >= 10 {
            assert_eq!(
                leaders,
                vec![(2, 5), (3, 7), (-1, -1), (-1, 4)],
                "v{version}"
            );
            // Only the leaders named, alive, once each; the leaderless partition names none.
            assert_eq!(endpoints, expected_nodes(&[2, 3]), "v{version}");
        } else {
            assert!(leaders.iter().all(|l| *l == (-1, -1)), "v{version}");
            assert!(endpoints.is_empty(), "v{version}");
        }
    }
    // Nothing reached the logs of the partitions led elsewhere.
    for index in [0, 1, 3] {
        assert_eq!(log_end(&broker, index), 0);
    }
    assert_eq!(log_end(&broker, 2), written);
}

async fn fetch(
    broker: &Arc<Broker>,
    id: Uuid,
    version: i16,
    current_leader_epoch: i32,
) -> FetchResponse {
    let (topic, topic_id) = if version >= 13 {
        (String::new(), id)
    } else {
        (TOPIC.to_string(), Uuid::ZERO)
    };
    let req = Request::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic,
            topic_id,
            partitions: (0..4)
                .map(|partition| FetchPartition {
                    partition,
                    current_leader_epoch,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    match common::call(broker, ApiKey::Fetch, version, req).await {
        Response::Fetch(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn fetch_is_refused_with_the_current_leader_from_v16_and_served_by_followers_from_v11() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id, _) = routed_broker(dir.path());
    assert_eq!(
        produce(&broker, id, 9).await.responses[0].partition_responses[2].error_code,
        0
    );
    for version in [4, 12, 13, 15, 16, 18] {
        let r = fetch(&broker, id, version, -1).await;
        assert_eq!(r.error_code, 0);
        let parts = &r.responses[0].partitions;
        let codes: Vec<i16> = parts.iter().map(|p| p.error_code).collect();
        // From v11 a consumer may read from a follower (KIP-392, Kafka's
        // `FetchParams.fetchOnlyLeader`): partitions 0 and 3 have a replica here.
        let refused: &[usize] = if version >= 11 { &[1] } else { &[0, 1, 3] };
        let expected: Vec<i16> = (0..4)
            .map(|i| if refused.contains(&i) { NOT_LEADER } else { 0 })
            .collect();
        assert_eq!(codes, expected, "v{version}");
        assert!(!parts[2].records.as_ref().unwrap().is_empty(), "v{version}");
        for &i in refused {
            let p = &parts[i];
            assert_eq!(
                (p.high_watermark, p.log_start_offset),
                (-1, -1),
                "v{version}"
            );
            assert!(p.records.as_ref().unwrap().is_empty());
        }
        let leaders: Vec<(i32, i32)> = parts
            .iter()
            .map(|p| (p.current_leader.leader_id, p.current_leader.leader_epoch))
            .collect();
        let endpoints = nodes(&r.node_endpoints, |n| {
            (n.node_id, n.host.clone(), n.port, n.rack.clone())
        });
        if version >= 16 {
            assert_eq!(
                leaders,
                vec![(-1, -1), (3, 7), (-1, -1), (-1, -1)],
                "v{version}"
            );
            assert_eq!(endpoints, expected_nodes(&[3]), "v{version}");
        } else {
            assert!(leaders.iter().all(|l| *l == (-1, -1)), "v{version}");
            assert!(endpoints.is_empty(), "v{version}");
        }
    }
}

#[tokio::test]
async fn a_stale_leader_epoch_is_fenced_and_pointed_to_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id, _) = routed_broker(dir.path());
    // Epoch 2 is older than every partition's: partition 1 has no replica here (never
    // compared), the others are fenced. Partition 2 is led here: the client is pointed to
    // this node.
    let r = fetch(&broker, id, 18, 2).await;
    let parts = &r.responses[0].partitions;
    let fenced = ErrorCode::FencedLeaderEpoch as i16;
    let codes: Vec<i16> = parts.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![fenced, NOT_LEADER, fenced, fenced]);
    assert_eq!(
        (
            parts[2].current_leader.leader_id,
            parts[2].current_leader.leader_epoch
        ),
        (1, 3)
    );
    let endpoints = nodes(&r.node_endpoints, |n| {
        (n.node_id, n.host.clone(), n.port, n.rack.clone())
    });
    assert_eq!(endpoints, expected_nodes(&[1, 2, 3]));
    // An epoch newer than the partition's is unknown; the current one is served.
    let r = fetch(&broker, id, 18, 9).await;
    assert_eq!(
        r.responses[0].partitions[2].error_code,
        ErrorCode::UnknownLeaderEpoch as i16
    );
    let r = fetch(&broker, id, 18, 3).await;
    assert_eq!(r.responses[0].partitions[2].error_code, 0);
}

#[tokio::test]
async fn list_offsets_offset_for_leader_epoch_and_delete_records_need_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id, _) = routed_broker(dir.path());
    produce(&broker, id, 9).await;
    let list = |replica_id: i32, version: i16| {
        let broker = broker.clone();
        async move {
            let req = Request::ListOffsets(ListOffsetsRequest {
                replica_id,
                topics: vec![ListOffsetsTopic {
                    name: TOPIC.into(),
                    partitions: (0..4)
                        .map(|partition_index| ListOffsetsPartition {
                            partition_index,
                            current_leader_epoch: -1,
                            timestamp: -1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            });
            match common::call(&broker, ApiKey::ListOffsets, version, req).await {
                Response::ListOffsets(r) => r.topics[0]
                    .partitions
                    .iter()
                    .map(|p| (p.error_code, p.offset))
                    .collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            }
        }
    };
    for version in [1, 11] {
        assert_eq!(
            list(-1, version).await,
            vec![(NOT_LEADER, -1), (NOT_LEADER, -1), (0, 1), (NOT_LEADER, -1)],
            "v{version}"
        );
    }
    // The debugging replica id reads any replica held here, but not a partition without one.
    assert_eq!(
        list(-2, 11).await,
        vec![(0, 0), (NOT_LEADER, -1), (0, 1), (0, 0)]
    );

    let req = Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![OffsetForLeaderTopic {
            topic: TOPIC.into(),
            partitions: (0..4)
                .map(|partition| OffsetForLeaderPartition {
                    partition,
                    current_leader_epoch: -1,
                    // Partition 2's current epoch: it ends at the log end.
                    leader_epoch: 3,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    for version in [2, 4] {
        let Response::OffsetForLeaderEpoch(r) =
            common::call(&broker, ApiKey::OffsetForLeaderEpoch, version, req.clone()).await
        else {
            panic!()
        };
        let answers: Vec<(i16, i32, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        assert_eq!(
            answers,
            vec![
                (NOT_LEADER, -1, -1),
                (NOT_LEADER, -1, -1),
                (0, 3, 1),
                (NOT_LEADER, -1, -1)
            ],
            "v{version}"
        );
    }

    let req = Request::DeleteRecords(DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: TOPIC.into(),
            partitions: (0..4)
                .map(|partition_index| DeleteRecordsPartition {
                    partition_index,
                    offset: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    });
    for version in [0, 2] {
        let Response::DeleteRecords(r) =
            common::call(&broker, ApiKey::DeleteRecords, version, req.clone()).await
        else {
            panic!()
        };
        let answers: Vec<(i16, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.low_watermark))
            .collect();
        assert_eq!(
            answers,
            vec![(NOT_LEADER, -1), (NOT_LEADER, -1), (0, 1), (NOT_LEADER, -1)],
            "v{version}"
        );
    }
}

async fn metadata(broker: &Arc<Broker>, version: i16) -> MetadataResponse {
    let req = Request::Metadata(MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(TOPIC.into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    match common::call(broker, ApiKey::Metadata, version, req).await {
        Response::Metadata(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn metadata_describes_the_leaders_replicas_and_alive_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _, _) = routed_broker(dir.path());
    for version in [1, 9, 12, 13] {
        let r = metadata(&broker, version).await;
        let brokers = nodes(&r.brokers, |b| {
            (b.node_id, b.host.clone(), b.port, b.rack.clone())
        });
        // The fenced node 4 is not listed.
        assert_eq!(brokers, expected_nodes(&[1, 2, 3]), "v{version}");
        // A random alive broker, as Kafka's KRaft brokers answer (KIP-590).
        assert!(
            [1, 2, 3].contains(&r.controller_id),
            "v{version}: {}",
            r.controller_id
        );
        let parts: Vec<_> = r.topics[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.error_code,
                    p.leader_id,
                    p.leader_epoch,
                    p.replica_nodes.clone(),
                    p.isr_nodes.clone(),
                )
            })
            .collect();
        let leader_not_available = ErrorCode::LeaderNotAvailable as i16;
        assert_eq!(
            parts,
            vec![
                (0, 0, 2, 5, vec![2, 1], vec![2, 1]),
                (1, 0, 3, 7, vec![3], vec![3]),
                (2, 0, 1, 3, vec![1, 2, 3], vec![1, 2]),
                (3, leader_not_available, -1, 4, vec![2, 1], vec![]),
            ],
            "v{version}"
        );
    }
    // The controller is picked at random among the alive brokers, not always the same one.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        seen.insert(metadata(&broker, 12).await.controller_id);
    }
    assert_eq!(seen, [1, 2, 3].into());
}

#[tokio::test]
async fn offline_replicas_and_unavailable_listeners_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[]);
    common::create_topic_with_partitions(&broker, TOPIC, 2);
    let id = broker.topics.get(TOPIC).unwrap().id;
    let listener = broker.advertised_listener().name;
    let mut fenced = node(3, &listener);
    fenced.fenced = true;
    broker.cluster.install(
        ClusterView::new(broker.topics.cluster_id(), 1, Some(1))
            .with_broker(node(1, &listener))
            .with_broker(node(2, "ELSEWHERE"))
            .with_broker(fenced)
            // Node 2 has no endpoint on this listener, node 3 is fenced, 5 is unknown.
            .with_partition(id, 0, placement(Some(1), 1, &[1, 2, 3, 5], &[1, 2, 3]))
            .with_partition(id, 1, placement(Some(2), 1, &[2, 1], &[2, 1])),
    );
    let r = metadata(&broker, 12).await;
    let p = &r.topics[0].partitions;
    assert_eq!(p[0].error_code, 0);
    assert_eq!(p[0].replica_nodes, vec![1, 2, 3, 5]);
    assert_eq!(p[0].offline_replicas, vec![2, 3, 5]);
    assert_eq!(p[1].error_code, ErrorCode::ListenerNotFound as i16);
    assert_eq!(p[1].leader_id, -1);
    let r = metadata(&broker, 5).await;
    assert_eq!(
        r.topics[0].partitions[1].error_code,
        ErrorCode::LeaderNotAvailable as i16
    );
    // v0 leaves out the replicas clients cannot reach and says so.
    let r = metadata(&broker, 0).await;
    let p = &r.topics[0].partitions;
    assert_eq!(p[0].error_code, ErrorCode::ReplicaNotAvailable as i16);
    assert_eq!(p[0].replica_nodes, vec![1]);
    assert_eq!(p[0].isr_nodes, vec![1]);
    let brokers: Vec<i32> = r.brokers.iter().map(|b| b.node_id).collect();
    assert_eq!(brokers, vec![1]);
}

#[tokio::test]
async fn describe_topic_partitions_and_describe_cluster_read_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _, _) = routed_broker(dir.path());
    let req = Request::DescribeTopicPartitions(DescribeTopicPartitionsRequest {
        topics: vec![TopicRequest {
            name: TOPIC.into(),
            ..Default::default()
        }],
        response_partition_limit: 2000,
        ..Default::default()
    });
    let Response::DescribeTopicPartitions(r) =
        common::call(&broker, ApiKey::DescribeTopicPartitions, 0, req).await
    else {
        panic!()
    };
    let parts: Vec<_> = r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.error_code,
                p.leader_id,
                p.leader_epoch,
                p.replica_nodes.clone(),
            )
        })
        .collect();
    // No per-partition error, even leaderless (Kafka's DescribeTopicPartitions).
    assert_eq!(
        parts,
        vec![
            (0, 2, 5, vec![2, 1]),
            (0, 3, 7, vec![3]),
            (0, 1, 3, vec![1, 2, 3]),
            (0, -1, 4, vec![2, 1]),
        ]
    );

    let describe = |version: i16, include_fenced_brokers: bool| {
        let broker = broker.clone();
        async move {
            let req = Request::DescribeCluster(DescribeClusterRequest {
                endpoint_type: 1,
                include_fenced_brokers,
                ..Default::default()
            });
            match common::call(&broker, ApiKey::DescribeCluster, version, req).await {
                Response::DescribeCluster(r) => r,
                other => panic!("{other:?}"),
            }
        }
    };
    let r = describe(0, false).await;
    let brokers = nodes(&r.brokers, |b| {
        (b.broker_id, b.host.clone(), b.port, b.rack.clone())
    });
    assert_eq!(brokers, expected_nodes(&[1, 2, 3]));
    assert!([1, 2, 3].contains(&r.controller_id));
    let r = describe(2, true).await;
    let brokers: Vec<(i32, bool)> = r
        .brokers
        .iter()
        .map(|b| (b.broker_id, b.is_fenced))
        .collect();
    assert_eq!(brokers, vec![(1, false), (2, false), (3, false), (4, true)]);
}

#[tokio::test]
async fn find_coordinator_names_the_leader_of_the_keys_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[("offsets.topic.num.partitions", "3")]);
    let offsets = arus_broker::groups::offsets_topic(&broker).unwrap();
    let listener = broker.advertised_listener().name;
    let groups: Vec<String> = (0..3)
        .map(|p| {
            (0..)
                .map(|i| format!("group-{i}"))
                .find(|g| arus_group::records::offsets_partition_for(g, 3) == p)
                .unwrap()
        })
        .collect();
    let mut fenced = node(3, &listener);
    fenced.fenced = true;
    broker.cluster.install(
        ClusterView::new(broker.topics.cluster_id(), 1, Some(1))
            .with_broker(node(1, &listener))
            .with_broker(node(2, &listener))
            .with_broker(fenced)
            .with_partition(offsets.id, 0, placement(Some(2), 1, &[2], &[2]))
            .with_partition(offsets.id, 1, placement(None, 1, &[2], &[]))
            .with_partition(offsets.id, 2, placement(Some(3), 1, &[3], &[3])),
    );
    let unavailable = ErrorCode::CoordinatorNotAvailable as i16;
    for version in [0, 3] {
        let mut answers = Vec::new();
        for g in &groups {
            let req = Request::FindCoordinator(FindCoordinatorRequest {
                key: g.clone(),
                key_type: 0,
                ..Default::default()
            });
            let Response::FindCoordinator(r) =
                common::call(&broker, ApiKey::FindCoordinator, version, req).await
            else {
                panic!()
            };
            answers.push((r.error_code, r.node_id, r.host, r.port));
        }
        let (host, port) = endpoint(2);
        assert_eq!(
            answers,
            vec![
                (0, 2, host, port),
                (unavailable, -1, String::new(), -1),
                (unavailable, -1, String::new(), -1),
            ],
            "v{version}"
        );
    }
    let req = Request::FindCoordinator(FindCoordinatorRequest {
        key_type: 0,
        coordinator_keys: groups.clone(),
        ..Default::default()
    });
    let Response::FindCoordinator(r) = common::call(&broker, ApiKey::FindCoordinator, 6, req).await
    else {
        panic!()
    };
    let answers: Vec<_> = r
        .coordinators
        .iter()
        .map(|c| {
            (
                c.key.clone(),
                c.error_code,
                c.node_id,
                c.error_message.clone(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        vec![
            (groups[0].clone(), 0, 2, None),
            (groups[1].clone(), unavailable, -1, None),
            (groups[2].clone(), unavailable, -1, None),
        ]
    );
}

#[tokio::test]
async fn the_single_node_view_follows_the_bound_port() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[("listeners", "PLAINTEXT://127.0.0.1:0")]);
    common::create_topic(&broker, TOPIC, &[]);
    broker.set_bound_ports(&[4321]);
    let r = metadata(&broker, 12).await;
    let brokers = nodes(&r.brokers, |b| {
        (b.node_id, b.host.clone(), b.port, b.rack.clone())
    });
    assert_eq!(brokers, vec![(1, "127.0.0.1".to_string(), 4321, None)]);
    assert_eq!(r.controller_id, 1);
    let p = &r.topics[0].partitions[0];
    assert_eq!(
        (p.leader_id, p.leader_epoch, p.replica_nodes.clone()),
        (1, 0, vec![1])
    );
}

#[tokio::test]
async fn describe_producers_needs_a_replica_here() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _, _) = routed_broker(dir.path());
    let req = Request::DescribeProducers(DescribeProducersRequest {
        topics: vec![describe_producers_request::TopicRequest {
            name: TOPIC.into(),
            partition_indexes: vec![0, 1, 2, 3],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::DescribeProducers(r) =
        common::call(&broker, ApiKey::DescribeProducers, 0, req).await
    else {
        panic!()
    };
    let codes: Vec<i16> = r.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    // Any replica with a log here answers (Kafka's `Partition.activeProducerState`): the
    // followers of partitions 0 and 3 too; partition 1 has no replica here.
    assert_eq!(codes, vec![0, NOT_LEADER, 0, 0]);
}

#[tokio::test]
async fn a_partition_the_cluster_has_but_this_node_does_not_host_is_not_led_here() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id, listener) = routed_broker(dir.path());
    // Partition 4 exists in the cluster (led by node 3) but not in this node's registry;
    // partition 5 exists nowhere.
    broker
        .cluster
        .install(routed_view(&broker, id, &listener).with_partition(
            id,
            4,
            placement(Some(3), 2, &[3], &[3]),
        ));
    let req = Request::Produce(ProduceRequest {
        acks: 1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: TOPIC.into(),
            partition_data: [4, 5]
                .into_iter()
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(batch()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::Produce(r) = common::call(&broker, ApiKey::Produce, 11, req).await else {
        panic!()
    };
    let parts: Vec<_> = r.responses[0]
        .partition_responses
        .iter()
        .map(|p| {
            (
                p.error_code,
                p.current_leader.leader_id,
                p.current_leader.leader_epoch,
            )
        })
        .collect();
    let unknown = ErrorCode::UnknownTopicOrPartition as i16;
    assert_eq!(parts, vec![(NOT_LEADER, 3, 2), (unknown, -1, -1)]);
    let endpoints = nodes(&r.node_endpoints, |n| {
        (n.node_id, n.host.clone(), n.port, n.rack.clone())
    });
    assert_eq!(endpoints, expected_nodes(&[3]));

    let req = Request::ListOffsets(ListOffsetsRequest {
        replica_id: -2,
        topics: vec![ListOffsetsTopic {
            name: TOPIC.into(),
            partitions: [4, 5]
                .into_iter()
                .map(|partition_index| ListOffsetsPartition {
                    partition_index,
                    current_leader_epoch: -1,
                    timestamp: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::ListOffsets(r) = common::call(&broker, ApiKey::ListOffsets, 11, req).await else {
        panic!()
    };
    let codes: Vec<i16> = r.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![NOT_LEADER, unknown]);
}
