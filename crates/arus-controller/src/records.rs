//! The metadata records the controller emits and replays: `arus-metadata`'s
//! [`MetadataRecord`] (every record type of Kafka's metadata log, with Kafka's framing).

pub use arus_metadata::MetadataRecord;
