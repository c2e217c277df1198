//! Reading the records of a batch as the cleaner needs them, and rewriting a batch with a
//! subset of its records.
//!
//! `arus_records::RecordBatch::records` insists that offset deltas are `0..n`, which is
//! true of what producers send but not of a batch the cleaner has already compacted (Kafka
//! keeps each retained record's original delta, leaving gaps). So records are scanned here
//! with gaps allowed, and each record keeps its raw bytes so that a retained record is
//! copied, not re-encoded (header keys need not be UTF-8).
//!
//! Record batch v2 header (big-endian; see PROTOCOL-NOTES "Record batch v2"):
//! `baseOffset i64 @0 | batchLength i32 @8 | partitionLeaderEpoch i32 @12 | magic i8 @16 (=2)
//! | crc u32 @17 (CRC32C of @21..end) | attributes i16 @21 | lastOffsetDelta i32 @23 |
//! baseTimestamp i64 @27 | maxTimestamp i64 @35 | producerId i64 @43 | producerEpoch i16 @51
//! | baseSequence i32 @53 | recordCount i32 @57 | records @61`.
//! Attribute bit 6 (KIP-534) says `baseTimestamp` holds the batch's delete horizon.

use arus_records::{
    BATCH_HEADER_LEN, Compression, DEFAULT_DECOMPRESSION_LIMIT, LOG_OVERHEAD, RecordBatch,
    RecordError, TimestampType, compress, decompress,
};
use bytes::Bytes;

const BATCH_LENGTH_OFFSET: usize = 8;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const RECORD_COUNT_OFFSET: usize = 57;
const COMPRESSION_BITS: i16 = 0x07;

/// Attribute bit 6: `baseTimestamp` is the delete horizon (Kafka's
/// `DefaultRecordBatch.DELETE_HORIZON_FLAG_MASK`, KIP-534).
pub const DELETE_HORIZON_BIT: i16 = 0x40;

/// The batch's delete horizon (KIP-534), if a cleaner has stamped one: after it, the
/// batch's tombstones and (for a control batch) its marker may be removed.
pub fn delete_horizon_ms(batch: &RecordBatch) -> Option<i64> {
    (batch.attributes() & DELETE_HORIZON_BIT != 0).then(|| batch.base_timestamp())
}

/// `baseTimestamp` of the first batch in `segment_head` (the first bytes of a segment, at
/// least one batch header), for [`SegmentMeta::first_batch_timestamp`]; `None` if the bytes
/// are too short or not a v2 batch. Like Kafka's `LogSegment.getFirstBatchTimestamp`, a
/// delete horizon stamped there reads as the timestamp.
///
/// [`SegmentMeta::first_batch_timestamp`]: crate::SegmentMeta::first_batch_timestamp
pub fn first_batch_timestamp(segment_head: &[u8]) -> Option<i64> {
    let magic = *segment_head.get(16)?;
    let ts = segment_head.get(BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8)?;
    if magic as i8 != arus_records::MAGIC_V2 || segment_head.len() < BATCH_HEADER_LEN {
        return None;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(ts);
    Some(i64::from_be_bytes(a))
}

fn bad(msg: impl Into<String>) -> RecordError {
    RecordError::InvalidRecord(msg.into())
}

/// One record located inside a (decompressed) records section.
#[derive(Clone, Debug)]
pub(crate) struct RawRecord {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<std::ops::Range<usize>>,
    pub has_value: bool,
    /// The whole record, length prefix included.
    pub whole: std::ops::Range<usize>,
    /// From the offset delta to the end of the record (everything after the timestamp).
    pub after_timestamp: std::ops::Range<usize>,
    pub attributes: u8,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Result<u8, RecordError> {
        if self.pos >= self.end {
            return Err(bad("unexpected end of record"));
        }
        let v = self.b[self.pos];
        self.pos += 1;
        Ok(v)
    }
    fn varlong(&mut self, max_bytes: u32) -> Result<i64, RecordError> {
        let mut raw: u64 = 0;
        for i in 0..max_bytes {
            let b = self.u8()?;
            raw |= u64::from(b & 0x7f).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(bad("varint too long"))
    }
    fn varint(&mut self) -> Result<i32, RecordError> {
        let v = self.varlong(5)?;
        i32::try_from(v).map_err(|_| bad("varint out of range"))
    }
    /// Skips a length-prefixed field; returns its range, `None` for null (-1).
    fn field(&mut self) -> Result<Option<std::ops::Range<usize>>, RecordError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| bad("negative field length"))?;
        if len > self.end - self.pos {
            return Err(bad("field longer than its record"));
        }
        let r = self.pos..self.pos + len;
        self.pos += len;
        Ok(Some(r))
    }
}

