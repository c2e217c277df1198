//! The broker: owns the topic registry and the flusher, and routes each decoded request to
//! its handler.

use std::sync::Arc;
use std::time::Duration;

use arus_protocol::messages::RequestHeader;
use arus_protocol::{ApiKey, Request, Response};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tracing::debug;

use crate::broker_config::{BrokerConfig, Listener};
use crate::flusher::Flusher;
use crate::handlers;
use crate::partition::Partition;
use crate::topics::{TopicError, TopicRegistry};

/// What the connection should do with a request's result.
#[derive(Debug)]
pub enum Outcome {
    Respond(Response),
    /// A response some of whose `records` are to be sent straight from log files
    /// (`sendfile`, see `arus_protocol::splice`): `files[i]` belongs to the i-th `records`
    /// field in encoding order, `None` meaning the field's own value. [`Broker::handle`]
    /// reads the files in instead; connections send them without copying.
    RespondWithFiles {
        response: Response,
        files: Vec<Option<arus_log::FileSlice>>,
    },
    /// `acks=0` produce: Kafka writes no response.
    NoResponse,
    /// Kafka closes the connection (e.g. an `acks=0` produce that failed).
    Close(String),
}

/// The APIs Arus implements, with the version range it serves. The lower bound follows Kafka
/// 4.0 (KIP-896), which dropped the versions that carry message formats v0/v1. The upper
/// bound is the highest version whose semantics Arus implements: a version the codec can
/// decode is not advertised until the broker does what that version promises (a test checks
/// every bound against the codec's range).
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    // ApiVersions advertises Produce from 0 (KAFKA-18659, see
    // `handlers::api_versions::PRODUCE_ADVERTISED_MIN_VERSION`); v0-2 are not served. v12 is
    // v11 plus the implicit AddPartitionsToTxn of transactions v2 (KIP-890 part 2); v13 names
    // topics by id.
    (ApiKey::Produce, 3, 13),
    // v18 adds the follower's high watermark (KIP-1166), which consumers do not send.
    (ApiKey::Fetch, 4, 18),
    // v11: EARLIEST_PENDING_UPLOAD (-6, KIP-1023), -1 without tiered storage.
    (ApiKey::ListOffsets, 1, 11),
    // v13: a top-level ErrorCode, which Kafka's broker always answers 0.
    (ApiKey::Metadata, 0, 13),
    // v5: ClusterId/NodeId check, REBOOTSTRAP_REQUIRED (KIP-1242).
    (ApiKey::ApiVersions, 0, 5),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    // v2: IncludeFencedBrokers / IsFenced (KIP-1073); a single live node is never fenced.
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::FindCoordinator, 0, 6),
    // Kafka 4.0 kept every JoinGroup version (KIP-896 removed none).
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    // OffsetCommit v10 and OffsetFetch v10 name topics by id (KIP-848).
    (ApiKey::OffsetCommit, 2, 10),
    (ApiKey::OffsetFetch, 1, 10),
    // v6: GROUP_ID_NOT_FOUND for a group that does not exist (KIP-1043).
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    // v3: per-group ErrorMessage.
    (ApiKey::DeleteGroups, 0, 3),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    // v1: MemberType (KIP-1099).
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    // v5: transactions v2 (KIP-890 part 2), the epoch bumped on every commit and abort.
    (ApiKey::EndTxn, 0, 5),
    // Sent by a transaction coordinator on another node (its marker channel); the single
    // node serves it too, as Kafka does.
    (ApiKey::WriteTxnMarkers, 1, 2),
    // v5 is v4 plus the implicit AddOffsetsToTxn of transactions v2; v6 names topics by id.
    (ApiKey::TxnOffsetCommit, 0, 6),
    (ApiKey::DescribeTransactions, 0, 0),
    // v2: TransactionalIdPattern (KIP-1152).
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::UpdateFeatures, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeLogDirs, 1, 5),
    // Without an authorizer: SECURITY_DISABLED, as Kafka without `authorizer.class.name`.
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    // KIP-853: forwarded to the active controller in a cluster (Kafka's KafkaApis does the
    // same); the file-backed single node is a static quorum and refuses them.
    (ApiKey::AddRaftVoter, 0, 1),
    (ApiKey::RemoveRaftVoter, 0, 0),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    // KIP-714. Kafka advertises these two only with a telemetry-capable metrics reporter
    // configured; Arus keeps the pushed metrics itself and always serves them.
    (ApiKey::GetTelemetrySubscriptions, 0, 0),
    (ApiKey::PushTelemetry, 0, 0),
    (ApiKey::ListConfigResources, 0, 1),
];

