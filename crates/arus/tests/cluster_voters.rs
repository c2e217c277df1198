//! AddRaftVoter / RemoveRaftVoter (KIP-853) against real `arus serve` processes:
//! - a dynamic quorum (`controller.quorum.bootstrap.servers`, node 1 formatted with
//!   `--standalone`) takes node 2 (formatted with `--no-initial-controllers`) as a voter;
//!   DescribeQuorum then reports both voters with their directory ids and endpoints;
//! - Kafka's refusals: a voter already in the set (DUPLICATE_VOTER), a wrong directory id
//!   and the last voter (VOTER_NOT_FOUND), a static quorum (UNSUPPORTED_VERSION, kraft.version
//!   0);
//! - RemoveRaftVoter takes node 2 out again; node 1 is a combined node, whose broker listener
//!   forwards RemoveRaftVoter to its own controller.

#![allow(clippy::needless_update)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arus_client::Client;
use arus_protocol::messages::add_raft_voter_request::Listener;
use arus_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use arus_protocol::messages::describe_quorum_response::DescribeQuorumResponse;
use arus_protocol::messages::{
    AddRaftVoterRequest, DescribeClusterRequest, DescribeQuorumRequest, RemoveRaftVoterRequest,
};
use arus_protocol::{ErrorCode, Request, Response, Uuid};

struct Controller {
    port: u16,
    data: PathBuf,
    child: Child,
}

