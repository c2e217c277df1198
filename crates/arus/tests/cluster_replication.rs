//! Replication on a three-node cluster of real `arus serve` processes (issue 15, the
//! follower side): every follower of a replication-factor-3 partition copies its leader's
//! log with Kafka's Fetch protocol — byte for byte, the same segment files — so that after
//! the leader is SIGKILLed the new leader serves every record at the same offset; a
//! follower that was down while records were produced catches up after its restart.
//!
//! Transactions too: a committed and an aborted transaction reach the followers with their
//! markers, and the new leader lists the aborted one to read_committed consumers from its
//! own (rebuilt) aborted-transaction index.
//!
//! Catching up is observed on disk: each follower's `.log` segment bytes equal the
//! leader's (batches are appended as the leader wrote them, offsets and epochs included).

#![allow(clippy::needless_update)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use arus_client::{Client, FetchedRecord};
use arus_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, FetchRequest, FindCoordinatorRequest,
    InitProducerIdRequest, ProduceRequest,
};
use arus_protocol::{Request, Response};
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Node, Quorum, Role, eventually};

/// `broker.session.timeout.ms` of the test cluster.
const SESSION_MS: u64 = 2_000;

fn cluster(dir: &Path) -> Vec<Node> {
    Cluster::builder(dir)
        .nodes(3, Role::Combined, Format::Plain)
        .quorum(Quorum::Voters)
        .property("broker.session.timeout.ms", SESSION_MS)
        .property("broker.heartbeat.interval.ms", 200)
        // The smallest segments (1 MiB): 120 records of 13 kB roll one, and the copy must
        // roll where the leader rolled.
        .property("log.segment.bytes", 1 << 20)
        .start()
        .nodes
}

/// Partition 0's (leader, leader epoch) as node `addr` describes it.
async fn leader(addr: &str, topic: &str) -> Option<(i32, i32)> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(topic).await.ok()?;
    let p = t.partitions.first()?;
    Some((p.leader_id, p.leader_epoch))
}

/// A leader other than `not` (-1: any), as `addr` sees it.
async fn wait_leader(addr: &str, topic: &str, not: i32, limit: Duration) -> (i32, i32) {
    eventually(limit, "a leader", || async move {
        leader(addr, topic)
            .await
            .filter(|(l, _)| *l >= 0 && *l != not)
    })
    .await
}

fn batch(first: usize, n: usize) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    for i in first..first + n {
        let value = format!("value-{i}-{}", "x".repeat(13_000 + i % 50));
        b.push(
            1_700_000_000_000 + i as i64,
            Some(format!("k{i}").as_bytes()),
            Some(value.as_bytes()),
            &[],
        );
    }
    b.build().unwrap()
}

/// Produces records `from..to` with acks=1, three per batch, to the leader at `addr`. A
/// leader that has not applied its leadership yet refuses without appending, so those are
/// retried.
async fn produce(addr: &str, topic: &str, from: usize, to: usize) {
    let mut c = Client::connect(addr).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = from;
    while i < to {
        let n = 3.min(to - i);
        match c.produce(topic, 0, batch(i, n), 1, 5000).await {
            Ok(_) => i += n,
            Err(e)
                if Instant::now() < deadline
                    && ["UNKNOWN_TOPIC_OR_PARTITION", "NOT_LEADER_OR_FOLLOWER"]
                        .iter()
                        .any(|code| e.to_string().starts_with(code)) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("produce to {addr}: {e}"),
        }
    }
}

/// Every record of partition 0 from the leader at `addr`, from offset 0 to `end`.
async fn consume(addr: &str, topic: &str, end: i64) -> Vec<FetchedRecord> {
    let mut c = Client::connect(addr).await.unwrap();
    let mut out = Vec::new();
    let mut offset = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while offset < end {
        assert!(
            Instant::now() < deadline,
            "consumed up to {offset} of {end}"
        );
        match c.fetch(topic, 0, offset, 500, 1 << 20).await {
            Ok(f) => {
                out.extend(f.records);
                offset = f.next_offset;
            }
            // The new leader may not have applied its leadership yet.
            Err(e) if e.to_string().starts_with("NOT_LEADER_OR_FOLLOWER") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("fetch from {addr}: {e}"),
        }
    }
    out
}

