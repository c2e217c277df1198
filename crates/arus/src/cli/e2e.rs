//! End-to-end tests of the client commands against an in-process broker on port 0
//! (arguments parsed by clap as on the command line).

use std::collections::BTreeMap;

use arus_broker::{Broker, BrokerConfig};
use arus_client::{Client, partition_for_key};
use clap::{Parser, Subcommand};
use tokio::sync::mpsc;

use super::{consume, group, produce, topic};

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
    #[command(subcommand)]
    Group(group::GroupCommand),
}

struct TestBroker {
    addr: String,
    _dir: tempfile::TempDir,
}

async fn start_broker() -> TestBroker {
    start_broker_with(&[]).await
}

async fn start_broker_with(extra: &[(&str, &str)]) -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    let mut props: BTreeMap<String, String> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
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

async fn group_cmd(addr: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["group"];
    argv.extend_from_slice(args);
    let TestCmd::Group(cmd) = parse(addr, &argv) else {
        unreachable!()
    };
    let mut out = Vec::new();
    group::run_to(cmd, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

/// Joins `group` as its only member (classic protocol, as a consumer would) and, as the
/// leader, assigns it every partition of `topic`. Returns (member id, generation).
async fn join_as_only_member(
    client: &mut Client,
    group: &str,
    topic: &str,
    partitions: i32,
) -> (String, i32) {
    use arus_client::arus_protocol::messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, JoinGroupRequest,
        SyncGroupRequest, consumer_protocol_assignment::TopicPartition,
        join_group_request::JoinGroupRequestProtocol,
        sync_group_request::SyncGroupRequestAssignment,
    };
    use arus_client::arus_protocol::{BytesMut, ErrorCode, Message, Request, Response};

    let mut subscription = BytesMut::new();
    subscription.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolSubscription {
        topics: vec![topic.to_owned()],
        user_data: None,
        owned_partitions: Vec::new(),
        generation_id: -1,
        rack_id: None,
    }
    .encode(&mut subscription, 0)
    .unwrap();
    let mut member_id = String::new();
    let (member_id, generation) = loop {
        let join = JoinGroupRequest {
            group_id: group.to_owned(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            member_id: member_id.clone(),
            group_instance_id: None,
            protocol_type: "consumer".to_owned(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".to_owned(),
                metadata: subscription.clone().freeze(),
            }],
            reason: None,
        };
        let Response::JoinGroup(r) = client.send(Request::JoinGroup(join)).await.unwrap() else {
            panic!("not a JoinGroup response")
        };
        if r.error_code == ErrorCode::MemberIdRequired.code() {
            member_id = r.member_id;
            continue;
        }
        assert_eq!(r.error_code, 0, "JoinGroup");
        assert_eq!(r.leader, r.member_id, "the only member leads");
        break (r.member_id, r.generation_id);
    };
    let mut assignment = BytesMut::new();
    assignment.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolAssignment {
        assigned_partitions: vec![TopicPartition {
            topic: topic.to_owned(),
            partitions: (0..partitions).collect(),
        }],
        user_data: None,
    }
    .encode(&mut assignment, 0)
    .unwrap();
    let sync = SyncGroupRequest {
        group_id: group.to_owned(),
        generation_id: generation,
        member_id: member_id.clone(),
        group_instance_id: None,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        assignments: vec![SyncGroupRequestAssignment {
            member_id: member_id.clone(),
            assignment: assignment.freeze(),
        }],
    };
    let Response::SyncGroup(r) = client.send(Request::SyncGroup(sync)).await.unwrap() else {
        panic!("not a SyncGroup response")
    };
    assert_eq!(r.error_code, 0, "SyncGroup");
    (member_id, generation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_admin() {
    use arus_client::OffsetToCommit;
    use arus_client::arus_protocol::messages::{
        LeaveGroupRequest, leave_group_request::MemberIdentity,
    };
    use arus_client::arus_protocol::{Request, Response};

    let b = start_broker_with(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let a = &b.addr;
    assert_eq!(group_cmd(a, &["list"]).await.unwrap(), "");
    topic_cmd(a, &["create", "orders", "--partitions", "3"])
        .await
        .unwrap();
    // 10 records per partition, created 1000 ms apart from t0 on.
    let t0: i64 = 1_700_000_000_000;
    for p in 0..3 {
        for i in 0..10 {
            let ts = (t0 + 1000 * i).to_string();
            produce_cmd(
                a,
                &[
                    "--topic",
                    "orders",
                    "--partition",
                    &p.to_string(),
                    "--timestamp",
                    &ts,
                ],
                &format!("r{i}\n"),
            )
            .await
            .unwrap();
        }
    }

    // A group that only has committed offsets (as after its consumers stopped).
    let mut client = Client::connect(a).await.unwrap();
    let four: Vec<OffsetToCommit> = (0..3)
        .map(|p| OffsetToCommit {
            topic: "orders".into(),
            partition: p,
            offset: 4,
        })
        .collect();
    client.offset_commit("billing", &four).await.unwrap();
    assert_eq!(group_cmd(a, &["list"]).await.unwrap(), "billing\n");
    let out = group_cmd(a, &["list", "--long"]).await.unwrap();
    assert!(
        out.starts_with("GROUP    STATE  PROTOCOL-TYPE\nbilling  Empty"),
        "{out}"
    );
    assert_eq!(
        group_cmd(a, &["list", "--state", "Stable"]).await.unwrap(),
        ""
    );

    let out = group_cmd(a, &["describe", "billing"]).await.unwrap();
    assert!(out.starts_with("Group 'billing': state Empty, "), "{out}");
    assert!(
        out.ends_with(
            ", 0 members\n\nTOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  MEMBER\n\
        orders  0          4               10              6    -\n\
        orders  1          4               10              6    -\n\
        orders  2          4               10              6    -\n"
        ),
        "{out}"
    );

    // An active member: describe shows it; reset and delete are refused.
    let mut member = Client::connect(a).await.unwrap();
    member.set_client_id("billing-consumer");
    let (member_id, _generation) = join_as_only_member(&mut member, "billing", "orders", 3).await;
    let out = group_cmd(a, &["describe", "billing"]).await.unwrap();
    assert!(
        out.starts_with(
            "Group 'billing': state Stable, protocol type consumer, assignor range, 1 member\n"
        ),
        "{out}"
    );
    assert!(out.contains(&member_id), "{out}");
    assert!(out.contains("billing-consumer"), "{out}");
    assert!(out.contains("orders:0,1,2\n"), "{out}");
    assert!(
        out.contains(&format!(
            "orders  2          4               10              6    {member_id}\n"
        )),
        "{out}"
    );
    let e = group_cmd(
        a,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
        ],
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("can only be reset while it is inactive, but its state is Stable"),
        "{e}"
    );
    let e = group_cmd(a, &["delete", "billing"]).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "group 'billing' still has active members; stop its consumers first"
    );

    let leave = LeaveGroupRequest {
        group_id: "billing".into(),
        // v3+ names members in the batch below only.
        member_id: String::new(),
        members: vec![MemberIdentity {
            member_id: member_id.clone(),
            group_instance_id: None,
            reason: None,
        }],
    };
    let Response::LeaveGroup(r) = member.send(Request::LeaveGroup(leave)).await.unwrap() else {
        panic!("not a LeaveGroup response")
    };
    assert_eq!(r.error_code, 0);

    // Dry run: prints the plan, commits nothing.
    let out = group_cmd(
        a,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
        ],
    )
    .await
    .unwrap();
    assert!(out.starts_with("Dry run: nothing is committed"), "{out}");
    assert!(
        out.contains("billing  orders  1          4               0\n"),
        "{out}"
    );
    let committed =
        |c: Vec<arus_client::CommittedOffset>| c.iter().map(|c| c.offset).collect::<Vec<_>>();
    assert_eq!(
        committed(client.offset_fetch("billing", None).await.unwrap()),
        [4, 4, 4]
    );

    let cases: &[(&[&str], [i64; 3])] = &[
        (&["--to-earliest"], [0, 0, 0]),
        (&["--shift-by", "3"], [3, 3, 3]),
        (&["--shift-by", "-5"], [0, 0, 0]),
        (&["--to-latest"], [10, 10, 10]),
        (&["--to-offset", "99"], [10, 10, 10]),
        (&["--to-offset", "6", "--partition", "1"], [10, 6, 10]),
        (&["--to-datetime", "2023-11-14T22:13:22.5Z"], [3, 3, 3]),
        (&["--to-datetime", &(t0 + 7000).to_string()], [7, 7, 7]),
        (&["--to-datetime", "2030-01-01T00:00:00Z"], [10, 10, 10]),
    ];
    for (args, want) in cases {
        let mut argv = vec!["reset-offsets", "billing", "--topic", "orders"];
        argv.extend_from_slice(args);
        argv.push("--execute");
        let out = group_cmd(a, &argv).await.unwrap();
        assert!(
            out.starts_with("GROUP    TOPIC   PARTITION  CURRENT-OFFSET  NEW-OFFSET\n"),
            "{args:?}: {out}"
        );
        assert_eq!(
            committed(client.offset_fetch("billing", None).await.unwrap()),
            want,
            "{args:?}"
        );
    }
    let e = group_cmd(
        a,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--to-latest",
            "--partition",
            "3",
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "topic 'orders' has no partition 3 (3 partitions)"
    );
    let e = group_cmd(
        a,
        &["reset-offsets", "billing", "--topic", "nope", "--to-latest"],
    )
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "topic 'nope' does not exist");

    assert_eq!(
        group_cmd(a, &["delete", "billing"]).await.unwrap(),
        "Deleted group 'billing'\n"
    );
    assert_eq!(group_cmd(a, &["list"]).await.unwrap(), "");
    let e = group_cmd(a, &["describe", "billing"]).await.unwrap_err();
    assert_eq!(e.to_string(), "group 'billing' does not exist");
    let e = group_cmd(a, &["delete", "billing"]).await.unwrap_err();
    assert_eq!(e.to_string(), "group 'billing' does not exist");
}
