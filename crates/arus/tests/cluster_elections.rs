//! The controller's elections with replicated data (issue 15), on one controller and two
//! brokers of real `arus serve` processes, a topic with two replicas:
//! - preferred-leader balancing (`auto.leader.rebalance.enable`, here every second): the
//!   preferred replica, back after a SIGKILL and in sync again, leads again;
//! - unclean election: a partition whose only in-sync replica is down stays leaderless
//!   (its other replica is out of sync: electing it would lose acknowledged records) until
//!   `unclean.leader.election.enable=true` is set on the topic; then the controller elects
//!   the out-of-sync replica at once, and what only the old leader had is gone.

#![allow(clippy::needless_update)]

mod common;

use std::time::Duration;

use arus_client::Client;
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Node, Quorum, Role, eventually};

const TOPIC: &str = "elections";

/// Partition 0's (leader, replicas, ISR) as node `addr` describes it.
async fn placement(addr: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(TOPIC).await.ok()?;
    let p = t.partitions.first()?;
    Some((p.leader_id, p.replica_nodes.clone(), p.isr_nodes.clone()))
}

async fn wait_placement(
    addr: &str,
    what: &str,
    secs: u64,
    want: impl Fn(i32, &[i32]) -> bool,
) -> (i32, Vec<i32>, Vec<i32>) {
    let addr = addr.to_string();
    eventually(Duration::from_secs(secs), what, || {
        let addr = addr.clone();
        let want = &want;
        async move {
            placement(&addr)
                .await
                .filter(|(leader, _, isr)| want(*leader, isr))
        }
    })
    .await
}

async fn produce(addr: &str, value: &str, acks: i16) -> i64 {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, Some(b"k"), Some(value.as_bytes()), &[]);
    let records = b.build().unwrap();
    let addr = addr.to_string();
    eventually(Duration::from_secs(15), "a produce", || {
        let (addr, records) = (addr.clone(), records.clone());
        async move {
            let mut c = Client::connect(&addr).await.ok()?;
            c.produce(TOPIC, 0, records, acks, 2_000).await.ok()
        }
    })
    .await
}

fn node(nodes: &mut [Node], id: i32) -> &mut Node {
    nodes.iter_mut().find(|n| n.id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leaders_return_and_unclean_elections_need_the_topic_to_allow_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Cluster::builder(dir.path())
        .nodes(1, Role::Controller, Format::Plain)
        .nodes(2, Role::Broker, Format::Plain)
        .quorum(Quorum::Voters)
        .property("broker.session.timeout.ms", 2_000)
        .property("broker.heartbeat.interval.ms", 200)
        .property("replica.lag.time.max.ms", 2_000)
        .property("leader.imbalance.check.interval.seconds", 1)
        .start()
        .nodes;
    let _controller = nodes.remove(0);
    let watch = nodes[0].addr();
    let mut c = Client::connect(&watch).await.unwrap();
    c.create_topic(TOPIC, 1, 2, &[]).await.unwrap();
    let (preferred, replicas, _) =
        wait_placement(&watch, "a leader and a full ISR", 20, |l, isr| {
            l >= 0 && isr.len() == 2
        })
        .await;
    assert_eq!(preferred, replicas[0], "the first replica leads at first");
    let other = replicas[1];
    let preferred_addr = node(&mut nodes, preferred).addr();
    let other_addr = node(&mut nodes, other).addr();
    produce(&preferred_addr, "both-1", -1).await;

    // Preferred leader: SIGKILL moves the leadership away; once back and in sync, the
    // periodic balancing gives it back.
    node(&mut nodes, preferred).kill9();
    wait_placement(&other_addr, "the other replica leading", 20, |l, _| {
        l == other
    })
    .await;
    node(&mut nodes, preferred).start();
    node(&mut nodes, preferred).wait_ready();
    wait_placement(
        &other_addr,
        "the preferred replica leading again",
        30,
        |l, isr| l == preferred && isr.len() == 2,
    )
    .await;

    // Unclean: the other replica goes down and drops out of the ISR; records written then
    // are only on the leader; then the leader goes down too.
    node(&mut nodes, other).kill9();
    wait_placement(
        &preferred_addr,
        "the ISR down to the leader",
        20,
        |l, isr| l == preferred && isr == [preferred],
    )
    .await;
    let lost = produce(&preferred_addr, "only-on-the-leader", 1).await;
    node(&mut nodes, preferred).kill9();
    node(&mut nodes, other).start();
    node(&mut nodes, other).wait_ready();
    // Not in the ISR: not electable while the topic does not allow unclean elections.
    wait_placement(&other_addr, "a leaderless partition", 20, |l, _| l == -1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (leader, _, _) = placement(&other_addr).await.unwrap();
    assert_eq!(leader, -1, "no clean leader: the partition stays offline");

    Client::connect(&other_addr)
        .await
        .unwrap()
        .incremental_alter_topic_configs(
            TOPIC,
            &[(
                "unclean.leader.election.enable".to_string(),
                "true".to_string(),
            )],
            &[],
        )
        .await
        .unwrap();
    wait_placement(
        &other_addr,
        "the out-of-sync replica elected",
        10,
        |l, _| l == other,
    )
    .await;
    // What only the old leader had is gone: the new leader's log ends before it.
    let end = eventually(Duration::from_secs(10), "the new leader's log end", || {
        let addr = other_addr.clone();
        async move {
            let mut c = Client::connect(&addr).await.ok()?;
            c.list_offset(TOPIC, 0, -1).await.ok().map(|(o, _)| o)
        }
    })
    .await;
    assert!(
        end <= lost,
        "offset {lost} was only on the old leader; end {end}"
    );
    drop(c);
}
