//! Leader epochs through the data APIs (issue 15, KIP-101/320), on one broker that is node 1
//! of a cluster view and leads topic `epochs` (one partition): three records written at epoch
//! 0, then the partition led again at epoch 2 and two more records written. The log's epoch
//! cache is then `[(0, 0), (2, 3)]` with the log end at 5, and
//! - OffsetForLeaderEpoch answers each epoch's end as Kafka's `LeaderEpochFileCache.endOffsetFor`
//!   does, fences an old or new `current_leader_epoch`, and ignores `replica_id`;
//! - ListOffsets (v4+) reports the leader epoch of the offset it found;
//! - Fetch (v12+) with `last_fetched_epoch` reports a diverging epoch (KIP-320);
//! - the replica's own role and epoch are checked, not only the cluster view's.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

mod common;

use std::sync::Arc;

use arus_broker::Broker;
use arus_broker::cluster::{BrokerNode, ClusterView, Endpoint, PartitionPlacement};
use arus_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::messages::fetch_response::PartitionData;
use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use arus_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response, Uuid};
use arus_records::{BatchBuilder, Compression};

const TOPIC: &str = "epochs";
const FENCED: i16 = ErrorCode::FencedLeaderEpoch as i16;
const UNKNOWN_EPOCH: i16 = ErrorCode::UnknownLeaderEpoch as i16;
const NOT_LEADER: i16 = ErrorCode::NotLeaderOrFollower as i16;
const OUT_OF_RANGE: i16 = ErrorCode::OffsetOutOfRange as i16;

/// One record with timestamp `ts`.
fn record(ts: i64) -> arus_protocol::Bytes {
    let mut b = BatchBuilder::new(Compression::None, ts);
    b.push(ts, None, Some(b"v"), &[]);
    b.build().unwrap()
}

/// The view in which node 1 (this broker) leads partition 0 at `epoch` (or node 2 does).
fn install_view(broker: &Broker, id: Uuid, leader: i32, epoch: i32) {
    let listener = broker.advertised_listener().name;
    let node = |n: i32| {
        BrokerNode::new(
            n,
            [(
                listener.clone(),
                Endpoint {
                    host: format!("node-{n}"),
                    port: 9000 + n as u16,
                },
            )],
        )
    };
    let view = ClusterView::new(broker.topics.cluster_id(), 1, Some(1))
        .with_broker(node(1))
        .with_broker(node(2))
        .with_partition(
            id,
            0,
            PartitionPlacement {
                leader: Some(leader),
                leader_epoch: epoch,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                ..Default::default()
            },
        );
    broker.cluster.install(view);
}

/// The broker of the module doc: records at timestamps 1000..1005, offsets 0..5.
async fn two_epochs(dir: &std::path::Path) -> (Arc<Broker>, Uuid) {
    let broker = common::open_broker(dir, &[]);
    common::create_topic(&broker, TOPIC, &[]);
    let id = broker.topics.get(TOPIC).unwrap().id;
    install_view(&broker, id, 1, 0);
    for ts in 1000..1003 {
        assert_eq!(
            common::produce(&broker, TOPIC, record(ts), 1)
                .await
                .error_code,
            0
        );
    }
    let partition = broker.topics.get(TOPIC).unwrap().partition(0).unwrap();
    partition.become_leader(2).unwrap();
    install_view(&broker, id, 1, 2);
    for ts in 1003..1005 {
        assert_eq!(
            common::produce(&broker, TOPIC, record(ts), 1)
                .await
                .error_code,
            0
        );
    }
    (broker, id)
}

