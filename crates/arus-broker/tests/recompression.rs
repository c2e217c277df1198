//! A topic whose `compression.type` differs from the producer's codec stores recompressed
//! batches, and their size is checked as Kafka's `UnifiedLog.append` does after
//! recompression: a batch that expands past `max.message.bytes` once stored is refused with
//! MESSAGE_TOO_LARGE (and is never inflated whole to find out).

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_broker::topics::NewTopic;
use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::*;
use arus_protocol::{ErrorCode, Request, RequestHeader, Response};
use arus_records::{BatchBuilder, Compression};

async fn produce(broker: &Arc<Broker>, topic: &str, records: usize) -> (i16, Option<String>) {
    let mut b = BatchBuilder::new(Compression::Gzip, 1_700_000_000_000);
    let value = vec![0u8; 1024];
    for _ in 0..records {
        b.push(1_700_000_000_000, Some(b"k"), Some(&value), &[]);
    }
    let req = ProduceRequest {
        acks: 1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(b.build().unwrap()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let header = RequestHeader {
        request_api_key: 0,
        request_api_version: 9,
        correlation_id: 1,
        client_id: Some("test".into()),
        ..Default::default()
    };
    match broker.handle(&header, Request::Produce(req)).await {
        Outcome::Respond(Response::Produce(r)) => {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.error_message.clone())
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn batches_expanding_past_max_message_bytes_once_stored_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let props = BTreeMap::from([("log.dirs".to_string(), dir.path().display().to_string())]);
    let broker = Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap();
    for (name, codec) in [("plain", "uncompressed"), ("lz4", "lz4")] {
        broker
            .topics
            .create(NewTopic {
                name: name.into(),
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::from([
                    ("compression.type".to_string(), codec.to_string()),
                    ("max.message.bytes".to_string(), "20000".to_string()),
                ]),
            })
            .unwrap();
    }
    // 10 KiB of records: fits either way.
    assert_eq!(produce(&broker, "plain", 10).await.0, 0);
    // 100 KiB of zeros: a few hundred bytes of gzip, 100 KiB stored uncompressed.
    let (code, message) = produce(&broker, "plain", 100).await;
    assert_eq!(code, ErrorCode::MessageTooLarge.code(), "{message:?}");
    assert!(message.unwrap().contains("20000"));
    // Recompressed to lz4 the same records stay small: accepted.
    assert_eq!(produce(&broker, "lz4", 100).await.0, 0);
    let stored = broker.topics.get("plain").unwrap().partition(0).unwrap();
    assert_eq!(
        stored.log_end_offset(),
        10,
        "the refused batch left nothing"
    );
}
