//! `arus produce`: stdin lines → records.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use arus_client::{Client, partition_for_key};
use arus_records::{BatchBuilder, Compression};
use clap::Args;
use tokio::sync::mpsc;

use super::{ConnectArgs, now_ms, parse_key_value, topic_error};

/// A batch is sent once it holds this many records…
const MAX_BATCH_RECORDS: usize = 1000;
/// …or this many bytes (uncompressed estimate).
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Pending records are sent when stdin has been quiet this long (interactive use).
const LINGER: Duration = Duration::from_millis(100);
/// The produce request's `timeout_ms`.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic to write to.
    #[arg(long)]
    pub topic: String,
    /// Split each line at the first SEP into key and value (lines without SEP are an error).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Write every record to this partition (default: murmur2 of the key as Kafka's
    /// default partitioner does; round-robin for records without a key).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Acknowledgement: all (wait for the durable write), 1 (leader append) or 0 (none).
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i16,
    /// Batch compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// Record timestamp in ms since the epoch (default: the time each line is read).
    #[arg(long, value_name = "MS")]
    pub timestamp: Option<i64>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("expected all, 1 or 0, got '{s}'")),
    }
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    Compression::from_name(s)
        .ok_or_else(|| format!("expected none, gzip, snappy, lz4 or zstd, got '{s}'"))
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let summary = produce_lines(&args, spawn_line_reader()).await?;
    eprintln!("{summary}");
    Ok(())
}

/// Produces the lines (newline included or not) received on `lines` until the channel
/// closes; returns the summary line.
pub async fn produce_lines(
    args: &ProduceArgs,
    mut lines: mpsc::Receiver<std::io::Result<Vec<u8>>>,
) -> anyhow::Result<String> {
    if args.key_separator.as_deref() == Some("") {
        bail!("--key-separator must not be empty");
    }
    let mut client = args.connect.connect().await?;
    let partitions = client
        .partition_count(&args.topic)
        .await
        .map_err(|e| topic_error(&args.topic, "looking up topic", e))?;
    if partitions <= 0 {
        bail!("topic '{}' has no partitions", args.topic);
    }
    if let Some(p) = args.partition
        && !(0..partitions).contains(&p)
    {
        bail!(
            "partition {p} does not exist: topic '{}' has {partitions} partition{}",
            args.topic,
            if partitions == 1 { "" } else { "s" }
        );
    }

    let headers: Vec<(&str, Option<&[u8]>)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
        .collect();
    let mut producer = Producer {
        client,
        topic: &args.topic,
        acks: args.acks,
        compression: args.compression,
        pending: BTreeMap::new(),
        written: BTreeMap::new(),
        total: 0,
    };
    let mut chooser = PartitionChooser::new(partitions, args.partition);

    let mut line_no = 0u64;
    loop {
        let next = if producer.has_pending() {
            match tokio::time::timeout(LINGER, lines.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    producer.flush_all().await?;
                    continue;
                }
            }
        } else {
            lines.recv().await
        };
        let line = match next {
            None => break,
            Some(Err(e)) => return Err(anyhow::Error::new(e).context("reading stdin")),
            Some(Ok(line)) => line,
        };
        line_no += 1;
        let text = strip_newline(&line);
        let (key, value) = match &args.key_separator {
            Some(sep) => match split_key(text, sep.as_bytes()) {
                Some(kv) => (Some(kv.0), kv.1),
                None => {
                    producer.flush_all().await?;
                    bail!(
                        "line {line_no} has no key separator '{sep}' ({}; the lines before it were produced)",
                        producer.summary()
                    );
                }
            },
            None => (None, text),
        };
        let partition = chooser.choose(key);
        let timestamp = args.timestamp.unwrap_or_else(now_ms);
        producer
            .push(partition, timestamp, key, value, &headers)
            .await?;
    }
    producer.flush_all().await?;
    Ok(producer.summary())
}

/// Reads stdin on a plain thread (stdin is blocking) and hands lines, newline included,
/// to the async side. The channel is bounded so a slow broker slows the reader down.
fn spawn_line_reader() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4096);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let stdin = std::io::stdin();
        let mut input = std::io::BufReader::with_capacity(64 * 1024, stdin.lock());
        loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if tx.blocking_send(Ok(line)).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    rx
}

/// Removes one trailing `\n` or `\r\n`.
fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits at the first occurrence of `sep`.
fn split_key<'a>(line: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let pos = line.windows(sep.len()).position(|w| w == sep)?;
    Some((&line[..pos], &line[pos + sep.len()..]))
}

/// Kafka's default partitioning: murmur2 for keys, round-robin without.
struct PartitionChooser {
    partitions: i32,
    fixed: Option<i32>,
    next: i32,
}

impl PartitionChooser {
    fn new(partitions: i32, fixed: Option<i32>) -> Self {
        PartitionChooser {
            partitions,
            fixed,
            next: 0,
        }
    }

