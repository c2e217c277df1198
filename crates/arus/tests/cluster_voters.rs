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

use std::time::{Duration, Instant};

use arus_client::Client;
use arus_protocol::messages::add_raft_voter_request::Listener;
use arus_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use arus_protocol::messages::describe_quorum_response::DescribeQuorumResponse;
use arus_protocol::messages::{
    AddRaftVoterRequest, DescribeClusterRequest, DescribeQuorumRequest, RemoveRaftVoterRequest,
};
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use common::cluster::{Cluster, Format, Node, Quorum, Role};

/// `directory.id` of `node`'s meta.properties.
fn directory_id(node: &Node) -> Uuid {
    Uuid::parse(&node.directory_id()).unwrap()
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

fn add(cluster_id: &str, c: &Node, id: i32) -> Request {
    Request::AddRaftVoter(AddRaftVoterRequest {
        cluster_id: Some(cluster_id.into()),
        timeout_ms: 30_000,
        voter_id: id,
        voter_directory_id: directory_id(c),
        listeners: vec![Listener {
            name: "CONTROLLER".into(),
            host: "127.0.0.1".into(),
            port: c.controller_port.unwrap(),
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
    // Node 1 combined, formatted with --standalone; node 2 controller-only, formatted with
    // --no-initial-controllers; both bootstrap from node 1's controller listener.
    let mut cluster = Cluster::builder(dir.path())
        .nodes(1, Role::Combined, Format::Standalone)
        .nodes(1, Role::Controller, Format::NoInitialControllers)
        .quorum(Quorum::Bootstrap(vec![1]))
        .build();
    for n in &mut cluster.nodes {
        n.start();
        n.wait_ready();
    }
    let cluster_id = cluster.cluster_id.clone();
    let (first, second) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (p1, p2) = (
        first.controller_port.unwrap(),
        second.controller_port.unwrap(),
    );
    wait_leader(&first.controller_addr()).await;

    let (code, message) =
        add_error(send(&first.controller_addr(), add(&cluster_id, second, 2), 1).await);
    assert_eq!((code, message), (ErrorCode::None, None));
    let r = wait_leader(&first.controller_addr()).await;
    let p = &r.topics[0].partitions[0];
    let mut voters: Vec<(i32, Uuid)> = p
        .current_voters
        .iter()
        .map(|v| (v.replica_id, v.replica_directory_id))
        .collect();
    voters.sort_by_key(|v| v.0);
    assert_eq!(
        voters,
        vec![(1, directory_id(first)), (2, directory_id(second))]
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
    match send(&second.controller_addr(), describe_cluster(2), 1).await {
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
    match send(&first.controller_addr(), describe_cluster(1), 1).await {
        Response::DescribeCluster(r) => {
            assert_eq!(
                ErrorCode::from_code(r.error_code),
                Some(ErrorCode::MismatchedEndpointType)
            )
        }
        other => panic!("{other:?}"),
    }

    // Kafka's refusals.
    let (code, message) =
        add_error(send(&first.controller_addr(), add(&cluster_id, second, 2), 1).await);
    assert_eq!(code, ErrorCode::DuplicateVoter, "{message:?}");
    let (code, _) = remove_error(
        send(
            &first.controller_addr(),
            remove(&cluster_id, 2, directory_id(first)),
            0,
        )
        .await,
    );
    assert_eq!(code, ErrorCode::VoterNotFound);
    // The same through node 1's broker listener: forwarded to its own controller, the leader.
    let (code, _) = remove_error(
        send(
            &first.addr(),
            remove(&cluster_id, 2, directory_id(first)),
            0,
        )
        .await,
    );
    assert_eq!(code, ErrorCode::VoterNotFound);
    let (code, _) = remove_error(
        send(
            &first.controller_addr(),
            remove("other", 2, directory_id(second)),
            0,
        )
        .await,
    );
    assert_eq!(code, ErrorCode::InconsistentClusterId);

    // Node 2 leaves; node 1 is then the last voter and cannot.
    let leader = wait_leader(&first.controller_addr()).await.topics[0].partitions[0].leader_id;
    assert_eq!(leader, 1);
    let (code, message) = remove_error(
        send(
            &first.controller_addr(),
            remove(&cluster_id, 2, directory_id(second)),
            0,
        )
        .await,
    );
    assert_eq!((code, message), (ErrorCode::None, None));
    let r = wait_leader(&first.controller_addr()).await;
    let voters: Vec<i32> = r.topics[0].partitions[0]
        .current_voters
        .iter()
        .map(|v| v.replica_id)
        .collect();
    assert_eq!(voters, vec![1]);
    let (code, message) = remove_error(
        send(
            &first.controller_addr(),
            remove(&cluster_id, 1, directory_id(first)),
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
    let cluster = Cluster::builder(dir.path())
        .nodes(1, Role::Controller, Format::Plain)
        .quorum(Quorum::Voters)
        .start();
    let cluster_id = cluster.cluster_id.clone();
    let only = &cluster.nodes[0];
    wait_leader(&only.controller_addr()).await;
    let (code, message) =
        add_error(send(&only.controller_addr(), add(&cluster_id, only, 2), 1).await);
    assert_eq!(code, ErrorCode::UnsupportedVersion);
    assert_eq!(
        message.as_deref(),
        Some("Cluster doesn't support adding voter because the kraft.version feature is 0")
    );
    let (code, message) = remove_error(
        send(
            &only.controller_addr(),
            remove(&cluster_id, 1, directory_id(only)),
            0,
        )
        .await,
    );
    assert_eq!(code, ErrorCode::UnsupportedVersion);
    assert_eq!(
        message.as_deref(),
        Some("Cluster doesn't support removing voter because the kraft.version feature is 0")
    );
}
