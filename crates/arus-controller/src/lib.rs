//! `arus-controller`: the decisions of Kafka's KRaft controller (`QuorumController` and its
//! control managers) as a pure state machine.
//!
//! Commands come in (broker registration and heartbeats, CreateTopics, DeleteTopics,
//! CreatePartitions, config changes, ElectLeaders, UpdateFeatures, AllocateProducerIds, the
//! session-expiry tick); Kafka's metadata records come out, to be appended to the metadata
//! log by the driver, together with the response value where the command has one. A refused
//! command is a [`ControllerError`] with Kafka's exact error code and message. Committed
//! records come back through `replay`, which is the only way the controller's state changes
//! (the in-memory broker sessions aside, which Kafka also keeps outside the log).
//!
//! Time is an input (`now_ms`), the replica placer's randomness is a seeded
//! `java.util.Random` clone, and topic ids come from the caller: this crate is pure. It must
//! not depend on tokio, sockets, files, `arus-broker` or `arus-raft`.
//!
//! Modelled on Apache Kafka 4.4's `QuorumController`, `ReplicationControlManager`,
//! `ClusterControlManager`, `BrokerHeartbeatManager`, `StripedReplicaPlacer`,
//! `PartitionChangeBuilder`, `ProducerIdControlManager`, `FeatureControlManager` and
//! `ConfigurationControlManager`.

pub mod error;
pub mod java_random;
pub mod placement;

pub use error::{ControllerError, ControllerResult};
pub use java_random::JavaRandom;
pub use placement::{PlacementError, UsableBroker};
