//! Compression codecs for the records section of a batch.
//!
//! Every decompressor takes an output `limit`: a few kilobytes of zstd or gzip can expand to
//! gigabytes, and the bytes come from the network, so the output is read through a bound and
//! the call fails once the bound is crossed instead of allocating without end.
//!
//! One allocation is not bounded by `limit`: zstd's streaming decoder reserves the window the
//! frame header declares, up to zstd's own default cap of 128 MiB (window log 27). Lowering
//! that cap would refuse legitimate data from producers at high `compression.zstd.level`,
//! and the reservation is untouched memory until data is actually written into it.

use std::io::{Read, Write};

use crate::RecordError;

/// The codec of a batch's records section (attribute bits 0–2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Compression {
    /// Every codec, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec named by the low three bits of batch attributes.
    pub fn from_attributes(attrs: i16) -> Result<Compression, RecordError> {
        let id = (attrs & 0x07) as u8;
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(RecordError::UnsupportedCompression(other)),
        }
    }

    /// Parses a `compression.type` value; only concrete codecs, so "producer" and
    /// "uncompressed" (topic-level spellings) are the caller's business.
    pub fn from_name(s: &str) -> Option<Compression> {
        match s {
            "none" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "snappy" => Some(Compression::Snappy),
            "lz4" => Some(Compression::Lz4),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The Kafka name of the codec.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec id as stored in attribute bits 0–2.
    pub fn id(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Header the xerial `SnappyOutputStream` (used by the Java client) writes first:
/// magic `0x82 "SNAPPY" 0`, then version and minimum compatible version, both i32 BE 1.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size; matching it keeps our output shaped like Java's.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

pub(crate) fn codec_err(codec: Compression, e: impl std::fmt::Display) -> RecordError {
    RecordError::Codec {
        codec: codec.name(),
        message: e.to_string(),
    }
}

/// Compresses `data` with `c`. Snappy is written with xerial framing (what the Java client
/// writes and every client reads); LZ4 as a standard LZ4 frame with independent 64 KiB blocks
/// (what Kafka's `KafkaLZ4BlockOutputStream` writes).
pub fn compress(c: Compression, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2 + 32),
                flate2::Compression::default(),
            );
            enc.write_all(data).map_err(|e| codec_err(c, e))?;
            enc.finish().map_err(|e| codec_err(c, e))
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2 + 16);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK_SIZE) {
                let block = enc.compress_vec(chunk).map_err(|e| codec_err(c, e))?;
                let len = i32::try_from(block.len()).map_err(|e| codec_err(c, e))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(data).map_err(|e| codec_err(c, e))?;
            enc.finish().map_err(|e| codec_err(c, e))
        }
        // Level 3 is zstd's and Kafka's default.
        Compression::Zstd => zstd::bulk::compress(data, 3).map_err(|e| codec_err(c, e)),
    }
}

/// Decompresses `data` written with `c`, failing with [`RecordError::DecompressionLimit`]
/// rather than producing more than `limit` bytes. Snappy accepts xerial framing and raw
/// snappy.
pub fn decompress(c: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    match c {
        Compression::None => {
            if data.len() > limit {
                return Err(RecordError::DecompressionLimit { limit });
            }
            Ok(data.to_vec())
        }
        // MultiGzDecoder: Java's GZIPInputStream reads concatenated members, so do we.
        Compression::Gzip => read_bounded(c, flate2::read::MultiGzDecoder::new(data), limit),
        Compression::Snappy => {
            if data.starts_with(&XERIAL_MAGIC) {
                decompress_xerial(data, limit)
            } else {
                decompress_raw_snappy(data, limit)
            }
        }
        Compression::Lz4 => read_bounded(c, lz4_flex::frame::FrameDecoder::new(data), limit),
        Compression::Zstd => {
            let dec =
                zstd::stream::read::Decoder::with_buffer(data).map_err(|e| codec_err(c, e))?;
            read_bounded(c, dec, limit)
        }
    }
}

/// Reads a streaming decoder to its end, at most `limit` bytes: reading one byte past the
/// limit tells "exactly at the limit" from "over it" without decoding the rest.
fn read_bounded(c: Compression, reader: impl Read, limit: usize) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    let bound = (limit as u64).saturating_add(1);
    reader
        .take(bound)
        .read_to_end(&mut out)
        .map_err(|e| codec_err(c, e))?;
    if out.len() > limit {
        return Err(RecordError::DecompressionLimit { limit });
    }
    Ok(out)
}

