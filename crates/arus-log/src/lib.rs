//! `arus-log`: the storage engine of Arus — one partition's log in one directory.
//!
//! A [`Log`] is a sequence of segments (`.log` files of record batches stored byte-for-byte,
//! with sparse `.index` and `.timeindex` files), plus a `recovery-point` checkpoint and a
//! `.clean-shutdown` marker. It assigns offsets on append (or keeps a leader's, on a
//! follower: [`Log::append_as_follower`]), serves reads by offset and by
//! timestamp, rolls segments, supports group commit through [`FlushTarget`], recovers
//! after a crash by validating batches (header sanity + CRC-32C) from the recovery point
//! and truncating at the first torn or corrupt batch, and truncates on request.
//!
//! It also owns the partition's producer state (idempotence, fencing, transactions; see
//! [`producer_state`]) like Kafka's `UnifiedLog`: appends from producers are validated and
//! deduplicated, transaction markers complete transactions, aborted transactions are kept
//! in per-segment `.txnindex` files ([`txn_index`]) and in memory for Fetch, and the state
//! is checkpointed in `<offset>.snapshot` files (see [`Log::open`] for its recovery).
//!
//! It must not depend on tokio, on anything network-related, or on the broker. Its one Arus
//! dependency is `arus-replication` (pure decisions, no I/O), whose leader epoch cache and
//! `leader-epoch-checkpoint` codec the log uses (`arus-replication` in turn only pulls
//! `arus-protocol`'s error codes and must never depend on this crate). It parses the few
//! record-batch v2 header fields it needs itself (see [`batch`]). The on-disk formats are documented in [`segment`] (segment and index
//! files, Kafka's), [`txn_index`] (Kafka's), [`leader_epoch`] (Kafka's
//! `leader-epoch-checkpoint`), [`partition_metadata`] (Kafka's `partition.metadata`),
//! [`checkpoint`] (recovery point and clean-shutdown marker), [`producer_state`]
//! (snapshots) and [`lifecycle`] (log start offset, cleaner checkpoint, delayed deletes,
//! segment swap).
//!
//! The log's lifecycle ([`lifecycle`]): a log start offset moved by DeleteRecords
//! ([`Log::delete_records_before`]) and retention ([`Log::apply_retention`]), and the hooks
//! of the log cleaner that another crate implements ([`Log::segment_infos`],
//! [`Log::cleaner_checkpoint`], [`Log::replace_segments`]).
//!
//! A `Log` is not internally synchronized: the broker wraps it in a mutex. Fsync happens
//! outside that lock through [`Log::flush_target`] / [`FlushTarget::sync`] /
//! [`Log::mark_flushed`].

mod append;
pub mod batch;
pub mod checkpoint;
pub mod leader_epoch;
pub mod lifecycle;
pub mod partition_metadata;
pub mod producer_state;
pub mod segment;
pub mod txn_index;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arus_replication::{DivergenceCheckError, DivergingEpoch};
use bytes::Bytes;

use crate::batch::{BatchHeader, ControlMarker, NO_TIMESTAMP};
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::{
    AbortedTxn, CompletedTxn, ProducerStateError, ProducerStateManager, ProducerView,
};
use crate::segment::{LOG_SUFFIX, Segment};

pub use crate::lifecycle::{CleanedSegment, RetentionOutcome, RetentionPolicy, SegmentInfo};

/// Per-log configuration (Kafka topic configs `segment.bytes`, `segment.ms`,
/// `index.interval.bytes`, `segment.index.bytes`).
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Roll when the active segment would grow beyond this many bytes. Default 1 GiB.
    pub segment_bytes: u64,
    /// Roll when the active segment is older than this (by the first batch's timestamp,
    /// or its creation time when that is missing). Default 7 days.
    pub segment_ms: i64,
    /// Bytes of batches between two `.index` entries. Default 4096.
    pub index_interval_bytes: u32,
    /// Maximum size of an index file; the segment rolls when its index is full.
    /// Default 10 MiB.
    pub segment_index_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("offset {offset} is out of range: the log holds [{log_start}, {log_end})")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    /// Append input that is not a well-formed sequence of v2 batches.
    #[error("malformed record batch at byte {position} of the append: {reason}")]
    CorruptBatch { position: usize, reason: String },
    /// The append was refused by the producer-state rules (idempotence, fencing,
    /// transactions); see [`ProducerStateError::kafka_error_code`].
    #[error("{0}")]
    Producer(#[from] ProducerStateError),
    /// DeleteRecords asked for an offset above the high watermark (or a negative one other
    /// than -1); the broker answers OFFSET_OUT_OF_RANGE.
    #[error(
        "cannot delete records before offset {offset}: it must be between 0 and the high watermark {high_watermark}, or -1 for the high watermark"
    )]
    DeleteOffsetOutOfRange { offset: i64, high_watermark: i64 },
    /// [`Log::replace_segments`] refused because the segments it names are no longer the
    /// log's (deleted by retention, truncated, rolled into the active one…): retry later.
    #[error("segments changed since the cleaner read them: {0}")]
    SegmentsChanged(String),
    /// Input of a lifecycle call that can never succeed (malformed cleaned segments, a
    /// negative checkpoint).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The segment-swap manifest left by an interrupted [`Log::replace_segments`] is
    /// unreadable, so it is unknown which segments are current; needs an operator.
    #[error("unreadable segment-swap manifest {}: {reason}", path.display())]
    CorruptSwapManifest { path: PathBuf, reason: String },
    /// A follower append starting below the log end (Kafka's
    /// `UnexpectedAppendOffsetException`): the follower must truncate first.
    #[error(
        "unexpected offset in a follower append: first offset {first_offset} is less than the log end offset {log_end_offset}"
    )]
    UnexpectedAppendOffset {
        first_offset: i64,
        last_offset: i64,
        log_end_offset: i64,
    },
    /// A follower append whose batches do not follow each other (Kafka's
    /// `OffsetsOutOfOrderException`).
    #[error(
        "out of order offsets in a follower append: the batch at byte {position} starts at {base_offset}, at or before the previous batch's last offset {previous_last_offset}"
    )]
    OffsetsOutOfOrder {
        position: usize,
        base_offset: i64,
        previous_last_offset: i64,
    },
    /// A negative leader epoch or start offset for the leader epoch cache (Kafka's
    /// `IllegalArgumentException` from `LeaderEpochFileCache.assign`).
    #[error(transparent)]
    InvalidLeaderEpoch(#[from] arus_replication::InvalidEpochEntry),
}