/// The partition's segment files (`*.log`) on node `node`, by name.
fn segment_names(dir: &Path, node: i32, topic: &str) -> Vec<String> {
    let path = dir.join(format!("node-{node}")).join(format!("{topic}-0"));
    let Ok(entries) = std::fs::read_dir(&path) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    // Zero-padded base offsets: by name is by offset.
    names.sort();
    names
}

/// The partition's log on node `node`: its segment files' bytes, in offset order. Where a
/// replica rolls its segments is its own affair (a follower appends a fetch's batches at
/// once, and time-based rolls read its clock), so the copies are compared whole.
fn log_bytes(dir: &Path, node: i32, topic: &str) -> Vec<u8> {
    let path = dir.join(format!("node-{node}")).join(format!("{topic}-0"));
    segment_names(dir, node, topic)
        .iter()
        .flat_map(|n| std::fs::read(path.join(n)).unwrap_or_default())
        .collect()
}

/// Waits until node `follower`'s log is the leader's, byte for byte.
async fn wait_copied(dir: &Path, leader: i32, follower: i32, topic: &str) {
    let expected = log_bytes(dir, leader, topic);
    assert!(!expected.is_empty());
    let what = format!(
        "node {follower} holding node {leader}'s log of {} bytes (it has {} now)",
        expected.len(),
        log_bytes(dir, follower, topic).len()
    );
    eventually(Duration::from_secs(20), &what, || {
        let same = log_bytes(dir, follower, topic) == expected;
        async move { same.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_copy_the_leader_and_the_new_leader_serves_every_record() {
    const TOPIC: &str = "replicated";
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path());
    let mut c = Client::connect(&nodes[0].addr()).await.unwrap();
    c.create_topic(TOPIC, 1, 3, &[]).await.unwrap();
    let (first, epoch) = wait_leader(&nodes[0].addr(), TOPIC, -1, Duration::from_secs(10)).await;
    // Node ids are 1, 2, 3 in order.
    let at = |id: i32| id as usize - 1;
    let first_addr = nodes[at(first)].addr();
    produce(&first_addr, TOPIC, 0, 120).await;
    assert!(
        segment_names(dir.path(), first, TOPIC).len() > 1,
        "the leader rolled its segments"
    );
    for f in nodes.iter().map(|n| n.id).filter(|&id| id != first) {
        wait_copied(dir.path(), first, f, TOPIC).await;
    }
    let before = consume(&first_addr, TOPIC, 120).await;
    assert_eq!(before.len(), 120);
    assert_eq!(before.last().unwrap().offset, 119);

    // SIGKILL of the leader: the controller elects another in-sync replica.
    nodes[at(first)].kill9();
    let survivor = nodes.iter().find(|n| n.id != first).unwrap().addr();
    let (second, second_epoch) = wait_leader(
        &survivor,
        TOPIC,
        first,
        Duration::from_millis(SESSION_MS * 3 + 5_000),
    )
    .await;
    assert!(second_epoch > epoch);
    let second_addr = nodes[at(second)].addr();
    let after = consume(&second_addr, TOPIC, 120).await;
    assert_eq!(after, before, "the new leader serves the same records");

    // The remaining follower now follows the new leader, from where it stood.
    produce(&second_addr, TOPIC, 120, 150).await;
    let third = nodes
        .iter()
        .map(|n| n.id)
        .find(|&id| id != first && id != second)
        .unwrap();
    wait_copied(dir.path(), second, third, TOPIC).await;
    let all = consume(&second_addr, TOPIC, 150).await;
    assert_eq!(&all[..120], &before[..]);
    assert_eq!(all.len(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_was_down_catches_up_after_its_restart() {
    const TOPIC: &str = "catch-up";
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path());
    let mut c = Client::connect(&nodes[0].addr()).await.unwrap();
    c.create_topic(TOPIC, 1, 3, &[]).await.unwrap();
    let (leader_id, _) = wait_leader(&nodes[0].addr(), TOPIC, -1, Duration::from_secs(10)).await;
    let leader_addr = nodes.iter().find(|n| n.id == leader_id).unwrap().addr();
    produce(&leader_addr, TOPIC, 0, 9).await;
    let down = nodes.iter().position(|n| n.id != leader_id).unwrap();
    let down_id = nodes[down].id;
    wait_copied(dir.path(), leader_id, down_id, TOPIC).await;

    nodes[down].kill9();
    produce(&leader_addr, TOPIC, 9, 90).await;
    assert_ne!(
        log_bytes(dir.path(), down_id, TOPIC),
        log_bytes(dir.path(), leader_id, TOPIC)
    );

    nodes[down].start();
    nodes[down].wait_ready();
    wait_copied(dir.path(), leader_id, down_id, TOPIC).await;
}

/// One transactional step's request, sent to `addr` until it is answered without a
/// retriable error (a coordinator still loading, a leader not yet applied); the error code.
async fn send_txn(addr: &str, request: Request, version: i16) -> i16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let code = match Client::connect(addr).await {
            Ok(mut c) => match c.send_with_version(request.clone(), version).await {
                Ok(Response::InitProducerId(r)) => r.error_code,
                Ok(Response::AddPartitionsToTxn(r)) => {
                    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
                }
                Ok(Response::Produce(r)) => r.responses[0].partition_responses[0].error_code,
                Ok(Response::EndTxn(r)) => r.error_code,
                Ok(Response::FindCoordinator(r)) => r.error_code,
                other => panic!("{other:?}"),
            },
            Err(_) => -1,
        };
        // COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
        // NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, CONCURRENT_TRANSACTIONS.
        if [-1, 14, 16, 15, 6, 3, 51].contains(&code) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        return code;
    }
}

/// The transaction coordinator of `id`, as node `addr` names it.
async fn coordinator_of(addr: &str, id: &str) -> Option<i32> {
    let mut c = Client::connect(addr).await.ok()?;
    let r = c
        .send_with_version(
            Request::FindCoordinator(FindCoordinatorRequest {
                key: id.into(),
                key_type: 1,
                ..Default::default()
            }),
            3,
        )
        .await
        .ok()?;
    let Response::FindCoordinator(r) = r else {
        return None;
    };
    (r.error_code == 0).then_some(r.node_id)
}

/// Runs one transaction of transactions v1 (AddPartitionsToTxn from the client) writing
/// `records` one-record batches to partition 0 of `topic`, ended with `commit`.
async fn transaction(coordinator: &str, leader: &str, topic: &str, records: i32, commit: bool) {
    let id = "replicated-tx";
    let init = Request::InitProducerId(InitProducerIdRequest {
        transactional_id: Some(id.into()),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    });
    let mut c = Client::connect(coordinator).await.unwrap();
    let (pid, epoch) = loop {
        match c.send_with_version(init.clone(), 4).await.unwrap() {
            Response::InitProducerId(r) if r.error_code == 0 => {
                break (r.producer_id, r.producer_epoch);
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let add = Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: id.into(),
        v3_and_below_producer_id: pid,
        v3_and_below_producer_epoch: epoch,
        v3_and_below_topics: vec![AddPartitionsToTxnTopic {
            name: topic.into(),
            partitions: vec![0],
            ..Default::default()
        }],
        ..Default::default()
    });
    assert_eq!(send_txn(coordinator, add, 3).await, 0);
    for seq in 0..records {
        let mut b = BatchBuilder::new(Compression::None, 1).producer(pid, epoch, seq, true);
        b.push(1, None, Some(format!("tx {commit} {seq}").as_bytes()), &[]);
        let produce = Request::Produce(ProduceRequest {
            transactional_id: Some(id.into()),
            acks: 1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(b.build().unwrap()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(send_txn(leader, produce, 11).await, 0);
    }
    let end = Request::EndTxn(EndTxnRequest {
        transactional_id: id.into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed: commit,
        ..Default::default()
    });
    assert_eq!(send_txn(coordinator, end, 4).await, 0);
}

/// A read_committed Fetch v12 of partition 0 from 0 on `addr`: (last stable offset, high
/// watermark, producer ids of the aborted transactions it lists), once answered.
async fn read_committed(addr: &str, topic: &str) -> Option<(i64, i64, Vec<i64>)> {
    let mut c = Client::connect(addr).await.ok()?;
    let r = c
        .send_with_version(
            Request::Fetch(FetchRequest {
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: 1 << 20,
                isolation_level: 1,
                session_id: 0,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: topic.into(),
                    partitions: vec![FetchPartition {
                        partition: 0,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            12,
        )
        .await
        .ok()?;
    let Response::Fetch(r) = r else { return None };
    let p = r.responses.first()?.partitions.first()?;
    if p.error_code != 0 {
        return None;
    }
    let aborted = p
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| a.producer_id)
        .collect();
    Some((p.last_stable_offset, p.high_watermark, aborted))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_aborted_transactions_are_replicated_with_their_markers() {
    const TOPIC: &str = "replicated-txn";
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path());
    let first_addr = nodes[0].addr();
    let mut c = Client::connect(&first_addr).await.unwrap();
    c.create_topic(TOPIC, 1, 3, &[]).await.unwrap();
    let (leader_id, _) = wait_leader(&first_addr, TOPIC, -1, Duration::from_secs(10)).await;
    let coordinator = eventually(Duration::from_secs(30), "a transaction coordinator", || {
        let first_addr = first_addr.clone();
        async move { coordinator_of(&first_addr, "replicated-tx").await }
    })
    .await;
    let addrs: Vec<String> = nodes.iter().map(Node::addr).collect();
    let addr_of = |id: i32| addrs[id as usize - 1].clone();
    let (leader_addr, coordinator_addr) = (addr_of(leader_id), addr_of(coordinator));
    // Offsets 0-1 and the COMMIT marker at 2; 3-4 and the ABORT marker at 5.
    transaction(&coordinator_addr, &leader_addr, TOPIC, 2, true).await;
    transaction(&coordinator_addr, &leader_addr, TOPIC, 2, false).await;
    let on_leader = eventually(Duration::from_secs(15), "both markers written", || {
        let leader_addr = leader_addr.clone();
        async move {
            read_committed(&leader_addr, TOPIC)
                .await
                .filter(|r| r.0 == 6)
        }
    })
    .await;
    assert_eq!(on_leader.1, 6);
    assert_eq!(on_leader.2.len(), 1, "one aborted transaction");
    for f in nodes.iter().map(|n| n.id).filter(|&id| id != leader_id) {
        wait_copied(dir.path(), leader_id, f, TOPIC).await;
    }

    nodes[leader_id as usize - 1].kill9();
    let survivor = nodes.iter().find(|n| n.id != leader_id).unwrap().addr();
    let (second, _) = wait_leader(
        &survivor,
        TOPIC,
        leader_id,
        Duration::from_millis(SESSION_MS * 3 + 5_000),
    )
    .await;
    let second_addr = addr_of(second);
    // A new leader's high watermark starts where it knew it as a follower and reaches its log
    // end once the other in-sync replica has fetched from it.
    let on_new_leader = eventually(Duration::from_secs(15), "the new leader serving", || {
        let second_addr = second_addr.clone();
        async move {
            read_committed(&second_addr, TOPIC)
                .await
                .filter(|r| r.1 == on_leader.1)
        }
    })
    .await;
    assert_eq!(on_new_leader, on_leader, "the same committed view");
}
