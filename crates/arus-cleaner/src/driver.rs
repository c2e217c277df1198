//! One cleaning round over a log: Kafka's `Cleaner.doClean`, `buildOffsetMap` and
//! `cleanSegments`, reading through the [`CleanerSource`] trait the broker implements.

use std::collections::HashMap;

use arus_records::{ControlType, RecordBatch};
use bytes::Bytes;
use tracing::{debug, info};

use crate::batch::{plain_section, scan_records};
use crate::clean::{CleanContext, CleanStats, Frame, LastRecord, clean_chunk, frame_at};
use crate::plan::{CleanPlan, SegmentMeta, cleanable_range, group_segments_by_size, overlapping};
use crate::txn::TxnTracker;
use crate::{AbortedTxn, CleanerConfig, CleanerError, OffsetMap, Throttler};

/// Where a cleaned segment is written. `Vec<u8>` works; the broker may write a
/// `.cleaned` file instead so a 1 GiB segment never sits in memory.
pub trait CleanedSink {
    fn append(&mut self, bytes: &[u8]) -> Result<(), CleanerError>;
}

impl CleanedSink for Vec<u8> {
    fn append(&mut self, bytes: &[u8]) -> Result<(), CleanerError> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// What the log must know to swap a cleaned segment in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanedSegmentInfo {
    /// Base offset of the cleaned segment: the first replaced segment's base.
    pub base: i64,
    /// The replaced segments' bases (consecutive, in order).
    pub replaced_bases: Vec<i64>,
    /// One past the last offset the replaced segments covered (the cleaned segment covers
    /// `base..next_offset` even if its last batches are gone).
    pub next_offset: i64,
    /// Largest timestamp of the retained batches (-1 if none).
    pub largest_timestamp: i64,
    /// The cleaned segment's transaction index (Kafka rewrites the `.txnindex` with the
    /// aborted transactions whose marker it kept).
    pub aborted_txns: Vec<AbortedTxn>,
    pub bytes: u64,
}

/// The log as the cleaner sees it. Only [`replace_segments`](Self::replace_segments) and
/// [`set_first_dirty_offset`](Self::set_first_dirty_offset) change it.
///
/// Locking (broker side): `segments`, `last_stable_offset`, `aborted_txns` and
/// `active_producers` need the log's lock only for the moment they copy state out;
/// `read` targets non-active segments, which are immutable, so it can read through a file
/// handle held outside the lock; `replace_segments` takes the lock and must refuse
/// ([`CleanerError::Aborted`]) if the replaced segments are no longer those listed
/// (retention, truncation or deletion ran meanwhile).
pub trait CleanerSource {
    type Sink: CleanedSink;

    /// All segments in offset order, the active one last.
    fn segments(&self) -> Result<Vec<SegmentMeta>, CleanerError>;
    /// The cleaner checkpoint (first dirty offset), `None` if never cleaned.
    fn first_dirty_offset(&self) -> Option<i64>;
    fn last_stable_offset(&self) -> i64;
    /// Up to `max_bytes` of the segment based at `segment_base`, from byte `position`
    /// (fewer only at the end of the segment).
    fn read(
        &self,
        segment_base: i64,
        position: u64,
        max_bytes: usize,
    ) -> Result<Bytes, CleanerError>;
    /// Aborted transactions overlapping `[from, upper)` (Kafka's
    /// `collectAbortedTransactions`).
    fn aborted_txns(&self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>, CleanerError>;
    /// Last record of each producer still in the producer state.
    fn active_producers(&self) -> Result<HashMap<i64, LastRecord>, CleanerError>;
    /// Starts a cleaned segment that will replace segments from `base`.
    fn create_cleaned(&mut self, base: i64) -> Result<Self::Sink, CleanerError>;
    /// Atomically swaps `cleaned` in for `info.replaced_bases`.
    fn replace_segments(
        &mut self,
        cleaned: Self::Sink,
        info: CleanedSegmentInfo,
    ) -> Result<(), CleanerError>;
    /// Persists the cleaner checkpoint.
    fn set_first_dirty_offset(&mut self, offset: i64) -> Result<(), CleanerError>;
    /// Called between chunks; return `Err(Aborted)` to stop the round (Kafka's
    /// `checkDone`).
    fn check_abort(&self) -> Result<(), CleanerError> {
        Ok(())
    }
}

/// Outcome of a round that ran.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanResult {
    pub plan: CleanPlan,
    /// New checkpoint: everything below it is clean. Below `plan.first_uncleanable` when
    /// the offset map filled up; the next round continues from here.
    pub end_offset: i64,
    pub stats: CleanStats,
    /// Distinct keys in the offset map and its fill ratio.
    pub map_keys: usize,
    pub map_utilization: f64,
    pub segments_written: usize,
}

