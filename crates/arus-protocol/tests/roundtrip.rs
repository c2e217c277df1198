//! Randomized round-trip tests (fixed seeds): for every API, every version, random requests
//! and responses that only set fields present in that version must survive
//! encode → decode → equal, and re-encoding must give identical bytes.

use arus_protocol::messages::{RequestHeader, ResponseHeader};
use arus_protocol::testing::Rng;
use arus_protocol::{
    ApiKey, Bytes, BytesMut, Message, Request, Response, decode_request, decode_response,
    encode_request, encode_response,
};

const ITERATIONS: u64 = 25;

#[test]
fn every_request_every_version_roundtrips() {
    let mut cases = 0;
    for &key in ApiKey::all() {
        let (lo, hi) = key.valid_versions();
        for version in lo..=hi {
            for i in 0..ITERATIONS {
                let mut rng = Rng::new(((key as u64) << 32) ^ ((version as u64) << 16) ^ i);
                let req = Request::random(key, &mut rng, version);
                let mut out = BytesMut::new();
                req.encode(&mut out, version)
                    .unwrap_or_else(|e| panic!("{key:?} v{version}: encode: {e}"));
                let bytes = out.freeze();
                let mut buf = bytes.clone();
                let back = Request::decode(key, version, &mut buf)
                    .unwrap_or_else(|e| panic!("{key:?} v{version}: decode: {e}"));
                assert!(
                    buf.is_empty(),
                    "{key:?} v{version}: {} bytes left",
                    buf.len()
                );
                assert_eq!(back, req, "{key:?} v{version}");
                let mut again = BytesMut::new();
                back.encode(&mut again, version).unwrap();
                assert_eq!(
                    again.freeze(),
                    bytes,
                    "{key:?} v{version}: re-encode differs"
                );

                // Through the framing helpers.
                let header = RequestHeader {
                    request_api_key: key as i16,
                    request_api_version: version,
                    correlation_id: i as i32,
                    client_id: if i % 3 == 0 {
                        None
                    } else {
                        Some("client-é".into())
                    },
                };
                let mut frame = BytesMut::new();
                encode_request(&header, &req, &mut frame).unwrap();
                let frame = frame.freeze();
                let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
                assert_eq!(size as usize, frame.len() - 4);
                let (h, body) = decode_request(frame.slice(4..)).unwrap();
                let expect_client = if key.request_header_version(version) == 0 {
                    RequestHeader::default().client_id
                } else {
                    header.client_id.clone()
                };
                assert_eq!(h.client_id, expect_client);
                assert_eq!(h.correlation_id, i as i32);
                assert_eq!(body, req);
                cases += 1;
            }
        }
    }
    eprintln!("request round-trip cases: {cases}");
}

#[test]
fn every_response_every_version_roundtrips() {
    for &key in ApiKey::all() {
        let (lo, hi) = key.valid_versions();
        for version in lo..=hi {
            for i in 0..ITERATIONS {
                let mut rng = Rng::new(!(((key as u64) << 32) ^ ((version as u64) << 16) ^ i));
                let resp = Response::random(key, &mut rng, version);
                let mut out = BytesMut::new();
                resp.encode(&mut out, version)
                    .unwrap_or_else(|e| panic!("{key:?} v{version}: encode: {e}"));
                let bytes = out.freeze();
                let mut buf = bytes.clone();
                let back = Response::decode(key, version, &mut buf)
                    .unwrap_or_else(|e| panic!("{key:?} v{version}: decode: {e}"));
                assert!(
                    buf.is_empty(),
                    "{key:?} v{version}: {} bytes left",
                    buf.len()
                );
                assert_eq!(back, resp, "{key:?} v{version}");
                let mut again = BytesMut::new();
                back.encode(&mut again, version).unwrap();
                assert_eq!(
                    again.freeze(),
                    bytes,
                    "{key:?} v{version}: re-encode differs"
                );

                let mut frame = BytesMut::new();
                encode_response(77, key, version, &resp, &mut frame).unwrap();
                let frame = frame.freeze();
                let (h, body) = decode_response(key, version, frame.slice(4..)).unwrap();
                assert_eq!(h.correlation_id, 77);
                assert_eq!(body, resp);
            }
        }
    }
}

#[test]
fn headers_roundtrip() {
    let mut rng = Rng::new(7);
    for version in 0..=2 {
        for _ in 0..50 {
            let h = RequestHeader::random(&mut rng, version);
            let mut out = BytesMut::new();
            h.encode(&mut out, version).unwrap();
            let mut b: Bytes = out.freeze();
            assert_eq!(RequestHeader::decode(&mut b, version).unwrap(), h);
            assert!(b.is_empty());
        }
    }
    for version in 0..=1 {
        let h = ResponseHeader::random(&mut rng, version);
        let mut out = BytesMut::new();
        h.encode(&mut out, version).unwrap();
        let mut b = out.freeze();
        assert_eq!(ResponseHeader::decode(&mut b, version).unwrap(), h);
    }
}

macro_rules! roundtrip_data {
    ($($t:ty),* $(,)?) => {$(
        {
            let (lo, hi) = <$t as Message>::VERSIONS;
            for version in lo..=hi {
                for i in 0..ITERATIONS {
                    let mut rng = Rng::new(i ^ ((version as u64) << 8));
                    let m = <$t>::random(&mut rng, version);
                    let mut out = BytesMut::new();
                    m.encode(&mut out, version).unwrap();
                    let bytes = out.freeze();
                    let mut buf = bytes.clone();
                    let back = <$t as Message>::decode(&mut buf, version).unwrap();
                    assert!(buf.is_empty());
                    assert_eq!(back, m, "{} v{version}", stringify!($t));
                }
            }
        }
    )*};
}

#[test]
fn data_messages_roundtrip() {
    use arus_protocol::messages::*;
    roundtrip_data!(
        ConsumerProtocolAssignment,
        ConsumerProtocolSubscription,
        DefaultPrincipalData,
        KRaftVersionRecord,
        LeaderChangeMessage,
        SnapshotFooterRecord,
        SnapshotHeaderRecord,
        VotersRecord,
    );
}
