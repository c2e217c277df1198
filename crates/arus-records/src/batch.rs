//! The record batch v2 header: a zero-copy view, in-place header edits and splitting a record
//! set into batches.

use std::io::Read;

use bytes::Bytes;

use crate::record::{Deltas, Record, RecordSummary, parse_records, walk_records};
use crate::{Compression, RecordError, decompress};

/// Size of the record batch v2 header, from `baseOffset` through `recordCount`.
pub const BATCH_HEADER_LEN: usize = 61;

/// Bytes before `batchLength` starts counting: `baseOffset` (8) and `batchLength` (4).
pub const LOG_OVERHEAD: usize = 12;

/// Default bound on a batch's decompressed records section in [`RecordBatch::records`].
/// Far above any real producer batch (`batch.size` defaults to 16 KiB) yet small enough
/// that a decompression bomb cannot exhaust memory.
pub const DEFAULT_DECOMPRESSION_LIMIT: usize = 64 * 1024 * 1024;

/// The only magic (record format version) this crate reads or writes.
pub const MAGIC_V2: i8 = 2;

// Field offsets of the v2 header (see PROTOCOL-NOTES "Record batch v2").
pub(crate) const BASE_OFFSET_OFFSET: usize = 0;
pub(crate) const BATCH_LENGTH_OFFSET: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
pub(crate) const MAGIC_OFFSET: usize = 16;
pub(crate) const CRC_OFFSET: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_OFFSET: usize = 23;
pub(crate) const BASE_TIMESTAMP_OFFSET: usize = 27;
pub(crate) const MAX_TIMESTAMP_OFFSET: usize = 35;
pub(crate) const PRODUCER_ID_OFFSET: usize = 43;
pub(crate) const PRODUCER_EPOCH_OFFSET: usize = 51;
pub(crate) const BASE_SEQUENCE_OFFSET: usize = 53;
pub(crate) const RECORD_COUNT_OFFSET: usize = 57;

pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
pub(crate) const CONTROL_BIT: i16 = 0x20;

/// Which clock a batch's timestamps come from (attribute bit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker at append (`maxTimestamp` holds it).
    LogAppendTime,
}

/// Zero-copy view of one record batch (magic 2). Field getters read from the bytes, so
/// cloning or storing a batch never copies its payload.
///
/// Construction checks only the framing (length, `batchLength`, magic); the getters can then
/// index the header without failing. The CRC is checked separately by [`verify_crc`]
/// because recovery and produce want it, while fetch paths serving already-verified data
/// do not.
///
/// [`verify_crc`]: RecordBatch::verify_crc
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

