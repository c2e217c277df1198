//! Hostile input against the real binary: each case gets a closed connection or the right
//! error, the broker keeps serving other connections, and memory stays bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{BrokerProcess, api_versions_frame, assert_serving, closed_within};

fn frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&api_key.to_be_bytes());
    payload.extend_from_slice(&version.to_be_bytes());
    payload.extend_from_slice(&correlation_id.to_be_bytes());
    payload.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    payload.extend_from_slice(body);
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

fn send_and_expect_close(addr: &str, bytes: &[u8], what: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "{what}: connection not closed"
    );
}

#[test]
fn hostile_frames_close_the_connection_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(&dir.path().join("data"), &[]);
    let addr = broker.addr.clone();

    // Garbage that decodes as an absurd frame size.
    send_and_expect_close(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "http garbage");
    assert_serving(&addr);
    // Negative and 2 GiB frame lengths.
    send_and_expect_close(&addr, &(-5i32).to_be_bytes(), "negative length");
    send_and_expect_close(&addr, &i32::MAX.to_be_bytes(), "2 GiB length");
    // 100 MiB + 1 is above socket.request.max.bytes.
    send_and_expect_close(
        &addr,
        &(100 * 1024 * 1024 + 1i32).to_be_bytes(),
        "above max",
    );
    assert_serving(&addr);
    // Unknown API key.
    send_and_expect_close(&addr, &frame(9999, 0, 1, &[]), "unknown api key");
    // Absurd version of a non-ApiVersions API.
    send_and_expect_close(&addr, &frame(3, 32000, 1, &[]), "absurd metadata version");
    // A Metadata v1 body of 4 bytes claiming a huge topic array.
    send_and_expect_close(
        &addr,
        &frame(3, 1, 1, &0x7fff_ffffi32.to_be_bytes()),
        "4-byte metadata body",
    );
    // A frame shorter than a request header.
    send_and_expect_close(&addr, &[0, 0, 0, 3, 0, 18, 0], "short header");
    assert_serving(&addr);

    // ApiVersions at an absurd version gets a v0 UNSUPPORTED_VERSION answer (KIP-511).
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&frame(18, 999, 42, &[])).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[0..4], &42i32.to_be_bytes());
    assert_eq!(
        i16::from_be_bytes([body[4], body[5]]),
        35,
        "UNSUPPORTED_VERSION"
    );
    // As Kafka 4.4 (checked against it): only ApiVersions' own range is listed.
    let api_count = i32::from_be_bytes([body[6], body[7], body[8], body[9]]);
    assert_eq!(api_count, 1, "only ApiVersions' range is listed");
    assert_eq!(&body[10..12], &18i16.to_be_bytes(), "ApiVersions");
}

#[test]
fn half_open_connections_do_not_grow_memory_or_block_others() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(&dir.path().join("data"), &[]);
    let addr = broker.addr.clone();
    assert_serving(&addr);
    let before = broker.rss_kib();
    let mut conns = Vec::new();
    for i in 0..400 {
        let mut s = TcpStream::connect(&addr).unwrap();
        // Each announces a 100 MiB frame and sends only a few bytes of it.
        let mut partial = (100 * 1024 * 1024i32).to_be_bytes().to_vec();
        partial.extend_from_slice(&api_versions_frame(i)[4..10]);
        s.write_all(&partial).unwrap();
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_serving(&addr);
    let after = broker.rss_kib();
    // 400 announced 100 MiB frames must not allocate 40 GiB, nor even 1 MiB each.
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB with 400 half-open connections"
    );
    drop(conns);
    assert_serving(&addr);
}
