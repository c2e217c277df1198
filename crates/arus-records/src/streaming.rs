//! Record summaries of a compressed batch read straight from the decompressor, as Kafka's
//! `skipKeyValueIterator`: keys, values and headers are skipped as they stream by, so the
//! memory a batch costs is one small buffer however far it expands — a decompression bomb
//! costs CPU (bounded by the caller's output limit), not memory.

use std::io::{BufRead, BufReader, Read};

use crate::compression::{Compression, codec_err};
use crate::error::RecordError;
use crate::record::{Deltas, RecordSummary};

/// Bytes the decompressor's output is read through.
const BUFFER_BYTES: usize = 64 * 1024;

/// A cursor over decompressed bytes that counts what it consumed.
struct StreamCursor<R: BufRead> {
    inner: R,
    consumed: u64,
    codec: Compression,
}

fn bad(msg: String) -> RecordError {
    RecordError::InvalidRecord(msg)
}

impl<R: BufRead> StreamCursor<R> {
    fn at_end(&mut self) -> Result<bool, RecordError> {
        Ok(self
            .inner
            .fill_buf()
            .map_err(|e| codec_err(self.codec, e))?
            .is_empty())
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        let buf = self
            .inner
            .fill_buf()
            .map_err(|e| codec_err(self.codec, e))?;
        let Some(&b) = buf.first() else {
            return Err(bad("unexpected end of record".into()));
        };
        self.inner.consume(1);
        self.consumed += 1;
        Ok(b)
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
        Err(bad(format!("varint longer than {max_bytes} bytes")))
    }

    fn varint(&mut self) -> Result<i32, RecordError> {
        // Five bytes hold 35 bits; like Kafka's readVarint, keep the low 32.
        Ok(self.varlong(5)? as i32)
    }

    fn skip(&mut self, n: u64) -> Result<(), RecordError> {
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| codec_err(self.codec, e))?;
        self.consumed += copied;
        if copied < n {
            return Err(bad("unexpected end of record".into()));
        }
        Ok(())
    }

    /// A nullable length-prefixed field, skipped; whether it was present. `left` is what the
    /// record still has room for.
    fn skip_nullable(&mut self, what: &str, left: u64) -> Result<bool, RecordError> {
        let len = self.varint()?;
        if len == -1 {
            return Ok(false);
        }
        let len = u64::try_from(len).map_err(|_| bad(format!("negative {what} length {len}")))?;
        if len > left {
            return Err(bad(format!(
                "{what} length {len} exceeds the {left} bytes left in the record"
            )));
        }
        self.skip(len)?;
        Ok(true)
    }

    fn summary(&mut self) -> Result<RecordSummary, RecordError> {
        let len = self.varint()?;
        let len = u64::try_from(len).map_err(|_| bad(format!("negative record length {len}")))?;
        let start = self.consumed;
        let left = |c: &Self| len.saturating_sub(c.consumed - start);
        self.u8()?; // attributes
        let timestamp_delta = self.varlong(10)?;
        let offset_delta = self.varint()?;
        let has_key = self.skip_nullable("key", left(self))?;
        self.skip_nullable("value", left(self))?;
        let count = self.varint()?;
        let count =
            u64::try_from(count).map_err(|_| bad(format!("negative header count {count}")))?;
        for _ in 0..count {
            if !self.skip_nullable("header key", left(self))? {
                return Err(bad("null header key".into()));
            }
            self.skip_nullable("header value", left(self))?;
        }
        let used = self.consumed - start;
        if used != len {
            return Err(bad(format!(
                "record declares {len} bytes but its fields use {used}"
            )));
        }
        Ok(RecordSummary {
            offset_delta,
            timestamp_delta,
            has_key,
        })
    }
}

