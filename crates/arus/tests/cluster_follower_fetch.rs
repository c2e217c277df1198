//! Reading from the nearest replica (KIP-392) on one controller and three brokers of real
//! `arus serve` processes, each broker in its own rack, with
//! `replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector`:
//! - a consumer Fetch (v11+) to the leader from a follower's rack is answered with no
//!   records and `preferred_read_replica` naming that follower;
//! - the follower serves the consumer, up to its own high watermark;
//! - from the leader's rack, or with no rack, the leader serves the records itself.

#![allow(clippy::needless_update)]

mod common;

use std::time::Duration;

use arus_client::Client;
use arus_protocol::messages::FetchRequest;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::{Request, Response};
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Quorum, Role, eventually};

const TOPIC: &str = "nearest";
const RECORDS: i64 = 5;

/// Partition 0's (leader, ISR) as node `addr` describes it.
async fn placement(addr: &str) -> Option<(i32, Vec<i32>)> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(TOPIC).await.ok()?;
    let p = t.partitions.first()?;
    Some((p.leader_id, p.isr_nodes.clone()))
}

/// A consumer's Fetch v12 of partition 0 from offset 0 with `rack`: (error, high watermark,
/// preferred read replica, whether records came back).
async fn fetch(addr: &str, rack: &str) -> Option<(i16, i64, i32, bool)> {
    let mut c = Client::connect(addr).await.ok()?;
    let request = Request::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: TOPIC.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        rack_id: rack.into(),
        ..Default::default()
    });
    let Response::Fetch(r) = c.send_with_version(request, 12).await.ok()? else {
        return None;
    };
    let p = r.responses.first()?.partitions.first()?;
    let has_records = p.records.as_ref().is_some_and(|b| !b.is_empty());
    Some((
        p.error_code,
        p.high_watermark,
        p.preferred_read_replica,
        has_records,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_are_pointed_at_and_served_by_an_in_sync_follower_of_their_rack() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = Cluster::builder(dir.path())
        .nodes(1, Role::Controller, Format::Plain)
        .nodes(3, Role::Broker, Format::Plain)
        .quorum(Quorum::Voters)
        .rack_per_node()
        .property("broker.session.timeout.ms", 2_000)
        .property("broker.heartbeat.interval.ms", 200)
        .property(
            "replica.selector.class",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        )
        .start()
        .nodes;
    let brokers = &nodes[1..];
    let watch = brokers[0].addr();
    let mut c = Client::connect(&watch).await.unwrap();
    c.create_topic(TOPIC, 1, 3, &[]).await.unwrap();
    let (leader, _) = eventually(Duration::from_secs(20), "a full ISR", || {
        let watch = watch.clone();
        async move {
            placement(&watch)
                .await
                .filter(|(l, isr)| *l >= 0 && isr.len() == 3)
        }
    })
    .await;
    let addr_of = |id: i32| brokers.iter().find(|n| n.id == id).unwrap().addr();
    let leader_addr = addr_of(leader);
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    for i in 0..RECORDS {
        b.push(
            1_700_000_000_000,
            Some(b"k"),
            Some(format!("v{i}").as_bytes()),
            &[],
        );
    }
    Client::connect(&leader_addr)
        .await
        .unwrap()
        .produce(TOPIC, 0, b.build().unwrap(), -1, 10_000)
        .await
        .unwrap();
    let follower = brokers
        .iter()
        .map(|n| n.id)
        .find(|&id| id != leader)
        .unwrap();
    let follower_rack = format!("rack-{follower}");

    // The leader points a consumer of the follower's rack at the follower.
    assert_eq!(
        fetch(&leader_addr, &follower_rack).await,
        Some((0, RECORDS, follower, false))
    );
    // The follower serves it, once its own high watermark has the records.
    let follower_addr = addr_of(follower);
    eventually(Duration::from_secs(10), "the follower serving", || {
        let (addr, rack) = (follower_addr.clone(), follower_rack.clone());
        async move {
            fetch(&addr, &rack)
                .await
                .filter(|&(e, hw, preferred, records)| {
                    e == 0 && hw == RECORDS && preferred == -1 && records
                })
        }
    })
    .await;
    // The leader's own rack, and no rack: the leader serves.
    assert_eq!(
        fetch(&leader_addr, &format!("rack-{leader}")).await,
        Some((0, RECORDS, -1, true))
    );
    assert_eq!(fetch(&leader_addr, "").await, Some((0, RECORDS, -1, true)));
}
