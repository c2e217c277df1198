//! The few record-batch (magic v2) header fields the log needs, parsed by hand.
//!
//! `arus-log` deliberately does not depend on `arus-records`; this module knows exactly
//! enough of the v2 layout to assign offsets, validate batches during recovery and find
//! timestamps. All integers are big-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset            (rewritten by the log; not covered by the CRC)
//!      8     4  batchLength           (bytes after this field: batch size = 12 + batchLength)
//!     12     4  partitionLeaderEpoch  (rewritten by the log; not covered by the CRC)
//!     16     1  magic                 (must be 2)
//!     17     4  crc                   (CRC-32C of bytes 21..end)
//!     21     2  attributes            (bits 0-2 compression, bit 3 timestampType,
//!                                       bit 4 isTransactional, bit 5 isControlBatch)
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61        records…
//! ```

/// Size of the fixed v2 batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before and including `batchLength`; batch size = `LOG_OVERHEAD + batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batchLength` (header without the first 12 bytes, zero records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only supported batch format.
pub const MAGIC_V2: i8 = 2;

pub const BASE_OFFSET_AT: usize = 0;
pub const BATCH_LENGTH_AT: usize = 8;
pub const LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const BASE_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORD_COUNT_AT: usize = 57;

/// Attribute bits 0-2: compression codec (0 = none).
pub const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: timestamp type (1 = LogAppendTime).
pub const LOG_APPEND_TIME_FLAG: i16 = 0x08;
/// Attribute bit 4: the batch belongs to a transaction.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Attribute bit 5: the batch holds a control record (transaction marker).
pub const CONTROL_FLAG: i16 = 0x20;
/// Kafka's `RecordBatch.NO_PRODUCER_ID` / `NO_SEQUENCE`.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_SEQUENCE: i32 = -1;

/// Kafka's "no timestamp" value.
pub const NO_TIMESTAMP: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size in bytes (`12 + batchLength`).
    pub size: usize,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub fn is_compressed(&self) -> bool {
        self.attributes & COMPRESSION_MASK != 0
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & LOG_APPEND_TIME_FLAG != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }
    /// Sequence number of the batch's last record (Kafka `DefaultRecordBatch.lastSequence`
    /// / `incrementSequence`): -1 stays -1, and sequences wrap from `i32::MAX` to 0.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Kafka `DefaultRecordBatch.incrementSequence`.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence == NO_SEQUENCE {
        return NO_SEQUENCE;
    }
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().unwrap())
}

/// Parses and sanity-checks a header: at least [`HEADER_LEN`] bytes, magic 2,
/// `batchLength >= 49`, `lastOffsetDelta >= 0`, `recordCount >= 0`, `baseOffset >= 0`.
/// Does not check that the whole batch is present (see [`BatchHeader::size`]).
pub fn parse_header(b: &[u8]) -> Result<BatchHeader, &'static str> {
    if b.len() < HEADER_LEN {
        return Err("shorter than a v2 batch header");
    }
    let batch_length = be_i32(b, BATCH_LENGTH_AT);
    let magic = b[MAGIC_AT] as i8;
    if magic != MAGIC_V2 {
        return Err("magic is not 2");
    }
    if batch_length < MIN_BATCH_LENGTH {
        return Err("batchLength smaller than the v2 header");
    }
    let h = BatchHeader {
        base_offset: be_i64(b, BASE_OFFSET_AT),
        size: LOG_OVERHEAD + batch_length as usize,
        magic,
        crc: u32::from_be_bytes(b[CRC_AT..CRC_AT + 4].try_into().unwrap()),
        attributes: be_i16(b, ATTRIBUTES_AT),
        last_offset_delta: be_i32(b, LAST_OFFSET_DELTA_AT),
        base_timestamp: be_i64(b, BASE_TIMESTAMP_AT),
        max_timestamp: be_i64(b, MAX_TIMESTAMP_AT),
        producer_id: be_i64(b, PRODUCER_ID_AT),
        producer_epoch: be_i16(b, PRODUCER_EPOCH_AT),
        base_sequence: be_i32(b, BASE_SEQUENCE_AT),
        record_count: be_i32(b, RECORD_COUNT_AT),
    };
    if h.last_offset_delta < 0 {
        return Err("negative lastOffsetDelta");
    }
    if h.record_count < 0 {
        return Err("negative recordCount");
    }
    if h.base_offset < 0 {
        return Err("negative baseOffset");
    }
    Ok(h)
}

/// Whether the stored CRC matches the CRC-32C of `batch[21..]` (`batch` is one whole batch).
pub fn crc_ok(h: &BatchHeader, batch: &[u8]) -> bool {
    batch.len() == h.size && crc32c::crc32c(&batch[ATTRIBUTES_AT..]) == h.crc
}

pub fn set_base_offset(batch: &mut [u8], offset: i64) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&offset.to_be_bytes());
}

pub fn set_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// The batch's `partitionLeaderEpoch` (`batch` holds at least a header).
pub fn leader_epoch(batch: &[u8]) -> i32 {
    be_i32(batch, LEADER_EPOCH_AT)
}

/// Reads a zigzag varint (up to 64 bits) at `*pos`.
fn read_varlong(b: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw: u64 = 0;
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*pos)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Walks the records of an *uncompressed* batch and returns the `(offset, timestamp)` of
/// the first record for which `pred(timestamp)` holds. Record layout:
/// `length varint | attributes i8 | timestampDelta varlong | offsetDelta varint | …`.
/// Returns `None` if no record matches or the records are malformed.
pub fn find_record(
    h: &BatchHeader,
    batch: &[u8],
    pred: impl FnMut(i64) -> bool,
) -> Option<(i64, i64)> {
    find_record_from(h, batch, i64::MIN, pred)
}

