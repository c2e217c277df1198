//! One replica fetcher's decisions (Kafka's `AbstractFetcherThread` and
//! `ReplicaFetcherThread`, with truncation on fetch as Kafka does since IBP 2.7): the
//! partitions it fetches from one leader broker, each with its fetch offset, the leader
//! epoch it believes current and the epoch of the last batch it fetched; the Fetch request
//! for the partitions ready; and what each partition of the response asks of the driver.
//!
//! The driver owns the I/O: it sends the request this module builds, appends the records of
//! a partition answered [`ResponseAction::Append`] to the local log (as the leader wrote
//! them) and reports the result with [`Fetcher::on_appended`]; it truncates on
//! [`ResponseAction::Truncate`] (the offset from [`crate::follower_truncation`] against its
//! own epoch cache) and reports [`Fetcher::on_truncated`]; on
//! [`ResponseAction::ResolveOutOfRange`] it asks the leader for its earliest and latest
//! offsets (ListOffsets) and applies [`out_of_range`]. Time is an input (`now_ms`).
//!
//! Not here: the assignment of partitions to fetchers (`num.replica.fetchers`, Kafka's hash
//! of topic and partition over the fetchers of a source broker) is the driver's
//! (`arus-cluster`'s `replica_fetcher`). Not built yet: incremental fetch sessions (each
//! request is a full, sessionless fetch, `session_epoch` -1) and fetcher lag metrics.

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::messages::FetchRequest;
use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use arus_protocol::{ErrorCode, Uuid};

/// A partition by topic id and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub topic_id: Uuid,
    pub partition: i32,
}

/// Kafka's `ReplicaState` of a fetched partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchPhase {
    /// The follower has no leader epoch in its log (an empty log, or one without epochs):
    /// it truncates to its high watermark before fetching (the only case Kafka uses it).
    Truncating,
    /// Fetching; a divergence is found through the Fetch response's diverging epoch.
    Fetching,
}

/// Kafka's `PartitionFetchState`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionFetchState {
    pub topic: String,
    pub fetch_offset: i64,
    /// The leader epoch this follower believes current (sent as `current_leader_epoch`).
    pub current_leader_epoch: i32,
    pub phase: FetchPhase,
    /// The leader epoch of the last batch in the follower's log (sent as
    /// `last_fetched_epoch`, so the leader can answer a diverging epoch).
    pub last_fetched_epoch: Option<i32>,
    /// Not fetched before this time (after an error).
    pub delayed_until_ms: Option<i64>,
    /// The leader's high watermark minus this fetch offset, once known.
    pub lag: Option<i64>,
}

impl PartitionFetchState {
    fn ready(&self, now_ms: i64) -> bool {
        self.delayed_until_ms.is_none_or(|t| now_ms >= t)
    }
}

/// What a partition starts from when it is added (Kafka's `InitialFetchState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialFetchState {
    pub topic: String,
    /// The follower's log end offset.
    pub init_offset: i64,
    pub current_leader_epoch: i32,
    /// The latest leader epoch in the follower's epoch cache.
    pub latest_epoch: Option<i32>,
}

/// The fetcher's settings (the `replica.fetch.*` broker configs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetcherConfig {
    /// This broker's id (`replica_id`) and registration epoch (`replica_epoch`, KIP-903).
    pub replica_id: i32,
    pub broker_epoch: i64,
    /// `replica.fetch.wait.max.ms` (500).
    pub max_wait_ms: i32,
    /// `replica.fetch.min.bytes` (1).
    pub min_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB).
    pub response_max_bytes: i32,
    /// `replica.fetch.max.bytes` (1 MiB), per partition.
    pub partition_max_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000): how long a partition that failed waits.
    pub backoff_ms: i64,
}

/// What the follower's log says about a partition when the request is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalLogState {
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

/// What the leader answered for one partition, besides the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionResponse {
    pub error: ErrorCode,
    /// `diverging_epoch` (epoch, end offset) when the leader set it.
    pub diverging_epoch: Option<(i32, i64)>,
}

