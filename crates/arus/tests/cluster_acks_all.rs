//! `acks=all` and `min.insync.replicas` on a cluster of real `arus serve` processes (issue
//! 15): one controller and three brokers (split roles, so the metadata quorum survives two
//! brokers down, which three combined nodes would not), a topic with three replicas and
//! `min.insync.replicas=2`.
//! - With every replica up, `acks=all` is answered once the followers have the records.
//! - One follower SIGKILLed: it leaves the ISR and `acks=all` goes on with two.
//! - Both followers down: `acks=all` is refused NOT_ENOUGH_REPLICAS before anything is
//!   written; `acks=1` is still accepted.
//! - The followers restart, catch up and rejoin the ISR; then the leader is SIGKILLed and
//!   the new leader, elected from the ISR, serves every acknowledged record at its offset.

#![allow(clippy::needless_update)]

mod common;

use std::time::Duration;

use arus_client::Client;
use arus_protocol::ErrorCode;
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Node, Quorum, Role, eventually, read_to};

const TOPIC: &str = "acks-all";
/// `broker.session.timeout.ms` of the test cluster: a SIGKILLed broker is fenced (and leaves
/// every ISR) this long after its last heartbeat.
const SESSION_MS: u64 = 2_000;

/// Partition 0's (leader, ISR) as node `addr` describes it.
async fn placement(addr: &str) -> Option<(i32, Vec<i32>)> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(TOPIC).await.ok()?;
    let p = t.partitions.first()?;
    Some((p.leader_id, p.isr_nodes.clone()))
}

fn record(value: &str) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, Some(b"k"), Some(value.as_bytes()), &[]);
    b.build().unwrap()
}

/// One produce to `addr`: the base offset, or the error code.
async fn produce(addr: &str, value: &str, acks: i16) -> Result<i64, Option<ErrorCode>> {
    let mut c = Client::connect(addr).await.map_err(|_| None)?;
    c.produce(TOPIC, 0, record(value), acks, 2_000)
        .await
        .map_err(|e| e.code())
}

/// Waits until the ISR node `watch` reports satisfies `want`; returns (leader, ISR).
async fn isr_until(watch: &str, what: &str, want: impl Fn(&[i32]) -> bool) -> (i32, Vec<i32>) {
    let watch = watch.to_string();
    eventually(Duration::from_secs(30), what, || {
        let watch = watch.clone();
        let ok = &want;
        async move {
            placement(&watch)
                .await
                .filter(|(leader, isr)| *leader >= 0 && ok(isr))
        }
    })
    .await
}

fn node(nodes: &mut [Node], id: i32) -> &mut Node {
    nodes.iter_mut().find(|n| n.id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_follows_the_isr_and_min_insync_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Cluster::builder(dir.path())
        .nodes(1, Role::Controller, Format::Plain)
        .nodes(3, Role::Broker, Format::Plain)
        .quorum(Quorum::Voters)
        .property("broker.session.timeout.ms", SESSION_MS)
        .property("broker.heartbeat.interval.ms", 200)
        .property("replica.lag.time.max.ms", 3_000)
        .start()
        .nodes;
    let _controller = nodes.remove(0);
    let mut c = Client::connect(&nodes[0].addr()).await.unwrap();
    c.create_topic(
        TOPIC,
        1,
        3,
        &[("min.insync.replicas".to_string(), "2".to_string())],
    )
    .await
    .unwrap();
    let (leader, _) = isr_until(&nodes[0].addr(), "a leader and a full ISR", |isr| {
        isr.len() == 3
    })
    .await;
    let leader_addr = node(&mut nodes, leader).addr();
    let followers: Vec<i32> = nodes
        .iter()
        .map(|n| n.id)
        .filter(|&id| id != leader)
        .collect();
    let mut acked = Vec::new();

    // Every replica up: answered once both followers have the records.
    for i in 0..5 {
        let value = format!("all-{i}");
        let offset = eventually(
            Duration::from_secs(15),
            "acks=all with three replicas",
            || {
                let (addr, value) = (leader_addr.clone(), value.clone());
                async move { produce(&addr, &value, -1).await.ok() }
            },
        )
        .await;
        acked.push((offset, value));
    }

    // One follower down: fenced, out of the ISR; acks=all goes on with two.
    node(&mut nodes, followers[0]).kill9();
    isr_until(&leader_addr, "the ISR without the killed follower", |isr| {
        isr.len() == 2 && !isr.contains(&followers[0])
    })
    .await;
    for i in 0..5 {
        let value = format!("two-{i}");
        let offset = eventually(
            Duration::from_secs(15),
            "acks=all with two replicas",
            || {
                let (addr, value) = (leader_addr.clone(), value.clone());
                async move { produce(&addr, &value, -1).await.ok() }
            },
        )
        .await;
        acked.push((offset, value));
    }

    // Both followers down: below min.insync.replicas.
    node(&mut nodes, followers[1]).kill9();
    isr_until(&leader_addr, "the leader alone in the ISR", |isr| {
        isr == [leader]
    })
    .await;
    assert_eq!(
        produce(&leader_addr, "refused", -1).await,
        Err(Some(ErrorCode::NotEnoughReplicas)),
        "acks=all with one in-sync replica and min.insync.replicas=2"
    );
    let alone = produce(&leader_addr, "alone", 1)
        .await
        .expect("acks=1 does not need the ISR");
    acked.push((alone, "alone".to_string()));

    // The followers come back, catch up and rejoin the ISR.
    for id in &followers {
        node(&mut nodes, *id).start();
    }
    for id in &followers {
        node(&mut nodes, *id).wait_ready();
    }
    isr_until(&leader_addr, "the full ISR again", |isr| isr.len() == 3).await;

    // The leader dies: a follower from the ISR takes over with every acknowledged record.
    let survivor = node(&mut nodes, followers[0]).addr();
    node(&mut nodes, leader).kill9();
    let (new_leader, _) = isr_until(&survivor, "a new leader", |isr| !isr.contains(&leader)).await;
    assert_ne!(new_leader, leader);
    let new_addr = node(&mut nodes, new_leader).addr();
    let end = acked.iter().map(|(o, _)| o + 1).max().unwrap();
    let read = eventually(
        Duration::from_secs(15),
        "every record from the new leader",
        || read_to(&new_addr, TOPIC, 0, end),
    )
    .await;
    for (offset, value) in &acked {
        let r = read
            .iter()
            .find(|r| r.offset == *offset)
            .unwrap_or_else(|| panic!("acknowledged offset {offset} ({value}) missing"));
        assert_eq!(
            r.value.as_deref(),
            Some(value.as_bytes()),
            "offset {offset}"
        );
    }
    assert!(
        !read
            .iter()
            .any(|r| r.value.as_deref() == Some(b"refused".as_slice())),
        "a refused acks=all produce must not be written"
    );
}