// Readers over a slice proven (by `RecordBatch::new`) to be at least BATCH_HEADER_LEN long.
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl RecordBatch {
    /// Wraps exactly one batch. Fails if the bytes are shorter than the header, if
    /// `batchLength` disagrees with their length, or if the magic is not 2.
    pub fn new(bytes: Bytes) -> Result<RecordBatch, RecordError> {
        // Magic first when it is present: a v0/v1 message is shorter than a v2 header and
        // "wrong format" is the more useful error than "too short".
        if let Some(&m) = bytes.get(MAGIC_OFFSET)
            && m as i8 != MAGIC_V2
        {
            return Err(RecordError::UnsupportedMagic(m as i8));
        }
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(RecordError::Truncated);
        }
        let batch_length = be_i32(&bytes, BATCH_LENGTH_OFFSET);
        let consistent = usize::try_from(batch_length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .is_some_and(|total| total == bytes.len());
        if !consistent {
            return Err(RecordError::InvalidBatchLength {
                batch_length,
                buffer_len: bytes.len(),
            });
        }
        Ok(RecordBatch { bytes })
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
    /// Size of the whole batch in bytes (`batchLength + 12`).
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    pub fn base_offset(&self) -> i64 {
        be_i64(&self.bytes, BASE_OFFSET_OFFSET)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(&self.bytes, BATCH_LENGTH_OFFSET)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(&self.bytes, PARTITION_LEADER_EPOCH_OFFSET)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_OFFSET] as i8
    }
    pub fn crc(&self) -> u32 {
        be_i32(&self.bytes, CRC_OFFSET) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(&self.bytes, ATTRIBUTES_OFFSET)
    }
    pub fn compression(&self) -> Result<Compression, RecordError> {
        Compression::from_attributes(self.attributes())
    }
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(&self.bytes, LAST_OFFSET_DELTA_OFFSET)
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(&self.bytes, BASE_TIMESTAMP_OFFSET)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(&self.bytes, MAX_TIMESTAMP_OFFSET)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(&self.bytes, PRODUCER_ID_OFFSET)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(&self.bytes, PRODUCER_EPOCH_OFFSET)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(&self.bytes, BASE_SEQUENCE_OFFSET)
    }
    pub fn record_count(&self) -> i32 {
        be_i32(&self.bytes, RECORD_COUNT_OFFSET)
    }
    /// Offset of the last record: `base_offset + last_offset_delta` (wrapping, never panics
    /// on a hostile header).
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(i64::from(self.last_offset_delta()))
    }
    /// The offset after this batch: `last_offset + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
    /// Sequence of the last record; sequences wrap at `i32::MAX` (Kafka's
    /// `DefaultRecordBatch.incrementSequence`).
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence();
        if base < 0 {
            return -1;
        }
        let delta = self.last_offset_delta();
        if delta > i32::MAX - base {
            delta - (i32::MAX - base) - 1
        } else {
            base + delta
        }
    }

    /// CRC32C over the attributes through the end of the batch.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES_OFFSET..])
    }
    pub fn verify_crc(&self) -> Result<(), RecordError> {
        let (stored, computed) = (self.crc(), self.compute_crc());
        if stored == computed {
            Ok(())
        } else {
            Err(RecordError::CrcMismatch { stored, computed })
        }
    }

    /// The raw records section (still compressed if the batch is).
    pub fn records_section(&self) -> Bytes {
        self.bytes.slice(BATCH_HEADER_LEN..)
    }

    /// Decompresses (bounded by [`DEFAULT_DECOMPRESSION_LIMIT`]) and parses every record;
    /// checks their number matches `record_count` and offset deltas strictly increase up to
    /// `last_offset_delta` (a compacted batch keeps its records' offsets, with gaps).
    pub fn records(&self) -> Result<Vec<Record>, RecordError> {
        self.records_with_limit(DEFAULT_DECOMPRESSION_LIMIT)
    }

    /// [`records`](RecordBatch::records) with an explicit bound on decompressed size.
    pub fn records_with_limit(&self, limit: usize) -> Result<Vec<Record>, RecordError> {
        let deltas = Deltas::Increasing {
            last_offset_delta: self.last_offset_delta(),
        };
        self.parse_with(limit, deltas)
    }

    /// Like [`records_with_limit`](RecordBatch::records_with_limit), requiring offset
    /// deltas `0..n` as a producer's batch must have them (Kafka's LogValidator).
    pub fn producer_records_with_limit(&self, limit: usize) -> Result<Vec<Record>, RecordError> {
        self.parse_with(limit, Deltas::Contiguous)
    }

    /// Like [`producer_records_with_limit`](RecordBatch::producer_records_with_limit), handing
    /// `f` each record's [`RecordSummary`] (with its index) instead of building records: no
    /// copy and no allocation for an uncompressed batch.
    pub fn producer_record_summaries(
        &self,
        limit: usize,
        f: impl FnMut(usize, RecordSummary),
    ) -> Result<(), RecordError> {
        let section = &self.bytes[BATCH_HEADER_LEN..];
        let (declared, deltas) = (self.record_count(), Deltas::Contiguous);
        // Streaming codecs are walked as they decompress (one small buffer, however far the
        // batch expands); snappy's blocks are decoded whole, but snappy cannot expand more
        // than about 21×.
        let c = self.compression()?;
        match c {
            Compression::Gzip => crate::streaming::walk_summaries(
                c,
                flate2::read::MultiGzDecoder::new(section),
                limit,
                declared,
                deltas,
                f,
            ),
            Compression::Lz4 => crate::streaming::walk_summaries(
                c,
                lz4_flex::frame::FrameDecoder::new(section),
                limit,
                declared,
                deltas,
                f,
            ),
            Compression::Zstd => crate::streaming::walk_summaries(
                c,
                zstd::stream::read::Decoder::with_buffer(section)
                    .map_err(|e| crate::compression::codec_err(c, e))?,
                limit,
                declared,
                deltas,
                f,
            ),
            Compression::None | Compression::Snappy => {
                walk_records(&self.decompressed_section(limit)?, declared, deltas, f)
            }
        }
    }

    fn parse_with(&self, limit: usize, deltas: Deltas) -> Result<Vec<Record>, RecordError> {
        parse_records(
            &self.decompressed_section(limit)?,
            self.record_count(),
            deltas,
        )
    }

    fn decompressed_section(&self, limit: usize) -> Result<Bytes, RecordError> {
        Ok(match self.compression()? {
            // Uncompressed records are sliced out of the batch: no copy.
            Compression::None => self.records_section(),
            c => Bytes::from(decompress(c, &self.bytes[BATCH_HEADER_LEN..], limit)?),
        })
    }
}