/// Walks the summaries of `declared` records decompressed from `decoder`, reading at most
/// `limit` decompressed bytes ([`RecordError::DecompressionLimit`] past that), with the same
/// checks as the in-memory walk: exactly `declared` records, no trailing bytes, offset deltas
/// as `deltas` requires.
pub(crate) fn walk_summaries(
    codec: Compression,
    decoder: impl Read,
    limit: usize,
    declared: i32,
    deltas: Deltas,
    mut f: impl FnMut(usize, RecordSummary),
) -> Result<(), RecordError> {
    let bound = (limit as u64).saturating_add(1);
    let mut cursor = StreamCursor {
        inner: BufReader::with_capacity(BUFFER_BYTES, decoder.take(bound)),
        consumed: 0,
        codec,
    };
    let over_limit = |c: &StreamCursor<_>| c.consumed > limit as u64;
    let mut count = 0usize;
    let mut previous: Option<i32> = None;
    loop {
        match cursor.at_end() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(e),
        }
        if over_limit(&cursor) {
            return Err(RecordError::DecompressionLimit { limit });
        }
        if i64::try_from(count).unwrap_or(i64::MAX) >= i64::from(declared) {
            return Err(bad(format!(
                "bytes left after the {declared} declared records"
            )));
        }
        let rec = match cursor.summary() {
            Ok(r) => r,
            // The output was cut at the limit: that, not the cut record, is the error.
            Err(_) if over_limit(&cursor) || cursor.consumed == bound => {
                return Err(RecordError::DecompressionLimit { limit });
            }
            Err(e) => return Err(e),
        };
        let delta = rec.offset_delta;
        deltas.check(count, delta, previous)?;
        previous = Some(delta);
        f(count, rec);
        count += 1;
    }
    if over_limit(&cursor) {
        return Err(RecordError::DecompressionLimit { limit });
    }
    if i64::from(declared) != count as i64 {
        return Err(RecordError::RecordCountMismatch {
            declared,
            found: count,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::compression::compress;
    use crate::record::{put_varint, put_varlong, walk_records};

    /// A records section: each record (key, value) with `offset_delta` = its index.
    fn section(records: &[(Option<&[u8]>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (key, value)) in records.iter().enumerate() {
            let mut body = vec![0u8];
            put_varlong(&mut body, i as i64 * 10);
            put_varint(&mut body, i as i32);
            match key {
                Some(k) => {
                    put_varint(&mut body, k.len() as i32);
                    body.extend_from_slice(k);
                }
                None => put_varint(&mut body, -1),
            }
            put_varint(&mut body, value.len() as i32);
            body.extend_from_slice(value);
            put_varint(&mut body, 1);
            put_varint(&mut body, 1);
            body.extend_from_slice(b"h");
            put_varint(&mut body, -1);
            put_varint(&mut out, body.len() as i32);
            out.extend_from_slice(&body);
        }
        out
    }

    type Walk = Result<Vec<(usize, RecordSummary)>, RecordError>;

    /// The in-memory walk of `plain` and the streamed walk of its zstd compression.
    fn both(plain: &[u8], declared: i32, limit: usize) -> (Walk, Walk) {
        let mut in_memory = Vec::new();
        let a = walk_records(
            &Bytes::copy_from_slice(plain),
            declared,
            Deltas::Contiguous,
            |i, s: RecordSummary| in_memory.push((i, s)),
        )
        .map(|_| in_memory);
        let z = compress(Compression::Zstd, plain).unwrap();
        let mut streamed = Vec::new();
        let b = walk_summaries(
            Compression::Zstd,
            zstd::stream::read::Decoder::with_buffer(&z[..]).unwrap(),
            limit,
            declared,
            Deltas::Contiguous,
            |i, s| streamed.push((i, s)),
        )
        .map(|_| streamed);
        (a, b)
    }

    #[test]
    fn streamed_summaries_equal_the_in_memory_walk() {
        let big = vec![7u8; 200_000];
        let plain = section(&[(Some(b"a"), b"x"), (None, &big), (Some(b""), b"")]);
        let (a, b) = both(&plain, 3, 1 << 20);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.len(), 3);
        for ((ia, sa), (ib, sb)) in a.iter().zip(&b) {
            assert_eq!(
                (ia, sa.offset_delta, sa.timestamp_delta, sa.has_key),
                (ib, sb.offset_delta, sb.timestamp_delta, sb.has_key)
            );
        }
    }

    #[test]
    fn malformed_sections_are_refused_like_the_in_memory_walk() {
        let plain = section(&[(Some(b"a"), b"x"), (Some(b"b"), b"y")]);
        // Too few declared, too many declared, a truncated record.
        for (bytes, declared) in [
            (plain.clone(), 1),
            (plain.clone(), 3),
            (plain[..plain.len() - 2].to_vec(), 2),
        ] {
            let (a, b) = both(&bytes, declared, 1 << 20);
            assert!(a.is_err() && b.is_err(), "{a:?} / {b:?}");
        }
        // A key longer than its record.
        let mut bad = Vec::new();
        put_varint(&mut bad, 4);
        bad.push(0);
        put_varlong(&mut bad, 0);
        put_varint(&mut bad, 0);
        put_varint(&mut bad, 100);
        let (a, b) = both(&bad, 1, 1 << 20);
        assert!(a.is_err() && b.is_err());
    }

    #[test]
    fn a_bomb_stops_at_the_limit_without_holding_its_output() {
        // One record whose value is 256 MiB of zeros: a few KiB of zstd.
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        let mut head = vec![0u8];
        put_varlong(&mut head, 0);
        put_varint(&mut head, 0);
        put_varint(&mut head, -1);
        put_varint(&mut head, 256 << 20);
        let mut framed = Vec::new();
        put_varint(&mut framed, (head.len() + (256 << 20) + 1) as i32);
        framed.extend_from_slice(&head);
        std::io::Write::write_all(&mut enc, &framed).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            std::io::Write::write_all(&mut enc, &zeros).unwrap();
        }
        std::io::Write::write_all(&mut enc, &[0]).unwrap();
        let z = enc.finish().unwrap();
        assert!(z.len() < 100_000);
        let walk = |limit| {
            walk_summaries(
                Compression::Zstd,
                zstd::stream::read::Decoder::with_buffer(&z[..]).unwrap(),
                limit,
                1,
                Deltas::Contiguous,
                |_, _| {},
            )
        };
        assert!(matches!(
            walk(16 << 20),
            Err(RecordError::DecompressionLimit { limit }) if limit == 16 << 20
        ));
        // With room for it, the same record is walked (and skipped) whole.
        walk(300 << 20).unwrap();
    }
}
