//! The broker settings the transaction coordinator obeys, with Kafka's names and defaults.

/// Coordinator limits and timers (Kafka broker properties in the field docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms` (900000): the largest transaction timeout a producer may
    /// ask for in InitProducerId.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000 = 7 days): a transactional id with no
    /// transaction in progress is forgotten after this long without an update.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000): how often
    /// transactions open longer than their timeout are looked for and aborted.
    pub abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (3600000): how often
    /// expired transactional ids are looked for.
    pub remove_expired_interval_ms: i64,
    /// The coordinator epoch (leader epoch of the `__transaction_state` partition) written
    /// into transaction markers; 0 on a single node.
    pub coordinator_epoch: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            coordinator_epoch: 0,
        }
    }
}
