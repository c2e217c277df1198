//! Kafka log compaction (`cleanup.policy=compact` and `compact,delete`) for Arus.
//!
//! This crate follows Kafka's storage-module cleaner (`Cleaner`, `SkimpyOffsetMap`,
//! `LogCleanerManager`, `LogToClean`, `CleanedTransactionMetadata`, `MemoryRecords.filterTo`
//! and `Throttler`), over plain inputs so it compiles and is tested without the log:
//!
//! * [`cleanable_range`] picks what may be cleaned (first dirty offset to the first
//!   uncleanable offset) and whether the log is dirty enough (`min.cleanable.dirty.ratio`,
//!   `max.compaction.lag.ms`).
//! * [`OffsetMap`] is the bounded key-digest → latest-offset table built from the dirty
//!   section ([`build_offset_map`]); when it fills, the round stops there.
//! * [`clean_segment`] rewrites a run of batches: keeps the latest record per key at its
//!   original offset, removes aborted transactional data, stamps and later honours KIP-534
//!   delete horizons for tombstones and transaction markers, keeps empty batches where Kafka
//!   must (last batch of an active producer, last batch of the round).
//! * [`clean_log`] drives a whole round over a [`CleanerSource`], the small trait the broker
//!   implements over `arus_log::Log`, with reads in bounded chunks and a [`Throttler`] for
//!   `log.cleaner.io.max.bytes.per.second`.
//!
//! Nothing here takes a lock or spawns a thread; the broker runs [`clean_log`] on a blocking
//! thread and decides what its trait methods lock.
//!
//! Where this differs from Kafka, and why:
//!
//! * Only record batch v2 exists in Arus, so the legacy (magic < 2) tombstone horizon based
//!   on segment modification times is absent; KIP-534 horizons in the batch header are the
//!   only rule.
//! * A batch rebuilt without a new delete horizon keeps its `baseTimestamp` and its
//!   records' bytes (Kafka re-bases on the first retained record); record timestamps are
//!   the same either way and header keys that are not UTF-8 stay intact.
//! * Key digests are XXH3-128 rather than MD5 (see [`OffsetMap`]).
//! * Segment grouping bounds size and offset span, not index file sizes: Arus indexes hold
//!   one entry per `index.interval.bytes`, far below `segment.index.bytes` at any
//!   `segment.bytes`.
//! * Building the offset map skips batches that end before the first dirty offset instead
//!   of seeking through the offset index (same batches considered).

mod batch;
mod clean;
mod config;
mod driver;
mod error;
mod offset_map;
mod plan;
mod throttle;
mod txn;

pub use arus_log::producer_state::AbortedTxn;
pub use batch::{DELETE_HORIZON_BIT, delete_horizon_ms, first_batch_timestamp};
pub use clean::{CleanContext, CleanOutput, CleanStats, LastRecord, clean_segment};
pub use config::{CleanerConfig, DEDUPE_BUFFER_LOAD_FACTOR, DEFAULT_IO_BUFFER_BYTES};
pub use driver::{
    CleanResult, CleanedSegmentInfo, CleanedSink, Cleaner, CleanerSource, build_offset_map,
    clean_log,
};
pub use error::CleanerError;
pub use offset_map::OffsetMap;
pub use plan::{CleanPlan, SegmentMeta, cleanable_range, group_segments_by_size};
pub use throttle::{Clock, SystemClock, Throttler};

#[cfg(test)]
mod tests;
