//! Cleaner settings and Kafka's defaults.

/// Kafka's `LogCleaner` fills the offset map to at most this fraction of its slots
/// (`log.cleaner.io.buffer.load.factor`, default 0.9) so probing stays short.
pub const DEDUPE_BUFFER_LOAD_FACTOR: f64 = 0.9;

/// Read chunk size: Kafka's `log.cleaner.io.buffer.size` (512 KiB) is shared by a read
/// and a write buffer, so each gets half. A batch larger than this is read whole.
pub const DEFAULT_IO_BUFFER_BYTES: usize = 256 * 1024;

/// Settings of one cleaning round. The broker-wide ones (`dedupe_buffer_bytes`,
/// `io_max_bytes_per_sec`, `io_buffer_bytes`) come from `log.cleaner.*`; the rest are the
/// topic's configs, so the broker builds one per log.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size` divided by the number of cleaner threads: the
    /// offset map's memory.
    pub dedupe_buffer_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second` (reads and writes together, as Kafka counts).
    pub io_max_bytes_per_sec: f64,
    /// `delete.retention.ms`: how long tombstones and transaction markers survive once a
    /// cleaner has seen them (their KIP-534 delete horizon is set to now + this).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: segments whose newest record is younger stay dirty.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest dirty batch is older is cleaned even
    /// below the dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `segment.bytes`: cleaned segments are merged up to this size.
    pub segment_bytes: u64,
    /// Read chunk size (see [`DEFAULT_IO_BUFFER_BYTES`]).
    pub io_buffer_bytes: usize,
}

impl Default for CleanerConfig {
    /// Kafka 4 defaults (`CleanerConfig`, `LogConfig`).
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_bytes: 128 * 1024 * 1024,
            io_max_bytes_per_sec: f64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            segment_bytes: 1024 * 1024 * 1024,
            io_buffer_bytes: DEFAULT_IO_BUFFER_BYTES,
        }
    }
}
