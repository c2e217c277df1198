//! Transactions across brokers on three `arus serve` processes (KRaft combined mode): the
//! transaction coordinator of the transactional id is one node, the transaction's two
//! partitions are led by the two others. Checked with the raw protocol, so that every step
//! is the one under test:
//! - transactions v1 (AddPartitionsToTxn from the client, Produce v11): each leader verifies
//!   the transactional produce with the remote coordinator (AddPartitionsToTxn v4
//!   `verify_only`), refusing a partition not in the transaction; EndTxn commits and the
//!   coordinator's WriteTxnMarkers reach both leaders (their last stable offset passes the
//!   COMMIT marker, read_committed sees no aborted transaction);
//! - transactions v2 (Produce v12 adds the partitions: AddPartitionsToTxn v5 from the
//!   leaders to the coordinator), aborted: read_committed fetches list the aborted
//!   transaction on both leaders;
//! - SIGKILL of the coordinator's node with a transaction open: its `__transaction_state`
//!   partition (one replica: `transaction.state.log.replication.factor=1`) moves to no
//!   one, so the transaction is not lost but waits; after
//!   the restart the coordinator reloads, a new leader epoch is its coordinator epoch, and
//!   the producer's abort completes on both remote leaders.

#![allow(clippy::needless_update)]

mod common;

use std::time::{Duration, Instant};

use arus_client::Client;
use arus_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, FetchRequest, FindCoordinatorRequest,
    InitProducerIdRequest, ProduceRequest,
};
use arus_protocol::{ApiKey, ErrorCode, Request, Response};
use arus_records::{BatchBuilder, Compression};
use common::cluster::{Cluster, Format, Quorum, Role, eventually};

async fn connect(addr: &str) -> Option<Client> {
    let mut c = Client::connect(addr).await.ok()?;
    // Transactions v1 requests unless a test asks for more.
    c.cap_version(ApiKey::Produce, 11);
    c.cap_version(ApiKey::EndTxn, 4);
    c.cap_version(ApiKey::Fetch, 12);
    Some(c)
}

