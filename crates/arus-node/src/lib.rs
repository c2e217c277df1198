//! A node's identity, as Kafka's KRaft mode defines it:
//!
//! - [`config`]: [`NodeConfig`], the typed node/listener/quorum configuration read from
//!   Kafka's keys (`node.id`, `process.roles`, `listeners`, `controller.quorum.voters`, …)
//!   and validated with Kafka's rules and messages (`KafkaConfig.validateValues`).
//! - [`listeners`]: named listeners (`NAME://host:port`) and their security protocols.
//! - [`quorum`]: the static voters (`id@host:port`), the bootstrap servers, and the
//!   `--initial-controllers` of `kafka-storage format`.
//! - [`meta_properties`]: Kafka's `meta.properties` (version 1) in every directory.
//! - [`storage`]: formatting directories (`arus storage format`), the bootstrap file of
//!   initial features, and the check a node makes of its directories at start-up.
//! - [`ids`]: Kafka's random ids (`Uuid.randomUuid`) and reserved directory ids.
//!
//! Nothing here starts threads or sockets: the binary and the broker call it.

pub mod config;
pub mod ids;
pub mod listeners;
pub mod meta_properties;
pub mod quorum;
pub mod storage;

pub use config::{NodeConfig, NodeConfigError, ProcessRole, Timeouts};
pub use listeners::{Endpoint, SecurityProtocol};
pub use meta_properties::MetaProperties;
pub use quorum::{HostPort, InitialController, Voter};