/// Scans a records section holding `count` records. Offset deltas must increase strictly
/// and stay within `0..=last_offset_delta` (gaps allowed: compacted batches have them).
pub(crate) fn scan_records(
    section: &[u8],
    count: i32,
    last_offset_delta: i32,
) -> Result<Vec<RawRecord>, RecordError> {
    let declared = usize::try_from(count).map_err(|_| bad("negative record count"))?;
    // Each record takes at least 7 bytes; never preallocate beyond what the bytes can hold.
    let mut out = Vec::with_capacity(declared.min(section.len() / 7 + 1));
    let mut c = Cursor {
        b: section,
        pos: 0,
        end: section.len(),
    };
    let mut prev_delta = -1i64;
    while c.pos < section.len() {
        if out.len() >= declared {
            return Err(bad("bytes left after the declared records"));
        }
        let start = c.pos;
        let len = usize::try_from(c.varint()?).map_err(|_| bad("negative record length"))?;
        if len > section.len() - c.pos {
            return Err(bad("record longer than its batch"));
        }
        let body_end = c.pos + len;
        c.end = body_end;
        let attributes = c.u8()?;
        let timestamp_delta = c.varlong(10)?;
        let after_start = c.pos;
        let offset_delta = c.varint()?;
        let key = c.field()?;
        let has_value = c.field()?.is_some();
        // Headers are copied verbatim, never interpreted; only the framing matters here.
        c.pos = body_end;
        c.end = section.len();
        if i64::from(offset_delta) <= prev_delta || offset_delta > last_offset_delta {
            return Err(bad(format!(
                "record offset delta {offset_delta} out of order (previous {prev_delta}, last {last_offset_delta})"
            )));
        }
        prev_delta = i64::from(offset_delta);
        out.push(RawRecord {
            offset_delta,
            timestamp_delta,
            key,
            has_value,
            whole: start..body_end,
            after_timestamp: after_start..body_end,
            attributes,
        });
    }
    if out.len() != declared {
        return Err(RecordError::RecordCountMismatch {
            declared: count,
            found: out.len(),
        });
    }
    Ok(out)
}

/// The records section of a batch, decompressed.
pub(crate) fn plain_section(batch: &RecordBatch) -> Result<Bytes, RecordError> {
    let section = batch.records_section();
    match batch.compression()? {
        Compression::None => Ok(section),
        c => Ok(Bytes::from(decompress(
            c,
            &section,
            DEFAULT_DECOMPRESSION_LIMIT,
        )?)),
    }
}

fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

