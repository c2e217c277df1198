//! `arus consume`: print records of a topic.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arus_client::arus_protocol::ErrorCode;
use arus_client::{Client, EARLIEST_TIMESTAMP, FetchedRecord, LATEST_TIMESTAMP};
use clap::Args;

use super::{BrokerContext, ConnectArgs, topic_error};

/// Longest a single fetch waits on the broker for new records.
const FETCH_MAX_WAIT_MS: u64 = 500;
/// Fetch response size limit (per request and per partition).
const FETCH_MAX_BYTES: i32 = 8 * 1024 * 1024;

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    pub topic: String,
    /// Read only this partition (default: all partitions).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at the earliest offset.
    #[arg(long, conflicts_with_all = ["offset", "from_end", "from_timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset (in every partition read).
    #[arg(long, value_name = "N", conflicts_with_all = ["from_end", "from_timestamp"])]
    pub offset: Option<i64>,
    /// Start after the last record: print only new records (the default).
    #[arg(long, conflicts_with = "from_timestamp")]
    pub from_end: bool,
    /// Start at the first record whose timestamp is at or after MS (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub from_timestamp: Option<i64>,
    /// Stop after printing N records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Stop once no new record has arrived for MS milliseconds (default: follow forever).
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Output format, one line per record: %t topic, %p partition, %o offset, %T timestamp,
    /// %k key, %v value, %h headers (k=v,k=v), %% a percent sign; \t, \n, \\ escapes.
    /// Null keys and values print as "null".
    #[arg(long, default_value = "%v", value_name = "FMT")]
    pub format: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Where to start reading.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Start {
    Beginning,
    End,
    Offset(i64),
    Timestamp(i64),
}

impl ConsumeArgs {
    fn start(&self) -> Start {
        if self.from_beginning {
            Start::Beginning
        } else if let Some(o) = self.offset {
            Start::Offset(o)
        } else if let Some(t) = self.from_timestamp {
            Start::Timestamp(t)
        } else {
            Start::End
        }
    }
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let (mut consumer, mut positions) =
        Consumer::open(&args, io::BufWriter::new(io::stdout())).await?;
    let result = tokio::select! {
        r = consumer.run(&mut positions, args.max_messages, args.timeout_ms) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let flushed = consumer.out.flush();
    eprintln!(
        "Processed a total of {} message{}",
        consumer.printed,
        if consumer.printed == 1 { "" } else { "s" }
    );
    match result.and(flushed.map_err(anyhow::Error::from)) {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        r => r,
    }
}

/// Consumes as `run` does but into `out`, without the Ctrl-C handling or the summary;
/// returns `out` and the number of records written. For tests: give `--timeout-ms` or
/// `--max-messages`, or it never returns.
#[cfg(test)]
pub async fn consume_to<W: Write>(args: &ConsumeArgs, out: W) -> anyhow::Result<(W, u64)> {
    let (mut consumer, mut positions) = Consumer::open(args, out).await?;
    consumer
        .run(&mut positions, args.max_messages, args.timeout_ms)
        .await?;
    consumer.out.flush()?;
    Ok((consumer.out, consumer.printed))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

async fn start_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
    start: Start,
) -> anyhow::Result<i64> {
    let lookup = |ts: i64| format!("looking up offset {ts} of {topic}-{partition}");
    Ok(match start {
        Start::Offset(o) => o,
        Start::Beginning => {
            client
                .list_offset(topic, partition, EARLIEST_TIMESTAMP)
                .await
                .broker_context(|| lookup(EARLIEST_TIMESTAMP))?
                .0
        }
        Start::End => {
            client
                .list_offset(topic, partition, LATEST_TIMESTAMP)
                .await
                .broker_context(|| lookup(LATEST_TIMESTAMP))?
                .0
        }
        Start::Timestamp(ts) => {
            let (offset, _) = client
                .list_offset(topic, partition, ts)
                .await
                .broker_context(|| format!("looking up timestamp {ts} in {topic}-{partition}"))?;
            if offset >= 0 {
                offset
            } else {
                // No record that recent: wait for new ones.
                client
                    .list_offset(topic, partition, LATEST_TIMESTAMP)
                    .await
                    .broker_context(|| lookup(LATEST_TIMESTAMP))?
                    .0
            }
        }
    })
}

struct Consumer<'a, W: Write> {
    client: Client,
    topic: &'a str,
    format: Format,
    out: W,
    printed: u64,
    buf: Vec<u8>,
}

