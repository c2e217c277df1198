//! A topic whose `compression.type` differs from the producer's codec stores recompressed
//! batches, and their size is checked as Kafka's `UnifiedLog.append` does after
//! recompression: a batch that expands past `max.message.bytes` once stored is refused with
//! MESSAGE_TOO_LARGE (and is never inflated whole to find out).

mod common;

use std::sync::Arc;

use arus_broker::Broker;
use arus_protocol::ErrorCode;
use arus_records::{BatchBuilder, Compression};

/// Produces one gzip batch of `records` × 1 KiB of zeros (acks=1): (error, message).
async fn produce(broker: &Arc<Broker>, topic: &str, records: usize) -> (i16, Option<String>) {
    let mut b = BatchBuilder::new(Compression::Gzip, 1_700_000_000_000);
    let value = vec![0u8; 1024];
    for _ in 0..records {
        b.push(1_700_000_000_000, Some(b"k"), Some(&value), &[]);
    }
    let p = common::produce(broker, topic, b.build().unwrap(), 1).await;
    (p.error_code, p.error_message)
}

#[tokio::test]
async fn batches_expanding_past_max_message_bytes_once_stored_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[]);
    for (name, codec) in [("plain", "uncompressed"), ("lz4", "lz4")] {
        common::create_topic(
            &broker,
            name,
            &[("compression.type", codec), ("max.message.bytes", "20000")],
        );
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
