//! Choosing what to clean: Kafka's `LogCleanerManager.cleanableOffsets`,
//! `maxCompactionDelay`, `LogToClean` (dirty ratio) and `Cleaner.groupSegmentsBySize`.

use crate::CleanerConfig;

/// What the cleaner needs to know about one segment. The broker maps its segment list to
/// these, in offset order, the active segment last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    pub base: i64,
    /// One past the last offset written to the segment.
    pub next_offset: i64,
    /// Bytes in the segment file.
    pub size: u64,
    /// Largest record timestamp in the segment (-1 if none).
    pub largest_timestamp: i64,
    /// `baseTimestamp` of the segment's first batch, for `max.compaction.lag.ms`
    /// (Kafka's `getFirstBatchTimestampForSegments`); `None` if empty or unknown.
    pub first_batch_timestamp: Option<i64>,
}

/// A log found cleanable (Kafka's `LogToClean`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CleanPlan {
    /// Where the dirty section starts (the checkpoint, or the log start if the checkpoint
    /// was out of range).
    pub first_dirty: i64,
    /// Base of the first segment the round must not touch: the cleaning upper bound.
    pub first_uncleanable: i64,
    /// The checkpoint was out of the log's range and must be rewritten as `first_dirty`.
    pub force_update_checkpoint: bool,
    pub clean_bytes: u64,
    pub cleanable_bytes: u64,
    /// `cleanable_bytes / (clean_bytes + cleanable_bytes)`.
    pub cleanable_ratio: f64,
    /// How far past `max.compaction.lag.ms` the oldest dirty batch is (0 if not).
    pub max_compaction_delay_ms: i64,
}

impl CleanPlan {
    /// Kafka's `needCompactionNow`.
    pub fn need_compaction_now(&self) -> bool {
        self.max_compaction_delay_ms > 0
    }
}

/// End of `segments[i]` for range tests: the next segment's base (Kafka's `LogSegments`
/// treats a segment as covering everything up to its successor).
fn seg_end(segments: &[SegmentMeta], i: usize) -> i64 {
    segments
        .get(i + 1)
        .map_or(segments[i].next_offset, |s| s.base)
}

/// Indexes of the segments overlapping `[from, to)` (Kafka's `logSegments(from, to)`).
pub(crate) fn overlapping(segments: &[SegmentMeta], from: i64, to: i64) -> Vec<usize> {
    if from >= to {
        return Vec::new();
    }
    (0..segments.len())
        .filter(|&i| segments[i].base < to && seg_end(segments, i) > from)
        .collect()
}

/// Index of the segment holding `offset` (floor by base), or 0 if it is before all.
fn floor_index(segments: &[SegmentMeta], offset: i64) -> usize {
    segments.iter().rposition(|s| s.base <= offset).unwrap_or(0)
}

/// Decides whether and how far to clean a compacted log.
///
/// `segments` are in offset order with the active segment last; `first_dirty` is the
/// cleaner checkpoint (`None` → log start). The first uncleanable offset is the least of the
/// last stable offset, the active segment's base and (with `min.compaction.lag.ms`) the
/// first dirty segment whose largest timestamp is too recent; it is then rounded down to
/// a segment base. The log is cleanable if its dirty ratio exceeds
/// `min.cleanable.dirty.ratio`, or if `max.compaction.lag.ms` is exceeded and something is
/// cleanable.
pub fn cleanable_range(
    segments: &[SegmentMeta],
    first_dirty: Option<i64>,
    last_stable_offset: i64,
    now_ms: i64,
    cfg: &CleanerConfig,
) -> Option<CleanPlan> {
    let active = segments.last()?;
    let log_start = segments[0].base;
    let log_end = active.next_offset;
    let checkpoint = first_dirty.unwrap_or(log_start);
    let (first_dirty, force_update_checkpoint) = if checkpoint < log_start || checkpoint > log_end {
        (log_start, first_dirty.is_some())
    } else {
        (checkpoint, false)
    };
    let non_active = &segments[..segments.len() - 1];
    let dirty_from = floor_index(segments, first_dirty);

    // LogCleanerManager.cleanableOffsets
    let min_lag = cfg.min_compaction_lag_ms.max(0);
    let lag_bound = (min_lag > 0)
        .then(|| {
            non_active
                .iter()
                .skip(dirty_from)
                .find(|s| s.largest_timestamp > now_ms.saturating_sub(min_lag))
                .map(|s| s.base)
        })
        .flatten();
    let uncleanable = [Some(last_stable_offset), Some(active.base), lag_bound]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(active.base)
        .max(first_dirty);

    // LogCleanerManager.calculateCleanableBytes: round down to a segment base.
    let first_uncleanable = non_active
        .get(floor_index(segments, uncleanable))
        .map_or(active.base, |s| s.base);
    let size_of = |ix: Vec<usize>| ix.iter().map(|&i| segments[i].size).sum::<u64>();
    let cleanable_bytes = size_of(overlapping(
        segments,
        first_dirty.min(first_uncleanable),
        first_uncleanable,
    ));
    let clean_bytes = size_of(overlapping(segments, i64::MIN, first_dirty));
    let total = clean_bytes + cleanable_bytes;
    if total == 0 {
        return None;
    }
    let cleanable_ratio = cleanable_bytes as f64 / total as f64;

    // LogCleanerManager.maxCompactionDelay
    let earliest_dirty = non_active
        .iter()
        .skip(dirty_from)
        .filter_map(|s| s.first_batch_timestamp)
        .filter(|&t| t > 0)
        .min();
    let clean_until = now_ms.saturating_sub(cfg.max_compaction_lag_ms.max(0));
    let max_compaction_delay_ms = earliest_dirty
        .filter(|&t| t < clean_until)
        .map_or(0, |t| clean_until - t);

    let plan = CleanPlan {
        first_dirty,
        first_uncleanable,
        force_update_checkpoint,
        clean_bytes,
        cleanable_bytes,
        cleanable_ratio,
        max_compaction_delay_ms,
    };
    let due = plan.need_compaction_now() && cleanable_bytes > 0;
    (due || cleanable_ratio > cfg.min_cleanable_dirty_ratio).then_some(plan)
}

/// Groups consecutive segments so each group's total size stays within `max_size` and its
/// offsets within an i32 of its base (relative offsets in indexes), as Kafka's
/// `groupSegmentsBySize`; each group becomes one cleaned segment. An empty segment always
/// joins its predecessor's group (if the size allows). Returns index ranges into
/// `segments`.
pub fn group_segments_by_size(
    segments: &[SegmentMeta],
    max_size: u64,
    first_uncleanable: i64,
) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let start = i;
        let mut size = segments[i].size;
        i += 1;
        while i < segments.len() {
            let s = &segments[i];
            // Kafka estimates a segment's last offset by the next base.
            let last = segments
                .get(i + 1)
                .map_or(first_uncleanable - 1, |n| n.base - 1);
            let fits_offsets =
                s.size == 0 || last.saturating_sub(segments[start].base) <= i64::from(i32::MAX);
            if size.saturating_add(s.size) <= max_size && fits_offsets {
                size += s.size;
                i += 1;
            } else {
                break;
            }
        }
        groups.push(start..i);
    }
    groups
}
