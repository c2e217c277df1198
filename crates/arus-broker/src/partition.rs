//! One partition's replica state: its log, the high watermark and log start offset that
//! readers see, and the flushed offset that `acks=all` producers wait for.
//!
//! Invariants: `log_start <= min(last_stable, high_watermark) <= log end offset`. On a leader
//! with no other replica the high watermark moves with the log end on append (Kafka's HW
//! with one in-sync replica); the last stable
//! offset is the first offset of the earliest open transaction (or the high watermark), the
//! flushed offset moves when the flusher's fsync completes. Producer state (idempotence,
//! open transactions, aborted transactions) lives in the log, which validates appends under
//! the same lock that assigns their offsets. No lock is held across an `.await`.

pub mod follower;
pub mod leader;
pub mod role;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use arus_log::producer_state::{AbortedTxn, ProducerView};
use arus_log::{
    AppendInfo, Log, LogConfig, LogError, ReadResult, RetentionOutcome, RetentionPolicy,
};
use arus_protocol::ErrorCode;
use arus_records::{ControlType, RecordBatch, batches, control_record_batch};
use arus_replication::{DivergenceCheckError, DivergingEpoch};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::log_dirs::{LogDir, is_dir_failure, names};
use crate::topic_settings::TopicSettings;
use role::{LocalRole, ReplicaRole, RoleError, Transition};

pub struct Partition {
    pub topic: String,
    pub index: i32,
    log: Mutex<Log>,
    /// The log end offset, published after each append (under the log lock).
    log_end: AtomicI64,
    /// Readers (consumers) see offsets below this. A leader whose partition has no other
    /// replica moves it with the log end; otherwise the replication state does (the lowest
    /// log end offset of the ISR), and a follower takes it from its leader's Fetch responses.
    high_watermark: AtomicI64,
    /// Told each time a leader's high watermark advances (`acks=all` waits on it).
    high_watermark_moved: watch::Sender<i64>,
    /// A leader's replication state (see [`leader`]).
    replication: Mutex<leader::Replication>,
    /// Readers with `read_committed` see offsets below this.
    last_stable: AtomicI64,
    log_start_offset: AtomicI64,
    /// Offset up to which (exclusive) the log is known to be on stable storage.
    flushed: watch::Sender<i64>,
    /// Records appended since the last fsync, for `flush.messages`.
    unflushed_records: AtomicU64,
    /// When the oldest unflushed append happened, for `flush.ms` (0: nothing unflushed).
    unflushed_since_ms: AtomicI64,
    /// End offset of the latest append that reached `flush.messages`: Kafka fsyncs in that
    /// append, before the produce is answered, so its handler waits for the flush.
    flush_messages_upto: AtomicI64,
    settings: RwLock<Arc<TopicSettings>>,
    /// The log directory holding the partition (changed by a move).
    location: RwLock<Arc<LogDir>>,
    /// Leader or follower, and at which leader epoch (see [`role`]).
    role: Mutex<ReplicaRole>,
}

