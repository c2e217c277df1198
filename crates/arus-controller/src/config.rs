//! The controller's static configuration (Kafka's controller-side `KafkaConfig` values).

use std::collections::BTreeMap;

/// Static settings the controller decides with.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// The cluster id every registering broker must present.
    pub cluster_id: String,
    /// This controller's node id (named in feature-support messages).
    pub node_id: i32,
    /// `broker.session.timeout.ms` (Kafka's default 9000).
    pub session_timeout_ms: i64,
    /// `num.partitions` (default 1).
    pub default_num_partitions: i32,
    /// `default.replication.factor` (default 1).
    pub default_replication_factor: i16,
    /// Static `min.insync.replicas` (default 1).
    pub default_min_insync_replicas: i32,
    /// Static `unclean.leader.election.enable` (default false).
    pub unclean_leader_election_enable: bool,
    /// The feature ranges this controller supports, `name -> (min, max)` (Kafka's
    /// `QuorumFeatures.localSupportedFeatures`).
    pub supported_features: BTreeMap<String, (i16, i16)>,
    /// This node's own broker can only be this very process (the implicit one-node
    /// cluster: the quorum and the broker share one locked directory). A new controller
    /// then starts no session for the broker's previous incarnation, so a restart after a
    /// crash registers at once instead of hearing DUPLICATE_BROKER_REGISTRATION until the
    /// dead incarnation's session expires.
    pub own_broker_in_process: bool,
    /// What one metadata offset counts: Kafka's log gives every record an offset; Arus's
    /// Raft log gives one to each batch (one entry per batch). Offsets the controller
    /// computes from `next_offset` (the end of a batch it is about to write) follow it.
    pub offsets: OffsetUnit,
}

/// See [`ControllerConfig::offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetUnit {
    /// Kafka's metadata log: a batch of n records at offset o ends at o + n - 1.
    Record,
    /// Arus's Raft log: a batch is one entry, at one offset.
    Batch,
}

impl OffsetUnit {
    /// The offset of the last record of a batch of `records` written at `next_offset`
    /// (nothing written: the offset before it).
    pub fn batch_end(self, next_offset: i64, records: usize) -> i64 {
        match (self, records) {
            (_, 0) => next_offset - 1,
            (OffsetUnit::Record, n) => next_offset + n as i64 - 1,
            (OffsetUnit::Batch, _) => next_offset,
        }
    }
}

impl ControllerConfig {
    /// Kafka's defaults for a cluster id and node id; the supported features are Kafka
    /// 4.4.0's (`kafka-features describe` on 4.4.0).
    pub fn new(cluster_id: impl Into<String>, node_id: i32) -> Self {
        ControllerConfig {
            cluster_id: cluster_id.into(),
            node_id,
            session_timeout_ms: 9_000,
            default_num_partitions: 1,
            default_replication_factor: 1,
            default_min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            supported_features: crate::features::kafka_44_supported_features(),
            own_broker_in_process: false,
            offsets: OffsetUnit::Record,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OffsetUnit;

    #[test]
    fn a_batch_ends_where_its_unit_says() {
        assert_eq!(OffsetUnit::Record.batch_end(10, 3), 12);
        assert_eq!(OffsetUnit::Batch.batch_end(10, 3), 10);
        assert_eq!(OffsetUnit::Record.batch_end(10, 0), 9);
        assert_eq!(OffsetUnit::Batch.batch_end(10, 0), 9);
    }
}