impl<'a, W: Write> Consumer<'a, W> {
    /// Connects, checks the topic and partition, and resolves the start offsets.
    async fn open(args: &'a ConsumeArgs, out: W) -> anyhow::Result<(Self, Vec<(i32, i64)>)> {
        let format = Format::parse(&args.format)?;
        if let Some(o) = args.offset
            && o < 0
        {
            bail!("--offset must be at least 0 (use --from-end for the latest records)");
        }
        let mut client = args.connect.connect().await?;
        let topic = &args.topic;
        let count = client
            .partition_count(topic)
            .await
            .map_err(|e| topic_error(topic, "looking up topic", e))?;
        let partitions: Vec<i32> = match args.partition {
            Some(p) if (0..count).contains(&p) => vec![p],
            Some(p) => bail!(
                "partition {p} does not exist: topic '{topic}' has {count} partition{}",
                if count == 1 { "" } else { "s" }
            ),
            None => (0..count).collect(),
        };
        let start = args.start();
        let mut positions = Vec::with_capacity(partitions.len());
        for &p in &partitions {
            positions.push((p, start_offset(&mut client, topic, p, start).await?));
        }
        let consumer = Consumer {
            client,
            topic,
            format,
            out,
            printed: 0,
            buf: Vec::new(),
        };
        Ok((consumer, positions))
    }

    async fn run(
        &mut self,
        positions: &mut [(i32, i64)],
        max_messages: Option<u64>,
        timeout_ms: Option<u64>,
    ) -> anyhow::Result<()> {
        let timeout = timeout_ms.map(Duration::from_millis);
        let mut last_record = Instant::now();
        loop {
            if max_messages.is_some_and(|m| self.printed >= m) {
                return Ok(());
            }
            let mut wait = Duration::from_millis(FETCH_MAX_WAIT_MS);
            if let Some(t) = timeout {
                let idle = last_record.elapsed();
                if idle >= t {
                    return Ok(());
                }
                wait = wait.min(t - idle);
            }
            let started = Instant::now();
            let results = self
                .client
                .fetch_partitions(
                    self.topic,
                    positions,
                    wait.as_millis() as i32,
                    FETCH_MAX_BYTES,
                )
                .await
                .map_err(|e| topic_error(self.topic, "fetching from topic", e))?;
            let mut got_any = false;
            for (partition, result) in results {
                let Some(slot) = positions.iter_mut().find(|(p, _)| *p == partition) else {
                    continue;
                };
                match result {
                    Ok(fetched) => {
                        for record in &fetched.records {
                            if max_messages.is_some_and(|m| self.printed >= m) {
                                break;
                            }
                            self.print(partition, record)?;
                            got_any = true;
                        }
                        slot.1 = fetched.next_offset;
                    }
                    Err(e) if e.code() == Some(ErrorCode::OffsetOutOfRange) => {
                        slot.1 = self.out_of_range(partition, slot.1).await?;
                    }
                    Err(e) => {
                        return Err(topic_error(self.topic, "fetching from topic", e))
                            .with_context(|| format!("partition {partition}"));
                    }
                }
            }
            self.out.flush().context("writing to stdout")?;
            if got_any {
                last_record = Instant::now();
            } else if started.elapsed() < Duration::from_millis(10) {
                // The broker answered an empty fetch at once; do not spin.
                tokio::time::sleep(wait.min(Duration::from_millis(100))).await;
            }
        }
    }

    /// OFFSET_OUT_OF_RANGE: below the log start (retention moved it) → continue at the
    /// earliest offset with a warning; beyond the end → error.
    async fn out_of_range(&mut self, partition: i32, offset: i64) -> anyhow::Result<i64> {
        let topic = self.topic;
        let (earliest, _) = self
            .client
            .list_offset(topic, partition, EARLIEST_TIMESTAMP)
            .await
            .broker_context(|| format!("looking up the earliest offset of {topic}-{partition}"))?;
        let (latest, _) = self
            .client
            .list_offset(topic, partition, LATEST_TIMESTAMP)
            .await
            .broker_context(|| format!("looking up the latest offset of {topic}-{partition}"))?;
        if offset < earliest {
            eprintln!(
                "warning: offset {offset} of partition {partition} is no longer available; continuing at {earliest}"
            );
            Ok(earliest)
        } else if offset > latest {
            bail!(
                "offset {offset} is out of range for partition {partition} of topic '{topic}' (offsets {earliest}-{latest})"
            )
        } else {
            // The log moved between the fetch and the lookup; retry where we were.
            Ok(offset)
        }
    }

    fn print(&mut self, partition: i32, record: &FetchedRecord) -> anyhow::Result<()> {
        self.buf.clear();
        self.format
            .render(&mut self.buf, self.topic, partition, record);
        self.buf.push(b'\n');
        self.out.write_all(&self.buf).context("writing to stdout")?;
        self.printed += 1;
        Ok(())
    }
}

