//! Log lifecycle: the log start offset, DeleteRecords, retention, delayed segment deletion
//! and the hooks of the log cleaner (compaction), which lives in another crate.
//!
//! # `log-start-offset` ([`LOG_START_OFFSET_FILE`], version [`LOG_START_OFFSET_VERSION`])
//! Same two-line text layout as `recovery-point` (see [`crate::checkpoint`]): the format
//! version, then Kafka's `logStartOffset`. Written (temp file, fsync, rename, directory
//! fsync) whenever the log start moves. Missing or unparseable means the first segment's
//! base; the value read is clamped to `[first segment base, log end]`.
//!
//! # `cleaner-offset-checkpoint` ([`CLEANER_CHECKPOINT_FILE`], version [`CLEANER_CHECKPOINT_VERSION`])
//! Same layout; the offset is the cleaner's first dirty offset (Kafka keeps one
//! `cleaner-offset-checkpoint` per data directory; Arus keeps one per partition directory).
//! Missing means "never cleaned". Lowered to the log end on truncation.
//!
//! # All or nothing
//! A lifecycle change either takes effect durably and the call returns `Ok`, or the call
//! returns the error and nothing changed — in memory or on disk, also across a crash:
//! - DeleteRecords writes the new log start (temp file, fsync, rename, directory fsync)
//!   before memory moves and before any segment file is touched. A full disk fails that
//!   write and leaves the log as it was; a crash after it leaves segments wholly below the
//!   durable start, which open keeps (clamping the start) and the next retention pass
//!   deletes. Deleting those files never fails the committed change.
//! - Retention deletes whole segments, so the new log start is the first remaining
//!   segment's base — which open derives by itself (it clamps the stored start up to the
//!   first segment's base). Retention therefore needs no write at all: it renames or
//!   removes the segments' files, fsyncs the directory, and only then moves memory; the
//!   checkpoint that follows is best effort. That is what lets retention free space on a
//!   full disk, where the checkpoint (a new page) cannot be written. When every segment
//!   expired and a new active segment cannot be rolled (a full disk), all but the active
//!   segment go now and the last one on a later pass. A segment whose files cannot be
//!   renamed or removed stays, with everything after it.
//! - The segment swap commits at its manifest (below); the cleaner checkpoint is written
//!   before memory moves.
//!
//! # Delayed deletion (`file.delete.delay.ms`)
//! Retention renames every file of a deleted segment to `<name>.deleted` and drops the
//! segment from the log at once; the paths are returned in
//! [`RetentionOutcome::pending_deletes`] for the broker to unlink after the delay.
//! [`crate::Log::open`] removes leftover `.deleted` files. In Kafka the delay protects
//! readers holding the segment's file channel; Arus reads copy bytes under the log's lock,
//! so a read never sees a segment disappear under it. Rule for any future zero-copy path:
//! a reader holding a segment's file after releasing the lock must finish within the delay.
//! DeleteRecords and the segments replaced by the cleaner are unlinked at once for the
//! same reason.
//!
//! # Segment swap ([`crate::Log::replace_segments`], Kafka `LocalLog.replaceSegments`)
//! 1. Each new segment's files (`.log`, `.index`, `.timeindex`, `.txnindex` — the last one
//!    possibly empty, so that renaming over an old segment of the same base replaces all
//!    four) are written as `<name>.cleaned` and fsynced.
//! 2. They are renamed to `<name>.swap`; the directory is fsynced.
//! 3. The manifest [`SWAP_MANIFEST_FILE`] is written (temp, fsync, rename, directory
//!    fsync). This is the commit point. Format, text, version [`SWAP_MANIFEST_VERSION`]:
//!    ```text
//!    1
//!    old 0 1000 2000
//!    new 0 1500
//!    ```
//! 4. Completion: every `.swap` file is renamed to its final name (replacing an old file of
//!    the same name), the files of old segments whose base is not a new base are removed,
//!    the directory is fsynced, the manifest removed and the directory fsynced again.
//!
//! On open: with a manifest, step 4 is redone (it is idempotent);
//! without one, every `.cleaned` and `.swap` file is removed (the old segments are intact).
//! In a running log, a failure before step 3 removes the staged files (and a manifest whose
//! directory fsync failed) at once; a failure in step 4 or while opening the new segments
//! is finished by the next `replace_segments` call, which then asks the cleaner to re-plan.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::batch;
use crate::checkpoint;
use crate::producer_state::AbortedTxn;
use crate::segment::{
    self, INDEX_SUFFIX, IndexBuilder, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, segment_path,
};
use crate::txn_index::{self, TXN_INDEX_SUFFIX};
use crate::{Log, LogError, fsync_dir, io_at};

pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";
pub const LOG_START_OFFSET_VERSION: u32 = 1;
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
pub const CLEANER_CHECKPOINT_VERSION: u32 = 1;
/// Suffix appended to the files of a segment awaiting its delayed unlink.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Suffix of a cleaned segment's files while they are written.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's complete files before they take their final names.
pub const SWAP_SUFFIX: &str = ".swap";
pub const SWAP_MANIFEST_FILE: &str = "cleaner-swap";
pub const SWAP_MANIFEST_VERSION: u32 = 1;
/// A manifest larger than this is corrupt (it lists two runs of segment bases).
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The segment files, in the order a swap renames them (`.log` last: a segment exists for
/// `Log::open` once its `.log` does).
const SEGMENT_SUFFIXES: [&str; 4] = [
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    LOG_SUFFIX,
];

/// Kafka topic configs `retention.ms` and `retention.bytes` (-1 = unlimited). For a topic
/// with `cleanup.policy=compact` only, pass both unlimited: like Kafka, only segments
/// below the log start offset are then deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub retention_ms: i64,
    pub retention_bytes: i64,
}

/// What [`Log::apply_retention`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    /// Bytes of batches in the deleted segments.
    pub bytes_deleted: u64,
    pub log_start_offset: i64,
    /// Renamed (`.deleted`) files of the deleted segments, to unlink after
    /// `file.delete.delay.ms`.
    pub pending_deletes: Vec<PathBuf>,
}

/// One segment as the log cleaner sees it ([`Log::segment_infos`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base: i64,
    /// The next segment's base (the log end for the active segment).
    pub next_offset: i64,
    /// Bytes of batches.
    pub size: u64,
    /// Kafka `LogSegment.largestTimestamp`: the max batch timestamp, or the `.log` file's
    /// last-modified time (ms) when no batch has one.
    pub largest_timestamp: i64,
    /// The `.log` file.
    pub path: PathBuf,
}

/// A segment produced by the cleaner: whole v2 batches with their original offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanedSegment {
    pub base: i64,
    pub bytes: Vec<u8>,
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub(crate) fn is_deleted_file(name: &str) -> bool {
    name.ends_with(DELETED_SUFFIX)
}

fn remove_if_exists(p: &Path) -> Result<(), LogError> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_at(p)(e)),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<bool, LogError> {
    match fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_at(from)(e)),
    }
}

