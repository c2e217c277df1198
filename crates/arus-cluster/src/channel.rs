//! The broker's [`ControllerChannel`] in a cluster: a forwarded request goes to the active
//! controller — a local call when this node leads the quorum, a Kafka request on the
//! leader's CONTROLLER listener otherwise — and is retried, within the request's timeout,
//! while the leadership moves (NOT_CONTROLLER, a dropped connection, no leader yet). The
//! client never hears NOT_CONTROLLER.
//!
//! The metadata offset of a remote answer is the leader's high watermark right after it
//! answered (DescribeQuorum): the controller replies only after committing and applying
//! the change, so that offset includes it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use arus_broker::controller_channel::{BoxFuture, ControllerChannel, ForwardError, Forwarded};
use arus_client::Client;
use arus_protocol::messages::DescribeQuorumRequest;
use arus_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use arus_protocol::{ErrorCode, Request, Response};
use std::sync::Arc;
use tokio::sync::{Mutex, watch};
use tracing::debug;

use crate::controller_driver::{ControllerHandle, ControllerRequestError, Leadership};
use crate::controller_listener::{ControllerService, response_error};
use crate::publisher::MetadataHandle;

/// See the module documentation.
pub struct ClusterChannel {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: i32,
    local: ControllerHandle,
    leadership: watch::Receiver<Leadership>,
    /// Every voter's CONTROLLER listener, `host:port`: from `controller.quorum.voters`, or
    /// learnt from the leader's DescribeQuorum (its v2 `nodes`).
    controllers: std::sync::Mutex<BTreeMap<i32, String>>,
    /// `controller.quorum.bootstrap.servers`: where to ask for the leader when the voters'
    /// ids are not configured.
    bootstrap: Vec<String>,
    /// This node's applied metadata offset (the quorum's applied index).
    applied: watch::Receiver<Option<u64>>,
    /// The offset of the last record batch published to this node's image, and of the
    /// last image the broker has applied (local replicas, view, stores).
    published: MetadataHandle,
    broker_applied: watch::Receiver<i64>,
    clients: Mutex<HashMap<i32, Client>>,
    /// This node's controller listener service, for requests the quorum answers rather than
    /// the controller driver (DescribeQuorum, AddRaftVoter, RemoveRaftVoter) when this node
    /// leads.
    local_service: std::sync::OnceLock<Arc<ControllerService>>,
}

impl ClusterChannel {
    pub fn new(
        node_id: i32,
        local: ControllerHandle,
        leadership: watch::Receiver<Leadership>,
        controllers: BTreeMap<i32, String>,
        applied: watch::Receiver<Option<u64>>,
        published: MetadataHandle,
        broker_applied: watch::Receiver<i64>,
    ) -> ClusterChannel {
        ClusterChannel {
            inner: Arc::new(Inner {
                node_id,
                local,
                leadership,
                controllers: std::sync::Mutex::new(controllers),
                bootstrap: Vec::new(),
                applied,
                published,
                broker_applied,
                clients: Mutex::new(HashMap::new()),
                local_service: std::sync::OnceLock::new(),
            }),
        }
    }
}

impl ClusterChannel {
    /// Adds `controller.quorum.bootstrap.servers` (`host:port`) to ask for the leader.
    pub fn with_bootstrap_servers(mut self, servers: Vec<String>) -> ClusterChannel {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.bootstrap = servers;
        }
        self
    }

    /// Lets this node answer DescribeQuorum itself while it leads the quorum.
    pub fn set_local_service(&self, service: Arc<ControllerService>) {
        let _ = self.inner.local_service.set(service);
    }
}

