//! Admin requests in a cluster (docs/cluster.md, step 5): the broker that receives one does
//! not decide it. As Kafka's `KafkaApis.maybeForwardToController`, it forwards the request
//! through the [`ControllerChannel`] to the active controller, waits until its own metadata
//! has applied the offset of the change (so a client that created a topic can use it on the
//! broker it asked), and answers the controller's response. The broker's own state changes
//! only when the committed metadata reaches it ([`crate::driven`]).
//!
//! What stays on the broker, as in Kafka: the checks Kafka makes before or beside the
//! controller (`ConfigAdminManager.preprocess` for config changes, BROKER_LOGGER, the
//! request-level checks of `ControllerApis` for topics, `delete.topic.enable`), and the
//! ACL APIs, which are SECURITY_DISABLED until there is an authorizer.
//!
//! A broker without a channel (the file-backed single node) answers everything itself, as
//! before: [`forward_if_clustered`] hands the request back.

pub(crate) mod auto_create;
mod configs;
mod leadership;
mod topics;

use std::sync::Arc;
use std::time::Duration;

use arus_protocol::{Request, Response};
use tracing::warn;

use crate::broker::{Broker, Outcome};
use crate::controller_channel::{ControllerChannel, ForwardError};
use crate::txn::controller_producer_ids::ControllerProducerIds;

/// What a clustered broker keeps of its way to the controller.
pub(crate) struct ControllerLink {
    pub(crate) channel: Arc<dyn ControllerChannel>,
    pub(crate) producer_ids: ControllerProducerIds,
    /// This broker's current registration epoch (-1 before the first registration): the
    /// requests that carry it read it when they are sent, as Kafka's `brokerEpochSupplier`.
    pub(crate) broker_epoch: std::sync::atomic::AtomicI64,
}

#[derive(Debug, thiserror::Error)]
pub enum SetChannelError {
    #[error("the controller channel is already set")]
    AlreadySet,
    #[error("the controller channel must be set from within the tokio runtime")]
    NoRuntime,
}

impl Broker {
    /// Makes this broker a member of a cluster: from now on the admin requests listed in
    /// the module documentation are forwarded through `channel`; the dynamic broker configs,
    /// GROUP and CLIENT_METRICS configs and finalized features stop being files and follow
    /// the metadata ([`Broker::apply_dynamic_configs_from_metadata`] and friends); producer
    /// ids come from blocks the controller allocates (AllocateProducerIds, once
    /// [`Broker::set_broker_epoch`] was called). Set once, from within the tokio runtime
    /// (the producer-id blocks are fetched on it).
    pub fn set_controller_channel(
        &self,
        channel: Arc<dyn ControllerChannel>,
    ) -> Result<(), SetChannelError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| SetChannelError::NoRuntime)?;
        if self.controller.get().is_some() {
            return Err(SetChannelError::AlreadySet);
        }
        let producer_ids = ControllerProducerIds::new(
            channel.clone(),
            self.node_id(),
            request_timeout(self),
            runtime,
        );
        self.controller
            .set(ControllerLink {
                channel,
                producer_ids: producer_ids.clone(),
                broker_epoch: std::sync::atomic::AtomicI64::new(-1),
            })
            .map_err(|_| SetChannelError::AlreadySet)?;
        self.config.dynamic().set_driven();
        self.resource_configs.set_driven();
        self.features.set_driven();
        self.txns.use_producer_ids(Box::new(producer_ids));
        Ok(())
    }

    /// The channel to the controller, if this broker is part of a cluster.
    pub fn controller_channel(&self) -> Option<Arc<dyn ControllerChannel>> {
        self.controller.get().map(|l| l.channel.clone())
    }

    /// The broker epoch the controller gave this broker at registration (sent with every
    /// AllocateProducerIds, as Kafka's `brokerEpochSupplier`). Called again after each
    /// re-registration. Ignored without a channel.
    pub fn set_broker_epoch(&self, epoch: i64) {
        if let Some(link) = self.controller.get() {
            link.broker_epoch
                .store(epoch, std::sync::atomic::Ordering::Release);
            link.producer_ids.set_broker_epoch(epoch);
        }
    }
}

/// `request.timeout.ms` of the broker config: how long a forwarded request without its own
/// timeout may take, and how long the broker waits for its metadata to catch up.
fn request_timeout(broker: &Broker) -> Duration {
    Duration::from_millis(
        broker
            .config
            .effective_i64("request.timeout.ms", 30_000)
            .max(0) as u64,
    )
}

