//! Internal topics belong to the broker's coordinators (Kafka's `Topic.INTERNAL_TOPICS`):
//! a client's produce to them is refused with INVALID_TOPIC_EXCEPTION, as Kafka's
//! `ReplicaManager.appendToLocalLog` does, while a user topic that merely starts with `__` is
//! an ordinary topic.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_broker::groups::offsets_topic;
use arus_broker::topics::NewTopic;
use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::*;
use arus_protocol::{ErrorCode, Request, RequestHeader, Response};
use arus_records::{BatchBuilder, Compression};

fn open_broker(dir: &std::path::Path) -> Arc<Broker> {
    let props = BTreeMap::from([
        ("log.dirs".to_string(), dir.display().to_string()),
        ("offsets.topic.num.partitions".to_string(), "1".to_string()),
    ]);
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

/// Produces one record (acks=1, produce v9) and returns the partition's (error, base offset,
/// error message).
async fn produce(broker: &Arc<Broker>, topic: &str) -> (i16, i64, Option<String>) {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(
        1_700_000_000_000,
        Some(b"forged-key"),
        Some(b"garbage"),
        &[],
    );
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
            (p.error_code, p.base_offset, p.error_message.clone())
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn clients_cannot_produce_to_internal_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let offsets = offsets_topic(&broker).unwrap();
    let (code, base, message) = produce(&broker, "__consumer_offsets").await;
    assert_eq!(code, ErrorCode::InvalidTopicException.code(), "{message:?}");
    assert_eq!(base, -1);
    assert_eq!(
        message.as_deref(),
        Some("Cannot append to internal topic __consumer_offsets")
    );
    assert_eq!(
        offsets.partition(0).unwrap().log_end_offset(),
        0,
        "nothing was written"
    );
    // Refused whether or not the topic exists yet.
    let (code, _, _) = produce(&broker, "__transaction_state").await;
    assert_eq!(code, ErrorCode::InvalidTopicException.code());
}

#[tokio::test]
async fn a_user_topic_starting_with_underscores_is_ordinary() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let topic = broker
        .topics
        .create(NewTopic {
            name: "__my_events".into(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
    assert!(!topic.internal);
    let (code, base, _) = produce(&broker, "__my_events").await;
    assert_eq!((code, base), (0, 0));
}
