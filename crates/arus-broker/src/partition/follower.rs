//! A follower replica's side of the log (Kafka's `Partition.appendRecordsToFollowerOrFutureReplica`,
//! `truncateTo`, `truncateFullyAndStartAt` and the offsets `ReplicaFetcherThread` takes from
//! a Fetch response): what the replica fetcher (`arus-cluster`'s `replica_fetcher`) does to
//! the partition, each step under the log lock and checked against the replica's role.
//!
//! Every step names the leader epoch it was decided under: the metadata may have made this
//! replica the leader (or a follower at a newer epoch) while a Fetch was out, and the
//! role changes under the same log lock, so a step of the old epoch is refused instead of
//! writing a previous leader's data into a leader's log (Kafka removes the fetcher under
//! its partition-map lock before `makeLeader` for the same reason).

use std::sync::atomic::Ordering;

use arus_log::{AppendInfo, Log, LogError};
use arus_replication::{
    EpochEntry, LeaderEpochCache, TruncationDecision, follower_high_watermark,
    follower_log_start_offset, follower_truncation,
};

use super::Partition;
use super::role::{LocalRole, ReplicaRole};

/// Why a follower step was refused.
#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    /// The replica is no longer a follower at the epoch the step was decided under.
    #[error("the replica is not a follower at leader epoch {expected} (its role: {actual:?})")]
    NotFollower { expected: i32, actual: ReplicaRole },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What a fetcher needs of the local log to start or continue fetching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerLogState {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// The latest leader epoch in the log's epoch cache.
    pub latest_epoch: Option<i32>,
}

impl Partition {
    /// The role check every follower step makes, with the log lock held by the caller
    /// (`change_role` takes the log lock before the role's, so the role cannot change
    /// until the step is done).
    fn check_follower(&self, leader_epoch: i32) -> Result<(), FollowerError> {
        let role = *self.role.lock();
        match role {
            ReplicaRole::Active(LocalRole::Follower { epoch, .. }) if epoch == leader_epoch => {
                Ok(())
            }
            actual => Err(FollowerError::NotFollower {
                expected: leader_epoch,
                actual,
            }),
        }
    }

    /// The local log as the fetcher sees it.
    pub fn follower_log_state(&self) -> FollowerLogState {
        let log = self.log.lock();
        FollowerLogState {
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            high_watermark: self.high_watermark(),
            latest_epoch: log.latest_epoch(),
        }
    }

    /// Appends the leader's batches unchanged (see [`Log::append_as_follower`]) and
    /// publishes the new log end and last stable offset. The caller fsyncs
    /// ([`Partition::flush`]) before fetching past them when `arus.acks.all.fsync` is set:
    /// the leader counts this replica's fetch offset as a durable copy.
    pub fn append_as_follower(
        &self,
        batches: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, FollowerError> {
        self.check_online()?;
        let mut log = self.log.lock();
        self.check_follower(leader_epoch)?;
        let info = self.observe(log.append_as_follower(batches, now_ms))?;
        self.publish_offsets(&log);
        drop(log);
        let records = count_records(batches);
        self.note_unflushed(records, now_ms);
        Ok(info)
    }

    /// Kafka's `getOffsetTruncationState` against this log's epoch cache, for the leader's
    /// `(epoch, end_offset)` (a Fetch response's diverging epoch); `fetch_offset` is where
    /// the fetcher stood.
    pub fn follower_truncation(
        &self,
        leader_epoch: i32,
        leader_end_offset: i64,
        fetch_offset: i64,
    ) -> TruncationDecision {
        let log = self.log.lock();
        let cache = epoch_cache_of(&log);
        follower_truncation(
            leader_epoch,
            leader_end_offset,
            &cache,
            log.log_end_offset(),
            fetch_offset,
        )
    }

    /// Truncates the log to `offset` (a divergence from the leader's log, or the high
    /// watermark of a log without epochs). `fully`: drop everything and restart at
    /// `offset`, even above the log end (the leader's log starts past ours).
    pub fn truncate_as_follower(
        &self,
        offset: i64,
        fully: bool,
        leader_epoch: i32,
    ) -> Result<(), FollowerError> {
        self.check_online()?;
        let mut log = self.log.lock();
        self.check_follower(leader_epoch)?;
        if fully {
            self.observe(log.truncate_fully_and_start_at(offset))?;
        } else {
            self.observe(log.truncate_to(offset))?;
        }
        self.publish_truncation(&log);
        Ok(())
    }

    /// Takes the leader's high watermark and log start offset from a Fetch response
    /// (Kafka `ReplicaFetcherThread.processPartitionData`): the high watermark is the
    /// leader's within the local log, the log start only moves forward (segments wholly
    /// below it go, as DeleteRecords on the leader removed them).
    pub fn update_from_leader(
        &self,
        leader_high_watermark: i64,
        leader_log_start_offset: i64,
        leader_epoch: i32,
    ) -> Result<(), FollowerError> {
        let mut log = self.log.lock();
        self.check_follower(leader_epoch)?;
        let start = log.log_start_offset();
        let target =
            follower_log_start_offset(start, leader_log_start_offset).min(log.log_end_offset());
        if target > start {
            self.check_online()?;
            self.observe(log.delete_records_before(target))?;
            self.log_start_offset
                .store(log.log_start_offset(), Ordering::Release);
        }
        let hw = follower_high_watermark(
            leader_high_watermark,
            log.log_start_offset(),
            log.log_end_offset(),
        );
        self.high_watermark.store(hw, Ordering::Release);
        Ok(())
    }

    /// After a truncation: the log end, last stable offset and log start as the log has
    /// them; the high watermark never above the log end.
    fn publish_truncation(&self, log: &Log) {
        self.publish_offsets(log);
        let end = log.log_end_offset();
        self.high_watermark.fetch_min(end, Ordering::AcqRel);
        // A full truncation restarts the log above the old high watermark.
        let start = log.log_start_offset();
        self.high_watermark.fetch_max(start, Ordering::AcqRel);
        self.log_start_offset.store(start, Ordering::Release);
    }
}

/// The log's leader epochs as a cache the pure truncation decision reads.
fn epoch_cache_of(log: &Log) -> LeaderEpochCache {
    let entries: Vec<EpochEntry> = log
        .leader_epochs()
        .into_iter()
        .map(|(epoch, start)| EpochEntry::new(epoch, start))
        .collect();
    // The log's own cache holds only valid entries.
    LeaderEpochCache::from_entries(&entries).unwrap_or_default()
}

/// Records in `batches` (for `flush.messages`): the `recordsCount` of each v2 batch header
/// (at byte 57; `baseOffset` and `batchLength` at 0 and 8 give each batch's size). The
/// log already checked the headers.
fn count_records(batches: &[u8]) -> u64 {
    const LENGTH_AT: usize = 8;
    const COUNT_AT: usize = 57;
    let mut total = 0u64;
    let mut pos = 0usize;
    while let Some(header) = batches.get(pos..pos + COUNT_AT + 4) {
        let length = i32::from_be_bytes(
            header[LENGTH_AT..LENGTH_AT + 4]
                .try_into()
                .unwrap_or([0; 4]),
        );
        let count = i32::from_be_bytes(header[COUNT_AT..COUNT_AT + 4].try_into().unwrap_or([0; 4]));
        total += u64::from(count.max(0) as u32);
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        pos += 12 + length;
    }
    total
}

#[cfg(test)]
mod tests;
