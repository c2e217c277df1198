//! Consumer group coordination as pure state machines: the classic group protocol
//! (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, static membership), committed offsets, the
//! KIP-848 consumer protocol, and the `__consumer_offsets` record encoding.
//!
//! Time is an input (`now_ms`) and results are returned as values, so every rule is tested
//! without sleeping. This crate must not depend on tokio, sockets or the log: the broker
//! drives it, persists the records it asks for, and delivers its responses.
// Responses are built with `..Default::default()` even where every field is named today, so
// that a regenerated codec with new spec fields keeps compiling with Kafka's defaults.
#![allow(clippy::needless_update)]

pub mod classic;
pub mod config;
pub mod consumer_group;
pub mod coordinator;
mod initial_join;
pub mod records;

pub use classic::{GroupState, OffsetEntry, Ticket};
pub use config::GroupConfig;
pub use coordinator::{
    CommitParams, CommitPartition, Completion, Coordinator, Effects, JoinParams, ListedGroup,
    Reply, SyncParams, TxnCommitParams, TxnRecords,
};

#[cfg(test)]
mod tests;
