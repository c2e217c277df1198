//! Every request API and version through `decode_request` (what a connection does with each
//! frame), plus `peek_request_header`; whatever decodes must re-encode and decode to the same
//! value. Mode 3 does the same for responses (what the client decodes).
#![no_main]

use std::sync::OnceLock;

use arus_fuzz::{MODE_RAW_REQUEST, MODE_RESPONSE, api_pairs};
use arus_protocol::{
    ApiKey, Bytes, BytesMut, ErrorCode, decode_request, decode_response, encode_request,
    encode_response, peek_request_header,
};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: arus_fuzz::alloc_check::Tracking = arus_fuzz::alloc_check::Tracking;

fn pairs() -> &'static [(ApiKey, i16)] {
    static PAIRS: OnceLock<Vec<(ApiKey, i16)>> = OnceLock::new();
    PAIRS.get_or_init(api_pairs)
}

/// Equality, except that NaN (a legal f64 on the wire, e.g. AlterClientQuotas) equals itself.
fn same<T: PartialEq + std::fmt::Debug>(a: &T, b: &T) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

fn request(frame: Bytes) {
    let len = frame.len();
    let peeked = peek_request_header(&frame);
    arus_fuzz::alloc_check::reset();
    let decoded = decode_request(frame);
    arus_fuzz::alloc_check::assert_bounded(len, "decode_request");
    let Ok((header, body)) = decoded else {
        return;
    };
    let (key, version, correlation_id) = peeked.expect("decoded a frame peek could not read");
    assert_eq!(header.request_api_key, key);
    assert_eq!(header.request_api_version, version);
    assert_eq!(header.correlation_id, correlation_id);
    assert_eq!(body.api_key().key(), key);
    let mut out = BytesMut::new();
    encode_request(&header, &body, &mut out)
        .unwrap_or_else(|e| panic!("decoded request does not re-encode: {e}\n{body:?}"));
    let again = decode_request(out.freeze().slice(4..))
        .unwrap_or_else(|e| panic!("re-encoded request does not decode: {e}\n{body:?}"));
    assert!(same(&again, &(header, body)), "request round trip differs");
}

fn response(key: ApiKey, version: i16, frame: Bytes) {
    let len = frame.len();
    arus_fuzz::alloc_check::reset();
    let decoded = decode_response(key, version, frame);
    arus_fuzz::alloc_check::assert_bounded(len, "decode_response");
    let Ok((header, body)) = decoded else {
        return;
    };
    // An ApiVersions error answer is decoded as v0 whatever was asked (KIP-511): it does not
    // re-encode at `version`.
    let body_version = if key == ApiKey::ApiVersions {
        match &body {
            arus_protocol::Response::ApiVersions(r)
                if r.error_code == ErrorCode::UnsupportedVersion.code() =>
            {
                0
            }
            _ => version,
        }
    } else {
        version
    };
    let mut out = BytesMut::new();
    encode_response(header.correlation_id, key, body_version, &body, &mut out)
        .unwrap_or_else(|e| panic!("decoded response does not re-encode: {e}\n{body:?}"));
    let again = decode_response(key, body_version, out.freeze().slice(4..))
        .unwrap_or_else(|e| panic!("re-encoded response does not decode: {e}\n{body:?}"));
    assert!(same(&again, &(header, body)), "response round trip differs");
}

fuzz_target!(|data: &[u8]| {
    let Some((sel, payload)) = data.split_first_chunk::<2>() else {
        return;
    };
    let sel = u16::from_be_bytes(*sel);
    let pairs = pairs();
    let (key, version) = pairs[usize::from(sel & 0x3fff) % pairs.len()];
    match sel >> 14 {
        MODE_RAW_REQUEST => request(Bytes::copy_from_slice(payload)),
        MODE_RESPONSE => response(key, version, Bytes::copy_from_slice(payload)),
        _ => {
            let mut frame = Vec::with_capacity(4 + payload.len());
            frame.extend_from_slice(&key.key().to_be_bytes());
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(payload);
            request(Bytes::from(frame));
        }
    }
});
