//! The openraft type configuration of the metadata quorum.

use std::fmt;
use std::io::Cursor;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::runtime::ArusRuntime;

/// A node's id in the quorum: Kafka's `node.id` (non-negative), widened to openraft's `u64`.
pub type NodeId = u64;

/// A node's address as openraft stores it in the membership: `host:port` of its CONTROLLER
/// listener.
pub type Node = openraft::BasicNode;

/// One Raft log entry's application payload: a batch of encoded metadata records, applied
/// atomically (all or none), like a Kafka metadata record batch.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch(pub Vec<Bytes>);

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: usize = self.0.iter().map(Bytes::len).sum();
        write!(f, "Batch({} records, {} bytes)", self.0.len(), bytes)
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

openraft::declare_raft_types!(
    /// The metadata quorum's openraft types.
    pub TypeConfig:
        D = Batch,
        R = (),
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = ArusRuntime,
);

pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type Raft = openraft::Raft<TypeConfig>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;
