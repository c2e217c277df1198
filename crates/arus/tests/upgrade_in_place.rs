//! Upgrade in place: a data directory written by the previous release (the single-node
//! broker, tag `v0.1.0-single-node`) starts under this code with every topic, topic id,
//! config override, dynamic broker and group config, record, committed offset, transaction
//! state and producer-id block intact.
//!
//! `fixtures/previous-release/single-node.tar.gz` was written by that release's binary and
//! `observed.json` is what that release itself reported about it, captured by the ignored
//! `capture` test below run against the previous binary (`fixtures/previous-release/make.sh`
//! regenerates both). The test compares this build's report with it field by field, so
//! nothing here is a hand-written expectation.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use arus_client::{Client, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use arus_protocol::messages::describe_configs_request::DescribeConfigsResource;
use arus_protocol::messages::*;
use arus_protocol::{Request, Response};
use common::BrokerProcess;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/previous-release"
);

/// Config sources that are state the operator set (Kafka's `ConfigSource` ids): topic,
/// dynamic per-broker, dynamic cluster default, client metrics and group configs.
const SET_BY_OPERATOR: &[i8] = &[1, 2, 3, 7, 8];
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

/// Everything an upgrade must keep, as clients see it. JSON-encoded by hand (no serde in
/// this crate's tests) as a sorted map of strings, so a difference names its key.
type Observation = BTreeMap<String, String>;

async fn describe_configs(client: &mut Client, kind: i8, name: &str, out: &mut Observation) {
    let request = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: kind,
            resource_name: name.to_owned(),
            configuration_keys: None,
        }],
        include_synonyms: false,
        include_documentation: false,
    };
    let Response::DescribeConfigs(r) = client
        .send(Request::DescribeConfigs(request))
        .await
        .unwrap()
    else {
        panic!("DescribeConfigs answered with another response")
    };
    for result in r.results {
        assert_eq!(
            result.error_code, 0,
            "{kind}/{name}: {:?}",
            result.error_message
        );
        for c in result.configs {
            if SET_BY_OPERATOR.contains(&c.config_source) {
                out.insert(
                    format!("config/{kind}/{name}/{}", c.name),
                    format!("{:?} source {}", c.value, c.config_source),
                );
            }
        }
    }
}

