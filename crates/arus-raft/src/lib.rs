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
//! `0.10.0-alpha.*` pre-releases whose storage and network traits still change). Features:
//! `storage-v2` (we implement `RaftLogStorage` and `RaftStateMachine`), `serde` (RPCs), and
//! `single-term-leader`: standard Raft's one leader per term. Without it openraft lets several
//! nodes lead the same term, and Kafka's leader epoch (the term) must name one controller. The
//! runtime is tokio with one change ([`runtime`]): openraft's randomized election timeouts come
//! from a generator the simulated cluster seeds.
//!
//! ## Tests
//! Besides unit tests, `src/sim` runs a simulated cluster: 3 or 5 nodes in one current-thread
//! tokio runtime with a paused clock, a network that drops, delays, reorders and partitions
//! messages per link (every message also goes through the transport's codec), kills that lose
//! every unsynced write ([`disk::MemDisk`]) and restarts, voter changes and client writes. After
//! each schedule it heals everything and checks that committed logs never diverge, no
//! acknowledged write is lost, no term had two leaders and every state machine applied the same
//! sequence (divergence is also checked on every apply, across incarnations).
//! `cargo test -p arus-raft` runs 1,000 schedules (split over two tests, so over both cores);
//! a soak runs more:
//! `ARUS_RAFT_SIM_SCHEDULES=100000 cargo test -p arus-raft --release sim -- --nocapture`.
//! A failure prints its seed; `ARUS_RAFT_SIM_SEED=N` replays it (with `RUST_LOG=openraft=debug`
//! for openraft's log). Runs are deterministic per seed as far as tokio's scheduler allows.
//!
//! Known open liveness failures (safety holds): 2 of 30,000 release soak schedules (seeds 9911
//! and 29273) never elect again after a voter removal was interrupted by crashes. The node
//! with the longest log holds an uncommitted configuration that makes it a learner, so it does
//! not campaign, and will not vote for the shorter logs; openraft 0.9.25 also rejects a vote
//! from a candidate with a shorter log without adopting its higher term (upstream
//! databendlabs/openraft#2117, open), so the remaining voters race each other's terms. A soak
//! reports those seeds until openraft fixes this; CI's schedules (seeds 0..1000) pass.
//! `tests/tcp_cluster.rs` runs real [`Quorum`]s over TCP on 127.0.0.1: election, writes,
//! NotLeader, failover, a restarted node caught up by snapshot, voter changes, restart replay,
//! and a listener that drops foreign, oversized and undecodable connections.

mod checked;
pub mod disk;
pub mod error;
pub mod log_store;
pub mod member;
mod quorum;
pub mod runtime;
pub mod settings;
#[cfg(test)]
mod sim;
pub mod state_machine;
pub mod transport;
pub mod types;

pub use error::{QuorumError, StoreError, TransportError};
pub use member::Member;
pub use quorum::{Quorum, QuorumConfig, QuorumStatus, ReplicaStatus};
pub use settings::RaftSettings;
pub use state_machine::{CommittedBatch, MetadataStateMachine};
pub use transport::TransportSettings;
pub use types::{Batch, Node, NodeId, TypeConfig};