/// What the driver does with one partition of a Fetch response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseAction {
    /// The partition was removed, re-added or moved since the request: drop the data.
    Ignore,
    /// Append the records as the leader wrote them, then call [`Fetcher::on_appended`].
    Append,
    /// The logs diverge: truncate where [`crate::follower_truncation`] says for the
    /// leader's `(epoch, end_offset)`, then call [`Fetcher::on_truncated`]. The records
    /// (if any) are not appended, so nothing moves before the truncation.
    Truncate { epoch: i32, end_offset: i64 },
    /// The fetch offset is outside the leader's log: ask the leader for its log start and
    /// end offsets, then call [`Fetcher::on_out_of_range_resolved`] with [`out_of_range`].
    ResolveOutOfRange,
    /// Retry after `replica.fetch.backoff.ms` (the partition is delayed).
    Retry,
    /// This follower's leader epoch is older than the leader's: the partition is removed
    /// and marked failed until the metadata brings the new epoch (Kafka's
    /// `onPartitionFenced`).
    Fenced,
}

/// How an out-of-range fetch offset is resolved (Kafka's `fetchOffsetAndTruncate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutOfRange {
    /// The leader's log ends before ours (after an unclean election): truncate to its end.
    TruncateTo(i64),
    /// Our log ends before the leader's start (we were away while it deleted old
    /// segments): drop our log and start at the leader's log start offset.
    TruncateFullyAndStartAt(i64),
    /// Keep the log and fetch from our end offset again.
    FetchFrom(i64),
}

/// Kafka's `fetchOffsetAndTruncate`, given the leader's log end and start offsets.
pub fn out_of_range(replica_end: i64, leader_end: i64, leader_start: i64) -> OutOfRange {
    if leader_end < replica_end {
        OutOfRange::TruncateTo(leader_end)
    } else if leader_start > replica_end {
        OutOfRange::TruncateFullyAndStartAt(leader_start)
    } else {
        OutOfRange::FetchFrom(replica_end.max(leader_start))
    }
}

/// The partitions one fetcher fetches from one leader broker.
#[derive(Debug, Default)]
pub struct Fetcher {
    partitions: BTreeMap<PartitionKey, PartitionFetchState>,
    /// Fenced or failed partitions, until added again (Kafka's `failedPartitions`).
    failed: BTreeSet<PartitionKey>,
}

