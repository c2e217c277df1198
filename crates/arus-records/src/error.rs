//! Errors raised while reading, building or (de)compressing record batches.

use thiserror::Error;

/// Something is wrong with record-batch bytes or with a codec.
///
/// These are structural errors about the bytes themselves; the mapping to the Kafka error
/// code a produce response carries lives in [`crate::ValidationError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes end before the batch (or record) they announce is complete.
    #[error("record data is truncated: it ends in the middle of a batch or record")]
    Truncated,
    /// The batch's magic byte is not 2; only record batch v2 is supported.
    #[error("unsupported record batch magic {0} (only magic 2 is supported)")]
    UnsupportedMagic(i8),
    /// `batchLength` is impossible (smaller than the v2 header) or disagrees with the buffer.
    #[error("invalid batch length {batch_length} for a buffer of {buffer_len} bytes")]
    InvalidBatchLength {
        batch_length: i32,
        buffer_len: usize,
    },
    /// The stored CRC32C does not match the bytes it covers.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// Attribute bits 0–2 name a codec this broker does not know (5, 6 or 7).
    #[error("unknown compression codec id {0} in batch attributes")]
    UnsupportedCompression(u8),
    /// A codec failed to compress or decompress.
    #[error("{codec} error: {message}")]
    Codec {
        codec: &'static str,
        message: String,
    },
    /// Decompressed output would exceed the caller's bound (a likely decompression bomb).
    #[error("decompressed data exceeds the limit of {limit} bytes")]
    DecompressionLimit { limit: usize },
    /// A record inside the batch is malformed (bad varint, negative length, trailing bytes…).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The number of records found differs from the header's `recordCount`.
    #[error("batch header declares {declared} records but {found} were found")]
    RecordCountMismatch { declared: i32, found: usize },
    /// A record's offset delta is not its position in the batch.
    #[error("record {index} has offset delta {offset_delta}, expected {index}")]
    OffsetDeltaMismatch { index: usize, offset_delta: i32 },
    /// A batch must hold at least one record.
    #[error("a record batch must contain at least one record")]
    EmptyBatch,
}
