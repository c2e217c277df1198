//! Requests one broker sends to another on the inter-broker listener
//! (`inter.broker.listener.name`), as Kafka's `InterBrokerSendThread`s do:
//!
//! - [`markers`]: the transaction coordinator's WriteTxnMarkers to the leaders of the
//!   partitions of a transaction that are led elsewhere (Kafka's
//!   `TransactionMarkerChannelManager`), batched per destination broker;
//! - [`txn_verification`]: KIP-890's AddPartitionsToTxn v4/v5 from a partition leader to the
//!   transaction coordinator of a transactional produce led elsewhere (Kafka's
//!   `AddPartitionsToTxnManager`).
//!
//! The connections themselves live in `arus-cluster` (the file-backed single node has no
//! other broker to talk to); the broker only sees the [`BrokerChannel`] trait, as it sees the
//! controller through `ControllerChannel`. Everything is bounded: one connection per
//! destination broker and [`Lane`], one request in flight on each (later requests queue and
//! are batched into the next one).

pub mod batch_queue;
pub mod markers;
pub mod txn_verification;

use std::sync::Arc;
use std::time::Duration;

use arus_protocol::{Request, Response};

use crate::Broker;
use crate::controller_channel::BoxFuture;

/// Kafka runs the marker channel and the verification sender on separate network clients:
/// a WriteTxnMarkers that waits for an fsync must not hold back a produce's verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    Markers,
    Verification,
}

/// Why a request to another broker got no answer. Every case is retriable for the sender
/// (Kafka: a disconnection or a timeout of the `NetworkClient`).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to broker {node} at {addr}: {reason}")]
    Connect {
        node: i32,
        addr: String,
        reason: String,
    },
    #[error("the connection to broker {node} failed: {reason}")]
    Disconnected { node: i32, reason: String },
    #[error("broker {node} did not answer within {timeout:?}")]
    Timeout { node: i32, timeout: Duration },
    #[error("broker {node} answered with another API's response")]
    Unexpected { node: i32 },
}

/// See the module documentation.
pub trait BrokerChannel: Send + Sync + 'static {
    /// Sends `request` at `version` to broker `node`, reachable at `addr` (`host:port` on the
    /// inter-broker listener), on `lane`'s connection to it, within `timeout`.
    fn send(
        &self,
        lane: Lane,
        node: i32,
        addr: String,
        request: Request,
        version: i16,
        timeout: Duration,
    ) -> BoxFuture<Result<Response, SendError>>;
}

#[derive(Debug, thiserror::Error)]
#[error("the inter-broker channel is already set")]
pub struct ChannelAlreadySet;

impl Broker {
    /// Installs the way to the other brokers (once, by `arus-cluster` at start-up).
    pub fn set_broker_channel(
        &self,
        channel: Arc<dyn BrokerChannel>,
    ) -> Result<(), ChannelAlreadySet> {
        self.peers.set(channel).map_err(|_| ChannelAlreadySet)
    }

    pub(crate) fn broker_channel(&self) -> Option<&Arc<dyn BrokerChannel>> {
        self.peers.get()
    }

    /// Where broker `node` is reached on the inter-broker listener, if it is alive and has
    /// that listener (Kafka's `metadataCache.getAliveBrokerNode(id, interBrokerListenerName)`).
    pub(crate) fn inter_broker_address(&self, node: i32) -> Option<String> {
        let view = self.cluster.current();
        let e = view.alive_endpoint(node, &self.config.node.inter_broker_listener_name)?;
        Some(format!("{}:{}", e.host, e.port))
    }

    /// How long a request to another broker may take (`request.timeout.ms`, Kafka's
    /// inter-broker client timeout).
    pub(crate) fn inter_broker_timeout(&self) -> Duration {
        Duration::from_millis(
            self.config
                .effective_i64("request.timeout.ms", 30_000)
                .max(1) as u64,
        )
    }
}