/// Reads one segment in chunks of whole batches, calling `f` on each chunk with its
/// position; a batch larger than the chunk size is re-read whole, bounded by what is left
/// in the segment. `f` returns the bytes it consumed, whether to stop and how many bytes
/// it wrote (reads and writes both count against the I/O rate, as in Kafka).
fn for_each_chunk<S: CleanerSource>(
    source: &S,
    seg: &SegmentMeta,
    io_buffer: usize,
    throttle: &mut Throttler,
    mut f: impl FnMut(&Bytes, u64) -> Result<(usize, bool, usize), CleanerError>,
) -> Result<(), CleanerError> {
    let mut pos = 0u64;
    let mut want = io_buffer.max(arus_records::BATCH_HEADER_LEN);
    while pos < seg.size {
        source.check_abort()?;
        let left = seg.size - pos;
        let n = usize::try_from(left).map_or(want, |l| l.min(want));
        let chunk = source.read(seg.base, pos, n)?;
        throttle.throttle(chunk.len() as u64);
        let corrupt = |message: String| CleanerError::CorruptSegment {
            segment_base: seg.base,
            position: pos,
            message,
        };
        if chunk.is_empty() {
            return Err(corrupt(format!("segment ends {left} bytes early")));
        }
        let (consumed, stop, wrote) = f(&chunk, pos)?;
        if wrote > 0 {
            throttle.throttle(wrote as u64);
        }
        if stop {
            return Ok(());
        }
        if consumed == 0 {
            if chunk.len() < n {
                return Err(corrupt(format!(
                    "short read: {} of {n} bytes with {left} left",
                    chunk.len()
                )));
            }
            let total = match frame_at(&chunk, 0).map_err(|e| corrupt(e.to_string()))? {
                Frame::Partial { total } => total,
                Frame::Batch(_) => return Err(corrupt("batch not consumed".into())),
            };
            if total as u64 > left || total <= chunk.len() {
                return Err(corrupt(format!(
                    "batch of {total} bytes with {left} bytes left in the segment"
                )));
            }
            want = total;
            continue;
        }
        pos += consumed as u64;
        want = io_buffer.max(arus_records::BATCH_HEADER_LEN);
    }
    Ok(())
}

fn control_type(batch: &RecordBatch) -> Result<(Option<ControlType>, bool), CleanerError> {
    let corrupt = |source| CleanerError::Corrupt {
        offset: batch.base_offset(),
        source,
    };
    let section = plain_section(batch).map_err(corrupt)?;
    let recs =
        scan_records(&section, batch.record_count(), batch.last_offset_delta()).map_err(corrupt)?;
    let kind = recs
        .first()
        .and_then(|r| r.key.as_ref())
        .and_then(|k| ControlType::from_key(&section[k.clone()]));
    Ok((kind, recs.is_empty()))
}

