//! One node's handle on the metadata quorum.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use openraft::error::{ChangeMembershipError, ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::disk::{Disk, FsDisk};
use crate::error::{QuorumError, TransportError};
use crate::log_store::LogStore;
use crate::member::Member;
use crate::settings::RaftSettings;
use crate::state_machine::{MetadataStateMachine, StateMachineStore};
use crate::transport::{PeerActivity, RaftServer, TcpNetworkFactory, TransportSettings};
use crate::types::{Batch, Node, NodeId, Raft, RaftMetrics};

/// How to start a node of the quorum.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// Kafka's `node.id`.
    pub node_id: NodeId,
    /// Names the cluster in openraft's logs (the Kafka cluster id).
    pub cluster_name: String,
    /// Holds the log segments, the vote and the snapshot (e.g.
    /// `<metadata.log.dir>/__cluster_metadata-0`).
    pub data_dir: PathBuf,
    /// The voters to bootstrap a brand-new quorum with (node id -> its CONTROLLER listener and
    /// directory id): `controller.quorum.voters`, or this node alone for
    /// `kafka-storage format --standalone`, or `--initial-controllers`. Used only when the data
    /// directory holds nothing yet; empty means "wait to be added by the leader".
    pub initial_voters: BTreeMap<NodeId, Member>,
    pub settings: RaftSettings,
    pub transport: TransportSettings,
}

/// Where a voter or observer stands, as the leader sees it (DescribeQuorum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub node_id: NodeId,
    pub address: String,
    /// Kafka's directory id, where the membership records one ([`Member`]).
    pub directory_id: Option<String>,
    /// Index of the last entry known to be replicated to it (Kafka's log end offset).
    pub log_end_index: Option<u64>,
    /// Its last successful fetch (an acknowledged AppendEntries or heartbeat).
    pub last_fetch: Option<SystemTime>,
    /// The last time it had everything the leader had.
    pub last_caught_up: Option<SystemTime>,
}

/// DescribeQuorum's figures, from this node's point of view. Per-replica progress is known
/// only on the leader; elsewhere those fields are `None` (Kafka answers -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub node_id: NodeId,
    pub leader_id: Option<NodeId>,
    /// The current term: Kafka's leader epoch.
    pub term: u64,
    /// The last applied index on this node; on the leader, the committed index once applied
    /// (Kafka's high watermark).
    pub high_watermark: Option<u64>,
    pub voters: Vec<ReplicaStatus>,
    pub observers: Vec<ReplicaStatus>,
}

/// A running member of the metadata quorum.
pub struct Quorum {
    node_id: NodeId,
    raft: Raft,
    log: LogStore,
    applied: watch::Receiver<Option<u64>>,
    activity: PeerActivity,
    server: RaftServer,
    listener: Option<JoinHandle<()>>,
    stopped: bool,
    /// Started on an empty log (and initialized by this start).
    pristine: bool,
}

fn raft_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> QuorumError {
    QuorumError::Raft(Box::new(e))
}

