//! Primitive Kafka wire codec: fixed-width integers, unsigned and zigzag varints, classic and
//! compact strings/bytes/arrays, and tagged fields.
//!
//! Readers consume from the front of a [`Bytes`] (so `bytes`/`records` values are zero-copy
//! slices of the frame); writers append to a [`BytesMut`]. Every length and count read from
//! the wire is checked against the bytes remaining before anything is allocated.

use crate::{DecodeError, EncodeError, Uuid};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Implemented by every generated struct: version-aware decode/encode.
pub trait Versioned: Sized {
    /// Reads one value from the front of `buf`.
    fn read(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
    /// Appends the encoding of `self` to `out`.
    fn write(&self, out: &mut BytesMut, version: i16) -> Result<(), EncodeError>;
}

#[inline]
fn need(buf: &Bytes, n: usize, field: &'static str) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        Err(DecodeError::Truncated {
            field,
            needed: n,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

// ----- fixed width -----

pub fn read_bool(buf: &mut Bytes, field: &'static str) -> Result<bool, DecodeError> {
    need(buf, 1, field)?;
    Ok(buf.get_u8() != 0)
}
pub fn read_i8(buf: &mut Bytes, field: &'static str) -> Result<i8, DecodeError> {
    need(buf, 1, field)?;
    Ok(buf.get_i8())
}
pub fn read_i16(buf: &mut Bytes, field: &'static str) -> Result<i16, DecodeError> {
    need(buf, 2, field)?;
    Ok(buf.get_i16())
}
pub fn read_u16(buf: &mut Bytes, field: &'static str) -> Result<u16, DecodeError> {
    need(buf, 2, field)?;
    Ok(buf.get_u16())
}
pub fn read_i32(buf: &mut Bytes, field: &'static str) -> Result<i32, DecodeError> {
    need(buf, 4, field)?;
    Ok(buf.get_i32())
}
pub fn read_u32(buf: &mut Bytes, field: &'static str) -> Result<u32, DecodeError> {
    need(buf, 4, field)?;
    Ok(buf.get_u32())
}
pub fn read_i64(buf: &mut Bytes, field: &'static str) -> Result<i64, DecodeError> {
    need(buf, 8, field)?;
    Ok(buf.get_i64())
}
pub fn read_f64(buf: &mut Bytes, field: &'static str) -> Result<f64, DecodeError> {
    need(buf, 8, field)?;
    Ok(buf.get_f64())
}
pub fn read_uuid(buf: &mut Bytes, field: &'static str) -> Result<Uuid, DecodeError> {
    need(buf, 16, field)?;
    let mut b = [0u8; 16];
    buf.copy_to_slice(&mut b);
    Ok(Uuid(b))
}

pub fn write_bool(out: &mut BytesMut, v: bool) {
    out.put_u8(u8::from(v));
}
pub fn write_i8(out: &mut BytesMut, v: i8) {
    out.put_i8(v);
}
pub fn write_i16(out: &mut BytesMut, v: i16) {
    out.put_i16(v);
}
pub fn write_u16(out: &mut BytesMut, v: u16) {
    out.put_u16(v);
}
pub fn write_i32(out: &mut BytesMut, v: i32) {
    out.put_i32(v);
}
pub fn write_u32(out: &mut BytesMut, v: u32) {
    out.put_u32(v);
}
pub fn write_i64(out: &mut BytesMut, v: i64) {
    out.put_i64(v);
}
pub fn write_f64(out: &mut BytesMut, v: f64) {
    out.put_f64(v);
}
pub fn write_uuid(out: &mut BytesMut, v: &Uuid) {
    out.put_slice(&v.0);
}

// ----- varints -----

/// Reads an unsigned LEB128 varint of at most 32 bits (5 bytes).
pub fn read_uvarint(buf: &mut Bytes, field: &'static str) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        need(buf, 1, field)?;
        let b = buf.get_u8();
        if i == 4 && b & 0xf0 != 0 {
            return Err(DecodeError::VarintOverflow { field });
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow { field })
}

/// Reads an unsigned LEB128 varlong of at most 64 bits (10 bytes).
pub fn read_uvarlong(buf: &mut Bytes, field: &'static str) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        need(buf, 1, field)?;
        let b = buf.get_u8();
        if i == 9 && b & 0xfe != 0 {
            return Err(DecodeError::VarintOverflow { field });
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow { field })
}

/// Reads a zigzag-encoded signed varint (as used inside record batches).
pub fn read_varint(buf: &mut Bytes, field: &'static str) -> Result<i32, DecodeError> {
    read_uvarint(buf, field).map(zigzag_decode32)
}

/// Reads a zigzag-encoded signed varlong (as used inside record batches).
pub fn read_varlong(buf: &mut Bytes, field: &'static str) -> Result<i64, DecodeError> {
    read_uvarlong(buf, field).map(zigzag_decode64)
}

pub fn write_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

pub fn write_uvarlong(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

pub fn write_varint(out: &mut BytesMut, v: i32) {
    write_uvarint(out, zigzag_encode32(v));
}

pub fn write_varlong(out: &mut BytesMut, v: i64) {
    write_uvarlong(out, zigzag_encode64(v));
}

pub fn zigzag_encode32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}
pub fn zigzag_decode32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}
pub fn zigzag_encode64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
pub fn zigzag_decode64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Size in bytes of `v` as an unsigned varint.
pub fn uvarint_len(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

// ----- lengths -----

/// Reads a length prefix. Returns `None` for null (-1 classic, 0 compact).
/// `classic_wide` selects int32 (bytes, arrays) vs int16 (strings) classic lengths.
fn read_len(
    buf: &mut Bytes,
    compact: bool,
    classic_wide: bool,
    field: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        i64::from(read_uvarint(buf, field)?) - 1
    } else if classic_wide {
        i64::from(read_i32(buf, field)?)
    } else {
        i64::from(read_i16(buf, field)?)
    };
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(DecodeError::InvalidLength { field, length: len });
    }
    let len = len as usize;
    if len > buf.remaining() {
        return Err(DecodeError::LengthTooLarge {
            field,
            length: len,
            remaining: buf.remaining(),
        });
    }
    Ok(Some(len))
}