/// [`find_record`] among the records at or above `min_offset` only (timestamp lookups
/// must not return offsets below the log start offset).
pub fn find_record_from(
    h: &BatchHeader,
    batch: &[u8],
    min_offset: i64,
    mut pred: impl FnMut(i64) -> bool,
) -> Option<(i64, i64)> {
    if h.is_compressed() || batch.len() < h.size {
        return None;
    }
    let batch = &batch[..h.size];
    let mut pos = HEADER_LEN;
    for _ in 0..h.record_count {
        let len = read_varlong(batch, &mut pos)?;
        if len < 0 {
            return None;
        }
        let start = pos;
        let end = start.checked_add(len as usize)?;
        if end > batch.len() {
            return None;
        }
        let rec = &batch[start..end];
        let mut p = 1; // skip attributes
        let ts_delta = read_varlong(rec, &mut p)?;
        let off_delta = read_varlong(rec, &mut p)?;
        let ts = h.base_timestamp.wrapping_add(ts_delta);
        let offset = h.base_offset.wrapping_add(off_delta);
        if offset >= min_offset && pred(ts) {
            return Some((offset, ts));
        }
        pos = end;
    }
    None
}

/// Offset of the record carrying the batch's max timestamp: record-level for uncompressed
/// CreateTime batches, otherwise the batch's base offset (the record is in that batch, so a
/// consumer seeking there sees it).
pub fn offset_of_max_timestamp(h: &BatchHeader, batch: &[u8]) -> i64 {
    if h.is_log_append_time() {
        return h.base_offset;
    }
    find_record(h, batch, |ts| ts == h.max_timestamp)
        .map(|(o, _)| o)
        .unwrap_or(h.base_offset)
}

/// The end-transaction marker carried by a control batch (Kafka `EndTransactionMarker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlMarker {
    /// true for COMMIT (control type 1), false for ABORT (type 0).
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Control record types (Kafka `ControlRecordType`).
pub const CONTROL_TYPE_ABORT: i16 = 0;
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// Parses the marker of a control batch (`batch` starts with the batch header). The first
/// record is `length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
/// keyLength varint | key | valueLength varint | value | headers…`, where the key is
/// `version i16 | type i16` and the value `version i16 | coordinatorEpoch i32`.
/// `None` for anything else: not a control batch, compressed, no record, truncated, or a
/// control type other than ABORT/COMMIT.
pub fn control_marker(batch: &[u8]) -> Option<ControlMarker> {
    let h = parse_header(batch).ok()?;
    if !h.is_control() || h.is_compressed() || h.record_count < 1 || batch.len() < h.size {
        return None;
    }
    let b = &batch[..h.size];
    let mut pos = HEADER_LEN;
    let len = read_varlong(b, &mut pos)?;
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let rec = b.get(pos..end)?;
    let mut p = 1; // attributes
    read_varlong(rec, &mut p)?; // timestampDelta
    read_varlong(rec, &mut p)?; // offsetDelta
    let key_len = usize::try_from(read_varlong(rec, &mut p)?).ok()?;
    let key = rec.get(p..p.checked_add(key_len)?)?;
    p += key_len;
    if key.len() < 4 {
        return None;
    }
    let ctype = be_i16(key, 2);
    let value_len = usize::try_from(read_varlong(rec, &mut p)?).ok()?;
    let value = rec.get(p..p.checked_add(value_len)?)?;
    if value.len() < 6 {
        return None;
    }
    let coordinator_epoch = be_i32(value, 2);
    match ctype {
        CONTROL_TYPE_ABORT => Some(ControlMarker {
            commit: false,
            coordinator_epoch,
        }),
        CONTROL_TYPE_COMMIT => Some(ControlMarker {
            commit: true,
            coordinator_epoch,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_seq(seq: i32, delta: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            size: HEADER_LEN,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: delta,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: 1,
            producer_epoch: 0,
            base_sequence: seq,
            record_count: delta + 1,
        }
    }

    #[test]
    fn last_sequence_wraps() {
        assert_eq!(with_seq(5, 3).last_sequence(), 8);
        assert_eq!(with_seq(-1, 3).last_sequence(), -1);
        assert_eq!(with_seq(i32::MAX, 0).last_sequence(), i32::MAX);
        assert_eq!(with_seq(i32::MAX, 1).last_sequence(), 0);
        assert_eq!(with_seq(i32::MAX - 1, 3).last_sequence(), 1);
    }

    #[test]
    fn control_markers() {
        let commit = crate::txn_tests::marker_batch(3, 1, 1, 7, 0);
        let h = parse_header(&commit).unwrap();
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (3, 1, -1)
        );
        assert_eq!(
            control_marker(&commit),
            Some(ControlMarker {
                commit: true,
                coordinator_epoch: 7
            })
        );
        let abort = crate::txn_tests::marker_batch(3, 1, 0, -2, 0);
        assert_eq!(
            control_marker(&abort),
            Some(ControlMarker {
                commit: false,
                coordinator_epoch: -2
            })
        );
        assert_eq!(
            control_marker(&crate::txn_tests::marker_batch(3, 1, 4, 0, 0)),
            None
        );
        for n in 0..commit.len() {
            assert_eq!(control_marker(&commit[..n]), None, "prefix {n}");
        }
        // Not a control batch.
        let mut plain = commit.clone();
        plain[ATTRIBUTES_AT + 1] = 0;
        assert_eq!(control_marker(&plain), None);
    }
}
