//! A real Kafka 4.4 Java client follows a partition's leadership from one Arus node to
//! another: two brokers in this process (nodes 1 and 2, each serving its own copy of topic
//! `reroute`, same topic id) with cluster views installed by the test. The client is
//! bootstrapped on node 1 only; when the views move the leadership of partition 0 to node 2,
//! its next produce to node 1 is refused with NOT_LEADER_OR_FOLLOWER naming node 2 and its
//! endpoint (KIP-951), and it must deliver to node 2; its consumer, fetching from node 1,
//! must continue on node 2, from where node 2's log diverges from what it read there
//! (KIP-320's truncation detection through OffsetForLeaderEpoch).
//!
//! Needs `java` and Kafka's classpath (`$ARUS_KAFKA_CLASSPATH`, else
//! `compat/work/reference-classpath.txt`, written by `compat/reference/kafka-broker.sh`);
//! skipped with a note without them. It starts a JVM, so it is not part of the default run:
//! `cargo test -p arus --test java_client_reroute -- --ignored`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use arus_broker::cluster::{BrokerNode, ClusterView, Endpoint, PartitionPlacement};
use arus_broker::topics::NewTopic;
use arus_broker::{Broker, BrokerConfig};

const TOPIC: &str = "reroute";

fn open(dir: &Path, node_id: i32) -> Arc<Broker> {
    let props = BTreeMap::from([
        ("log.dirs".to_string(), dir.display().to_string()),
        ("node.id".to_string(), node_id.to_string()),
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
    ]);
    Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Both nodes' view: `leader` leads partition 0 at `epoch`, both are replicas.
fn view(broker: &Broker, ports: [u16; 2], leader: i32, epoch: i32) -> ClusterView {
    let listener = broker.advertised_listener().name;
    let topic_id = broker.topics.get(TOPIC).unwrap().id;
    let node = |id: i32, port: u16| {
        BrokerNode::new(
            id,
            [(
                listener.clone(),
                Endpoint {
                    host: "127.0.0.1".into(),
                    port,
                },
            )],
        )
    };
    ClusterView::new(broker.topics.cluster_id(), broker.node_id(), Some(1))
        .with_broker(node(1, ports[0]))
        .with_broker(node(2, ports[1]))
        .with_partition(
            topic_id,
            0,
            PartitionPlacement {
                leader: Some(leader),
                leader_epoch: epoch,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                ..Default::default()
            },
        )
}

fn classpath() -> Option<String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = std::env::var_os("ARUS_KAFKA_CLASSPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("compat/work/reference-classpath.txt"));
    match std::fs::read_to_string(&file) {
        Ok(cp) => Some(cp.trim().to_string()),
        Err(_) => {
            eprintln!("skipping: no Kafka classpath at {}", file.display());
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a JVM: cargo test -p arus --test java_client_reroute -- --ignored"]
async fn a_java_client_follows_the_leader_to_another_node() {
    let Some(classpath) = classpath() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (dir1, dir2) = (root.path().join("node1"), root.path().join("node2"));
    // The same topic (name and id) on both nodes: created on node 1, then copied.
    let first = open(&dir1, 1);
    first
        .topics
        .create(NewTopic {
            name: TOPIC.into(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
    first.shutdown();
    drop(first);
    copy_dir(&dir1, &dir2);
    let nodes = [open(&dir1, 1), open(&dir2, 2)];
    let mut ports = [0u16; 2];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for (i, broker) in nodes.iter().enumerate() {
        let listeners = arus_server::bind(broker).await.unwrap();
        ports[i] = listeners[0].1.port();
        let mut stop = stop_rx.clone();
        servers.push(tokio::spawn(arus_server::serve(
            broker.clone(),
            listeners,
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )));
    }
    // As the metadata applier does: the view, then the role it gives each node's replica
    // (the data APIs check the replica's own role and epoch, as Kafka's `getLocalLog`).
    let install = |leader: i32, epoch: i32| {
        for (i, broker) in nodes.iter().enumerate() {
            broker.cluster.install(view(broker, ports, leader, epoch));
            let partition = broker.topics.get(TOPIC).unwrap().partition(0).unwrap();
            if i as i32 + 1 == leader {
                partition.become_leader(epoch).unwrap();
            } else {
                partition.become_follower(leader, epoch).unwrap();
            }
        }
    };
    install(1, 1);

    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java/Reroute.java");
    let mut java = match Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg(&source)
        .arg(format!("127.0.0.1:{}", ports[0]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("skipping: cannot run java: {e}");
            return;
        }
    };
    let mut to_java = java.stdin.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = java.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(60), lines.recv())
            .await
            .expect("the Java client answers within a minute")
            .expect("the Java client exited early")
    };
    let mut step = |command: &str| writeln!(to_java, "{command}").unwrap();

    assert_eq!(next().await, "READY");
    // Node 1 leads: the record lands in node 1's log.
    step("produce first");
    assert_eq!(next().await, "SENT 0");
    step("consume 1");
    assert_eq!(next().await, "GOT first");

    // Node 2 takes over at epoch 2. The client still believes node 1 leads.
    install(2, 2);
    step("produce second");
    // Node 2's copy of the log is empty: offset 0 there.
    assert_eq!(next().await, "SENT 0");
    step("produce third");
    assert_eq!(next().await, "SENT 1");
    // The consumer, at offset 1 after `first` (written at epoch 1), validates its position on
    // node 2 (KIP-320): node 2's log starts with epoch 2 at offset 0, so OffsetForLeaderEpoch
    // says epoch 1 ended at 0 there, below the position. The client detects the truncation,
    // resumes at 0 and reads `second`, as it would from Kafka with the same epoch cache.
    step("consume 1");
    assert_eq!(next().await, "GOT second");
    step("quit");
    assert!(java.wait().unwrap().success());

    let log_end = |broker: &Broker| {
        broker
            .topics
            .get(TOPIC)
            .unwrap()
            .partition(0)
            .unwrap()
            .log_end_offset()
    };
    assert_eq!(log_end(&nodes[0]), 1, "only `first` on node 1");
    assert_eq!(log_end(&nodes[1]), 2, "`second` and `third` on node 2");
    stop_tx.send(true).unwrap();
    for server in servers {
        server.await.unwrap();
    }
    for broker in &nodes {
        broker.shutdown();
    }
}