fn write_len(
    out: &mut BytesMut,
    compact: bool,
    classic_wide: bool,
    len: Option<usize>,
    field: &'static str,
) -> Result<(), EncodeError> {
    match len {
        None => {
            if compact {
                write_uvarint(out, 0);
            } else if classic_wide {
                write_i32(out, -1);
            } else {
                write_i16(out, -1);
            }
        }
        Some(n) => {
            if compact {
                let v = u32::try_from(n)
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .filter(|&v| v <= i32::MAX as u32)
                    .ok_or(EncodeError::TooLong { field, length: n })?;
                write_uvarint(out, v);
            } else if classic_wide {
                let v = i32::try_from(n).map_err(|_| EncodeError::TooLong { field, length: n })?;
                write_i32(out, v);
            } else {
                let v = i16::try_from(n).map_err(|_| EncodeError::TooLong { field, length: n })?;
                write_i16(out, v);
            }
        }
    }
    Ok(())
}

// ----- strings -----

/// Kafka limits strings to 0x7fff bytes in both classic and compact encodings.
pub const MAX_STRING_LEN: usize = 0x7fff;

pub fn read_nullable_string(
    buf: &mut Bytes,
    compact: bool,
    field: &'static str,
) -> Result<Option<String>, DecodeError> {
    match read_len(buf, compact, false, field)? {
        None => Ok(None),
        Some(n) if n > MAX_STRING_LEN => Err(DecodeError::InvalidLength {
            field,
            length: n as i64,
        }),
        Some(n) => {
            let raw = buf.split_to(n);
            match std::str::from_utf8(&raw) {
                Ok(s) => Ok(Some(s.to_owned())),
                Err(_) => Err(DecodeError::InvalidUtf8 { field }),
            }
        }
    }
}

