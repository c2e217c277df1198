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
use arus_cluster::publisher::{MetadataHandle, MetadataPublisher};
use arus_cluster::quorum_log::QuorumLog;
use arus_controller::{AcceptAllConfigs, Controller, ControllerConfig};
use arus_protocol::messages::broker_registration_request::Feature;
use arus_protocol::messages::create_topics_request::CreatableTopic;
use arus_protocol::messages::{
    BrokerHeartbeatRequest, BrokerRegistrationRequest, CreateTopicsRequest,
};
use arus_protocol::{Request, Response, Uuid};
use arus_raft::{Quorum, QuorumConfig, RaftSettings, TransportSettings};
use tokio::sync::watch;

struct Node {
    channel: ClusterChannel,
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
        initial_voters: voters.clone(),
        settings: settings(),
        transport: TransportSettings::default(),
    };
    let quorum = Arc::new(Quorum::start(config, publisher).await.unwrap());
    let (stop, stop_rx) = watch::channel(false);
    let log = Arc::new(QuorumLog::new(quorum.clone()));
    let controller = controller_driver::start(
        log.clone(),
        metadata.clone(),
        DriverSettings {
            node_id: id,
            config: ControllerConfig::new("cluster-t", id),
            validator: Arc::new(AcceptAllConfigs),
            // The first controller bootstraps metadata.version, as `arus storage format` would.
            bootstrap: Controller::bootstrap_records(
                &[("metadata.version".to_string(), 33)].into_iter().collect(),
            ),
        },
        stop_rx.clone(),
    );
    // One port for the quorum's RPCs and the Kafka requests to the controller.
    let service = Arc::new(ControllerService {
        node_id: id,
        controller: controller.clone(),
        quorum: quorum.clone(),
        voter_endpoints: BTreeMap::new(),
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
    );
    Node {
        channel,
        id,
        quorum,
        metadata,
        controller,
        _stop: stop,
    }
}

/// Submits to every node until one (the active controller) answers.
async fn submit(nodes: &[&Node], request: Request) -> (Response, i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        for n in nodes {
            match n.controller.submit(request.clone(), 7).await {
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

fn register(id: i32) -> Request {
    Request::BrokerRegistration(BrokerRegistrationRequest {
        broker_id: id,
        cluster_id: "cluster-t".into(),
        incarnation_id: Uuid([id as u8; 16]),
        features: vec![Feature {
            name: "metadata.version".into(),
            min_supported_version: 7,
            max_supported_version: 33,
            ..Default::default()
        }],
        log_dirs: vec![Uuid([0xd0 + id as u8; 16])],
        ..Default::default()
    })
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
    for id in 1..=3 {
        let (response, offset) = submit(&all, register(id)).await;
        let Response::BrokerRegistration(r) = response else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        // A broker whose metadata has caught up is unfenced by its next heartbeat.
        let beat = Request::BrokerHeartbeat(BrokerHeartbeatRequest {
            broker_id: id,
            broker_epoch: r.broker_epoch,
            current_metadata_offset: offset,
            ..Default::default()
        });
        let (response, _) = submit(&all, beat).await;
        let Response::BrokerHeartbeat(h) = response else {
            panic!()
        };
        assert_eq!((h.error_code, h.is_fenced), (0, false));
    }
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
