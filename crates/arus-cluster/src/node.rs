//! One node of a cluster, started from its configuration (docs/cluster.md, "The join"):
//! the broker opened in metadata-driven mode, the metadata quorum member with the
//! publisher as its state machine, the controller driver and the CONTROLLER listener on a
//! node with the controller role, the channel brokers forward admin requests through, the
//! applier that turns each image into local replicas and views, and the broker lifecycle
//! (registration, heartbeats, controlled shutdown) on a node with the broker role.
//!
//! [`Node::stop`] stops in Kafka's order: the broker asks for controlled shutdown (so its
//! partitions get other leaders before it goes), then the driver, the quorum member and
//! finally the broker's logs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arus_broker::{Broker, BrokerConfig};
use arus_controller::{Controller, ControllerConfig};
use arus_metadata::MetadataRecord;
use arus_node::config::Quorum as QuorumKind;
use arus_protocol::Uuid;
use arus_raft::{Quorum, QuorumConfig, RaftSettings, TransportSettings};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::channel::ClusterChannel;
use crate::controller_driver::{self, DriverSettings, MetadataLog};
use crate::controller_listener::{self, ControllerService};
use crate::lifecycle::{self, Registration, Standing};
use crate::publisher::{MetadataHandle, MetadataPublisher};
use crate::quorum_log::QuorumLog;
use crate::validator::BrokerConfigValidator;