async fn observe(addr: &str) -> Observation {
    let mut out = Observation::new();
    let mut client = Client::connect(addr).await.unwrap();

    let Response::DescribeCluster(cluster) = client
        .send(Request::DescribeCluster(DescribeClusterRequest::default()))
        .await
        .unwrap()
    else {
        panic!("DescribeCluster answered with another response")
    };
    out.insert("cluster_id".into(), cluster.cluster_id);

    // v3+ carries the finalized features.
    let Response::ApiVersions(versions) = client
        .send_with_version(
            Request::ApiVersions(ApiVersionsRequest {
                client_software_name: "upgrade-test".into(),
                client_software_version: "1".into(),
                ..Default::default()
            }),
            3,
        )
        .await
        .unwrap()
    else {
        panic!("ApiVersions answered with another response")
    };
    for f in versions.finalized_features {
        out.insert(
            format!("feature/{}", f.name),
            f.max_version_level.to_string(),
        );
    }

    let metadata = client.metadata(None).await.unwrap();
    let mut topics: Vec<_> = metadata.topics.into_iter().collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    for t in topics {
        let name = t.name.clone().unwrap();
        out.insert(format!("topic/{name}/id"), t.topic_id.to_string());
        out.insert(
            format!("topic/{name}/partitions"),
            t.partitions.len().to_string(),
        );
        if name.starts_with("__") {
            // Internal topics' records are the coordinators' own; their effect (offsets,
            // transactions) is observed below.
            continue;
        }
        describe_configs(&mut client, RESOURCE_TOPIC, &name, &mut out).await;
        for p in 0..t.partitions.len() as i32 {
            let key = format!("partition/{name}-{p}");
            let (earliest, _) = client
                .list_offset(&name, p, EARLIEST_TIMESTAMP)
                .await
                .unwrap();
            let (latest, _) = client
                .list_offset(&name, p, LATEST_TIMESTAMP)
                .await
                .unwrap();
            out.insert(format!("{key}/offsets"), format!("{earliest}..{latest}"));
            let fetched = client.fetch(&name, p, 0, 100, 1 << 20).await.unwrap();
            out.insert(
                format!("{key}/watermarks"),
                format!(
                    "hw {} lso {} start {}",
                    fetched.high_watermark, fetched.last_stable_offset, fetched.log_start_offset
                ),
            );
            let records: Vec<String> = fetched
                .records
                .iter()
                .map(|r| {
                    format!(
                        "{}:{}={}",
                        r.offset,
                        String::from_utf8_lossy(r.key.as_deref().unwrap_or(b"-")),
                        String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"-"))
                    )
                })
                .collect();
            out.insert(format!("{key}/records"), records.join(" "));
        }
    }

    describe_configs(&mut client, RESOURCE_BROKER, "", &mut out).await;
    describe_configs(&mut client, RESOURCE_BROKER, "1", &mut out).await;
    describe_configs(&mut client, RESOURCE_GROUP, "fixture-group", &mut out).await;

    for c in client.offset_fetch("fixture-group", None).await.unwrap() {
        out.insert(
            format!("committed/fixture-group/{}-{}", c.topic, c.partition),
            c.offset.to_string(),
        );
    }

    let Response::DescribeTransactions(txns) = client
        .send(Request::DescribeTransactions(DescribeTransactionsRequest {
            transactional_ids: vec!["fixture-txn".into()],
        }))
        .await
        .unwrap()
    else {
        panic!("DescribeTransactions answered with another response")
    };
    for t in txns.transaction_states {
        out.insert(
            format!("transaction/{}", t.transactional_id),
            format!(
                "error {} state {} producer {} epoch {} timeout {}",
                t.error_code,
                t.transaction_state,
                t.producer_id,
                t.producer_epoch,
                t.transaction_timeout_ms
            ),
        );
    }
    out
}

fn encode(o: &Observation) -> String {
    let mut s = String::from("{\n");
    for (i, (k, v)) in o.iter().enumerate() {
        let comma = if i + 1 == o.len() { "" } else { "," };
        s.push_str(&format!("  {}: {}{comma}\n", quote(k), quote(v)));
    }
    s.push_str("}\n");
    s
}

fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Reads what [`encode`] wrote (one `"key": "value"` pair per line).
fn decode(text: &str) -> Observation {
    let mut o = Observation::new();
    for line in text.lines().map(str::trim) {
        if line == "{" || line == "}" || line.is_empty() {
            continue;
        }
        let line = line.strip_suffix(',').unwrap_or(line);
        let (k, v) = split_pair(line);
        o.insert(k, v);
    }
    o
}

fn split_pair(line: &str) -> (String, String) {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    let mut inside = false;
    while let Some(c) = chars.next() {
        match (inside, c) {
            (false, '"') => inside = true,
            (true, '"') => {
                inside = false;
                parts.push(std::mem::take(&mut cur));
            }
            (true, '\\') => cur.push(chars.next().unwrap()),
            (true, c) => cur.push(c),
            _ => {}
        }
    }
    assert_eq!(parts.len(), 2, "malformed observation line {line:?}");
    (parts.remove(0), parts.remove(0))
}

fn unpack(into: &Path) {
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(Path::new(FIXTURE).join("single-node.tar.gz"))
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success(), "unpacking the fixture failed");
}