fn put_i16(b: &mut [u8], at: usize, v: i16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
fn put_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn put_i64(b: &mut [u8], at: usize, v: i64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

fn finish(mut out: Vec<u8>) -> Result<Vec<u8>, RecordError> {
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
        .map_err(|_| bad("cleaned batch larger than 2 GiB"))?;
    put_i32(&mut out, BATCH_LENGTH_OFFSET, batch_length);
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Rebuilds `orig` with only `keep` (records of `section`, in order), as Kafka's
/// `MemoryRecords.buildRetainedRecordsInto`: same base offset, producer fields, flags,
/// codec and partition leader epoch; each record keeps its offset delta and timestamp; the
/// header's `lastOffsetDelta` is the original one, so the batch's last offset and last
/// sequence survive (the idempotent-producer state depends on them).
///
/// With `delete_horizon`, attribute bit 6 is set and `baseTimestamp` becomes the horizon,
/// so every record's timestamp delta is re-encoded against it. Otherwise the original
/// `baseTimestamp` and record bytes are kept as they are (Kafka would re-base on the first
/// retained record; record timestamps are identical either way).
pub(crate) fn rebuild(
    orig: &RecordBatch,
    section: &[u8],
    keep: &[&RawRecord],
    delete_horizon: Option<i64>,
) -> Result<Vec<u8>, RecordError> {
    let codec = orig.compression()?;
    let old_base_ts = orig.base_timestamp();
    let new_base_ts = delete_horizon.unwrap_or(old_base_ts);
    let mut records = Vec::with_capacity(keep.iter().map(|r| r.whole.len() + 8).sum());
    let mut max_ts: Option<i64> = None;
    for r in keep {
        let ts = old_base_ts.wrapping_add(r.timestamp_delta);
        max_ts = Some(max_ts.map_or(ts, |m| m.max(ts)));
        if new_base_ts == old_base_ts {
            records.extend_from_slice(&section[r.whole.clone()]);
        } else {
            let mut body = Vec::with_capacity(r.whole.len() + 8);
            body.push(r.attributes);
            put_varlong(&mut body, ts.wrapping_sub(new_base_ts));
            body.extend_from_slice(&section[r.after_timestamp.clone()]);
            put_varlong(&mut records, body.len() as i64);
            records.extend_from_slice(&body);
        }
    }
    let body = match codec {
        Compression::None => records,
        c => compress(c, &records)?,
    };
    let max_timestamp = match orig.timestamp_type() {
        TimestampType::LogAppendTime => orig.max_timestamp(),
        TimestampType::CreateTime => max_ts.unwrap_or(orig.max_timestamp()),
    };
    let count = i32::try_from(keep.len()).map_err(|_| bad("too many records"))?;
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    out.extend_from_slice(&orig.as_bytes()[..BATCH_HEADER_LEN]);
    out.extend_from_slice(&body);
    let mut attrs = orig.attributes();
    if delete_horizon.is_some() {
        attrs |= DELETE_HORIZON_BIT;
    }
    put_i16(&mut out, ATTRIBUTES_OFFSET, attrs);
    put_i64(&mut out, BASE_TIMESTAMP_OFFSET, new_base_ts);
    put_i64(&mut out, MAX_TIMESTAMP_OFFSET, max_timestamp);
    put_i32(&mut out, RECORD_COUNT_OFFSET, count);
    finish(out)
}

/// A record-less copy of `orig`'s header, as Kafka's `DefaultRecordBatch.writeEmptyHeader`
/// writes for `BatchRetention.RETAIN_EMPTY`: offsets, producer id/epoch/sequence, flags and
/// timestamp type are kept, so the producer state and the log's last offset survive; no
/// codec, no delete horizon; both timestamps are the original `maxTimestamp`.
pub(crate) fn empty_header(orig: &RecordBatch) -> Result<Vec<u8>, RecordError> {
    let mut out = orig.as_bytes()[..BATCH_HEADER_LEN].to_vec();
    let attrs = orig.attributes() & !COMPRESSION_BITS & !DELETE_HORIZON_BIT;
    put_i16(&mut out, ATTRIBUTES_OFFSET, attrs);
    put_i32(&mut out, LAST_OFFSET_DELTA_OFFSET, orig.last_offset_delta());
    put_i64(&mut out, BASE_TIMESTAMP_OFFSET, orig.max_timestamp());
    put_i64(&mut out, MAX_TIMESTAMP_OFFSET, orig.max_timestamp());
    put_i32(&mut out, RECORD_COUNT_OFFSET, 0);
    finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_records::BatchBuilder;

    fn sample(codec: Compression) -> RecordBatch {
        let mut b = BatchBuilder::new(codec, 1_000).producer(7, 1, 10, false);
        for i in 0..5i64 {
            let key = format!("k{i}");
            let value = (i != 3).then(|| format!("v{i}"));
            b.push(
                1_000 + i * 10,
                Some(key.as_bytes()),
                value.as_deref().map(str::as_bytes),
                &[("h", Some(&[0xff, 0xfe][..]))],
            );
        }
        let mut bytes = b.build().unwrap().to_vec();
        arus_records::set_base_offset(&mut bytes, 100);
        RecordBatch::new(Bytes::from(bytes)).unwrap()
    }

    #[test]
    fn rebuild_keeps_deltas_timestamps_last_offset_and_codec() {
        for codec in Compression::ALL {
            let batch = sample(codec);
            let section = plain_section(&batch).unwrap();
            let recs =
                scan_records(&section, batch.record_count(), batch.last_offset_delta()).unwrap();
            assert_eq!(recs.len(), 5);
            let keep = [&recs[1], &recs[3]];
            for horizon in [None, Some(99_999)] {
                let out = rebuild(&batch, &section, &keep, horizon).unwrap();
                let nb = RecordBatch::new(Bytes::from(out)).unwrap();
                nb.verify_crc().unwrap();
                assert_eq!(nb.compression().unwrap(), codec);
                assert_eq!((nb.base_offset(), nb.last_offset()), (100, 104));
                assert_eq!((nb.producer_id(), nb.base_sequence()), (7, 10));
                assert_eq!(nb.last_sequence(), 14);
                assert_eq!(nb.record_count(), 2);
                assert_eq!(delete_horizon_ms(&nb), horizon);
                assert_eq!(nb.max_timestamp(), 1_030);
                let s = plain_section(&nb).unwrap();
                let rs = scan_records(&s, 2, nb.last_offset_delta()).unwrap();
                let got: Vec<(i32, i64, bool)> = rs
                    .iter()
                    .map(|r| {
                        (
                            r.offset_delta,
                            nb.base_timestamp() + r.timestamp_delta,
                            r.has_value,
                        )
                    })
                    .collect();
                assert_eq!(got, vec![(1, 1_010, true), (3, 1_030, false)]);
                // Headers (non-UTF-8 value) survive byte for byte.
                assert_eq!(
                    &s[rs[0].whole.clone()][s[rs[0].whole.clone()].len() - 5..],
                    { &section[recs[1].whole.clone()][section[recs[1].whole.clone()].len() - 5..] }
                );
            }
        }
    }

    #[test]
    fn empty_header_keeps_offsets_and_producer() {
        let batch = sample(Compression::Zstd);
        let nb = RecordBatch::new(Bytes::from(empty_header(&batch).unwrap())).unwrap();
        nb.verify_crc().unwrap();
        assert_eq!(nb.size(), BATCH_HEADER_LEN);
        assert_eq!(
            (nb.base_offset(), nb.last_offset(), nb.record_count()),
            (100, 104, 0)
        );
        assert_eq!(nb.compression().unwrap(), Compression::None);
        assert_eq!((nb.producer_id(), nb.producer_epoch()), (7, 1));
        assert!(
            scan_records(&plain_section(&nb).unwrap(), 0, 4)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn first_batch_timestamp_reads_the_header() {
        let batch = sample(Compression::None);
        assert_eq!(first_batch_timestamp(batch.as_bytes()), Some(1_000));
        assert_eq!(first_batch_timestamp(&batch.as_bytes()[..60]), None);
        let mut v1 = batch.as_bytes().to_vec();
        v1[16] = 1;
        assert_eq!(first_batch_timestamp(&v1), None);
        assert_eq!(first_batch_timestamp(&[]), None);
    }

    #[test]
    fn scan_rejects_bad_framing() {
        let batch = sample(Compression::None);
        let section = plain_section(&batch).unwrap();
        assert!(scan_records(&section, 4, 4).is_err());
        assert!(scan_records(&section, 6, 4).is_err());
        assert!(scan_records(&section, 5, 3).is_err()); // delta past lastOffsetDelta
        assert!(scan_records(&section[..section.len() - 1], 5, 4).is_err());
        assert!(scan_records(&[0x7f], 1, 0).is_err());
        assert!(scan_records(&section, -1, 4).is_err());
    }
}
