//! Partition reassignment that moves data (issue 15 item 7), on real `arus serve` processes:
//! one controller and three brokers, a one-replica topic with records.
//! - AlterPartitionReassignments moves the replica to another broker: the new broker copies
//!   the log, joins the ISR, the controller completes the move and elects it; the old broker
//!   deletes its replica directory.
//! - The replication factor is raised from 1 to 3 (`AllowReplicationFactorChange`); while
//!   the new replicas catch up ListPartitionReassignments may list the partition, and once
//!   they are all in the ISR it lists nothing.
//! - The replica that led is then dropped (a target the ISR already satisfies completes at
//!   once): a copied replica becomes the leader and serves every record at its offset.

#![allow(clippy::needless_update)]

mod common;

use std::time::Duration;

use arus_client::Client;
use arus_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use arus_protocol::messages::{
    AlterPartitionReassignmentsRequest, ListPartitionReassignmentsRequest,
};
use arus_protocol::{Request, Response};
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Node, Quorum, Role, eventually, read_to};

const TOPIC: &str = "moved";
const RECORDS: usize = 20;

/// Partition 0's (leader, replicas, ISR) as broker `addr` describes it.
async fn placement(addr: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(TOPIC).await.ok()?;
    let p = t.partitions.first()?;
    Some((p.leader_id, p.replica_nodes.clone(), p.isr_nodes.clone()))
}

/// Waits until every broker describes partition 0 with `replicas` as its replicas and ISR
/// (in any ISR order) and a leader; returns the leader.
async fn settled(nodes: &[Node], replicas: &[i32]) -> i32 {
    let addrs: Vec<String> = nodes.iter().map(Node::addr).collect();
    let what = format!("replicas and ISR {replicas:?} on every broker");
    eventually(Duration::from_secs(30), &what, || {
        let addrs = addrs.clone();
        async move {
            let mut leader = None;
            for addr in &addrs {
                let (l, r, mut isr) = placement(addr).await?;
                isr.sort_unstable();
                let mut want = replicas.to_vec();
                want.sort_unstable();
                if l < 0 || r != replicas || isr != want || leader.is_some_and(|x| x != l) {
                    return None;
                }
                leader = Some(l);
            }
            leader
        }
    })
    .await
}

async fn reassign(addr: &str, replicas: Vec<i32>, allow_rf_change: bool) {
    let mut c = Client::connect(addr).await.unwrap();
    let request = Request::AlterPartitionReassignments(AlterPartitionReassignmentsRequest {
        timeout_ms: 30_000,
        allow_replication_factor_change: allow_rf_change,
        topics: vec![ReassignableTopic {
            name: TOPIC.into(),
            partitions: vec![ReassignablePartition {
                partition_index: 0,
                replicas: Some(replicas.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::AlterPartitionReassignments(r) = c.send_with_version(request, 1).await.unwrap()
    else {
        panic!("not an AlterPartitionReassignments response");
    };
    let p = &r.responses[0].partitions[0];
    assert_eq!(
        (r.error_code, p.error_code),
        (0, 0),
        "reassigning to {replicas:?}: {r:?}"
    );
}

/// The partitions ListPartitionReassignments reports in progress, with (replicas, adding,
/// removing).
async fn listed(addr: &str) -> Vec<(Vec<i32>, Vec<i32>, Vec<i32>)> {
    let mut c = Client::connect(addr).await.unwrap();
    let request = Request::ListPartitionReassignments(ListPartitionReassignmentsRequest {
        timeout_ms: 30_000,
        topics: None,
        ..Default::default()
    });
    let Response::ListPartitionReassignments(r) = c.send_with_version(request, 0).await.unwrap()
    else {
        panic!("not a ListPartitionReassignments response");
    };
    assert_eq!(r.error_code, 0, "{r:?}");
    r.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            (
                p.replicas.clone(),
                p.adding_replicas.clone(),
                p.removing_replicas.clone(),
            )
        })
        .collect()
}

/// Every record of partition 0, read from `addr` (its leader) up to `end`.
async fn read_all(addr: &str, end: i64) -> Vec<(i64, Vec<u8>)> {
    eventually(
        Duration::from_secs(15),
        "every record from the leader",
        || read_to(addr, TOPIC, 0, end),
    )
    .await
    .into_iter()
    .map(|r| (r.offset, r.value.unwrap_or_default().to_vec()))
    .collect()
}

/// Whether `node` still holds a directory of partition 0 (live, or renamed for deletion).
fn holds_replica(node: &Node) -> bool {
    std::fs::read_dir(node.data_dir())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("moved-0"))
}

async fn wait_deleted(node: &Node) {
    eventually(
        Duration::from_secs(15),
        &format!("node {}'s replica deleted", node.id),
        || async { (!holds_replica(node)).then_some(()) },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_move_and_the_replication_factor_grows_with_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Cluster::builder(dir.path())
        .nodes(1, Role::Controller, Format::Plain)
        .nodes(3, Role::Broker, Format::Plain)
        .quorum(Quorum::Voters)
        .property("broker.session.timeout.ms", 2_000)
        .property("broker.heartbeat.interval.ms", 200)
        .start()
        .nodes;
    let _controller = nodes.remove(0);
    let addr = nodes[0].addr();
    let mut c = Client::connect(&addr).await.unwrap();
    c.create_topic(TOPIC, 1, 1, &[]).await.unwrap();
    let first = settled(&nodes, &[placement(&addr).await.unwrap().1[0]]).await;
    let by_id = |id: i32| nodes.iter().find(|n| n.id == id).unwrap();
    let others: Vec<i32> = nodes
        .iter()
        .map(|n| n.id)
        .filter(|&id| id != first)
        .collect();

    let mut leader = Client::connect(&by_id(first).addr()).await.unwrap();
    let mut written = Vec::new();
    for i in 0..RECORDS {
        let value = format!("record-{i}");
        let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
        b.push(1_700_000_000_000, None, Some(value.as_bytes()), &[]);
        let offset = leader
            .produce(TOPIC, 0, b.build().unwrap(), 1, 5_000)
            .await
            .unwrap();
        written.push((offset, value.into_bytes()));
    }
    let end = written.last().unwrap().0 + 1;
    assert!(holds_replica(by_id(first)));

    // Move the only replica to another broker (same replication factor).
    let moved_to = others[0];
    reassign(&addr, vec![moved_to], false).await;
    assert_eq!(settled(&nodes, &[moved_to]).await, moved_to);
    assert_eq!(read_all(&by_id(moved_to).addr(), end).await, written);
    wait_deleted(by_id(first)).await;
    assert!(listed(&addr).await.is_empty());

    // Raise the replication factor from 1 to 3.
    let three = vec![moved_to, others[1], first];
    reassign(&addr, three.clone(), true).await;
    if let [(replicas, adding, removing)] = listed(&addr).await.as_slice() {
        // Still catching up: Kafka's merged list, the new replicas sorted by id.
        let mut new = vec![others[1], first];
        new.sort_unstable();
        assert_eq!((replicas, adding, removing), (&three, &new, &vec![]));
    }
    assert_eq!(settled(&nodes, &three).await, moved_to);
    assert!(listed(&addr).await.is_empty());

    // Drop the leader's replica: a copy made by the reassignment takes over with every
    // record at its offset.
    let copies = vec![others[1], first];
    reassign(&addr, copies.clone(), true).await;
    let new_leader = settled(&nodes, &copies).await;
    assert_eq!(
        new_leader, others[1],
        "the first replica of the target leads"
    );
    assert_eq!(read_all(&by_id(new_leader).addr(), end).await, written);
    wait_deleted(by_id(moved_to)).await;
}
