//! Input layouts of the fuzz targets, shared with the seed generator (`examples/gen_seeds.rs`)
//! so that seeds and targets agree on what each byte means.

use arus_protocol::ApiKey;
use arus_records::{BATCH_HEADER_LEN, Compression};

/// Every `(api key, version)` pair the protocol crate decodes, in a fixed order.
pub fn api_pairs() -> Vec<(ApiKey, i16)> {
    ApiKey::all()
        .iter()
        .flat_map(|&k| {
            let (lo, hi) = k.valid_versions();
            (lo..=hi).map(move |v| (k, v))
        })
        .collect()
}

/// `request_decoder` input: a big-endian `u16` selector, then the payload.
///
/// - mode 0 and 1 (`selector >> 14`): the payload is a request frame after its API key and
///   version; the key and version of pair `(selector & 0x3fff) % api_pairs().len()` are put in
///   front, so every API and version is reached.
/// - mode 2: the payload is a whole request frame, used as is.
/// - mode 3: the payload is a response frame for the selected pair (client side).
pub const MODE_RAW_REQUEST: u16 = 2;
pub const MODE_RESPONSE: u16 = 3;

pub fn request_selector(mode: u16, pair_index: usize) -> [u8; 2] {
    ((mode << 14) | (pair_index as u16 & 0x3fff)).to_be_bytes()
}

/// `record_batch` input: one flags byte, then the record bytes (one or more batches).
pub const RB_FIX_FRAMING: u8 = 0x01; // rewrite batchLength of the first batch and its CRC
pub const RB_REQUIRE_KEYS: u8 = 0x02; // compacted topic: validation walks every record
pub const RB_LOG_APPEND_TIME: u8 = 0x04; // topic's message.timestamp.type
pub const RB_TIGHT_TIME: u8 = 0x08; // timestamp bounds of +-1 h around now (else unbounded)
/// Bits 4..6: a codec id 0..=4 written into the first batch's attributes (before the CRC fix),
/// 5..=7 leave the attributes alone.
pub const RB_CODEC_SHIFT: u8 = 4;
/// Bit 7: `recompress` target is the "next" codec instead of `None`.
pub const RB_RECOMPRESS_NEXT: u8 = 0x80;

/// Applies the `record_batch` flags to the batch bytes (in place).
pub fn apply_batch_flags(flags: u8, buf: &mut [u8]) {
    let codec = (flags >> RB_CODEC_SHIFT) & 0x07;
    if codec <= 4 && buf.len() >= BATCH_HEADER_LEN {
        buf[22] = (buf[22] & !0x07) | codec;
    }
    if flags & RB_FIX_FRAMING != 0 && buf.len() >= BATCH_HEADER_LEN {
        let len = i32::try_from(buf.len() - 12).unwrap_or(i32::MAX);
        buf[8..12].copy_from_slice(&len.to_be_bytes());
        buf[16] = 2;
        let crc = crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Flags byte selecting `codec` for the first batch (and fixing framing).
pub fn batch_flags_for(codec: Compression, extra: u8) -> u8 {
    RB_FIX_FRAMING | (codec.id() << RB_CODEC_SHIFT) | extra
}

/// CRC-32C (Castagnoli), bitwise: the fuzz crate avoids a dependency for one checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `coordinator_records` input: flags byte, big-endian `u16` key length, key, value.
pub const CR_TXN: u8 = 0x01; // __transaction_state (else __consumer_offsets)
pub const CR_TOMBSTONE: u8 = 0x02; // value is None (the bytes after the key are ignored)

pub fn coordinator_input(flags: u8, key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let flags = flags | if value.is_none() { CR_TOMBSTONE } else { 0 };
    let mut out = vec![flags];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value.unwrap_or_default());
    out
}

/// A `coordinator_records` input split: `(flags, key, value)`.
pub type CoordinatorInput<'a> = (u8, &'a [u8], Option<&'a [u8]>);

/// Splits a `coordinator_records` input into `(flags, key, value)`.
pub fn split_coordinator_input(data: &[u8]) -> Option<CoordinatorInput<'_>> {
    let (&flags, rest) = data.split_first()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (key, value) = rest.split_at(len);
    Some((flags, key, (flags & CR_TOMBSTONE == 0).then_some(value)))
}

/// A global allocator that remembers the largest single allocation, so targets can check
/// that no count or length read from the input sized an allocation beyond the bytes present
/// (libFuzzer's `-malloc_limit_mb` only catches the gigabyte ones).
pub mod alloc_check {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct Tracking;
    static LARGEST: AtomicUsize = AtomicUsize::new(0);

    // SAFETY: forwards to the system allocator unchanged.
    unsafe impl GlobalAlloc for Tracking {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Starts a measurement.
    pub fn reset() {
        LARGEST.store(0, Ordering::Relaxed);
    }

    /// Panics if an allocation since [`reset`] exceeded what `input_len` bytes can justify:
    /// 1 MiB plus 1 KiB per input byte (a decoded element can be far larger than its
    /// smallest encoding, but not by a factor the input chooses).
    pub fn assert_bounded(input_len: usize, what: &str) {
        let largest = LARGEST.load(Ordering::Relaxed);
        let bound = (1 << 20) + 1024 * input_len;
        assert!(
            largest <= bound,
            "{what}: allocation of {largest} bytes from {input_len} input bytes"
        );
    }
}
