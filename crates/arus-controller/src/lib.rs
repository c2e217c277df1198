//! `arus-controller`: the decisions of Kafka's KRaft controller (`QuorumController` and its
//! control managers) as a pure state machine.
//!
//! Commands come in (broker registration and heartbeats, CreateTopics, DeleteTopics,
//! CreatePartitions, config changes, ElectLeaders, UpdateFeatures, AllocateProducerIds, the
//! session-expiry tick); Kafka's metadata records come out, to be appended to the metadata
//! log by the driver as one batch, together with the response value where the command has
//! one. A refused command is a [`ControllerError`] with Kafka's exact error code and
//! message. Records come back through [`Controller::replay`], the only way the controller's
//! cluster state changes (broker sessions aside: Kafka keeps those in memory too).
//!
//! This crate is pure: no tokio, no sockets, no files. Time is an input (`now_ms`), the
//! replica placer's randomness is a seeded bit-exact `java.util.Random`, and topic ids come
//! from an injected [`TopicIdSource`]. It must not depend on `arus-broker` or `arus-raft`.
//!
//! Modelled on Apache Kafka 4.4's `QuorumController`, `ReplicationControlManager`,
//! `ClusterControlManager`, `BrokerHeartbeatManager`, `StripedReplicaPlacer`,
//! `PartitionChangeBuilder`, `ProducerIdControlManager`, `FeatureControlManager` and
//! `ConfigurationControlManager`.

pub mod alter_partition;
pub mod brokers;
pub mod config;
pub mod configs;
pub mod controller;
pub mod election;
pub mod error;
pub mod features;
pub mod heartbeats;
pub mod java_random;
pub mod partition_change;
pub mod placement;
pub mod producer_ids;
pub mod records;
pub mod state;
pub mod topics;

pub use brokers::HeartbeatReply;
pub use config::{ControllerConfig, OffsetUnit};
pub use configs::{AcceptAllConfigs, ConfigOp, ConfigResource, ConfigValidator};
pub use controller::{ConfigResults, Controller, ElectLeadersResults, Outcome, TopicResults};
pub use error::{ControllerError, ControllerResult};
pub use features::{MetadataVersion, UpgradeType};
pub use java_random::JavaRandom;
pub use placement::{PlacementError, UsableBroker};
pub use producer_ids::ProducerIdsBlock;
pub use records::MetadataRecord;
pub use state::{BrokerInfo, ClusterState, PartitionInfo, ReplayError, TopicInfo};
pub use topics::{CreatedTopic, SeededTopicIds, TopicIdSource};

#[cfg(test)]
mod tests;
