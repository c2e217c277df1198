//! One module per Kafka API (or per family of admin APIs).

pub mod acls;
pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod consumer_groups;
pub mod delete_records;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod features;
pub mod fetch;
pub mod find_coordinator;
pub mod groups;
pub mod list_config_resources;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod offsets;
pub mod partition_leadership;
pub mod produce;
pub mod raft_voters;
pub mod resource_configs;
pub mod telemetry;
pub mod topics_admin;
pub mod transactional_id_pattern;
pub mod transactions;
