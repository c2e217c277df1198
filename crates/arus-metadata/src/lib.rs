//! `arus-metadata`: the cluster's metadata as every node holds it (issue 14, KRaft's
//! `metadata` module).
//!
//! - [`record`]: [`MetadataRecord`], every record type of Kafka's metadata log, framed as
//!   Kafka's `MetadataRecordSerde` frames it (byte-for-byte; checked against Kafka 4.4 by
//!   `tests/kafka_serde.rs`).
//! - [`image`]: the immutable [`MetadataImage`] (features, brokers, controllers, topics and
//!   partitions, configs, the producer-id block, quotas/ACLs/SCRAM/tokens, provenance),
//!   cheap to clone and share.
//! - [`delta`]: [`MetadataDelta`], records replayed onto an image with Kafka's semantics
//!   (`TopicsDelta`, `PartitionRegistration.merge`, `ClusterDelta`, ...), giving the next
//!   image (checked against Kafka 4.4's own `MetadataDelta` on random record sequences by
//!   `tests/kafka_replay.rs`); [`LocalChanges`] says what one node must lead, follow or
//!   delete.
//! - [`snapshot`]: [`MetadataImage::to_records`], the records that rebuild an image.
//!
//! This crate is pure: it must not depend on tokio, I/O, `arus-broker` or
//! `arus-controller` (the controller and the broker depend on it, not the reverse).
//! Replaying a bad record is an error value, never a panic.

pub mod delta;
pub mod image;
pub mod local;
pub mod record;
pub mod snapshot;

pub use delta::{DeltaError, MetadataDelta};
pub use image::{
    BrokerRegistration, ConfigResource, ControllerRegistration, Endpoint, MetadataImage,
    MetadataProvenance, PartitionRegistration, TopicIdPartition, TopicImage,
};
pub use local::{LocalChanges, LocalDelete, LocalPartition};
pub use record::{MetadataRecord, RecordError, VersionedRecord};
