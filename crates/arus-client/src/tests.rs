//! Unit tests: record decoding, framing, version negotiation, and the client against a
//! scripted in-process fake broker (no real broker needed).

use super::*;
use arus_protocol::messages::api_versions_response::ApiVersion;
use arus_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use arus_protocol::messages::{FetchResponse, metadata_response::MetadataResponsePartition};
use arus_protocol::{decode_request, encode_response};
use arus_records::{
    BatchBuilder, Compression, ControlType, RecordError, control_record_batch, set_base_offset,
};
use tokio::net::TcpListener;

fn batch(base_offset: i64, values: &[&str], compression: Compression) -> Bytes {
    let mut b = BatchBuilder::new(compression, 1_000);
    for (i, v) in values.iter().enumerate() {
        b.push(
            1_000 + i as i64,
            Some(format!("k{i}").as_bytes()),
            Some(v.as_bytes()),
            &[("h", Some(b"x"))],
        );
    }
    let mut bytes = BytesMut::from(&b.build().unwrap()[..]);
    set_base_offset(&mut bytes, base_offset);
    bytes.freeze()
}

fn concat(parts: &[&Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for p in parts {
        out.extend_from_slice(p);
    }
    out.freeze()
}

#[test]
fn decodes_batches_and_skips_earlier_records() {
    let set = concat(&[
        &batch(0, &["a", "b", "c"], Compression::None),
        &batch(3, &["d", "e"], Compression::Gzip),
    ]);
    let (records, next) = decode_fetched_records(set.clone(), 0).unwrap();
    let values: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, ["a", "b", "c", "d", "e"].map(Bytes::from));
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(records[1].timestamp, 1_001);
    assert_eq!(records[1].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(
        records[1].headers,
        vec![("h".to_owned(), Some(Bytes::from("x")))]
    );
    assert_eq!(next, Some(5));

    let (records, next) = decode_fetched_records(set.clone(), 2).unwrap();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(next, Some(5));

    let (records, next) = decode_fetched_records(set, 5).unwrap();
    assert!(records.is_empty());
    assert_eq!(next, Some(5));
}

#[test]
fn stops_at_trailing_partial_batch() {
    let first = batch(10, &["a"], Compression::None);
    let second = batch(11, &["b", "c"], Compression::None);
    for cut in [1, 11, 12, 30, second.len() - 1] {
        let set = concat(&[&first, &second.slice(..cut)]);
        let (records, next) = decode_fetched_records(set, 10).unwrap();
        assert_eq!(records.len(), 1, "cut at {cut}");
        assert_eq!(next, Some(11));
    }
    let (records, next) = decode_fetched_records(Bytes::new(), 7).unwrap();
    assert!(records.is_empty());
    assert_eq!(next, None);
}

#[test]
fn skips_control_batches() {
    let mut marker = BytesMut::from(&control_record_batch(ControlType::Commit, 5, 0, 0, 2_000)[..]);
    set_base_offset(&mut marker, 1);
    let set = concat(&[
        &batch(0, &["a"], Compression::None),
        &marker.freeze(),
        &batch(2, &["b"], Compression::None),
    ]);
    let (records, next) = decode_fetched_records(set, 0).unwrap();
    assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(next, Some(3));
}

#[test]
fn rejects_corrupt_batches() {
    let good = batch(0, &["hello"], Compression::None);
    let mut bad = BytesMut::from(&good[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(matches!(
        decode_fetched_records(bad.freeze(), 0),
        Err(RecordError::CrcMismatch { .. })
    ));
}

#[tokio::test]
async fn read_frame_cases() {
    let mut input: &[u8] = &[0, 0, 0, 3, 1, 2, 3];
    assert_eq!(
        read_frame(&mut input).await.unwrap().as_deref(),
        Some(&[1u8, 2, 3][..])
    );
    let mut empty: &[u8] = &[];
    assert_eq!(read_frame(&mut empty).await.unwrap(), None);
    let mut partial_size: &[u8] = &[0, 0];
    assert_eq!(
        read_frame(&mut partial_size).await.unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );
    let mut partial_body: &[u8] = &[0, 0, 0, 5, 1];
    assert_eq!(
        read_frame(&mut partial_body).await.unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );
    let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xfe];
    let e = read_frame(&mut negative).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert_eq!(frame_size_hint(&e), -2);
    let mut huge: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
    assert_eq!(
        read_frame(&mut huge).await.unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
}

// ---------------------------------------------------------------------------------------
// Fake broker
// ---------------------------------------------------------------------------------------

/// What the fake broker advertises.
fn fake_api_versions() -> Vec<ApiVersion> {
    [
        (ApiKey::ApiVersions, 0, 3),
        (ApiKey::Metadata, 0, 12),
        (ApiKey::Produce, 0, 11),
        (ApiKey::Fetch, 0, 16),
        (ApiKey::ListOffsets, 0, 0),
    ]
    .into_iter()
    .map(|(k, lo, hi)| ApiVersion {
        api_key: k.key(),
        min_version: lo,
        max_version: hi,
    })
    .collect()
}

/// Serves one connection: answers ApiVersions (v0 body with UNSUPPORTED_VERSION above v3,
/// as KIP-511 says), Metadata with topic "t" (2 partitions), Produce with base offset 42,
/// Fetch with two batches plus a partial one. Drops acks=0 produce responses.
async fn fake_broker() -> (
    String,
    tokio::task::JoinHandle<Vec<(ApiKey, i16, Option<String>)>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        while let Ok(Some(frame)) = read_frame(&mut sock).await {
            let (key, version, correlation_id) =
                arus_protocol::peek_request_header(&frame).unwrap();
            let api = ApiKey::from_i16(key).unwrap();
            if api == ApiKey::ApiVersions && version > 3 {
                seen.push((api, version, None));
                let body = Response::ApiVersions(ApiVersionsResponse {
                    error_code: ErrorCode::UnsupportedVersion.code(),
                    api_keys: fake_api_versions(),
                    ..Default::default()
                });
                let mut out = BytesMut::new();
                encode_response(correlation_id, api, 0, &body, &mut out).unwrap();
                sock.write_all(&out).await.unwrap();
                continue;
            }
            let (header, request) = decode_request(frame).unwrap();
            seen.push((api, version, header.client_id.clone()));
            let response = match request {
                Request::ApiVersions(_) => Response::ApiVersions(ApiVersionsResponse {
                    api_keys: fake_api_versions(),
                    ..Default::default()
                }),
                Request::Metadata(m) => {
                    let names: Vec<String> = m
                        .topics
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|t| t.name)
                        .collect();
                    Response::Metadata(MetadataResponse {
                        topics: names
                            .into_iter()
                            .map(|n| MetadataResponseTopic {
                                error_code: if n == "t" { 0 } else { 3 },
                                partitions: if n == "t" {
                                    (0..2)
                                        .rev()
                                        .map(|i| MetadataResponsePartition {
                                            partition_index: i,
                                            leader_id: 1,
                                            replica_nodes: vec![1],
                                            isr_nodes: vec![1],
                                            ..Default::default()
                                        })
                                        .collect()
                                } else {
                                    vec![]
                                },
                                topic_id: if n == "t" { Uuid([7; 16]) } else { Uuid::ZERO },
                                name: Some(n),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                }
                Request::Produce(p) => {
                    if p.acks == 0 {
                        continue;
                    }
                    let mut r = unacknowledged_produce_response(&p);
                    r.responses[0].partition_responses[0].base_offset = 42;
                    if p.topic_data[0].partition_data[0].index == 1 {
                        let pr = &mut r.responses[0].partition_responses[0];
                        pr.error_code = ErrorCode::CorruptMessage.code();
                        pr.error_message = Some("bad".into());
                    }
                    Response::Produce(r)
                }
                Request::Fetch(f) => {
                    let offset = f.topics[0].partitions[0].fetch_offset;
                    let partial = batch(3, &["z"], Compression::None);
                    let records = concat(&[
                        &batch(0, &["a", "b"], Compression::None),
                        &batch(2, &["c"], Compression::Lz4),
                        &partial.slice(..partial.len() / 2),
                    ]);
                    Response::Fetch(FetchResponse {
                        responses: vec![FetchableTopicResponse {
                            topic: f.topics[0].topic.clone(),
                            topic_id: f.topics[0].topic_id,
                            partitions: vec![PartitionData {
                                partition_index: f.topics[0].partitions[0].partition,
                                high_watermark: 10,
                                log_start_offset: 0,
                                records: Some(records),
                                error_code: if offset > 10 { 1 } else { 0 },
                                ..Default::default()
                            }],
                        }],
                        ..Default::default()
                    })
                }
                other => panic!("fake broker got {:?}", other.api_key()),
            };
            let mut out = BytesMut::new();
            encode_response(correlation_id, api, version, &response, &mut out).unwrap();
            sock.write_all(&out).await.unwrap();
        }
        seen
    });
    (addr, handle)
}

#[tokio::test]
async fn client_against_fake_broker() {
    let (addr, broker) = fake_broker().await;
    let mut client = Client::connect(&addr).await.unwrap();

    // Negotiation: fell back to ApiVersions v3; highest common versions elsewhere.
    assert_eq!(client.broker_versions(ApiKey::Metadata), Some((0, 12)));
    assert_eq!(client.api_version(ApiKey::Metadata).unwrap(), 12);
    assert_eq!(client.api_version(ApiKey::Fetch).unwrap(), 16);
    assert!(matches!(
        client.api_version(ApiKey::ListOffsets),
        Err(ClientError::UnsupportedApi {
            broker_versions: Some((0, 0)),
            ..
        })
    ));
    assert!(matches!(
        client.api_version(ApiKey::CreateTopics),
        Err(ClientError::UnsupportedApi {
            broker_versions: None,
            ..
        })
    ));
    client.cap_version(ApiKey::Fetch, 12);
    assert_eq!(client.api_version(ApiKey::Fetch).unwrap(), 12);

    // Metadata: partitions sorted, topic ids cached, missing topic is a Kafka error.
    let t = client.topic_metadata("t").await.unwrap();
    assert_eq!(
        t.partitions
            .iter()
            .map(|p| p.partition_index)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(client.partition_count("t").await.unwrap(), 2);
    let e = client.topic_metadata("nope").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopicOrPartition));

    // Produce: base offset, error with message, acks=0 without response.
    let records = batch(0, &["v"], Compression::None);
    assert_eq!(
        client
            .produce("t", 0, records.clone(), -1, 1000)
            .await
            .unwrap(),
        42
    );
    let e = client
        .produce("t", 1, records.clone(), 1, 1000)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "CORRUPT_MESSAGE: bad");
    assert_eq!(client.produce("t", 0, records, 0, 1000).await.unwrap(), -1);

    // Fetch at v12 (by name) then v16 (by topic id): partial batch dropped, skip before 1.
    let f = client.fetch("t", 0, 1, 100, 1 << 20).await.unwrap();
    assert_eq!(
        f.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(f.next_offset, 3);
    assert_eq!(f.high_watermark, 10);
    client.cap_version(ApiKey::Fetch, 16);
    let f = client.fetch("t", 1, 0, 100, 1 << 20).await.unwrap();
    assert_eq!(f.partition, 1);
    assert_eq!(f.records.len(), 3);
    assert_eq!(f.records[2].value.as_deref(), Some(&b"c"[..]));
    let e = client.fetch("t", 0, 11, 100, 1 << 20).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::OffsetOutOfRange));

    drop(client);
    let seen = broker.await.unwrap();
    assert_eq!(seen[0].0, ApiKey::ApiVersions);
    assert_eq!(seen[0].1, ApiKey::ApiVersions.valid_versions().1);
    assert_eq!(
        seen[1],
        (ApiKey::ApiVersions, 3, Some(CLIENT_ID.to_owned()))
    );
    let fetch_versions: Vec<i16> = seen
        .iter()
        .filter(|s| s.0 == ApiKey::Fetch)
        .map(|s| s.1)
        .collect();
    assert_eq!(fetch_versions, [12, 16, 16]);
}

#[tokio::test]
async fn connect_refused_is_clear() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let e = Client::connect(&addr).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot connect to {addr}: connection refused — is `arus serve` running?")
    );
}