/// The Raft log's directory inside the metadata directory (Kafka's name for its
/// metadata log partition).
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("the node has no identity: its directories were not checked (meta.properties)")]
    NoIdentity,
    #[error("cannot open the broker: {0}")]
    Broker(#[from] arus_broker::broker::BrokerError),
    #[error("cannot start the metadata quorum: {0}")]
    Quorum(#[from] arus_raft::QuorumError),
    #[error("cannot read the bootstrap metadata: {0}")]
    Bootstrap(String),
    /// A client or CONTROLLER listener cannot be bound (most often: the port is taken).
    #[error(transparent)]
    Listen(#[from] arus_server::ServerError),
    #[error("cannot read the single-node release's files: {0}")]
    Upgrade(#[from] arus_broker::single_node_files::SingleNodeFilesError),
    #[error("cannot join the cluster: {0}")]
    Channel(#[from] arus_broker::forwarding::SetChannelError),
    #[error("the broker task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A running node. See the module documentation.
pub struct Node {
    pub broker: Arc<Broker>,
    pub metadata: MetadataHandle,
    quorum: Arc<Quorum>,
    stop: watch::Sender<bool>,
    /// Stops the broker lifecycle first (controlled shutdown), while this node's
    /// controller still runs: as Kafka's `KafkaRaftServer` stops the broker before the
    /// controller, so the only controller of a one-node cluster can still answer.
    broker_stop: watch::Sender<bool>,
    lifecycle: Option<JoinHandle<()>>,
    standing: watch::Receiver<Standing>,
    /// The metadata offset the broker has applied (partitions, configs, views).
    broker_applied: watch::Receiver<i64>,
    /// The replica fetchers (`None` on a controller-only node).
    fetchers: Option<Arc<crate::replica_fetcher::ReplicaFetchers>>,
}

/// Listeners bound for the node: the broker ones (served by `arus-server`) and the
/// controller ones (served here).
pub struct Bound {
    pub broker: Vec<(TcpListener, SocketAddr)>,
    pub controller: Vec<(TcpListener, SocketAddr)>,
}

fn controller_config(config: &BrokerConfig, cluster_id: &str) -> ControllerConfig {
    let min_isr = config
        .topic_default("min.insync.replicas")
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or(1);
    let unclean = config
        .topic_default("unclean.leader.election.enable")
        .is_some_and(|(v, _)| v == "true");
    ControllerConfig {
        session_timeout_ms: config.node.timeouts.broker_session_timeout_ms,
        default_num_partitions: config.num_partitions,
        default_replication_factor: config.default_replication_factor,
        default_min_insync_replicas: min_isr,
        unclean_leader_election_enable: unclean,
        own_broker_in_process: config.node.is_implicit(),
        offsets: arus_controller::OffsetUnit::Batch,
        ..ControllerConfig::new(cluster_id, config.node.node_id)
    }
}

/// The controller's periodic elections from Kafka's keys (static: read at start-up, as
/// Kafka's controller reads them).
fn periodic_elections(config: &BrokerConfig) -> crate::controller_driver::PeriodicElections {
    let secs = config
        .effective_i64("leader.imbalance.check.interval.seconds", 300)
        .max(1);
    crate::controller_driver::PeriodicElections {
        preferred_every: config
            .effective_bool("auto.leader.rebalance.enable", true)
            .then(|| Duration::from_secs(secs as u64)),
        unclean_every: Duration::from_millis(
            config
                .effective_i64("unclean.leader.election.interval.ms", 300_000)
                .max(1) as u64,
        ),
    }
}

/// The first batch of a new metadata log: the features `arus storage format` chose (or
/// this release's defaults), and the content of a single-node release's directory if this
/// is one (upgrade in place).
fn bootstrap_records(config: &BrokerConfig) -> Result<Vec<MetadataRecord>, NodeError> {
    let min_isr = config
        .topic_default("min.insync.replicas")
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or(1);
    if let Some(old) = arus_broker::single_node_files::read(&config.log_dir)? {
        info!(
            topics = old.topics.len(),
            "carrying the single-node release's metadata into the metadata log"
        );
        let mut records = Controller::bootstrap_records(
            &old.features.levels.clone().into_iter().collect(),
            min_isr,
        );
        records.extend(
            crate::upgrade::bootstrap_records(&old, config.node.node_id)
                .into_iter()
                // The features are in the bootstrap records already.
                .filter(|r| !matches!(r, MetadataRecord::FeatureLevel(_))),
        );
        return Ok(records);
    }
    let levels: BTreeMap<String, i16> =
        match arus_node::storage::read_bootstrap(&config.log_dir).map_err(NodeError::Bootstrap)? {
            Some(b) => b
                .features
                .into_iter()
                .filter(|(name, _)| name != "kraft.version")
                .collect(),
            None => arus_broker::features::Finalized::fresh().levels,
        };
    Ok(Controller::bootstrap_records(&levels, min_isr))
}

/// The quorum's voters: id → `host:port` of its CONTROLLER listener. The implicit one-node
/// cluster has none (`own` is then its first advertised broker listener): its only voter is
/// itself, which openraft never dials, so the address is only what DescribeQuorum shows.
fn voters(
    config: &BrokerConfig,
    bound_controller: Option<SocketAddr>,
    own: Option<String>,
) -> BTreeMap<u64, String> {
    match &config.node.quorum {
        QuorumKind::Static(voters) => voters
            .iter()
            .map(|v| {
                (
                    v.id as u64,
                    format!("{}:{}", v.address.host, v.address.port),
                )
            })
            .collect(),
        QuorumKind::Implicit => bound_controller
            .map(|a| a.to_string())
            .or(own)
            .map(|a| (config.node.node_id as u64, a))
            .into_iter()
            .collect(),
        QuorumKind::Bootstrap(_) => match arus_node::storage::read_bootstrap(&config.log_dir) {
            Ok(Some(b)) => b
                .initial_controllers
                .iter()
                .map(|c| (c.id as u64, c.address.to_string()))
                .collect(),
            _ => BTreeMap::new(),
        },
    }
}

impl Node {
    /// Opens the broker and binds every listener (so the ports are known before anything
    /// is registered).
    pub async fn open(config: BrokerConfig) -> Result<(Arc<Broker>, Bound), NodeError> {
        let identity = config.identity.clone().ok_or(NodeError::NoIdentity)?;
        let controller_names = config.node.controller_listener_names.clone();
        let broker = tokio::task::spawn_blocking(move || {
            Broker::open_driven(config, identity.cluster_id.clone())
        })
        .await??;
        let all = arus_server::bind(&broker).await?;
        let names: Vec<String> = broker
            .config
            .listeners
            .iter()
            .map(|l| l.name.clone())
            .collect();
        let mut bound = Bound {
            broker: Vec::new(),
            controller: Vec::new(),
        };
        for (i, l) in all.into_iter().enumerate() {
            if names.get(i).is_some_and(|n| controller_names.contains(n)) {
                bound.controller.push(l);
            } else {
                bound.broker.push(l);
            }
        }
        Ok((broker, bound))
    }

    /// Starts the node's cluster parts around `broker`; `controller` are the bound
    /// CONTROLLER listeners (empty on a broker-only node).
    pub async fn start(
        broker: Arc<Broker>,
        controller: Vec<(TcpListener, SocketAddr)>,
    ) -> Result<Node, NodeError> {
        let config = broker.config.clone();
        let identity = config.identity.clone().ok_or(NodeError::NoIdentity)?;
        let node_id = config.node.node_id;
        let first_controller = controller.first().map(|(_, a)| *a);
        // (A controller-only node advertises no broker listener.)
        let own = broker.advertised_listeners().into_iter().next();
        let voters = voters(
            &config,
            first_controller,
            own.as_ref().map(|l| format!("{}:{}", l.host, l.port)),
        );
        let (publisher, metadata, published) =
            MetadataPublisher::new(node_id, &identity.cluster_id);
        let timeouts = &config.node.timeouts;
        let quorum = Quorum::start(
            QuorumConfig {
                node_id: node_id as u64,
                cluster_name: identity.cluster_id.clone(),
                data_dir: config.log_dir.join(METADATA_LOG_DIR),
                // A broker-only node waits to be added as an observer by the leader.
                initial_voters: if config.node.is_controller() {
                    crate::quorum_config::initial_members(
                        &voters,
                        &crate::quorum_config::initial_controller_directory_ids(&config),
                    )
                } else {
                    BTreeMap::new()
                },
                settings: RaftSettings::from_kafka(
                    timeouts.election_timeout_ms.max(10) as u64,
                    timeouts.fetch_timeout_ms.max(10) as u64,
                ),
                transport: TransportSettings::default(),
            },
            publisher,
        )
        .await?;
        let mut quorum = quorum;
        let observer_endpoint = if config.node.is_controller() {
            None
        } else {
            let (listener, endpoint) =
                crate::observers::bind_listener(&broker)
                    .await
                    .map_err(|e| {
                        NodeError::Bootstrap(format!("cannot bind the observer listener: {e}"))
                    })?;
            info!(port = endpoint.2, "metadata quorum observer listener");
            quorum.serve(listener);
            Some(endpoint)
        };
        if config.node.is_implicit() {
            // The only voter: no one else can hold an election, so none needs waiting for
            // (openraft would wait an election timeout after a restart).
            quorum.elect_now().await?;
        }
        // As Kafka's `ProcessTerminatingFaultHandler` for the metadata log: a node whose
        // quorum storage failed halts (through the broker's fatal path, without a clean
        // shutdown) instead of serving on with metadata it can no longer change or follow.
        {
            let failed = quorum.failed();
            let dirs = broker.log_dirs.clone();
            tokio::spawn(async move {
                let reason = failed.await;
                dirs.metadata_failed(&format!("the metadata quorum stopped: {reason}"));
            });
        }
        let quorum = Arc::new(quorum);
        let log = Arc::new(QuorumLog::new(quorum.clone()));
        let (stop, stop_rx) = watch::channel(false);
        let driver = controller_driver::start(
            log.clone(),
            metadata.clone(),
            DriverSettings {
                node_id,
                config: controller_config(&config, &identity.cluster_id),
                validator: Arc::new(BrokerConfigValidator {
                    config: config.clone(),
                }),
                bootstrap: if config.node.is_controller() {
                    bootstrap_records(&config)?
                } else {
                    Vec::new()
                },
                local_replicas: config.node.is_broker().then(|| {
                    Arc::new(crate::local_replicas::BrokerReplicas(broker.clone()))
                        as Arc<dyn crate::local_replicas::LocalReplicas>
                }),
                elections: periodic_elections(&config),
            },
            stop_rx.clone(),
        );
        if config.node.is_controller() && crate::upgrade::has_single_node_files(&config.log_dir) {
            tokio::spawn(crate::upgrade::retire_once_committed(
                metadata.clone(),
                config.log_dir.clone(),
            ));
        }
        let mut local_service = None;
        if config.node.is_controller() {
            // The listener the voters' addresses are on: the CONTROLLER listener, or, on the
            // implicit node (none), its first broker listener. Kafka's admin client refuses
            // a DescribeQuorum node whose listener has an empty name.
            let quorum_listener = config
                .node
                .controller_listener_names
                .first()
                .cloned()
                .or_else(|| own.as_ref().map(|l| l.name.clone()))
                .unwrap_or_default();
            let endpoints: BTreeMap<i32, (String, String, u16)> = voters
                .iter()
                .filter_map(|(id, addr)| {
                    let (host, port) = addr.rsplit_once(':')?;
                    let name = quorum_listener.clone();
                    Some((*id as i32, (name, host.to_string(), port.parse().ok()?)))
                })
                .collect();
            let service = Arc::new(ControllerService {
                node_id,
                controller: driver.clone(),
                quorum: Arc::downgrade(&quorum),
                raft: quorum.server(),
                voter_endpoints: endpoints,
                directory_id: identity.directory_id(&config.log_dir),
                voter_directory_ids: crate::quorum_config::initial_controller_directory_ids(
                    &config,
                ),
                cluster_id: identity.cluster_id.clone(),
                kraft_version: crate::quorum_config::kraft_version(&config),
                listener_name: quorum_listener,
                joining: Arc::new(watch::channel(Vec::new()).0),
                max_frame_bytes: config.socket_request_max_bytes.max(1 << 20),
            });
            local_service = Some(service.clone());
            tokio::spawn(crate::observers::run(
                Arc::downgrade(&quorum),
                metadata.clone(),
                service.joining.subscribe(),
                stop_rx.clone(),
            ));
            for (listener, addr) in controller {
                info!(%addr, "controller listener");
                tokio::spawn(controller_listener::serve(
                    listener,
                    service.clone(),
                    stop_rx.clone(),
                ));
            }
        }
        let (broker_applied_tx, broker_applied) = watch::channel(-1i64);
        // Heartbeats report the image's offset, as Kafka's report its metadata loader's:
        // the broker applies nothing to its replicas before the controller says that
        // offset caught up (see `applier::run`).
        let lifecycle_applied = metadata.offsets();
        let node_applied = broker_applied.clone();
        let channel = Arc::new(
            ClusterChannel::new(
                node_id,
                driver,
                log.leadership(),
                voters
                    .iter()
                    .map(|(id, a)| (*id as i32, a.clone()))
                    .collect(),
                quorum.applied_index(),
                metadata.clone(),
                broker_applied,
            )
            .with_bootstrap_servers(crate::quorum_config::bootstrap_servers(&config)),
        );
        if let Some(service) = local_service {
            channel.set_local_service(service);
        }
        broker.set_controller_channel(channel.clone())?;
        // WriteTxnMarkers and AddPartitionsToTxn to the other brokers.
        broker
            .set_broker_channel(Arc::new(crate::peer_channel::PeerChannel::new()))
            .map_err(|e| NodeError::Bootstrap(e.to_string()))?;
        let (standing_tx, standing) = watch::channel(Standing {
            broker_epoch: -1,
            fenced: true,
        });
        // The follower side of replication: a controller-only node has no replicas.
        let fetchers = config.node.is_broker().then(|| {
            crate::replica_fetcher::ReplicaFetchers::new(broker.clone(), node_id, standing.clone())
        });
        tokio::spawn(crate::applier::run(
            broker.clone(),
            node_id,
            published,
            log.leadership(),
            standing.clone(),
            broker_applied_tx,
            fetchers.clone(),
        ));
        let (broker_stop, broker_stop_rx) = watch::channel(false);
        tokio::spawn(crate::leader_replicas::shrink_isr_periodically(
            broker.clone(),
            broker_stop_rx.clone(),
        ));
        let lifecycle = if config.node.is_broker() {
            let registration = Registration {
                node_id,
                cluster_id: identity.cluster_id.clone(),
                incarnation_id: Uuid(*uuid::Uuid::new_v4().as_bytes()),
                listeners: broker
                    .advertised_listeners()
                    .into_iter()
                    .map(|l| (l.name, l.host, l.port, 0))
                    .chain(observer_endpoint)
                    .collect(),
                rack: config.node.rack.clone(),
                features: arus_broker::features::SUPPORTED
                    .iter()
                    .map(|f| (f.name.to_string(), f.min, f.max))
                    .collect(),
                log_dir_ids: config
                    .log_dirs
                    .iter()
                    .map(|d| identity.directory_id(d))
                    .filter(|id| *id != Uuid::ZERO)
                    .collect(),
                heartbeat_interval: Duration::from_millis(
                    timeouts.broker_heartbeat_interval_ms.max(10) as u64,
                ),
            };
            // The broker epoch reaches the producer-id blocks' requests.
            let mut epochs = standing_tx.subscribe();
            let for_epochs = broker.clone();
            tokio::spawn(async move {
                while epochs.changed().await.is_ok() {
                    let epoch = epochs.borrow().broker_epoch;
                    for_epochs.set_broker_epoch(epoch);
                }
            });
            Some(tokio::spawn(lifecycle::run(
                channel,
                registration,
                lifecycle_applied,
                standing_tx,
                broker_stop_rx,
                // Controlled shutdown waits at most this long for the controller (a cluster being
                // stopped whole has none for its last nodes).
                Duration::from_millis(timeouts.broker_session_timeout_ms.clamp(1000, 5000) as u64),
            )))
        } else {
            None
        };
        Ok(Node {
            broker,
            metadata,
            quorum,
            stop,
            broker_stop,
            lifecycle,
            standing,
            broker_applied: node_applied,
            fetchers,
        })
    }

    /// The broker's standing with the controller (epoch, fenced).
    pub fn standing(&self) -> watch::Receiver<Standing> {
        self.standing.clone()
    }

    /// Waits until the broker has applied everything this node's image holds now. Called
    /// once unfenced: the unfencing batch also elects this broker leader of the partitions
    /// it had to give up at its last shutdown, and clients should find them led.
    pub async fn broker_caught_up(&self) {
        let target = self.metadata.applied_offset();
        let mut applied = self.broker_applied.clone();
        // An error means the applier is gone (shutdown): nothing more to wait for.
        let _ = applied.wait_for(|a| *a >= target).await;
    }

    /// Whether this node leads the metadata quorum (is the active controller).
    pub fn is_active_controller(&self) -> bool {
        self.quorum.is_leader()
    }

    /// Stops the node: controlled shutdown, then the controller, the quorum member and the
    /// broker's logs.
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.broker_stop.send(true);
        if let Some(lifecycle) = self.lifecycle {
            let _ = lifecycle.await;
        }
        let _ = self.stop.send(true);
        // No follower writes once the logs close.
        if let Some(fetchers) = &self.fetchers {
            fetchers.shutdown().await;
        }
        let mut quorum = self.quorum;
        // Tasks holding the quorum (driver, listener, applier) see the stop and let go.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let quorum = loop {
            match Arc::try_unwrap(quorum) {
                Ok(q) => break Some(q),
                Err(shared) if tokio::time::Instant::now() < deadline => {
                    quorum = shared;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(_) => break None,
            }
        };
        match quorum {
            Some(q) => {
                if let Err(e) = q.shutdown().await {
                    warn!(error = %e, "the metadata quorum did not stop cleanly");
                }
            }
            None => warn!("the metadata quorum is still in use; leaving it to the process exit"),
        }
        let broker = self.broker;
        tokio::task::spawn_blocking(move || broker.shutdown()).await?;
        Ok(())
    }
}

/// The metadata log used by this node (for tests and tools).
pub fn metadata_log(node: &Node) -> Arc<dyn MetadataLog> {
    Arc::new(QuorumLog::new(node.quorum.clone()))
}
