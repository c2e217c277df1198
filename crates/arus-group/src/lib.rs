//! Consumer group coordination as pure state machines: the classic group protocol
//! (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, static membership), committed offsets, the
//! KIP-848 consumer protocol, and the `__consumer_offsets` record encoding.
//!
//! Time is an input (`now_ms`) and results are returned as values, so every rule is tested
//! without sleeping. This crate must not depend on tokio, sockets or the log: the broker
//! drives it, persists the records it asks for, and delivers its responses.
pub mod classic;
pub mod config;
pub mod coordinator;
pub mod records;

pub use classic::{GroupState, OffsetEntry, Ticket};
pub use config::GroupConfig;
pub use coordinator::{
    CommitParams, CommitPartition, Completion, Coordinator, Effects, JoinParams, ListedGroup,
    Reply, SyncParams,
};
