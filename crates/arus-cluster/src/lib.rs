//! `arus-cluster`: the runtime glue that makes one process a node of an Arus cluster
//! (docs/cluster.md). It joins the metadata quorum (`arus-raft`), the metadata image
//! (`arus-metadata`), the controller's decisions (`arus-controller`) and the broker
//! (`arus-broker`):
//!
//! - [`publisher`]: the state machine the quorum applies committed batches to; it replays
//!   them into the current [`arus_metadata::MetadataImage`], which readers load without a
//!   lock, and tells the broker what changed for this node.
//! - [`controller_driver`] and [`controller_apis`]: the active controller — requests in,
//!   decisions by `arus_controller`, records committed to the quorum, responses out.
//! - [`upgrade`]: the first batch of a directory written by the single-node release.
//!
//! Decisions stay in the pure crates: nothing here chooses a leader, a placement or an
//! error code; it moves records and requests between the parts and the network. It must
//! not be a dependency of any of them.

// Generated message structs are always built with `..Default::default()`, so that fields
// a later spec adds take their defaults.
#![allow(clippy::needless_update)]

pub mod applier;
pub mod channel;
pub mod controller_apis;
pub mod controller_driver;
pub mod controller_listener;
pub mod leader_replicas;
pub mod lifecycle;
pub mod local_replicas;
pub mod node;
pub mod observers;
pub mod peer_channel;
pub mod publisher;
pub mod quorum_config;
pub mod quorum_log;
pub mod replica_fetcher;
pub mod upgrade;
pub mod validator;
pub mod voter_apis;

pub use publisher::{MetadataHandle, MetadataPublisher, Published};
