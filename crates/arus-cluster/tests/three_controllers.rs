//! Three quorum members over TCP on 127.0.0.1, each with the metadata publisher and the
//! controller driver: brokers register through whichever node leads, a topic created there
//! reaches every node's image, and after the active controller stops, another is elected
//! and serves the next CreateTopics.

#![allow(clippy::needless_update)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arus_broker::controller_channel::ControllerChannel;
use arus_cluster::channel::ClusterChannel;
use arus_cluster::controller_driver::MetadataLog;
use arus_cluster::controller_driver::{
    self, ControllerHandle, ControllerRequestError, DriverSettings,
};
use arus_cluster::controller_listener::{self, ControllerService};
use arus_cluster::lifecycle::{self, Registration, Standing};
use arus_cluster::publisher::{MetadataHandle, MetadataPublisher};
use arus_cluster::quorum_log::QuorumLog;
use arus_controller::{AcceptAllConfigs, Controller, ControllerConfig};
use arus_protocol::messages::CreateTopicsRequest;
use arus_protocol::messages::create_topics_request::CreatableTopic;
use arus_protocol::{Request, Response, Uuid};
use arus_raft::{Quorum, QuorumConfig, RaftSettings, TransportSettings};
use tokio::sync::watch;

/// `broker.session.timeout.ms` for the test: a stopped broker is fenced after it.
const SESSION_MS: i64 = 1_500;

struct Node {
    channel: Arc<ClusterChannel>,
    id: i32,
    quorum: Arc<Quorum>,
    metadata: MetadataHandle,
    controller: ControllerHandle,
    _stop: watch::Sender<bool>,
}

fn settings() -> RaftSettings {
    RaftSettings {
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(50),
        ..RaftSettings::default()
    }
}

async fn start(
    id: i32,
    listener: tokio::net::TcpListener,
    voters: &BTreeMap<u64, String>,
    dir: &std::path::Path,
) -> Node {
    let (publisher, metadata, _changes) = MetadataPublisher::new(id, "cluster-t");
    let config = QuorumConfig {
        node_id: id as u64,
        cluster_name: "cluster-t".into(),
        data_dir: dir.join(format!("node-{id}")),
        initial_voters: voters
            .iter()
            .map(|(id, a)| (*id, arus_raft::Member::new(a.clone(), None)))
            .collect(),
        settings: settings(),
        transport: TransportSettings::default(),
    };
    let quorum = Arc::new(Quorum::start(config, publisher).await.unwrap());
    let (stop, stop_rx) = watch::channel(false);
    let stop_rx_lifecycle = stop_rx.clone();
    let log = Arc::new(QuorumLog::new(quorum.clone()));
    let controller = controller_driver::start(
        log.clone(),
        metadata.clone(),
        DriverSettings {
            node_id: id,
            config: ControllerConfig {
                session_timeout_ms: SESSION_MS,
                offsets: arus_controller::OffsetUnit::Batch,
                ..ControllerConfig::new("cluster-t", id)
            },
            validator: Arc::new(AcceptAllConfigs),
            // The first controller bootstraps metadata.version, as `arus storage format` would.
            bootstrap: Controller::bootstrap_records(
                &[("metadata.version".to_string(), 33)].into_iter().collect(),
                1,
            ),
            local_replicas: None,
            elections: Default::default(),
        },
        stop_rx.clone(),
    );
    // One port for the quorum's RPCs and the Kafka requests to the controller.
    let service = Arc::new(ControllerService {
        node_id: id,
        controller: controller.clone(),
        quorum: Arc::downgrade(&quorum),
        raft: quorum.server(),
        voter_endpoints: BTreeMap::new(),
        directory_id: Uuid::ZERO,
        voter_directory_ids: BTreeMap::new(),
        cluster_id: "c".into(),
        kraft_version: 0,
        listener_name: "CONTROLLER".into(),
        joining: Arc::new(tokio::sync::watch::channel(Vec::new()).0),
        max_frame_bytes: 1 << 20,
    });
    tokio::spawn(controller_listener::serve(listener, service, stop_rx));
    let controllers = voters
        .iter()
        .map(|(id, addr)| (*id as i32, addr.clone()))
        .collect();
    let channel = ClusterChannel::new(
        id,
        controller.clone(),
        log.leadership(),
        controllers,
        quorum.applied_index(),
        metadata.clone(),
        // No broker here: the image is all there is to apply.
        watch::channel(i64::MAX).1,
    );
    let channel = Arc::new(channel);
    let (standing, _) = watch::channel(Standing {
        broker_epoch: -1,
        fenced: true,
    });
    // No broker applies images here: the quorum's applied index is the applied offset.
    let applied = {
        let mut quorum_applied = quorum.applied_index();
        let (tx, rx) = watch::channel(-1i64);
        tokio::spawn(async move {
            loop {
                let offset = quorum_applied.borrow_and_update().map_or(-1, |a| a as i64);
                tx.send_replace(offset);
                if quorum_applied.changed().await.is_err() {
                    return;
                }
            }
        });
        rx
    };
    tokio::spawn(lifecycle::run(
        channel.clone(),
        Registration {
            node_id: id,
            cluster_id: "cluster-t".into(),
            incarnation_id: Uuid([id as u8; 16]),
            listeners: vec![("PLAINTEXT".into(), "127.0.0.1".into(), 9000 + id as u16, 0)],
            rack: None,
            features: vec![("metadata.version".into(), 7, 33)],
            log_dir_ids: vec![Uuid([0xd0 + id as u8; 16])],
            heartbeat_interval: Duration::from_millis(200),
        },
        applied,
        standing,
        stop_rx_lifecycle,
        Duration::from_secs(2),
    ));
    Node {
        channel,
        id,
        quorum,
        metadata,
        controller,
        _stop: stop,
    }
}