    fn choose(&mut self, key: Option<&[u8]>) -> i32 {
        if let Some(p) = self.fixed {
            return p;
        }
        match key {
            Some(k) => partition_for_key(k, self.partitions),
            None => {
                let p = self.next;
                self.next = (self.next + 1) % self.partitions;
                p
            }
        }
    }
}

/// Per-partition batching and the produce calls.
struct Producer<'a> {
    client: Client,
    topic: &'a str,
    acks: i16,
    compression: Compression,
    pending: BTreeMap<i32, BatchBuilder>,
    /// partition → (first offset, last offset, records) acknowledged so far.
    written: BTreeMap<i32, (i64, i64, u64)>,
    total: u64,
}

impl Producer<'_> {
    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    async fn push(
        &mut self,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(&str, Option<&[u8]>)],
    ) -> anyhow::Result<()> {
        let compression = self.compression;
        let builder = self
            .pending
            .entry(partition)
            .or_insert_with(|| BatchBuilder::new(compression, timestamp));
        builder.push(timestamp, key, Some(value), headers);
        if builder.len() >= MAX_BATCH_RECORDS || builder.estimated_size() >= MAX_BATCH_BYTES {
            self.flush(partition).await?;
        }
        Ok(())
    }

    async fn flush_all(&mut self) -> anyhow::Result<()> {
        let partitions: Vec<i32> = self.pending.keys().copied().collect();
        for p in partitions {
            self.flush(p).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, partition: i32) -> anyhow::Result<()> {
        let Some(builder) = self.pending.remove(&partition) else {
            return Ok(());
        };
        let count = builder.len() as u64;
        let batch = builder
            .build()
            .with_context(|| format!("building a batch for partition {partition}"))?;
        let base = self
            .client
            .produce(self.topic, partition, batch, self.acks, PRODUCE_TIMEOUT_MS)
            .await
            .map_err(|e| {
                let before = if self.total > 0 {
                    format!(" ({} written before the error)", self.summary())
                } else {
                    String::new()
                };
                topic_error(self.topic, "producing to topic", e).context(format!(
                    "producing {count} records to partition {partition}{before}"
                ))
            })?;
        self.total += count;
        let last = if base >= 0 {
            base + count as i64 - 1
        } else {
            -1
        };
        self.written
            .entry(partition)
            .and_modify(|w| {
                w.1 = last;
                w.2 += count;
            })
            .or_insert((base, last, count));
        Ok(())
    }

    fn summary(&self) -> String {
        let records = if self.total == 1 { "record" } else { "records" };
        let mut s = format!(
            "Produced {} {records} to topic '{}'",
            self.total, self.topic
        );
        if self.acks == 0 {
            s.push_str(" (acks=0: offsets not reported)");
            return s;
        }
        let parts: Vec<String> = self
            .written
            .iter()
            .map(|(p, (first, last, n))| {
                if first == last {
                    format!("partition {p}: offset {first}")
                } else {
                    format!("partition {p}: {n} records, offsets {first}-{last}")
                }
            })
            .collect();
        if !parts.is_empty() {
            s.push_str(": ");
            s.push_str(&parts.join("; "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_stripping() {
        assert_eq!(strip_newline(b"abc\n"), b"abc");
        assert_eq!(strip_newline(b"abc\r\n"), b"abc");
        assert_eq!(strip_newline(b"abc"), b"abc");
        assert_eq!(strip_newline(b"\n"), b"");
        assert_eq!(strip_newline(b"a\rb\n"), b"a\rb");
    }

    #[test]
    fn key_splitting() {
        assert_eq!(split_key(b"k:v", b":"), Some((&b"k"[..], &b"v"[..])));
        assert_eq!(split_key(b"k:v:w", b":"), Some((&b"k"[..], &b"v:w"[..])));
        assert_eq!(split_key(b":v", b":"), Some((&b""[..], &b"v"[..])));
        assert_eq!(split_key(b"k::v", b"::"), Some((&b"k"[..], &b"v"[..])));
        assert_eq!(split_key(b"k\tv", b"\t"), Some((&b"k"[..], &b"v"[..])));
        assert_eq!(split_key(b"kv", b":"), None);
        assert_eq!(split_key(b"", b":"), None);
    }

    #[test]
    fn partition_choice() {
        let mut c = PartitionChooser::new(3, None);
        assert_eq!(
            (0..7).map(|_| c.choose(None)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2, 0]
        );
        // murmur2("21") & 0x7fffffff = 1173551340; % 3 = 0.
        assert_eq!(c.choose(Some(b"21")), 1173551340 % 3);
        assert_eq!(c.choose(Some(b"21")), c.choose(Some(b"21")));
        let mut fixed = PartitionChooser::new(3, Some(2));
        assert_eq!(fixed.choose(Some(b"21")), 2);
        assert_eq!(fixed.choose(None), 2);
    }

    #[test]
    fn option_parsing() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("1"), Ok(1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert!(parse_acks("2").is_err());
        assert_eq!(parse_compression("zstd"), Ok(Compression::Zstd));
        assert!(parse_compression("brotli").is_err());
    }
}