/// Sets `baseOffset` in place. The CRC does not cover it, so it stays valid.
///
/// Short input: a buffer under [`BATCH_HEADER_LEN`] bytes is left untouched (callers are
/// expected to pass a validated batch; a `debug_assert!` flags misuse in tests).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    debug_assert!(batch.len() >= BATCH_HEADER_LEN, "not a record batch");
    if let Some(f) = batch.get_mut(BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8) {
        f.copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Sets `partitionLeaderEpoch` in place. Not covered by the CRC. Short input is a no-op
/// (see [`set_base_offset`]).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    debug_assert!(batch.len() >= BATCH_HEADER_LEN, "not a record batch");
    if let Some(f) = batch.get_mut(PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4)
    {
        f.copy_from_slice(&epoch.to_be_bytes());
    }
}

/// Stamps a batch with the broker's append time, as Kafka's
/// `DefaultRecordBatch.setMaxTimestamp(LOG_APPEND_TIME, ts)` does: sets attribute bit 3 and
/// `maxTimestamp` (`baseTimestamp` is left alone; readers take every record's timestamp from
/// `maxTimestamp` in a LogAppendTime batch) and recomputes the CRC. `batch` must be exactly
/// one batch, since the CRC runs to its end. Short input is a no-op (see [`set_base_offset`]).
pub fn set_log_append_time(batch: &mut [u8], timestamp: i64) {
    debug_assert!(batch.len() >= BATCH_HEADER_LEN, "not a record batch");
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    let attrs = be_i16(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Splits a record set into batches; see [`batches`].
#[derive(Clone, Debug)]
pub struct BatchIter {
    rest: Bytes,
    failed: bool,
}

/// Splits a record set (the `records` bytes of a produce request or a log segment read) into
/// batches, zero-copy. Strict: a trailing partial batch is [`RecordError::Truncated`], and
/// the iterator ends after the first error (the rest cannot be framed).
///
/// Callers reading a log segment up to an arbitrary byte limit (fetch) must cut at a batch
/// boundary themselves; this iterator does not silently drop a tail as Kafka's does.
pub fn batches(records: Bytes) -> BatchIter {
    BatchIter {
        rest: records,
        failed: false,
    }
}

impl BatchIter {
    /// Bytes not yet consumed.
    pub fn remaining(&self) -> &Bytes {
        &self.rest
    }

    fn next_batch(&mut self) -> Result<RecordBatch, RecordError> {
        let avail = self.rest.len();
        if avail < LOG_OVERHEAD {
            return Err(RecordError::Truncated);
        }
        let batch_length = be_i32(&self.rest, BATCH_LENGTH_OFFSET);
        let invalid = RecordError::InvalidBatchLength {
            batch_length,
            buffer_len: avail,
        };
        let total = usize::try_from(batch_length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .ok_or(invalid.clone())?;
        // As Kafka's ByteBufferLogInputStream: look at the magic as soon as it is there, so a
        // v0/v1 record set reports its format rather than an odd length.
        if let Some(&m) = self.rest.get(MAGIC_OFFSET)
            && m as i8 != MAGIC_V2
        {
            return Err(RecordError::UnsupportedMagic(m as i8));
        }
        if total < BATCH_HEADER_LEN {
            return Err(invalid);
        }
        if avail < total {
            return Err(RecordError::Truncated);
        }
        RecordBatch::new(self.rest.split_to(total))
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.next_batch();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl std::iter::FusedIterator for BatchIter {}

/// Re-encodes a batch's records section with `target`, for a topic whose `compression.type`
/// names a codec different from the producer's (DESIGN §3). Every header field (offsets,
/// producer state, timestamps, flags) is kept; the codec bits, `batchLength` and CRC are
/// rewritten. The source is decompressed with `limit` as its bound. Returns the batch
/// unchanged (no copy) when it already uses `target`.
pub fn recompress(
    batch: &RecordBatch,
    target: Compression,
    limit: usize,
) -> Result<Bytes, RecordError> {
    let source = batch.compression()?;
    if source == target {
        return Ok(batch.as_bytes().clone());
    }
    let section = &batch.as_bytes()[BATCH_HEADER_LEN..];
    // The records go from the decompressor straight into the compressor: memory holds the
    // output, never the whole expansion.
    let mut records =
        crate::compression::decoder(source, section, limit)?.take((limit as u64).saturating_add(1));
    let mut encoder = crate::compression::Encoder::new(target)?;
    let copied = std::io::copy(&mut records, &mut encoder).map_err(|e| RecordError::Codec {
        codec: source.name(),
        message: format!("recompressing to {target}: {e}"),
    })?;
    if copied > limit as u64 {
        return Err(RecordError::DecompressionLimit { limit });
    }
    let body = encoder.finish(target)?;
    let batch_length = i32::try_from(BATCH_HEADER_LEN - LOG_OVERHEAD + body.len())
        .map_err(|_| RecordError::InvalidRecord("recompressed batch larger than 2 GiB".into()))?;
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    out.extend_from_slice(&batch.as_bytes()[..BATCH_HEADER_LEN]);
    out.extend_from_slice(&body);
    out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attrs = (batch.attributes() & !0x07) | i16::from(target.id());
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(out))
}
