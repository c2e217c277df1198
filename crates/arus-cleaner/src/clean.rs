//! Rewriting batches: Kafka's `Cleaner.cleanInto` with its `RecordFilter` and
//! `MemoryRecords.filterTo`.

use std::collections::HashMap;

use arus_records::{BATCH_HEADER_LEN, ControlType, LOG_OVERHEAD, RecordBatch, RecordError};
use bytes::Bytes;

use crate::batch::{
    RawRecord, delete_horizon_ms, empty_header, plain_section, rebuild, scan_records,
};
use crate::txn::TxnTracker;
use crate::{AbortedTxn, CleanerError, OffsetMap};

/// The last record an active producer has in the log (Kafka's `LastRecord`, from
/// `UnifiedLog.lastRecordsOfActiveProducers`): the batch holding it keeps its header even
/// when all its records go, so the producer's epoch and last sequence survive cleaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastRecord {
    /// Last offset of the producer's last data batch; `None` when its last entry is a
    /// transaction marker.
    pub last_data_offset: Option<i64>,
    pub producer_epoch: i16,
}

/// What the record filter needs besides the offset map. Carries the transaction state
/// from one segment to the next within a round, so one context serves the whole round.
#[derive(Debug)]
pub struct CleanContext {
    /// Time of the round. Tombstones and markers whose delete horizon is at or before it
    /// are removed; those without a horizon get `now_ms + delete_retention_ms`.
    pub now_ms: i64,
    pub delete_retention_ms: i64,
    /// First offset the round does not clean (segment-aligned). The batch ending right
    /// before it is kept even when empty so the log's end offset information survives.
    pub upper_bound_offset: i64,
    /// By producer id.
    pub active_producers: HashMap<i64, LastRecord>,
    txn: TxnTracker,
}

impl CleanContext {
    pub fn new(
        now_ms: i64,
        delete_retention_ms: i64,
        upper_bound_offset: i64,
        active_producers: HashMap<i64, LastRecord>,
    ) -> CleanContext {
        CleanContext {
            now_ms,
            delete_retention_ms,
            upper_bound_offset,
            active_producers,
            txn: TxnTracker::default(),
        }
    }

    /// Adds the aborted transactions of the next input (Kafka collects them per source
    /// segment, over the segment's whole offset range, before cleaning it).
    pub fn add_aborted_txns(&mut self, txns: impl IntoIterator<Item = AbortedTxn>) {
        self.txn.add_aborted(txns);
    }

    /// The aborted transactions whose ABORT marker was retained since the last call: the
    /// transaction index of the cleaned segment being written.
    pub fn take_retained_aborted_txns(&mut self) -> Vec<AbortedTxn> {
        self.txn.take_retained()
    }
}

/// Counters of a clean (Kafka's `CleanerStats`), plus what the log needs to describe the
/// cleaned segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub messages_read: u64,
    pub bytes_read: u64,
    pub messages_retained: u64,
    pub bytes_retained: u64,
    /// Records without a key in the cleaned range (Kafka counts them as invalid and drops
    /// them: a compacted log cannot keep a record it cannot deduplicate).
    pub invalid_messages: u64,
    /// Largest `maxTimestamp` among written batches (-1 if none): the cleaned segment's
    /// largest timestamp.
    pub max_timestamp: i64,
}

impl CleanStats {
    pub(crate) fn new() -> CleanStats {
        CleanStats {
            max_timestamp: -1,
            ..CleanStats::default()
        }
    }
    pub(crate) fn add(&mut self, o: &CleanStats) {
        self.messages_read += o.messages_read;
        self.bytes_read += o.bytes_read;
        self.messages_retained += o.messages_retained;
        self.bytes_retained += o.bytes_retained;
        self.invalid_messages += o.invalid_messages;
        self.max_timestamp = self.max_timestamp.max(o.max_timestamp);
    }
}

/// The rewritten batches and the counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanOutput {
    pub bytes: Vec<u8>,
    pub stats: CleanStats,
}

