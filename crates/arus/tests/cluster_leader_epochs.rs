//! Leader epochs above 0 on a three-node cluster of real `arus serve` processes (issue 15,
//! KIP-101/320): a one-replica partition's leader is SIGKILLed, fenced, and restarted, so the
//! controller elects it again at a higher leader epoch. Its `leader-epoch-checkpoint` keeps
//! the first epoch's entry across the crash and gains the new one, and
//! - OffsetForLeaderEpoch answers each epoch's end offset (the next epoch's start, or the log
//!   end for the current one), fences an old `current_leader_epoch` and calls a newer one
//!   unknown;
//! - ListOffsets v4+ names the current epoch with the latest offset;
//! - Fetch v12+ with a `last_fetched_epoch` that ended earlier here reports the diverging epoch.

#![allow(clippy::needless_update)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use arus_client::Client;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use arus_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use arus_protocol::messages::{FetchRequest, ListOffsetsRequest, OffsetForLeaderEpochRequest};
use arus_protocol::{ErrorCode, Request, Response};
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Quorum, Role, eventually};

const TOPIC: &str = "epochs";
/// `broker.session.timeout.ms` of the test cluster.
const SESSION_MS: u64 = 2_000;

/// Partition 0's (leader, leader epoch) as node `addr` describes it.
async fn leader(addr: &str) -> Option<(i32, i32)> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(TOPIC).await.ok()?;
    let p = t.partitions.first()?;
    Some((p.leader_id, p.leader_epoch))
}

fn record(value: &str) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, Some(b"k"), Some(value.as_bytes()), &[]);
    b.build().unwrap()
}