async fn init_producer_id(addr: &str) -> i64 {
    let mut client = Client::connect(addr).await.unwrap();
    // COORDINATOR_LOAD_IN_PROGRESS is retriable (Kafka answers it while the broker's first
    // producer-id block is on its way from the controller): retried as clients do, bounded.
    for _ in 0..100 {
        let Response::InitProducerId(r) = client
            .send(Request::InitProducerId(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: -1,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            }))
            .await
            .unwrap()
        else {
            panic!("InitProducerId answered with another response")
        };
        if r.error_code != 14 {
            assert_eq!(r.error_code, 0, "InitProducerId: {r:?}");
            return r.producer_id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("InitProducerId still COORDINATOR_LOAD_IN_PROGRESS after 100 tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_release_directory_starts_with_everything_intact() {
    let expected =
        decode(&std::fs::read_to_string(Path::new(FIXTURE).join("observed.json")).unwrap());
    assert!(
        expected.len() > 40 && expected.contains_key("transaction/fixture-txn"),
        "the fixture's observation looks incomplete: {expected:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    unpack(dir.path());
    let data = dir.path().join("data");

    let broker = BrokerProcess::start_in(&data, QUORUM);
    let seen = observe(&broker.addr).await;
    assert_eq!(encode(&seen), encode(&expected), "after the upgrade");
    // The producer-id block the previous release had reserved is never handed out again.
    let txn_pid: i64 = expected["transaction/fixture-txn"]
        .split_whitespace()
        .nth(5)
        .unwrap()
        .parse()
        .unwrap();
    let fresh = init_producer_id(&broker.addr).await;
    assert!(
        fresh > txn_pid,
        "producer id {fresh} reused (transactional producer had {txn_pid})"
    );
    broker.stop();
    // The files' content is in the metadata log now; they are set aside, never read again.
    assert!(
        data.join("__cluster_metadata-0").is_dir(),
        "no metadata log"
    );
    for name in SINGLE_NODE_FILES {
        assert!(!data.join(name).exists(), "{name} is still in place");
    }
    assert!(data.join("arus-metadata.json.migrated").exists());

    // And the upgraded directory is stable under the new code.
    let broker = BrokerProcess::start_in(&data, QUORUM);
    assert_eq!(
        encode(&observe(&broker.addr).await),
        encode(&expected),
        "after a second start"
    );
    let second = init_producer_id(&broker.addr).await;
    assert!(second > fresh);
    broker.stop();
    for name in SINGLE_NODE_FILES {
        assert!(!data.join(name).exists(), "{name} came back");
    }

    // A crash after the upgrade batch was committed but before the files were set aside
    // leaves them beside the metadata log (all of them, or some if it stopped between two
    // renames): the next start must neither write the batch again nor read them.
    for partial in [false, true] {
        for name in SINGLE_NODE_FILES {
            let retired = data.join(format!("{name}.migrated"));
            if retired.exists() && !(partial && *name == "arus-metadata.json") {
                std::fs::rename(&retired, data.join(name)).unwrap();
            }
        }
        let broker = BrokerProcess::start_in(&data, QUORUM);
        assert_eq!(
            encode(&observe(&broker.addr).await),
            encode(&expected),
            "after a crash between the upgrade and setting the files aside (partial: {partial})"
        );
        assert!(init_producer_id(&broker.addr).await > second);
        broker.stop();
        for name in SINGLE_NODE_FILES {
            assert!(!data.join(name).exists(), "{name} not set aside again");
        }
    }
}

/// The one-node cluster on the metadata quorum (the default without `process.roles`;
/// named so the test says what it starts).
const QUORUM: &[&str] = &["arus.single.node.quorum=true"];

/// The single-node release's metadata files (`arus_broker::single_node_files::FILES`).
const SINGLE_NODE_FILES: &[&str] = &[
    "arus-metadata.json",
    "dynamic-configs.json",
    "resource-configs.json",
    "producer-id-block",
    "arus-features.json",
];

/// Writes `observed.json` from the broker binary named by `ARUS_TEST_BINARY` (the previous
/// release) on a copy of the fixture directory; run by `make.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn capture() {
    let out = std::env::var("ARUS_UPGRADE_CAPTURE").expect("ARUS_UPGRADE_CAPTURE=<path>");
    let dir = tempfile::tempdir().unwrap();
    unpack(dir.path());
    let broker = BrokerProcess::start_in(&dir.path().join("data"), &[]);
    let seen = observe(&broker.addr).await;
    broker.stop();
    std::fs::write(out, encode(&seen)).unwrap();
}