fn mtime_ms(p: &Path) -> Option<i64> {
    let m = fs::metadata(p).ok()?.modified().ok()?;
    let d = m.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// Kafka `LogSegment.largestTimestamp`.
fn largest_timestamp(s: &Segment) -> i64 {
    if s.max_timestamp >= 0 {
        s.max_timestamp
    } else {
        mtime_ms(&s.log_path).unwrap_or(s.created_ms)
    }
}

fn write_manifest(dir: &Path, old: &[i64], new: &[i64]) -> Result<(), LogError> {
    let join = |v: &[i64]| {
        v.iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text = format!(
        "{SWAP_MANIFEST_VERSION}\nold {}\nnew {}\n",
        join(old),
        join(new)
    );
    let path = dir.join(SWAP_MANIFEST_FILE);
    let tmp = dir.join(format!("{SWAP_MANIFEST_FILE}.tmp"));
    let write = || -> io::Result<()> {
        let f = fs::File::create(&tmp)?;
        io::Write::write_all(&mut &f, text.as_bytes())?;
        f.sync_data()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io_at(&tmp)(e));
    }
    fs::rename(&tmp, &path).map_err(io_at(&path))?;
    fsync_dir(dir)
}

/// The segment bases a committed swap replaces, and those it puts in their place.
struct SwapManifest {
    old: Vec<i64>,
    new: Vec<i64>,
}

/// `Ok(None)` when there is no manifest.
fn read_manifest(path: &Path) -> Result<Option<SwapManifest>, LogError> {
    let corrupt = |reason: &str| LogError::CorruptSwapManifest {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at(path)(e)),
        Ok(m) if m.len() > MAX_MANIFEST_BYTES => return Err(corrupt("too large")),
        Ok(_) => {}
    }
    let text = fs::read_to_string(path).map_err(io_at(path))?;
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(&SWAP_MANIFEST_VERSION.to_string()) {
        return Err(corrupt("unknown version"));
    }
    let mut list = |tag: &str| -> Result<Vec<i64>, LogError> {
        let line = lines.next().ok_or_else(|| corrupt("truncated"))?;
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some(tag) {
            return Err(corrupt("bad line tag"));
        }
        let v = words
            .map(|w| w.parse::<i64>().ok().filter(|&b| b >= 0))
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| corrupt("bad offset"))?;
        if v.is_empty() || !v.windows(2).all(|w| w[0] < w[1]) {
            return Err(corrupt("offsets not increasing"));
        }
        Ok(v)
    };
    let old = list("old")?;
    let new = list("new")?;
    Ok(Some(SwapManifest { old, new }))
}

/// Step 4 of the swap (see the module docs); idempotent.
fn complete_swap(dir: &Path, old: &[i64], new: &[i64]) -> Result<(), LogError> {
    for &b in new {
        for suffix in SEGMENT_SUFFIXES {
            let fin = segment_path(dir, b, suffix);
            rename_if_exists(&with_suffix(&fin, SWAP_SUFFIX), &fin)?;
        }
    }
    for &b in old {
        if new.binary_search(&b).is_err() {
            for suffix in SEGMENT_SUFFIXES {
                remove_if_exists(&segment_path(dir, b, suffix))?;
            }
        }
    }
    fsync_dir(dir)?;
    remove_if_exists(&dir.join(SWAP_MANIFEST_FILE))?;
    fsync_dir(dir)
}

/// Finishes a committed segment swap or rolls back an uncommitted one (module docs).
pub(crate) fn recover_swap(dir: &Path) -> Result<(), LogError> {
    if let Some(SwapManifest { old, new }) = read_manifest(&dir.join(SWAP_MANIFEST_FILE))? {
        tracing::warn!(dir = %dir.display(), ?old, ?new, "completing an interrupted segment swap");
        complete_swap(dir, &old, &new)?;
    }
    // Without a manifest these are an uncommitted swap; after completing one, strays.
    let mut removed = false;
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(CLEANED_SUFFIX) || name.ends_with(SWAP_SUFFIX) {
            remove_if_exists(&entry.path())?;
            removed = true;
        }
    }
    if removed {
        tracing::warn!(dir = %dir.display(), "rolled back an uncommitted segment swap");
        fsync_dir(dir)?;
    }
    Ok(())
}

/// A validated cleaned segment, ready to be written.
struct Prepared {
    base: i64,
    bytes: Vec<u8>,
    index: IndexBuilder,
    txn: Vec<AbortedTxn>,
}

impl Log {
    /// The high watermark as far as this crate knows: the log end (single node).
    fn high_watermark(&self) -> i64 {
        self.log_end_offset()
    }

    pub(crate) fn persist_log_start(&self) -> Result<(), LogError> {
        persist_log_start_at(&self.dir, self.log_start)
    }

