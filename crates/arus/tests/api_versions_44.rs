//! The Kafka 4.4 version table over a real socket: what ApiVersions advertises and answers
//! (Produce from 0 but v0-2 refused, KIP-511's fallback, KIP-1242's REBOOTSTRAP_REQUIRED),
//! and the project's own client speaking the topic-id versions end to end.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use arus_client::{Client, OffsetToCommit};
use arus_protocol::messages::{ApiVersionsRequest, ProduceRequest};
use arus_protocol::{ApiKey, ErrorCode, Request, Response};
use common::{BrokerProcess, closed_within};

fn frame(api_key: i16, version: i16, body: &[u8], flexible_header: bool) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&api_key.to_be_bytes());
    payload.extend_from_slice(&version.to_be_bytes());
    payload.extend_from_slice(&7i32.to_be_bytes());
    payload.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    if flexible_header {
        payload.push(0); // no tagged fields
    }
    payload.extend_from_slice(body);
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn produce_is_advertised_from_0_but_v0_to_v2_close_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(dir.path(), &[]);
    runtime().block_on(async {
        let c = Client::connect(&broker.addr).await.unwrap();
        // KAFKA-18659: librdkafka needs Produce's range to start at 0.
        assert_eq!(c.broker_versions(ApiKey::Produce), Some((0, 13)));
        assert_eq!(c.broker_versions(ApiKey::ApiVersions), Some((0, 5)));
    });
    // acks=1, timeout, one topic "t" with one partition and an empty message set: Kafka
    // 4.4 closes the connection on each of v0-2, without an answer.
    let mut v0_body = Vec::new();
    v0_body.extend_from_slice(&1i16.to_be_bytes());
    v0_body.extend_from_slice(&1000i32.to_be_bytes());
    v0_body.extend_from_slice(&1i32.to_be_bytes());
    v0_body.extend_from_slice(&1i16.to_be_bytes());
    v0_body.extend_from_slice(b"t");
    v0_body.extend_from_slice(&1i32.to_be_bytes());
    v0_body.extend_from_slice(&0i32.to_be_bytes());
    v0_body.extend_from_slice(&0i32.to_be_bytes());
    for version in 0..=2 {
        let mut s = TcpStream::connect(&broker.addr).unwrap();
        s.write_all(&frame(0, version, &v0_body, false)).unwrap();
        assert!(
            closed_within(&mut s, Duration::from_secs(10)),
            "Produce v{version}: connection not closed"
        );
    }
    common::assert_serving(&broker.addr);
}

#[test]
fn api_versions_above_5_fall_back_and_v5_checks_cluster_and_node() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(dir.path(), &[]);
    // v6: answered as v0, UNSUPPORTED_VERSION and only ApiVersions' own range (as Kafka).
    let mut s = TcpStream::connect(&broker.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&frame(18, 6, &[0, 0, 0], true)).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    let mut expected = 7i32.to_be_bytes().to_vec();
    expected.extend_from_slice(&35i16.to_be_bytes()); // UNSUPPORTED_VERSION
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&18i16.to_be_bytes());
    expected.extend_from_slice(&0i16.to_be_bytes());
    expected.extend_from_slice(&5i16.to_be_bytes());
    assert_eq!(body, expected);

    runtime().block_on(async {
        let mut c = Client::connect(&broker.addr).await.unwrap();
        let cluster_id = c.metadata(Some(&[])).await.unwrap().cluster_id.unwrap();
        let ask = |cluster_id: Option<&str>, node_id: i32| {
            Request::ApiVersions(ApiVersionsRequest {
                client_software_name: "test".into(),
                client_software_version: "1".into(),
                cluster_id: cluster_id.map(str::to_string),
                node_id,
                ..Default::default()
            })
        };
        for (cluster, node, code) in [
            (Some(cluster_id.as_str()), 1, ErrorCode::None),
            (None, -1, ErrorCode::None),
            (Some("another-cluster"), 1, ErrorCode::RebootstrapRequired),
            (Some(cluster_id.as_str()), 2, ErrorCode::RebootstrapRequired),
            (Some(cluster_id.as_str()), -1, ErrorCode::InvalidRequest),
            (None, 1, ErrorCode::InvalidRequest),
        ] {
            let Response::ApiVersions(r) =
                c.send_with_version(ask(cluster, node), 5).await.unwrap()
            else {
                panic!()
            };
            assert_eq!(r.error_code, code.code(), "{cluster:?} {node}");
            assert_eq!(r.api_keys.is_empty(), code != ErrorCode::None);
        }
    });
}

#[test]
fn the_client_speaks_the_topic_id_versions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(dir.path(), &[]);
    runtime().block_on(async {
        let mut c = Client::connect(&broker.addr).await.unwrap();
        assert_eq!(c.api_version(ApiKey::Produce).unwrap(), 13);
        assert_eq!(c.api_version(ApiKey::OffsetCommit).unwrap(), 10);
        assert_eq!(c.api_version(ApiKey::OffsetFetch).unwrap(), 10);
        c.create_topic("t", 1, 1, &[]).await.unwrap();
        let mut b = arus_records::BatchBuilder::new(arus_records::Compression::None, 1);
        b.push(1, None, Some(b"hello"), &[]);
        let records = b.build().unwrap();
        assert_eq!(
            c.produce("t", 0, records.clone(), 1, 5000).await.unwrap(),
            0
        );
        assert_eq!(
            c.produce("t", 0, records.clone(), -1, 5000).await.unwrap(),
            1
        );
        // A topic without an id (it does not exist): Produce v12 by name, Kafka's answer.
        let missing = c.produce("missing", 0, records, 1, 5000).await.unwrap_err();
        assert!(
            missing.to_string().contains("UNKNOWN_TOPIC_OR_PARTITION"),
            "{missing}"
        );
        let fetched = c.fetch("t", 0, 0, 0, 1 << 20).await.unwrap();
        assert_eq!(fetched.records.len(), 2);
        // A raw Produce naming its topic: the client fills the id in (v13) and the name back.
        let Response::Produce(r) = c
            .send(Request::Produce(ProduceRequest {
                acks: 1,
                timeout_ms: 5000,
                topic_data: vec![arus_protocol::messages::produce_request::TopicProduceData {
                    name: "t".into(),
                    partition_data: vec![
                        arus_protocol::messages::produce_request::PartitionProduceData {
                            index: 0,
                            records: Some(fetched_batch()),
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(r.responses[0].name, "t");
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        // Offsets by id (v10), read back by name.
        c.offset_commit(
            "g",
            &[OffsetToCommit {
                topic: "t".into(),
                partition: 0,
                offset: 2,
            }],
        )
        .await
        .unwrap();
        let by_topic = c
            .offset_fetch("g", Some(&[("t".to_string(), vec![0])]))
            .await
            .unwrap();
        assert_eq!(
            by_topic
                .iter()
                .map(|o| (o.topic.as_str(), o.partition, o.offset))
                .collect::<Vec<_>>(),
            vec![("t", 0, 2)]
        );
        // Every topic of the group: v9 (an id-only answer would need every topic's name).
        let all = c.offset_fetch("g", None).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].topic, "t");
    });
}

fn fetched_batch() -> arus_protocol::Bytes {
    let mut b = arus_records::BatchBuilder::new(arus_records::Compression::None, 1);
    b.push(1, None, Some(b"raw"), &[]);
    b.build().unwrap()
}