impl Inner {
    async fn remote(&self, leader: i32, request: Request, version: i16) -> Option<Response> {
        let addr = self.controller_address(leader)?;
        let addr = &addr;
        let mut clients = self.clients.lock().await;
        let client = match clients.entry(leader) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => match Client::connect(addr).await {
                Ok(c) => e.insert(c),
                Err(err) => {
                    debug!(leader, %addr, error = %err, "cannot reach the controller");
                    return None;
                }
            },
        };
        match client.send_with_version(request, version).await {
            Ok(response) => Some(response),
            Err(e) => {
                debug!(leader, error = %e, "controller connection failed");
                clients.remove(&leader);
                None
            }
        }
    }

    async fn remote_high_watermark(&self, leader: i32) -> Option<i64> {
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
        match self.remote(leader, request, 0).await? {
            Response::DescribeQuorum(r) => r
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .filter(|p| p.error_code == 0)
                .map(|p| p.high_watermark),
            _ => None,
        }
    }

    fn controller_address(&self, id: i32) -> Option<String> {
        self.controllers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// The leader as the controllers report it: only the leader answers DescribeQuorum
    /// without an error, and its v2 answer names every voter's endpoint (which a node
    /// configured with `controller.quorum.bootstrap.servers` learns this way).
    async fn discover_leader(&self) -> Option<i32> {
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
        let mut addresses: Vec<String> = self
            .controllers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(id, _)| **id != self.node_id)
            .map(|(_, a)| a.clone())
            .collect();
        for b in &self.bootstrap {
            if !addresses.contains(b) {
                addresses.push(b.clone());
            }
        }
        for addr in addresses {
            let Ok(Ok(mut client)) =
                tokio::time::timeout(Duration::from_secs(1), Client::connect(&addr)).await
            else {
                continue;
            };
            let Ok(Ok(Response::DescribeQuorum(r))) = tokio::time::timeout(
                Duration::from_secs(1),
                client.send_with_version(request.clone(), 2),
            )
            .await
            else {
                continue;
            };
            let Some(p) = r.topics.first().and_then(|t| t.partitions.first()) else {
                continue;
            };
            if p.error_code != 0 || p.leader_id < 0 {
                continue;
            }
            let mut controllers = self.controllers.lock().unwrap_or_else(|e| e.into_inner());
            for node in &r.nodes {
                if let Some(l) = node.listeners.first() {
                    controllers.insert(node.node_id, format!("{}:{}", l.host, l.port));
                }
            }
            controllers.entry(p.leader_id).or_insert(addr);
            return Some(p.leader_id);
        }
        None
    }

    async fn forward(
        &self,
        request: Request,
        version: i16,
        timeout: Duration,
    ) -> Result<Forwarded, ForwardError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut leadership = self.leadership.clone();
        // Set when the leader this node knows of did not answer as the controller.
        let mut stale = false;
        loop {
            let mut leader = leadership.borrow_and_update().leader;
            if leader.is_none() || stale {
                // A broker-only node learns the leader only once the leader has added it
                // as an observer, which needs its registration: ask the controllers.
                leader = self.discover_leader().await.or(leader);
            }
            match leader {
                // Answered by the quorum, not decided by the controller driver.
                Some(id)
                    if id == self.node_id
                        && matches!(
                            request,
                            Request::DescribeQuorum(_)
                                | Request::AddRaftVoter(_)
                                | Request::RemoveRaftVoter(_)
                        )
                        && self.local_service.get().is_some() =>
                {
                    let service = self.local_service.get().expect("checked above");
                    let response =
                        crate::controller_listener::handle(service, request.clone(), version).await;
                    return Ok(Forwarded {
                        response,
                        metadata_offset: -1,
                    });
                }
                Some(id) if id == self.node_id => {
                    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let submitted = tokio::time::timeout(
                        remaining,
                        self.local.submit(request.clone(), version),
                    )
                    .await
                    .map_err(|_| ForwardError::Timeout(timeout))?;
                    match submitted {
                        Ok(reply) => {
                            return Ok(Forwarded {
                                response: reply.response,
                                metadata_offset: reply.metadata_offset,
                            });
                        }
                        Err(ControllerRequestError::NotController { .. }) => {}
                        Err(ControllerRequestError::Unsupported(api)) => {
                            return Err(ForwardError::Protocol(format!(
                                "the controller does not serve {api}"
                            )));
                        }
                    }
                }
                Some(id) => {
                    if let Some(response) = self.remote(id, request.clone(), version).await
                        && response_error(&response) != Some(ErrorCode::NotController)
                    {
                        let offset = match self.remote_high_watermark(id).await {
                            Some(hw) => hw,
                            None => self.applied.borrow().map_or(-1, |a| a as i64),
                        };
                        return Ok(Forwarded {
                            response,
                            metadata_offset: offset,
                        });
                    }
                    stale = true;
                }
                None => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ForwardError::Timeout(timeout));
            }
            let pause = (deadline - now).min(Duration::from_millis(100));
            tokio::select! {
                _ = leadership.changed() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

impl ControllerChannel for ClusterChannel {
    fn forward(
        &self,
        request: Request,
        version: i16,
        timeout: Duration,
    ) -> BoxFuture<Result<Forwarded, ForwardError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.forward(request, version, timeout).await })
    }

    fn await_metadata(&self, offset: i64, timeout: Duration) -> BoxFuture<bool> {
        let inner = self.inner.clone();
        Box::pin(async move {
            if offset < 0 {
                return true;
            }
            let mut applied = inner.applied.clone();
            let mut broker_applied = inner.broker_applied.clone();
            let wait = async {
                // The quorum has applied the offset (every batch up to it is published)...
                applied
                    .wait_for(|a| a.is_some_and(|a| a as i64 >= offset))
                    .await
                    .ok()?;
                // ...and the broker has applied every image published so far.
                let published = inner.published.applied_offset();
                broker_applied.wait_for(|b| *b >= published).await.ok()
            };
            tokio::time::timeout(timeout, wait)
                .await
                .ok()
                .flatten()
                .is_some()
        })
    }
}
