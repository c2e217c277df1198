//! Idempotent and transactional producers through the real handlers: duplicates, sequence
//! gaps, KIP-890 verification, read_committed fetches and ListOffsets, aborted-transaction
//! reporting, fencing, transactional offset commits with `require_stable`, the coordinator's
//! timeout abort, and all of it across a restart.

#![allow(clippy::needless_update)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::messages::fetch_response::PartitionData;
use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use arus_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::produce_response::PartitionProduceResponse;
use arus_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use arus_protocol::messages::*;
use arus_protocol::{Bytes, ErrorCode, Request, Response};
use arus_records::{BatchBuilder, Compression, batches};

fn open_broker(dir: &Path) -> Arc<Broker> {
    let props = BTreeMap::from([
        ("log.dirs".to_string(), dir.display().to_string()),
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms".to_string(),
            "100".to_string(),
        ),
    ]);
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

async fn call(broker: &Arc<Broker>, version: i16, req: Request) -> Response {
    let header = RequestHeader {
        request_api_key: req.api_key() as i16,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("txn-test".into()),
        ..Default::default()
    };
    match broker.handle(&header, req).await {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

async fn init_pid(broker: &Arc<Broker>, txn: Option<&str>, timeout_ms: i32) -> (i16, i64, i16) {
    let r = call(
        broker,
        4,
        Request::InitProducerId(InitProducerIdRequest {
            transactional_id: txn.map(str::to_string),
            transaction_timeout_ms: timeout_ms,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }),
    )
    .await;
    let Response::InitProducerId(r) = r else {
        panic!("{r:?}")
    };
    (r.error_code, r.producer_id, r.producer_epoch)
}

/// InitProducerId until the coordinator stops answering CONCURRENT_TRANSACTIONS (it does
/// while it aborts the id's previous transaction), as clients retry.
async fn init_pid_retrying(broker: &Arc<Broker>, txn: &str) -> (i64, i16) {
    for _ in 0..200 {
        let (code, pid, epoch) = init_pid(broker, Some(txn), 60_000).await;
        if code == ErrorCode::ConcurrentTransactions.code() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(code, 0, "InitProducerId {txn}");
        return (pid, epoch);
    }
    panic!("InitProducerId {txn} kept answering CONCURRENT_TRANSACTIONS");
}

async fn add_partitions(
    broker: &Arc<Broker>,
    txn: &str,
    pid: i64,
    epoch: i16,
    parts: &[i32],
) -> i16 {
    for _ in 0..200 {
        let r = call(
            broker,
            3,
            Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: txn.into(),
                v3_and_below_producer_id: pid,
                v3_and_below_producer_epoch: epoch,
                v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                    name: "t".into(),
                    partitions: parts.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        )
        .await;
        let Response::AddPartitionsToTxn(r) = r else {
            panic!("{r:?}")
        };
        let code = r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
        if code == ErrorCode::ConcurrentTransactions.code() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        return code;
    }
    panic!("AddPartitionsToTxn kept answering CONCURRENT_TRANSACTIONS");
}

async fn end_txn(broker: &Arc<Broker>, txn: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let r = call(
        broker,
        3,
        Request::EndTxn(EndTxnRequest {
            transactional_id: txn.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        }),
    )
    .await;
    let Response::EndTxn(r) = r else {
        panic!("{r:?}")
    };
    r.error_code
}

fn batch(pid: i64, epoch: i16, seq: i32, transactional: bool, values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000).producer(
        pid,
        epoch,
        seq,
        transactional,
    );
    for v in values {
        b.push(1_700_000_000_000, Some(b"k"), Some(v.as_bytes()), &[]);
    }
    b.build().unwrap()
}

async fn produce(broker: &Arc<Broker>, partition: i32, records: Bytes) -> PartitionProduceResponse {
    let r = call(
        broker,
        9,
        Request::Produce(ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 5000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await;
    let Response::Produce(mut r) = r else {
        panic!("{r:?}")
    };
    r.responses.remove(0).partition_responses.remove(0)
}

async fn fetch(
    broker: &Arc<Broker>,
    partition: i32,
    offset: i64,
    committed: bool,
) -> PartitionData {
    let r = call(
        broker,
        11,
        Request::Fetch(FetchRequest {
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            isolation_level: i8::from(committed),
            topics: vec![FetchTopic {
                topic: "t".into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    current_leader_epoch: -1,
                    log_start_offset: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await;
    let Response::Fetch(mut r) = r else {
        panic!("{r:?}")
    };
    r.responses.remove(0).partitions.remove(0)
}

/// Values of the data records in a fetch answer (control batches skipped).
fn values(data: &PartitionData) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches(data.records.clone().unwrap_or_default()) {
        let b = b.unwrap();
        if b.is_control() {
            continue;
        }
        for r in b.records().unwrap() {
            out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    out
}

async fn latest(broker: &Arc<Broker>, partition: i32, committed: bool) -> i64 {
    let r = call(
        broker,
        5,
        Request::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            isolation_level: i8::from(committed),
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp: -1,
                    current_leader_epoch: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await;
    let Response::ListOffsets(r) = r else {
        panic!("{r:?}")
    };
    r.topics[0].partitions[0].offset
}

/// Waits (bounded) until the markers of a finished transaction made `partition` stable.
async fn wait_stable(broker: &Arc<Broker>, partition: i32) {
    for _ in 0..500 {
        let p = broker
            .topics
            .get("t")
            .unwrap()
            .partition(partition)
            .unwrap();
        if p.last_stable_offset() == p.high_watermark() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("partition {partition} never became stable");
}

async fn describe_state(broker: &Arc<Broker>, txn: &str) -> (String, i16) {
    let r = call(
        broker,
        0,
        Request::DescribeTransactions(DescribeTransactionsRequest {
            transactional_ids: vec![txn.into()],
            ..Default::default()
        }),
    )
    .await;
    let Response::DescribeTransactions(r) = r else {
        panic!("{r:?}")
    };
    let s = &r.transaction_states[0];
    assert_eq!(s.error_code, 0, "describe {txn}");
    (s.transaction_state.clone(), s.producer_epoch)
}

async fn setup(dir: &Path) -> Arc<Broker> {
    let broker = open_broker(dir);
    if broker.topics.get("t").is_none() {
        broker
            .topics
            .create(arus_broker::topics::NewTopic {
                name: "t".into(),
                partitions: 2,
                replication_factor: 1,
                configs: BTreeMap::new(),
            })
            .unwrap();
    }
    broker.txns.wait_loaded().await;
    broker.groups.wait_loaded().await;
    broker
}

#[tokio::test]
async fn idempotent_producer_dedups_and_rejects_gaps_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = setup(dir.path()).await;
    let (code, pid, epoch) = init_pid(&broker, None, 0).await;
    assert_eq!(code, 0);
    assert!(pid >= 0);
    assert_eq!(epoch, 0);
    let first = batch(pid, epoch, 0, false, &["a", "b"]);
    let r = produce(&broker, 0, first.clone()).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    // A retry of the same batch is answered with the original offset and not written.
    let r = produce(&broker, 0, first.clone()).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    assert_eq!(fetch(&broker, 0, 0, false).await.high_watermark, 2);
    // A gap in the sequence is refused.
    let r = produce(&broker, 0, batch(pid, epoch, 5, false, &["gap"])).await;
    assert_eq!(r.error_code, ErrorCode::OutOfOrderSequenceNumber.code());
    let r = produce(&broker, 0, batch(pid, epoch, 2, false, &["c"])).await;
    assert_eq!((r.error_code, r.base_offset), (0, 2));
    // A second producer id is a different producer.
    let (_, pid2, _) = init_pid(&broker, None, 0).await;
    assert_ne!(pid, pid2);
    broker.shutdown();
    drop(broker);

    // The producer state survives the restart: the retry is still a duplicate.
    let broker = setup(dir.path()).await;
    let r = produce(&broker, 0, first).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let r = produce(&broker, 0, batch(pid, epoch, 3, false, &["d"])).await;
    assert_eq!((r.error_code, r.base_offset), (0, 3));
    assert_eq!(
        values(&fetch(&broker, 0, 0, false).await),
        ["a", "b", "c", "d"]
    );
    // Producer ids are never reused after a restart.
    let (_, pid3, _) = init_pid(&broker, None, 0).await;
    assert!(pid3 > pid2);
    broker.shutdown();
}

#[tokio::test]
async fn transactions_commit_abort_fence_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = setup(dir.path()).await;
    let (pid, epoch) = init_pid_retrying(&broker, "tx1").await;

    // Transaction 1: committed.
    assert_eq!(add_partitions(&broker, "tx1", pid, epoch, &[0]).await, 0);
    let r = produce(&broker, 0, batch(pid, epoch, 0, true, &["c1", "c2"])).await;
    assert_eq!(r.error_code, 0);
    // KIP-890 verification: partition 1 was never added to the transaction.
    let r = produce(&broker, 1, batch(pid, epoch, 0, true, &["stray"])).await;
    assert_eq!(r.error_code, ErrorCode::InvalidTxnState.code());
    // Open transaction: read_committed sees nothing, read_uncommitted everything.
    let open = fetch(&broker, 0, 0, true).await;
    assert_eq!(open.last_stable_offset, 0);
    assert!(values(&open).is_empty());
    assert_eq!(values(&fetch(&broker, 0, 0, false).await), ["c1", "c2"]);
    assert_eq!(latest(&broker, 0, true).await, 0);
    assert_eq!(latest(&broker, 0, false).await, 2);
    assert_eq!(end_txn(&broker, "tx1", pid, epoch, true).await, 0);
    wait_stable(&broker, 0).await;
    assert_eq!(
        latest(&broker, 0, true).await,
        3,
        "2 records + the COMMIT marker"
    );

    // Transaction 2: aborted.
    assert_eq!(add_partitions(&broker, "tx1", pid, epoch, &[0]).await, 0);
    let r = produce(&broker, 0, batch(pid, epoch, 2, true, &["x1", "x2"])).await;
    assert_eq!((r.error_code, r.base_offset), (0, 3));
    assert_eq!(end_txn(&broker, "tx1", pid, epoch, false).await, 0);
    wait_stable(&broker, 0).await;
    let f = fetch(&broker, 0, 0, true).await;
    let aborted = f.aborted_transactions.clone().unwrap_or_default();
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (pid, 3));
    // The client drops aborted batches using that list; the committed ones remain.
    assert_eq!(values(&f), ["c1", "c2", "x1", "x2"]);

    // A new producer with the same transactional id fences the old one.
    let (pid_b, epoch_b) = init_pid_retrying(&broker, "tx1").await;
    assert_eq!(pid_b, pid);
    assert_eq!(epoch_b, epoch + 1);
    assert_eq!(
        add_partitions(&broker, "tx1", pid, epoch, &[0]).await,
        ErrorCode::ProducerFenced.code()
    );
    let r = produce(&broker, 0, batch(pid, epoch, 4, true, &["zombie"])).await;
    assert_eq!(r.error_code, ErrorCode::InvalidProducerEpoch.code());

    // Transaction 3 is left open over a restart.
    assert_eq!(
        add_partitions(&broker, "tx1", pid_b, epoch_b, &[1]).await,
        0
    );
    let r = produce(&broker, 1, batch(pid_b, epoch_b, 0, true, &["open"])).await;
    assert_eq!(r.error_code, 0);
    broker.shutdown();
    drop(broker);

    let broker = setup(dir.path()).await;
    let p1 = broker.topics.get("t").unwrap().partition(1).unwrap();
    assert_eq!(
        p1.last_stable_offset(),
        0,
        "the open transaction still blocks"
    );
    assert_eq!(describe_state(&broker, "tx1").await.0, "Ongoing");
    // The state reloaded: committing it works and makes it visible.
    assert_eq!(end_txn(&broker, "tx1", pid_b, epoch_b, true).await, 0);
    wait_stable(&broker, 1).await;
    assert_eq!(values(&fetch(&broker, 1, 0, true).await), ["open"]);
    let f = fetch(&broker, 0, 0, true).await;
    assert_eq!(f.aborted_transactions.unwrap_or_default().len(), 1);
    broker.shutdown();
}

#[tokio::test]
async fn the_coordinator_aborts_a_transaction_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let broker = setup(dir.path()).await;
    let (code, pid, epoch) = init_pid(&broker, Some("slow"), 500).await;
    assert_eq!(code, 0);
    assert_eq!(add_partitions(&broker, "slow", pid, epoch, &[0]).await, 0);
    assert_eq!(
        produce(&broker, 0, batch(pid, epoch, 0, true, &["late"]))
            .await
            .error_code,
        0
    );
    // The coordinator (checking every 100 ms here) aborts it with a bumped epoch.
    let mut state = String::new();
    for _ in 0..300 {
        state = describe_state(&broker, "slow").await.0;
        if state == "CompleteAbort" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, "CompleteAbort");
    assert_eq!(describe_state(&broker, "slow").await.1, epoch + 1);
    wait_stable(&broker, 0).await;
    let f = fetch(&broker, 0, 0, true).await;
    assert_eq!(f.aborted_transactions.unwrap_or_default().len(), 1);
    // The zombie is fenced everywhere.
    assert_eq!(
        end_txn(&broker, "slow", pid, epoch, true).await,
        ErrorCode::ProducerFenced.code()
    );
    broker.shutdown();
}

async fn offset_fetch(broker: &Arc<Broker>, group: &str, require_stable: bool) -> (i16, i64) {
    let r = call(
        broker,
        7,
        Request::OffsetFetch(OffsetFetchRequest {
            group_id: group.into(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "t".into(),
                partition_indexes: vec![0],
                ..Default::default()
            }]),
            require_stable,
            ..Default::default()
        }),
    )
    .await;
    let Response::OffsetFetch(r) = r else {
        panic!("{r:?}")
    };
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[tokio::test]
async fn transactional_offsets_count_only_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = setup(dir.path()).await;
    let (pid, epoch) = init_pid_retrying(&broker, "ctp").await;
    for (offset, commit) in [(5, false), (7, true)] {
        let r = call(
            &broker,
            3,
            Request::AddOffsetsToTxn(AddOffsetsToTxnRequest {
                transactional_id: "ctp".into(),
                producer_id: pid,
                producer_epoch: epoch,
                group_id: "g".into(),
                ..Default::default()
            }),
        )
        .await;
        let Response::AddOffsetsToTxn(r) = r else {
            panic!("{r:?}")
        };
        assert_eq!(r.error_code, 0);
        let r = call(
            &broker,
            3,
            Request::TxnOffsetCommit(TxnOffsetCommitRequest {
                transactional_id: "ctp".into(),
                group_id: "g".into(),
                producer_id: pid,
                producer_epoch: epoch,
                generation_id_or_member_epoch: -1,
                member_id: String::new(),
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: "t".into(),
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: offset,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
        )
        .await;
        let Response::TxnOffsetCommit(r) = r else {
            panic!("{r:?}")
        };
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        // Pending: invisible (the aborted 5 never counted either), and unstable for
        // require_stable readers.
        assert_eq!(offset_fetch(&broker, "g", false).await, (0, -1));
        assert_eq!(
            offset_fetch(&broker, "g", true).await.0,
            ErrorCode::UnstableOffsetCommit.code()
        );
        assert_eq!(end_txn(&broker, "ctp", pid, epoch, commit).await, 0);
        // Completion follows the markers.
        let mut seen = (-2, -2);
        for _ in 0..300 {
            seen = offset_fetch(&broker, "g", true).await;
            if seen.0 == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen, (0, if commit { 7 } else { -1 }));
    }
    broker.shutdown();
    drop(broker);
    // The committed transactional offset is replayed from __consumer_offsets.
    let broker = setup(dir.path()).await;
    assert_eq!(offset_fetch(&broker, "g", true).await, (0, 7));
    broker.shutdown();
}
