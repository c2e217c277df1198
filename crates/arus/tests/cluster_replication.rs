//! Replication on a three-node cluster of real `arus serve` processes (issue 15, the
//! follower side): every follower of a replication-factor-3 partition copies its leader's
//! log with Kafka's Fetch protocol — byte for byte, the same segment files — so that after
//! the leader is SIGKILLed the new leader serves every record at the same offset; a
//! follower that was down while records were produced catches up after its restart.
//!
//! Catching up is observed on disk: each follower's `.log` segment bytes equal the
//! leader's (batches are appended as the leader wrote them, offsets and epochs included).

#![allow(clippy::needless_update)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use arus_client::{Client, FetchedRecord};
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
        assert!(Instant::now() < deadline, "consumed up to {offset} of {end}");
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

/// The partition's segment files (`*.log`, by name) with their bytes, on node `node`.
fn segments(dir: &Path, node: i32, topic: &str) -> Vec<(String, Vec<u8>)> {
    let path = dir.join(format!("node-{node}")).join(format!("{topic}-0"));
    let Ok(entries) = std::fs::read_dir(&path) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .map(|n| {
            let bytes = std::fs::read(path.join(&n)).unwrap_or_default();
            (n, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Waits until node `follower`'s segments are the leader's, byte for byte.
async fn wait_copied(dir: &Path, leader: i32, follower: i32, topic: &str) {
    let what = format!("node {follower} holding node {leader}'s log");
    let expected = segments(dir, leader, topic);
    assert!(!expected.is_empty());
    eventually(Duration::from_secs(20), &what, || {
        let same = segments(dir, follower, topic) == expected;
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
    let segments_now = segments(dir.path(), first, TOPIC);
    assert!(segments_now.len() > 1, "the leader rolled its segments");
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
    let copied_before_restart = segments(dir.path(), down_id, TOPIC);
    assert_ne!(copied_before_restart, segments(dir.path(), leader_id, TOPIC));

    nodes[down].start();
    nodes[down].wait_ready();
    wait_copied(dir.path(), leader_id, down_id, TOPIC).await;
}
