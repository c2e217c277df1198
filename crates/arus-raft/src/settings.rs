//! Timing and log-size settings of the quorum, and how Kafka's configuration maps onto them.

use std::time::Duration;

use openraft::{Config, SnapshotPolicy};

use crate::error::QuorumError;
use crate::log_store::DEFAULT_SEGMENT_BYTES;

/// Kafka's `controller.quorum.election.timeout.ms` default.
pub const KAFKA_ELECTION_TIMEOUT_MS: u64 = 1_000;
/// Kafka's `controller.quorum.fetch.timeout.ms` default.
pub const KAFKA_FETCH_TIMEOUT_MS: u64 = 2_000;

/// How the Raft engine is tuned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftSettings {
    /// A follower that heard nothing from a leader for a random time in
    /// `[election_timeout_min, election_timeout_max)` starts an election.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How often the leader sends heartbeats (empty AppendEntries).
    pub heartbeat_interval: Duration,
    /// A snapshot is built once this many entries were applied since the last one; the log up
    /// to the snapshot is then purged (keeping `logs_to_keep`), which bounds the log.
    pub snapshot_every: u64,
    /// Entries kept below the last snapshot, so a slightly lagging follower catches up from the
    /// log rather than by a snapshot.
    pub logs_to_keep: u64,
    /// Size at which a new log segment file is started.
    pub segment_bytes: u64,
    /// Most entries sent in one AppendEntries.
    pub max_payload_entries: u64,
    /// Deadline of one snapshot transfer.
    pub install_snapshot_timeout: Duration,
}

impl Default for RaftSettings {
    fn default() -> Self {
        Self::from_kafka(KAFKA_ELECTION_TIMEOUT_MS, KAFKA_FETCH_TIMEOUT_MS)
    }
}

impl RaftSettings {
    /// Maps Kafka's KRaft timeouts. In KRaft a voter that has not fetched successfully from the
    /// leader for `controller.quorum.fetch.timeout.ms` becomes a candidate, and a candidate
    /// retries after `controller.quorum.election.timeout.ms` plus a random part of it.
    ///
    /// openraft 0.9.25 has one randomized timeout `t` in `[election_timeout_min,
    /// election_timeout_max)` (drawn once per node) and a leader lease equal to
    /// `election_timeout_max`: a voter refuses votes for a lease after it last heard from a
    /// leader, and a follower that saw a committed leader starts an election only after
    /// `lease + t` without hearing from it; a candidate whose election failed retries after `t`.
    /// So the time from a dead leader's last heartbeat to a new leader is
    /// `max + t ∈ [max + min, 2·max)` plus a tick, and `max` is also how long a live leader is
    /// protected from a disruptive candidate.
    ///
    /// `max = min(election, fetch / 2)` and `min = max / 2`: with Kafka's defaults (1 s, 2 s)
    /// a follower campaigns 1.5–2 s after the leader's last heartbeat (never later than
    /// Kafka's fetch timeout) and every voter grants from 1 s on; a failed candidate retries
    /// after 0.5–1 s. (Before: `[max(fetch − election, election), fetch)` = 1–2 s, i.e. a
    /// campaign after 3–4 s, measured 3.85 s from a SIGKILL to a new controller; Kafka 2.06 s,
    /// `bench/CLUSTER-RESULTS.md`.) Safety does not depend on these: votes and commits are
    /// decided by terms and logs; the timeouts only decide when an election starts.
    ///
    /// The leader's heartbeat (KRaft's followers fetch continuously) runs at a fifth of `min`
    /// (100 ms with the defaults, the ratio the simulated cluster runs with): five lost
    /// heartbeats in a row never start an election, and openraft checks election timeouts on a
    /// tick of 1.5 heartbeats, which must be fine against the random range. openraft 0.9 draws
    /// each node's timeout once, at start; two voters whose timeouts round to the same tick and
    /// whose ticks are in phase split every vote (the simulated cluster found this); the
    /// runtime's timer jitter (`crate::runtime`) breaks such ties.
    pub fn from_kafka(election_timeout_ms: u64, fetch_timeout_ms: u64) -> Self {
        let fetch = fetch_timeout_ms.max(10);
        let election = election_timeout_ms.max(10);
        let max = election.min(fetch / 2).max(4);
        let min = max / 2;
        Self {
            election_timeout_min: Duration::from_millis(min),
            election_timeout_max: Duration::from_millis(max),
            heartbeat_interval: Duration::from_millis((min / 5).max(1)),
            snapshot_every: 10_000,
            logs_to_keep: 1_000,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_payload_entries: 500,
            install_snapshot_timeout: Duration::from_millis(fetch.max(10_000)),
        }
    }

    /// openraft's configuration for these settings.
    pub fn openraft_config(&self, cluster_name: &str) -> Result<Config, QuorumError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = Config {
            cluster_name: cluster_name.to_string(),
            election_timeout_min: millis(self.election_timeout_min),
            election_timeout_max: millis(self.election_timeout_max),
            heartbeat_interval: millis(self.heartbeat_interval),
            install_snapshot_timeout: millis(self.install_snapshot_timeout),
            max_payload_entries: self.max_payload_entries.max(1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every.max(1)),
            max_in_snapshot_log_to_keep: self.logs_to_keep,
            purge_batch_size: 1,
            ..Config::default()
        };
        config
            .validate()
            .map_err(|e| QuorumError::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_defaults_map_to_a_valid_config() {
        let settings = RaftSettings::default();
        assert_eq!(settings.election_timeout_min, Duration::from_millis(500));
        assert_eq!(settings.election_timeout_max, Duration::from_millis(1_000));
        assert_eq!(settings.heartbeat_interval, Duration::from_millis(100));
        let config = settings.openraft_config("arus").unwrap();
        assert_eq!(config.election_timeout_min, 500);
        assert!(config.heartbeat_interval < config.election_timeout_min);
    }

    #[test]
    fn a_dead_leader_is_replaced_within_kafkas_fetch_timeout() {
        // openraft: a follower campaigns `lease + t` after the last heartbeat, lease = max,
        // t < max; Kafka campaigns after the fetch timeout.
        for (election, fetch) in [(1_000, 2_000), (500, 5_000), (3_000, 2_000), (10, 10)] {
            let s = RaftSettings::from_kafka(election, fetch);
            let latest = s.election_timeout_max * 2;
            assert!(
                latest <= Duration::from_millis(fetch.max(10)),
                "{election} {fetch}"
            );
            assert!(s.openraft_config("arus").is_ok(), "{election} {fetch}");
            // A live leader keeps its followers: several heartbeats fit in the shortest
            // timeout.
            assert!(
                s.heartbeat_interval * 2 < s.election_timeout_min
                    || s.heartbeat_interval.as_millis() == 1
            );
        }
    }

    #[test]
    fn an_empty_timeout_range_is_rejected() {
        let mut settings = RaftSettings::default();
        settings.election_timeout_max = settings.election_timeout_min;
        assert!(matches!(
            settings.openraft_config("arus"),
            Err(QuorumError::Config(_))
        ));
    }
}
