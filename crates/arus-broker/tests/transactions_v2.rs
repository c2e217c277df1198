//! Transactions v2 (KIP-890 part 2) and feature flags through the real handlers: EndTxn v5
//! bumps the epoch and its markers fence the old one, Produce v12 and TxnOffsetCommit v5
//! add partitions implicitly, a late batch of a committed epoch is fenced instead of
//! opening a hanging transaction, v1 clients keep working beside v2 ones, and
//! UpdateFeatures / ApiVersions report and persist the finalized levels across a restart.

#![allow(clippy::needless_update)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::produce_response::PartitionProduceResponse;
use arus_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use arus_protocol::messages::update_features_request::FeatureUpdateKey;
use arus_protocol::messages::*;
use arus_protocol::{Bytes, ErrorCode, Request, Response};
use arus_records::{BatchBuilder, Compression};

async fn open(dir: &Path) -> Arc<Broker> {
    let props = BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())]);
    let broker = Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap();
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

async fn call(broker: &Arc<Broker>, version: i16, req: Request) -> Response {
    let header = RequestHeader {
        request_api_key: req.api_key() as i16,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("txn-v2-test".into()),
        ..Default::default()
    };
    match broker.handle(&header, req).await {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

async fn init(broker: &Arc<Broker>, txn: &str) -> (i64, i16) {
    let Response::InitProducerId(r) = call(
        broker,
        5,
        Request::InitProducerId(InitProducerIdRequest {
            transactional_id: Some(txn.into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    (r.producer_id, r.producer_epoch)
}

async fn end_txn(
    broker: &Arc<Broker>,
    version: i16,
    txn: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
) -> EndTxnResponse {
    let Response::EndTxn(r) = call(
        broker,
        version,
        Request::EndTxn(EndTxnRequest {
            transactional_id: txn.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    r
}

fn batch((pid, epoch): (i64, i16), seq: i32, value: &str) -> Bytes {
    let mut b =
        BatchBuilder::new(Compression::None, 1_700_000_000_000).producer(pid, epoch, seq, true);
    b.push(1_700_000_000_000, Some(b"k"), Some(value.as_bytes()), &[]);
    b.build().unwrap()
}

async fn produce(
    broker: &Arc<Broker>,
    version: i16,
    txn: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let Response::Produce(mut r) = call(
        broker,
        version,
        Request::Produce(ProduceRequest {
            transactional_id: Some(txn.into()),
            acks: -1,
            timeout_ms: 5000,
            // v13 names the topic by id only.
            topic_data: vec![TopicProduceData {
                name: if version >= 13 {
                    String::new()
                } else {
                    "t".into()
                },
                topic_id: if version >= 13 {
                    broker.topics.get("t").unwrap().id
                } else {
                    Default::default()
                },
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                    ..Default::default()
                }],
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    r.responses.remove(0).partition_responses.remove(0)
}

/// Control batches of partition `p` of "t": (producer epoch, commit?).
fn markers(broker: &Broker, p: i32) -> Vec<(i16, bool)> {
    let part = broker.topics.get("t").unwrap().partition(p).unwrap();
    let mut out = Vec::new();
    part.for_each_batch(|b| {
        if b.is_control() {
            let rec = b.records().unwrap().into_iter().next().unwrap();
            let key = rec.key.unwrap();
            out.push((b.producer_epoch(), key[3] == 1));
        }
    })
    .unwrap();
    out
}

fn data_values(broker: &Broker, p: i32) -> Vec<String> {
    let part = broker.topics.get("t").unwrap().partition(p).unwrap();
    let mut out = Vec::new();
    part.for_each_batch(|b| {
        if !b.is_control() {
            for r in b.records().unwrap() {
                out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
        }
    })
    .unwrap();
    out
}

async fn describe(broker: &Arc<Broker>, txn: &str) -> (String, i64, i16, Vec<i32>) {
    let Response::DescribeTransactions(r) = call(
        broker,
        0,
        Request::DescribeTransactions(DescribeTransactionsRequest {
            transactional_ids: vec![txn.into()],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    let s = &r.transaction_states[0];
    let parts = s.topics.iter().flat_map(|t| t.partitions.clone()).collect();
    (
        s.transaction_state.clone(),
        s.producer_id,
        s.producer_epoch,
        parts,
    )
}

#[tokio::test]
async fn v2_commit_bumps_the_epoch_and_fences_a_late_batch_of_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let (pid, e0) = init(&broker, "v2").await;

    // Produce v12 adds the partition itself: no AddPartitionsToTxn.
    let r = produce(&broker, 12, "v2", 0, batch((pid, e0), 0, "a")).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    let (state, _, _, parts) = describe(&broker, "v2").await;
    assert_eq!((state.as_str(), parts), ("Ongoing", vec![0]));

    let r = end_txn(&broker, 5, "v2", (pid, e0), true).await;
    assert_eq!(
        (r.error_code, r.producer_id, r.producer_epoch),
        (0, pid, e0 + 1)
    );
    // The marker carries the bumped epoch.
    assert_eq!(markers(&broker, 0), vec![(e0 + 1, true)]);

    // KIP-890's hanging transaction: a batch of the committed epoch arriving late is
    // fenced and does not open a transaction.
    let late = produce(&broker, 12, "v2", 1, batch((pid, e0), 1, "late")).await;
    assert_eq!(late.error_code, ErrorCode::InvalidProducerEpoch.code());
    let (state, _, epoch, parts) = describe(&broker, "v2").await;
    assert_eq!(
        (state.as_str(), epoch, parts),
        ("CompleteCommit", e0 + 1, vec![])
    );
    assert!(data_values(&broker, 1).is_empty());

    // The retry of the EndTxn whose answer was lost gets the same pair.
    let r = end_txn(&broker, 5, "v2", (pid, e0), true).await;
    assert_eq!(
        (r.error_code, r.producer_id, r.producer_epoch),
        (0, pid, e0 + 1)
    );

    // The next transaction at the new epoch (sequence restarts at 0), aborted; through
    // Produce v13 (topic by id), as the Java 4.4 client sends it: the implicit add must
    // resolve the id.
    let r = produce(&broker, 13, "v2", 1, batch((pid, e0 + 1), 0, "b")).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    let r = end_txn(&broker, 5, "v2", (pid, e0 + 1), false).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, e0 + 2));
    assert_eq!(markers(&broker, 1), vec![(e0 + 2, false)]);
    // A zombie end of the old epoch is PRODUCER_FENCED.
    let r = end_txn(&broker, 5, "v2", (pid, e0), false).await;
    assert_eq!(r.error_code, ErrorCode::ProducerFenced.code());
    // The old epoch's EndTxn v1 (v0/v1 know only INVALID_PRODUCER_EPOCH) is fenced too.
    let r = end_txn(&broker, 1, "v2", (pid, e0), true).await;
    assert_eq!(r.error_code, ErrorCode::InvalidProducerEpoch.code());

    // Everything survives a restart: the next transaction starts at the current epoch.
    broker.shutdown();
    drop(broker);
    let broker = open(dir.path()).await;
    let (state, _, epoch, _) = describe(&broker, "v2").await;
    assert_eq!((state.as_str(), epoch), ("CompleteAbort", e0 + 2));
    let r = produce(&broker, 12, "v2", 0, batch((pid, e0 + 2), 0, "c")).await;
    assert_eq!(r.error_code, 0, "{r:?}");
}

#[tokio::test]
async fn pipelined_v12_produces_of_one_producer_append_in_arrival_order() {
    // A connection's requests run concurrently: the second request's partition is already
    // in the transaction, but it must not append before the first, whose add is still
    // being made durable (its batch would then be out of sequence).
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let (pid, e0) = init(&broker, "pipe").await;
    let (first, second) = tokio::join!(
        produce(&broker, 12, "pipe", 0, batch((pid, e0), 0, "first")),
        produce(&broker, 12, "pipe", 0, batch((pid, e0), 1, "second")),
    );
    assert_eq!(
        (first.error_code, second.error_code),
        (0, 0),
        "{first:?} {second:?}"
    );
    assert_eq!(data_values(&broker, 0), ["first", "second"]);
}

#[tokio::test]
async fn txn_offset_commit_v5_adds_the_offsets_partition_and_v1_clients_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let (pid, e0) = init(&broker, "eos").await;
    let r = produce(&broker, 12, "eos", 0, batch((pid, e0), 0, "x")).await;
    assert_eq!(r.error_code, 0);
    // No AddOffsetsToTxn: TxnOffsetCommit v5 adds the group's partition itself.
    let Response::TxnOffsetCommit(r) = call(
        &broker,
        5,
        Request::TxnOffsetCommit(TxnOffsetCommitRequest {
            transactional_id: "eos".into(),
            group_id: "g".into(),
            producer_id: pid,
            producer_epoch: e0,
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            topics: vec![TxnOffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 7,
                    committed_leader_epoch: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");
    let (_, _, _, parts) = describe(&broker, "eos").await;
    assert_eq!(
        parts.len(),
        2,
        "t-0 and the group's __consumer_offsets partition"
    );
    let r = end_txn(&broker, 5, "eos", (pid, e0), true).await;
    assert_eq!(r.error_code, 0);

    // A transactions v1 client beside it: explicit AddPartitionsToTxn, EndTxn v4, same
    // epoch afterwards.
    let (pid1, e1) = init(&broker, "v1").await;
    let Response::AddPartitionsToTxn(a) = call(
        &broker,
        3,
        Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: "v1".into(),
            v3_and_below_producer_id: pid1,
            v3_and_below_producer_epoch: e1,
            v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                name: "t".into(),
                partitions: vec![1],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(
        a.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    // Produce v11 verifies (KIP-890 part 1) instead of adding.
    let r = produce(&broker, 11, "v1", 1, batch((pid1, e1), 0, "v1")).await;
    assert_eq!(r.error_code, 0);
    let r = produce(&broker, 11, "v1", 0, batch((pid1, e1), 0, "not added")).await;
    assert_eq!(r.error_code, ErrorCode::InvalidTxnState.code());
    let r = end_txn(&broker, 4, "v1", (pid1, e1), true).await;
    assert_eq!(r.error_code, 0);
    let (state, _, epoch, _) = describe(&broker, "v1").await;
    assert_eq!((state.as_str(), epoch), ("CompleteCommit", e1));
}

async fn update(
    broker: &Arc<Broker>,
    version: i16,
    feature: &str,
    level: i16,
    upgrade_type: i8,
    validate_only: bool,
) -> UpdateFeaturesResponse {
    let Response::UpdateFeatures(r) = call(
        broker,
        version,
        Request::UpdateFeatures(UpdateFeaturesRequest {
            timeout_ms: 60_000,
            feature_updates: vec![FeatureUpdateKey {
                feature: feature.into(),
                max_version_level: level,
                upgrade_type,
                ..Default::default()
            }],
            validate_only,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    r
}

async fn finalized(broker: &Arc<Broker>) -> (i64, Vec<(String, i16)>) {
    // From v3 the software name and version must match Kafka's pattern (else INVALID_REQUEST).
    let request = ApiVersionsRequest {
        client_software_name: "arus-test".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    };
    let Response::ApiVersions(r) = call(broker, 4, Request::ApiVersions(request)).await else {
        panic!()
    };
    (
        r.finalized_features_epoch,
        r.finalized_features
            .iter()
            .map(|f| (f.name.clone(), f.max_version_level))
            .collect(),
    )
}

#[tokio::test]
async fn update_features_persists_levels_and_gates_kip848_groups() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    let (epoch0, levels) = finalized(&broker).await;
    assert_eq!(
        levels,
        [
            ("group.version".to_string(), 1),
            ("metadata.version".to_string(), 33),
            ("transaction.version".to_string(), 2)
        ]
    );
    // validate_only changes nothing.
    let r = update(&broker, 2, "transaction.version", 1, 2, true).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(finalized(&broker).await.0, epoch0);
    // A plain upgrade request cannot lower a level.
    let r = update(&broker, 1, "transaction.version", 1, 1, false).await;
    assert_eq!(r.error_code, ErrorCode::InvalidUpdateVersion.code());
    assert!(r.error_message.unwrap().ends_with("Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."));
    assert!(r.results.is_empty());
    // Safe downgrade (v1 answers per feature).
    let r = update(&broker, 1, "transaction.version", 1, 2, false).await;
    assert_eq!((r.error_code, r.results.len()), (0, 1));
    let r = update(&broker, 2, "group.version", 0, 2, false).await;
    assert_eq!((r.error_code, r.results.len()), (0, 0));
    let (epoch, levels) = finalized(&broker).await;
    assert_eq!(epoch, epoch0 + 2);
    assert_eq!(
        levels,
        [
            ("metadata.version".to_string(), 33),
            ("transaction.version".to_string(), 1)
        ]
    );
    // group.version 0: KIP-848 heartbeats are refused as Kafka refuses them.
    let Response::ConsumerGroupHeartbeat(h) = call(
        &broker,
        0,
        Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 1000,
            subscribed_topic_names: Some(vec!["t".into()]),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(h.error_code, ErrorCode::UnsupportedVersion.code());

    // Durable across a restart.
    broker.shutdown();
    drop(broker);
    let broker = open(dir.path()).await;
    assert_eq!(finalized(&broker).await, (epoch, levels));
    let r = update(&broker, 2, "transaction.version", 2, 1, false).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(finalized(&broker).await.0, epoch + 1);
}

#[tokio::test]
async fn a_directory_of_the_previous_release_keeps_transactions_v1() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.shutdown();
    drop(broker);
    // What the previous release left: data, no feature file.
    std::fs::remove_file(dir.path().join("arus-features.json")).unwrap();
    let broker = open(dir.path()).await;
    let (_, levels) = finalized(&broker).await;
    assert!(
        levels.contains(&("transaction.version".to_string(), 1)),
        "{levels:?}"
    );
    assert!(
        levels.contains(&("group.version".to_string(), 1)),
        "{levels:?}"
    );
}
