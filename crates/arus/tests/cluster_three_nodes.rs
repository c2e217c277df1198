//! Three `arus serve` processes in KRaft combined mode on 127.0.0.1, formatted with
//! `arus storage format` and configured with Kafka's keys, as an operator would run them:
//! - a topic created on one node is described by every node, its partitions led by all
//!   three brokers, and records produced to each leader are read back;
//! - SIGKILL of the active controller: another is elected and CreateTopics through a
//!   survivor succeeds;
//! - SIGKILL of a broker: within `broker.session.timeout.ms` (plus the heartbeat period)
//!   its partitions (one replica each) are reported without a leader, and after its
//!   restart they are led by it again with their records.

#![allow(clippy::needless_update)]

mod common;

use std::time::{Duration, Instant};

use arus_client::Client;
use arus_protocol::messages::DescribeQuorumRequest;
use arus_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use arus_protocol::{Request, Response};
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Node, Quorum, Role, eventually};

/// `broker.session.timeout.ms` of the test cluster.
const SESSION_MS: u64 = 2_000;

/// Partition → leader, as node `addr` describes `topic`.
async fn leaders(addr: &str, topic: &str) -> Option<Vec<i32>> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(topic).await.ok()?;
    Some(t.partitions.iter().map(|p| p.leader_id).collect())
}

/// The active controller, as the quorum reports it on a controller listener.
async fn active_controller(nodes: &[Node]) -> Option<i32> {
    for n in nodes.iter().filter(|n| n.is_running()) {
        let Ok(mut c) = Client::connect(&n.controller_addr()).await else {
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
        if let Ok(Response::DescribeQuorum(r)) = c.send_with_version(request, 0).await
            && let Some(p) = r.topics.first().and_then(|t| t.partitions.first())
            && p.error_code == 0
        {
            return Some(p.leader_id);
        }
    }
    None
}

fn record(value: &str) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, Some(b"k"), Some(value.as_bytes()), &[]);
    b.build().unwrap()
}

async fn produce_to_leaders(nodes: &[Node], topic: &str, leaders: &[i32], value: &str) {
    for (p, leader) in leaders.iter().enumerate() {
        let node = nodes.iter().find(|n| n.id == *leader).unwrap();
        let mut c = Client::connect(&node.addr()).await.unwrap();
        c.produce(topic, p as i32, record(value), -1, 5000)
            .await
            .unwrap_or_else(|e| panic!("produce to {topic}-{p} on node {leader}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_spread_leaders_survive_a_controller_kill_and_fence_a_dead_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Cluster::builder(dir.path())
        .nodes(3, Role::Combined, Format::Plain)
        .quorum(Quorum::Voters)
        .property("broker.session.timeout.ms", SESSION_MS)
        .property("broker.heartbeat.interval.ms", 200)
        .start()
        .nodes;

    // A topic created on node 1 is known to every node, led by all three brokers.
    let mut c = Client::connect(&nodes[0].addr()).await.unwrap();
    c.create_topic("orders", 6, 1, &[]).await.unwrap();
    let mut by_node = Vec::new();
    for n in &nodes {
        let addr = n.addr();
        let l = eventually(
            Duration::from_secs(10),
            "every node lists the topic",
            || {
                let addr = addr.clone();
                async move {
                    leaders(&addr, "orders")
                        .await
                        .filter(|l| l.iter().all(|l| *l >= 0))
                }
            },
        )
        .await;
        by_node.push(l);
    }
    assert!(by_node.windows(2).all(|w| w[0] == w[1]), "{by_node:?}");
    let placed = by_node[0].clone();
    for id in 1..=3 {
        assert!(placed.contains(&id), "node {id} leads nothing: {placed:?}");
    }
    produce_to_leaders(&nodes, "orders", &placed, "before").await;

    // SIGKILL of the active controller: another one is elected, admin requests succeed.
    let controller = eventually(Duration::from_secs(10), "an active controller", || {
        active_controller(&nodes)
    })
    .await;
    let killed = nodes.iter().position(|n| n.id == controller).unwrap();
    nodes[killed].kill9();
    let started = Instant::now();
    let successor = eventually(Duration::from_secs(20), "a new controller", || {
        let nodes = &nodes;
        async move { active_controller(nodes).await.filter(|c| *c != controller) }
    })
    .await;
    assert_ne!(successor, controller);
    let survivor = nodes.iter().find(|n| n.is_running()).unwrap().addr();
    eventually(
        Duration::from_secs(20),
        "CreateTopics after failover",
        || {
            let survivor = survivor.clone();
            async move {
                let mut c = Client::connect(&survivor).await.ok()?;
                c.create_topic("after-failover", 1, 1, &[]).await.ok()
            }
        },
    )
    .await;
    eprintln!(
        "new controller and CreateTopics after {:?}",
        started.elapsed()
    );
    nodes[killed].start();
    nodes[killed].wait_ready();

    // SIGKILL of a broker that is not the controller: fenced within the session timeout,
    // its partitions leaderless until it returns, then led by it again with their records.
    let controller = eventually(Duration::from_secs(10), "an active controller", || {
        active_controller(&nodes)
    })
    .await;
    let victim = nodes.iter().position(|n| n.id != controller).unwrap();
    let victim_id = nodes[victim].id;
    let watcher = nodes.iter().find(|n| n.id != victim_id).unwrap().addr();
    nodes[victim].kill9();
    let killed_at = Instant::now();
    let offline = eventually(
        Duration::from_millis(SESSION_MS * 3 + 2_000),
        "the dead broker's partitions reported without a leader",
        || {
            let watcher = watcher.clone();
            let placed = placed.clone();
            async move {
                let now = leaders(&watcher, "orders").await?;
                let expected: Vec<i32> = placed
                    .iter()
                    .map(|l| if *l == victim_id { -1 } else { *l })
                    .collect();
                (now == expected).then_some(now)
            }
        },
    )
    .await;
    let fenced_after = killed_at.elapsed();
    assert!(offline.contains(&-1));
    assert!(
        fenced_after < Duration::from_millis(SESSION_MS * 2 + 1_000),
        "fenced after {fenced_after:?}"
    );
    nodes[victim].start();
    nodes[victim].wait_ready();
    let back = eventually(Duration::from_secs(30), "partitions led again", || {
        let watcher = watcher.clone();
        let placed = placed.clone();
        async move {
            let now = leaders(&watcher, "orders").await?;
            (now == placed).then_some(now)
        }
    })
    .await;
    assert_eq!(back, placed);
    for (p, leader) in placed.iter().enumerate() {
        let node = nodes.iter().find(|n| n.id == *leader).unwrap();
        // The watcher's metadata may name the leader before the leader has taken its new
        // epoch; until then it answers NOT_LEADER_OR_FOLLOWER, as Kafka's replica does, and a
        // client retries.
        let addr = node.addr();
        let fetched = eventually(Duration::from_secs(10), "the leader serving", || {
            let addr = addr.clone();
            async move {
                let mut c = Client::connect(&addr).await.ok()?;
                c.fetch("orders", p as i32, 0, 100, 1 << 20).await.ok()
            }
        })
        .await;
        let values: Vec<_> = fetched
            .records
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string())
            .collect();
        assert_eq!(
            values,
            vec!["before".to_string()],
            "orders-{p} on node {leader}"
        );
    }
}