/// Where `maxTimestamp` sits in a v2 batch header.
const MAX_TIMESTAMP_AT: usize = 35;

/// Kafka's `BatchRetention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retention {
    /// Drop without looking at the records.
    Delete,
    /// Keep the header even if no record survives.
    RetainEmpty,
    /// Drop if no record survives.
    DeleteEmpty,
}

/// Where the next batch of `chunk` at `pos` stands.
pub(crate) enum Frame {
    Batch(RecordBatch),
    /// The batch continues past the chunk; `total` is its full size when known.
    Partial {
        total: usize,
    },
}

pub(crate) fn frame_at(chunk: &Bytes, pos: usize) -> Result<Frame, RecordError> {
    let rest = chunk.len() - pos;
    if rest < LOG_OVERHEAD {
        return Ok(Frame::Partial {
            total: BATCH_HEADER_LEN,
        });
    }
    let len_bytes = [
        chunk[pos + 8],
        chunk[pos + 9],
        chunk[pos + 10],
        chunk[pos + 11],
    ];
    let batch_length = i32::from_be_bytes(len_bytes);
    let total = usize::try_from(batch_length)
        .ok()
        .map(|l| l + LOG_OVERHEAD)
        .filter(|&t| t >= BATCH_HEADER_LEN)
        .ok_or(RecordError::InvalidBatchLength {
            batch_length,
            buffer_len: rest,
        })?;
    if total > rest {
        return Ok(Frame::Partial { total });
    }
    Ok(Frame::Batch(RecordBatch::new(
        chunk.slice(pos..pos + total),
    )?))
}

/// Cleans whole batches (one or more source segments' worth, in offset order) against
/// `map`: a record survives iff it is past the map's range or is the latest for its key
/// (tombstones only until their delete horizon); aborted transactional data goes; markers
/// go once removable and past their horizon. See the crate documentation for the rules.
///
/// `ctx` must have been given the aborted transactions overlapping `input` first.
pub fn clean_segment(
    input: Bytes,
    map: &OffsetMap,
    ctx: &mut CleanContext,
) -> Result<CleanOutput, CleanerError> {
    let mut out = Vec::with_capacity(input.len() / 2);
    let mut stats = CleanStats::new();
    let consumed = clean_chunk(&input, map, ctx, &mut stats, &mut out)?;
    if consumed != input.len() {
        return Err(CleanerError::Corrupt {
            offset: -1,
            source: RecordError::Truncated,
        });
    }
    Ok(CleanOutput { bytes: out, stats })
}

/// Cleans the complete batches at the start of `chunk`; returns the bytes consumed (a
/// trailing partial batch is left for the caller to re-read whole).
pub(crate) fn clean_chunk(
    chunk: &Bytes,
    map: &OffsetMap,
    ctx: &mut CleanContext,
    stats: &mut CleanStats,
    out: &mut Vec<u8>,
) -> Result<usize, CleanerError> {
    let mut pos = 0;
    while pos < chunk.len() {
        let batch = match frame_at(chunk, pos)
            .map_err(|source| CleanerError::Corrupt { offset: -1, source })?
        {
            Frame::Batch(b) => b,
            Frame::Partial { .. } => break,
        };
        pos += batch.size();
        clean_batch(&batch, map, ctx, stats, out).map_err(|source| CleanerError::Corrupt {
            offset: batch.base_offset(),
            source,
        })?;
    }
    Ok(pos)
}

fn should_retain_record(
    map: &OffsetMap,
    batch: &RecordBatch,
    horizon: Option<i64>,
    section: &[u8],
    r: &RawRecord,
    now_ms: i64,
    stats: &mut CleanStats,
) -> bool {
    let offset = batch.base_offset().wrapping_add(i64::from(r.offset_delta));
    // Past the map: this round knows nothing newer about the key.
    if offset > map.latest_offset() {
        return true;
    }
    let Some(key) = &r.key else {
        stats.invalid_messages += 1;
        return false;
    };
    let latest_for_key = offset >= map.get(&section[key.clone()]).unwrap_or(-1);
    let retain_deletes = horizon.is_none_or(|h| now_ms < h);
    latest_for_key && (r.has_value || retain_deletes)
}

