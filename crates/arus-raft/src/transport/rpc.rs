//! The RPC messages carried in frames.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::error::TransportError;
use crate::types::{NodeId, TypeConfig};

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
}

pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, TransportError> {
    bincode::serialize(message).map_err(TransportError::Encode)
}

pub fn decode<T: serde::de::DeserializeOwned>(
    payload: &[u8],
    max: u32,
) -> Result<T, TransportError> {
    use bincode::Options;
    // The frame bound also bounds what bincode may allocate for a length it reads.
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(u64::from(max))
        .deserialize(payload)
        .map_err(TransportError::Decode)
}