#[tokio::test]
async fn raw_frames_and_closed_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        // Echo one frame, then close on the next.
        let frame = read_frame(&mut sock).await.unwrap().unwrap();
        let mut out = (frame.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&frame);
        sock.write_all(&out).await.unwrap();
        let _ = read_frame(&mut sock).await;
    });
    let mut client = Client::connect_without_handshake(&addr).await.unwrap();
    let reply = client
        .send_raw_frame(&[0, 0, 0, 4, 0, 0, 0, 9])
        .await
        .unwrap();
    assert_eq!(reply.as_deref(), Some(&[0u8, 0, 0, 9][..]));
    let reply = client.send_raw_frame(&[0, 0, 0, 1, 5]).await.unwrap();
    assert_eq!(reply, None);
    server.await.unwrap();

    // A typed request on a closed connection is an I/O error, then the client is broken.
    let e = client
        .send_with_version(Request::Metadata(MetadataRequest::default()), 12)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Io { .. }), "{e}");
    let e = client
        .send_with_version(Request::Metadata(MetadataRequest::default()), 12)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Broken { .. }), "{e}");
}

#[tokio::test]
async fn correlation_mismatch_is_detected() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let frame = read_frame(&mut sock).await.unwrap().unwrap();
        let (_, _, correlation_id) = arus_protocol::peek_request_header(&frame).unwrap();
        let body = Response::ApiVersions(ApiVersionsResponse::default());
        let mut out = BytesMut::new();
        encode_response(correlation_id + 1, ApiKey::ApiVersions, 3, &body, &mut out).unwrap();
        sock.write_all(&out).await.unwrap();
        let _ = read_frame(&mut sock).await;
    });
    let e = Client::connect(&addr).await.unwrap_err();
    assert!(matches!(e, ClientError::CorrelationMismatch { .. }), "{e}");
}