impl Controller {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn directory_id(&self) -> Uuid {
        let text = std::fs::read_to_string(self.data.join("meta.properties")).unwrap();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("directory.id="))
            .unwrap();
        Uuid::parse(line.trim()).unwrap()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn arus(args: &[&str]) -> String {
    let out = Command::new(common::binary()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "arus {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A controller-only node `id` on `port`, formatted with `format_flag`, started.
fn controller(
    dir: &Path,
    cluster_id: &str,
    id: i32,
    port: u16,
    quorum: &str,
    format_flag: Option<&str>,
    broker_port: Option<u16>,
) -> Controller {
    let data = dir.join(format!("node-{id}"));
    let config = dir.join(format!("node-{id}.properties"));
    // With a broker port: a combined node (broker,controller).
    let roles = match broker_port {
        Some(b) => format!(
            "process.roles=broker,controller\n\
             listeners=PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{port}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{b}\n\
             inter.broker.listener.name=PLAINTEXT\n"
        ),
        None => format!(
            "process.roles=controller\n\
             listeners=CONTROLLER://127.0.0.1:{port}\n"
        ),
    };
    std::fs::write(
        &config,
        format!(
            "node.id={id}\n{roles}\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             {quorum}\n\
             log.dirs={}\n",
            data.display()
        ),
    )
    .unwrap();
    let mut args = vec![
        "storage",
        "format",
        "-t",
        cluster_id,
        "-c",
        config.to_str().unwrap(),
    ];
    args.extend(format_flag);
    arus(&args);
    let ready = dir.join(format!("node-{id}.ready"));
    let child = Command::new(common::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning arus");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&ready).is_ok_and(|t| t.ends_with('\n')) {
        assert!(Instant::now() < deadline, "node {id} not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    Controller { port, data, child }
}

async fn send(addr: &str, request: Request, version: i16) -> Response {
    let mut c = Client::connect(addr).await.unwrap();
    c.send_with_version(request, version).await.unwrap()
}

async fn describe(addr: &str) -> Option<DescribeQuorumResponse> {
    let request = Request::DescribeQuorum(DescribeQuorumRequest {
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    match send(addr, request, 2).await {
        Response::DescribeQuorum(r) if r.topics[0].partitions[0].error_code == 0 => Some(r),
        _ => None,
    }
}

fn add(cluster_id: &str, c: &Controller, id: i32) -> Request {
    Request::AddRaftVoter(AddRaftVoterRequest {
        cluster_id: Some(cluster_id.into()),
        timeout_ms: 30_000,
        voter_id: id,
        voter_directory_id: c.directory_id(),
        listeners: vec![Listener {
            name: "CONTROLLER".into(),
            host: "127.0.0.1".into(),
            port: c.port,
            ..Default::default()
        }],
        ack_when_committed: true,
        ..Default::default()
    })
}

fn remove(cluster_id: &str, id: i32, directory_id: Uuid) -> Request {
    Request::RemoveRaftVoter(RemoveRaftVoterRequest {
        cluster_id: Some(cluster_id.into()),
        voter_id: id,
        voter_directory_id: directory_id,
        ..Default::default()
    })
}

fn add_error(r: Response) -> (ErrorCode, Option<String>) {
    match r {
        Response::AddRaftVoter(r) => (ErrorCode::from_code(r.error_code).unwrap(), r.error_message),
        other => panic!("{other:?}"),
    }
}

fn remove_error(r: Response) -> (ErrorCode, Option<String>) {
    match r {
        Response::RemoveRaftVoter(r) => {
            (ErrorCode::from_code(r.error_code).unwrap(), r.error_message)
        }
        other => panic!("{other:?}"),
    }
}

async fn wait_leader(addr: &str) -> DescribeQuorumResponse {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = describe(addr).await {
            return r;
        }
        assert!(Instant::now() < deadline, "no leader at {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_quorum_adds_and_removes_a_voter() {
    let dir = tempfile::tempdir().unwrap();
    let cluster_id = arus(&["storage", "random-uuid"]);
    let (p1, p2) = (free_port(), free_port());
    let bootstrap = format!("controller.quorum.bootstrap.servers=127.0.0.1:{p1}");
    let b1 = free_port();
    let first = controller(
        dir.path(),
        &cluster_id,
        1,
        p1,
        &bootstrap,
        Some("--standalone"),
        Some(b1),
    );
    let second = controller(
        dir.path(),
        &cluster_id,
        2,
        p2,
        &bootstrap,
        Some("--no-initial-controllers"),
        None,
    );
    wait_leader(&first.addr()).await;

    let (code, message) = add_error(send(&first.addr(), add(&cluster_id, &second, 2), 1).await);
    assert_eq!((code, message), (ErrorCode::None, None));
    let r = wait_leader(&first.addr()).await;
    let p = &r.topics[0].partitions[0];
    let mut voters: Vec<(i32, Uuid)> = p
        .current_voters
        .iter()
        .map(|v| (v.replica_id, v.replica_directory_id))
        .collect();
    voters.sort_by_key(|v| v.0);
    assert_eq!(
        voters,
        vec![(1, first.directory_id()), (2, second.directory_id())]
    );
    let mut nodes: Vec<(i32, u16)> = r
        .nodes
        .iter()
        .map(|n| (n.node_id, n.listeners[0].port))
        .collect();
    nodes.sort();
    assert_eq!(nodes, vec![(1, p1), (2, p2)]);
    // What `--bootstrap-controller` asks first: the controllers and the active one.
    let describe_cluster = |endpoint_type| {
        Request::DescribeCluster(DescribeClusterRequest {
            endpoint_type,
            ..Default::default()
        })
    };
    match send(&second.addr(), describe_cluster(2), 1).await {
        Response::DescribeCluster(r) => {
            assert_eq!(
                (r.error_code, r.controller_id, r.cluster_id.as_str()),
                (0, 1, cluster_id.as_str())
            );
            let mut controllers: Vec<(i32, i32)> =
                r.brokers.iter().map(|b| (b.broker_id, b.port)).collect();
            controllers.sort();
            assert_eq!(controllers, vec![(1, i32::from(p1)), (2, i32::from(p2))]);
        }
        other => panic!("{other:?}"),
    }
    match send(&first.addr(), describe_cluster(1), 1).await {
        Response::DescribeCluster(r) => {
            assert_eq!(
                ErrorCode::from_code(r.error_code),
                Some(ErrorCode::MismatchedEndpointType)
            )
        }
        other => panic!("{other:?}"),
    }

    // Kafka's refusals.
    let (code, message) = add_error(send(&first.addr(), add(&cluster_id, &second, 2), 1).await);
    assert_eq!(code, ErrorCode::DuplicateVoter, "{message:?}");
    let (code, _) = remove_error(
        send(
            &first.addr(),
            remove(&cluster_id, 2, first.directory_id()),
            0,
        )
        .await,
    );
    assert_eq!(code, ErrorCode::VoterNotFound);
    // The same through node 1's broker listener: forwarded to its own controller, the leader.
    let (code, _) = remove_error(
        send(
            &format!("127.0.0.1:{b1}"),
            remove(&cluster_id, 2, first.directory_id()),
            0,
        )
        .await,
    );
    assert_eq!(code, ErrorCode::VoterNotFound);
    let (code, _) =
        remove_error(send(&first.addr(), remove("other", 2, second.directory_id()), 0).await);
    assert_eq!(code, ErrorCode::InconsistentClusterId);

    // Node 2 leaves; node 1 is then the last voter and cannot.
    let leader = wait_leader(&first.addr()).await.topics[0].partitions[0].leader_id;
    assert_eq!(leader, 1);
    let (code, message) = remove_error(
        send(
            &first.addr(),
            remove(&cluster_id, 2, second.directory_id()),
            0,
        )
        .await,
    );
    assert_eq!((code, message), (ErrorCode::None, None));
    let r = wait_leader(&first.addr()).await;
    let voters: Vec<i32> = r.topics[0].partitions[0]
        .current_voters
        .iter()
        .map(|v| v.replica_id)
        .collect();
    assert_eq!(voters, vec![1]);
    let (code, message) = remove_error(
        send(
            &first.addr(),
            remove(&cluster_id, 1, first.directory_id()),
            0,
        )
        .await,
    );
    assert_eq!(code, ErrorCode::VoterNotFound);
    assert!(
        message
            .unwrap()
            .starts_with("Cannot remove voter ReplicaKey(id=1, directoryId="),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_quorum_refuses_voter_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cluster_id = arus(&["storage", "random-uuid"]);
    let p1 = free_port();
    let voters = format!("controller.quorum.voters=1@127.0.0.1:{p1}");
    let only = controller(dir.path(), &cluster_id, 1, p1, &voters, None, None);
    wait_leader(&only.addr()).await;
    let (code, message) = add_error(send(&only.addr(), add(&cluster_id, &only, 2), 1).await);
    assert_eq!(code, ErrorCode::UnsupportedVersion);
    assert_eq!(
        message.as_deref(),
        Some("Cluster doesn't support adding voter because the kraft.version feature is 0")
    );
    let (code, message) =
        remove_error(send(&only.addr(), remove(&cluster_id, 1, only.directory_id()), 0).await);
    assert_eq!(code, ErrorCode::UnsupportedVersion);
    assert_eq!(
        message.as_deref(),
        Some("Cluster doesn't support removing voter because the kraft.version feature is 0")
    );
}
