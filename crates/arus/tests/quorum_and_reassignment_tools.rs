//! What `kafka-metadata-quorum describe` and `kafka-reassign-partitions` need from one node,
//! on both single-node code paths (the file-backed node and the one-voter KRaft node of
//! `arus.single.node.quorum=true`), which must answer alike:
//! - DescribeQuorum v2 names the only voter with a listener whose name is not empty (Kafka's
//!   admin client refuses an empty one: "Empty string is not allowed.");
//! - AlterPartitionReassignments accepts the current assignment as a no-op that completes at
//!   once, and answers Kafka's per-partition codes otherwise; nothing is then in progress.

#![allow(clippy::needless_update)]

mod common;

use arus_client::Client;
use arus_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use arus_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use arus_protocol::messages::{
    AlterPartitionReassignmentsRequest, DescribeQuorumRequest, ListPartitionReassignmentsRequest,
};
use arus_protocol::{ErrorCode, Request, Response};
use common::BrokerProcess;

#[test]
fn file_backed_node() {
    quorum_and_reassignments(&["arus.single.node.quorum=false"]);
}

#[test]
fn one_voter_node() {
    quorum_and_reassignments(&["arus.single.node.quorum=true"]);
}

fn quorum_and_reassignments(overrides: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(&dir.path().join("data"), overrides);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = Client::connect(&broker.addr).await.unwrap();
        c.create_topic("t", 2, 1, &[]).await.unwrap();
        let port: u16 = broker.addr.rsplit_once(':').unwrap().1.parse().unwrap();

        let request = Request::DescribeQuorum(DescribeQuorumRequest {
            topics: vec![TopicData {
                topic_name: "__cluster_metadata".into(),
                partitions: vec![PartitionData {
                    partition_index: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let Response::DescribeQuorum(q) = c.send_with_version(request, 2).await.unwrap() else {
            panic!("not a DescribeQuorum response");
        };
        let p = &q.topics[0].partitions[0];
        assert_eq!((p.error_code, p.leader_id), (0, 1), "{q:?}");
        assert_eq!(q.nodes.len(), 1, "{q:?}");
        let l = &q.nodes[0].listeners[0];
        assert_eq!(
            (q.nodes[0].node_id, l.name.as_str(), l.host.as_str(), l.port),
            (1, "PLAINTEXT", "127.0.0.1", port),
            "{q:?}"
        );

        let target = |p: i32, r: Option<Vec<i32>>| ReassignablePartition {
            partition_index: p,
            replicas: r,
            ..Default::default()
        };
        let request = Request::AlterPartitionReassignments(AlterPartitionReassignmentsRequest {
            timeout_ms: 30_000,
            allow_replication_factor_change: true,
            topics: vec![
                ReassignableTopic {
                    name: "t".into(),
                    partitions: vec![
                        target(0, Some(vec![1])),
                        target(1, None),
                        target(1, Some(vec![2])),
                        target(9, Some(vec![1])),
                    ],
                    ..Default::default()
                },
                ReassignableTopic {
                    name: "absent".into(),
                    partitions: vec![target(0, Some(vec![1]))],
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let Response::AlterPartitionReassignments(r) =
            c.send_with_version(request, 1).await.unwrap()
        else {
            panic!("not an AlterPartitionReassignments response");
        };
        assert_eq!(r.error_code, 0, "{r:?}");
        let got: Vec<(String, i32, ErrorCode, Option<String>)> = r
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.clone(),
                        p.partition_index,
                        ErrorCode::from_code(p.error_code).unwrap(),
                        p.error_message.clone(),
                    )
                })
            })
            .collect();
        let s = |m: &str| Some(m.to_string());
        assert_eq!(
            got,
            vec![
                ("t".into(), 0, ErrorCode::None, None),
                ("t".into(), 1, ErrorCode::NoReassignmentInProgress, None),
                (
                    "t".into(),
                    1,
                    ErrorCode::InvalidReplicaAssignment,
                    s("The manual partition assignment includes broker 2, but no such broker is registered.")
                ),
                (
                    "t".into(),
                    9,
                    ErrorCode::UnknownTopicOrPartition,
                    s("Unable to find partition t:9.")
                ),
                (
                    "absent".into(),
                    0,
                    ErrorCode::UnknownTopicOrPartition,
                    s("Unable to find a topic named absent.")
                ),
            ]
        );

        let request =
            Request::ListPartitionReassignments(ListPartitionReassignmentsRequest::default());
        let Response::ListPartitionReassignments(l) =
            c.send_with_version(request, 0).await.unwrap()
        else {
            panic!("not a ListPartitionReassignments response");
        };
        assert_eq!((l.error_code, l.topics.len()), (0, 0), "{l:?}");
    });
    broker.stop();
}