#[tokio::test]
async fn silent_broker_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(sock);
    });
    let mut client = Client::connect_without_handshake(&addr).await.unwrap();
    client.set_request_timeout(Duration::from_millis(100));
    let e = client
        .send_with_version(Request::Metadata(MetadataRequest::default()), 12)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Timeout { .. }), "{e}");
    server.abort();
}

#[test]
fn produce_error_message_includes_record_errors() {
    use arus_protocol::messages::produce_response::BatchIndexAndErrorMessage;
    let p = PartitionProduceResponse {
        error_code: 87,
        error_message: Some("batch rejected".into()),
        record_errors: vec![
            BatchIndexAndErrorMessage {
                batch_index: 2,
                batch_index_error_message: Some("null key".into()),
            },
            BatchIndexAndErrorMessage {
                batch_index: 3,
                batch_index_error_message: None,
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        produce_error_message(&p).as_deref(),
        Some("batch rejected; record 2: null key; record 3 rejected")
    );
    assert_eq!(
        produce_error_message(&PartitionProduceResponse::default()),
        None
    );
}

#[test]
fn client_minimum_versions() {
    assert_eq!(client_min_version(ApiKey::Produce), 3);
    assert_eq!(client_min_version(ApiKey::Fetch), 4);
    assert_eq!(client_min_version(ApiKey::Metadata), 1);
    // Kafka 4.0 removed CreateTopics v0 and v1 (KIP-896); the codec starts at v2.
    assert_eq!(client_min_version(ApiKey::CreateTopics), 2);
    assert_eq!(client_min_version(ApiKey::FindCoordinator), 0);
}
