//! The simulated network: a `RaftNetworkFactory` whose links drop, delay (and so reorder) and
//! partition messages, under the control of the schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::types::{Node, NodeId, Raft, TypeConfig};

struct NetState {
    rng: StdRng,
    /// Running nodes with the incarnation that runs them.
    nodes: BTreeMap<NodeId, (u64, Raft)>,
    /// Directed links that carry nothing.
    cut: BTreeSet<(NodeId, NodeId)>,
    drop_per_mille: u32,
    max_delay: Duration,
}

/// The network shared by every simulated node.
#[derive(Clone)]
pub struct SimNet {
    state: Arc<Mutex<NetState>>,
}

/// What the network decided for one message.
enum Fate {
    Deliver(Duration),
    Lose(Duration),
}

impl SimNet {
    pub fn new(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(NetState {
                rng: StdRng::seed_from_u64(seed ^ 0x6e65_7477_6f72_6b21),
                nodes: BTreeMap::new(),
                cut: BTreeSet::new(),
                drop_per_mille: 0,
                max_delay: Duration::from_millis(5),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn attach(&self, id: NodeId, incarnation: u64, raft: Raft) {
        self.lock().nodes.insert(id, (incarnation, raft));
    }

    /// Whether `incarnation` of `id` is the one running: a killed process sends nothing, even
    /// if openraft's tasks of it have not noticed the shutdown yet.
    fn is_current(&self, id: NodeId, incarnation: u64) -> bool {
        self.lock()
            .nodes
            .get(&id)
            .is_some_and(|(current, _)| *current == incarnation)
    }

    pub fn detach(&self, id: NodeId) {
        self.lock().nodes.remove(&id);
    }

    pub fn set_quality(&self, drop_per_mille: u32, max_delay: Duration) {
        let mut state = self.lock();
        state.drop_per_mille = drop_per_mille;
        state.max_delay = max_delay;
    }

    /// Cuts every link between `side` and the other nodes, both ways.
    pub fn partition(&self, side: &BTreeSet<NodeId>, all: &[NodeId]) {
        let mut state = self.lock();
        for &a in side {
            for &b in all.iter().filter(|b| !side.contains(b)) {
                state.cut.insert((a, b));
                state.cut.insert((b, a));
            }
        }
    }

    /// Cuts one direction of one link.
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.lock().cut.insert((from, to));
    }

    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    fn fate(&self, from: NodeId, to: NodeId) -> Fate {
        let mut state = self.lock();
        let max = u64::try_from(state.max_delay.as_micros()).unwrap_or(u64::MAX);
        let delay = Duration::from_micros(state.rng.gen_range(0..=max));
        let lost =
            state.cut.contains(&(from, to)) || state.rng.gen_range(0..1000) < state.drop_per_mille;
        if lost {
            Fate::Lose(delay)
        } else {
            Fate::Deliver(delay)
        }
    }

    fn target(&self, to: NodeId) -> Option<Raft> {
        self.lock().nodes.get(&to).map(|(_, raft)| raft.clone())
    }

    /// Carries a request from `from` to `to` and its response back, each leg subject to the
    /// links' fate at the time it is sent.
    async fn call<R, E, F, Fut>(
        &self,
        (from, incarnation): (NodeId, u64),
        to: NodeId,
        ttl: Duration,
        rpc: F,
    ) -> Result<R, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        E: std::error::Error,
        F: FnOnce(Raft) -> Fut,
        Fut: Future<Output = Result<R, RaftError<NodeId, E>>>,
    {
        let unreachable =
            || RPCError::Unreachable(Unreachable::new(&io::Error::other("message lost")));
        if !self.is_current(from, incarnation) {
            tokio::time::sleep(ttl).await;
            return Err(unreachable());
        }
        match self.fate(from, to) {
            Fate::Lose(delay) => {
                // A lost message is noticed by the sender only through its timeout.
                tokio::time::sleep(delay.max(ttl / 2)).await;
                return Err(unreachable());
            }
            Fate::Deliver(delay) => tokio::time::sleep(delay).await,
        }
        let Some(raft) = self.target(to) else {
            return Err(unreachable());
        };
        if !self.is_current(from, incarnation) {
            return Err(unreachable());
        }
        let result = rpc(raft).await;
        match self.fate(to, from) {
            Fate::Lose(delay) => {
                tokio::time::sleep(delay.max(ttl / 2)).await;
                Err(unreachable())
            }
            Fate::Deliver(delay) => {
                tokio::time::sleep(delay).await;
                match result {
                    Ok(response) => Ok(response),
                    Err(RaftError::Fatal(_)) => Err(unreachable()),
                    Err(e) => Err(RPCError::RemoteError(RemoteError::new(to, e))),
                }
            }
        }
    }
}

/// One node's view of the network.
#[derive(Clone)]
pub struct SimNetworkFactory {
    pub from: NodeId,
    pub incarnation: u64,
    pub net: SimNet,
}

pub struct SimConnection {
    from: (NodeId, u64),
    to: NodeId,
    net: SimNet,
}

impl RaftNetworkFactory<TypeConfig> for SimNetworkFactory {
    type Network = SimConnection;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> SimConnection {
        SimConnection {
            from: (self.from, self.incarnation),
            to: target,
            net: self.net.clone(),
        }
    }
}

/// Sends a message through the transport's codec, as the TCP transport would: the simulated
/// cluster then also covers every message's serialization.
fn wire<T: serde::Serialize + serde::de::DeserializeOwned>(message: T) -> T {
    let bytes = crate::transport::rpc::encode(&message).expect("encodable");
    crate::transport::rpc::decode(&bytes, crate::transport::DEFAULT_MAX_FRAME_BYTES)
        .expect("decodable")
}

impl RaftNetwork<TypeConfig> for SimConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.net
            .call(self.from, self.to, option.hard_ttl(), |raft| async move {
                raft.append_entries(wire(rpc)).await.map(wire)
            })
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.net
            .call(self.from, self.to, option.hard_ttl(), |raft| async move {
                raft.install_snapshot(wire(rpc)).await.map(wire)
            })
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.net
            .call(self.from, self.to, option.hard_ttl(), |raft| async move {
                raft.vote(wire(rpc)).await.map(wire)
            })
            .await
    }
}
