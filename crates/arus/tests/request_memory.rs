//! Memory held by unfinished requests is bounded by `queued.max.request.bytes`: hostile
//! clients that announce huge frames and trickle them, park half of a 100 MiB request on each
//! of 20 connections, or send decompression bombs, raise RSS by at most the pool's capacity
//! plus a small constant, while a normal producer and consumer keep being served.
//!
//! Each case prints the figures it measured (RSS before and at the peak, in MiB).

#![allow(clippy::needless_update)] // samples stay valid as specs add fields

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use arus_protocol::messages::metadata_request::MetadataRequestTopic;
use arus_protocol::messages::{MetadataRequest, ProduceRequest};
use arus_protocol::{BytesMut, Request, RequestHeader, encode_request};
use arus_records::{BatchBuilder, Compression};
use common::{BrokerProcess, assert_serving, create_topic};

const MIB: u64 = 1024 * 1024;

fn frame_of(api_key: i16, version: i16, request: Request) -> Vec<u8> {
    let header = RequestHeader {
        request_api_key: api_key,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("attacker".into()),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    encode_request(&header, &request, &mut out).unwrap();
    out.to_vec()
}

/// A normal client: produces 100 records and reads them back, each step within 10 s.
fn normal_client_is_served(addr: &str, topic: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let step = Duration::from_secs(10);
        let mut c = tokio::time::timeout(step, arus_client::Client::connect(addr))
            .await
            .expect("connect in time")
            .unwrap();
        let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
        for i in 0..100u32 {
            b.push(1_700_000_000_000, Some(b"k"), Some(&i.to_be_bytes()), &[]);
        }
        let base = tokio::time::timeout(step, c.produce(topic, 0, b.build().unwrap(), -1, 5000))
            .await
            .expect("produce in time")
            .unwrap();
        let fetched = tokio::time::timeout(step, c.fetch(topic, 0, base, 1000, 1 << 20))
            .await
            .expect("fetch in time")
            .unwrap();
        assert!(!fetched.records.is_empty(), "produced records read back");
    });
}

fn mib(kib: u64) -> u64 {
    kib / 1024
}

#[test]
fn trickled_announcements_of_huge_frames_hold_almost_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(&dir.path().join("data"), &[]);
    create_topic(&broker.addr, "normal", &[]);
    // A 1.2 MB request, answered before each connection turns hostile: its buffer must not
    // stay behind on the connection.
    let topics = (0..30_000)
        .map(|i| MetadataRequestTopic {
            name: Some(format!("no-such-topic-with-a-long-name-{i:08}")),
            ..Default::default()
        })
        .collect();
    let metadata = frame_of(
        3,
        12,
        Request::Metadata(MetadataRequest {
            topics: Some(topics),
            allow_auto_topic_creation: false,
            ..Default::default()
        }),
    );
    assert!(metadata.len() > 1_100_000);
    let before = broker.rss_kib();
    let mut attackers = Vec::new();
    for _ in 0..500 {
        let mut a = TcpStream::connect(&broker.addr).unwrap();
        a.write_all(&metadata).unwrap();
        let mut size = [0u8; 4];
        std::io::Read::read_exact(&mut a, &mut size).unwrap();
        let mut answer = vec![0u8; i32::from_be_bytes(size) as usize];
        std::io::Read::read_exact(&mut a, &mut answer).unwrap();
        let mut bytes = (100 * 1024 * 1024i32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 26]);
        a.write_all(&bytes).unwrap();
        attackers.push(a);
    }
    std::thread::sleep(Duration::from_secs(1));
    normal_client_is_served(&broker.addr, "normal");
    let peak = broker.rss_kib();
    eprintln!(
        "500 connections, each a 1.2 MB request answered, then 100 MiB announced and 30 B sent: RSS {} → {} MiB",
        mib(before),
        mib(peak)
    );
    assert!(
        peak < before + 48 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
    drop(attackers);
}