/// Produces `n` records, one batch each, to the leader at `addr`. A leader that has not
/// applied its leadership yet refuses without appending (UNKNOWN_TOPIC_OR_PARTITION or
/// NOT_LEADER_OR_FOLLOWER), so those are retried.
async fn produce(addr: &str, n: usize) {
    let mut c = Client::connect(addr).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..n {
        loop {
            match c
                .produce(TOPIC, 0, record(&format!("r{i}")), -1, 5000)
                .await
            {
                Ok(_) => break,
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
}

/// OffsetForLeaderEpoch v4 from a consumer: (error, epoch, end offset) per asked epoch.
async fn end_offsets(addr: &str, current: i32, epochs: &[i32]) -> Vec<(i16, i32, i64)> {
    let mut c = Client::connect(addr).await.unwrap();
    let req = Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![OffsetForLeaderTopic {
            topic: TOPIC.into(),
            partitions: epochs
                .iter()
                .map(|&leader_epoch| OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: current,
                    leader_epoch,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    match c.send_with_version(req, 4).await.unwrap() {
        Response::OffsetForLeaderEpoch(r) => r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn checkpoint(dir: &Path, node: i32) -> String {
    std::fs::read_to_string(
        dir.join(format!("node-{node}"))
            .join(format!("{TOPIC}-0"))
            .join("leader-epoch-checkpoint"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_epochs_above_zero_answer_offset_for_leader_epoch_list_offsets_and_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Cluster::builder(dir.path())
        .nodes(3, Role::Combined, Format::Plain)
        .quorum(Quorum::Voters)
        .property("broker.session.timeout.ms", SESSION_MS)
        .property("broker.heartbeat.interval.ms", 200)
        .start()
        .nodes;
    let mut c = Client::connect(&nodes[0].addr()).await.unwrap();
    c.create_topic(TOPIC, 1, 1, &[]).await.unwrap();
    let watch = nodes[0].addr();
    let (first_leader, first_epoch) = eventually(Duration::from_secs(10), "a leader", || {
        let watch = watch.clone();
        async move { leader(&watch).await.filter(|(l, _)| *l >= 0) }
    })
    .await;
    assert_eq!(first_epoch, 0);
    let victim = nodes.iter().position(|n| n.id == first_leader).unwrap();
    let addr = nodes[victim].addr();
    produce(&addr, 3).await;
    assert_eq!(end_offsets(&addr, 0, &[0]).await, vec![(0, 0, 3)]);
    assert_eq!(checkpoint(dir.path(), first_leader), "0\n1\n0 0\n");

    // SIGKILL of the leader: fenced, the partition goes leaderless; after the restart the
    // controller elects it again, at a higher epoch.
    let watch = nodes.iter().find(|n| n.id != first_leader).unwrap().addr();
    nodes[victim].kill9();
    eventually(
        Duration::from_millis(SESSION_MS * 3 + 2_000),
        "the partition without a leader",
        || {
            let watch = watch.clone();
            async move { leader(&watch).await.filter(|(l, _)| *l == -1) }
        },
    )
    .await;
    nodes[victim].start();
    nodes[victim].wait_ready();
    let epoch = eventually(Duration::from_secs(30), "led again", || {
        let addr = addr.clone();
        async move {
            leader(&addr)
                .await
                .filter(|(l, _)| *l == first_leader)
                .map(|(_, e)| e)
        }
    })
    .await;
    assert!(epoch > 0, "epoch {epoch}");
    eprintln!("node {first_leader} leads again at leader epoch {epoch}");
    // The leader takes its new epoch when it applies the change; the metadata it serves may
    // come first.
    eventually(Duration::from_secs(10), "the new epoch served", || {
        let addr = addr.clone();
        async move {
            let r = end_offsets(&addr, epoch, &[epoch]).await;
            (r == vec![(0, epoch, 3)]).then_some(())
        }
    })
    .await;
    produce(&addr, 2).await;
    assert_eq!(
        checkpoint(dir.path(), first_leader),
        format!("0\n2\n0 0\n{epoch} 3\n")
    );

    // Every epoch between the two ended where the new one started; the current one ends at
    // the log end; a newer one is unknown to the cache (answered -1/-1, no error).
    let mut asked = vec![0];
    asked.extend(1..epoch);
    asked.extend([epoch, epoch + 1]);
    let mut expected = vec![(0, 0, 3); asked.len() - 2];
    expected.extend([(0, epoch, 5), (0, -1, -1)]);
    assert_eq!(end_offsets(&addr, -1, &asked).await, expected);
    assert_eq!(end_offsets(&addr, epoch, &asked).await, expected);
    // current_leader_epoch fences a stale client and calls a newer one unknown.
    let fenced = ErrorCode::FencedLeaderEpoch as i16;
    let unknown = ErrorCode::UnknownLeaderEpoch as i16;
    assert_eq!(end_offsets(&addr, 0, &[0]).await, vec![(fenced, -1, -1)]);
    assert_eq!(
        end_offsets(&addr, epoch + 1, &[0]).await,
        vec![(unknown, -1, -1)]
    );
    // Another node holds no replica: NOT_LEADER_OR_FOLLOWER.
    assert_eq!(
        end_offsets(&watch, epoch, &[0]).await,
        vec![(ErrorCode::NotLeaderOrFollower as i16, -1, -1)]
    );

    // ListOffsets v9 latest: the log end and the current epoch.
    let mut c = Client::connect(&addr).await.unwrap();
    let req = Request::ListOffsets(ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: TOPIC.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: epoch,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::ListOffsets(r) = c.send_with_version(req, 9).await.unwrap() else {
        panic!()
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset, p.leader_epoch), (0, 5, epoch));

    // Fetch v12 from offset 4 with last fetched epoch 0: epoch 0 ended at 3 here.
    let req = Request::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: TOPIC.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: epoch,
                fetch_offset: 4,
                last_fetched_epoch: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::Fetch(r) = c.send_with_version(req, 12).await.unwrap() else {
        panic!()
    };
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(
        (p.diverging_epoch.epoch, p.diverging_epoch.end_offset),
        (0, 3)
    );
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}
