//! Three controller-only and two broker-only `arus serve` processes on 127.0.0.1
//! (`process.roles=controller` / `process.roles=broker`), formatted with `arus storage
//! format` and configured with Kafka's keys:
//! - the broker-only nodes receive the metadata log as observers of the quorum (the active
//!   controller adds them as openraft learners at their observer listener): a topic created
//!   through one broker is led by both, records produced to each leader are read back;
//! - DescribeQuorum on the controllers lists the three voters and the two brokers as
//!   observers;
//! - SIGKILL of the active controller: another is elected, keeps the brokers as observers,
//!   and a topic created and produced to afterwards works on both brokers.

#![allow(clippy::needless_update)]

mod common;

use std::time::{Duration, Instant};

use arus_client::Client;
use arus_protocol::messages::DescribeQuorumRequest;
use arus_protocol::messages::RemoveRaftVoterRequest;
use arus_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use arus_protocol::messages::describe_quorum_response::DescribeQuorumResponse;
use arus_protocol::{ErrorCode, Request, Response};
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Node, Role, arus, eventually};

/// How the quorum is configured.
enum Quorum {
    /// `controller.quorum.voters` (kraft.version 0).
    Static,
    /// `controller.quorum.bootstrap.servers`, the controllers formatted with
    /// `--initial-controllers` naming these directory ids (kraft.version 1).
    Dynamic { directory_ids: Vec<String> },
}

/// DescribeQuorum v2 as the active controller answers it.
async fn describe_quorum(controllers: &[Node]) -> Option<DescribeQuorumResponse> {
    for n in controllers.iter().filter(|n| n.is_running()) {
        let Ok(mut c) = Client::connect(&n.addr()).await else {
            continue;
        };
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
        if let Ok(Response::DescribeQuorum(r)) = c.send_with_version(request, 2).await
            && r.topics
                .first()
                .and_then(|t| t.partitions.first())
                .is_some_and(|p| p.error_code == 0)
        {
            return Some(r);
        }
    }
    None
}

/// (leader, voters, observers) of a DescribeQuorum answer, ids sorted.
fn members(r: &DescribeQuorumResponse) -> (i32, Vec<i32>, Vec<i32>) {
    let p = &r.topics[0].partitions[0];
    let mut voters: Vec<i32> = p.current_voters.iter().map(|v| v.replica_id).collect();
    let mut observers: Vec<i32> = p.observers.iter().map(|v| v.replica_id).collect();
    voters.sort();
    observers.sort();
    (p.leader_id, voters, observers)
}

/// Partition → leader, as broker `addr` describes `topic`.
async fn leaders(addr: &str, topic: &str) -> Option<Vec<i32>> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(topic).await.ok()?;
    Some(t.partitions.iter().map(|p| p.leader_id).collect())
}

fn record(value: &str) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, Some(b"k"), Some(value.as_bytes()), &[]);
    b.build().unwrap()
}

/// Creates `topic` through `via`, waits until both brokers agree on its leaders (brokers
/// only), produces `value` to each leader and reads it back.
async fn create_and_use(brokers: &[Node], via: usize, topic: &str, value: &str) -> Vec<i32> {
    let addr = brokers[via].addr();
    eventually(Duration::from_secs(20), "CreateTopics", || {
        let addr = addr.clone();
        async move {
            let mut c = Client::connect(&addr).await.ok()?;
            c.create_topic(topic, 4, 1, &[]).await.ok()
        }
    })
    .await;
    let mut seen = Vec::new();
    for b in brokers {
        let addr = b.addr();
        let l = eventually(
            Duration::from_secs(10),
            "both brokers list the topic",
            || {
                let addr = addr.clone();
                async move {
                    leaders(&addr, topic)
                        .await
                        .filter(|l| l.iter().all(|l| *l >= 0))
                }
            },
        )
        .await;
        seen.push(l);
    }
    assert_eq!(seen[0], seen[1]);
    let placed = seen.remove(0);
    for id in [4, 5] {
        assert!(
            placed.contains(&id),
            "broker {id} leads nothing: {placed:?}"
        );
    }
    assert!(placed.iter().all(|l| *l == 4 || *l == 5), "{placed:?}");
    for (p, leader) in placed.iter().enumerate() {
        let broker = brokers.iter().find(|n| n.id == *leader).unwrap();
        let mut c = Client::connect(&broker.addr()).await.unwrap();
        c.produce(topic, p as i32, record(value), -1, 5000)
            .await
            .unwrap_or_else(|e| panic!("produce to {topic}-{p} on broker {leader}: {e}"));
        let fetched = c.fetch(topic, p as i32, 0, 100, 1 << 20).await.unwrap();
        let values: Vec<_> = fetched
            .records
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string())
            .collect();
        assert_eq!(values, vec![value.to_string()], "{topic}-{p} on {leader}");
    }
    placed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_only_nodes_observe_a_static_quorum_of_controller_only_nodes() {
    split_roles(Quorum::Static).await;
}

