//! Produce-time validation (DESIGN §3), following Kafka's `ProduceRequest.validateRecords`,
//! `UnifiedLog.analyzeAndValidateRecords` and `LogValidator`, in that order.
//!
//! One deliberate difference: Kafka decompresses every compressed batch to look at each
//! record. Arus does not on the hot path (DESIGN §3): for a compressed batch it trusts the
//! header's counts and checks timestamps against the header's `maxTimestamp`. It does
//! decompress when the topic is compacted, because a keyless record would break compaction
//! and only the records can tell: streamed as Kafka's `skipKeyValueIterator` does (keys and
//! values skipped as they go by, so memory stays one small buffer), and bounded to
//! [`DEFAULT_DECOMPRESSION_LIMIT`] of output (a bound on CPU that Kafka does not have).
//! Uncompressed batches are walked record by record; that is a cheap parse of bytes already
//! in memory.

use bytes::Bytes;
use thiserror::Error;

use crate::batch::DEFAULT_DECOMPRESSION_LIMIT;
use crate::{Compression, RecordBatch, RecordError, TimestampType, batches};

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
pub const NO_TIMESTAMP: i64 = -1;

/// Topic settings and the clock produce validation needs.
#[derive(Clone, Debug)]
pub struct ValidationConfig {
    /// `max.message.bytes`: the largest batch accepted, in bytes.
    pub max_message_bytes: usize,
    /// The topic is compacted (`cleanup.policy` includes `compact`): every record needs a key.
    pub require_keys: bool,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// The broker's clock, for timestamp bounds (and the summary of LogAppendTime topics).
    pub now_ms: i64,
    /// The topic's `message.timestamp.type`.
    pub timestamp_type: TimestampType,
}

/// What a valid produce holds.
#[derive(Clone, Debug)]
pub struct ValidatedBatches {
    /// The batches, untouched (still zero-copy slices of the request).
    pub batches: Vec<RecordBatch>,
    /// Sum of the header record counts.
    pub record_count: u64,
    /// Largest timestamp: the records' when they were read, otherwise the headers'
    /// `maxTimestamp`. For a LogAppendTime topic it is `now_ms`: the caller must stamp the
    /// batches with [`crate::set_log_append_time`] using that same `now_ms`.
    pub max_timestamp: i64,
    /// Timestamp of the first record (the first batch's `baseTimestamp` when records were not
    /// read); `now_ms` for a LogAppendTime topic.
    pub first_timestamp: i64,
    /// Sum of the batch sizes.
    pub total_bytes: usize,
    /// Codec of each batch, in order (the broker recompresses when it differs from the topic's
    /// `compression.type`, and refuses zstd before produce v7).
    pub compression: Vec<Compression>,
}

/// One record refused inside a batch: Kafka's produce v8 `record_errors` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordValidationError {
    /// Index of the record within its batch (Kafka's `batch_index`).
    pub index: usize,
    pub message: String,
}

/// Why a produce's records were refused. [`kafka_error_name`](Self::kafka_error_name) gives
/// the error code the broker sends.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// No complete batch at all (Kafka: INVALID_RECORD "must have at least one record batch").
    #[error("produce request must have at least one record batch per partition")]
    NoBatches,
    /// Framing is broken: truncated batch, trailing bytes, impossible batch length, or a
    /// magic byte that is no format at all. Kafka: CORRUPT_MESSAGE.
    #[error("corrupt record set: {0}")]
    Corrupt(RecordError),
    /// A v0/v1 message set. Kafka's produce v3+ accepts magic 2 only: INVALID_RECORD.
    #[error(
        "produce requests are only allowed to contain record batches with magic version 2, found magic {0}"
    )]
    UnsupportedMagic(i8),
    /// Kafka's produce v3+ allows exactly one batch per partition: INVALID_RECORD.
    #[error(
        "produce requests are only allowed to contain exactly one record batch per partition, found {0}"
    )]
    MultipleBatches(usize),
    /// Clients send base offset 0 (Kafka's analyzeAndValidateRecords): INVALID_RECORD.
    #[error("the baseOffset of the record batch should be 0, but it is {0}")]
    NonZeroBaseOffset(i64),
    /// Batch larger than `max.message.bytes`: MESSAGE_TOO_LARGE.
    #[error(
        "the record batch size is {size} bytes which exceeds the maximum configured value of {max}"
    )]
    MessageTooLarge { size: usize, max: usize },
    /// CRC32C mismatch: CORRUPT_MESSAGE.
    #[error("record is corrupt (stored crc = {stored:#010x}, computed crc = {computed:#010x})")]
    CrcMismatch { stored: u32, computed: u32 },
    /// Attribute codec id 5–7: UNSUPPORTED_COMPRESSION_TYPE.
    #[error("unknown compression codec id {0}")]
    UnsupportedCompression(u8),
    /// The batch as a whole breaks a rule (offset range, count, control batch, sequence,
    /// malformed record): INVALID_RECORD, no per-record errors.
    #[error("{0}")]
    InvalidBatch(String),
    /// Individual records were refused (missing key on a compacted topic, timestamp out of
    /// range). INVALID_TIMESTAMP if any timestamp is at fault, else INVALID_RECORD.
    #[error("{}", records_message(.errors, *.invalid_timestamp))]
    Records {
        errors: Vec<RecordValidationError>,
        invalid_timestamp: bool,
    },
}