/// Fills `map` from the dirty range `[start, end)` (Kafka's `buildOffsetMap`): every key of
/// non-aborted data at or after `start`, until the map holds its
/// [`max_entries`](OffsetMap::max_entries). Returns the offset up to which the map is
/// complete (`map.latest_offset() + 1`): `end` unless it filled.
pub fn build_offset_map<S: CleanerSource>(
    source: &S,
    segments: &[SegmentMeta],
    start: i64,
    end: i64,
    map: &mut OffsetMap,
    io_buffer: usize,
    throttle: &mut Throttler,
) -> Result<i64, CleanerError> {
    map.clear();
    let dirty = overlapping(segments, start, end);
    let mut txn = TxnTracker::default();
    txn.add_aborted(source.aborted_txns(start, end)?);
    let max_entries = map.max_entries();
    if max_entries == 0 {
        return Err(CleanerError::MapTooSmall { slots: map.slots() });
    }
    for (n, &i) in dirty.iter().enumerate() {
        let seg = &segments[i];
        let next_start = dirty.get(n + 1).map_or(end, |&j| segments[j].base);
        let mut full = false;
        for_each_chunk(source, seg, io_buffer, throttle, |chunk, _| {
            let mut pos = 0;
            while pos < chunk.len() {
                let batch = match frame_at(chunk, pos)
                    .map_err(|source| CleanerError::Corrupt { offset: -1, source })?
                {
                    Frame::Batch(b) => b,
                    Frame::Partial { .. } => break,
                };
                // Batches before the dirty range hold nothing the map needs (Kafka seeks
                // there through the offset index).
                if batch.last_offset() < start {
                    pos += batch.size();
                    continue;
                }
                if batch.is_control() {
                    let (kind, empty) = control_type(&batch)?;
                    txn.on_control_batch(&batch, kind, empty);
                } else if !txn.on_data_batch(&batch) {
                    let corrupt = |source| CleanerError::Corrupt {
                        offset: batch.base_offset(),
                        source,
                    };
                    let section = plain_section(&batch).map_err(corrupt)?;
                    let recs =
                        scan_records(&section, batch.record_count(), batch.last_offset_delta())
                            .map_err(corrupt)?;
                    for r in &recs {
                        let offset = batch.base_offset().wrapping_add(i64::from(r.offset_delta));
                        if let Some(k) = &r.key
                            && offset >= start
                        {
                            if map.size() >= max_entries {
                                full = true;
                                return Ok((pos, true, 0));
                            }
                            map.put(&section[k.clone()], offset);
                        }
                    }
                }
                map.update_latest_offset(batch.last_offset());
                pos += batch.size();
            }
            Ok((pos, false, 0))
        })?;
        if full {
            debug!(segment = seg.base, "offset map full");
            return Ok(map.latest_offset().saturating_add(1));
        }
        // Offsets may have gaps (an earlier clean): the map covers the whole segment.
        map.update_latest_offset(next_start.saturating_sub(1));
    }
    Ok(map.latest_offset().saturating_add(1))
}

/// A cleaner thread's reusable state: the offset map (allocated once from
/// `log.cleaner.dedupe.buffer.size`) and the I/O throttler.
#[derive(Debug)]
pub struct Cleaner {
    pub map: OffsetMap,
    pub throttler: Throttler,
}

impl Cleaner {
    pub fn new(dedupe_buffer_bytes: usize, throttler: Throttler) -> Cleaner {
        Cleaner {
            map: OffsetMap::new(dedupe_buffer_bytes),
            throttler,
        }
    }

    /// [`clean_log`] with this cleaner's map and throttler.
    pub fn clean_log<S: CleanerSource>(
        &mut self,
        source: &mut S,
        cfg: &CleanerConfig,
        now_ms: i64,
    ) -> Result<Option<CleanResult>, CleanerError> {
        clean_log(source, cfg, now_ms, &mut self.throttler, &mut self.map)
    }
}

