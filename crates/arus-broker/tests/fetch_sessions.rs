//! Fetch sessions (KIP-227) through the real Fetch handler: session creation, incremental
//! responses, long-poll on a session, topic IDs and a topic deleted while in a session.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arus_broker::{Broker, BrokerConfig, Outcome};
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use arus_protocol::messages::fetch_response::FetchResponse;
use arus_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use arus_protocol::messages::*;
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use arus_records::{BatchBuilder, Compression};

fn open_broker(dir: &std::path::Path) -> Arc<Broker> {
    let mut props = BTreeMap::new();
    props.insert("log.dirs".to_string(), dir.display().to_string());
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

fn create_topic(broker: &Broker, name: &str, partitions: i32) -> Uuid {
    broker
        .topics
        .create(arus_broker::topics::NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap()
        .id
}

fn header(key: i16, version: i16) -> RequestHeader {
    RequestHeader {
        request_api_key: key,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("test".into()),
        ..Default::default()
    }
}

async fn produce(broker: &Arc<Broker>, topic: &str, partition: i32) {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, Some(b"k"), Some(b"v"), &[]);
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(b.build().unwrap()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match broker.handle(&header(0, 9), Request::Produce(req)).await {
        Outcome::Respond(Response::Produce(r)) => {
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0)
        }
        other => panic!("{other:?}"),
    }
}

/// A fetch of `parts` = (partition, offset) of topic `topic` (name before v13, `id` from v13).
#[allow(clippy::too_many_arguments)]
fn fetch_req(
    version: i16,
    topic: &str,
    id: Uuid,
    session: (i32, i32),
    parts: &[(i32, i64)],
    forgotten: &[i32],
    min_bytes: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    let (name, topic_id) = if version >= 13 {
        (String::new(), id)
    } else {
        (topic.to_string(), Uuid::ZERO)
    };
    FetchRequest {
        max_wait_ms,
        min_bytes,
        session_id: session.0,
        session_epoch: session.1,
        topics: if parts.is_empty() {
            vec![]
        } else {
            vec![FetchTopic {
                topic: name.clone(),
                topic_id,
                partitions: parts
                    .iter()
                    .map(|(p, off)| FetchPartition {
                        partition: *p,
                        fetch_offset: *off,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }]
        },
        forgotten_topics_data: if forgotten.is_empty() {
            vec![]
        } else {
            vec![ForgottenTopic {
                topic: name,
                topic_id,
                partitions: forgotten.to_vec(),
                ..Default::default()
            }]
        },
        ..Default::default()
    }
}

async fn fetch(broker: &Arc<Broker>, version: i16, req: FetchRequest) -> FetchResponse {
    match broker
        .handle(&header(1, version), Request::Fetch(req))
        .await
    {
        Outcome::Respond(Response::Fetch(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// (partition, error, high watermark, record bytes) of every partition answered.
fn summary(r: &FetchResponse) -> Vec<(i32, i16, i64, usize)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            (
                p.partition_index,
                p.error_code,
                p.high_watermark,
                p.records.as_ref().map_or(0, |b| b.len()),
            )
        })
        .collect()
}

#[tokio::test]
async fn session_by_topic_name_answers_only_changes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let id = create_topic(&broker, "t", 2);
    produce(&broker, "t", 0).await;
    let v = 12;

    // Full fetch creating a session: every partition answered.
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (0, 0), &[(0, 0), (1, 0)], &[], 0, 0),
    )
    .await;
    assert_eq!(r.error_code, 0);
    let session = r.session_id;
    assert!(session > 0);
    let s = summary(&r);
    assert_eq!(s.len(), 2);
    assert_eq!(r.responses[0].topic, "t");
    assert!(s[0].3 > 0 && s[1].3 == 0);

    // Incremental: the consumer moved p0 to 1; nothing new anywhere.
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (session, 1), &[(0, 1)], &[], 0, 0),
    )
    .await;
    assert_eq!((r.error_code, r.session_id), (0, session));
    assert!(summary(&r).is_empty(), "{:?}", summary(&r));

    // New data on p1 only: only p1 is answered, read from the offset the session remembers.
    produce(&broker, "t", 1).await;
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (session, 2), &[], &[], 0, 0),
    )
    .await;
    let s = summary(&r);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].0, s[0].2), (1, 1));
    assert!(s[0].3 > 0);

    // A wrong epoch, then an unknown session.
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (session, 9), &[], &[], 0, 0),
    )
    .await;
    assert_eq!(r.error_code, ErrorCode::InvalidFetchSessionEpoch.code());
    assert_eq!(r.session_id, 0);
    assert!(r.responses.is_empty());
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (session ^ 1, 3), &[], &[], 0, 0),
    )
    .await;
    assert_eq!(r.error_code, ErrorCode::FetchSessionIdNotFound.code());

    // Forget p0: the session keeps p1 (moved to offset 1, nothing new).
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (session, 3), &[(1, 1)], &[0], 0, 0),
    )
    .await;
    assert_eq!(r.error_code, 0);
    assert!(summary(&r).is_empty());
    assert_eq!(
        broker
            .fetch_sessions
            .lock()
            .session_partitions(session)
            .unwrap()
            .len(),
        1
    );

    // Close with the final epoch: answered as a sessionless full fetch.
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (session, -1), &[(0, 0)], &[], 0, 0),
    )
    .await;
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(summary(&r).len(), 1);
    assert!(broker.fetch_sessions.lock().is_empty());
    broker.shutdown();
}

