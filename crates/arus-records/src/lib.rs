//! Kafka record batches (format v2, magic 2) for Arus.
//!
//! This crate reads, builds and validates the bytes of record batches: a zero-copy
//! [`RecordBatch`] view over the header, record parsing, the compression codecs (gzip, snappy
//! with xerial framing, LZ4 frame, zstd), in-place header edits the broker makes at append
//! (base offset, leader epoch, LogAppendTime), splitting a record set into batches, a
//! [`BatchBuilder`] and produce-time validation with Kafka's error semantics.
//!
//! It must not do I/O or depend on tokio, the protocol crate or the log: it is pure functions
//! over bytes so that the log, the broker, the client and tests can all share it, and so
//! that every parser here can be fuzzed in isolation. Untrusted input never panics and never
//! drives an allocation larger than the bytes present (or the caller's decompression bound).

mod batch;
mod builder;
mod compression;
mod error;
mod record;
mod streaming;
mod validate;

pub use bytes::Bytes;

pub use batch::{
    BATCH_HEADER_LEN, BatchIter, DEFAULT_DECOMPRESSION_LIMIT, LOG_OVERHEAD, MAGIC_V2, RecordBatch,
    TimestampType, batches, recompress, set_base_offset, set_log_append_time,
    set_partition_leader_epoch,
};
pub use builder::{BatchBuilder, ControlType, control_record_batch};
pub use compression::{Compression, compress, decompress};
pub use error::RecordError;
pub use record::{Record, RecordSummary};
pub use validate::{
    NO_TIMESTAMP, RecordValidationError, ValidatedBatches, ValidationConfig, ValidationError,
    validate_produce,
};