impl From<(PathBuf, io::Error)> for LogError {
    fn from((path, source): (PathBuf, io::Error)) -> Self {
        LogError::Io { path, source }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Producer-state snapshot files: `{offset:020}.snapshot`, format in [`producer_state`].
pub const SNAPSHOT_SUFFIX: &str = "snapshot";
/// How many snapshots are kept (older ones only serve as fallbacks for a torn newest one).
pub const SNAPSHOTS_KEPT: usize = 3;

/// Result of [`Log::append`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// Largest `maxTimestamp` among the appended batches (-1 if none has a timestamp).
    pub max_timestamp: i64,
    /// Offset of the record carrying `max_timestamp` (record-level for uncompressed
    /// CreateTime batches, else the batch's base offset); -1 if no timestamp.
    pub offset_of_max_timestamp: i64,
    pub bytes: usize,
    /// The append duplicated a batch already in the log: nothing was written, the offsets
    /// are those of the original batch, the timestamps -1 and `bytes` 0.
    pub duplicate: bool,
    /// Transactions ended by the control batches of this append.
    pub completed_txns: Vec<CompletedTxn>,
}

/// Result of [`Log::read`]: whole batches, concatenated.
#[derive(Clone, Debug)]
pub struct ReadResult {
    pub bytes: Bytes,
    pub first_batch_offset: Option<i64>,
}

/// Whole batches of one segment file, to be sent without reading them into memory
/// (`sendfile`). Valid for as long as the file is: segments are only ever truncated during
/// recovery, before anything is served, and a deleted or replaced segment stays readable
/// through this handle until it is dropped.
#[derive(Clone, Debug)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub position: u64,
    pub len: usize,
    /// The offset after the slice's data: the base offset of the batch that follows it, or
    /// the segment's end offset, or (a slice of one batch) that batch's last offset + 1.
    /// Bounds the aborted transactions a read_committed fetch reports.
    pub next_offset: i64,
}

impl FileSlice {
    /// The slice's bytes, read into memory (for callers that cannot send from a file).
    pub fn read_to_bytes(&self) -> Result<Bytes, LogError> {
        let mut buf = vec![0u8; self.len];
        self.file
            .read_exact_at(&mut buf, self.position)
            .map_err(io_at(&self.path))?;
        Ok(Bytes::from(buf))
    }
}

/// Everything needed to fsync what was appended up to [`FlushTarget::end_offset`], without
/// holding the log: clones of the affected segment files (plus the finished index files of
/// segments rolled since), and the directory when a segment file was created since the last
/// flush. After `sync()` succeeds, call [`Log::mark_flushed`]`(target.end_offset())`.
#[derive(Clone, Debug)]
pub struct FlushTarget {
    files: Vec<Arc<File>>,
    dir: Option<PathBuf>,
    end_offset: i64,
}

impl FlushTarget {
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// `sync_data` on each file, then fsync of the directory if segments were created.
    pub fn sync(&self) -> io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        if let Some(dir) = &self.dir {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// One partition's log. See the crate docs.
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset; never empty; the last one is active. A non-active segment's
    /// `next_offset` is the next segment's base (batches may end earlier after cleaning).
    segments: Vec<Segment>,
    /// Kafka's `logStartOffset`: reads below it fail. Between the first segment's base and
    /// the log end; persisted in [`lifecycle::LOG_START_OFFSET_FILE`].
    log_start: i64,
    /// The log cleaner's first dirty offset ([`lifecycle::CLEANER_CHECKPOINT_FILE`]).
    cleaner_checkpoint: Option<i64>,
    /// A segment swap past its commit point whose completion or installation in memory
    /// failed (old bases, new bases): finished by the next [`Log::replace_segments`].
    pending_swap: Option<(Vec<i64>, Vec<i64>)>,
    /// Offsets below this are known to be on stable storage.
    flushed: i64,
    /// Directory entries of segments with base offset below this are known durable.
    dir_synced_below: i64,
    producers: ProducerStateManager,
    /// Every aborted transaction of the log (the union of the `.txnindex` files), ordered
    /// by `last_offset`; kept in memory so Fetch does not read index files.
    aborted: Vec<AbortedTxn>,
    /// A `.txnindex` was created: the directory must be fsynced before the log is durable
    /// up to this offset.
    txn_dir_dirty: Option<i64>,
    /// Batches with a producer id read by the last replay (tests check what was scanned).
    last_replay_batches: u64,
    /// Mirrors `leader-epoch-checkpoint` ([`leader_epoch`]).
    epochs: LeaderEpochCache,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .field("flushed", &self.flushed)
            .field("segments", &self.segments.len())
            .field("config", &self.config)
            .finish()
    }
}

fn fsync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