/// One round on one log (Kafka's `LogCleaner.cleanLog` → `Cleaner.doClean`): returns
/// `None` if the log is not cleanable now. Otherwise builds the offset map over the dirty
/// range, re-cleans every segment below the map's end (clean ones too: that is how
/// tombstones and markers past their horizon disappear), merging small neighbours into one
/// cleaned segment per group, swaps each group in, then moves the checkpoint.
///
/// `map` is reused across calls (its size is `cfg.dedupe_buffer_bytes` when made by
/// [`Cleaner`]).
pub fn clean_log<S: CleanerSource>(
    source: &mut S,
    cfg: &CleanerConfig,
    now_ms: i64,
    throttle: &mut Throttler,
    map: &mut OffsetMap,
) -> Result<Option<CleanResult>, CleanerError> {
    let segments = source.segments()?;
    let lso = source.last_stable_offset();
    let Some(plan) = cleanable_range(&segments, source.first_dirty_offset(), lso, now_ms, cfg)
    else {
        return Ok(None);
    };
    if plan.force_update_checkpoint {
        source.set_first_dirty_offset(plan.first_dirty)?;
    }
    let io = cfg.io_buffer_bytes;
    let end_offset = build_offset_map(
        source,
        &segments,
        plan.first_dirty,
        plan.first_uncleanable,
        map,
        io,
        throttle,
    )?;
    info!(
        first_dirty = plan.first_dirty,
        first_uncleanable = plan.first_uncleanable,
        end_offset,
        keys = map.size(),
        "cleaning log"
    );

    // Segments below the map's end; never the active one (end <= its base).
    let to_clean: Vec<SegmentMeta> = segments
        .iter()
        .take(segments.len().saturating_sub(1))
        .filter(|s| s.base < end_offset)
        .copied()
        .collect();
    let mut ctx = CleanContext::new(
        now_ms,
        cfg.delete_retention_ms,
        plan.first_uncleanable,
        source.active_producers()?,
    );
    let mut stats = CleanStats::new();
    let mut written = 0;
    for group in group_segments_by_size(&to_clean, cfg.segment_bytes, plan.first_uncleanable) {
        let group = &to_clean[group];
        let Some(first) = group.first() else { continue };
        let mut sink = source.create_cleaned(first.base)?;
        let mut seg_stats = CleanStats::new();
        for (k, seg) in group.iter().enumerate() {
            // The whole segment's range: the cleaned transaction index must be complete.
            let upper = group
                .get(k + 1)
                .or_else(|| segments.iter().find(|s| s.base > seg.base))
                .map_or(seg.next_offset, |s| s.base);
            ctx.add_aborted_txns(source.aborted_txns(seg.base, upper)?);
            let mut out = Vec::new();
            for_each_chunk(source, seg, io, throttle, |chunk, _| {
                out.clear();
                let n = clean_chunk(chunk, map, &mut ctx, &mut seg_stats, &mut out)?;
                if !out.is_empty() {
                    sink.append(&out)?;
                }
                Ok((n, false, out.len()))
            })?;
        }
        let last = group.last().unwrap_or(first);
        let next_offset = segments
            .iter()
            .find(|s| s.base > last.base)
            .map_or(last.next_offset, |s| s.base);
        let info = CleanedSegmentInfo {
            base: first.base,
            replaced_bases: group.iter().map(|s| s.base).collect(),
            next_offset,
            largest_timestamp: seg_stats.max_timestamp,
            aborted_txns: ctx.take_retained_aborted_txns(),
            bytes: seg_stats.bytes_retained,
        };
        debug!(base = info.base, replaced = ?info.replaced_bases, bytes = info.bytes, "swapping in cleaned segment");
        source.check_abort()?;
        source.replace_segments(sink, info)?;
        stats.add(&seg_stats);
        written += 1;
    }
    source.set_first_dirty_offset(end_offset)?;
    Ok(Some(CleanResult {
        plan,
        end_offset,
        stats,
        map_keys: map.size(),
        map_utilization: map.utilization(),
        segments_written: written,
    }))
}
