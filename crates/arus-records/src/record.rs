//! Records inside a batch: zigzag varints and the record layout.
//!
//! Every length read here comes from untrusted bytes, so each is checked against what is
//! left before slicing, varints are bounded (5 bytes for 32 bits, 10 for 64), and no
//! allocation is sized by a declared count without first capping it by the bytes present.

use bytes::{BufMut, Bytes};

use crate::{RecordBatch, RecordError, TimestampType};

/// One record of a batch. Keys, values and header values are slices of the batch (or of its
/// decompressed records section), so parsing copies no payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub attributes: i8,
}

impl Record {
    /// Absolute offset: the batch's base offset plus this record's delta.
    pub fn offset(&self, batch: &RecordBatch) -> i64 {
        batch
            .base_offset()
            .wrapping_add(i64::from(self.offset_delta))
    }

    /// Absolute timestamp. As in Kafka, every record of a `LogAppendTime` batch has the
    /// batch's `maxTimestamp` (the broker's append time), whatever its stored delta says.
    pub fn timestamp(&self, batch: &RecordBatch) -> i64 {
        record_timestamp(batch, self.timestamp_delta)
    }
}

/// What validating a record needs of it, read without copying or allocating anything (the
/// produce path walks every record of an uncompressed batch, as Kafka's LogValidator does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSummary {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub has_key: bool,
}

impl RecordSummary {
    pub fn timestamp(&self, batch: &RecordBatch) -> i64 {
        record_timestamp(batch, self.timestamp_delta)
    }
}

fn record_timestamp(batch: &RecordBatch, timestamp_delta: i64) -> i64 {
    match batch.timestamp_type() {
        TimestampType::LogAppendTime => batch.max_timestamp(),
        TimestampType::CreateTime => batch.base_timestamp().wrapping_add(timestamp_delta),
    }
}

/// A record's fields as positions in the reader's buffer.
struct Fields {
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<std::ops::Range<usize>>,
    value: Option<std::ops::Range<usize>>,
    /// Where the header count starts and how many headers follow (already checked).
    headers_at: usize,
}

/// Reads one record from a [`Reader`] (the full record or its summary).
pub(crate) trait ReadRecord: Sized {
    fn read(reader: &mut Reader<'_>) -> Result<Self, RecordError>;
    fn offset_delta(&self) -> i32;
}

impl ReadRecord for Record {
    fn read(reader: &mut Reader<'_>) -> Result<Self, RecordError> {
        reader.record()
    }
    fn offset_delta(&self) -> i32 {
        self.offset_delta
    }
}

impl ReadRecord for RecordSummary {
    fn read(reader: &mut Reader<'_>) -> Result<Self, RecordError> {
        reader.framed(|r| {
            let f = r.fields()?;
            Ok(RecordSummary {
                offset_delta: f.offset_delta,
                timestamp_delta: f.timestamp_delta,
                has_key: f.key.is_some(),
            })
        })
    }
    fn offset_delta(&self) -> i32 {
        self.offset_delta
    }
}

/// The smallest possible encoded record: length, attributes, timestamp delta, offset delta,
/// key length, value length and header count, one byte each. Used to cap preallocation.
pub(crate) const MIN_RECORD_LEN: usize = 7;

/// A cursor over untrusted bytes; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
}

