//! The log lifecycle through the real broker: compaction of a topic written with 1,000,000
//! updates over 10,000 keys, tombstones removed after `delete.retention.ms`, retention by
//! size and by time advancing the log start offset (and readers before it getting
//! OFFSET_OUT_OF_RANGE), disk usage bounded under a sustained produce, DeleteRecords, and
//! the log start surviving a restart.
//!
//! The background tasks' passes are called directly (`retention_pass`, `clean_partition`),
//! so the tests do not wait on their timers.

#![allow(clippy::needless_update)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arus_broker::log_manager::{clean_partition, retention_pass};
use arus_broker::topics::NewTopic;
use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::*;
use arus_protocol::{ErrorCode, Request, Response};
use arus_records::{BatchBuilder, Compression, batches};

fn open_broker(dir: &Path) -> Arc<Broker> {
    let props = BTreeMap::from([
        ("log.dirs".to_string(), dir.display().to_string()),
        // The tests call the passes themselves.
        ("log.cleaner.enable".to_string(), "false".to_string()),
        (
            "log.retention.check.interval.ms".to_string(),
            "3600000".to_string(),
        ),
    ]);
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

fn create(broker: &Broker, name: &str, configs: &[(&str, &str)]) {
    broker
        .topics
        .create(NewTopic {
            name: name.into(),
            partitions: 1,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .unwrap();
}

async fn call(broker: &Arc<Broker>, version: i16, req: Request) -> Response {
    let header = RequestHeader {
        request_api_key: req.api_key() as i16,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("lifecycle-test".into()),
        ..Default::default()
    };
    match broker.handle(&header, req).await {
        Outcome::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

/// Produces `(key, value)` records (value `None`: a tombstone) with `timestamp`; returns the
/// base offset.
async fn produce(
    broker: &Arc<Broker>,
    topic: &str,
    timestamp: i64,
    records: &[(Option<String>, Option<String>)],
) -> i64 {
    let mut b = BatchBuilder::new(Compression::None, timestamp);
    for (k, v) in records {
        b.push(
            timestamp,
            k.as_deref().map(str::as_bytes),
            v.as_deref().map(str::as_bytes),
            &[],
        );
    }
    let r = call(
        broker,
        9,
        Request::Produce(ProduceRequest {
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
        }),
    )
    .await;
    let Response::Produce(r) = r else {
        panic!("{r:?}")
    };
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    p.base_offset
}

/// Every (offset, key, value) from `from` to the end, reading through Fetch.
async fn read_all(
    broker: &Arc<Broker>,
    topic: &str,
    from: i64,
) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let (code, records, hw) = fetch(broker, topic, offset).await;
        assert_eq!(code, 0);
        if records.is_empty() {
            assert!(
                offset >= hw,
                "no data below the high watermark {hw} at {offset}"
            );
            return out;
        }
        for b in batches(records) {
            let b = b.unwrap();
            for r in b.records().unwrap() {
                let o = b.base_offset() + i64::from(r.offset_delta);
                if o < offset {
                    continue;
                }
                out.push((
                    o,
                    String::from_utf8(r.key.unwrap_or_default().to_vec()).unwrap(),
                    r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                ));
            }
            offset = offset.max(b.last_offset() + 1);
        }
    }
}

async fn fetch(broker: &Arc<Broker>, topic: &str, offset: i64) -> (i16, arus_protocol::Bytes, i64) {
    let r = call(
        broker,
        11,
        Request::Fetch(FetchRequest {
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 8 << 20,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: offset,
                    partition_max_bytes: 4 << 20,
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
    let p = r.responses.remove(0).partitions.remove(0);
    (
        p.error_code,
        p.records.unwrap_or_default(),
        p.high_watermark,
    )
}

fn clean_until_done(broker: &Arc<Broker>, topic: &str) -> usize {
    let t = broker.topics.get(topic).unwrap();
    let p = t.partition(0).unwrap();
    let mut rounds = 0;
    while clean_partition(broker, &p, &t.settings()).unwrap() {
        rounds += 1;
        assert!(rounds < 50, "the cleaner never finishes");
    }
    rounds
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_updates_over_ten_thousand_keys_compact_to_the_latest_values() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    create(
        &broker,
        "c",
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1048576"),
            ("segment.ms", "300"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    const UPDATES: usize = 1_000_000;
    const KEYS: usize = 10_000;
    let ts = now();
    let mut latest: HashMap<String, i64> = HashMap::new();
    for chunk in 0..UPDATES / 2000 {
        let records: Vec<_> = (chunk * 2000..(chunk + 1) * 2000)
            .map(|i| (Some(format!("k{}", i % KEYS)), Some(format!("{i}"))))
            .collect();
        let base = produce(&broker, "c", ts, &records).await;
        assert_eq!(
            base,
            (chunk * 2000) as i64,
            "offsets are the update numbers"
        );
        for i in chunk * 2000..(chunk + 1) * 2000 {
            latest.insert(format!("k{}", i % KEYS), i as i64);
        }
    }
    // Roll the last data segment out of the active position (segment.ms).
    tokio::time::sleep(Duration::from_millis(350)).await;
    produce(
        &broker,
        "c",
        now(),
        &[(Some("tail".into()), Some("t".into()))],
    )
    .await;

    let rounds = clean_until_done(&broker, "c");
    assert!(rounds >= 1);
    let records = read_all(&broker, "c", 0).await;
    // Exactly one record per key (plus the tail in the active segment), each the latest
    // value for its key, at its original offset.
    assert_eq!(records.len(), KEYS + 1, "records after compaction");
    let mut prev = -1;
    for (offset, key, value) in &records {
        assert!(*offset > prev, "offsets strictly increase");
        prev = *offset;
        if key == "tail" {
            continue;
        }
        let value: i64 = value.as_deref().unwrap().parse().unwrap();
        assert_eq!(value, *offset, "a record keeps its original offset");
        assert_eq!(latest[key], value, "key {key} keeps its latest value");
    }
    broker.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_removes_its_key_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    create(
        &broker,
        "t",
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "300"),
        ],
    );
    let rec = |k: &str, v: Option<&str>| (Some(k.to_string()), v.map(str::to_string));
    produce(
        &broker,
        "t",
        now(),
        &[rec("a", Some("1")), rec("b", Some("1"))],
    )
    .await;
    produce(&broker, "t", now(), &[rec("a", None), rec("b", Some("2"))]).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    produce(&broker, "t", now(), &[rec("c", Some("1"))]).await;
    clean_until_done(&broker, "t");
    let keys = |rs: &[(i64, String, Option<String>)]| {
        rs.iter()
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    // Within delete.retention.ms the tombstone stays (consumers must see the delete).
    let after_first = read_all(&broker, "t", 0).await;
    assert_eq!(
        keys(&after_first),
        [
            ("a".to_string(), None),
            ("b".to_string(), Some("2".to_string())),
            ("c".to_string(), Some("1".to_string()))
        ]
    );
    // Past the horizon, a later round (new dirty data) drops it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    produce(&broker, "t", now(), &[rec("d", Some("1"))]).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    produce(&broker, "t", now(), &[rec("e", Some("1"))]).await;
    clean_until_done(&broker, "t");
    let after_second = read_all(&broker, "t", 0).await;
    assert!(
        after_second.iter().all(|(_, k, _)| k != "a"),
        "the tombstone is gone: {after_second:?}"
    );
    assert!(
        after_second
            .iter()
            .any(|(_, k, v)| k == "b" && v.as_deref() == Some("2"))
    );
    broker.shutdown();
}

/// Disk space the directory's files take: allocated blocks, not lengths (the active
/// segment's index files are preallocated sparse files of `segment.index.bytes`, as in
/// Kafka).
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.blocks() * 512)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_size_bounds_the_disk_and_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    create(
        &broker,
        "r",
        &[
            ("segment.bytes", "1048576"),
            ("retention.bytes", "3145728"),
            ("file.delete.delay.ms", "0"),
        ],
    );
    let value = "x".repeat(1000);
    let partition_dir = dir.path().join("r-0");
    let mut max_seen = 0u64;
    // 30 MB through a 3 MB retention, with retention passes as the task would run them.
    for round in 0..30 {
        let records: Vec<_> = (0..1000)
            .map(|i| (Some(format!("{round}-{i}")), Some(value.clone())))
            .collect();
        produce(&broker, "r", now(), &records).await;
        for (delay, paths) in retention_pass(&broker) {
            assert_eq!(delay, 0);
            for p in paths {
                std::fs::remove_file(p).unwrap();
            }
        }
        max_seen = max_seen.max(dir_bytes(&partition_dir));
    }
    // retention.bytes + one segment being filled + index files.
    assert!(
        max_seen < 6 << 20,
        "disk usage stayed bounded: peaked at {max_seen} bytes"
    );
    let p = broker.topics.get("r").unwrap().partition(0).unwrap();
    let start = p.log_start_offset();
    assert!(start > 20_000, "log start advanced to {start}");
    // A reader before the log start is told so (its client then resets by policy).
    let (code, _, _) = fetch(&broker, "r", 0).await;
    assert_eq!(code, ErrorCode::OffsetOutOfRange.code());
    let (code, records, _) = fetch(&broker, "r", start).await;
    assert_eq!(code, 0);
    assert!(!records.is_empty());
    broker.shutdown();
    drop(broker);
    // The log start survives a restart.
    let broker = open_broker(dir.path());
    let p = broker.topics.get("r").unwrap().partition(0).unwrap();
    assert_eq!(p.log_start_offset(), start);
    broker.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_time_deletes_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    create(
        &broker,
        "old",
        &[
            ("segment.bytes", "1048576"),
            ("retention.ms", "60000"),
            ("message.timestamp.before.max.ms", "9223372036854775807"),
        ],
    );
    let value = "y".repeat(1000);
    let hour_ago = now() - 3_600_000;
    for round in 0..3 {
        let records: Vec<_> = (0..1000)
            .map(|i| (Some(format!("{round}-{i}")), Some(value.clone())))
            .collect();
        produce(&broker, "old", hour_ago, &records).await;
    }
    // Fresh data after the old: only the expired segments go.
    produce(
        &broker,
        "old",
        now(),
        &[(Some("new".into()), Some("n".into()))],
    )
    .await;
    let hw = broker
        .topics
        .get("old")
        .unwrap()
        .partition(0)
        .unwrap()
        .high_watermark();
    retention_pass(&broker);
    let p = broker.topics.get("old").unwrap().partition(0).unwrap();
    assert!(p.log_start_offset() > 0, "expired segments deleted");
    assert_eq!(p.high_watermark(), hw, "retention never touches the end");
    let remaining = read_all(&broker, "old", p.log_start_offset()).await;
    assert!(remaining.iter().any(|(_, k, _)| k == "new"));
    broker.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_low_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    create(&broker, "d", &[]);
    create(&broker, "compacted", &[("cleanup.policy", "compact")]);
    let records: Vec<_> = (0..100)
        .map(|i| (Some(format!("k{i}")), Some(format!("v{i}"))))
        .collect();
    produce(&broker, "d", now(), &records).await;
    let delete = |topic: &str, offset: i64| {
        Request::DeleteRecords(DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: topic.into(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: 0,
                    offset,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        })
    };
    let result = |r: Response| {
        let Response::DeleteRecords(r) = r else {
            panic!("{r:?}")
        };
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.low_watermark)
    };
    assert_eq!(result(call(&broker, 2, delete("d", 40)).await), (0, 40));
    assert_eq!(
        result(call(&broker, 2, delete("d", 500)).await).0,
        ErrorCode::OffsetOutOfRange.code()
    );
    assert_eq!(
        result(call(&broker, 2, delete("compacted", 0)).await).0,
        ErrorCode::PolicyViolation.code()
    );
    assert_eq!(
        fetch(&broker, "d", 39).await.0,
        ErrorCode::OffsetOutOfRange.code()
    );
    let rest = read_all(&broker, "d", 40).await;
    assert_eq!(rest.len(), 60);
    assert_eq!(rest[0].1, "k40");
    // -1: up to the high watermark.
    assert_eq!(result(call(&broker, 2, delete("d", -1)).await), (0, 100));
    broker.shutdown();
}