impl Log {
    /// Opens (creating if missing) the log in `dir` and runs recovery, then rebuilds the
    /// producer state; see [`checkpoint`] for the clean and unclean paths.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        let dir = dir.to_path_buf();
        // Before anything looks at segment files: finish or roll back a segment swap.
        lifecycle::recover_swap(&dir)?;
        let mut bases = Vec::new();
        let mut others = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_at(&dir))? {
            let entry = entry.map_err(io_at(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") || lifecycle::is_deleted_file(name) {
                // `.deleted`: segments whose delayed unlink did not happen before a restart.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            if let Some((stem, ext)) = name.split_once('.')
                && ext != SNAPSHOT_SUFFIX
                && stem.len() == 20
                && stem.bytes().all(|b| b.is_ascii_digit())
            {
                let base: i64 = match stem.parse() {
                    Ok(b) => b,
                    Err(_) => continue,
                };
                if ext == LOG_SUFFIX {
                    bases.push(base);
                } else {
                    others.push((base, entry.path()));
                }
            }
        }
        bases.sort_unstable();
        // Index files without a .log are leftovers.
        for (base, path) in others {
            if bases.binary_search(&base).is_err() {
                let _ = std::fs::remove_file(&path);
            }
        }

        let marker_path = dir.join(checkpoint::CLEAN_SHUTDOWN_FILE);
        let clean_leo =
            checkpoint::read_offset_file(&marker_path, checkpoint::CLEAN_SHUTDOWN_VERSION);
        let marker_exists = marker_path.exists();
        let recovery_point = checkpoint::read_offset_file(
            &dir.join(checkpoint::RECOVERY_POINT_FILE),
            checkpoint::RECOVERY_POINT_VERSION,
        )
        .unwrap_or(0);

        let interval = config.index_interval_bytes;
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let mut needs = Vec::with_capacity(bases.len());
        for &base in &bases {
            let (seg, problem) = Segment::open(&dir, base, now_ms)?;
            match &problem {
                Some(segment::IndexProblem::Legacy(which)) => {
                    tracing::info!(segment = %seg.log_path.display(), "{which} is in the previous Arus format; rebuilding it from the log in Kafka's format")
                }
                Some(segment::IndexProblem::Invalid(why)) => {
                    tracing::warn!(segment = %seg.log_path.display(), "found a corrupted index file ({why}); recovering the segment and rebuilding its index files")
                }
                None => {}
            }
            segments.push(seg);
            needs.push(problem.is_some());
        }

        let mut recovered_any = false;
        if segments.is_empty() {
            segments.push(Segment::create(
                &dir,
                0,
                now_ms,
                config.segment_index_bytes,
            )?);
            needs.push(false);
        } else {
            // Where the full (CRC-checking) scan starts.
            let n = segments.len();
            let mut scan_from = match clean_leo {
                Some(leo) if segments[n - 1].next_offset == leo && !needs[n - 1] => n,
                Some(_) => {
                    // (An index to rebuild was already reported.)
                    if !needs[n - 1] {
                        tracing::warn!(dir = %dir.display(), "clean-shutdown marker does not match the log end; recovering the last segment");
                    }
                    n - 1
                }
                None => segments
                    .partition_point(|s| s.base <= recovery_point)
                    .saturating_sub(1),
            };
            if clean_leo.is_none() {
                tracing::info!(dir = %dir.display(), recovery_point, "unclean shutdown; recovering");
            }
            // Above the recovery point a segment ending before the next one starts means
            // lost unflushed data; below it, such a gap was left by the log cleaner
            // (`replace_segments` makes the cleaned range durable first).
            let unflushed_from = scan_from;
            let mut i = 0;
            while i < segments.len() {
                if i >= scan_from || needs[i] {
                    recovered_any = true;
                    let stopped = segments[i].rebuild(true, interval)?;
                    let next_base = segments.get(i + 1).map(|s| s.base);
                    let end = segments[i].next_offset;
                    let gap =
                        next_base.is_some_and(|b| end > b || (end < b && i >= unflushed_from));
                    if let Some(why) = &stopped {
                        tracing::warn!(segment = %segments[i].log_path.display(), "truncated during recovery: {why}");
                    }
                    if stopped.is_some() || gap {
                        if segments.len() > i + 1 {
                            tracing::warn!(dir = %dir.display(), from = segments[i].next_offset, "deleting {} later segment(s) after recovery truncation", segments.len() - i - 1);
                        }
                        for s in segments.drain(i + 1..) {
                            s.remove_files()?;
                        }
                        needs.truncate(i + 1);
                        scan_from = scan_from.min(i + 1);
                    }
                    segments[i].sync_all()?;
                }
                i += 1;
            }
            for i in 1..segments.len() {
                let b = segments[i].base;
                let prev = &mut segments[i - 1];
                prev.next_offset = prev.next_offset.max(b);
            }
            // Kafka's index sizes: inactive segments trimmed to their entries (a crash may
            // have left a preallocated tail), the active one preallocated again.
            let (active, inactive) = segments.split_last().expect("not empty");
            for s in inactive {
                s.trim_indexes()?;
            }
            active.preallocate_indexes(config.segment_index_bytes)?;
        }

        let mut log = Log {
            dir,
            config,
            segments,
            flushed: 0,
            dir_synced_below: 0,
            producers: ProducerStateManager::new(),
            aborted: Vec::new(),
            txn_dir_dirty: None,
            last_replay_batches: 0,
            log_start: 0,
            cleaner_checkpoint: None,
            pending_swap: None,
            epochs: LeaderEpochCache::new(),
        };
        let leo = log.log_end_offset();
        let first_base = log.segments[0].base;
        let stored_start = checkpoint::read_offset_file(
            &log.dir.join(lifecycle::LOG_START_OFFSET_FILE),
            lifecycle::LOG_START_OFFSET_VERSION,
        );
        log.log_start = stored_start
            .unwrap_or(first_base)
            .clamp(first_base, leo.max(first_base));
        if stored_start.is_some_and(|s| s > log.log_start) {
            // Recovery truncated below it: offsets appended from here on must be readable
            // after the next restart too.
            log.persist_log_start()?;
        }
        log.cleaner_checkpoint = checkpoint::read_offset_file(
            &log.dir.join(lifecycle::CLEANER_CHECKPOINT_FILE),
            lifecycle::CLEANER_CHECKPOINT_VERSION,
        );
        log.flushed = leo;
        for seg in &mut log.segments {
            log.aborted.extend(seg.load_txn_entries()?);
        }
        // After a clean shutdown the close-time snapshot at the log end is trusted; after a
        // crash only state below the recovery point is known to match durable data (and
        // `.txnindex` entries above it may be missing), so replay starts at or below it.
        let limit = if clean_leo == Some(leo) {
            leo
        } else {
            recovery_point.min(leo)
        };
        log.remove_snapshots_above(leo)?;
        log.load_producer_state(limit)?;
        log.trim_state_below_start()?;
        log.load_leader_epochs()?;
        if recovered_any || recovery_point != leo {
            log.persist_recovery_point()?;
        }
        if marker_exists {
            std::fs::remove_file(&marker_path).map_err(io_at(&marker_path))?;
        }
        fsync_dir(&log.dir)?;
        // Every existing segment's entry is durable now; any new one will have a base
        // offset above the active segment's (an empty active segment never rolls).
        log.dir_synced_below = log.active().base + 1;
        Ok(log)
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn set_config(&mut self, c: LogConfig) {
        self.config = c;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kafka's `logStartOffset`: the first offset that can be read. At or above the first
    /// segment's base (DeleteRecords can move it into the middle of a segment).
    pub fn log_start_offset(&self) -> i64 {
        self.log_start
    }

    /// The next offset to assign.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has a segment")
    }

    fn maybe_roll(
        &mut self,
        bytes: u64,
        append_max_ts: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let c = &self.config;
        let seg = self.active();
        if seg.size == 0 {
            return Ok(());
        }
        let waited = match seg.first_batch_timestamp {
            Some(t) if t >= 0 => append_max_ts.saturating_sub(t),
            _ => now_ms.saturating_sub(seg.created_ms),
        };
        let roll = seg.size + bytes > c.segment_bytes
            || waited > c.segment_ms
            || seg.index_full(c.segment_index_bytes)
            || last_offset - seg.base > i64::from(u32::MAX)
            || seg.size + bytes > u64::from(u32::MAX);
        if roll {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        // Kafka `LogSegment.onBecomeInactiveSegment`.
        self.active_mut().maybe_append_time_entry()?;
        self.active().trim_indexes()?;
        let seg = Segment::create(&self.dir, leo, now_ms, self.config.segment_index_bytes)?;
        tracing::debug!(dir = %self.dir.display(), base = leo, "rolled segment");
        self.segments.push(seg);
        self.write_snapshot(leo);
        self.persist_recovery_point()
    }

    fn persist_recovery_point(&self) -> Result<(), LogError> {
        self.persist_recovery_point_at(self.flushed)
    }

    fn persist_recovery_point_at(&self, offset: i64) -> Result<(), LogError> {
        checkpoint::write_offset_file(
            &self.dir.join(checkpoint::RECOVERY_POINT_FILE),
            checkpoint::RECOVERY_POINT_VERSION,
            offset,
        )
    }

    /// Index of the segment that would hold `offset` (last segment with base <= offset).
    fn segment_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1)
    }

    /// Reads whole batches starting with the one containing `offset`. Stops before the
    /// first batch whose last offset is >= `max_offset` (exclusive bound, e.g. the high
    /// watermark) and before exceeding `max_bytes` — except that the first batch is always
    /// returned whole if it is below `max_offset` (KIP-74).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<ReadResult, LogError> {
        let end = self.check_readable(offset)?;
        let mut out: Vec<u8> = Vec::new();
        let mut first_batch_offset = None;
        if offset == end || offset >= max_offset {
            return Ok(ReadResult {
                bytes: Bytes::new(),
                first_batch_offset,
            });
        }
        let mut si = self.segment_for(offset);
        // Find the starting batch (possibly in a later segment if `offset` is in a gap).
        let mut pos = loop {
            match self.segments[si].locate(offset)? {
                Some((pos, _)) => break pos,
                None if si + 1 < self.segments.len() => si += 1,
                None => {
                    return Ok(ReadResult {
                        bytes: Bytes::new(),
                        first_batch_offset,
                    });
                }
            }
        };
        'segments: loop {
            let seg = &self.segments[si];
            let avail = seg.size - pos;
            let budget = max_bytes.saturating_sub(out.len()) as u64;
            let mut want = avail.min(budget);
            if out.is_empty() {
                // KIP-74: at least the first whole batch.
                if let Some(h) = seg.read_header(pos)? {
                    want = want.max(h.size as u64).min(avail);
                }
            }
            if want < batch::HEADER_LEN as u64 {
                break;
            }
            let buf = seg.read_bytes(pos, want as usize)?;
            let mut p = 0usize;
            let mut stop = false;
            while p < buf.len() {
                let Ok(h) = batch::parse_header(&buf[p..]) else {
                    stop = p + batch::HEADER_LEN <= buf.len(); // corrupt, not just cut off
                    break;
                };
                if p + h.size > buf.len() {
                    break;
                }
                if h.last_offset() >= max_offset {
                    stop = true;
                    break;
                }
                if first_batch_offset.is_none() {
                    first_batch_offset = Some(h.base_offset);
                }
                p += h.size;
            }
            out.extend_from_slice(&buf[..p]);
            if stop || pos + (p as u64) < seg.size || si + 1 >= self.segments.len() {
                break 'segments;
            }
            si += 1;
            pos = 0;
        }
        Ok(ReadResult {
            bytes: Bytes::from(out),
            first_batch_offset,
        })
    }

    /// The log end offset, or OffsetOutOfRange if `offset` is outside `[start, end]`.
    fn check_readable(&self, offset: i64) -> Result<i64, LogError> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset < start || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: start,
                log_end: end,
            });
        }
        Ok(end)
    }

    /// Like [`Log::read`], as a slice of one segment file instead of bytes in memory: whole
    /// batches from the one containing `offset`, below `max_offset`, within `max_bytes` (or
    /// the whole first batch if it is larger, KIP-74). Stays within one segment, as Kafka's
    /// `LogSegment.read` does; the next fetch continues in the next segment. Where the byte
    /// budget ends inside the segment, the slice ends at the last batch start the offset
    /// index knows before that point (so it never ends mid-batch and never reads the file to
    /// find out; it may stop up to `index.interval.bytes` short of the budget).
    ///
    /// `Ok(None)` when there is nothing to send from this segment at `offset` (at the end,
    /// at or past `max_offset`, or `offset` in a gap that continues in a later segment):
    /// [`Log::read`] answers those cases.
    pub fn read_slice(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<Option<FileSlice>, LogError> {
        let end = self.check_readable(offset)?;
        if offset == end || offset >= max_offset {
            return Ok(None);
        }
        let seg = &self.segments[self.segment_for(offset)];
        let Some((position, first)) = seg.locate(offset)? else {
            return Ok(None);
        };
        if first.last_offset() >= max_offset {
            return Ok(None);
        }
        // Where the readable part of the segment ends, and the offset that starts there.
        let (bound, bound_offset) = if max_offset >= seg.next_offset {
            (seg.size, seg.next_offset)
        } else {
            match seg.locate(max_offset)? {
                Some((p, h)) => (p, h.base_offset),
                None => (seg.size, seg.next_offset),
            }
        };
        let first_end = position + first.size as u64;
        let budget_end = position.saturating_add(max_bytes as u64);
        // The slice's end, and the offset after its data, both known without reading more.
        let (stop, next_offset) = if budget_end >= bound {
            (bound, bound_offset)
        } else {
            seg.indexed_batch_start_at_or_before(budget_end)?
                .filter(|&(b, _)| b > first_end)
                .unwrap_or((first_end, first.last_offset() + 1))
        };
        Ok(Some(FileSlice {
            file: seg.log.clone(),
            path: seg.log_path.clone(),
            position,
            len: (stop - position) as usize,
            next_offset,
        }))
    }

    /// Finds the first record with timestamp >= `timestamp` and returns its
    /// `(offset, timestamp)`. The batch is found through the time index then a scan (first
    /// batch whose `maxTimestamp` >= target); for uncompressed CreateTime batches the
    /// records are walked to return the exact record (Kafka semantics). For compressed or
    /// LogAppendTime batches the result is batch-granular: the batch's base offset and its
    /// `maxTimestamp`. `None` if no batch has a timestamp >= target.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        // Kafka `LogSegment.findOffsetByTimestamp(timestamp, logStartOffset)`: nothing below
        // the log start offset is returned. Unlike Kafka, a segment whose qualifying records
        // are all below the log start does not end the search.
        let start = self.log_start;
        for seg in &self.segments {
            if seg.next_offset <= start || seg.max_timestamp < timestamp {
                continue;
            }
            let i = seg.time_index.partition_point(|&(ts, _)| ts < timestamp);
            let from_time = if i == 0 {
                0
            } else {
                seg.floor_position(seg.base + i64::from(seg.time_index[i - 1].1))?
            };
            // Both are batch starts, so the larger one is too.
            let mut pos = from_time.max(seg.floor_position(start)?);
            while pos < seg.size {
                let Some(h) = seg.read_header(pos)? else {
                    break;
                };
                pos += h.size as u64;
                if h.last_offset() < start || h.max_timestamp < timestamp {
                    continue;
                }
                if h.is_compressed() || h.is_log_append_time() {
                    return Ok(Some((h.base_offset.max(start), h.max_timestamp)));
                }
                let bytes = seg.read_bytes(pos - h.size as u64, h.size)?;
                match batch::find_record_from(&h, &bytes, start, |ts| ts >= timestamp) {
                    Some(found) => return Ok(Some(found)),
                    // Records unparseable: batch-granular answer.
                    None if h.base_offset >= start => {
                        return Ok(Some((h.base_offset, h.max_timestamp)));
                    }
                    None => {}
                }
            }
        }
        Ok(None)
    }

    /// `(offset, timestamp)` of the record with the largest timestamp (earliest on ties),
    /// for ListOffsets `-3`; record-level where [`AppendInfo::offset_of_max_timestamp`] is.
    /// Reads at most one batch (when the segment holding it was loaded from its indexes).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<&Segment> = None;
        for s in &self.segments {
            if s.shallow_offset_of_max_timestamp >= 0
                && s.max_timestamp != NO_TIMESTAMP
                && best.is_none_or(|b| s.max_timestamp > b.max_timestamp)
            {
                best = Some(s);
            }
        }
        match best {
            Some(s) => Ok(s.max_timestamp_record()?),
            None => Ok(None),
        }
    }

    /// A handle that fsyncs everything appended so far, usable without the log. Contract:
    /// after `target.sync()` succeeds, call `mark_flushed(target.end_offset())`.
    pub fn flush_target(&self) -> FlushTarget {
        let mut files = Vec::new();
        let mut need_dir = false;
        let n = self.segments.len();
        for (i, s) in self.segments.iter().enumerate() {
            let new_file = s.base >= self.dir_synced_below;
            if s.next_offset <= self.flushed && !new_file {
                continue;
            }
            files.push(s.log.clone());
            if let Some(f) = &s.txn_file {
                files.push(f.clone());
            }
            if i + 1 < n {
                // A rolled segment: its index files are final; make them durable too.
                files.push(s.index_file.clone());
                files.push(s.time_file.clone());
            }
            need_dir |= new_file;
        }
        need_dir |= self.txn_dir_dirty.is_some();
        FlushTarget {
            files,
            dir: need_dir.then(|| self.dir.clone()),
            end_offset: self.log_end_offset(),
        }
    }

    /// Records that everything below `up_to_offset` is durable (see [`Log::flush_target`]).
    /// The recovery point is persisted on roll, truncation and close.
    pub fn mark_flushed(&mut self, up_to_offset: i64) {
        let up = up_to_offset.min(self.log_end_offset());
        self.flushed = self.flushed.max(up);
        self.dir_synced_below = self.dir_synced_below.max(up);
        if self.txn_dir_dirty.is_some_and(|o| up >= o) {
            self.txn_dir_dirty = None;
        }
    }

    pub fn flushed_offset(&self) -> i64 {
        self.flushed
    }

    /// Fsyncs everything, persists the recovery point and writes the clean-shutdown marker
    /// so the next open skips the recovery scan.
    pub fn close(mut self) -> Result<(), LogError> {
        // Kafka `LogSegment.close`: the last time entry, then the indexes trimmed.
        self.active_mut().maybe_append_time_entry()?;
        self.active().trim_indexes()?;
        let flushed = self.flushed;
        for s in &self.segments {
            if s.next_offset > flushed || s.base >= self.dir_synced_below {
                s.sync_all()?;
            }
        }
        self.sync_active_indexes()?;
        self.flushed = self.log_end_offset();
        self.persist_recovery_point()?;
        self.write_snapshot(self.log_end_offset());
        checkpoint::write_offset_file(
            &self.dir.join(checkpoint::CLEAN_SHUTDOWN_FILE),
            checkpoint::CLEAN_SHUTDOWN_VERSION,
            self.log_end_offset(),
        )?;
        fsync_dir(&self.dir)
    }

    fn sync_active_indexes(&self) -> Result<(), LogError> {
        self.active().sync_all().map_err(Into::into)
    }

    /// Deletes the log's directory and everything in it.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(io_at(&dir))
    }

    /// Drops every batch containing an offset >= `offset`. If `offset` falls inside a
    /// batch, that whole batch goes (the log end becomes its base offset). If `offset` is
    /// at or below the log start, the log is emptied and restarts at `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let fully = offset <= self.log_start_offset();
        self.truncate(offset, fully)
    }

    /// Kafka `UnifiedLog.truncateFullyAndStartAt`: drops every segment and restarts the
    /// log empty at `offset`, even above the log end (a follower whose log ends before the
    /// leader's log start: the offsets in between are gone on the leader).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        self.truncate(offset, true)
    }

    fn truncate(&mut self, offset: i64, fully: bool) -> Result<(), LogError> {
        let now = self.active().created_ms;
        if fully {
            for s in self.segments.drain(..) {
                s.remove_files()?;
            }
            // Kafka `truncateFullyAndStartAt`: no producer state survives, and the
            // leader-epoch cache is cleared.
            self.aborted.clear();
            self.update_epochs(LeaderEpochCache::clear);
            self.remove_snapshots_above(-1)?;
            self.segments.push(Segment::create(
                &self.dir,
                offset.max(0),
                now,
                self.config.segment_index_bytes,
            )?);
            self.log_start = offset.max(0);
            self.persist_log_start()?;
        } else {
            while self.segments.len() > 1 && self.active().base >= offset {
                let s = self.segments.pop().expect("len > 1");
                s.remove_files()?;
            }
            let interval = self.config.index_interval_bytes;
            let index_bytes = self.config.segment_index_bytes;
            let seg = self.active_mut();
            if let Some((pos, _)) = seg.locate(offset)? {
                seg.log.set_len(pos).map_err(io_at(&seg.log_path))?;
                seg.rebuild(false, interval)?;
                seg.preallocate_indexes(index_bytes)?;
            } else if seg.next_offset > offset {
                // `offset` is in a gap the cleaner left at the end of this (formerly
                // non-active) segment: the log end goes back to its last batch.
                seg.rebuild(false, interval)?;
                seg.preallocate_indexes(index_bytes)?;
            }
        }
        let leo = self.log_end_offset();
        self.update_epochs(|c| {
            c.truncate_from_end(leo);
        });
        // Kafka `LogCleanerManager.maybeTruncateCheckpoint`.
        let leo = self.log_end_offset();
        if self.cleaner_checkpoint.is_some_and(|c| c > leo) {
            self.set_cleaner_checkpoint(leo)?;
        }
        let leo = self.log_end_offset();
        if self.log_start > leo {
            // The batch holding the log start went with the truncation.
            self.log_start = leo;
            self.persist_log_start()?;
        }
        self.flushed = self.flushed.min(leo);
        self.remove_snapshots_above(leo)?;
        self.load_producer_state(leo)?;
        self.trim_state_below_start()?;
        self.persist_recovery_point()?;
        fsync_dir(&self.dir)?;
        self.dir_synced_below = self.active().base + 1;
        Ok(())
    }

    /// Kafka's last stable offset: the first offset of the earliest ongoing transaction,
    /// or the log end offset when none is open (the broker caps it by the high watermark).
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .unwrap_or_else(|| self.log_end_offset())
    }

    /// The aborted transactions a fetch of `[from, upper)` must report (Kafka
    /// `UnifiedLog.collectAbortedTransactions`): those with `last_offset >= from` and
    /// `first_offset < upper`, ordered by first offset.
    pub fn collect_aborted_txns(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        let mut out = Vec::new();
        for a in &self.aborted[start..] {
            if a.first_offset < upper {
                out.push(*a);
            }
            // Kafka `TransactionIndex.collectAbortedTxns` stops here: every transaction
            // aborted later started at or after this one's last stable offset.
            if a.last_stable_offset >= upper {
                break;
            }
        }
        out.sort_by_key(|a| a.first_offset);
        out
    }

    /// The partition's producers, ordered by id (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerView> {
        self.producers.views()
    }

    /// Kafka `producer.id.expiration.ms`: forgets producers whose last batch timestamp is
    /// at least `expiration_ms` old and that have no ongoing transaction.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.remove_expired(now_ms, expiration_ms);
    }

    /// Writes `<offset>.snapshot` (temp file + rename, no fsync: a torn snapshot fails its
    /// CRC and recovery falls back to an older one or to replay), then keeps only the
    /// newest [`SNAPSHOTS_KEPT`]. Failures only cost a warning: snapshots are a cache.
    fn write_snapshot(&self, offset: i64) {
        let path = self.dir.join(format!("{offset:020}.{SNAPSHOT_SUFFIX}"));
        let tmp = self.dir.join(format!("{offset:020}.{SNAPSHOT_SUFFIX}.tmp"));
        let bytes = self.producers.encode_snapshot(offset);
        if let Err(e) = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(path = %path.display(), "producer snapshot write failed: {e}");
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        let offsets = self.snapshot_offsets().unwrap_or_default();
        let keep_from = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
        for &o in &offsets[..keep_from] {
            let _ = std::fs::remove_file(self.snapshot_path(o));
        }
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir.join(format!("{offset:020}.{SNAPSHOT_SUFFIX}"))
    }

    /// Offsets of the snapshot files, ascending.
    fn snapshot_offsets(&self) -> Result<Vec<i64>, LogError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_at(&self.dir))? {
            let entry = entry.map_err(io_at(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some((stem, ext)) = name.split_once('.')
                && ext == SNAPSHOT_SUFFIX
                && stem.len() == 20
                && stem.bytes().all(|b| b.is_ascii_digit())
                && let Ok(o) = stem.parse::<i64>()
            {
                out.push(o);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn remove_snapshots_above(&self, offset: i64) -> Result<(), LogError> {
        for o in self.snapshot_offsets()? {
            if o > offset {
                let p = self.snapshot_path(o);
                std::fs::remove_file(&p).map_err(io_at(&p))?;
            }
        }
        Ok(())
    }

    /// Rebuilds the producer state from the newest valid snapshot at or below `limit` (or
    /// from nothing at the log start), dropping aborted-transaction entries at or above
    /// where replay starts, then replaying the batch headers from there to the log end
    /// (Kafka `LogLoader` / `UnifiedLog.rebuildProducerState`).
    fn load_producer_state(&mut self, limit: i64) -> Result<(), LogError> {
        let log_start = self.log_start_offset();
        let mut loaded = None;
        for o in self.snapshot_offsets()?.into_iter().rev() {
            if o > limit {
                continue;
            }
            let p = self.snapshot_path(o);
            let decoded = std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| ProducerStateManager::decode_snapshot(&b).map_err(|e| e.to_string()))
                .and_then(|(off, st)| {
                    if off == o {
                        Ok(st)
                    } else {
                        Err(format!("holds offset {off}"))
                    }
                });
            match decoded {
                Ok(st) => {
                    loaded = Some((o, st));
                    break;
                }
                Err(why) => {
                    tracing::warn!(path = %p.display(), "ignoring producer snapshot: {why}");
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        let (start, state) = match loaded {
            Some((o, st)) => (o.max(log_start), st),
            None => (log_start, ProducerStateManager::new()),
        };
        self.producers = state;
        self.aborted.retain(|a| a.last_offset < start);
        for i in 0..self.segments.len() {
            let seg = &self.segments[i];
            if seg.txn_file.is_none() {
                continue;
            }
            let (lo, hi) = (seg.base, seg.next_offset);
            let keep: Vec<AbortedTxn> = self
                .aborted
                .iter()
                .filter(|a| a.last_offset >= lo && a.last_offset < hi)
                .copied()
                .collect();
            if keep.len() as u64 != seg.txn_entries {
                self.segments[i].write_txn_entries(&keep)?;
            }
        }
        self.replay_from(start)
    }

    /// Applies every batch with a producer id from `start` to the log end: headers only,
    /// plus the marker record of control batches.
    fn replay_from(&mut self, start: i64) -> Result<(), LogError> {
        self.last_replay_batches = 0;
        if start >= self.log_end_offset() {
            return Ok(());
        }
        let first = self.segment_for(start);
        let mut replayed = 0u64;
        for si in first..self.segments.len() {
            let mut pos = if si == first {
                match self.segments[si].locate(start)? {
                    Some((p, _)) => p,
                    None => continue,
                }
            } else {
                0
            };
            let mut touched = false;
            while pos < self.segments[si].size {
                let seg = &self.segments[si];
                let Some(h) = seg.read_header(pos)? else {
                    break;
                };
                pos += h.size as u64;
                if h.producer_id < 0 {
                    continue;
                }
                replayed += 1;
                let marker = if h.is_control() {
                    batch::control_marker(&seg.read_bytes(pos - h.size as u64, h.size)?)
                } else {
                    None
                };
                if let Some(c) = self.producers.apply(&h, marker)
                    && let Some(a) = c.aborted
                {
                    self.aborted.push(a);
                    touched = true;
                    let created = self.segments[si].append_txn_entry(&a)?;
                    if created {
                        self.txn_dir_dirty = Some(self.log_end_offset());
                    }
                }
            }
            // The batches replayed here may already count as flushed (recovery point),
            // so what replay derived from them must be durable now too.
            if touched && let Some(f) = &self.segments[si].txn_file {
                f.sync_data().map_err(io_at(&self.segments[si].txn_path))?;
            }
        }
        self.last_replay_batches = replayed;
        tracing::debug!(dir = %self.dir.display(), start, replayed, "replayed producer state");
        Ok(())
    }

    /// The leader epochs and the offsets they start at (`leader-epoch-checkpoint`).
    pub fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.epochs
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    /// The latest leader epoch that wrote to (or leads) this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// The epoch of the batch holding `offset` per the cache (`None` below every entry).
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epochs.epoch_for_offset(offset)
    }

    /// Kafka `UnifiedLog.endOffsetForEpoch` / `LeaderEpochFileCache.endOffsetFor`, as
    /// OffsetForLeaderEpoch answers: `(epoch, end offset)` where `epoch` is the largest cached
    /// epoch at or below `requested` (or `requested` itself when it is below every entry) and
    /// the end offset is the start of the next cached epoch, or the log end offset for the
    /// latest epoch; `(-1, -1)` for epoch -1, an empty cache or an epoch above the latest.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        self.epochs.end_offset_for(requested, self.log_end_offset())
    }

    /// KIP-320's check of a Fetch carrying `last_fetched_epoch` (Kafka `Partition.readRecords`),
    /// made before the data is read: `Some` when the fetcher's log diverges from this one
    /// (the answer is then no records but that `DivergingEpoch`), an error when the epoch's
    /// end is unknown or `fetch_offset` is below the log start (OFFSET_OUT_OF_RANGE).
    pub fn diverging_epoch(
        &self,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    ) -> Result<Option<DivergingEpoch>, DivergenceCheckError> {
        arus_replication::diverging_epoch(
            &self.epochs,
            self.log_start,
            self.log_end_offset(),
            fetch_offset,
            last_fetched_epoch,
        )
    }

    /// Kafka `Partition.makeLeader` → `maybeAssignEpochStartOffset(epoch, logEndOffset)`:
    /// this replica leads from `epoch` on, starting at the log end. The checkpoint is written
    /// durably before the cache changes, so a failure leaves both as they were.
    pub fn become_leader(&mut self, epoch: i32) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        let mut next = self.epochs.clone();
        if next.assign(epoch, leo)? {
            leader_epoch::write(&self.dir, &next)?;
            self.epochs = next;
        }
        Ok(())
    }

    /// Applies a change to the leader-epoch cache and rewrites the checkpoint if it
    /// changed. The checkpoint is derived state (re-derived at open from the log start,
    /// the log end and the first batch's epoch), and the changes come after the data change
    /// they follow is committed, so a failed write costs a warning, not the change.
    fn update_epochs(&mut self, f: impl FnOnce(&mut LeaderEpochCache)) {
        let before = self.epochs.entries();
        f(&mut self.epochs);
        if self.epochs.entries() != before
            && let Err((path, e)) = leader_epoch::write(&self.dir, &self.epochs)
        {
            tracing::warn!(path = %path.display(), "cannot write the leader-epoch checkpoint: {e}");
        }
    }

    /// Loads `leader-epoch-checkpoint` at open (Kafka `UnifiedLog` initialisation: the
    /// cache is truncated to the log end and the log start). Without a usable file — a
    /// directory of the previous Arus release has none — the cache starts from the epoch
    /// of the first batch at the log start.
    fn load_leader_epochs(&mut self) -> Result<(), LogError> {
        let path = leader_epoch::path(&self.dir);
        let loaded = match leader_epoch::read(&self.dir).map_err(io_at(&path))? {
            Some(Ok(c)) => Some(c),
            Some(Err(why)) => {
                tracing::warn!(path = %path.display(), "ignoring an unreadable leader-epoch checkpoint ({why}); rebuilding it from the log");
                None
            }
            None => None,
        };
        let missing = loaded.is_none();
        let mut cache = loaded.unwrap_or_default();
        let before = cache.entries();
        let (start, leo) = (self.log_start, self.log_end_offset());
        if missing && start < leo {
            let seg = &self.segments[self.segment_for(start)];
            if let Some((pos, h)) = seg.locate(start)? {
                let head = seg.read_bytes(pos, batch::HEADER_LEN)?;
                let epoch = batch::leader_epoch(&head);
                // A batch without an epoch (-1, an old producer's format) leaves it empty.
                if epoch >= 0 {
                    cache.assign(epoch, h.base_offset.max(start))?;
                }
            }
        }
        cache.truncate_from_end(leo);
        cache.truncate_from_start(start);
        let changed = missing || cache.entries() != before;
        self.epochs = cache;
        // A missing file stays missing while there is nothing to say (a new log: the first
        // assignment writes it).
        if changed && (!missing || !self.epochs.is_empty()) {
            leader_epoch::write(&self.dir, &self.epochs)?;
        }
        Ok(())
    }

    /// Total bytes of batches in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod follower_tests;
#[cfg(test)]
mod kafka_format_tests;
#[cfg(test)]
mod lifecycle_tests;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