fn records_message(errors: &[RecordValidationError], invalid_timestamp: bool) -> String {
    if invalid_timestamp {
        return "One or more records have been rejected due to invalid timestamp".into();
    }
    // Kafka's wording, first three errors shown.
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| format!("record {}: {}", e.index, e.message))
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        errors.len(),
        shown.join(", ")
    )
}

impl ValidationError {
    /// The Kafka error name the broker answers with (look the code up by name).
    pub fn kafka_error_name(&self) -> &'static str {
        match self {
            ValidationError::Corrupt(_) | ValidationError::CrcMismatch { .. } => "CORRUPT_MESSAGE",
            ValidationError::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            ValidationError::UnsupportedCompression(_) => "UNSUPPORTED_COMPRESSION_TYPE",
            ValidationError::Records {
                invalid_timestamp: true,
                ..
            } => "INVALID_TIMESTAMP",
            ValidationError::NoBatches
            | ValidationError::UnsupportedMagic(_)
            | ValidationError::MultipleBatches(_)
            | ValidationError::NonZeroBaseOffset(_)
            | ValidationError::InvalidBatch(_)
            | ValidationError::Records { .. } => "INVALID_RECORD",
        }
    }

    /// The Kafka error code matching [`kafka_error_name`](Self::kafka_error_name).
    pub fn kafka_error_code(&self) -> i16 {
        match self.kafka_error_name() {
            "CORRUPT_MESSAGE" => 2,
            "MESSAGE_TOO_LARGE" => 10,
            "INVALID_TIMESTAMP" => 32,
            "UNSUPPORTED_COMPRESSION_TYPE" => 76,
            _ => 87, // INVALID_RECORD
        }
    }

    /// Index (within its batch) of the first refused record, for produce v8 `record_errors`.
    pub fn batch_index(&self) -> Option<usize> {
        self.record_errors().first().map(|e| e.index)
    }

    /// Every refused record, for produce v8 `record_errors` (empty for batch-level errors).
    pub fn record_errors(&self) -> &[RecordValidationError] {
        match self {
            ValidationError::Records { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// Validates the `records` of one partition of a produce request.
///
/// Checks, in Kafka's order: framing (CORRUPT_MESSAGE), at least one batch, magic 2 and a
/// single batch (INVALID_RECORD), then per batch base offset 0, size against
/// `max_message_bytes`, CRC, codec, header consistency, and finally the records.
/// Bytes are never modified.
pub fn validate_produce(
    records: Bytes,
    cfg: &ValidationConfig,
) -> Result<ValidatedBatches, ValidationError> {
    let mut list = Vec::new();
    for b in batches(records) {
        match b {
            Ok(b) => list.push(b),
            // magic 0/1 is a real but refused format; anything else is garbage.
            Err(RecordError::UnsupportedMagic(m @ (0 | 1))) => {
                return Err(ValidationError::UnsupportedMagic(m));
            }
            Err(e) => return Err(ValidationError::Corrupt(e)),
        }
    }
    if list.is_empty() {
        return Err(ValidationError::NoBatches);
    }
    if list.len() > 1 {
        return Err(ValidationError::MultipleBatches(list.len()));
    }

    let mut out = ValidatedBatches {
        batches: Vec::with_capacity(list.len()),
        record_count: 0,
        max_timestamp: NO_TIMESTAMP,
        first_timestamp: NO_TIMESTAMP,
        total_bytes: 0,
        compression: Vec::with_capacity(list.len()),
    };
    for (i, batch) in list.into_iter().enumerate() {
        let summary = validate_batch(&batch, cfg)?;
        out.record_count += summary.count;
        out.max_timestamp = out.max_timestamp.max(summary.max_timestamp);
        if i == 0 {
            out.first_timestamp = summary.first_timestamp;
        }
        out.total_bytes += batch.size();
        out.compression.push(summary.compression);
        out.batches.push(batch);
    }
    if cfg.timestamp_type == TimestampType::LogAppendTime {
        out.max_timestamp = cfg.now_ms;
        out.first_timestamp = cfg.now_ms;
    }
    Ok(out)
}

struct BatchSummary {
    count: u64,
    max_timestamp: i64,
    first_timestamp: i64,
    compression: Compression,
}

fn validate_batch(
    b: &RecordBatch,
    cfg: &ValidationConfig,
) -> Result<BatchSummary, ValidationError> {
    // UnifiedLog.analyzeAndValidateRecords
    if b.base_offset() != 0 {
        return Err(ValidationError::NonZeroBaseOffset(b.base_offset()));
    }
    if b.size() > cfg.max_message_bytes {
        return Err(ValidationError::MessageTooLarge {
            size: b.size(),
            max: cfg.max_message_bytes,
        });
    }
    if let Err(RecordError::CrcMismatch { stored, computed }) = b.verify_crc() {
        return Err(ValidationError::CrcMismatch { stored, computed });
    }
    let compression = match b.compression() {
        Ok(c) => c,
        Err(RecordError::UnsupportedCompression(id)) => {
            return Err(ValidationError::UnsupportedCompression(id));
        }
        Err(e) => return Err(ValidationError::Corrupt(e)),
    };

    // LogValidator.validateBatch
    let count = b.record_count();
    let from_offsets = i64::from(b.last_offset_delta()) + 1;
    if from_offsets <= 0 {
        return Err(ValidationError::InvalidBatch(format!(
            "batch has an invalid offset range: [{}, {}]",
            b.base_offset(),
            b.last_offset()
        )));
    }
    if count <= 0 {
        return Err(ValidationError::InvalidBatch(format!(
            "invalid reported count for record batch: {count}"
        )));
    }
    if from_offsets != i64::from(count) {
        return Err(ValidationError::InvalidBatch(format!(
            "inconsistent batch offset range [{}, {}] and count of records {count}",
            b.base_offset(),
            b.last_offset()
        )));
    }
    if b.is_control() {
        return Err(ValidationError::InvalidBatch(
            "clients are not allowed to write control records".into(),
        ));
    }
    if b.producer_id() >= 0 && b.base_sequence() < 0 {
        return Err(ValidationError::InvalidBatch(format!(
            "invalid sequence number {} in record batch with producerId {}",
            b.base_sequence(),
            b.producer_id()
        )));
    }

    let walk = compression == Compression::None || cfg.require_keys;
    if !walk {
        // Compressed, normal topic: header-only checks. If every record is in bounds so is
        // the largest timestamp, so checking maxTimestamp never refuses a valid batch.
        if let Some(msg) = timestamp_problem(b, b.max_timestamp(), cfg) {
            return Err(ValidationError::Records {
                errors: vec![RecordValidationError {
                    index: 0,
                    message: msg,
                }],
                invalid_timestamp: true,
            });
        }
        return Ok(BatchSummary {
            count: count as u64,
            max_timestamp: b.max_timestamp(),
            first_timestamp: b.base_timestamp(),
            compression,
        });
    }

    // LogValidator.validateRecord, record by record — on summaries, which copy and allocate
    // nothing.
    let mut errors = Vec::new();
    let mut invalid_timestamp = false;
    let mut max_ts = NO_TIMESTAMP;
    let mut first_ts = NO_TIMESTAMP;
    b.producer_record_summaries(DEFAULT_DECOMPRESSION_LIMIT, |index, r| {
        let ts = r.timestamp(b);
        if index == 0 {
            first_ts = ts;
        }
        max_ts = max_ts.max(ts);
        // Kafka checks the key first and reports one problem per record.
        if cfg.require_keys && !r.has_key {
            errors.push(RecordValidationError {
                index,
                message: "Compacted topic cannot accept message without key".into(),
            });
        } else if let Some(message) = timestamp_problem(b, ts, cfg) {
            invalid_timestamp = true;
            errors.push(RecordValidationError { index, message });
        }
    })
    .map_err(|e| match e {
        RecordError::Codec { .. } | RecordError::DecompressionLimit { .. } => {
            ValidationError::Corrupt(e)
        }
        other => ValidationError::InvalidBatch(other.to_string()),
    })?;
    if !errors.is_empty() {
        return Err(ValidationError::Records {
            errors,
            invalid_timestamp,
        });
    }
    Ok(BatchSummary {
        count: count as u64,
        max_timestamp: max_ts,
        first_timestamp: first_ts,
        compression,
    })
}

/// Kafka's `LogValidator.validateTimestamp`: on a CreateTime topic a set timestamp must lie in
/// `[now - before, now + after]`; a producer may never send a LogAppendTime batch unless
/// its timestamps pass the CreateTime check (a quirk kept for compatibility).
fn timestamp_problem(b: &RecordBatch, ts: i64, cfg: &ValidationConfig) -> Option<String> {
    if cfg.timestamp_type == TimestampType::CreateTime && ts != NO_TIMESTAMP {
        let lo = cfg.now_ms.saturating_sub(cfg.timestamp_before_max_ms);
        let hi = cfg.now_ms.saturating_add(cfg.timestamp_after_max_ms);
        if ts < lo || ts > hi {
            return Some(format!(
                "Timestamp {ts} of message is out of range. The timestamp should be within [{lo}, {hi}]"
            ));
        }
        None
    } else if b.timestamp_type() == TimestampType::LogAppendTime {
        Some("Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime.".into())
    } else {
        None
    }
}
