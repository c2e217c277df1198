//! End-to-end tests of the client commands against an in-process broker on port 0
//! (arguments parsed by clap as on the command line).

use std::collections::BTreeMap;

use arus_broker::{Broker, BrokerConfig};
use arus_client::{Client, partition_for_key};
use clap::{Parser, Subcommand};
use tokio::sync::mpsc;

use super::{consume, produce, topic};

#[derive(Parser)]
struct TestCli {
    #[command(subcommand)]
    cmd: TestCmd,
}

#[derive(Subcommand)]
enum TestCmd {
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    Produce(produce::ProduceArgs),
    Consume(consume::ConsumeArgs),
}

struct TestBroker {
    addr: String,
    _dir: tempfile::TempDir,
}

async fn start_broker() -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    let mut props = BTreeMap::new();
    props.insert("listeners".to_owned(), "PLAINTEXT://127.0.0.1:0".to_owned());
    props.insert("log.dirs".to_owned(), dir.path().display().to_string());
    let config = BrokerConfig::from_properties(props).unwrap();
    let broker = tokio::task::spawn_blocking(move || Broker::open(config))
        .await
        .unwrap()
        .unwrap();
    let listeners = arus_server::bind(&broker).await.unwrap();
    let addr = listeners[0].1.to_string();
    tokio::spawn(arus_server::serve(
        broker,
        listeners,
        std::future::pending(),
    ));
    TestBroker { addr, _dir: dir }
}