#[test]
fn half_sent_huge_frames_stay_within_the_pool_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    // A 144 MiB pool (the least that holds a 100 MiB request in its large share): the
    // 20 × 50 MB below would need 1 GB without one.
    let broker = BrokerProcess::start_in(
        &dir.path().join("data"),
        &["queued.max.request.bytes=150994944"],
    );
    create_topic(&broker.addr, "normal", &[]);
    let before = broker.rss_kib();
    let chunk = vec![0u8; 1024 * 1024];
    let senders: Vec<_> = (0..20)
        .map(|_| {
            let addr = broker.addr.clone();
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                let mut a = TcpStream::connect(&addr).unwrap();
                // Stalls once the pool is full: the broker stops reading.
                a.set_write_timeout(Some(Duration::from_secs(8))).unwrap();
                let _ = a.write_all(&(100 * 1024 * 1024i32).to_be_bytes());
                let mut sent = 0;
                while sent < 50 * 1024 * 1024 {
                    if a.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                a
            })
        })
        .collect();
    let start = Instant::now();
    let mut peak = 0;
    let mut served = 0;
    while start.elapsed() < Duration::from_secs(6) {
        normal_client_is_served(&broker.addr, "normal");
        served += 1;
        peak = peak.max(broker.rss_kib());
        std::thread::sleep(Duration::from_millis(200));
    }
    let conns: Vec<TcpStream> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    peak = peak.max(broker.rss_kib());
    eprintln!(
        "20 × 50 MB of a 100 MiB frame, 144 MiB pool: RSS {} → peak {} MiB; normal client served {served} times",
        mib(before),
        mib(peak)
    );
    assert!(
        peak < before + 144 * 1024 + 48 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
    drop(conns);
    assert_serving(&broker.addr);
}

/// A produce request whose one zstd batch expands to `expanded` bytes of zeros.
fn bomb_frame(topic: &str, expanded: u64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    b.push(1_700_000_000_000, Some(b"k"), Some(b"v"), &[]);
    let plain = b.build().unwrap();
    const HEADER: usize = 61;
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..expanded / (1 << 20) {
        enc.write_all(&zeros).unwrap();
    }
    let compressed = enc.finish().unwrap();
    let mut batch = plain[..HEADER].to_vec();
    batch.extend_from_slice(&compressed);
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[21..23].copy_from_slice(&4i16.to_be_bytes()); // attributes: zstd
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    frame_of(
        0,
        9,
        Request::Produce(ProduceRequest {
            acks: 1,
            timeout_ms: 5000,
            topic_data: vec![arus_protocol::messages::produce_request::TopicProduceData {
                name: topic.into(),
                partition_data: vec![
                    arus_protocol::messages::produce_request::PartitionProduceData {
                        index: 0,
                        records: Some(batch.into()),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
}

#[test]
fn concurrent_decompression_bombs_are_refused_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(&dir.path().join("data"), &[]);
    // Compacted: every record's key must be checked, so compressed batches are read.
    create_topic(
        &broker.addr,
        "compacted",
        &[
            ("cleanup.policy", "compact"),
            ("max.message.bytes", "1048576"),
        ],
    );
    create_topic(&broker.addr, "normal", &[]);
    // Recompressed on the way in: streamed from one codec into the other, or (uncompressed)
    // refused once the records pass max.message.bytes.
    create_topic(&broker.addr, "lz4", &[("compression.type", "lz4")]);
    create_topic(
        &broker.addr,
        "plain",
        &[("compression.type", "uncompressed")],
    );
    let bombs: Vec<Vec<u8>> = ["compacted", "lz4", "plain"]
        .iter()
        .map(|t| bomb_frame(t, 1100 * MIB))
        .collect();
    assert!(
        bombs[0].len() < 1_048_576,
        "the bomb fits max.message.bytes"
    );
    let before = broker.rss_kib();
    let senders: Vec<_> = (0..102)
        .map(|i| {
            let addr = broker.addr.clone();
            let bomb = bombs[i % 3].clone();
            std::thread::spawn(move || {
                let mut a = TcpStream::connect(&addr).unwrap();
                a.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                a.write_all(&bomb).unwrap();
                let mut size = [0u8; 4];
                std::io::Read::read_exact(&mut a, &mut size).is_ok()
            })
        })
        .collect();
    let mut peak = 0;
    let start = Instant::now();
    while senders.iter().any(|t| !t.is_finished()) && start.elapsed() < Duration::from_secs(60) {
        peak = peak.max(broker.rss_kib());
        std::thread::sleep(Duration::from_millis(20));
    }
    let answered = senders
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    normal_client_is_served(&broker.addr, "normal");
    eprintln!(
        "102 concurrent zstd bombs expanding to 1.1 GiB (to a compacted, an lz4 and an uncompressed topic): {answered} answered; RSS {} → peak {} MiB",
        mib(before),
        mib(peak)
    );
    assert_eq!(answered, 102, "every bomb gets an error answer");
    // Streamed: each bomb costs a buffer, not its expansion (before streaming: +133 MiB).
    assert!(
        peak < before + 48 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
}
