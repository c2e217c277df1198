//! The crate's errors.

use std::io;

use crate::types::NodeId;

/// A storage failure (log, vote, snapshot files).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on the quorum's storage: {0}")]
    Io(#[from] io::Error),
    #[error("{file} is corrupt: {reason}")]
    Corrupt { file: String, reason: String },
    #[error("cannot encode a quorum record: {0}")]
    Encode(#[source] bincode::Error),
    #[error("cannot decode {file}: {source}")]
    Decode {
        file: String,
        #[source]
        source: bincode::Error,
    },
    #[error("the state machine failed: {0}")]
    StateMachine(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a transport call or frame failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("I/O error talking to a quorum peer: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {size} bytes exceeds the configured maximum of {max} bytes")]
    FrameTooLarge { size: u64, max: u64 },
    #[error("cannot encode a quorum RPC: {0}")]
    Encode(#[source] bincode::Error),
    #[error("cannot decode a quorum RPC: {0}")]
    Decode(#[source] bincode::Error),
    #[error("the peer answered a different RPC than the one sent")]
    UnexpectedResponse,
    #[error("the peer closed the connection")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// What a [`crate::Quorum`] call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// This node is not the leader: retry on `leader_id` at `leader_address`, when known.
    #[error("node is not the quorum leader (leader: {leader_id:?} at {leader_address:?})")]
    NotLeader {
        leader_id: Option<NodeId>,
        leader_address: Option<String>,
    },
    #[error("invalid quorum configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the quorum failed: {0}")]
    Raft(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the quorum is shut down")]
    ShutDown,
    /// A new voter did not catch up with the leader's log in time.
    #[error("node {node_id} did not catch up with the leader in time")]
    CatchUpTimeout { node_id: NodeId },
    /// Another membership change is not committed yet.
    #[error("a membership change is in progress: {0}")]
    MembershipChangeInProgress(String),
    /// A membership change openraft refuses (e.g. it would leave no voter).
    #[error("invalid membership change: {0}")]
    InvalidMembershipChange(String),
}