impl Quorum {
    /// Opens the data directory (recovering the log and the last snapshot, which `app`
    /// receives first) and starts the node. A pristine directory with `initial_voters` is
    /// bootstrapped with them.
    pub async fn start<S: MetadataStateMachine>(
        config: QuorumConfig,
        app: S,
    ) -> Result<Self, QuorumError> {
        let disk: Arc<dyn Disk> =
            Arc::new(FsDisk::open(&config.data_dir).map_err(|e| QuorumError::Store(e.into()))?);
        let log = LogStore::open(disk.clone(), config.settings.segment_bytes)?;
        let state_machine = StateMachineStore::open(disk, app)?;
        let applied = state_machine.applied();
        let pristine = log.is_pristine() && applied.borrow().is_none();
        let activity = PeerActivity::default();
        let network = TcpNetworkFactory {
            node_id: config.node_id,
            settings: config.transport.clone(),
            activity: activity.clone(),
            log: log.clone(),
        };
        let raft_config = config.settings.openraft_config(&config.cluster_name)?;
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log.clone(),
            state_machine,
        )
        .await
        .map_err(raft_error)?;
        if pristine && !config.initial_voters.is_empty() {
            let members: BTreeMap<NodeId, Node> = config
                .initial_voters
                .iter()
                .map(|(&id, member)| (id, member.to_node()))
                .collect();
            tracing::info!(node = config.node_id, voters = ?config.initial_voters, "bootstrapping the metadata quorum");
            match raft.initialize(members).await {
                Ok(()) => {}
                // A peer that started earlier already reached this node (it voted or received
                // entries): the quorum exists, nothing to bootstrap.
                Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                    tracing::info!(node = config.node_id, reason = %e, "the metadata quorum is already formed");
                }
                Err(RaftError::APIError(InitializeError::NotInMembers(e))) => {
                    return Err(QuorumError::Config(e.to_string()));
                }
                Err(e) => return Err(raft_error(e)),
            }
        }
        let server = RaftServer::new(raft.clone(), config.transport.max_frame_bytes);
        Ok(Self {
            pristine,
            node_id: config.node_id,
            raft,
            log,
            applied,
            activity,
            server,
            listener: None,
            stopped: false,
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Serves quorum RPCs arriving on `listener` (standalone use and tests).
    pub fn serve(&mut self, listener: TcpListener) {
        if let Some(previous) = self
            .listener
            .replace(self.server.spawn_accept_loop(listener))
        {
            previous.abort();
        }
    }

    /// Serves one connection accepted by the node's CONTROLLER listener.
    pub async fn serve_connection(&self, stream: TcpStream) -> Result<(), TransportError> {
        self.server.serve_connection(stream).await
    }

    /// A server handle that can outlive borrows of `self` (for spawned connection tasks).
    pub fn server(&self) -> RaftServer {
        self.server.clone()
    }

    /// Appends a batch of encoded records and returns its index once it is committed and
    /// applied on this node. Fails with [`QuorumError::NotLeader`] off the leader.
    pub async fn write(&self, records: Vec<Bytes>) -> Result<u64, QuorumError> {
        match self.raft.client_write(Batch(records)).await {
            Ok(response) => Ok(response.log_id.index),
            Err(e) => Err(self.write_error(e)),
        }
    }

    fn write_error(&self, e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> QuorumError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                QuorumError::NotLeader {
                    leader_id: forward.leader_id,
                    leader_address: forward.leader_node.map(|n| n.addr),
                }
            }
            RaftError::Fatal(openraft::error::Fatal::Stopped) => QuorumError::ShutDown,
            RaftError::APIError(ClientWriteError::ChangeMembershipError(
                e @ ChangeMembershipError::InProgress(_),
            )) => QuorumError::MembershipChangeInProgress(e.to_string()),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                QuorumError::InvalidMembershipChange(e.to_string())
            }
            other => raft_error(other),
        }
    }

    fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    /// The current leader and its address, if known.
    pub fn leader(&self) -> Option<(NodeId, Option<String>)> {
        let metrics = self.metrics();
        let leader = metrics.current_leader?;
        let address = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| Member::from_node(n).address);
        Some((leader, address))
    }

    /// Starts an election now instead of after an election timeout. For a quorum whose only
    /// voter is this node (the implicit one-node cluster): after a restart openraft would
    /// otherwise wait a full election timeout before electing the only possible leader.
    /// A no-op on a leader.
    pub async fn elect_now(&self) -> Result<(), QuorumError> {
        // A new quorum's `initialize` has started the first election already; another one
        // now would only bump the term.
        if self.pristine || self.is_leader() {
            return Ok(());
        }
        self.raft.trigger().elect().await.map_err(raft_error)
    }

    pub fn is_leader(&self) -> bool {
        self.metrics().state == ServerState::Leader
    }

    /// The current term (Kafka's leader epoch).
    pub fn term(&self) -> u64 {
        self.metrics().current_term
    }

    /// A watch of the last applied index (`None` before the first entry).
    pub fn applied_index(&self) -> watch::Receiver<Option<u64>> {
        self.applied.clone()
    }

    /// openraft's own metrics, for what [`Quorum::status`] does not cover.
    pub fn raft_metrics(&self) -> watch::Receiver<RaftMetrics> {
        self.raft.metrics()
    }

    /// Resolves, with the reason, once this node's Raft core has stopped on an error (its
    /// log or vote could not be written, or another fatal fault); never on a shutdown.
    /// The node cannot take part in the quorum after that: Kafka halts the process when
    /// its metadata log fails, and the caller is expected to do the same.
    pub fn failed(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut metrics = self.raft.metrics();
        async move {
            loop {
                if let Err(fatal) = &metrics.borrow_and_update().running_state
                    && !matches!(fatal, openraft::error::Fatal::Stopped)
                {
                    return fatal.to_string();
                }
                if metrics.changed().await.is_err() {
                    // The core is gone without a fault being reported: a shutdown.
                    return std::future::pending().await;
                }
            }
        }
    }

    /// The DescribeQuorum view.
    pub fn status(&self) -> QuorumStatus {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership().clone();
        let voter_ids: BTreeSet<NodeId> = membership.voter_ids().collect();
        let replication = metrics.replication.clone();
        let now = SystemTime::now();
        let replica = |id: NodeId, node: &Node| {
            let member = Member::from_node(node);
            if id == self.node_id {
                let leading = metrics.state == ServerState::Leader;
                return ReplicaStatus {
                    node_id: id,
                    address: member.address,
                    directory_id: member.directory_id,
                    log_end_index: metrics.last_log_index,
                    last_fetch: leading.then_some(now),
                    last_caught_up: leading.then_some(now),
                };
            }
            let times = self.activity.get(id);
            let on_leader = replication.is_some();
            ReplicaStatus {
                node_id: id,
                address: member.address,
                directory_id: member.directory_id,
                log_end_index: replication
                    .as_ref()
                    .and_then(|r| r.get(&id).copied().flatten())
                    .map(|l| l.index),
                last_fetch: times.last_ack.filter(|_| on_leader),
                last_caught_up: times.last_caught_up.filter(|_| on_leader),
            }
        };
        let mut voters = Vec::new();
        let mut observers = Vec::new();
        for (&id, node) in membership.nodes() {
            if voter_ids.contains(&id) {
                voters.push(replica(id, node));
            } else {
                observers.push(replica(id, node));
            }
        }
        QuorumStatus {
            node_id: self.node_id,
            leader_id: metrics.current_leader,
            term: metrics.current_term,
            high_watermark: metrics.last_applied.map(|l| l.index),
            voters,
            observers,
        }
    }

    /// Adds a non-voting member that receives the log (a KRaft observer: a broker-only node),
    /// or moves a known one to `address`. Returns once the membership change is committed,
    /// without waiting for it to catch up. Leader only.
    pub async fn add_observer(&self, id: NodeId, address: String) -> Result<(), QuorumError> {
        self.put_learner(id, Member::new(address, None).to_node())
            .await
            .map(|_| ())
    }

    /// Makes `id` a learner at `node` (openraft's `add_learner` leaves a known node's address
    /// as it was, so a known learner is updated with `SetNodes`, which is safe for a
    /// non-voter). Returns the index of the membership entry it is in.
    async fn put_learner(&self, id: NodeId, node: Node) -> Result<u64, QuorumError> {
        let metrics = self.metrics();
        let known = metrics
            .membership_config
            .membership()
            .get_node(&id)
            .cloned();
        let response = match known {
            Some(existing) if existing == node => {
                return Ok(metrics.membership_config.log_id().map_or(0, |l| l.index));
            }
            Some(_) => {
                let change = ChangeMembers::SetNodes(BTreeMap::from([(id, node)]));
                self.raft.change_membership(change, true).await
            }
            None => self.raft.add_learner(id, node, false).await,
        }
        .map_err(|e| self.write_error(e))?;
        Ok(response.log_id.index)
    }

    /// Removes a non-voting member (an observer whose broker was unregistered): the leader
    /// stops sending it the log. Leader only; a voter is refused by openraft.
    pub async fn remove_observer(&self, id: NodeId) -> Result<(), QuorumError> {
        let change = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Adds a voter (KIP-853 AddRaftVoter): it joins as a learner (or is one already, then
    /// recorded at `member`) and must catch up with the leader's log within `catch_up`, then
    /// becomes a voter through a joint-consensus membership change; returns once that is
    /// committed. Leader only.
    pub async fn add_voter(
        &self,
        id: NodeId,
        member: Member,
        catch_up: std::time::Duration,
    ) -> Result<(), QuorumError> {
        let learner_at = self.put_learner(id, member.to_node()).await?;
        let target = self.metrics().last_log_index.unwrap_or(0).max(learner_at);
        let caught_up = self
            .raft
            .wait(Some(catch_up))
            .metrics(
                |m| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten())
                        .is_some_and(|matched| matched.index >= target)
                },
                "the new voter catches up",
            )
            .await;
        if caught_up.is_err() {
            return Err(QuorumError::CatchUpTimeout { node_id: id });
        }
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Removes a voter (KIP-853 RemoveRaftVoter); it stays a learner (Kafka's removed
    /// controller goes on as an observer) until [`Quorum::remove_observer`]. Leader only.
    pub async fn remove_voter(&self, id: NodeId) -> Result<(), QuorumError> {
        let change = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
        self.raft
            .change_membership(change, true)
            .await
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// The number of log entries kept on disk (the rest is covered by the snapshot).
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// Stops the node: openraft's tasks end, the listener stops accepting. Everything
    /// acknowledged is already on disk.
    pub async fn shutdown(mut self) -> Result<(), QuorumError> {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        self.stopped = true;
        self.raft.shutdown().await.map_err(raft_error)
    }
}

impl Drop for Quorum {
    /// Dropping the handle stops the node too (openraft's tasks would otherwise run on);
    /// [`Quorum::shutdown`] does it and waits for the end.
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        if !self.stopped
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let raft = self.raft.clone();
            runtime.spawn(async move {
                let _ = raft.shutdown().await;
            });
        }
    }
}
