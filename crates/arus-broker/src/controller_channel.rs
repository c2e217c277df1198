//! How a broker that is part of a cluster reaches the active controller (docs/cluster.md,
//! step 5). Admin requests — CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
//! IncrementalAlterConfigs, UpdateFeatures, ElectLeaders, … — are not decided by the broker
//! that receives them: it forwards them, as Kafka's `ForwardingManager` does, to the
//! controller, which answers once the change is committed to the metadata log. The broker
//! then waits until its own metadata image has applied that offset, so that a client that
//! created a topic can use it on the broker it asked.
//!
//! The implementation lives in `arus-cluster` (a local call when this node is the active
//! controller, the CONTROLLER listener otherwise); the broker only sees this trait, so it does
//! not depend on the quorum or the controller. A broker without a channel (the file-backed
//! single node) decides itself, as before.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use arus_protocol::{ErrorCode, Request, Response};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The controller's answer to a forwarded request.
#[derive(Debug)]
pub struct Forwarded {
    pub response: Response,
    /// The metadata log offset that includes the request's change (the controller's last
    /// committed offset when it answered).
    pub metadata_offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No controller answered within the request's timeout (elections included): the
    /// client retries, as with Kafka's REQUEST_TIMED_OUT.
    #[error("the controller did not answer within {0:?}")]
    Timeout(Duration),
    /// The controller answered with something that is not the request's response.
    #[error("unexpected answer from the controller: {0}")]
    Protocol(String),
    /// The node is shutting down.
    #[error("the broker is shutting down")]
    ShuttingDown,
}

impl ForwardError {
    /// The error code a client hears.
    pub fn code(&self) -> ErrorCode {
        match self {
            ForwardError::Timeout(_) => ErrorCode::RequestTimedOut,
            ForwardError::Protocol(_) => ErrorCode::UnknownServerError,
            // Retriable: the client asks again, of another broker or after the restart.
            ForwardError::ShuttingDown => ErrorCode::NotController,
        }
    }
}

/// See the module documentation.
pub trait ControllerChannel: Send + Sync + 'static {
    /// Forwards `request` (decoded at `version`) to the active controller, retrying inside
    /// the cluster while the controller changes (NOT_CONTROLLER is never returned to the
    /// client), for at most `timeout`.
    fn forward(
        &self,
        request: Request,
        version: i16,
        timeout: Duration,
    ) -> BoxFuture<Result<Forwarded, ForwardError>>;

    /// Resolves once this node's metadata image has applied `offset` (or after `timeout`,
    /// returning false).
    fn await_metadata(&self, offset: i64, timeout: Duration) -> BoxFuture<bool>;
}
