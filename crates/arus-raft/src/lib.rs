//! The metadata quorum of an Arus cluster, on [openraft](https://docs.rs/openraft/0.9.25).
//!
//! openraft does consensus; this crate gives it what it leaves to the application:
//! - [`log_store`]: the Raft log on disk (segment files with a CRC per entry, fsync before
//!   acknowledging, truncation, purge, the vote; format documented there);
//! - [`state_machine`]: the bridge to the application ([`MetadataStateMachine`]: apply a
//!   committed batch of encoded metadata records at its offset, build and install snapshots)
//!   and the snapshot store;
//! - [`transport`]: RPCs over TCP (length-prefixed bincode frames, bounded size, timeouts, a
//!   connection per peer re-established on failure), with `serve_connection` for the node's
//!   CONTROLLER listener;
//! - [`Quorum`]: one node's handle (start, write, leader and term, applied-index watch,
//!   DescribeQuorum figures, voter changes, shutdown).
//!
//! The crate knows nothing of Kafka's metadata records: a log entry is a [`Batch`] of encoded
//! records, applied atomically.
//!
//! ## Version
//! openraft is pinned to `=0.9.25`: 0.9 is its stable line (0.10 is published only as
//! `0.10.0-alpha.*` pre-releases whose storage and network traits still change). The runtime is
//! tokio with one change ([`runtime`]): openraft's randomized election timeouts come from a
//! generator the simulated cluster seeds.
//!
//! ## Tests
//! Besides unit tests, `src/sim` runs a simulated cluster: N nodes in one current-thread tokio
//! runtime with a paused clock, a network that drops, delays, reorders and partitions messages
//! per link, kills that lose every unsynced write ([`disk::MemDisk`]) and restarts, and client
//! writes, checking after each schedule that committed logs never diverge, no acknowledged
//! write is lost, there is at most one leader per term and every state machine applied the same
//! sequence. `cargo test -p arus-raft` runs the CI number of schedules; a soak runs more:
//! `ARUS_RAFT_SIM_SCHEDULES=100000 cargo test -p arus-raft --release sim -- --nocapture`
//! (`ARUS_RAFT_SIM_SEED=N` replays one schedule; a failure prints its seed).
//! `tests/tcp_cluster.rs` runs three real [`Quorum`]s over TCP on 127.0.0.1.

mod checked;
pub mod disk;
pub mod error;
pub mod log_store;
mod quorum;
pub mod runtime;
pub mod settings;
#[cfg(test)]
mod sim;
pub mod state_machine;
pub mod transport;
pub mod types;

pub use error::{QuorumError, StoreError, TransportError};
pub use quorum::{Quorum, QuorumConfig, QuorumStatus, ReplicaStatus};
pub use settings::RaftSettings;
pub use state_machine::{CommittedBatch, MetadataStateMachine};
pub use transport::TransportSettings;
pub use types::{Batch, Node, NodeId, TypeConfig};
