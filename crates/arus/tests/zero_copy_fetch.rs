//! Fetched data sent from the segment files with `sendfile` (Fetch v10+)
//! arrives exactly as the copy path (Fetch v4) returns it: every record, in order, across
//! segment boundaries, several partitions per response, small and large byte limits.

mod common;

use arus_client::Client;
use arus_protocol::ApiKey;
use arus_records::{BatchBuilder, Compression};
use common::BrokerProcess;

const PARTITIONS: i32 = 2;
const BATCHES: usize = 500;
const RECORDS_PER_BATCH: usize = 10;

fn value(partition: i32, n: usize) -> Vec<u8> {
    // ~500 bytes, distinct per record, so a misplaced byte range cannot go unnoticed.
    format!("p{partition}-r{n:06}-")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(500)
        .collect()
}

/// Reads a partition from 0 to `end`, `max_bytes` per fetch, both partitions per request.
async fn read_all(client: &mut Client, max_bytes: i32, end: i64) -> Vec<Vec<(i64, Vec<u8>)>> {
    let mut next = vec![0i64; PARTITIONS as usize];
    let mut got = vec![Vec::new(); PARTITIONS as usize];
    let mut fetches = 0;
    while next.iter().any(|&o| o < end) {
        fetches += 1;
        assert!(fetches < 10_000, "no progress: {next:?}");
        let wanted: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, next[p as usize])).collect();
        let results = client
            .fetch_partitions("zc", &wanted, 100, max_bytes)
            .await
            .unwrap();
        for (p, r) in results {
            let r = r.unwrap();
            for rec in &r.records {
                got[p as usize].push((rec.offset, rec.value.clone().unwrap().to_vec()));
            }
            next[p as usize] = r.next_offset;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendfile_fetch_returns_what_the_copy_path_returns() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_in(&dir.path().join("data"), &[]);
    let mut client = Client::connect(&broker.addr).await.unwrap();
    // Small segments: fetches run into segment ends.
    client
        .create_topic(
            "zc",
            PARTITIONS,
            1,
            &[("segment.bytes".into(), "1048576".into())],
        )
        .await
        .unwrap();
    for p in 0..PARTITIONS {
        for b in 0..BATCHES {
            let mut batch = BatchBuilder::new(Compression::None, 1_700_000_000_000);
            for r in 0..RECORDS_PER_BATCH {
                let v = value(p, b * RECORDS_PER_BATCH + r);
                batch.push(1_700_000_000_000, Some(b"k"), Some(&v), &[]);
            }
            client
                .produce("zc", p, batch.build().unwrap(), 1, 5000)
                .await
                .unwrap();
        }
    }
    let end = (BATCHES * RECORDS_PER_BATCH) as i64;
    let expected: Vec<Vec<(i64, Vec<u8>)>> = (0..PARTITIONS)
        .map(|p| (0..end).map(|o| (o, value(p, o as usize))).collect())
        .collect();

    assert!(client.api_version(ApiKey::Fetch).unwrap() >= 10);
    for max_bytes in [1, 40_000, 1_000_000, 50_000_000] {
        let spliced = read_all(&mut client, max_bytes, end).await;
        assert!(spliced == expected, "sendfile path, max_bytes {max_bytes}");
    }
    let mut copying = Client::connect(&broker.addr).await.unwrap();
    copying.cap_version(ApiKey::Fetch, 4);
    let copied = read_all(&mut copying, 1_000_000, end).await;
    assert!(copied == expected, "copy path");
}
