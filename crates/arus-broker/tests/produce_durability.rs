//! What an `acks=all` answer promises: by default the batch is fsynced before the answer
//! (group commit); `arus.acks.all.fsync=false` answers once the batch is in the page cache,
//! as Apache Kafka does with its default flush settings. A topic's `flush.messages` makes any
//! answer wait for the fsync of the append that reached it, as Kafka flushes in the append.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_broker::{Broker, BrokerConfig};
use arus_records::{BatchBuilder, Compression};

fn open_broker(dir: &std::path::Path, acks_all_fsync: Option<&str>) -> Arc<Broker> {
    match acks_all_fsync {
        Some(v) => common::open_broker(dir, &[("arus.acks.all.fsync", v)]),
        None => common::open_broker(dir, &[]),
    }
}

/// Produces one 3-record batch with `acks=all` and returns (end offset, flushed offset at the
/// moment the answer came back).
async fn produce_acks_all(broker: &Arc<Broker>) -> (i64, i64) {
    produce(broker, -1, &[]).await
}

/// Creates topic `t` with `configs`, produces one 3-record batch with `acks` and returns
/// (end offset, flushed offset at the moment the answer came back).
async fn produce(broker: &Arc<Broker>, acks: i16, configs: &[(&str, &str)]) -> (i64, i64) {
    common::create_topic(broker, "t", configs);
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    for _ in 0..3 {
        b.push(1_700_000_000_000, Some(b"k"), Some(b"v"), &[]);
    }
    let p = common::produce(broker, "t", b.build().unwrap(), acks).await;
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let partition = broker.topics.get("t").unwrap().partition(0).unwrap();
    (3, partition.flushed_offset())
}

#[tokio::test]
async fn acks_all_is_answered_after_the_fsync_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path(), None);
    let (end, flushed) = produce_acks_all(&broker).await;
    assert!(
        flushed >= end,
        "answered before the fsync: flushed {flushed} < {end}"
    );
}

#[tokio::test]
async fn acks_all_without_fsync_is_answered_from_the_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path(), Some("false"));
    let (end, flushed) = produce_acks_all(&broker).await;
    // Kafka's default `flush.messages`/`flush.ms` never flush on their own, so nothing but
    // an acks=all wait could have fsynced these records.
    assert!(
        flushed < end,
        "acks=all waited for an fsync it was told to skip"
    );
}

#[tokio::test]
async fn flush_messages_makes_acks_1_wait_for_the_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path(), None);
    let (end, flushed) = produce(&broker, 1, &[("flush.messages", "1")]).await;
    assert!(
        flushed >= end,
        "acks=1 on a flush.messages=1 topic answered before the fsync: flushed {flushed} < {end}"
    );
}

#[tokio::test]
async fn acks_1_is_answered_from_the_page_cache_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path(), None);
    let (end, flushed) = produce(&broker, 1, &[]).await;
    assert!(flushed < end, "acks=1 waited for an fsync nobody asked for");
}

#[test]
fn a_bad_value_is_refused_with_the_key_named() {
    let mut props = BTreeMap::new();
    props.insert("arus.acks.all.fsync".to_string(), "sometimes".to_string());
    let err = BrokerConfig::from_properties(props)
        .unwrap_err()
        .to_string();
    assert!(err.contains("arus.acks.all.fsync"), "{err}");
}