fn parse(addr: &str, args: &[&str]) -> TestCmd {
    let mut argv = vec!["arus"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--bootstrap-server", addr]);
    TestCli::try_parse_from(argv).unwrap().cmd
}

async fn topic_cmd(addr: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["topic"];
    argv.extend_from_slice(args);
    let TestCmd::Topic(cmd) = parse(addr, &argv) else {
        unreachable!()
    };
    let mut out = Vec::new();
    topic::run_to(cmd, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

async fn produce_cmd(addr: &str, args: &[&str], input: &str) -> anyhow::Result<String> {
    let mut argv = vec!["produce"];
    argv.extend_from_slice(args);
    let TestCmd::Produce(a) = parse(addr, &argv) else {
        unreachable!()
    };
    // Room for every line: the producer only starts reading once all are queued.
    let (tx, rx) = mpsc::channel(input.len() + 1);
    for line in input.split_inclusive('\n') {
        tx.send(Ok(line.as_bytes().to_vec())).await.unwrap();
    }
    drop(tx);
    produce::produce_lines(&a, rx).await
}

async fn consume_cmd(addr: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["consume"];
    argv.extend_from_slice(args);
    let TestCmd::Consume(a) = parse(addr, &argv) else {
        unreachable!()
    };
    let (out, _) = consume::consume_to(&a, Vec::new()).await?;
    Ok(String::from_utf8(out).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_lifecycle() {
    let b = start_broker().await;
    let a = &b.addr;

    let out = topic_cmd(
        a,
        &[
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=60000",
        ],
    )
    .await
    .unwrap();
    assert!(
        out.starts_with("Created topic 'orders' (3 partitions"),
        "{out}"
    );
    topic_cmd(a, &["create", "audit"]).await.unwrap();
    assert_eq!(topic_cmd(a, &["list"]).await.unwrap(), "audit\norders\n");

    let e = topic_cmd(a, &["create", "orders"]).await.unwrap_err();
    assert!(format!("{e:#}").contains("TOPIC_ALREADY_EXISTS"), "{e:#}");
    let e = topic_cmd(a, &["create", "bad", "--config", "no.such.config=1"])
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("INVALID_CONFIG"), "{e:#}");

    produce_cmd(a, &["--topic", "orders", "--partition", "1"], "x\ny\n")
        .await
        .unwrap();
    let out = topic_cmd(a, &["describe", "orders"]).await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("Topic: orders\tTopicId: "), "{out}");
    assert!(
        lines[0].ends_with("PartitionCount: 3\tReplicationFactor: 1"),
        "{out}"
    );
    assert_eq!(lines[1], "Configs: retention.ms=60000", "{out}");
    assert_eq!(
        lines[3],
        "\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1\tEarliest: 0\tLatest: 2"
    );
    assert_eq!(lines.len(), 5, "{out}");

    let out = topic_cmd(
        a,
        &[
            "alter",
            "orders",
            "--config",
            "segment.bytes=1048576",
            "--delete-config",
            "retention.ms",
            "--partitions",
            "4",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        "Altered topic 'orders': set segment.bytes=1048576, deleted retention.ms, partitions now 4\n"
    );
    let out = topic_cmd(a, &["describe", "orders"]).await.unwrap();
    assert!(out.contains("PartitionCount: 4"), "{out}");
    assert!(out.contains("\nConfigs: segment.bytes=1048576\n"), "{out}");
    assert!(out.contains("\tPartition: 3\t"), "{out}");

    let e = topic_cmd(a, &["alter", "orders"]).await.unwrap_err();
    assert!(e.to_string().starts_with("nothing to alter"), "{e}");

    assert_eq!(
        topic_cmd(a, &["delete", "orders"]).await.unwrap(),
        "Deleted topic 'orders'\n"
    );
    assert_eq!(topic_cmd(a, &["list"]).await.unwrap(), "audit\n");
    for cmd in [
        &["describe", "orders"][..],
        &["delete", "orders"],
        &["alter", "orders", "--config", "retention.ms=1"],
    ] {
        let e = topic_cmd(a, cmd).await.unwrap_err();
        assert_eq!(e.to_string(), "topic 'orders' does not exist", "{cmd:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume() {
    let b = start_broker().await;
    let a = &b.addr;
    topic_cmd(a, &["create", "events", "--partitions", "3"])
        .await
        .unwrap();

    // Keyed records go where Kafka's default partitioner puts them.
    let input = "k1:v1\nk2:v2\nk3:v3\nk1:v4\n:empty-key\nk2:a:b\n";
    let summary = produce_cmd(
        a,
        &[
            "--topic",
            "events",
            "--key-separator",
            ":",
            "--header",
            "h=1",
            "--header",
            "src=test",
            "--compression",
            "zstd",
            "--timestamp",
            "1234",
        ],
        input,
    )
    .await
    .unwrap();
    assert!(
        summary.starts_with("Produced 6 records to topic 'events': partition "),
        "{summary}"
    );

    let out = consume_cmd(
        a,
        &[
            "--topic",
            "events",
            "--from-beginning",
            "--timeout-ms",
            "300",
            "--format",
            "%t|%p|%T|%k|%v|%h",
        ],
    )
    .await
    .unwrap();
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = [
        ("k1", "v1"),
        ("k2", "v2"),
        ("k3", "v3"),
        ("k1", "v4"),
        ("", "empty-key"),
        ("k2", "a:b"),
    ]
    .iter()
    .map(|(k, v)| {
        let p = partition_for_key(k.as_bytes(), 3);
        format!("events|{p}|1234|{k}|{v}|h=1,src=test")
    })
    .collect();
    want.sort();
    assert_eq!(got, want);

    // Unkeyed: round-robin over the partitions.
    let mut client = Client::connect(a).await.unwrap();
    let before: Vec<i64> = {
        let mut v = Vec::new();
        for p in 0..3 {
            v.push(client.list_offset("events", p, -1).await.unwrap().0);
        }
        v
    };
    let summary = produce_cmd(
        a,
        &["--topic", "events", "--acks", "1"],
        "a\nb\nc\nd\ne\nf\n",
    )
    .await
    .unwrap();
    assert!(summary.starts_with("Produced 6 records"), "{summary}");
    for p in 0..3 {
        let latest = client.list_offset("events", p, -1).await.unwrap().0;
        assert_eq!(latest - before[p as usize], 2, "partition {p}");
    }

    // Start positions and limits.
    let out = consume_cmd(
        a,
        &[
            "--topic",
            "events",
            "--partition",
            "0",
            "--from-beginning",
            "--max-messages",
            "1",
            "--format",
            "%o",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, "0\n");
    let out = consume_cmd(
        a,
        &[
            "--topic",
            "events",
            "--partition",
            "0",
            "--offset",
            &before[0].to_string(),
            "--timeout-ms",
            "200",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = consume_cmd(a, &["--topic", "events", "--timeout-ms", "200"])
        .await
        .unwrap();
    assert_eq!(out, "", "--from-end is the default");
    let out = consume_cmd(
        a,
        &[
            "--topic",
            "events",
            "--from-timestamp",
            "1235",
            "--timeout-ms",
            "200",
        ],
    )
    .await
    .unwrap();
    let mut values: Vec<&str> = out.lines().collect();
    values.sort();
    assert_eq!(values, ["a", "b", "c", "d", "e", "f"]);

    // Errors.
    let e = consume_cmd(a, &["--topic", "nope", "--timeout-ms", "100"])
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "topic 'nope' does not exist");
    let e = produce_cmd(a, &["--topic", "nope"], "x\n")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "topic 'nope' does not exist");
    let e = consume_cmd(a, &["--topic", "events", "--partition", "3"])
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "partition 3 does not exist: topic 'events' has 3 partitions"
    );
    let e = consume_cmd(
        a,
        &[
            "--topic",
            "events",
            "--partition",
            "0",
            "--offset",
            "1000",
            "--timeout-ms",
            "100",
        ],
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("offset 1000 is out of range for partition 0"),
        "{e}"
    );
    let e = produce_cmd(
        a,
        &["--topic", "events", "--key-separator", ":"],
        "k:v\nnokey\n",
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().starts_with("line 2 has no key separator ':'"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_input_is_batched() {
    let b = start_broker().await;
    let a = &b.addr;
    topic_cmd(a, &["create", "bulk", "--partitions", "1"])
        .await
        .unwrap();
    let input: String = (0..2500).map(|i| format!("{i}\n")).collect();
    let summary = produce_cmd(a, &["--topic", "bulk", "--compression", "gzip"], &input)
        .await
        .unwrap();
    assert_eq!(
        summary,
        "Produced 2500 records to topic 'bulk': partition 0: 2500 records, offsets 0-2499"
    );
    // 1000-record batches: a fetch from offset 0 with a tiny limit returns one whole batch.
    let mut client = Client::connect(a).await.unwrap();
    let f = client.fetch("bulk", 0, 0, 0, 1).await.unwrap();
    assert_eq!(f.records.len(), 1000);
    assert_eq!(f.next_offset, 1000);
    let out = consume_cmd(
        a,
        &["--topic", "bulk", "--from-beginning", "--timeout-ms", "300"],
    )
    .await
    .unwrap();
    assert_eq!(out, input);
}

#[tokio::test]
async fn unreachable_broker() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let e = topic_cmd(&addr, &["list"]).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot connect to {addr}: connection refused — is `arus serve` running?")
    );
}