/// Answers `request` through the controller when this broker is part of a cluster and the
/// API is one the controller decides; otherwise hands it back to be answered locally.
pub(crate) async fn forward_if_clustered(
    broker: &Arc<Broker>,
    request: Request,
    version: i16,
) -> Result<Outcome, Request> {
    let Some(link) = broker.controller.get() else {
        return Err(request);
    };
    let channel = &link.channel;
    let response = match request {
        Request::CreateTopics(r) => {
            Response::CreateTopics(topics::create_topics(broker, channel, r, version).await)
        }
        Request::DeleteTopics(r) => {
            Response::DeleteTopics(topics::delete_topics(broker, channel, r, version).await)
        }
        Request::CreatePartitions(r) => {
            Response::CreatePartitions(topics::create_partitions(broker, channel, r, version).await)
        }
        Request::AlterConfigs(r) => {
            Response::AlterConfigs(configs::alter(broker, channel, r, version).await)
        }
        Request::IncrementalAlterConfigs(r) => Response::IncrementalAlterConfigs(
            configs::incremental_alter(broker, channel, r, version).await,
        ),
        Request::UpdateFeatures(r) => {
            Response::UpdateFeatures(leadership::update_features(broker, channel, r, version).await)
        }
        Request::ElectLeaders(r) => {
            Response::ElectLeaders(leadership::elect_leaders(broker, channel, r, version).await)
        }
        Request::AlterPartitionReassignments(r) => Response::AlterPartitionReassignments(
            leadership::alter_reassignments(broker, channel, r, version).await,
        ),
        Request::DescribeQuorum(r) => {
            Response::DescribeQuorum(leadership::describe_quorum(broker, channel, r, version).await)
        }
        Request::ListPartitionReassignments(r) => Response::ListPartitionReassignments(
            leadership::list_reassignments(broker, channel, r, version).await,
        ),
        Request::AddRaftVoter(r) => {
            Response::AddRaftVoter(leadership::add_raft_voter(broker, channel, r, version).await)
        }
        Request::RemoveRaftVoter(r) => Response::RemoveRaftVoter(
            leadership::remove_raft_voter(broker, channel, r, version).await,
        ),
        // CreateAcls/DeleteAcls stay local (SECURITY_DISABLED without an authorizer), and
        // every other API is the broker's own.
        other => return Err(other),
    };
    Ok(Outcome::Respond(response))
}

/// Forwards `request` with `timeout_ms` (the request's own, or `request.timeout.ms`), then
/// waits until this broker's metadata has applied the change. A metadata wait that runs
/// out is logged, not reported: the change is committed, and the client would only see an
/// error for something that happened.
async fn forward(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: Request,
    version: i16,
    timeout_ms: Option<i32>,
) -> Result<Response, ForwardError> {
    let api = request.api_key().name();
    let timeout = match timeout_ms {
        Some(ms) => Duration::from_millis(ms.max(0) as u64),
        None => request_timeout(broker),
    };
    let forwarded = channel
        .forward(request, version, timeout)
        .await
        .inspect_err(|e| warn!(api, error = %e, "forwarding to the controller failed"))?;
    let offset = forwarded.metadata_offset;
    if !channel
        .await_metadata(offset, request_timeout(broker))
        .await
    {
        warn!(
            api,
            offset,
            "the controller committed the change but this broker's metadata has not caught up yet"
        );
    }
    Ok(forwarded.response)
}

/// Forwards `$request` as `Request::$api` ([`forward`]) and takes `Response::$api` out of the
/// answer: `Result<response, ForwardError>`, another API's response being a protocol error.
macro_rules! forward_as {
    ($broker:expr, $channel:expr, $api:ident, $request:expr, $version:expr, $timeout:expr) => {
        match super::forward(
            $broker,
            $channel,
            arus_protocol::Request::$api($request),
            $version,
            $timeout,
        )
        .await
        {
            Ok(arus_protocol::Response::$api(r)) => Ok(r),
            Ok(other) => Err(super::unexpected(stringify!($api), &other)),
            Err(e) => Err(e),
        }
    };
}
pub(super) use forward_as;

/// The controller answered with another API's response.
fn unexpected(api: &str, response: &Response) -> ForwardError {
    ForwardError::Protocol(format!(
        "{api} answered with a {} response",
        response.api_key().name()
    ))
}