#[tokio::test]
async fn long_poll_on_a_session_wakes_on_append_and_advances_the_epoch_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let id = create_topic(&broker, "t", 2);
    let v = 16;
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (0, 0), &[(0, 0), (1, 0)], &[], 0, 0),
    )
    .await;
    let session = r.session_id;
    assert!(session > 0);
    assert_eq!(r.responses[0].topic_id, id);
    assert_eq!(summary(&r).len(), 2);

    let producer = {
        let broker = broker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            produce(&broker, "t", 1).await;
        })
    };
    let started = std::time::Instant::now();
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (session, 1), &[], &[], 1, 10_000),
    )
    .await;
    producer.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!((r.error_code, r.session_id), (0, session));
    let s = summary(&r);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].0, 1);
    assert!(s[0].3 > 0);
    assert_eq!(
        broker.fetch_sessions.lock().expected_epoch(session),
        Some(2)
    );

    // A long poll that times out answers nothing new and still advances once.
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "t", id, (session, 2), &[(1, 1)], &[], 1, 100),
    )
    .await;
    assert_eq!(r.error_code, 0);
    assert!(summary(&r).is_empty());
    assert_eq!(
        broker.fetch_sessions.lock().expected_epoch(session),
        Some(3)
    );

    // A v12 request cannot use a session made with topic IDs.
    let r = fetch(
        &broker,
        12,
        fetch_req(12, "t", id, (session, 3), &[], &[], 0, 0),
    )
    .await;
    assert_eq!(r.error_code, ErrorCode::FetchSessionTopicIdError.code());
    broker.shutdown();
}

#[tokio::test]
async fn topic_deleted_while_in_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let gone = create_topic(&broker, "gone", 1);
    let keep = create_topic(&broker, "keep", 1);

    // By topic ID (v13+).
    let v = 13;
    let mut req = fetch_req(v, "gone", gone, (0, 0), &[(0, 0)], &[], 0, 0);
    req.topics
        .extend(fetch_req(v, "keep", keep, (0, 0), &[(0, 0)], &[], 0, 0).topics);
    let r = fetch(&broker, v, req).await;
    let session = r.session_id;
    assert!(session > 0);
    assert_eq!(r.responses.len(), 2);
    broker.topics.delete("gone").unwrap();
    for epoch in 1..=2 {
        // The error is repeated on every incremental fetch until the client forgets it.
        let r = fetch(
            &broker,
            v,
            fetch_req(v, "keep", keep, (session, epoch), &[], &[], 0, 0),
        )
        .await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.responses.len(), 1);
        assert_eq!(r.responses[0].topic_id, gone);
        assert_eq!(
            r.responses[0].partitions[0].error_code,
            ErrorCode::UnknownTopicId.code()
        );
    }
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "gone", gone, (session, 3), &[], &[0], 0, 0),
    )
    .await;
    assert_eq!(r.error_code, 0);
    assert!(r.responses.is_empty());

    // By name (v12).
    create_topic(&broker, "gone", 1);
    let v = 12;
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "gone", Uuid::ZERO, (0, 0), &[(0, 0)], &[], 0, 0),
    )
    .await;
    let session = r.session_id;
    broker.topics.delete("gone").unwrap();
    let r = fetch(
        &broker,
        v,
        fetch_req(v, "gone", Uuid::ZERO, (session, 1), &[], &[], 0, 0),
    )
    .await;
    assert_eq!(r.responses[0].topic, "gone");
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    broker.shutdown();
}
