//! Connections are bounded and a peer that goes away is noticed at once: disconnected long
//! polls release their descriptors, `max.connections` / `max.connections.per.ip` (with
//! overrides) hold, and a request trickled byte by byte is cut off.

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use arus_protocol::messages::FetchRequest;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::{BytesMut, Request, RequestHeader, encode_request};
use common::{BrokerProcess, api_versions_frame, assert_serving, closed_within, create_topic};

/// A Fetch v12 of `topic`-0 at the log end that waits `max_wait_ms` for one byte.
fn long_poll_frame(topic: &str, max_wait_ms: i32) -> Vec<u8> {
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1024 * 1024,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1024 * 1024,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let header = RequestHeader {
        request_api_key: 1,
        request_api_version: 12,
        correlation_id: 1,
        client_id: Some("long-poll".into()),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    encode_request(&header, &Request::Fetch(request), &mut out).unwrap();
    out.to_vec()
}

/// Connects and checks an ApiVersions answer, within `within`.
fn serves_within(addr: &str, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), within) {
            let _ = s.set_read_timeout(Some(within));
            if s.write_all(&api_versions_frame(7)).is_ok() {
                let mut size = [0u8; 4];
                if std::io::Read::read_exact(&mut s, &mut size).is_ok() {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn disconnected_long_polls_release_their_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_limited(&dir.path().join("data"), &[], Some(1024));
    create_topic(&broker.addr, "quiet", &[]);
    let frame = long_poll_frame("quiet", 600_000);
    let baseline = broker.open_descriptors();
    for i in 0..2000 {
        let mut s = TcpStream::connect(&broker.addr)
            .unwrap_or_else(|e| panic!("connection {i} refused: {e}"));
        s.write_all(&frame).unwrap();
        drop(s);
        if i % 200 == 199 {
            // Let the broker see the closes; with leaked waits this is where the
            // 1,024-descriptor limit runs out.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(
        serves_within(&broker.addr, Duration::from_secs(1)),
        "a normal client could not connect within a second"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while broker.open_descriptors() > baseline + 16 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let open = broker.open_descriptors();
    assert!(
        open <= baseline + 16,
        "descriptors still open: {open} (baseline {baseline})"
    );
}

#[test]
fn per_ip_limit_and_override() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(&dir.path().join("data"), &["max.connections.per.ip=2"]);
    let _a = TcpStream::connect(&broker.addr).unwrap();
    let _b = TcpStream::connect(&broker.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut third = TcpStream::connect(&broker.addr).unwrap();
    let _ = third.write_all(&api_versions_frame(1));
    assert!(
        closed_within(&mut third, Duration::from_secs(5)),
        "a third connection from 127.0.0.1 must be closed"
    );
    drop(broker);

    let broker = BrokerProcess::start_in(
        &dir.path().join("data2"),
        &[
            "max.connections.per.ip=2",
            "max.connections.per.ip.overrides=127.0.0.1:4",
        ],
    );
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&broker.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert_serving(&broker.addr);
    drop(held);
}

#[test]
fn max_connections_holds_new_connections_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(&dir.path().join("data"), &["max.connections=2"]);
    let a = TcpStream::connect(&broker.addr).unwrap();
    let _b = TcpStream::connect(&broker.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Accepted by the kernel (backlog) but not served.
    assert!(!serves_within(&broker.addr, Duration::from_millis(500)));
    drop(a);
    assert!(serves_within(&broker.addr, Duration::from_secs(5)));
}

#[test]
fn a_request_trickled_byte_by_byte_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(
        &dir.path().join("data"),
        &["arus.request.read.timeout.ms=1000"],
    );
    let mut s = TcpStream::connect(&broker.addr).unwrap();
    // A frame that announces 1,000 bytes, of which 40 at most ever arrive.
    let mut frame = 1000i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&api_versions_frame(3)[4..]);
    frame.resize(44, 0);
    let start = Instant::now();
    let mut closed = false;
    for byte in &frame {
        if s.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if start.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    assert!(
        closed || closed_within(&mut s, Duration::from_secs(2)),
        "a connection sending a byte every 100 ms was not closed"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_serving(&broker.addr);
}