pub fn read_string(
    buf: &mut Bytes,
    compact: bool,
    field: &'static str,
) -> Result<String, DecodeError> {
    read_nullable_string(buf, compact, field)?.ok_or(DecodeError::UnexpectedNull { field })
}

pub fn write_nullable_string(
    out: &mut BytesMut,
    compact: bool,
    v: Option<&str>,
    field: &'static str,
) -> Result<(), EncodeError> {
    let len = v.map(str::len);
    if let Some(length) = len.filter(|&n| n > MAX_STRING_LEN) {
        return Err(EncodeError::TooLong { field, length });
    }
    write_len(out, compact, false, v.map(str::len), field)?;
    if let Some(s) = v {
        out.put_slice(s.as_bytes());
    }
    Ok(())
}

pub fn write_string(
    out: &mut BytesMut,
    compact: bool,
    v: &str,
    field: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_string(out, compact, Some(v), field)
}

// ----- bytes -----

/// Reads nullable bytes; the result is a zero-copy slice of `buf`.
pub fn read_nullable_bytes(
    buf: &mut Bytes,
    compact: bool,
    field: &'static str,
) -> Result<Option<Bytes>, DecodeError> {
    Ok(read_len(buf, compact, true, field)?.map(|n| buf.split_to(n)))
}

pub fn read_bytes(
    buf: &mut Bytes,
    compact: bool,
    field: &'static str,
) -> Result<Bytes, DecodeError> {
    read_nullable_bytes(buf, compact, field)?.ok_or(DecodeError::UnexpectedNull { field })
}

pub fn write_nullable_bytes(
    out: &mut BytesMut,
    compact: bool,
    v: Option<&Bytes>,
    field: &'static str,
) -> Result<(), EncodeError> {
    write_len(out, compact, true, v.map(Bytes::len), field)?;
    if let Some(b) = v {
        out.put_slice(b);
    }
    Ok(())
}

/// A `records` field: like [`write_nullable_bytes`], unless a splice plan (see
/// [`crate::splice`]) says to leave this value out of the frame, in which case only the length
/// prefix for the planned length is written.
pub fn write_records(
    out: &mut BytesMut,
    compact: bool,
    v: Option<&Bytes>,
    field: &'static str,
) -> Result<(), EncodeError> {
    let mut prefix_result = Ok(());
    let hole = crate::splice::next_hole(|len| {
        prefix_result = write_len(out, compact, true, Some(len), field);
        out.len()
    });
    match hole {
        Some(_) => prefix_result,
        None => write_nullable_bytes(out, compact, v, field),
    }
}

pub fn write_bytes(
    out: &mut BytesMut,
    compact: bool,
    v: &Bytes,
    field: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_bytes(out, compact, Some(v), field)
}

// ----- arrays -----

/// Reads a nullable array. `min_elem` is the smallest possible encoded element size; the
/// count is rejected if it cannot fit in the bytes remaining, so allocation is bounded by the
/// frame size.
pub fn read_nullable_array<T>(
    buf: &mut Bytes,
    compact: bool,
    field: &'static str,
    min_elem: usize,
    mut elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    let count: i64 = if compact {
        i64::from(read_uvarint(buf, field)?) - 1
    } else {
        i64::from(read_i32(buf, field)?)
    };
    if count == -1 {
        return Ok(None);
    }
    if count < 0 {
        return Err(DecodeError::InvalidLength {
            field,
            length: count,
        });
    }
    let count = count as usize;
    if count.saturating_mul(min_elem.max(1)) > buf.remaining() {
        return Err(DecodeError::LengthTooLarge {
            field,
            length: count,
            remaining: buf.remaining(),
        });
    }
    // Bound the up-front allocation by the bytes remaining, whatever the element size.
    let cap = count.min(buf.remaining() / std::mem::size_of::<T>().max(1));
    let mut v = Vec::with_capacity(cap);
    for _ in 0..count {
        v.push(elem(buf)?);
    }
    Ok(Some(v))
}

