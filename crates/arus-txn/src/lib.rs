//! `arus-txn`: Kafka's transaction coordinator as a pure state machine — InitProducerId
//! (with KIP-360 epoch bumps and producer id rotation), AddPartitionsToTxn, EndTxn, the
//! commit/abort markers it asks the broker to write, timed-out transaction aborts,
//! transactional id expiry, produce-time verification (KIP-890 part 1),
//! DescribeTransactions/ListTransactions, and the `__transaction_state` record codec.
//!
//! Modelled on Kafka 4.4's `TransactionCoordinator`, `TransactionMetadata`,
//! `TransactionStateManager` and `TransactionLog`, for transaction version 1 (the producer
//! adds partitions itself; epochs are not bumped per transaction) and version 2 (KIP-890
//! part 2: EndTxn v5 bumps the epoch on every commit and abort, moving to a new producer id
//! when it is exhausted; the broker adds partitions for Produce v12+ / TxnOffsetCommit v5+). Time is an input
//! (`now_ms`) and effects are returned as values ([`TxnEffects`]); this crate must not
//! depend on tokio, sockets or the log.

pub mod config;
pub mod coordinator;
pub mod records;
pub mod types;

pub use config::TxnConfig;
pub use coordinator::{
    DescribedTxn, ListedTxn, MarkerJob, ProducerIdSource, TxnCoordinator, TxnEffects,
    is_epoch_exhausted, produce_error_for_verification,
};
pub use records::{
    RecordError, TxnLogValue, TxnRecord, decode_record, encode_record, transaction_partition_for,
};
pub use types::{TopicPartition, TxnState};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v2;
