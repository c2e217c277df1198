//! The Kafka broker's domain: topics, partitions, configs, one handler per Kafka API, and
//! delayed operations (fetch long-poll, `acks=all` waits). It maps domain errors to Kafka
//! error codes. It knows nothing of sockets or framing (that is `arus-server`), and the
//! storage format belongs to `arus-log`.

// Responses are built with `..Default::default()` even where every field is named today, so
// that a regenerated codec with new spec fields keeps compiling with Kafka's defaults.
#![allow(clippy::needless_update)]

pub mod authorized_operations;
pub mod broker;
pub mod broker_config;
pub mod broker_logger;
pub mod cluster;
pub mod config_catalog;
pub mod config_defs;
pub mod controller_channel;
mod coordinator_log;
pub mod coordinator_shards;
pub mod dir_lock;
pub mod driven;
pub mod dynamic_config;
pub mod features;
pub mod fetch_session;
mod flusher;
pub mod forwarding;
pub mod groups;
pub mod handlers;
pub mod inter_broker;
pub mod isr_updates;
pub mod log_dirs;
pub mod log_manager;
pub mod partition;
pub mod resource_configs;
pub mod single_node_files;
pub mod store;
pub mod telemetry;
pub mod topic_settings;
pub mod topics;
pub mod txn;

pub use arus_log::FileSlice;
pub use broker::{Broker, BrokerError, Outcome, SUPPORTED_APIS, supported_versions};
pub use broker_config::{BrokerConfig, BrokerConfigError, Listener, parse_properties};