pub fn read_array<T>(
    buf: &mut Bytes,
    compact: bool,
    field: &'static str,
    min_elem: usize,
    elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    read_nullable_array(buf, compact, field, min_elem, elem)?
        .ok_or(DecodeError::UnexpectedNull { field })
}

pub fn write_nullable_array<T>(
    out: &mut BytesMut,
    compact: bool,
    v: Option<&[T]>,
    field: &'static str,
    mut elem: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    write_len(out, compact, true, v.map(<[T]>::len), field)?;
    if let Some(items) = v {
        for e in items {
            elem(out, e)?;
        }
    }
    Ok(())
}

pub fn write_array<T>(
    out: &mut BytesMut,
    compact: bool,
    v: &[T],
    field: &'static str,
    elem: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    write_nullable_array(out, compact, Some(v), field, elem)
}

// ----- nullable structs (int8 presence marker: -1 null, 1 present) -----

pub fn read_nullable_struct<T>(
    buf: &mut Bytes,
    field: &'static str,
    f: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    // Like Kafka: any negative marker means null, anything else present.
    if read_i8(buf, field)? < 0 {
        Ok(None)
    } else {
        f(buf).map(Some)
    }
}

pub fn write_nullable_struct<T>(
    out: &mut BytesMut,
    v: Option<&T>,
    f: impl FnOnce(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    match v {
        None => {
            write_i8(out, -1);
            Ok(())
        }
        Some(s) => {
            write_i8(out, 1);
            f(out, s)
        }
    }
}

// ----- tagged fields -----

/// Reads one tagged field's tag and data (a zero-copy slice of `buf`).
pub fn read_tagged_field(
    buf: &mut Bytes,
    field: &'static str,
) -> Result<(u32, Bytes), DecodeError> {
    let tag = read_uvarint(buf, field)?;
    let size = read_uvarint(buf, field)? as usize;
    if size > buf.remaining() {
        return Err(DecodeError::LengthTooLarge {
            field,
            length: size,
            remaining: buf.remaining(),
        });
    }
    Ok((tag, buf.split_to(size)))
}

/// Writes one tagged field: tag, size, then whatever `f` writes.
pub fn write_tagged_field(
    out: &mut BytesMut,
    tag: u32,
    f: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut tmp = BytesMut::new();
    f(&mut tmp)?;
    write_uvarint(out, tag);
    let len = u32::try_from(tmp.len()).map_err(|_| EncodeError::TooLong {
        field: "<tagged field>",
        length: tmp.len(),
    })?;
    write_uvarint(out, len);
    out.extend_from_slice(&tmp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_roundtrip() {
        for v in [0u32, 1, 127, 128, 300, 16383, 16384, u32::MAX] {
            let mut o = BytesMut::new();
            write_uvarint(&mut o, v);
            assert_eq!(o.len(), uvarint_len(v));
            let mut b = o.freeze();
            assert_eq!(read_uvarint(&mut b, "x").unwrap(), v);
            assert!(b.is_empty());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 12345, -12345] {
            let mut o = BytesMut::new();
            write_varlong(&mut o, v);
            let mut b = o.freeze();
            assert_eq!(read_varlong(&mut b, "x").unwrap(), v);
        }
        for v in [0i32, -1, 1, i32::MIN, i32::MAX] {
            assert_eq!(zigzag_decode32(zigzag_encode32(v)), v);
        }
        assert_eq!(zigzag_encode32(-1), 1);
        assert_eq!(zigzag_encode32(1), 2);
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(read_uvarint(&mut b, "x").is_err());
    }

    #[test]
    fn huge_counts_rejected() {
        let mut b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]);
        let r = read_array(&mut b, false, "x", 4, |b| read_i32(b, "e"));
        assert!(matches!(r, Err(DecodeError::LengthTooLarge { .. })));
        let mut b = Bytes::from_static(&[0xff, 0xfe]);
        assert!(matches!(
            read_nullable_string(&mut b, false, "x"),
            Err(DecodeError::InvalidLength { .. })
        ));
    }
}