fn decompress_raw_snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    // The declared length is checked before allocating: it is attacker-controlled.
    let n = snap::raw::decompress_len(data).map_err(|e| codec_err(Compression::Snappy, e))?;
    if n > limit {
        return Err(RecordError::DecompressionLimit { limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| codec_err(Compression::Snappy, e))
}

fn decompress_xerial(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    let err = |m: &str| codec_err(Compression::Snappy, m);
    let mut out = Vec::new();
    let mut dec = snap::raw::Decoder::new();
    let mut pos = 0usize;
    while pos < data.len() {
        // snappy-java tolerates concatenated streams: a header may reappear between blocks.
        if data[pos..].starts_with(&XERIAL_MAGIC) {
            if data.len() - pos < XERIAL_HEADER_LEN {
                return Err(err("truncated xerial header"));
            }
            pos += XERIAL_HEADER_LEN;
            continue;
        }
        let Some(len_bytes) = data.get(pos..pos + 4) else {
            return Err(err("truncated xerial block length"));
        };
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        pos += 4;
        let len = usize::try_from(len).map_err(|_| err("negative xerial block length"))?;
        let Some(block) = data.get(pos..pos.saturating_add(len)) else {
            return Err(err("xerial block extends past the end of the data"));
        };
        pos += len;
        let n = snap::raw::decompress_len(block).map_err(|e| codec_err(Compression::Snappy, e))?;
        if n > limit - out.len() {
            return Err(RecordError::DecompressionLimit { limit });
        }
        let start = out.len();
        out.resize(start + n, 0);
        let written = dec
            .decompress(block, &mut out[start..])
            .map_err(|e| codec_err(Compression::Snappy, e))?;
        out.truncate(start + written);
    }
    Ok(out)
}

/// A streaming decompressor over `data`. Snappy (xerial blocks or raw) is decoded whole,
/// bounded by `limit`: its format cannot expand more than about 21×.
pub(crate) fn decoder<'a>(
    c: Compression,
    data: &'a [u8],
    limit: usize,
) -> Result<Box<dyn Read + 'a>, RecordError> {
    Ok(match c {
        Compression::None => Box::new(data),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(data)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(data).map_err(|e| codec_err(c, e))?)
        }
        Compression::Snappy => Box::new(std::io::Cursor::new(decompress(c, data, limit)?)),
    })
}

/// A streaming compressor writing into memory: [`compress`]'s output, fed in pieces.
pub(crate) enum Encoder {
    None(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    /// Xerial framing: whole blocks of `XERIAL_BLOCK_SIZE` as they fill.
    Snappy {
        out: Vec<u8>,
        pending: Vec<u8>,
        /// Boxed: snappy's encoder holds its hash table inline.
        enc: Box<snap::raw::Encoder>,
    },
    /// Boxed: lz4's encoder carries its block buffers inline.
    Lz4(Box<lz4_flex::frame::FrameEncoder<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    pub(crate) fn new(c: Compression) -> Result<Encoder, RecordError> {
        Ok(match c {
            Compression::None => Encoder::None(Vec::new()),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
            Compression::Snappy => {
                let mut out = Vec::new();
                out.extend_from_slice(&XERIAL_MAGIC);
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                Encoder::Snappy {
                    out,
                    pending: Vec::with_capacity(XERIAL_BLOCK_SIZE),
                    enc: Box::new(snap::raw::Encoder::new()),
                }
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                Encoder::Lz4(Box::new(lz4_flex::frame::FrameEncoder::with_frame_info(
                    info,
                    Vec::new(),
                )))
            }
            Compression::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(Vec::new(), 3).map_err(|e| codec_err(c, e))?,
            ),
        })
    }

    fn snappy_block(
        out: &mut Vec<u8>,
        enc: &mut snap::raw::Encoder,
        block: &[u8],
    ) -> std::io::Result<()> {
        let compressed = enc.compress_vec(block).map_err(std::io::Error::other)?;
        let len = i32::try_from(compressed.len()).map_err(std::io::Error::other)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&compressed);
        Ok(())
    }

    pub(crate) fn finish(self, c: Compression) -> Result<Vec<u8>, RecordError> {
        match self {
            Encoder::None(v) => Ok(v),
            Encoder::Gzip(e) => e.finish().map_err(|e| codec_err(c, e)),
            Encoder::Snappy {
                mut out,
                pending,
                mut enc,
            } => {
                if !pending.is_empty() {
                    Self::snappy_block(&mut out, &mut enc, &pending)
                        .map_err(|e| codec_err(c, e))?;
                }
                Ok(out)
            }
            Encoder::Lz4(e) => e.finish().map_err(|e| codec_err(c, e)),
            Encoder::Zstd(e) => e.finish().map_err(|e| codec_err(c, e)),
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::None(v) => v.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Snappy { out, pending, enc } => {
                let n = buf.len().min(XERIAL_BLOCK_SIZE - pending.len());
                pending.extend_from_slice(&buf[..n]);
                if pending.len() == XERIAL_BLOCK_SIZE {
                    Self::snappy_block(out, enc, pending)?;
                    pending.clear();
                }
                Ok(n)
            }
            Encoder::Lz4(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