/// With `controller.quorum.bootstrap.servers` the brokers know no voter ids: they find the
/// leader through the bootstrap servers' DescribeQuorum. DescribeQuorum reports every
/// voter's directory id given to `--initial-controllers`, and every voter's endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_only_nodes_observe_a_dynamic_quorum_of_controller_only_nodes() {
    let directory_ids: Vec<String> = (0..3).map(|_| arus(&["storage", "random-uuid"])).collect();
    let quorum = split_roles(Quorum::Dynamic {
        directory_ids: directory_ids.clone(),
    })
    .await;
    let p = &quorum.topics[0].partitions[0];
    let mut reported: Vec<(i32, String)> = p
        .current_voters
        .iter()
        .map(|v| (v.replica_id, v.replica_directory_id.to_string()))
        .collect();
    reported.sort();
    let expected: Vec<(i32, String)> = directory_ids
        .iter()
        .enumerate()
        .map(|(i, d)| (i as i32 + 1, d.clone()))
        .collect();
    assert_eq!(reported, expected);
    let mut nodes: Vec<i32> = quorum.nodes.iter().map(|n| n.node_id).collect();
    nodes.sort();
    assert_eq!(nodes, vec![1, 2, 3]);
}

/// Runs the scenario of the module documentation; returns the last DescribeQuorum answer.
async fn split_roles(quorum: Quorum) -> DescribeQuorumResponse {
    let dynamic = matches!(quorum, Quorum::Dynamic { .. });
    let dir = tempfile::tempdir().unwrap();
    // Nodes 1–3 controller-only, 4–5 broker-only.
    let (quorum_config, format) = match quorum {
        Quorum::Static => (common::cluster::Quorum::Voters, Format::Plain),
        Quorum::Dynamic { directory_ids } => (
            common::cluster::Quorum::Bootstrap(vec![1, 2, 3]),
            Format::InitialControllers(directory_ids),
        ),
    };
    let mut nodes = Cluster::builder(dir.path())
        .nodes(3, Role::Controller, format)
        .nodes(2, Role::Broker, Format::Plain)
        .quorum(quorum_config)
        .property("broker.session.timeout.ms", 2000)
        .property("broker.heartbeat.interval.ms", 200)
        .start()
        .nodes;
    let brokers = nodes.split_off(3);
    let mut controllers = nodes;

    create_and_use(&brokers, 0, "orders", "before").await;
    let quorum = eventually(
        Duration::from_secs(10),
        "DescribeQuorum with both observers",
        || async {
            let r = describe_quorum(&controllers).await?;
            (members(&r).2 == vec![4, 5]).then_some(r)
        },
    )
    .await;
    let (leader, voters, _) = members(&quorum);
    assert_eq!(voters, vec![1, 2, 3]);
    // The observers are fed: their log end is reported by the leader.
    let p = &quorum.topics[0].partitions[0];
    assert!(
        p.observers.iter().all(|o| o.log_end_offset > 0),
        "{:?}",
        p.observers
    );

    // SIGKILL of the active controller: a new one keeps the brokers as observers, and
    // the brokers keep receiving the metadata log from it.
    let killed = controllers.iter().position(|n| n.id == leader).unwrap();
    controllers[killed].kill9();
    let started = Instant::now();
    let after = eventually(
        Duration::from_secs(20),
        "a new controller with both observers",
        || async {
            let r = describe_quorum(&controllers).await?;
            let (l, _, observers) = members(&r);
            (l != leader && observers == vec![4, 5]).then_some(r)
        },
    )
    .await;
    eprintln!(
        "new controller {} after {:?}",
        members(&after).0,
        started.elapsed()
    );
    create_and_use(&brokers, 1, "after-failover", "after").await;
    // A broker forwards RemoveRaftVoter to the active controller (Kafka's KafkaApis does):
    // a static quorum refuses it (kraft.version 0), a dynamic one looks for the voter.
    let mut c = Client::connect(&brokers[0].addr()).await.unwrap();
    let request = Request::RemoveRaftVoter(RemoveRaftVoterRequest {
        cluster_id: None,
        voter_id: 1,
        voter_directory_id: arus_protocol::Uuid([7; 16]),
        ..Default::default()
    });
    let Response::RemoveRaftVoter(r) = c.send_with_version(request, 0).await.unwrap() else {
        panic!("not a RemoveRaftVoter response");
    };
    let expected = if dynamic {
        ErrorCode::VoterNotFound
    } else {
        ErrorCode::UnsupportedVersion
    };
    assert_eq!(
        ErrorCode::from_code(r.error_code),
        Some(expected),
        "{:?}",
        r.error_message
    );
    // The old topic is still served by both brokers.
    for b in &brokers {
        assert_eq!(leaders(&b.addr(), "orders").await.map(|l| l.len()), Some(4));
    }
    after
}