/// OffsetForLeaderEpoch of partition 0 for each of `epochs`: (error, epoch, end offset).
async fn offset_for_epochs(
    broker: &Arc<Broker>,
    version: i16,
    replica_id: i32,
    current_leader_epoch: i32,
    epochs: &[i32],
) -> Vec<(i16, i32, i64)> {
    let req = Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
        replica_id,
        topics: vec![OffsetForLeaderTopic {
            topic: TOPIC.into(),
            partitions: epochs
                .iter()
                .map(|&leader_epoch| OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch,
                    leader_epoch,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::OffsetForLeaderEpoch(r) =
        common::call(broker, ApiKey::OffsetForLeaderEpoch, version, req).await
    else {
        panic!()
    };
    r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
        .collect()
}

#[tokio::test]
async fn offset_for_leader_epoch_answers_from_the_epoch_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id) = two_epochs(dir.path()).await;
    let epochs = [-1, 0, 1, 2, 3];
    let expected = vec![(0, -1, -1), (0, 0, 3), (0, 0, 3), (0, 2, 5), (0, -1, -1)];
    // A consumer (-1), a follower (its broker id) and v2's default (-2) get the same answers:
    // Kafka serves OffsetForLeaderEpoch from the leader whatever the replica id.
    for (version, replica_id) in [(2, -2), (3, -1), (3, 2), (4, -1), (4, 2)] {
        for current in [-1, 2] {
            assert_eq!(
                offset_for_epochs(&broker, version, replica_id, current, &epochs).await,
                expected,
                "v{version} replica {replica_id} current {current}"
            );
        }
    }
    assert_eq!(
        offset_for_epochs(&broker, 4, -1, 1, &[0]).await,
        vec![(FENCED, -1, -1)]
    );
    assert_eq!(
        offset_for_epochs(&broker, 4, -1, 3, &[0]).await,
        vec![(UNKNOWN_EPOCH, -1, -1)]
    );

    // (The checkpoint across restarts: arus-log's tests and the three-node test in
    // crates/arus/tests/cluster_leader_epochs.rs; the file-backed broker reopens every
    // partition as leader at epoch 0.)
    let partition = broker.topics.get(TOPIC).unwrap().partition(0).unwrap();
    // Led elsewhere at epoch 3: this replica no longer answers, after the epoch checks.
    partition.become_follower(2, 3).unwrap();
    install_view(&broker, id, 2, 3);
    assert_eq!(
        offset_for_epochs(&broker, 4, 2, 3, &[2]).await,
        vec![(NOT_LEADER, -1, -1)]
    );
    assert_eq!(
        offset_for_epochs(&broker, 4, 2, 4, &[2]).await,
        vec![(UNKNOWN_EPOCH, -1, -1)]
    );
}

#[tokio::test]
async fn list_offsets_reports_the_leader_epoch_of_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = two_epochs(dir.path()).await;
    let list = |version: i16, timestamp: i64| {
        let broker = broker.clone();
        async move {
            let req = Request::ListOffsets(ListOffsetsRequest {
                replica_id: -1,
                topics: vec![ListOffsetsTopic {
                    name: TOPIC.into(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: 0,
                        current_leader_epoch: 2,
                        timestamp,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            });
            let Response::ListOffsets(r) =
                common::call(&broker, ApiKey::ListOffsets, version, req).await
            else {
                panic!()
            };
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.offset, p.leader_epoch)
        }
    };
    // latest, earliest, max timestamp, a timestamp in epoch 0, one in epoch 2, one past the end.
    let cases = [
        (-1, (0, 5, 2)),
        (-2, (0, 0, 0)),
        (-3, (0, 4, 2)),
        (1001, (0, 1, 0)),
        (1003, (0, 3, 2)),
        (2000, (0, -1, -1)),
    ];
    for (timestamp, expected) in cases {
        assert_eq!(list(9, timestamp).await, expected, "ts {timestamp}");
    }
    // Before v4 the response has no leader epoch.
    assert_eq!(list(1, -1).await, (0, 5, -1));
}

async fn fetch(
    broker: &Arc<Broker>,
    id: Uuid,
    version: i16,
    current_leader_epoch: i32,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> PartitionData {
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
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch,
                fetch_offset,
                last_fetched_epoch,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    match common::call(broker, ApiKey::Fetch, version, req).await {
        Response::Fetch(r) => r.responses[0].partitions[0].clone(),
        other => panic!("{other:?}"),
    }
}

/// (error, diverging epoch, diverging end offset, high watermark, has records).
fn summary(p: &PartitionData) -> (i16, i32, i64, i64, bool) {
    (
        p.error_code,
        p.diverging_epoch.epoch,
        p.diverging_epoch.end_offset,
        p.high_watermark,
        p.records.as_ref().is_some_and(|r| !r.is_empty()),
    )
}

#[tokio::test]
async fn fetch_reports_a_diverging_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id) = two_epochs(dir.path()).await;
    for version in [12, 17] {
        let f = |current, offset, last| fetch(&broker, id, version, current, offset, last);
        // In step with the leader: read as usual.
        assert_eq!(
            summary(&f(2, 3, 0).await),
            (0, -1, -1, 5, true),
            "v{version}"
        );
        assert_eq!(
            summary(&f(-1, 5, 2).await),
            (0, -1, -1, 5, false),
            "v{version}"
        );
        // Epoch 0 ended at 3 here: a fetcher at 4 with epoch 0 wrote what this log lacks.
        assert_eq!(
            summary(&f(2, 4, 0).await),
            (0, 0, 3, 5, false),
            "v{version}"
        );
        // An epoch this log never had: the largest one below it, and where it ended.
        assert_eq!(
            summary(&f(2, 3, 1).await),
            (0, 0, 3, 5, false),
            "v{version}"
        );
        // No epoch given (-1): no check.
        assert_eq!(
            summary(&f(2, 4, -1).await),
            (0, -1, -1, 5, true),
            "v{version}"
        );
        // An epoch above every cached one: Kafka's OFFSET_OUT_OF_RANGE, offsets unknown.
        assert_eq!(
            summary(&f(2, 5, 7).await),
            (OUT_OF_RANGE, -1, -1, -1, false),
            "v{version}"
        );
        // Fencing comes first.
        assert_eq!(summary(&f(1, 4, 0).await).0, FENCED, "v{version}");
    }
    // Below the log start: OFFSET_OUT_OF_RANGE whether or not the epochs diverge.
    let partition = broker.topics.get(TOPIC).unwrap().partition(0).unwrap();
    partition.delete_records_before(2).unwrap();
    assert_eq!(
        summary(&fetch(&broker, id, 17, 2, 1, 0).await),
        (OUT_OF_RANGE, -1, -1, -1, false)
    );
}

/// The metadata applier installs the cluster view before it applies the roles it implies
/// (as Kafka publishes its metadata cache before the replica manager acts). In between, the
/// view may name this node leader at an epoch its replica has not taken yet: Kafka answers
/// from the partition's own state (`getLocalLog`), so a client already at the new epoch is
/// told UNKNOWN_LEADER_EPOCH, and nothing is appended with the old epoch.
#[tokio::test]
async fn the_replicas_own_role_and_epoch_decide_until_it_takes_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, id) = two_epochs(dir.path()).await;
    let partition = broker.topics.get(TOPIC).unwrap().partition(0).unwrap();
    // The view moves to epoch 3 first.
    install_view(&broker, id, 1, 3);
    assert_eq!(
        offset_for_epochs(&broker, 4, -1, 3, &[2]).await,
        vec![(UNKNOWN_EPOCH, -1, -1)]
    );
    assert_eq!(
        summary(&fetch(&broker, id, 17, 3, 5, 2).await).0,
        UNKNOWN_EPOCH
    );
    let list = Request::ListOffsets(ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: TOPIC.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: 3,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Response::ListOffsets(r) =
        common::call(&broker, ApiKey::ListOffsets, 9, list.clone()).await
    else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions[0].error_code, UNKNOWN_EPOCH);
    // Then the role: served at epoch 3.
    partition.become_leader(3).unwrap();
    assert_eq!(
        offset_for_epochs(&broker, 4, -1, 3, &[2, 3]).await,
        vec![(0, 2, 5), (0, 3, 5)]
    );
    let Response::ListOffsets(r) = common::call(&broker, ApiKey::ListOffsets, 9, list).await else {
        panic!()
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset, p.leader_epoch), (0, 5, 3));

    // A replica that follows while the view already names this node leader refuses to
    // append: its batches would carry the old epoch.
    partition.become_follower(2, 4).unwrap();
    install_view(&broker, id, 1, 5);
    let answer = common::produce(&broker, TOPIC, record(2000), 1).await;
    assert_eq!(answer.error_code, NOT_LEADER);
    assert_eq!(partition.log_end_offset(), 5);
    // Nor does it delete records.
    let delete = Request::DeleteRecords(DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: TOPIC.into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: 0,
                offset: 2,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    });
    let Response::DeleteRecords(r) = common::call(&broker, ApiKey::DeleteRecords, 2, delete).await
    else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions[0].error_code, NOT_LEADER);
    assert_eq!(partition.log_start_offset(), 0);
}