fn clean_batch(
    batch: &RecordBatch,
    map: &OffsetMap,
    ctx: &mut CleanContext,
    stats: &mut CleanStats,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let control = batch.is_control();
    stats.bytes_read += batch.size() as u64;

    // Control batches are read first: the transaction state needs the marker's type.
    let mut parsed: Option<(Bytes, Vec<RawRecord>)> = None;
    let can_discard = if control {
        let section = plain_section(batch)?;
        let recs = scan_records(&section, batch.record_count(), batch.last_offset_delta())?;
        let kind = recs
            .first()
            .and_then(|r| r.key.as_ref())
            .and_then(|k| ControlType::from_key(&section[k.clone()]));
        let d = ctx.txn.on_control_batch(batch, kind, recs.is_empty());
        parsed = Some((section, recs));
        d
    } else {
        ctx.txn.on_data_batch(batch)
    };

    let horizon = delete_horizon_ms(batch);
    // A marker is discarded only once removable *and* past the delete horizon it was
    // given when first found removable (Kafka piggy-backs on tombstone retention).
    let discard_records = if control {
        can_discard && horizon.is_some_and(|h| h <= ctx.now_ms)
    } else {
        can_discard
    };
    let last_of_producer =
        ctx.active_producers
            .get(&batch.producer_id())
            .is_some_and(|lr| match lr.last_data_offset {
                Some(o) => batch.last_offset() == o,
                None => control && batch.producer_epoch() == lr.producer_epoch,
            });
    // Kept even if empty: the batch holding an active producer's last sequence/epoch, and
    // the round's last batch (so the log's last offset is not lost).
    let retention = if (batch.producer_id() >= 0 && last_of_producer)
        || batch.next_offset() == ctx.upper_bound_offset
    {
        Retention::RetainEmpty
    } else if discard_records {
        Retention::Delete
    } else {
        Retention::DeleteEmpty
    };
    if retention == Retention::Delete {
        return Ok(());
    }

    let (section, recs) = match parsed {
        Some(p) => p,
        None => {
            let section = plain_section(batch)?;
            let recs = scan_records(&section, batch.record_count(), batch.last_offset_delta())?;
            (section, recs)
        }
    };
    let mut keep: Vec<&RawRecord> = Vec::with_capacity(recs.len());
    let mut contains_tombstones = false;
    for r in &recs {
        stats.messages_read += 1;
        let retain = if discard_records {
            false
        } else if control {
            true
        } else {
            should_retain_record(map, batch, horizon, &section, r, ctx.now_ms, stats)
        };
        if retain {
            contains_tombstones |= !r.has_value;
            keep.push(r);
        }
    }

    let written_start = out.len();
    if !keep.is_empty() {
        let marker_for_empty_txn = can_discard && control;
        let need_horizon = (contains_tombstones || marker_for_empty_txn) && horizon.is_none();
        if keep.len() == recs.len() && !need_horizon {
            out.extend_from_slice(batch.as_bytes());
        } else {
            let new_horizon = if need_horizon {
                Some(ctx.now_ms.saturating_add(ctx.delete_retention_ms))
            } else {
                horizon
            };
            out.extend_from_slice(&rebuild(batch, &section, &keep, new_horizon)?);
        }
    } else if retention == Retention::RetainEmpty {
        out.extend_from_slice(&empty_header(batch)?);
    }
    if out.len() > written_start {
        stats.messages_retained += keep.len() as u64;
        stats.bytes_retained += (out.len() - written_start) as u64;
        let ts_at = written_start + MAX_TIMESTAMP_AT;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&out[ts_at..ts_at + 8]);
        stats.max_timestamp = stats.max_timestamp.max(i64::from_be_bytes(ts));
    }
    Ok(())
}