/// The version range served for `key`, or `None` if Arus does not implement it.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

pub struct Broker {
    pub config: Arc<BrokerConfig>,
    pub topics: Arc<TopicRegistry>,
    flusher: Mutex<Flusher>,
    /// Woken on every append so that long-polling fetches re-check their partitions.
    pub(crate) data_arrived: Notify,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: Mutex<crate::fetch_session::FetchSessionCache>,
    advertised: RwLock<Vec<Listener>>,
    /// The classic group coordinator and committed offsets.
    pub groups: Arc<crate::groups::GroupDriver>,
    /// The transaction coordinator and producer ids.
    pub txns: Arc<crate::txn::TxnDriver>,
    /// Finalized feature levels (`transaction.version`, `group.version`, …).
    pub features: Arc<crate::features::live::Features>,
    /// Retention and compaction in the background.
    log_manager: Mutex<Option<crate::log_manager::LogManager>>,
    /// CLIENT_METRICS and GROUP resource configs, durable in the log directory.
    pub resource_configs: crate::resource_configs::ResourceConfigs,
    /// KIP-714 client telemetry: subscriptions per client instance and pushed payloads.
    pub telemetry: Mutex<crate::telemetry::TelemetryState>,
    /// `.lock` of every log directory and of the metadata directory, held from the first
    /// read of a directory to the end of shutdown.
    dir_locks: Mutex<Vec<crate::dir_lock::DirLock>>,
    /// The log directories (JBOD): placement, moves, failures.
    pub log_dirs: Arc<crate::log_dirs::LogDirs>,
    /// Nodes, partition leaders and the controller, as handlers answer clients.
    pub cluster: crate::cluster::ClusterViewHandle,
    /// In a cluster, the way to the active controller (set once after open, see
    /// [`Broker::set_controller_channel`]); unset, this broker decides admin requests itself.
    pub(crate) controller: std::sync::OnceLock<crate::forwarding::ControllerLink>,
    /// In a cluster, the connections to the other brokers (set once after open, see
    /// [`Broker::set_broker_channel`]); unset, there is no other broker.
    pub(crate) peers: std::sync::OnceLock<Arc<dyn crate::inter_broker::BrokerChannel>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot open the log directory: {0}")]
    Open(#[from] TopicError),
    #[error("cannot read the dynamic broker configs: {0}")]
    DynamicConfigs(#[from] crate::dynamic_config::DynamicConfigError),
    #[error("cannot read the resource configs: {0}")]
    ResourceConfigs(#[from] crate::resource_configs::ResourceConfigsError),
    #[error(transparent)]
    DirLock(#[from] crate::dir_lock::DirLockError),
    #[error("cannot read the finalized feature levels: {0}")]
    Features(#[from] crate::features::store::FeatureStoreError),
    #[error(transparent)]
    LogDirs(#[from] crate::log_dirs::LogDirsError),
    #[error("cannot read the producer id reservation: {0}")]
    ProducerIds(#[from] crate::txn::producer_ids::ProducerIdError),
    #[error(
        "{} holds a KRaft metadata log: this directory belongs to the one-node cluster \
         (arus.single.node.quorum=true, the default) or to a cluster node, whose topics the \
         file-backed single node cannot read; start it without arus.single.node.quorum=false",
        .0.display()
    )]
    MetadataLogPresent(std::path::PathBuf),
}

impl Broker {
    /// The file-backed single node (metadata in `arus-metadata.json`, `dynamic-configs.json`,
    /// `resource-configs.json`, `producer-id-block`, `arus-features.json`). Kept for this
    /// crate's in-process tests (and the CLI's), which need a broker without a quorum; the
    /// `arus` binary always runs [`Broker::open_driven`] under `arus_cluster::node::Node`,
    /// which upgrades such files into the metadata log (docs/cluster.md).
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        Self::open_with(config, None)
    }

    /// A broker whose topics the cluster's metadata log drives (see
    /// [`TopicRegistry::open_driven`]): it starts with no topic and leads nothing; the
    /// cluster adapter applies the metadata (`broker.topics.sync`/`apply`/`remove`) and
    /// hands the role changes to [`crate::coordinator_shards::follow_leadership`].
    pub fn open_driven(
        config: BrokerConfig,
        cluster_id: String,
    ) -> Result<Arc<Broker>, BrokerError> {
        Self::open_with(config, Some(cluster_id))
    }

    fn open_with(config: BrokerConfig, driven: Option<String>) -> Result<Arc<Broker>, BrokerError> {
        let config = Arc::new(config);
        let log_dirs = crate::log_dirs::LogDirs::new(&config.log_dirs, &config.log_dir)?;
        let mut dir_locks = Vec::new();
        for d in log_dirs.all() {
            dir_locks.push(crate::dir_lock::DirLock::acquire(&d.path)?);
        }
        if log_dirs
            .all()
            .iter()
            .all(|d| d.path != log_dirs.metadata_dir)
        {
            dir_locks.push(crate::dir_lock::DirLock::acquire(&config.log_dir)?);
        }
        // The file-backed node would find no topic in its own files, set every partition
        // directory aside as a stray and start empty: a directory the metadata log owns is
        // refused instead, before anything in it is touched.
        if driven.is_none() {
            let metadata_log = config.log_dir.join(crate::topics::METADATA_LOG_DIR);
            if metadata_log.exists() {
                return Err(BrokerError::MetadataLogPresent(metadata_log));
            }
        }
        // A corrupt dynamic-configs file stops the start rather than silently running with
        // the static values (and later overwriting the operator's settings).
        config.load_dynamic()?;
        // Before the topic registry: whether the directory is new is decided by the
        // metadata file the registry creates.
        // A broker driven by the metadata takes its levels from the image, not from the
        // single-node release's arus-features.json (which the upgrade carried into the log).
        let features = Arc::new(match driven {
            None => crate::features::live::Features::open(&config.log_dir)?,
            Some(_) => crate::features::live::Features::open_driven(&config.log_dir),
        });
        let topics = Arc::new(match driven {
            None => TopicRegistry::open(config.clone(), log_dirs.clone())?,
            Some(id) => TopicRegistry::open_driven(config.clone(), log_dirs.clone(), id)?,
        });
        let for_flusher = topics.clone();
        let flusher = Flusher::start(
            Duration::from_millis(config.flush_scheduler_interval_ms.max(10)),
            move || {
                for_flusher
                    .all()
                    .iter()
                    .flat_map(|t| t.partitions())
                    // Offline directories are not fsynced again (and not logged every tick).
                    .filter(|p| p.is_online())
                    .collect()
            },
        );
        let advertised = config.advertised(&[]);
        let cluster =
            crate::cluster::ClusterViewHandle::new(crate::cluster::ClusterView::single_node(
                topics.cluster_id(),
                config.node_id,
                &advertised,
            ));
        let fetch_sessions = Mutex::new(crate::fetch_session::FetchSessionCache::from_config(
            &config,
        ));
        let groups = Arc::new(crate::groups::GroupDriver::new(&config));
        let txns = Arc::new(crate::txn::TxnDriver::open(&config)?);
        let resource_configs = crate::resource_configs::ResourceConfigs::open(&config.log_dir)?;
        let telemetry = Mutex::new(crate::telemetry::TelemetryState::new(
            config
                .effective_i64("telemetry.max.bytes", 1_048_576)
                .max(1) as usize,
            config
                .effective_i64("arus.telemetry.retained.bytes", 67_108_864)
                .max(0) as usize,
        ));
        let broker = Arc::new(Broker {
            config,
            topics,
            flusher: Mutex::new(flusher),
            data_arrived: Notify::new(),
            fetch_sessions,
            advertised: RwLock::new(advertised),
            groups,
            txns,
            features,
            log_manager: Mutex::new(None),
            resource_configs,
            telemetry,
            dir_locks: Mutex::new(dir_locks),
            log_dirs,
            cluster,
            controller: std::sync::OnceLock::new(),
            peers: std::sync::OnceLock::new(),
        });
        broker
            .txns
            .set_transaction_version(broker.features.transaction_version());
        handlers::resource_configs::refresh_subscriptions(&broker);
        broker.groups.apply_all_consumer_overrides(&broker);
        broker.groups.start_loading(&broker);
        broker.txns.start_loading(&broker);
        *broker.log_manager.lock() = Some(crate::log_manager::LogManager::start(&broker));
        Ok(broker)
    }

    /// Records the ports actually bound (for listeners configured with port 0).
    pub fn set_bound_ports(&self, ports: &[u16]) {
        let advertised = self.config.advertised(ports);
        // The single-node view names this node's endpoints: it learns the bound ports too. A
        // view installed from elsewhere carries its own endpoints.
        let view = self.cluster.current();
        if view.is_single_node() {
            self.cluster
                .install(crate::cluster::ClusterView::single_node(
                    view.cluster_id(),
                    view.this_node(),
                    &advertised,
                ));
        }
        *self.advertised.write() = advertised;
    }

    pub fn advertised_listener(&self) -> Listener {
        self.advertised.read()[0].clone()
    }

    /// Every advertised listener (the first is the one clients are sent to).
    pub fn advertised_listeners(&self) -> Vec<Listener> {
        self.advertised.read().clone()
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    pub(crate) fn request_flush(&self, partition: Arc<Partition>) {
        self.flusher.lock().request(partition);
    }

    /// Handles one request. The caller has checked that the version is supported.
    /// Fetched records are read into the response (never [`Outcome::RespondWithFiles`]).
    pub async fn handle(self: &Arc<Self>, header: &RequestHeader, request: Request) -> Outcome {
        match self.handle_from(header, request, None).await {
            Outcome::RespondWithFiles {
                response: Response::Fetch(mut r),
                files,
            } => {
                handlers::fetch::read_files_in(&mut r, files);
                Outcome::Respond(Response::Fetch(r))
            }
            other => other,
        }
    }

    /// Like [`Broker::handle`], for a request from `peer` (the client address group
    /// members are described with).
    pub async fn handle_from(
        self: &Arc<Self>,
        header: &RequestHeader,
        request: Request,
        peer: Option<std::net::IpAddr>,
    ) -> Outcome {
        // Kafka reports `InetAddress.toString()` of the client: "/127.0.0.1".
        let client_host = || peer.map(|ip| format!("/{ip}")).unwrap_or_default();
        let version = header.request_api_version;
        // The listener the request came in on: its endpoints are the ones clients are told.
        let listener = crate::cluster::request_listener(self);
        debug!(api = request.api_key().name(), version, client_id = ?header.client_id, "request");
        // In a cluster the controller decides admin requests (docs/cluster.md, step 5).
        let request = match crate::forwarding::forward_if_clustered(self, request, version).await {
            Ok(outcome) => return outcome,
            Err(local) => local,
        };
        match request {
            Request::ApiVersions(r) => {
                let me = handlers::api_versions::Identity {
                    cluster_id: self.topics.cluster_id(),
                    node_id: self.config.node_id,
                };
                Outcome::Respond(Response::ApiVersions(handlers::api_versions::handle(
                    &r,
                    version,
                    &me,
                    &self.features.snapshot(),
                )))
            }
            Request::Metadata(r) => {
                let missing = crate::forwarding::auto_create::for_metadata(self, &r);
                crate::forwarding::auto_create::create(self, missing).await;
                Outcome::Respond(Response::Metadata(handlers::metadata::handle_on_listener(
                    self, r, version, &listener,
                )))
            }
            Request::Produce(r) => handlers::produce::handle(self, r, version, &listener).await,
            Request::Fetch(r) => {
                let (response, files) = handlers::fetch::handle(self, r, version, &listener).await;
                if files.iter().any(Option::is_some) {
                    Outcome::RespondWithFiles {
                        response: Response::Fetch(response),
                        files,
                    }
                } else {
                    Outcome::Respond(Response::Fetch(response))
                }
            }
            Request::ListOffsets(r) => Outcome::Respond(Response::ListOffsets(
                handlers::list_offsets::handle(self, r, version),
            )),
            Request::CreateTopics(r) => Outcome::Respond(Response::CreateTopics(
                handlers::topics_admin::create_topics(self, r, version),
            )),
            Request::DeleteTopics(r) => Outcome::Respond(Response::DeleteTopics(
                handlers::topics_admin::delete_topics(self, r, version),
            )),
            Request::CreatePartitions(r) => Outcome::Respond(Response::CreatePartitions(
                handlers::topics_admin::create_partitions(self, r),
            )),
            Request::DescribeConfigs(r) => Outcome::Respond(Response::DescribeConfigs(
                handlers::configs::describe(self, r, version),
            )),
            Request::AlterConfigs(r) => {
                Outcome::Respond(Response::AlterConfigs(handlers::configs::alter(self, r)))
            }
            Request::IncrementalAlterConfigs(r) => Outcome::Respond(
                Response::IncrementalAlterConfigs(handlers::configs::incremental_alter(self, r)),
            ),
            Request::DescribeCluster(r) => Outcome::Respond(Response::DescribeCluster(
                handlers::cluster::describe_cluster(self, &r, &listener),
            )),
            Request::OffsetForLeaderEpoch(r) => Outcome::Respond(Response::OffsetForLeaderEpoch(
                handlers::offset_for_leader_epoch::handle(self, r),
            )),
            Request::FindCoordinator(r) => {
                let missing =
                    crate::forwarding::auto_create::for_find_coordinator(self, &r, version);
                crate::forwarding::auto_create::create(self, missing).await;
                Outcome::Respond(Response::FindCoordinator(
                    handlers::find_coordinator::handle(self, r, version, &listener),
                ))
            }
            Request::JoinGroup(r) => {
                let client_id = header.client_id.clone().unwrap_or_default();
                Outcome::Respond(Response::JoinGroup(
                    handlers::groups::join_group(self, r, version, &client_id, &client_host())
                        .await,
                ))
            }
            Request::SyncGroup(r) => Outcome::Respond(Response::SyncGroup(
                handlers::groups::sync_group(self, r, version).await,
            )),
            Request::Heartbeat(r) => Outcome::Respond(Response::Heartbeat(
                handlers::groups::heartbeat(self, r, version),
            )),
            Request::LeaveGroup(r) => Outcome::Respond(Response::LeaveGroup(
                handlers::groups::leave_group(self, r, version).await,
            )),
            Request::DescribeGroups(r) => Outcome::Respond(Response::DescribeGroups(
                handlers::groups::describe_groups(self, r, version),
            )),
            Request::ListGroups(r) => Outcome::Respond(Response::ListGroups(
                handlers::groups::list_groups(self, r, version),
            )),
            Request::DeleteGroups(r) => Outcome::Respond(Response::DeleteGroups(
                handlers::groups::delete_groups(self, r).await,
            )),
            Request::OffsetCommit(r) => Outcome::Respond(Response::OffsetCommit(
                handlers::offsets::commit(self, r, version).await,
            )),
            Request::OffsetFetch(r) => Outcome::Respond(Response::OffsetFetch(
                handlers::offsets::fetch(self, r, version),
            )),
            Request::OffsetDelete(r) => Outcome::Respond(Response::OffsetDelete(
                handlers::offsets::delete(self, r).await,
            )),
            Request::ConsumerGroupHeartbeat(r) => {
                let client_id = header.client_id.clone().unwrap_or_default();
                Outcome::Respond(Response::ConsumerGroupHeartbeat(
                    handlers::consumer_groups::heartbeat(
                        self,
                        r,
                        version,
                        &client_id,
                        &client_host(),
                    )
                    .await,
                ))
            }
            Request::ConsumerGroupDescribe(r) => Outcome::Respond(Response::ConsumerGroupDescribe(
                handlers::consumer_groups::describe(self, r),
            )),
            Request::InitProducerId(r) => Outcome::Respond(Response::InitProducerId(
                handlers::transactions::init_producer_id(self, r, version).await,
            )),
            Request::AddPartitionsToTxn(r) => Outcome::Respond(Response::AddPartitionsToTxn(
                handlers::transactions::add_partitions(self, r, version).await,
            )),
            Request::WriteTxnMarkers(r) => Outcome::Respond(Response::WriteTxnMarkers(
                handlers::write_txn_markers::handle(self, r).await,
            )),
            Request::AddOffsetsToTxn(r) => Outcome::Respond(Response::AddOffsetsToTxn(
                handlers::transactions::add_offsets(self, r, version).await,
            )),
            Request::EndTxn(r) => Outcome::Respond(Response::EndTxn(
                handlers::transactions::end_txn(self, r, version).await,
            )),
            Request::TxnOffsetCommit(r) => Outcome::Respond(Response::TxnOffsetCommit(
                handlers::offsets::txn_commit(self, r, version).await,
            )),
            Request::DescribeTransactions(r) => Outcome::Respond(Response::DescribeTransactions(
                handlers::transactions::describe(self, r),
            )),
            Request::ListTransactions(r) => Outcome::Respond(Response::ListTransactions(
                handlers::transactions::list(self, r, version),
            )),
            Request::DeleteRecords(r) => Outcome::Respond(Response::DeleteRecords(
                handlers::delete_records::handle(self, r),
            )),
            Request::UpdateFeatures(r) => Outcome::Respond(Response::UpdateFeatures(
                handlers::features::update(self, r, version),
            )),
            Request::DescribeProducers(r) => Outcome::Respond(Response::DescribeProducers(
                handlers::transactions::describe_producers(self, r),
            )),
            Request::DescribeLogDirs(r) => Outcome::Respond(Response::DescribeLogDirs(
                handlers::log_dirs::describe(self, r),
            )),
            Request::AlterReplicaLogDirs(r) => Outcome::Respond(Response::AlterReplicaLogDirs(
                handlers::log_dirs::alter(self, r),
            )),
            Request::DescribeAcls(r) => match handlers::acls::describe_unparsable(&r) {
                Some(why) => Outcome::Close(why),
                None => Outcome::Respond(Response::DescribeAcls(handlers::acls::describe(&r))),
            },
            Request::CreateAcls(r) => match handlers::acls::create_unparsable(&r) {
                Some(why) => Outcome::Close(why),
                None => Outcome::Respond(Response::CreateAcls(handlers::acls::create(&r))),
            },
            Request::DeleteAcls(r) => match handlers::acls::delete_unparsable(&r) {
                Some(why) => Outcome::Close(why),
                None => Outcome::Respond(Response::DeleteAcls(handlers::acls::delete(&r))),
            },
            Request::ElectLeaders(r) => Outcome::Respond(Response::ElectLeaders(
                handlers::partition_leadership::elect_leaders(self, r),
            )),
            Request::AlterPartitionReassignments(r) => {
                Outcome::Respond(Response::AlterPartitionReassignments(
                    handlers::partition_leadership::alter_reassignments(self, r),
                ))
            }
            Request::ListPartitionReassignments(r) => {
                Outcome::Respond(Response::ListPartitionReassignments(
                    handlers::partition_leadership::list_reassignments(&r),
                ))
            }
            Request::DescribeQuorum(r) => Outcome::Respond(Response::DescribeQuorum(
                handlers::describe_quorum::handle(self, &r, version),
            )),
            Request::AddRaftVoter(_) => Outcome::Respond(Response::AddRaftVoter(
                handlers::raft_voters::add_on_static_quorum(),
            )),
            Request::RemoveRaftVoter(_) => Outcome::Respond(Response::RemoveRaftVoter(
                handlers::raft_voters::remove_on_static_quorum(),
            )),
            Request::DescribeTopicPartitions(r) => {
                Outcome::Respond(Response::DescribeTopicPartitions(
                    handlers::describe_topic_partitions::handle(self, r, &listener),
                ))
            }
            Request::ListConfigResources(r) => Outcome::Respond(Response::ListConfigResources(
                handlers::list_config_resources::handle(self, &r, version),
            )),
            Request::GetTelemetrySubscriptions(r) => {
                let client_id = header.client_id.clone().unwrap_or_default();
                Outcome::Respond(Response::GetTelemetrySubscriptions(
                    handlers::telemetry::get_subscriptions(self, &r, &client_id, peer),
                ))
            }
            Request::PushTelemetry(r) => {
                let client_id = header.client_id.clone().unwrap_or_default();
                Outcome::Respond(Response::PushTelemetry(handlers::telemetry::push(
                    self, &r, &client_id, peer,
                )))
            }
            other => Outcome::Close(format!(
                "{} is not implemented by this broker",
                other.api_key().name()
            )),
        }
    }

    /// Stops the flusher and closes every log cleanly.
    pub fn shutdown(&self) {
        if let Some(m) = self.log_manager.lock().take() {
            m.stop();
        }
        self.groups.stop();
        self.txns.stop();
        self.log_dirs.moves.stop_all();
        self.flusher.lock().stop();
        self.topics.close_all();
        for lock in self.dir_locks.lock().iter_mut() {
            lock.release();
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
