//! Internal topics belong to the broker's coordinators (Kafka's `Topic.INTERNAL_TOPICS`):
//! a client's produce to them is refused with INVALID_TOPIC_EXCEPTION, as Kafka's
//! `ReplicaManager.appendToLocalLog` does, while a user topic that merely starts with `__` is
//! an ordinary topic.

mod common;

use std::sync::Arc;

use arus_broker::Broker;
use arus_broker::groups::offsets_topic;
use arus_protocol::ErrorCode;
use arus_records::{BatchBuilder, Compression};

fn open_broker(dir: &std::path::Path) -> Arc<Broker> {
    common::open_broker(dir, &[("offsets.topic.num.partitions", "1")])
}

/// Produces one record (acks=1) and returns the partition's (error, base offset, error
/// message).
async fn produce(broker: &Arc<Broker>, topic: &str) -> (i16, i64, Option<String>) {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(
        1_700_000_000_000,
        Some(b"forged-key"),
        Some(b"garbage"),
        &[],
    );
    let p = common::produce(broker, topic, b.build().unwrap(), 1).await;
    (p.error_code, p.base_offset, p.error_message)
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
    common::create_topic(&broker, "__my_events", &[]);
    assert!(!broker.topics.get("__my_events").unwrap().internal);
    let (code, base, _) = produce(&broker, "__my_events").await;
    assert_eq!((code, base), (0, 0));
}