fn bad(msg: &str) -> RecordError {
    RecordError::InvalidRecord(msg.to_string())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a Bytes) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        if self.pos >= self.end {
            return Err(bad("unexpected end of record"));
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    /// Zigzag varint, at most 5 bytes (Kafka's `ByteUtils.readVarint`).
    pub(crate) fn varint(&mut self) -> Result<i32, RecordError> {
        let mut raw: u32 = 0;
        for i in 0..5 {
            let b = self.u8()?;
            raw |= u32::from(b & 0x7f).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
            }
        }
        Err(bad("varint longer than 5 bytes"))
    }

    /// Zigzag varlong, at most 10 bytes (Kafka's `ByteUtils.readVarlong`).
    pub(crate) fn varlong(&mut self) -> Result<i64, RecordError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            raw |= u64::from(b & 0x7f).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(bad("varlong longer than 10 bytes"))
    }

    /// A length-prefixed byte string: -1 is null, other negatives are errors.
    /// A nullable bytes field's position, skipped.
    fn nullable_range(
        &mut self,
        what: &str,
    ) -> Result<Option<std::ops::Range<usize>>, RecordError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len)
            .map_err(|_| RecordError::InvalidRecord(format!("negative {what} length {len}")))?;
        if len > self.remaining() {
            return Err(RecordError::InvalidRecord(format!(
                "{what} length {len} exceeds the {} bytes left in the record",
                self.remaining()
            )));
        }
        let range = self.pos..self.pos + len;
        self.pos += len;
        Ok(Some(range))
    }

    fn nullable_bytes(&mut self, what: &str) -> Result<Option<Bytes>, RecordError> {
        Ok(self.nullable_range(what)?.map(|r| self.buf.slice(r)))
    }

    /// Reads a record's length, then `body` within exactly that many bytes.
    fn framed<T>(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<T, RecordError>,
    ) -> Result<T, RecordError> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .map_err(|_| RecordError::InvalidRecord(format!("negative record length {len}")))?;
        if len > self.remaining() {
            return Err(RecordError::InvalidRecord(format!(
                "record length {len} exceeds the {} bytes left in the batch",
                self.remaining()
            )));
        }
        let outer_end = self.end;
        let body_end = self.pos + len;
        self.end = body_end;
        let rec = body(self);
        self.end = outer_end;
        let rec = rec?;
        if self.pos != body_end {
            return Err(RecordError::InvalidRecord(format!(
                "record declares {len} bytes but its fields use {}",
                len - (body_end - self.pos)
            )));
        }
        Ok(rec)
    }

    pub(crate) fn record(&mut self) -> Result<Record, RecordError> {
        self.framed(|r| {
            let f = r.fields()?;
            let end = r.pos;
            // Second pass over the (already checked) headers, to keep them.
            r.pos = f.headers_at;
            let count = r.varint()?.max(0) as usize;
            let mut headers = Vec::with_capacity(count.min(r.remaining() / 2));
            for _ in 0..count {
                let hk = r
                    .nullable_bytes("header key")?
                    .ok_or_else(|| bad("null header key"))?;
                let hk = String::from_utf8_lossy(&hk).into_owned();
                let hv = r.nullable_bytes("header value")?;
                headers.push((hk, hv));
            }
            r.pos = end;
            Ok(Record {
                offset_delta: f.offset_delta,
                timestamp_delta: f.timestamp_delta,
                key: f.key.map(|k| r.buf.slice(k)),
                value: f.value.map(|v| r.buf.slice(v)),
                headers,
                attributes: f.attributes,
            })
        })
    }

    /// Reads and checks every field of a record body, keeping only positions.
    fn fields(&mut self) -> Result<Fields, RecordError> {
        let attributes = self.u8()? as i8;
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        let key = self.nullable_range("key")?;
        let value = self.nullable_range("value")?;
        let headers_at = self.pos;
        let count = self.varint()?;
        let count = usize::try_from(count)
            .map_err(|_| RecordError::InvalidRecord(format!("negative header count {count}")))?;
        for _ in 0..count {
            self.nullable_range("header key")?
                .ok_or_else(|| bad("null header key"))?;
            self.nullable_range("header value")?;
        }
        Ok(Fields {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers_at,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deltas {
    /// `0..n`: what a producer must send (Kafka's LogValidator).
    Contiguous,
    /// Strictly increasing, each at most `last_offset_delta`: what a log holds once the
    /// cleaner has removed records from a batch (compaction keeps every record's offset).
    Increasing { last_offset_delta: i32 },
}

impl Deltas {
    /// Checks the offset delta of record number `index`, given the previous record's; the
    /// error is the one both the in-memory and the streamed walks give.
    pub(crate) fn check(
        self,
        index: usize,
        delta: i32,
        previous: Option<i32>,
    ) -> Result<(), RecordError> {
        let ok = match self {
            Deltas::Contiguous => i64::from(delta) == index as i64,
            Deltas::Increasing { last_offset_delta } => {
                delta <= last_offset_delta && previous.map_or(delta >= 0, |p| delta > p)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(RecordError::OffsetDeltaMismatch {
                index,
                offset_delta: delta,
            })
        }
    }
}

/// Parses a whole records section holding `declared` records: exactly that many, no
/// trailing bytes, offset deltas as `deltas` requires.
pub(crate) fn parse_records(
    data: &Bytes,
    declared: i32,
    deltas: Deltas,
) -> Result<Vec<Record>, RecordError> {
    let cap = usize::try_from(declared)
        .unwrap_or(0)
        .min(data.len() / MIN_RECORD_LEN + 1);
    let mut out = Vec::with_capacity(cap);
    walk_records(data, declared, deltas, |_, r: Record| out.push(r))?;
    Ok(out)
}

/// Reads every record of a records section, checking their number against `declared` and
/// their offset deltas against `deltas`, and hands each to `f` with its index.
pub(crate) fn walk_records<T: ReadRecord>(
    data: &Bytes,
    declared: i32,
    deltas: Deltas,
    mut f: impl FnMut(usize, T),
) -> Result<(), RecordError> {
    let mut reader = Reader::new(data);
    let mut count = 0usize;
    let mut previous: Option<i32> = None;
    while reader.remaining() > 0 {
        if i64::try_from(count).unwrap_or(i64::MAX) >= i64::from(declared) {
            // More bytes than the declared records: Kafka's "records still remaining".
            return Err(RecordError::InvalidRecord(format!(
                "{} bytes left after the {declared} declared records",
                reader.remaining()
            )));
        }
        let rec = T::read(&mut reader)?;
        let delta = rec.offset_delta();
        deltas.check(count, delta, previous)?;
        previous = Some(delta);
        f(count, rec);
        count += 1;
    }
    if i64::from(declared) != count as i64 {
        return Err(RecordError::RecordCountMismatch {
            declared,
            found: count,
        });
    }
    Ok(())
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_varlong(buf, i64::from(v));
}

/// Zigzag varlong; an i32 zigzags to the same bytes, so varint shares this.
pub(crate) fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn put_nullable(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_len(buf, b.len());
            buf.extend_from_slice(b);
        }
    }
}

/// Lengths in records are i32; anything larger cannot be represented, and a batch is far
/// below that anyway, so saturate rather than wrap into a negative (null-looking) length.
fn put_len(buf: &mut Vec<u8>, n: usize) {
    put_varint(buf, i32::try_from(n).unwrap_or(i32::MAX));
}

/// Encodes one record (length prefix included) onto `out`.
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) {
    let mut body = Vec::with_capacity(
        16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + headers.len() * 8,
    );
    body.put_u8(0); // record attributes: unused, always 0
    put_varlong(&mut body, timestamp_delta);
    put_varint(&mut body, offset_delta);
    put_nullable(&mut body, key);
    put_nullable(&mut body, value);
    put_len(&mut body, headers.len());
    for (k, v) in headers {
        put_nullable(&mut body, Some(k.as_bytes()));
        put_nullable(&mut body, *v);
    }
    put_len(out, body.len());
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compacted batch keeps its records' offsets: gaps are fine when reading, never
    /// from a producer.
    #[test]
    fn offset_delta_gaps_are_readable_but_not_producible() {
        let mut data = Vec::new();
        encode_record(&mut data, 0, 0, Some(b"a"), Some(b"1"), &[]);
        encode_record(&mut data, 2, 0, Some(b"b"), Some(b"2"), &[]);
        let data = Bytes::from(data);
        let read = parse_records(
            &data,
            2,
            Deltas::Increasing {
                last_offset_delta: 2,
            },
        )
        .unwrap();
        assert_eq!(
            read.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
            [0, 2]
        );
        assert!(matches!(
            parse_records(&data, 2, Deltas::Contiguous),
            Err(RecordError::OffsetDeltaMismatch {
                index: 1,
                offset_delta: 2
            })
        ));
        // Beyond the batch's last offset delta, or not increasing: corrupt either way.
        assert!(
            parse_records(
                &data,
                2,
                Deltas::Increasing {
                    last_offset_delta: 1
                }
            )
            .is_err()
        );
        let mut back = Vec::new();
        encode_record(&mut back, 1, 0, None, None, &[]);
        encode_record(&mut back, 1, 0, None, None, &[]);
        let back = Bytes::from(back);
        assert!(
            parse_records(
                &back,
                2,
                Deltas::Increasing {
                    last_offset_delta: 5
                }
            )
            .is_err()
        );
    }

    fn enc_varlong(v: i64) -> Vec<u8> {
        let mut b = Vec::new();
        put_varlong(&mut b, v);
        b
    }

    #[test]
    fn zigzag_known_answers() {
        // Values from Kafka's ByteUtilsTest.
        assert_eq!(enc_varlong(0), [0x00]);
        assert_eq!(enc_varlong(-1), [0x01]);
        assert_eq!(enc_varlong(1), [0x02]);
        assert_eq!(enc_varlong(63), [0x7e]);
        assert_eq!(enc_varlong(-64), [0x7f]);
        assert_eq!(enc_varlong(64), [0x80, 0x01]);
        assert_eq!(
            enc_varlong(i64::from(i32::MAX)),
            [0xfe, 0xff, 0xff, 0xff, 0x0f]
        );
        assert_eq!(
            enc_varlong(i64::from(i32::MIN)),
            [0xff, 0xff, 0xff, 0xff, 0x0f]
        );
        assert_eq!(enc_varlong(i64::MIN).len(), 10);
    }

    #[test]
    fn varints_round_trip_and_are_bounded() {
        for v in [0, 1, -1, 300, -300, i32::MAX, i32::MIN] {
            let b = Bytes::from(enc_varlong(i64::from(v)));
            assert_eq!(Reader::new(&b).varint().unwrap(), v);
        }
        for v in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
            let b = Bytes::from(enc_varlong(v));
            assert_eq!(Reader::new(&b).varlong().unwrap(), v);
        }
        let six = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
        assert!(Reader::new(&six).varint().is_err());
        let eleven = Bytes::from_static(&[0xff; 11]);
        assert!(Reader::new(&eleven).varlong().is_err());
        let cut = Bytes::from_static(&[0x80]);
        assert!(Reader::new(&cut).varint().is_err());
        assert!(Reader::new(&Bytes::new()).varlong().is_err());
    }

    #[test]
    fn record_lengths_are_checked() {
        // length 2 but the body needs more
        let b = Bytes::from_static(&[0x04, 0x00, 0x00]);
        assert!(Reader::new(&b).record().is_err());
        // huge header count with no bytes behind it must not allocate or panic
        let mut v = Vec::new();
        encode_record(&mut v, 0, 0, None, None, &[]);
        let n = v.len();
        v[n - 1] = 0xfe; // header count varint start: 0xfe 0xff 0xff 0xff 0x0f = i32::MAX
        v.extend_from_slice(&[0xff, 0xff, 0xff, 0x0f]);
        v[0] = ((v.len() - 1) * 2) as u8;
        let b = Bytes::from(v);
        assert!(Reader::new(&b).record().is_err());
        // a record whose fields end before its declared length
        let mut v = Vec::new();
        encode_record(&mut v, 0, 0, None, None, &[]);
        v[0] += 2;
        v.push(0);
        let b = Bytes::from(v);
        assert!(Reader::new(&b).record().is_err());
    }
}