/// The transaction coordinator of `id`, as node `addr` names it.
async fn coordinator_of(addr: &str, id: &str) -> Option<i32> {
    let mut c = connect(addr).await?;
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

async fn leaders(addr: &str, topic: &str) -> Option<Vec<i32>> {
    let mut c = Client::connect(addr).await.ok()?;
    let t = c.topic_metadata(topic).await.ok()?;
    Some(t.partitions.iter().map(|p| p.leader_id).collect())
}

async fn init_pid(c: &mut Client, id: &str) -> Option<(i64, i16)> {
    let r = c
        .send(Request::InitProducerId(InitProducerIdRequest {
            transactional_id: Some(id.into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }))
        .await
        .ok()?;
    let Response::InitProducerId(r) = r else {
        return None;
    };
    (r.error_code == 0).then_some((r.producer_id, r.producer_epoch))
}

async fn add_partitions(c: &mut Client, id: &str, pid: i64, epoch: i16, parts: &[i32]) -> i16 {
    let r = c
        .send_with_version(
            Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: id.into(),
                v3_and_below_producer_id: pid,
                v3_and_below_producer_epoch: epoch,
                v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                    name: "pay".into(),
                    partitions: parts.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            3,
        )
        .await
        .unwrap();
    let Response::AddPartitionsToTxn(r) = r else {
        panic!("{r:?}")
    };
    r.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .find(|&c| c != 0)
        .unwrap_or(0)
}

/// A transactional Produce of one record to `pay`-`partition`; its error code.
#[allow(clippy::too_many_arguments)]
async fn produce(
    c: &mut Client,
    id: &str,
    pid: i64,
    epoch: i16,
    seq: i32,
    partition: i32,
    version: i16,
) -> i16 {
    let mut b = BatchBuilder::new(Compression::None, 1).producer(pid, epoch, seq, true);
    b.push(1, None, Some(b"in a transaction"), &[]);
    let r = c
        .send_with_version(
            Request::Produce(ProduceRequest {
                transactional_id: Some(id.into()),
                acks: -1,
                timeout_ms: 10_000,
                topic_data: vec![TopicProduceData {
                    name: "pay".into(),
                    partition_data: vec![PartitionProduceData {
                        index: partition,
                        records: Some(b.build().unwrap()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            version,
        )
        .await
        .unwrap();
    let Response::Produce(r) = r else {
        panic!("{r:?}")
    };
    r.responses[0].partition_responses[0].error_code
}

async fn end_txn(c: &mut Client, id: &str, pid: i64, epoch: i16, commit: bool, v: i16) -> i16 {
    let r = c
        .send_with_version(
            Request::EndTxn(EndTxnRequest {
                transactional_id: id.into(),
                producer_id: pid,
                producer_epoch: epoch,
                committed: commit,
                ..Default::default()
            }),
            v,
        )
        .await
        .unwrap();
    let Response::EndTxn(r) = r else {
        panic!("{r:?}")
    };
    r.error_code
}

/// A read_committed Fetch of `pay`-`partition` from 0 on its leader: (last stable offset,
/// producer ids of the aborted transactions it lists).
async fn read_committed(addr: &str, partition: i32) -> Option<(i64, Vec<i64>)> {
    let mut c = connect(addr).await?;
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
                    topic: "pay".into(),
                    partitions: vec![FetchPartition {
                        partition,
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
    Some((p.last_stable_offset, aborted))
}

/// Waits until the read_committed view of `partition` on `addr` is `want`.
async fn expect_committed_view(addr: &str, partition: i32, want: (i64, Vec<i64>)) {
    let what = format!("pay-{partition} on {addr} reads {want:?} with read_committed");
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        last = read_committed(addr, partition).await;
        if last.as_ref() == Some(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}; last {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_spans_three_brokers_commits_aborts_and_survives_its_coordinators_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Cluster::builder(dir.path())
        .nodes(3, Role::Combined, Format::Plain)
        .quorum(Quorum::Voters)
        .property("broker.session.timeout.ms", 2000)
        .property("broker.heartbeat.interval.ms", 200)
        .property("transaction.state.log.num.partitions", 3)
        // One replica, so that the coordinator's kill leaves its partition with no leader
        // (what this test is about); Kafka's default, three, moves it to another broker.
        .property("transaction.state.log.replication.factor", 1)
        .property("transaction.state.log.min.isr", 1)
        .property("offsets.topic.num.partitions", 3)
        .start()
        .nodes;
    let first = nodes[0].addr();
    let mut admin = Client::connect(&first).await.unwrap();
    admin.create_topic("pay", 6, 1, &[]).await.unwrap();
    let placed = eventually(Duration::from_secs(15), "pay has leaders", || {
        let first = first.clone();
        async move {
            leaders(&first, "pay")
                .await
                .filter(|l| l.iter().all(|&l| l > 0))
        }
    })
    .await;

    // A transactional id whose coordinator is some node C; two partitions led by the two
    // other nodes A and B.
    let id = "tx-across";
    let coordinator = eventually(Duration::from_secs(30), "a transaction coordinator", || {
        let first = first.clone();
        async move { coordinator_of(&first, id).await }
    })
    .await;
    let others: Vec<i32> = (1..=3).filter(|&n| n != coordinator).collect();
    let pa = placed.iter().position(|&l| l == others[0]).unwrap() as i32;
    let pb = placed.iter().position(|&l| l == others[1]).unwrap() as i32;
    let addrs: Vec<(i32, String)> = nodes.iter().map(|n| (n.id, n.addr())).collect();
    let addr_of = |node: i32| addrs.iter().find(|(id, _)| *id == node).unwrap().1.clone();
    let (ca, aa, ab) = (addr_of(coordinator), addr_of(others[0]), addr_of(others[1]));
    let mut coord = connect(&ca).await.unwrap();
    let (pid, epoch) = eventually(Duration::from_secs(30), "InitProducerId", || {
        let ca = ca.clone();
        async move { init_pid(&mut connect(&ca).await?, id).await }
    })
    .await;

    // Transactions v1: the client adds pay-pa only; the leader of pay-pb refuses a write
    // there after asking the coordinator (KIP-890 verification across brokers).
    assert_eq!(add_partitions(&mut coord, id, pid, epoch, &[pa]).await, 0);
    let mut leader_a = connect(&aa).await.unwrap();
    let mut leader_b = connect(&ab).await.unwrap();
    assert_eq!(produce(&mut leader_a, id, pid, epoch, 0, pa, 11).await, 0);
    assert_eq!(
        produce(&mut leader_b, id, pid, epoch, 0, pb, 11).await,
        ErrorCode::InvalidTxnState.code(),
        "a partition outside the transaction is refused by its leader"
    );
    assert_eq!(add_partitions(&mut coord, id, pid, epoch, &[pb]).await, 0);
    assert_eq!(produce(&mut leader_b, id, pid, epoch, 0, pb, 11).await, 0);
    assert_eq!(end_txn(&mut coord, id, pid, epoch, true, 4).await, 0);
    // One record and the COMMIT marker on each leader, written by the remote coordinator.
    expect_committed_view(&aa, pa, (2, vec![])).await;
    expect_committed_view(&ab, pb, (2, vec![])).await;

    // Transactions v2: Produce v12 adds the partitions through the coordinator; aborted.
    assert_eq!(produce(&mut leader_a, id, pid, epoch, 1, pa, 12).await, 0);
    assert_eq!(produce(&mut leader_b, id, pid, epoch, 1, pb, 12).await, 0);
    assert_eq!(end_txn(&mut coord, id, pid, epoch, false, 5).await, 0);
    expect_committed_view(&aa, pa, (4, vec![pid])).await;
    expect_committed_view(&ab, pb, (4, vec![pid])).await;

    // SIGKILL of the coordinator's node with a transaction open on both remote leaders.
    let aborted_before = pid;
    let (pid, epoch) = eventually(Duration::from_secs(10), "InitProducerId", || {
        let ca = ca.clone();
        async move { init_pid(&mut connect(&ca).await?, id).await }
    })
    .await;
    let mut coord = connect(&ca).await.unwrap();
    assert_eq!(
        add_partitions(&mut coord, id, pid, epoch, &[pa, pb]).await,
        0
    );
    assert_eq!(produce(&mut leader_a, id, pid, epoch, 0, pa, 11).await, 0);
    assert_eq!(produce(&mut leader_b, id, pid, epoch, 0, pb, 11).await, 0);
    let c_index = nodes.iter().position(|n| n.id == coordinator).unwrap();
    nodes[c_index].kill9();
    // The open transaction holds the last stable offset of both partitions.
    expect_committed_view(&aa, pa, (4, vec![aborted_before])).await;
    expect_committed_view(&ab, pb, (4, vec![aborted_before])).await;
    nodes[c_index].start();
    nodes[c_index].wait_ready();
    let back = eventually(Duration::from_secs(30), "the coordinator back", || {
        let first = first.clone();
        async move { coordinator_of(&first, id).await }
    })
    .await;
    let cb = addr_of(back);
    // The producer aborts through the restarted coordinator (its epoch is unchanged).
    let code = eventually(Duration::from_secs(30), "EndTxn after the restart", || {
        let cb = cb.clone();
        async move {
            let mut c = connect(&cb).await?;
            let code = end_txn(&mut c, id, pid, epoch, false, 4).await;
            (code == 0).then_some(code)
        }
    })
    .await;
    assert_eq!(code, 0);
    // The new coordinator epoch (a newer leader epoch of `__transaction_state`) is accepted
    // by partitions that took markers of the previous one.
    expect_committed_view(&aa, pa, (6, vec![aborted_before, pid])).await;
    expect_committed_view(&ab, pb, (6, vec![aborted_before, pid])).await;
}
