//! The broker's [`BrokerChannel`] in a cluster: Kafka requests to other brokers on their
//! inter-broker listener (WriteTxnMarkers from the transaction coordinator, AddPartitionsToTxn
//! from a partition leader). One pooled connection per destination broker and lane, one
//! request in flight on it (later ones wait for it: the marker channel batches meanwhile),
//! so the connections are bounded by twice the number of brokers. A connection that fails
//! or times out is dropped and opened again by the next request; one whose broker moved
//! to another address is replaced.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arus_broker::controller_channel::BoxFuture;
use arus_broker::inter_broker::{BrokerChannel, Lane, SendError};
use arus_client::{Client, ClientError};
use arus_protocol::{Request, Response};
use tokio::sync::Mutex;
use tracing::debug;

/// One destination's connection, opened on first use.
type Slot = Arc<Mutex<Option<Client>>>;

/// See the module documentation.
#[derive(Default)]
pub struct PeerChannel {
    slots: std::sync::Mutex<HashMap<(i32, Lane), Slot>>,
}

impl PeerChannel {
    pub fn new() -> PeerChannel {
        PeerChannel::default()
    }

    fn slot(&self, node: i32, lane: Lane) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry((node, lane)).or_default().clone()
    }
}

async fn exchange(
    slot: Slot,
    node: i32,
    addr: String,
    request: Request,
    version: i16,
    timeout: Duration,
) -> Result<Response, SendError> {
    let mut conn = slot.lock().await;
    if conn.as_ref().is_some_and(|c| c.addr() != addr) {
        *conn = None;
    }
    if conn.is_none() {
        let connected = tokio::time::timeout(timeout, Client::connect(&addr))
            .await
            .map_err(|_| SendError::Timeout { node, timeout })?
            .map_err(|e| SendError::Connect {
                node,
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        *conn = Some(connected);
    }
    let client = conn.as_mut().expect("connected above");
    client.set_request_timeout(timeout);
    let api = request.api_key();
    match client.send_with_version(request, version).await {
        Ok(response) if response.api_key() == api => Ok(response),
        Ok(_) => {
            *conn = None;
            Err(SendError::Unexpected { node })
        }
        Err(e) => {
            debug!(node, %addr, error = %e, "inter-broker request failed; reconnecting next time");
            *conn = None;
            Err(match e {
                ClientError::Timeout { .. } => SendError::Timeout { node, timeout },
                other => SendError::Disconnected {
                    node,
                    reason: other.to_string(),
                },
            })
        }
    }
}

impl BrokerChannel for PeerChannel {
    fn send(
        &self,
        lane: Lane,
        node: i32,
        addr: String,
        request: Request,
        version: i16,
        timeout: Duration,
    ) -> BoxFuture<Result<Response, SendError>> {
        let slot = self.slot(node, lane);
        Box::pin(exchange(slot, node, addr, request, version, timeout))
    }
}