/// Why a role change failed.
#[derive(Debug, thiserror::Error)]
pub enum RoleChangeError {
    #[error(transparent)]
    Refused(#[from] RoleError),
    /// The new epoch could not be recorded in `leader-epoch-checkpoint`; the role is
    /// unchanged.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl Partition {
    /// Opens the partition's log in `location` (`<location>/<topic>-<index>`) as its leader
    /// at epoch 0: a single node leads every partition (Kafka `Partition.makeLeader`).
    pub fn open(
        topic: &str,
        index: i32,
        location: Arc<LogDir>,
        settings: Arc<TopicSettings>,
        now_ms: i64,
    ) -> Result<Partition, LogError> {
        Self::open_as(
            topic,
            index,
            location,
            settings,
            LocalRole::Leader { epoch: 0 },
            now_ms,
        )
    }

    /// Opens the partition's log in `location` with the role the metadata gives this node.
    /// A leader's epoch is recorded at the log end; a follower's log is left as it is.
    pub fn open_as(
        topic: &str,
        index: i32,
        location: Arc<LogDir>,
        settings: Arc<TopicSettings>,
        role: LocalRole,
        now_ms: i64,
    ) -> Result<Partition, LogError> {
        let dir = location.path.join(names::current(topic, index));
        let mut log = match Log::open(&dir, settings.log_config(), now_ms) {
            Ok(log) => log,
            Err(e) => {
                if let LogError::Io { source, .. } = &e
                    && is_dir_failure(source)
                {
                    location.fail(&e);
                }
                return Err(e);
            }
        };
        if let LocalRole::Leader { epoch } = role {
            log.become_leader(epoch)?;
        }
        let leo = log.log_end_offset();
        let lso = log.last_stable_offset();
        let start = log.log_start_offset();
        let flushed = log.flushed_offset();
        Ok(Partition {
            topic: topic.to_string(),
            index,
            log_end: AtomicI64::new(leo),
            high_watermark: AtomicI64::new(leo),
            high_watermark_moved: watch::channel(leo).0,
            // A partition opened as a follower has other replicas: once it leads, its high
            // watermark waits for the ISR.
            replication: Mutex::new(match role {
                LocalRole::Leader { .. } => leader::Replication::Solo,
                LocalRole::Follower { .. } => leader::Replication::Awaiting,
            }),
            last_stable: AtomicI64::new(lso),
            log_start_offset: AtomicI64::new(start),
            flushed: watch::channel(flushed).0,
            unflushed_records: AtomicU64::new(0),
            unflushed_since_ms: AtomicI64::new(0),
            flush_messages_upto: AtomicI64::new(0),
            settings: RwLock::new(settings),
            log: Mutex::new(log),
            location: RwLock::new(location),
            role: Mutex::new(ReplicaRole::Active(role)),
        })
    }

    /// Whether this node leads the partition.
    pub fn is_leader(&self) -> bool {
        self.role.lock().is_leader()
    }

    /// The leader epoch of this node's current role (-1 once stopped).
    pub fn leader_epoch(&self) -> i32 {
        self.role.lock().leader_epoch()
    }

    /// Kafka's `Partition.getLocalLog(currentLeaderEpoch, requireLeader)` against this
    /// replica's own role, after the routing checks on the cluster view
    /// ([`crate::cluster::serve_local`]): the view is installed before the roles it implies
    /// are applied, so in between the view may already name this node leader at an epoch the
    /// log has not recorded. Kafka answers from the partition's own state, which changes with
    /// its epoch cache: a stopped replica is NOT_LEADER_OR_FOLLOWER, `current_leader_epoch`
    /// older than the replica's FENCED_LEADER_EPOCH and newer UNKNOWN_LEADER_EPOCH, and a
    /// follower refuses leader-only access with NOT_LEADER_OR_FOLLOWER.
    pub fn check_local_role(
        &self,
        current_leader_epoch: Option<i32>,
        require_leader: bool,
    ) -> Result<(), ErrorCode> {
        let role = *self.role.lock();
        if role == ReplicaRole::Stopped {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        arus_replication::check_current_leader_epoch(current_leader_epoch, role.leader_epoch())?;
        if require_leader && !role.is_leader() {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        Ok(())
    }

    pub fn role(&self) -> ReplicaRole {
        *self.role.lock()
    }

    /// This node now leads the partition at `epoch` (Kafka `Partition.makeLeader`): the epoch
    /// is recorded at the log end before the role changes, so batches appended as leader
    /// carry it. A stale epoch is refused and changes nothing.
    pub fn become_leader(&self, epoch: i32) -> Result<Transition, RoleChangeError> {
        self.change_role(LocalRole::Leader { epoch })
    }

    /// This node now follows `leader` (-1: none) at `epoch` (Kafka `Partition.makeFollower`).
    /// Copying data from the leader is not built yet: the local log stays as it is.
    pub fn become_follower(&self, leader: i32, epoch: i32) -> Result<Transition, RoleChangeError> {
        self.change_role(LocalRole::Follower { leader, epoch })
    }

    /// Applies `to` (see [`ReplicaRole::transition`]).
    pub fn change_role(&self, to: LocalRole) -> Result<Transition, RoleChangeError> {
        // The log lock first, as `append` takes it: an append sees either the old role and
        // epoch or the new ones, never a new epoch without its checkpoint entry.
        let mut log = self.log.lock();
        let mut role = self.role.lock();
        let mut next = *role;
        let transition = next.transition(to)?;
        if let Transition::BecameLeader { epoch } = transition {
            self.check_online()?;
            self.observe(log.become_leader(epoch))?;
        }
        // A follower promoted belongs to a partition with other replicas: its high
        // watermark waits for the leadership (ISR) the applier gives next, rather than
        // counting its own appends as replicated. A follower keeps no leader state.
        let was_leader = role.is_leader();
        *role = next;
        drop(role);
        match transition {
            Transition::BecameLeader { .. } if !was_leader => self.await_leadership(),
            Transition::BecameFollower { .. } => self.await_leadership(),
            _ => {}
        }
        Ok(transition)
    }

    /// The replica is no longer served (Kafka `StopReplica`); the caller closes or deletes it.
    pub fn stop(&self) -> Transition {
        let transition = self.role.lock().stop();
        self.await_leadership();
        transition
    }

    /// The log directory holding the partition.
    pub fn location(&self) -> Arc<LogDir> {
        self.location.read().clone()
    }

    /// Whether the partition's directory is online (Kafka: `HostedPartition.Online`).
    pub fn is_online(&self) -> bool {
        self.location.read().is_online()
    }

    /// Refuses any log access once the directory is offline: answered as
    /// KAFKA_STORAGE_ERROR, like Kafka's `HostedPartition.Offline`.
    fn check_online(&self) -> Result<(), LogError> {
        let location = self.location();
        if location.is_online() {
            Ok(())
        } else {
            Err(LogError::Io {
                path: location.path.join(names::current(&self.topic, self.index)),
                source: location.offline_error(),
            })
        }
    }

    /// Reports an I/O error of the log to its directory, which goes offline (Kafka's
    /// `LogDirFailureChannel`): a failing disk is not retried into.
    fn observe<R>(&self, result: Result<R, LogError>) -> Result<R, LogError> {
        if let Err(e @ LogError::Io { source, .. }) = &result
            && is_dir_failure(source)
        {
            self.location().fail(e);
        }
        result
    }

    /// Points the partition at `location` (a move's commit point, under the log lock).
    pub(crate) fn set_location(&self, location: Arc<LogDir>) {
        *self.location.write() = location;
    }

    pub fn settings(&self) -> Arc<TopicSettings> {
        self.settings.read().clone()
    }

    pub fn set_settings(&self, settings: Arc<TopicSettings>) {
        let log_config: LogConfig = settings.log_config();
        *self.settings.write() = settings;
        self.log.lock().set_config(log_config);
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The last stable offset: `read_committed` consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// Where leader epoch `epoch` ended in this replica's log, as OffsetForLeaderEpoch
    /// answers: Kafka's `UnifiedLog.endOffsetForEpoch` (see [`Log::end_offset_for_epoch`]);
    /// `(-1, -1)` when the cache cannot say.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.log.lock().end_offset_for_epoch(epoch)
    }

    /// KIP-320's divergence check of a Fetch with `last_fetched_epoch` (see
    /// [`Log::diverging_epoch`]), against the log as it is now.
    pub fn diverging_epoch(
        &self,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    ) -> Result<Option<DivergingEpoch>, DivergenceCheckError> {
        self.log
            .lock()
            .diverging_epoch(fetch_offset, last_fetched_epoch)
    }

    /// The leader epoch of the batch holding `offset` (the epoch cache's
    /// `epochForOffset`), for ListOffsets' `leader_epoch`.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.log.lock().epoch_for_offset(offset)
    }

    /// The latest epoch in the cache (Kafka's `latestEpoch`).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.log.lock().latest_epoch()
    }

    /// Appends validated batches; returns where they landed (for a retried batch of an
    /// idempotent producer, where the original landed: `info.duplicate`). The caller decides
    /// whether to wait for [`Partition::wait_flushed`].
    pub fn append(
        &self,
        batches: &mut [u8],
        records: u64,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.check_online()?;
        let mut log = self.log.lock();
        let epoch = self.append_epoch();
        let info = self.observe(log.append(batches, Some(epoch), now_ms))?;
        if info.duplicate {
            return Ok(info);
        }
        self.publish_offsets(&log);
        let unflushed = self.unflushed_records.load(Ordering::Relaxed) + records;
        if unflushed >= self.settings().flush_messages {
            self.flush_messages_upto
                .fetch_max(log.log_end_offset(), Ordering::Release);
        }
        drop(log);
        self.note_unflushed(records, now_ms);
        Ok(info)
    }

    /// Whether offsets below `end_offset` must be fsynced before their produce is answered
    /// because an append reached `flush.messages` (see [`Partition::append`]).
    pub fn flush_messages_reached(&self, end_offset: i64) -> bool {
        end_offset <= self.flush_messages_upto.load(Ordering::Acquire)
    }

    /// Writes a transaction marker (COMMIT or ABORT) for `producer_id`; the log closes the
    /// producer's open transaction, which may move the last stable offset.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let kind = if commit {
            ControlType::Commit
        } else {
            ControlType::Abort
        };
        let mut batch =
            control_record_batch(kind, producer_id, producer_epoch, coordinator_epoch, now_ms)
                .to_vec();
        self.check_online()?;
        let mut log = self.log.lock();
        let epoch = self.append_epoch();
        let info = self.observe(log.append(&mut batch, Some(epoch), now_ms))?;
        self.publish_offsets(&log);
        drop(log);
        self.note_unflushed(1, now_ms);
        Ok(info)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1: the high watermark),
    /// deleting the segments wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        self.check_online()?;
        let mut log = self.log.lock();
        let start = self.observe(log.delete_records_before(offset))?;
        self.log_start_offset
            .store(log.log_start_offset(), Ordering::Release);
        Ok(start)
    }

    /// Deletes the oldest segments past `retention.ms` / `retention.bytes`; the caller
    /// unlinks `pending_deletes` after `file.delete.delay.ms`.
    pub fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now_ms: i64,
    ) -> Result<RetentionOutcome, LogError> {
        self.check_online()?;
        let mut log = self.log.lock();
        let outcome = self.observe(log.apply_retention(policy, now_ms))?;
        self.log_start_offset
            .store(log.log_start_offset(), Ordering::Release);
        Ok(outcome)
    }

    /// Runs `f` on the log under its lock (the log cleaner's short steps: listing segments,
    /// swapping cleaned ones in). Keep `f` short: appends wait meanwhile.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut Log) -> R) -> R {
        let mut log = self.log.lock();
        let r = f(&mut log);
        self.log_start_offset
            .store(log.log_start_offset(), Ordering::Release);
        r
    }

    /// Aborted transactions a `read_committed` fetch of `[from, upper)` must report.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        self.log.lock().collect_aborted_txns(from, upper)
    }

    /// Producers with state in this partition (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerView> {
        self.log.lock().producers()
    }

    /// Forgets producers idle for `producer.id.expiration.ms`.
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) {
        self.log
            .lock()
            .remove_expired_producers(now_ms, expiration_ms);
    }

    /// Publishes the log's end and last stable offset to lock-free readers. Called with the
    /// log lock held, so the two never go backwards.
    fn publish_offsets(&self, log: &Log) {
        let end = log.log_end_offset();
        self.log_end.store(end, Ordering::Release);
        if self.role.lock().is_leader() {
            self.leader_appended(end, crate::broker::now_ms());
        }
        self.last_stable
            .store(log.last_stable_offset(), Ordering::Release);
    }

    fn note_unflushed(&self, records: u64, now_ms: i64) {
        self.unflushed_records.fetch_add(records, Ordering::Relaxed);
        let _ = self.unflushed_since_ms.compare_exchange(
            0,
            now_ms.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<ReadResult, LogError> {
        self.check_online()?;
        let read = self.log.lock().read(offset, max_bytes, max_offset);
        self.observe(read)
    }

    /// See [`arus_log::Log::read_slice`].
    pub fn read_slice(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<Option<arus_log::FileSlice>, LogError> {
        self.check_online()?;
        let read = self.log.lock().read_slice(offset, max_bytes, max_offset);
        self.observe(read)
    }

    /// Calls `f` with every batch from the log start to the high watermark, in order: how
    /// the coordinators load their internal topics at start-up. Stops at the first batch
    /// that cannot be parsed (recovery has already truncated torn tails).
    pub fn for_each_batch(&self, mut f: impl FnMut(&RecordBatch)) -> Result<(), LogError> {
        let end = self.high_watermark();
        let mut offset = self.log_start_offset();
        while offset < end {
            let read = self.read(offset, 4 << 20, end)?;
            let before = offset;
            for batch in batches(read.bytes) {
                let Ok(batch) = batch else { break };
                if batch.next_offset() <= offset {
                    continue;
                }
                offset = batch.next_offset();
                f(&batch);
            }
            if offset == before {
                break;
            }
        }
        Ok(())
    }

    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        self.check_online()?;
        let found = self.log.lock().offset_for_timestamp(ts);
        self.observe(found)
    }

    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        self.log.lock().max_timestamp_offset()
    }

    /// Writes Kafka's `partition.metadata` (the topic id) into the partition's directory if
    /// it does not already hold it. Best effort: Arus's own record of topic ids is its
    /// metadata file; this one is for Kafka's tools, so a failure costs a warning.
    pub fn record_topic_id(&self, topic_id: &[u8; 16]) {
        let dir = self.log.lock().dir().to_path_buf();
        if let Err((path, e)) = arus_log::partition_metadata::record(&dir, topic_id) {
            tracing::warn!(path = %path.display(), "cannot write partition.metadata: {e}");
        }
    }

    /// The partition leader epoch stamped on appended batches: the current role's (0 for
    /// the single node, as before roles existed; a stopped replica keeps 0 rather than -1,
    /// which the log would take for "no epoch").
    fn append_epoch(&self) -> i32 {
        self.role.lock().leader_epoch().max(0)
    }

    /// Whether `flush.messages` / `flush.ms` ask for an fsync now.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        let settings = self.settings();
        let records = self.unflushed_records.load(Ordering::Relaxed);
        if records == 0 {
            return false;
        }
        if records >= settings.flush_messages {
            return true;
        }
        let since = self.unflushed_since_ms.load(Ordering::Relaxed);
        since > 0 && now_ms.saturating_sub(since) >= settings.flush_ms
    }

    /// Fsyncs everything appended so far. The fsync itself runs without the log lock, so
    /// appends continue meanwhile (group commit: one fsync covers all of them).
    pub fn flush(&self) -> std::io::Result<i64> {
        let location = self.location();
        if !location.is_online() {
            // Wake `acks=all` waiters: they answer KAFKA_STORAGE_ERROR.
            self.flushed.send_modify(|_| {});
            return Err(location.offline_error());
        }
        let target = self.log.lock().flush_target();
        let pending = self.unflushed_records.swap(0, Ordering::Relaxed);
        self.unflushed_since_ms.store(0, Ordering::Relaxed);
        if let Err(e) = target.sync() {
            // Put the count back so a later flush retries.
            self.unflushed_records.fetch_add(pending, Ordering::Relaxed);
            if is_dir_failure(&e) {
                location.fail(&e);
                self.flushed.send_modify(|_| {});
            }
            return Err(e);
        }
        let end = target.end_offset();
        self.log.lock().mark_flushed(end);
        self.flushed.send_if_modified(|v| {
            if end > *v {
                *v = end;
                true
            } else {
                false
            }
        });
        Ok(end)
    }

    pub fn flushed_offset(&self) -> i64 {
        *self.flushed.borrow()
    }

    /// Resolves once every offset below `end_offset` is on stable storage.
    pub async fn wait_flushed(&self, end_offset: i64) {
        let mut rx = self.flushed.subscribe();
        let _ = rx.wait_for(|v| *v >= end_offset).await;
    }

    /// Like [`Partition::wait_flushed`], but also resolves when the partition's directory
    /// goes offline: `true` if the offsets are durable.
    pub async fn wait_flushed_or_offline(&self, end_offset: i64) -> bool {
        let mut rx = self.flushed.subscribe();
        let _ = rx.wait_for(|v| *v >= end_offset || !self.is_online()).await;
        self.flushed_offset() >= end_offset
    }

    /// Closes the log cleanly (fsync + clean-shutdown marker). If a request still holds the
    /// partition, the log is only flushed: the next start then runs recovery, which is safe.
    /// A partition of an offline directory is not touched: no clean-shutdown marker on a
    /// failed disk, so a repaired one is recovered.
    pub fn close(self: Arc<Self>) -> Result<(), LogError> {
        if !self.is_online() {
            return Ok(());
        }
        match Arc::try_unwrap(self) {
            Ok(p) => p.log.into_inner().close(),
            Err(shared) => shared.flush().map(|_| ()).map_err(|source| LogError::Io {
                path: shared.log.lock().dir().to_path_buf(),
                source,
            }),
        }
    }

    /// Removes the partition's data. A request still holding it keeps reading its open files;
    /// the directory is gone either way.
    pub fn delete(self: Arc<Self>) -> Result<(), LogError> {
        match Arc::try_unwrap(self) {
            Ok(p) => p.log.into_inner().delete(),
            Err(shared) => {
                let dir = shared.log.lock().dir().to_path_buf();
                std::fs::remove_dir_all(&dir).map_err(|source| LogError::Io { path: dir, source })
            }
        }
    }

    pub fn size_bytes(&self) -> u64 {
        self.log.lock().size_bytes()
    }
}

/// Shared handle type used across the broker.
pub type PartitionRef = Arc<Partition>;
