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
                .map_or(first_uncleanable.saturating_sub(1), |n| {
                    n.base.saturating_sub(1)
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, next: i64, size: u64, largest: i64, first: Option<i64>) -> SegmentMeta {
        SegmentMeta {
            base,
            next_offset: next,
            size,
            largest_timestamp: largest,
            first_batch_timestamp: first,
        }
    }

    /// Clean [0,100), dirty [100,200), active [200,210).
    fn log() -> Vec<SegmentMeta> {
        vec![
            seg(0, 100, 100, 50, Some(10)),
            seg(100, 200, 100, 150, Some(100)),
            seg(200, 210, 10, 205, Some(200)),
        ]
    }

    #[test]
    fn dirty_ratio_must_exceed_the_minimum() {
        let cfg = CleanerConfig::default(); // min ratio 0.5
        // 100 dirty of 200: exactly 0.5 is not enough (Kafka compares with >).
        assert!(cleanable_range(&log(), Some(100), 210, 1_000, &cfg).is_none());
        let cfg = CleanerConfig {
            min_cleanable_dirty_ratio: 0.49,
            ..cfg
        };
        let p = cleanable_range(&log(), Some(100), 210, 1_000, &cfg).unwrap();
        assert_eq!((p.first_dirty, p.first_uncleanable), (100, 200));
        assert_eq!((p.clean_bytes, p.cleanable_bytes), (100, 100));
        assert!(!p.force_update_checkpoint && !p.need_compaction_now());
        // Never cleaned: everything up to the active segment is dirty.
        let p = cleanable_range(&log(), None, 210, 1_000, &cfg).unwrap();
        assert_eq!((p.first_dirty, p.cleanable_ratio), (0, 1.0));
    }

    #[test]
    fn the_last_stable_offset_and_min_lag_hold_segments_back() {
        let cfg = CleanerConfig {
            min_cleanable_dirty_ratio: 0.0,
            ..CleanerConfig::default()
        };
        // An open transaction at 150: the segment holding it is not cleaned.
        assert!(cleanable_range(&log(), Some(100), 150, 1_000, &cfg).is_none());
        let p = cleanable_range(&log(), Some(0), 150, 1_000, &cfg).unwrap();
        assert_eq!(p.first_uncleanable, 100);
        // min.compaction.lag.ms: the dirty segment's newest record (150) is too recent.
        let lag = CleanerConfig {
            min_compaction_lag_ms: 900,
            ..cfg.clone()
        };
        assert!(cleanable_range(&log(), Some(100), 210, 1_000, &lag).is_none());
        let p = cleanable_range(&log(), Some(100), 210, 1_050, &lag).unwrap();
        assert_eq!(p.first_uncleanable, 200);
    }

    #[test]
    fn max_compaction_lag_forces_a_clean_below_the_ratio() {
        let cfg = CleanerConfig {
            min_cleanable_dirty_ratio: 0.9,
            max_compaction_lag_ms: 500,
            ..CleanerConfig::default()
        };
        // The dirty segment's first batch (100) is older than now - 500.
        let p = cleanable_range(&log(), Some(100), 210, 1_000, &cfg).unwrap();
        assert_eq!(p.max_compaction_delay_ms, 400);
        assert!(p.need_compaction_now());
        // Not yet due.
        assert!(cleanable_range(&log(), Some(100), 210, 550, &cfg).is_none());
        // Due but nothing cleanable (the dirty segment is held back by the LSO).
        assert!(cleanable_range(&log(), Some(100), 120, 1_000, &cfg).is_none());
    }

    #[test]
    fn an_out_of_range_checkpoint_is_reset_to_the_log_start() {
        let cfg = CleanerConfig {
            min_cleanable_dirty_ratio: 0.0,
            ..CleanerConfig::default()
        };
        for bad in [-5, 500] {
            let p = cleanable_range(&log(), Some(bad), 210, 1_000, &cfg).unwrap();
            assert_eq!(p.first_dirty, 0);
            assert!(p.force_update_checkpoint);
        }
        assert!(cleanable_range(&[], None, 0, 0, &cfg).is_none());
        // Only an active segment: nothing to clean.
        assert!(cleanable_range(&log()[2..], None, 210, 0, &cfg).is_none());
    }

    #[test]
    fn grouping_by_size_and_offset_range() {
        let s = [
            seg(0, 10, 10, 0, None),
            seg(10, 20, 10, 0, None),
            seg(20, 30, 10, 0, None),
            seg(30, 30, 0, 0, None),
            seg(30, 40, 30, 0, None),
        ];
        assert_eq!(group_segments_by_size(&s, 25, 40), vec![0..2, 2..4, 4..5]);
        assert_eq!(group_segments_by_size(&s, 1 << 30, 40), vec![0..5]);
        // Offsets more than i32::MAX apart never share a group.
        let far = [
            seg(0, 10, 10, 0, None),
            seg(1 << 32, (1 << 32) + 10, 10, 0, None),
        ];
        assert_eq!(
            group_segments_by_size(&far, 1 << 30, (1 << 32) + 10),
            vec![0..1, 1..2]
        );
    }
}
