//! Errors of a cleaning round.

use arus_records::RecordError;
use thiserror::Error;

/// Why a cleaning round stopped. A round that fails leaves the log untouched except for
/// groups already swapped in (each swap is complete on its own, as in Kafka).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CleanerError {
    /// Segment bytes do not parse as record batches v2 (Kafka's `CorruptRecordException`;
    /// Kafka then marks the partition uncleanable).
    #[error("corrupt log data at offset {offset}: {source}")]
    Corrupt {
        offset: i64,
        #[source]
        source: RecordError,
    },
    /// Framing problem found by the cleaner itself (length past the segment end, records
    /// out of order inside a batch, …).
    #[error("corrupt log data in segment {segment_base} at byte {position}: {message}")]
    CorruptSegment {
        segment_base: i64,
        position: u64,
        message: String,
    },
    /// The broker asked the round to stop (partition deleted, truncated, leadership moved):
    /// Kafka's `LogCleaningAbortedException`. Nothing is wrong with the data.
    #[error("log cleaning aborted")]
    Aborted,
    /// Reading or writing a segment failed.
    #[error("cleaner I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The log (the broker's [`CleanerSource`](crate::CleanerSource)) failed an operation.
    #[error("log error: {0}")]
    Log(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The offset map cannot hold even one key: `log.cleaner.dedupe.buffer.size` too small.
    #[error(
        "offset map of {slots} slots cannot make progress; raise log.cleaner.dedupe.buffer.size"
    )]
    MapTooSmall { slots: usize },
}
