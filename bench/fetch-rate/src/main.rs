//! `fetch-rate --bootstrap HOST:PORT --topic T --partitions N --bytes B`: reads topic `T`
//! from offset 0 of every partition with Fetch v12 (topic names, no session), one request in
//! flight — as a consumer does, with the Java consumer's default limits (`fetch.max.bytes`
//! 50 MiB, `max.partition.fetch.bytes` 1 MiB) — until `B` bytes of records arrived, and prints
//! `{"bytes": .., "seconds": .., "mb_per_s": ..}`. Records are not decoded: the next offset
//! of a partition comes from the batch headers (`arus_records::batches`, no CRC or record walk), so the figure is what the broker and the
//! loopback deliver, not what a client library can parse.

use std::time::Instant;

use anyhow::{Context, bail};
use arus_client::Client;
use arus_protocol::messages::FetchRequest;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use arus_protocol::{Bytes, Request, Response};

const FETCH_VERSION: i16 = 12;

struct Args {
    bootstrap: String,
    topic: String,
    partitions: i32,
    bytes: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let (mut bootstrap, mut topic, mut partitions, mut bytes) = (None, None, 8, 0u64);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bootstrap" => bootstrap = Some(value),
            "--topic" => topic = Some(value),
            "--partitions" => partitions = value.parse()?,
            "--bytes" => bytes = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(Args {
        bootstrap: bootstrap.context("--bootstrap is required")?,
        topic: topic.context("--topic is required")?,
        partitions,
        bytes,
    })
}

/// The offset after the last whole batch in `records` (a trailing partial batch, which
/// Kafka sends when the byte limit cuts one, is left for the next fetch).
fn next_offset(records: &Bytes) -> Option<i64> {
    arus_records::batches(records.clone())
        .map_while(Result::ok)
        .last()
        .map(|b| b.last_offset() + 1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut client = Client::connect(&args.bootstrap).await?;
    let mut offsets = vec![0i64; args.partitions as usize];
    let mut total = 0u64;
    let start = Instant::now();
    while total < args.bytes {
        let request = FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: args.topic.clone(),
                partitions: (0..args.partitions)
                    .map(|p| FetchPartition {
                        partition: p,
                        fetch_offset: offsets[p as usize],
                        partition_max_bytes: 1024 * 1024,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let Response::Fetch(response) = client
            .send_with_version(Request::Fetch(request), FETCH_VERSION)
            .await?
        else {
            bail!("not a Fetch response");
        };
        if response.error_code != 0 {
            bail!("fetch error {}", response.error_code);
        }
        let mut got = 0u64;
        for p in response.responses.iter().flat_map(|t| &t.partitions) {
            if p.error_code != 0 {
                bail!("partition {} error {}", p.partition_index, p.error_code);
            }
            let records = p.records.clone().unwrap_or_default();
            if let (Some(next), Some(slot)) = (
                next_offset(&records),
                offsets.get_mut(p.partition_index as usize),
            ) {
                *slot = next;
                got += records.len() as u64;
            }
        }
        if got == 0 && start.elapsed().as_secs() > 5 && total == 0 {
            bail!("no data after 5 s");
        }
        total += got;
        if got == 0 {
            // Everything read: the topic holds less than --bytes.
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bytes": total,
            "seconds": seconds,
            "mb_per_s": total as f64 / seconds / 1e6,
            "ok": total >= args.bytes,
        })
    );
    Ok(())
}
