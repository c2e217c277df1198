//! Known-bytes tests against hand-computed byte vectors.

use arus_protocol::messages::api_versions_request::ApiVersionsRequest;
use arus_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use arus_protocol::messages::metadata_request::MetadataRequest;
use arus_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use arus_protocol::messages::{RequestHeader, ResponseHeader};
use arus_protocol::{
    ApiKey, Bytes, BytesMut, DecodeError, EncodeError, ErrorCode, Message, Request, Response, Uuid,
    decode_request, encode_request, encode_response, peek_request_header,
};

fn enc<M: Message>(m: &M, v: i16) -> Vec<u8> {
    let mut out = BytesMut::new();
    m.encode(&mut out, v).unwrap();
    out.to_vec()
}

#[test]
fn api_versions_request_v3_frame() {
    let header = RequestHeader {
        request_api_key: 18,
        request_api_version: 3,
        correlation_id: 1,
        client_id: Some("cl".into()),
    };
    let body = Request::ApiVersions(ApiVersionsRequest {
        client_software_name: "abc".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    });
    let mut out = BytesMut::new();
    encode_request(&header, &body, &mut out).unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0, 0, 0, 22,            // size
        0, 18, 0, 3,            // api key, version
        0, 0, 0, 1,             // correlation id
        0, 2, b'c', b'l',       // client_id: classic int16 string even in header v2
        0,                      // header tagged fields
        4, b'a', b'b', b'c',    // compact string (len + 1)
        4, b'1', b'.', b'0',
        0,                      // body tagged fields
    ];
    assert_eq!(out.to_vec(), expected);
    assert_eq!(peek_request_header(&expected[4..]), Some((18, 3, 1)));
    let (h, b) = decode_request(Bytes::from(expected[4..].to_vec())).unwrap();
    assert_eq!(h, header);
    assert_eq!(b, body);
}

#[test]
fn api_versions_request_v2_drops_ignorable_fields() {
    let m = ApiVersionsRequest {
        client_software_name: "abc".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    };
    assert_eq!(enc(&m, 2), Vec::<u8>::new());
}

#[test]
fn metadata_null_vs_empty_topics() {
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    // v1: null array = all topics.
    assert_eq!(enc(&all, 1), vec![0xff, 0xff, 0xff, 0xff]);
    // v0: null is not allowed (empty means all there).
    let mut out = BytesMut::new();
    assert!(matches!(
        all.encode(&mut out, 0),
        Err(EncodeError::NullNotAllowed { .. })
    ));
    let none = MetadataRequest {
        topics: Some(vec![]),
        ..Default::default()
    };
    assert_eq!(enc(&none, 0), vec![0, 0, 0, 0]);
    assert_eq!(enc(&none, 1), vec![0, 0, 0, 0]);
    // v4 adds allow_auto_topic_creation (default true).
    assert_eq!(enc(&all, 4), vec![0xff, 0xff, 0xff, 0xff, 1]);
    // v9 flexible: compact null array = 0, bool, tagged fields.
    assert_eq!(enc(&all, 9), vec![0, 1, 0, 0, 0]);
    // Decoding v1 null gives None.
    let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(MetadataRequest::decode(&mut b, 1).unwrap().topics, None);
    // v0 null is rejected on decode.
    let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
    assert!(MetadataRequest::decode(&mut b, 0).is_err());
}

#[test]
fn non_ignorable_absent_field_is_an_error() {
    let m = MetadataRequest {
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    assert_eq!(
        m.encode(&mut out, 3),
        Err(EncodeError::FieldNotSupported {
            field: "MetadataRequest.AllowAutoTopicCreation",
            version: 3
        })
    );
}

#[test]
fn api_versions_response_uses_header_v0_and_tagged_fields() {
    let body = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![ApiVersion {
            api_key: 0,
            min_version: 0,
            max_version: 11,
        }],
        zk_migration_ready: true,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    encode_response(
        5,
        ApiKey::ApiVersions,
        3,
        &Response::ApiVersions(body),
        &mut out,
    )
    .unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0, 0, 0, 22,
        0, 0, 0, 5,             // header v0: correlation id only
        0, 0,                   // error code
        2,                      // compact array, 1 element
        0, 0, 0, 0, 0, 11, 0,   // api key, min, max, tagged fields
        0, 0, 0, 0,             // throttle
        1,                      // one tagged field
        3, 1, 1,                // tag 3 (ZkMigrationReady), size 1, true
    ];
    assert_eq!(out.to_vec(), expected);
    assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
    assert_eq!(ApiKey::Metadata.response_header_version(9), 1);
    assert_eq!(ApiKey::Metadata.request_header_version(9), 2);
    assert_eq!(ApiKey::Metadata.request_header_version(8), 1);
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    // ApiVersionsRequest v3 with an unknown tag 9 (2 bytes of data).
    let mut b = Bytes::from_static(&[2, b'x', 1, 1, 9, 2, 0xaa, 0xbb]);
    let m = ApiVersionsRequest::decode(&mut b, 3).unwrap();
    assert_eq!(m.client_software_name, "x");
    assert_eq!(m.client_software_version, "");
    assert!(b.is_empty());
}

