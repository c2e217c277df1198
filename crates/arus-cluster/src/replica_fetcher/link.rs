//! One fetcher's connection to its source broker, on the inter-broker listener (Kafka's
//! `RemoteLeaderEndPoint` over a `BlockingSend`): opened on first use, dropped on any
//! error and opened again by the next request (after the fetcher's backoff), re-resolved
//! from the cluster view each time so a leader that moved to another address is followed.

use std::sync::Arc;

use arus_broker::Broker;
use arus_client::{Client, ClientError};
use arus_protocol::messages::FetchRequest;
use arus_protocol::{Request, Response};
use tracing::debug;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("broker {source_id} has no endpoint on listener {listener} in the cluster view")]
    NoEndpoint { source_id: i32, listener: String },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("broker {source_id} answered another API")]
    Unexpected { source_id: i32 },
}

pub struct LeaderLink {
    broker: Arc<Broker>,
    source: i32,
    listener: String,
    client: Option<Client>,
}

impl LeaderLink {
    pub fn new(broker: Arc<Broker>, source: i32, listener: String) -> LeaderLink {
        LeaderLink {
            broker,
            source,
            listener,
            client: None,
        }
    }

    fn endpoint(&self) -> Result<String, LinkError> {
        let view = self.broker.cluster.current();
        view.broker(self.source)
            .and_then(|b| b.endpoint(&self.listener))
            .map(|e| format!("{}:{}", e.host, e.port))
            .ok_or_else(|| LinkError::NoEndpoint {
                source_id: self.source,
                listener: self.listener.clone(),
            })
    }

    /// Sends `request` at the newest version both sides support.
    pub async fn send(&mut self, request: Request) -> Result<Response, LinkError> {
        let addr = self.endpoint()?;
        if self.client.as_ref().is_some_and(|c| c.addr() != addr) {
            self.client = None;
        }
        if self.client.is_none() {
            let mut client = Client::connect(&addr).await?;
            client.set_client_id(&format!(
                "broker-{}-fetcher",
                self.broker.config.node.node_id
            ));
            self.client = Some(client);
        }
        let client = self.client.as_mut().expect("connected above");
        let api = request.api_key();
        let version = match client.api_version(api) {
            Ok(v) => v,
            Err(e) => {
                self.client = None;
                return Err(e.into());
            }
        };
        let mut request = request;
        if let Request::Fetch(fetch) = &mut request {
            shape_fetch(fetch, version);
        }
        match client.send_with_version(request, version).await {
            Ok(response) if response.api_key() == api => Ok(response),
            Ok(_) => {
                self.client = None;
                Err(LinkError::Unexpected {
                    source_id: self.source,
                })
            }
            Err(e) => {
                debug!(source = self.source, %addr, error = %e, "replica fetch request failed; reconnecting");
                self.client = None;
                Err(e.into())
            }
        }
    }
}

/// Keeps only the fields `version` has (Kafka's `FetchRequest.Builder.build(version)`):
/// topics by id from v13 and by name before, the replica in `replica_state` from v15 and
/// in `replica_id` before. The codec refuses a set field the version does not carry.
pub fn shape_fetch(request: &mut FetchRequest, version: i16) {
    for topic in &mut request.topics {
        if version >= 13 {
            topic.topic.clear();
        } else {
            topic.topic_id = arus_protocol::Uuid::ZERO;
        }
    }
    if version >= 15 {
        request.replica_id = -1;
    } else {
        request.replica_state = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use arus_protocol::messages::fetch_request::{FetchTopic, ReplicaState};
    use arus_protocol::{ApiKey, Message, Uuid};

    use super::*;

    fn request() -> FetchRequest {
        FetchRequest {
            replica_id: 2,
            replica_state: ReplicaState {
                replica_id: 2,
                replica_epoch: 9,
                ..Default::default()
            },
            topics: vec![FetchTopic {
                topic: "t".into(),
                topic_id: Uuid([1; 16]),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn encode(r: &FetchRequest, version: i16) -> Result<(), arus_protocol::EncodeError> {
        let mut out = bytes::BytesMut::new();
        r.encode(&mut out, version)
    }

    /// Every version the codec knows encodes the shaped request (the unshaped one fails
    /// at v13+ for the topic name, the first failure the fetchers met).
    #[test]
    fn a_shaped_fetch_encodes_at_every_version() {
        let (lo, hi) = ApiKey::Fetch.valid_versions();
        for version in lo.max(4)..=hi {
            let mut r = request();
            shape_fetch(&mut r, version);
            let encoded = encode(&r, version);
            assert!(encoded.is_ok(), "v{version}: {encoded:?}");
            if version >= 15 {
                assert_eq!((r.replica_id, r.replica_state.replica_epoch), (-1, 9));
            } else {
                assert_eq!(r.replica_id, 2);
            }
        }
        assert!(encode(&request(), 13).is_err());
    }
}
