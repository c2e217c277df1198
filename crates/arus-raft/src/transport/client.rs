//! The client side: openraft's `RaftNetworkFactory` over TCP, one connection per peer,
//! re-established after any failure.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use openraft::RPCTypes;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::TransportSettings;
use super::frame::{PREAMBLE, read_frame, write_frame};
use super::rpc::{RpcRequest, RpcResponse, decode, encode};
use crate::error::TransportError;
use crate::log_store::LogStore;
use crate::types::{Node, NodeId, TypeConfig};

/// When the leader last heard from each peer (KRaft's DescribeQuorum fetch and caught-up
/// times): updated by successful AppendEntries answers.
#[derive(Debug, Clone, Default)]
pub struct PeerActivity {
    peers: Arc<Mutex<BTreeMap<NodeId, PeerTimes>>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerTimes {
    /// The last successful AppendEntries (heartbeats included): KRaft's last fetch.
    pub last_ack: Option<SystemTime>,
    /// The last time the peer acknowledged everything the leader had when it sent the request.
    pub last_caught_up: Option<SystemTime>,
}

impl PeerActivity {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<NodeId, PeerTimes>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, peer: NodeId) -> PeerTimes {
        self.lock().get(&peer).copied().unwrap_or_default()
    }

    fn acked(&self, peer: NodeId, caught_up: bool) {
        let now = SystemTime::now();
        let mut peers = self.lock();
        let times = peers.entry(peer).or_default();
        times.last_ack = Some(now);
        if caught_up {
            times.last_caught_up = Some(now);
        }
    }
}

/// Creates a [`TcpConnection`] per peer for openraft.
#[derive(Clone)]
pub struct TcpNetworkFactory {
    pub(crate) node_id: NodeId,
    pub(crate) settings: TransportSettings,
    pub(crate) activity: PeerActivity,
    /// The local log, to tell whether an acknowledged request covered the leader's whole log.
    pub(crate) log: LogStore,
}

/// One peer: its address and the current connection, if any.
pub struct TcpConnection {
    node_id: NodeId,
    target: NodeId,
    address: String,
    stream: Option<TcpStream>,
    settings: TransportSettings,
    activity: PeerActivity,
    log: LogStore,
}

impl RaftNetworkFactory<TypeConfig> for TcpNetworkFactory {
    type Network = TcpConnection;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> TcpConnection {
        TcpConnection {
            node_id: self.node_id,
            target,
            address: crate::member::Member::from_node(node).address,
            stream: None,
            settings: self.settings.clone(),
            activity: self.activity.clone(),
            log: self.log.clone(),
        }
    }
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, Node, RaftError<NodeId, E>>>;

impl TcpConnection {
    async fn connect(&self) -> Result<TcpStream, TransportError> {
        let connect = TcpStream::connect(&self.address);
        let mut stream = tokio::time::timeout(self.settings.connect_timeout, connect)
            .await
            .map_err(|_| TransportError::Timeout(self.settings.connect_timeout))??;
        stream.set_nodelay(true)?;
        stream.write_all(&PREAMBLE).await?;
        Ok(stream)
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<RpcResponse, TransportError> {
        let max = self.settings.max_frame_bytes;
        if self.stream.is_none() {
            self.stream = Some(self.connect().await?);
        }
        let stream = self.stream.as_mut().expect("connected above");
        write_frame(stream, request, max).await?;
        let payload = read_frame(stream, max)
            .await?
            .ok_or(TransportError::Closed)?;
        decode(&payload, max)
    }

    /// Sends one request and waits for its answer within `ttl`. Any failure drops the
    /// connection: the next call reconnects, so a late answer can never be taken for the
    /// answer to a later request.
    async fn call<E: std::error::Error>(
        &mut self,
        action: RPCTypes,
        request: RpcRequest,
        ttl: Duration,
    ) -> RpcResult<RpcResponse, E> {
        let payload = encode(&request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let result = tokio::time::timeout(ttl, self.exchange(&payload)).await;
        let failure = match result {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(e)) => e,
            Err(_) => {
                self.stream = None;
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.node_id,
                    target: self.target,
                    timeout: ttl,
                }));
            }
        };
        self.stream = None;
        tracing::debug!(peer = self.target, address = %self.address, error = %failure, "quorum RPC failed");
        Err(match failure {
            TransportError::Io(_) | TransportError::Closed | TransportError::Timeout(_) => {
                RPCError::Unreachable(Unreachable::new(&failure))
            }
            other => RPCError::Network(NetworkError::new(&other)),
        })
    }

    // The error type is openraft's, fixed by the RaftNetwork trait this feeds.
    #[allow(clippy::result_large_err)]
    fn remote<T, E: std::error::Error>(
        &self,
        result: Result<T, RaftError<NodeId, E>>,
    ) -> RpcResult<T, E> {
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<NodeId, Node, RaftError<NodeId, E>> {
    RPCError::Network(NetworkError::new(&TransportError::UnexpectedResponse))
}

impl RaftNetwork<TypeConfig> for TcpConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        let sent_up_to = rpc
            .entries
            .last()
            .map(|e| e.log_id.index)
            .or(rpc.prev_log_id.map(|p| p.index));
        let leader_end = self.log.last_log_id().map(|l| l.index);
        let request = RpcRequest::AppendEntries(rpc);
        match self
            .call(RPCTypes::AppendEntries, request, option.hard_ttl())
            .await?
        {
            RpcResponse::AppendEntries(result) => {
                let response = self.remote(result)?;
                if matches!(response, AppendEntriesResponse::Success) {
                    self.activity.acked(self.target, sent_up_to >= leader_end);
                }
                Ok(response)
            }
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let request = RpcRequest::InstallSnapshot(rpc);
        match self
            .call(RPCTypes::InstallSnapshot, request, option.hard_ttl())
            .await?
        {
            RpcResponse::InstallSnapshot(result) => self.remote(result),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        match self
            .call(RPCTypes::Vote, RpcRequest::Vote(rpc), option.hard_ttl())
            .await?
        {
            RpcResponse::Vote(result) => self.remote(result),
            _ => Err(unexpected()),
        }
    }
}