    /// Forgets what lies wholly below the log start (Kafka
    /// `ProducerStateManager.onLogStartOffsetIncremented`): aborted transactions whose
    /// marker is below it, and producer snapshots below it. Producers themselves are kept
    /// until `producer.id.expiration.ms` (KIP-360, Kafka ≥ 2.8): a producer whose batches
    /// retention deleted must still have its retries recognised.
    pub(crate) fn trim_state_below_start(&mut self) -> Result<(), LogError> {
        let start = self.log_start;
        self.aborted.retain(|a| a.last_offset >= start);
        for o in self.snapshot_offsets()? {
            if o < start {
                remove_if_exists(&self.snapshot_path(o))?;
            }
        }
        Ok(())
    }

    /// Moves the log start up to `offset` (never down). The checkpoint is made durable
    /// first and memory follows: on an error nothing changed, so readers still see every
    /// record and nothing below the old start may be deleted (see "All or nothing" in the
    /// module docs).
    fn raise_log_start(&mut self, offset: i64) -> Result<(), LogError> {
        if offset <= self.log_start {
            return Ok(());
        }
        persist_log_start_at(&self.dir, offset)?;
        self.log_start = offset;
        // Kafka `truncateFromStartAsyncFlush` (best effort there too).
        self.update_epochs(|c| {
            c.truncate_from_start(offset);
        });
        // Committed: what follows only frees memory and space, and is redone on the next
        // raise or open, so its failure must not turn the change into an error.
        if let Err(e) = self.trim_state_below_start() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove producer snapshots below the log start");
        }
        Ok(())
    }

    /// Kafka DeleteRecords (`UnifiedLog.maybeIncrementLogStartOffset`): moves the log start
    /// offset up to `offset` (`-1` = the high watermark) and deletes the segments wholly
    /// below it. `offset` must not exceed the high watermark (here the log end) —
    /// [`LogError::DeleteOffsetOutOfRange`], which the broker maps to OFFSET_OUT_OF_RANGE.
    /// The start never moves down. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let hw = self.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if !(0..=hw).contains(&target) {
            return Err(LogError::DeleteOffsetOutOfRange {
                offset,
                high_watermark: hw,
            });
        }
        self.raise_log_start(target)?;
        let start = self.log_start;
        let n = self.count_deletable(|_, next| next.is_some_and(|n| n.base <= start));
        self.delete_front_segments(n, false, 0);
        Ok(self.log_start)
    }

    /// Kafka `UnifiedLog.deleteOldSegments` with `cleanup.policy=delete`, in Kafka's order:
    /// segments below the log start offset (`deleteLogStartOffsetBreachedSegments`), then
    /// by size (`deleteRetentionSizeBreachedSegments`: oldest first while
    /// `size - segment.size >= retention.bytes`), then by time
    /// (`deleteRetentionMsBreachedSegments`: oldest first while
    /// `now - segment.largestTimestamp > retention.ms`). Each pass stops at the first
    /// segment it keeps, never deletes an empty active segment nor a segment reaching above
    /// the high watermark, and rolls a new active segment first when every segment goes.
    /// Deleted segments are renamed for a delayed unlink (see the module docs). The log
    /// start offset then moves to the first remaining segment's base if that is higher.
    /// Takes effect without writing anything, so it frees space on a full disk; what cannot
    /// be deleted now (a failed rename, no room to roll) is left for the next pass.
    pub fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now_ms: i64,
    ) -> Result<RetentionOutcome, LogError> {
        let mut out = RetentionOutcome::default();
        let start = self.log_start;
        let n = self.count_deletable(|_, next| next.is_some_and(|n| n.base <= start));
        out.absorb(self.delete_front_segments(n, true, now_ms));
        if policy.retention_bytes >= 0 {
            let size = self.size_bytes();
            let limit = policy.retention_bytes as u64;
            if size >= limit {
                let mut diff = size - limit;
                let n = self.count_deletable(|s, _| {
                    if diff >= s.size {
                        diff -= s.size;
                        true
                    } else {
                        false
                    }
                });
                out.absorb(self.delete_front_segments(n, true, now_ms));
            }
        }
        if policy.retention_ms >= 0 {
            let n = self.count_deletable(|s, _| {
                now_ms.saturating_sub(largest_timestamp(s)) > policy.retention_ms
            });
            out.absorb(self.delete_front_segments(n, true, now_ms));
        }
        out.log_start_offset = self.log_start;
        Ok(out)
    }

    /// Kafka `LocalLog.deletableSegments` + the high-watermark check of
    /// `UnifiedLog.deleteOldSegments`: how many segments, oldest first, `pred` accepts.
    fn count_deletable(&self, mut pred: impl FnMut(&Segment, Option<&Segment>) -> bool) -> usize {
        let hw = self.high_watermark();
        let leo = self.log_end_offset();
        let mut n = 0;
        for (i, s) in self.segments.iter().enumerate() {
            let next = self.segments.get(i + 1);
            let upper = next.map_or(leo, |n| n.base);
            let last_and_empty = next.is_none() && s.size == 0;
            if last_and_empty || upper > hw || !pred(s, next) {
                break;
            }
            n += 1;
        }
        n
    }

    /// Removes the `n` oldest segments (rolling first if that is all of them), renaming
    /// their files for a delayed unlink when `defer`, and raises the log start to the first
    /// remaining segment's base (Kafka `UnifiedLog.deleteSegments`). Needs no write to take
    /// effect durably (see "All or nothing" in the module docs): files first, memory after,
    /// the checkpoint last and best effort. Never fails: what could not be deleted stays,
    /// and the next retention pass tries again.
    fn delete_front_segments(
        &mut self,
        mut n: usize,
        defer: bool,
        now_ms: i64,
    ) -> (usize, u64, Vec<PathBuf>) {
        if n >= self.segments.len() {
            // The log always keeps a segment, and keeps its log end offset.
            if let Err(e) = self.roll(now_ms) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot roll a new segment to delete every expired one; keeping the active segment until the next retention pass");
            }
            // A failed roll may still have added the segment.
            n = n.min(self.segments.len() - 1);
        }
        let mut bytes = 0;
        let mut pending = Vec::new();
        let mut deleted = 0;
        for s in &self.segments[..n] {
            tracing::info!(segment = %s.log_path.display(), size = s.size, "deleting segment");
            let removed = if defer {
                // `.log` first: once it is renamed, open ignores the rest of the segment.
                [&s.log_path, &s.index_path, &s.time_path, &s.txn_path]
                    .into_iter()
                    .try_for_each(|p| {
                        let to = with_suffix(p, DELETED_SUFFIX);
                        if rename_if_exists(p, &to)? {
                            pending.push(to);
                        }
                        Ok::<(), LogError>(())
                    })
            } else {
                s.remove_files().map_err(LogError::from)
            };
            if let Err(e) = removed {
                tracing::warn!(segment = %s.log_path.display(), error = %e, "cannot delete a segment; retrying on the next retention pass");
                break;
            }
            bytes += s.size;
            deleted += 1;
        }
        if deleted == 0 {
            return (0, 0, pending);
        }
        self.segments.drain(..deleted);
        if let Err(e) = fsync_dir(&self.dir) {
            // Lost renames are redone by the next pass; open removes `.deleted` files.
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot fsync the directory after deleting segments");
        }
        let first = self.segments[0].base;
        if first > self.log_start {
            self.log_start = first;
            self.update_epochs(|c| {
                c.truncate_from_start(first);
            });
            // Open derives this start from the first segment: the checkpoint only keeps
            // the file current.
            if let Err(e) = self.persist_log_start() {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the log-start checkpoint after deleting segments (open derives the same start)");
            }
            if let Err(e) = self.trim_state_below_start() {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove producer snapshots below the log start");
            }
        }
        (deleted, bytes, pending)
    }

    /// The segments, oldest first; the last one is the active segment (never cleaned).
    pub fn segment_infos(&self) -> Vec<SegmentInfo> {
        self.segments
            .iter()
            .map(|s| SegmentInfo {
                base: s.base,
                next_offset: s.next_offset,
                size: s.size,
                largest_timestamp: largest_timestamp(s),
                path: s.log_path.clone(),
            })
            .collect()
    }

    /// The log cleaner's first dirty offset, if it ever checkpointed one.
    pub fn cleaner_checkpoint(&self) -> Option<i64> {
        self.cleaner_checkpoint
    }

    /// Persists the log cleaner's first dirty offset (temp file, fsync, rename).
    pub fn set_cleaner_checkpoint(&mut self, first_dirty_offset: i64) -> Result<(), LogError> {
        if first_dirty_offset < 0 {
            return Err(LogError::InvalidArgument(format!(
                "cleaner checkpoint {first_dirty_offset} is negative"
            )));
        }
        checkpoint::write_offset_file(
            &self.dir.join(CLEANER_CHECKPOINT_FILE),
            CLEANER_CHECKPOINT_VERSION,
            first_dirty_offset,
        )?;
        fsync_dir(&self.dir)?;
        self.cleaner_checkpoint = Some(first_dirty_offset);
        Ok(())
    }

    /// Kafka `LocalLog.replaceSegments` for the cleaner: replaces the consecutive
    /// non-active segments `old_bases` by `cleaned` (whole batches with their original
    /// offsets; the first cleaned segment has the first old base, bases increase, and every
    /// batch lies below the next cleaned base, the last ones below the base of the segment
    /// after the run). Crash-safe (see the module docs); the new segments get rebuilt
    /// `.index`/`.timeindex` and the `.txnindex` entries whose markers fall in their range.
    /// Refuses with [`LogError::SegmentsChanged`], changing nothing, if `old_bases` is no
    /// longer a run of non-active segments of the log, and with
    /// [`LogError::InvalidArgument`] for malformed cleaned data. An I/O error before the
    /// commit point leaves the log unchanged (staged files removed); after it (rare:
    /// renames, unlinks) the next call — or the next open — completes the swap, and that
    /// call answers [`LogError::SegmentsChanged`] so that the cleaner re-plans.
    pub fn replace_segments(
        &mut self,
        old_bases: &[i64],
        cleaned: Vec<CleanedSegment>,
    ) -> Result<(), LogError> {
        let changed = |why: String| Err(LogError::SegmentsChanged(why));
        if let Some((old, new)) = self.pending_swap.clone() {
            // An earlier swap failed after its commit point: its files are (or become, by
            // redoing step 4) the log, but memory still lists the old segments. Finish it;
            // the caller's plan was made from the stale list, so it re-plans.
            complete_swap(&self.dir, &old, &new)?;
            self.install_swapped(&old, &new)?;
            self.pending_swap = None;
            tracing::info!(dir = %self.dir.display(), ?old, ?new, "finished an interrupted segment swap");
            return changed("finished an interrupted swap; re-plan".into());
        }
        let Some(&first_old) = old_bases.first() else {
            return Err(LogError::InvalidArgument("no segment to replace".into()));
        };
        let Some(from) = self.segments.iter().position(|s| s.base == first_old) else {
            return changed(format!("no segment at {first_old}"));
        };
        let to = from + old_bases.len();
        if to >= self.segments.len() {
            return changed("the run reaches the active segment".into());
        }
        if !self.segments[from..to]
            .iter()
            .map(|s| s.base)
            .eq(old_bases.iter().copied())
        {
            return changed(format!("segments {old_bases:?} are not consecutive"));
        }
        let range_end = self.segments[to].base;
        if self.dir.join(SWAP_MANIFEST_FILE).exists() {
            // A manifest this log did not leave pending (open completes any): which
            // segments are current is unknown until the log is reopened.
            return changed("an interrupted swap is pending; reopen the log".into());
        }
        let prepared = self.prepare_cleaned(first_old, range_end, cleaned)?;
        let new_bases: Vec<i64> = prepared.iter().map(|p| p.base).collect();
        let old_mtime = self.segments[from..to]
            .iter()
            .filter_map(|s| mtime_ms(&s.log_path))
            .max();

        // Everything up to the end of the run must be durable before the swap, so that the
        // recovery point covers the cleaned range (recovery accepts gaps only below it).
        for s in &self.segments[..to] {
            if s.next_offset > self.flushed || s.base >= self.dir_synced_below {
                s.sync_all()?;
            }
        }

        let mut written: Vec<PathBuf> = Vec::new();
        let committed = self
            .stage_cleaned(&prepared, old_mtime, &mut written)
            .and_then(|()| fsync_dir(&self.dir))
            .and_then(|()| {
                if self.flushed < range_end {
                    self.persist_recovery_point_at(range_end)?;
                    self.flushed = range_end;
                }
                write_manifest(&self.dir, old_bases, &new_bases)
            });
        if let Err(e) = committed {
            // Before the commit point: the old segments are the log. The manifest exists
            // only if its directory fsync failed after the rename; removed, the swap is
            // uncommitted and the staged files are garbage — removed now rather than at
            // the next open, since on a full disk they hold the space appends need.
            // Should the manifest stay, the swap counts as committed and is finished by
            // the next call or open, which need the staged files.
            if remove_if_exists(&self.dir.join(SWAP_MANIFEST_FILE)).is_err() {
                self.pending_swap = Some((old_bases.to_vec(), new_bases));
                return Err(e);
            }
            for p in &written {
                let _ = fs::remove_file(with_suffix(p, CLEANED_SUFFIX));
                let _ = fs::remove_file(with_suffix(p, SWAP_SUFFIX));
            }
            return Err(e);
        }
        // Committed. If completing or installing fails (rare: renames, unlinks, opening
        // files), the next call finishes it; until then reads use the old segments' open
        // files, which hold the same records and more.
        self.pending_swap = Some((old_bases.to_vec(), new_bases.clone()));
        complete_swap(&self.dir, old_bases, &new_bases)?;
        self.install_swapped(old_bases, &new_bases)?;
        self.pending_swap = None;
        tracing::info!(dir = %self.dir.display(), old = ?old_bases, new = ?new_bases, "replaced cleaned segments");
        Ok(())
    }

    /// Replaces the in-memory segments `old` (still listed) by the swapped-in files of
    /// `new`, which span the same offsets.
    fn install_swapped(&mut self, old: &[i64], new: &[i64]) -> Result<(), LogError> {
        let from = self
            .segments
            .iter()
            .position(|s| Some(&s.base) == old.first())
            .ok_or_else(|| LogError::SegmentsChanged(format!("no segment at {old:?}")))?;
        let to = from + old.len();
        let range_end = self.segments[to].base;
        let created = self.segments[from].created_ms;
        let interval = self.config.index_interval_bytes;
        let mut fresh = Vec::with_capacity(new.len());
        for (k, &base) in new.iter().enumerate() {
            let (mut seg, problem) = Segment::open(&self.dir, base, created)?;
            if problem.is_some() {
                seg.rebuild(false, interval)?;
            }
            seg.created_ms = created;
            seg.next_offset = new.get(k + 1).copied().unwrap_or(range_end);
            seg.load_txn_entries()?;
            fresh.push(seg);
        }
        self.segments.splice(from..to, fresh);
        Ok(())
    }

    /// Validates the cleaned segments and builds their indexes in memory.
    fn prepare_cleaned(
        &self,
        first_old: i64,
        range_end: i64,
        cleaned: Vec<CleanedSegment>,
    ) -> Result<Vec<Prepared>, LogError> {
        let invalid = |why: String| Err(LogError::InvalidArgument(why));
        if cleaned.first().map(|c| c.base) != Some(first_old) {
            return invalid(format!(
                "the first cleaned segment must have base {first_old}"
            ));
        }
        let interval = self.config.index_interval_bytes;
        let bases: Vec<i64> = cleaned.iter().map(|c| c.base).collect();
        let mut out = Vec::with_capacity(cleaned.len());
        for (k, c) in cleaned.into_iter().enumerate() {
            let limit = bases.get(k + 1).copied().unwrap_or(range_end);
            if c.base >= limit {
                return invalid(format!(
                    "cleaned segment base {} is not below {limit}",
                    c.base
                ));
            }
            if c.bytes.len() as u64 > u64::from(u32::MAX) {
                return invalid(format!("cleaned segment {} is too large", c.base));
            }
            let mut index = IndexBuilder::new(c.base);
            let mut pos = 0usize;
            let mut min_next = c.base;
            while pos < c.bytes.len() {
                let bad = |why: &str| {
                    Err(LogError::InvalidArgument(format!(
                        "cleaned segment {}: {why} at byte {pos}",
                        c.base
                    )))
                };
                let Ok(h) = batch::parse_header(&c.bytes[pos..]) else {
                    return bad("bad batch header");
                };
                if h.size > c.bytes.len() - pos {
                    return bad("torn batch");
                }
                let b = &c.bytes[pos..pos + h.size];
                if !batch::crc_ok(&h, b) {
                    return bad("CRC mismatch");
                }
                if h.base_offset < min_next || h.last_offset() >= limit {
                    return bad("batch offsets outside the segment's range or out of order");
                }
                index.add(pos as u64, &h, b, interval, u64::MAX, u64::MAX);
                min_next = h.last_offset() + 1;
                pos += h.size;
            }
            index.seal();
            let txn = self
                .aborted
                .iter()
                .filter(|a| a.last_offset >= c.base && a.last_offset < limit)
                .copied()
                .collect();
            out.push(Prepared {
                base: c.base,
                bytes: c.bytes,
                index,
                txn,
            });
        }
        Ok(out)
    }

    /// Steps 1–2 of the swap: writes `.cleaned` files, fsyncs, renames them to `.swap`.
    /// Records the final path of every file in `written` for cleanup on failure.
    fn stage_cleaned(
        &self,
        prepared: &[Prepared],
        mtime_ms: Option<i64>,
        written: &mut Vec<PathBuf>,
    ) -> Result<(), LogError> {
        for p in prepared {
            let mut txn = Vec::with_capacity(p.txn.len() * txn_index::TXN_ENTRY_LEN);
            for e in &p.txn {
                txn.extend_from_slice(&txn_index::encode_entry(e));
            }
            let contents: [(&str, &[u8]); 4] = [
                (
                    INDEX_SUFFIX,
                    &segment::encode_offset_index(&p.index.offset_index),
                ),
                (
                    TIME_INDEX_SUFFIX,
                    &segment::encode_time_index(&p.index.time_index),
                ),
                (TXN_INDEX_SUFFIX, &txn),
                (LOG_SUFFIX, &p.bytes),
            ];
            for (suffix, bytes) in contents {
                let fin = segment_path(&self.dir, p.base, suffix);
                let path = with_suffix(&fin, CLEANED_SUFFIX);
                written.push(fin);
                let f = fs::File::create(&path).map_err(io_at(&path))?;
                io::Write::write_all(&mut &f, bytes).map_err(io_at(&path))?;
                if suffix == LOG_SUFFIX
                    && let Some(ms) = mtime_ms.and_then(|m| u64::try_from(m).ok())
                {
                    // Kafka keeps the cleaned segment's last-modified time at the old
                    // segments' so that time retention of timestamp-less data is unchanged.
                    let t = UNIX_EPOCH + std::time::Duration::from_millis(ms);
                    f.set_modified(t).map_err(io_at(&path))?;
                }
                f.sync_data().map_err(io_at(&path))?;
            }
        }
        fsync_dir(&self.dir)?;
        for fin in written.iter() {
            let cleaned = with_suffix(fin, CLEANED_SUFFIX);
            fs::rename(&cleaned, with_suffix(fin, SWAP_SUFFIX)).map_err(io_at(&cleaned))?;
        }
        Ok(())
    }
}

/// Writes the `log-start-offset` checkpoint (temp file, fsync, rename, directory fsync).
fn persist_log_start_at(dir: &Path, offset: i64) -> Result<(), LogError> {
    checkpoint::write_offset_file(
        &dir.join(LOG_START_OFFSET_FILE),
        LOG_START_OFFSET_VERSION,
        offset,
    )?;
    fsync_dir(dir)
}

impl RetentionOutcome {
    fn absorb(&mut self, (n, bytes, pending): (usize, u64, Vec<PathBuf>)) {
        self.segments_deleted += n;
        self.bytes_deleted += bytes;
        self.pending_deletes.extend(pending);
    }
}