/// A parsed `--format`.
#[derive(Debug, PartialEq)]
struct Format(Vec<Piece>);

#[derive(Debug, PartialEq)]
enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
}

impl Format {
    fn parse(s: &str) -> anyhow::Result<Format> {
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('T') => Piece::Timestamp,
                    Some('k') => Piece::Key,
                    Some('v') => Piece::Value,
                    Some('h') => Piece::Headers,
                    Some('%') => {
                        lit.push(b'%');
                        continue;
                    }
                    Some(other) => bail!(
                        "unknown directive %{other} in --format (known: %t %p %o %T %k %v %h %%)"
                    ),
                    None => bail!("--format ends with a lone '%'"),
                },
                '\\' => {
                    let e = match chars.next() {
                        Some('t') => '\t',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('\\') => '\\',
                        Some(other) => {
                            bail!("unknown escape \\{other} in --format (known: \\t \\n \\r \\\\)")
                        }
                        None => bail!("--format ends with a lone '\\'"),
                    };
                    let mut b = [0; 4];
                    lit.extend_from_slice(e.encode_utf8(&mut b).as_bytes());
                    continue;
                }
                c => {
                    let mut b = [0; 4];
                    lit.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    continue;
                }
            };
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            pieces.push(piece);
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Format(pieces))
    }

    /// Appends one formatted record (no trailing newline) to `out`.
    fn render(&self, out: &mut Vec<u8>, topic: &str, partition: i32, r: &FetchedRecord) {
        fn bytes_or_null(out: &mut Vec<u8>, b: &Option<arus_client::arus_protocol::Bytes>) {
            match b {
                Some(b) => out.extend_from_slice(b),
                None => out.extend_from_slice(b"null"),
            }
        }
        for piece in &self.0 {
            match piece {
                Piece::Literal(l) => out.extend_from_slice(l),
                Piece::Topic => out.extend_from_slice(topic.as_bytes()),
                Piece::Partition => out.extend_from_slice(partition.to_string().as_bytes()),
                Piece::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
                Piece::Timestamp => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
                Piece::Key => bytes_or_null(out, &r.key),
                Piece::Value => bytes_or_null(out, &r.value),
                Piece::Headers => {
                    for (i, (k, v)) in r.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(k.as_bytes());
                        out.push(b'=');
                        bytes_or_null(out, v);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_client::arus_protocol::Bytes;

    fn record() -> FetchedRecord {
        FetchedRecord {
            offset: 7,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from("k1")),
            value: Some(Bytes::from("hello")),
            headers: vec![("a".into(), Some(Bytes::from("1"))), ("b".into(), None)],
        }
    }

    fn render(fmt: &str, r: &FetchedRecord) -> String {
        let mut out = Vec::new();
        Format::parse(fmt).unwrap().render(&mut out, "t", 3, r);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats() {
        let r = record();
        assert_eq!(render("%v", &r), "hello");
        assert_eq!(
            render("%t/%p@%o %T %k=%v [%h]", &r),
            "t/3@7 1700000000000 k1=hello [a=1,b=null]"
        );
        assert_eq!(render("%k\\t%v\\n--", &r), "k1\thello\n--");
        assert_eq!(render("100%% %v \\\\", &r), "100% hello \\");
        assert_eq!(render("é %v", &r), "é hello");
        let nulls = FetchedRecord::default();
        assert_eq!(render("%k|%v|%h", &nulls), "null|null|");
    }

    #[test]
    fn format_errors() {
        assert!(Format::parse("%x").is_err());
        assert!(Format::parse("abc%").is_err());
        assert!(Format::parse("\\q").is_err());
        assert!(Format::parse("abc\\").is_err());
        assert_eq!(Format::parse("").unwrap(), Format(vec![]));
    }

    #[test]
    fn start_choice() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: ConsumeArgs,
        }
        let parse = |extra: &[&str]| {
            let mut argv = vec!["consume", "--topic", "t"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|c| c.args.start())
        };
        assert_eq!(parse(&[]).unwrap(), Start::End);
        assert_eq!(parse(&["--from-beginning"]).unwrap(), Start::Beginning);
        assert_eq!(parse(&["--offset", "5"]).unwrap(), Start::Offset(5));
        assert_eq!(parse(&["--from-end"]).unwrap(), Start::End);
        assert_eq!(
            parse(&["--from-timestamp", "123"]).unwrap(),
            Start::Timestamp(123)
        );
        assert!(parse(&["--from-beginning", "--offset", "5"]).is_err());
        assert!(parse(&["--from-end", "--from-timestamp", "1"]).is_err());
    }
}