/// Waits until `node`'s image satisfies `check`.
async fn wait_until(node: &Node, check: impl Fn(&arus_metadata::MetadataImage) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check(&node.metadata.image()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Submits to every node until one (the active controller) answers.
async fn submit(nodes: &[&Node], request: Request) -> (Response, i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        for n in nodes {
            match tokio::time::timeout(
                Duration::from_secs(5),
                n.controller.submit(request.clone(), 7),
            )
            .await
            .expect("the controller loop answers")
            {
                Ok(reply) => return (reply.response, reply.metadata_offset),
                Err(ControllerRequestError::NotController { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no active controller"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn create(name: &str, partitions: i32) -> Request {
    Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controllers_commit_create_topics_and_survive_the_active_ones_stop() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3u64 {
        let (l, addr) = arus_raft::transport::bind("127.0.0.1:0").await.unwrap();
        voters.insert(id, addr.to_string());
        listeners.push(l);
    }
    let mut nodes = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        nodes.push(start(i as i32 + 1, l, &voters, dir.path()).await);
    }
    let all: Vec<&Node> = nodes.iter().collect();
    // Every broker registers and is unfenced by its own heartbeats.
    wait_until(&nodes[0], |image| {
        (1..=3).all(|id| image.broker(id).is_some_and(|b| !b.fenced))
    })
    .await;
    let (response, offset) = submit(&all, create("orders", 6)).await;
    let Response::CreateTopics(c) = response else {
        panic!()
    };
    assert_eq!(c.topics[0].error_code, 0, "{:?}", c.topics[0].error_message);
    for n in &nodes {
        tokio::time::timeout(Duration::from_secs(10), n.metadata.caught_up_to(offset))
            .await
            .unwrap();
        let image = n.metadata.image();
        let topic = image.topic("orders").expect("topic on every node");
        assert_eq!(topic.id, c.topics[0].topic_id);
        // Placed over every broker, each partition led by its first replica.
        let replicas: std::collections::BTreeSet<i32> = topic
            .partitions
            .values()
            .flat_map(|p| p.replicas.clone())
            .collect();
        assert_eq!(replicas.len(), 3, "placed over every broker: {replicas:?}");
        assert!(topic.partitions.values().all(|p| p.leader == p.replicas[0]));
    }

    // DescribeQuorum on the leader's CONTROLLER listener, at every version.
    let leader_addr =
        voters[&(nodes.iter().find(|n| n.quorum.is_leader()).unwrap().id as u64)].clone();
    let mut c = arus_client::Client::connect(&leader_addr).await.unwrap();
    for version in 0..=2 {
        let request = Request::DescribeQuorum(arus_protocol::messages::DescribeQuorumRequest {
            topics: vec![
                arus_protocol::messages::describe_quorum_request::TopicData {
                    topic_name: "__cluster_metadata".into(),
                    partitions: vec![
                        arus_protocol::messages::describe_quorum_request::PartitionData {
                            partition_index: 0,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let Response::DescribeQuorum(q) = c.send_with_version(request, version).await.unwrap()
        else {
            panic!()
        };
        let p = &q.topics[0].partitions[0];
        assert_eq!((p.error_code, p.current_voters.len()), (0, 3), "v{version}");
    }

    // Stop the active controller: another node takes over and serves requests.
    let leader = nodes
        .iter()
        .position(|n| n.quorum.is_leader())
        .expect("a leader");
    let stopped = nodes.remove(leader);
    let stopped_id = stopped.id;
    drop(stopped.controller);
    let _ = stopped._stop.send(true);
    // The driver task lets go of the quorum once it has seen the stop.
    let mut quorum = stopped.quorum;
    let quorum = loop {
        match Arc::try_unwrap(quorum) {
            Ok(q) => break q,
            Err(shared) => {
                quorum = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    quorum.shutdown().await.unwrap();
    // Its broker stops heartbeating: fenced within the session timeout, and the partitions
    // it led (one replica each) have no leader until it returns.
    let fenced_in = tokio::time::Instant::now();
    wait_until(&nodes[0], |image| {
        image.broker(stopped_id).is_some_and(|b| b.fenced)
    })
    .await;
    assert!(
        fenced_in.elapsed() < Duration::from_millis(SESSION_MS as u64 * 6),
        "fenced after {:?}",
        fenced_in.elapsed()
    );
    wait_until(&nodes[0], |image| {
        let topic = image.topic("orders").unwrap();
        topic
            .partitions
            .values()
            .all(|p| (p.replicas == vec![stopped_id]) == (p.leader == -1))
    })
    .await;
    let rest: Vec<&Node> = nodes.iter().collect();
    let (response, offset) = submit(&rest, create("payments", 2)).await;
    let Response::CreateTopics(c) = response else {
        panic!()
    };
    assert_eq!(c.topics[0].error_code, 0, "{:?}", c.topics[0].error_message);
    // A node that does not lead forwards over the leader's CONTROLLER listener, and its own
    // image has the change once `await_metadata` says so.
    let follower = nodes
        .iter()
        .find(|n| !n.quorum.is_leader())
        .expect("a follower");
    let forwarded = follower
        .channel
        .forward(create("refunds", 1), 7, Duration::from_secs(20))
        .await
        .unwrap();
    let Response::CreateTopics(c) = forwarded.response else {
        panic!()
    };
    assert_eq!(c.topics[0].error_code, 0, "{:?}", c.topics[0].error_message);
    assert!(
        follower
            .channel
            .await_metadata(forwarded.metadata_offset, Duration::from_secs(10))
            .await
    );
    assert_eq!(
        follower.metadata.image().topic("refunds").map(|t| t.id),
        Some(c.topics[0].topic_id)
    );
    for n in &nodes {
        assert_ne!(n.id, stopped_id);
        tokio::time::timeout(Duration::from_secs(10), n.metadata.caught_up_to(offset))
            .await
            .unwrap();
        assert!(n.metadata.image().topic("payments").is_some());
        assert!(n.metadata.image().topic("orders").is_some());
    }
}
