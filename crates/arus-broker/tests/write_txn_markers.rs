//! WriteTxnMarkers (API 27) through the real handler of a single broker, as a transaction
//! coordinator on another node sends it: a marker closes the producer's open transaction
//! (the last stable offset moves past it), each partition is answered with Kafka's codes
//! (UNKNOWN_TOPIC_OR_PARTITION, INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED for
//! an older coordinator epoch), and the answer leaves once the marker is fsynced.

#![allow(clippy::needless_update)]

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use arus_protocol::messages::*;
use arus_protocol::{ErrorCode, Request, Response};
use arus_records::{BatchBuilder, Compression};

async fn call(broker: &Arc<Broker>, version: i16, req: Request) -> Response {
    let header = RequestHeader {
        request_api_key: req.api_key() as i16,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("marker-test".into()),
        ..Default::default()
    };
    match broker.handle(&header, req).await {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

/// A transactional batch of `pid`/`epoch` appended to t-0 without a coordinator on this
/// node (verification off: the coordinator is elsewhere in the real cluster).
async fn produce_txn(broker: &Arc<Broker>, pid: i64, epoch: i16, seq: i32) {
    let mut b = BatchBuilder::new(Compression::None, 1).producer(pid, epoch, seq, true);
    b.push(1, None, Some(b"v"), &[]);
    let r = call(
        broker,
        9,
        Request::Produce(ProduceRequest {
            transactional_id: Some("elsewhere".into()),
            acks: -1,
            timeout_ms: 5000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(b.build().unwrap()),
                }],
                ..Default::default()
            }],
        }),
    )
    .await;
    let Response::Produce(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

/// Codes of one marker of `pid` for `targets` (topic, partition), in order.
async fn marker(
    broker: &Arc<Broker>,
    pid: i64,
    epoch: i16,
    coordinator_epoch: i32,
    targets: &[(&str, i32)],
) -> Vec<ErrorCode> {
    let r = call(
        broker,
        2,
        Request::WriteTxnMarkers(WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: pid,
                producer_epoch: epoch,
                transaction_result: true,
                coordinator_epoch,
                transaction_version: 0,
                topics: targets
                    .iter()
                    .map(|(t, p)| WritableTxnMarkerTopic {
                        name: t.to_string(),
                        partition_indexes: vec![*p],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
        }),
    )
    .await;
    let Response::WriteTxnMarkers(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.markers[0].producer_id, pid);
    r.markers[0]
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| ErrorCode::from_code(p.error_code).unwrap())
        .collect()
}

async fn last_stable(broker: &Arc<Broker>) -> i64 {
    let r = call(
        broker,
        5,
        Request::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 1,
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    timestamp: -1,
                    ..Default::default()
                }],
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

#[tokio::test]
async fn markers_close_transactions_and_are_fenced_as_kafka_fences_them() {
    let dir = tempfile::tempdir().unwrap();
    let props = BTreeMap::from([
        ("log.dirs".to_string(), dir.path().display().to_string()),
        (
            "transaction.partition.verification.enable".to_string(),
            "false".to_string(),
        ),
    ]);
    let broker = Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap();
    broker
        .topics
        .create(arus_broker::topics::NewTopic {
            name: "t".into(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
    broker.txns.wait_loaded().await;

    produce_txn(&broker, 7000, 3, 0).await;
    assert_eq!(
        last_stable(&broker).await,
        0,
        "the open transaction holds it"
    );
    // One marker: written to t-0, the unknown topic and partition answered on their own.
    assert_eq!(
        marker(&broker, 7000, 3, 5, &[("t", 0), ("missing", 0), ("t", 9)]).await,
        vec![
            ErrorCode::None,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::UnknownTopicOrPartition
        ]
    );
    // Answered after the fsync; the COMMIT marker closed the transaction.
    assert_eq!(last_stable(&broker).await, 2);
    // A deposed coordinator (older coordinator epoch) is fenced.
    produce_txn(&broker, 7000, 3, 1).await;
    assert_eq!(
        marker(&broker, 7000, 3, 4, &[("t", 0)]).await,
        vec![ErrorCode::TransactionCoordinatorFenced]
    );
    assert_eq!(last_stable(&broker).await, 2);
    // An older producer epoch is refused.
    assert_eq!(
        marker(&broker, 7000, 2, 5, &[("t", 0)]).await,
        vec![ErrorCode::InvalidProducerEpoch]
    );
    // The current coordinator completes it.
    assert_eq!(
        marker(&broker, 7000, 3, 5, &[("t", 0)]).await,
        vec![ErrorCode::None]
    );
    assert_eq!(last_stable(&broker).await, 4);
    broker.shutdown();
}