impl Fetcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or updates a partition (Kafka's `addPartitions` / `partitionFetchState`): a
    /// partition already fetched at the same leader epoch keeps its state; otherwise it
    /// starts from `init`, fetching if the follower's log has an epoch (divergence is then
    /// found through the Fetch response) and truncating to its high watermark if not.
    pub fn add(&mut self, key: PartitionKey, init: InitialFetchState) {
        self.failed.remove(&key);
        if self
            .partitions
            .get(&key)
            .is_some_and(|s| s.current_leader_epoch == init.current_leader_epoch)
        {
            return;
        }
        let phase = if init.latest_epoch.is_some() {
            FetchPhase::Fetching
        } else {
            FetchPhase::Truncating
        };
        self.partitions.insert(
            key,
            PartitionFetchState {
                topic: init.topic,
                fetch_offset: init.init_offset,
                current_leader_epoch: init.current_leader_epoch,
                phase,
                last_fetched_epoch: init.latest_epoch,
                delayed_until_ms: None,
                lag: None,
            },
        );
    }

    /// Stops fetching a partition (it is led elsewhere now, or no longer hosted here).
    pub fn remove(&mut self, key: &PartitionKey) -> Option<PartitionFetchState> {
        self.partitions.remove(key)
    }

    pub fn state(&self, key: &PartitionKey) -> Option<&PartitionFetchState> {
        self.partitions.get(key)
    }

    pub fn is_failed(&self, key: &PartitionKey) -> bool {
        self.failed.contains(key)
    }

    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// Partitions in [`FetchPhase::Truncating`] and not delayed: the driver truncates each
    /// to its high watermark and calls [`Fetcher::on_truncated`].
    pub fn truncating(&self, now_ms: i64) -> Vec<PartitionKey> {
        self.partitions
            .iter()
            .filter(|(_, s)| s.phase == FetchPhase::Truncating && s.ready(now_ms))
            .map(|(k, _)| *k)
            .collect()
    }

    /// The earliest time a delayed partition becomes ready, if any is delayed.
    pub fn next_ready_ms(&self) -> Option<i64> {
        self.partitions
            .values()
            .filter_map(|s| s.delayed_until_ms)
            .min()
    }

    /// The Fetch request for the partitions ready to fetch (`None` if there are none), as
    /// Kafka's `ReplicaFetcherThread.buildFetch` with a sessionless full fetch.
    /// `local` gives the follower's log start offset and high watermark per partition.
    pub fn build_request(
        &self,
        config: &FetcherConfig,
        now_ms: i64,
        local: impl Fn(&PartitionKey) -> Option<LocalLogState>,
    ) -> Option<FetchRequest> {
        let mut topics: BTreeMap<Uuid, FetchTopic> = BTreeMap::new();
        for (key, s) in &self.partitions {
            if s.phase != FetchPhase::Fetching || !s.ready(now_ms) {
                continue;
            }
            let Some(log) = local(key) else { continue };
            topics
                .entry(key.topic_id)
                .or_insert_with(|| FetchTopic {
                    topic: s.topic.clone(),
                    topic_id: key.topic_id,
                    ..Default::default()
                })
                .partitions
                .push(FetchPartition {
                    partition: key.partition,
                    current_leader_epoch: s.current_leader_epoch,
                    fetch_offset: s.fetch_offset,
                    last_fetched_epoch: s.last_fetched_epoch.unwrap_or(-1),
                    log_start_offset: log.log_start_offset,
                    partition_max_bytes: config.partition_max_bytes,
                    high_watermark: log.high_watermark,
                    ..Default::default()
                });
        }
        if topics.is_empty() {
            return None;
        }
        Some(FetchRequest {
            // v15+ carries the replica in `replica_state`; older versions in `replica_id`.
            replica_id: config.replica_id,
            replica_state: ReplicaState {
                replica_id: config.replica_id,
                replica_epoch: config.broker_epoch,
            },
            max_wait_ms: config.max_wait_ms,
            min_bytes: config.min_bytes,
            max_bytes: config.response_max_bytes,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: topics.into_values().collect(),
            ..Default::default()
        })
    }

    /// The whole request failed (connection lost, timeout): every partition waits.
    pub fn on_request_failed(&mut self, config: &FetcherConfig, now_ms: i64) {
        let keys: Vec<PartitionKey> = self.partitions.keys().copied().collect();
        for k in keys {
            self.delay(&k, config, now_ms);
        }
    }

    /// Kafka's `processFetchRequest` for one partition: `fetched_offset` and
    /// `requested_epoch` are what the request carried for it.
    pub fn on_partition_response(
        &mut self,
        key: &PartitionKey,
        fetched_offset: i64,
        requested_epoch: i32,
        response: PartitionResponse,
        config: &FetcherConfig,
        now_ms: i64,
    ) -> ResponseAction {
        let Some(s) = self.partitions.get(key) else {
            return ResponseAction::Ignore;
        };
        // Removed and re-added, or truncated, while the request was out: the answer is
        // about an offset this partition no longer fetches.
        if s.fetch_offset != fetched_offset || s.phase != FetchPhase::Fetching || !s.ready(now_ms) {
            return ResponseAction::Ignore;
        }
        let action = match response.error {
            ErrorCode::None => match response.diverging_epoch {
                Some((epoch, end_offset)) => ResponseAction::Truncate { epoch, end_offset },
                None => ResponseAction::Append,
            },
            ErrorCode::OffsetOutOfRange => ResponseAction::ResolveOutOfRange,
            ErrorCode::FencedLeaderEpoch => self.fenced(key, requested_epoch),
            // UNKNOWN_LEADER_EPOCH (the leader has not seen our epoch yet),
            // NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID,
            // INCONSISTENT_TOPIC_ID (transient while metadata propagates), and anything
            // else: back off and retry.
            _ => ResponseAction::Retry,
        };
        if action == ResponseAction::Retry {
            self.delay(key, config, now_ms);
        }
        action
    }

    /// The records of an [`ResponseAction::Append`] were appended: `last_offset` and
    /// `last_leader_epoch` of what was appended (`None` if nothing was), and the leader's
    /// high watermark from the response.
    pub fn on_appended(
        &mut self,
        key: &PartitionKey,
        appended: Option<(i64, Option<i32>)>,
        leader_high_watermark: i64,
    ) {
        let Some(s) = self.partitions.get_mut(key) else {
            return;
        };
        let next_offset = appended.map_or(s.fetch_offset, |(last, _)| last + 1);
        let lag = (leader_high_watermark - next_offset).max(0);
        if appended.is_some() || s.lag.is_none() {
            s.fetch_offset = next_offset;
            s.lag = Some(lag);
            s.phase = FetchPhase::Fetching;
            if let Some((_, Some(epoch))) = appended {
                s.last_fetched_epoch = Some(epoch);
            }
        }
    }

    /// The driver truncated the log to `offset` (after a diverging epoch, or to the high
    /// watermark in [`FetchPhase::Truncating`]); `latest_epoch` is the follower's latest
    /// epoch after the truncation. Fetching resumes there: if the truncation was not final,
    /// the next response's diverging epoch continues it.
    pub fn on_truncated(&mut self, key: &PartitionKey, offset: i64, latest_epoch: Option<i32>) {
        if let Some(s) = self.partitions.get_mut(key) {
            s.fetch_offset = offset;
            s.phase = FetchPhase::Fetching;
            s.last_fetched_epoch = latest_epoch;
        }
    }

    /// The out-of-range offset was resolved with [`out_of_range`] (and the log truncated
    /// as it said): fetching resumes at `fetch_offset`.
    pub fn on_out_of_range_resolved(
        &mut self,
        key: &PartitionKey,
        fetch_offset: i64,
        leader_end: i64,
        latest_epoch: Option<i32>,
    ) {
        if let Some(s) = self.partitions.get_mut(key) {
            s.fetch_offset = fetch_offset;
            s.lag = Some((leader_end - fetch_offset).max(0));
            s.phase = FetchPhase::Fetching;
            s.last_fetched_epoch = latest_epoch;
        }
    }

    /// Resolving the out-of-range offset failed: FENCED_LEADER_EPOCH from ListOffsets is
    /// handled as in a Fetch response, anything else retried after the backoff.
    pub fn on_out_of_range_failed(
        &mut self,
        key: &PartitionKey,
        error: ErrorCode,
        requested_epoch: i32,
        config: &FetcherConfig,
        now_ms: i64,
    ) -> ResponseAction {
        let action = if error == ErrorCode::FencedLeaderEpoch {
            self.fenced(key, requested_epoch)
        } else {
            ResponseAction::Retry
        };
        if action == ResponseAction::Retry {
            self.delay(key, config, now_ms);
        }
        action
    }

    /// A storage error while appending or truncating: the partition stops (Kafka's
    /// `markPartitionFailed`) until it is added again.
    pub fn mark_failed(&mut self, key: &PartitionKey) {
        self.partitions.remove(key);
        self.failed.insert(*key);
    }

    /// Kafka's `onPartitionFenced`: fenced at the epoch we still hold, the partition
    /// stops until the metadata brings a newer one; if the epoch already moved on (the
    /// request was older than our state), retry.
    fn fenced(&mut self, key: &PartitionKey, requested_epoch: i32) -> ResponseAction {
        match self.partitions.get(key) {
            Some(s) if s.current_leader_epoch == requested_epoch => {
                self.mark_failed(key);
                ResponseAction::Fenced
            }
            Some(_) => ResponseAction::Retry,
            None => ResponseAction::Ignore,
        }
    }

    fn delay(&mut self, key: &PartitionKey, config: &FetcherConfig, now_ms: i64) {
        if let Some(s) = self.partitions.get_mut(key)
            && s.ready(now_ms)
        {
            s.delayed_until_ms = Some(now_ms + config.backoff_ms);
        }
    }
}

#[cfg(test)]
mod tests;