#[test]
fn produce_records_are_zero_copy() {
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(b"RECORDS")),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = Bytes::from(enc(&req, 9));
    let mut buf = bytes.clone();
    let back = ProduceRequest::decode(&mut buf, 9).unwrap();
    let rec = back.topic_data[0].partition_data[0]
        .records
        .clone()
        .unwrap();
    assert_eq!(&rec[..], b"RECORDS");
    // The slice points into the original frame.
    let start = bytes.as_ptr() as usize;
    let p = rec.as_ptr() as usize;
    assert!(p >= start && p < start + bytes.len());
}

#[test]
fn version_checks() {
    let frame = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 1, 0, 0]);
    assert_eq!(
        decode_request(frame).unwrap_err(),
        DecodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            version: 99
        }
    );
    let frame = Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        decode_request(frame).unwrap_err(),
        DecodeError::UnknownApiKey(0x7f00)
    );
    assert_eq!(peek_request_header(&[0, 1, 0]), None);
}

#[test]
fn header_v1_and_response_header() {
    let h = RequestHeader {
        request_api_key: 3,
        request_api_version: 1,
        correlation_id: 0x01020304,
        client_id: None,
    };
    assert_eq!(enc(&h, 1), vec![0, 3, 0, 1, 1, 2, 3, 4, 0xff, 0xff]);
    assert_eq!(enc(&h, 2), vec![0, 3, 0, 1, 1, 2, 3, 4, 0xff, 0xff, 0]);
    let r = ResponseHeader { correlation_id: 9 };
    assert_eq!(enc(&r, 1), vec![0, 0, 0, 9, 0]);
}

#[test]
fn api_key_and_error_code_tables() {
    assert_eq!(ApiKey::from_i16(0), Some(ApiKey::Produce));
    assert_eq!(ApiKey::Produce.name(), "Produce");
    assert_eq!(ApiKey::Produce.valid_versions(), (3, 13));
    assert!(ApiKey::Produce.is_flexible(9));
    assert!(!ApiKey::Produce.is_flexible(8));
    assert_eq!(ApiKey::Produce.listeners(), &["broker"]);
    assert!(ApiKey::all().len() > 70);
    for &k in ApiKey::all() {
        assert_eq!(ApiKey::from_i16(k as i16), Some(k));
    }
    assert_eq!(ErrorCode::UnknownTopicOrPartition.code(), 3);
    assert_eq!(
        ErrorCode::from_code(-1),
        Some(ErrorCode::UnknownServerError)
    );
    assert_eq!(
        ErrorCode::UnknownTopicOrPartition.name(),
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert!(ErrorCode::NotLeaderOrFollower.is_retriable());
    assert!(!ErrorCode::None.is_retriable());
    assert_eq!(ErrorCode::UnsupportedVersion.code(), 35);
}

#[test]
fn uuid_display_is_base64url() {
    assert_eq!(Uuid::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
    let u = Uuid::from_bytes([0xff; 16]);
    assert_eq!(u.to_string(), "_____________________w");
    assert_eq!(Uuid::parse(&u.to_string()), Some(u));
    let u = Uuid::from_bytes(*b"0123456789abcdef");
    assert_eq!(Uuid::parse(&u.to_string()), Some(u));
    assert_eq!("MDEyMzQ1Njc4OWFiY2RlZg".parse::<Uuid>().unwrap(), u);
}

#[test]
fn api_versions_unsupported_version_falls_back_to_v0() {
    let body = ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: vec![ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 3,
        }],
        ..Default::default()
    };
    let resp = Response::ApiVersions(body);
    let mut out = BytesMut::new();
    // The broker answers a too-new ApiVersions request with a v0 body.
    encode_response(1, ApiKey::ApiVersions, 0, &resp, &mut out).unwrap();
    let frame = out.freeze().slice(4..);
    // The client asked with v4 and still decodes it.
    let (h, back) = arus_protocol::decode_response(ApiKey::ApiVersions, 4, frame).unwrap();
    assert_eq!(h.correlation_id, 1);
    assert_eq!(back, resp);
}
