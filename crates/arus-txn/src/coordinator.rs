//! The transaction coordinator: Kafka 4.x's `TransactionCoordinator` (the transaction
//! version 1 paths, where the producer sends AddPartitionsToTxn itself and the epoch is not
//! bumped at the end of each transaction), `TransactionMetadata` transitions and the timers
//! of `TransactionStateManager`, as a state machine over injected time.
//!
//! Each operation answers at once. Records to persist to `__transaction_state` and
//! transaction markers to write accumulate in [`TxnEffects`]; the driver takes them with
//! [`TxnCoordinator::take_effects`] after each call, persists the records (in order) before
//! answering, writes the markers of each [`MarkerJob`] to its partitions, then calls
//! [`TxnCoordinator::markers_written`].
//!
//! Kafka keeps a *pending state* while a transition's record is being appended and answers
//! CONCURRENT_TRANSACTIONS meanwhile. Here the transition is applied at once (the driver
//! serialises calls under one lock), so Kafka's transient `PrepareEpochFence` and `Dead`
//! states never stay in memory: fencing an open transaction goes straight to `PrepareAbort`
//! with the bumped epoch, and an expired id is removed with its tombstone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arus_protocol::ErrorCode;
use arus_protocol::codec::MAX_STRING_LEN;
use tracing::{debug, info};

use crate::config::TxnConfig;
use crate::records::{TxnLogValue, TxnRecord, transaction_partition_for};
use crate::types::{TopicPartition, TxnState};

/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH` / `NO_PRODUCER_ID`.
const NO_EPOCH: i16 = -1;
const NO_PRODUCER_ID: i64 = -1;

/// Kafka's `TransactionMetadata.isEpochExhausted`: the last two epochs are kept back so the
/// coordinator can always fence (bump) once more.
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// Where producer ids come from (the broker persists id blocks).
pub trait ProducerIdSource {
    fn next_producer_id(&mut self) -> Result<i64, ErrorCode>;
}

/// Transaction markers to write: a COMMIT or ABORT control batch of `producer_id` /
/// `producer_epoch` with `coordinator_epoch` in every partition, then
/// [`TxnCoordinator::markers_written`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkerJob {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    /// Sorted.
    pub partitions: Vec<TopicPartition>,
}

/// What the driver must do after an operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnEffects {
    /// Records for `__transaction_state`, in order (see [`transaction_partition_for`] for the
    /// partition of each).
    pub records: Vec<TxnRecord>,
    /// Marker jobs, to start once the records before them are durable.
    pub markers: Vec<MarkerJob>,
}

impl TxnEffects {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.markers.is_empty()
    }
}

/// One transactional id as DescribeTransactions reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedTxn {
    pub transactional_id: String,
    /// [`TxnState::name`].
    pub state: &'static str,
    pub timeout_ms: i32,
    /// -1 when no transaction has started since the last InitProducerId.
    pub start_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sorted.
    pub partitions: Vec<TopicPartition>,
}

/// One transactional id as ListTransactions reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedTxn {
    pub transactional_id: String,
    pub producer_id: i64,
    /// [`TxnState::name`].
    pub state: &'static str,
}

/// Kafka's `TransactionMetadata` of one transactional id.
#[derive(Clone, Debug)]
struct Txn {
    producer_id: i64,
    /// The producer id before the last transition (persisted as tagged field 0).
    prev_producer_id: i64,
    next_producer_id: i64,
    producer_epoch: i16,
    /// The epoch before the last InitProducerId bump, for KIP-360 retries; not persisted
    /// (-1 after a reload, as in Kafka).
    last_producer_epoch: i16,
    timeout_ms: i32,
    state: TxnState,
    partitions: BTreeSet<TopicPartition>,
    start_ms: i64,
    last_update_ms: i64,
    client_transaction_version: i16,
}

impl Txn {
    fn to_value(&self) -> TxnLogValue {
        TxnLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self.partitions.iter().cloned().collect(),
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
            prev_producer_id: self.prev_producer_id,
            next_producer_id: self.next_producer_id,
            client_transaction_version: self.client_transaction_version,
        }
    }

    fn from_value(v: TxnLogValue) -> Txn {
        Txn {
            producer_id: v.producer_id,
            prev_producer_id: v.prev_producer_id,
            next_producer_id: v.next_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: NO_EPOCH,
            timeout_ms: v.timeout_ms,
            state: v.state,
            partitions: v.partitions.into_iter().collect(),
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
            client_transaction_version: v.client_transaction_version,
        }
    }
}

/// The transaction coordinator of every `__transaction_state` partition this node leads.
#[derive(Debug)]
pub struct TxnCoordinator {
    config: TxnConfig,
    txns: BTreeMap<String, Txn>,
    /// Current producer id → transactional id, for produce-time verification.
    by_producer: HashMap<i64, String>,
    effects: TxnEffects,
    next_abort_check_ms: i64,
    next_expire_check_ms: i64,
    /// The finalized `transaction.version` (Kafka's `txnManager.transactionVersionLevel()`):
    /// the version the coordinator's own aborts (timeouts, fencing) run with.
    server_transaction_version: i16,
}

/// What `prepare_end` does beyond the state change (Kafka's `prepareAbortOrCommit`
/// arguments).
#[derive(Clone, Copy, Debug)]
struct EndMode {
    /// The client's (or, for the coordinator's own aborts, the server's) transaction
    /// version; 2 bumps the epoch.
    tv: i16,
    /// The producer id the transaction moves to when it completes (its epoch is
    /// exhausted), or -1.
    next_producer_id: i64,
    /// TV2 abort of a transaction with no partitions: the start time becomes now.
    no_partition_added: bool,
}

impl EndMode {
    const TV1: EndMode = EndMode {
        tv: 0,
        next_producer_id: NO_PRODUCER_ID,
        no_partition_added: false,
    };
}

impl TxnCoordinator {
    /// An empty coordinator. Both periodic checks run on the first [`TxnCoordinator::tick`].
    pub fn new(config: TxnConfig) -> Self {
        TxnCoordinator {
            config,
            txns: BTreeMap::new(),
            by_producer: HashMap::new(),
            effects: TxnEffects::default(),
            next_abort_check_ms: 0,
            next_expire_check_ms: 0,
            server_transaction_version: 1,
        }
    }

    /// Sets the finalized `transaction.version` (the broker calls it at start and after
    /// every UpdateFeatures).
    pub fn set_server_transaction_version(&mut self, level: i16) {
        self.server_transaction_version = level;
    }

    pub fn server_transaction_version(&self) -> i16 {
        self.server_transaction_version
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Whether records or marker jobs wait for [`TxnCoordinator::take_effects`] (those a
    /// load left: markers of commits and aborts in progress).
    pub fn has_effects(&self) -> bool {
        !self.effects.records.is_empty() || !self.effects.markers.is_empty()
    }

    /// Records and marker jobs produced since the last call.
    pub fn take_effects(&mut self) -> TxnEffects {
        std::mem::take(&mut self.effects)
    }

    // ------------------------------------------------------------------ transitions

    /// Applies `f` to the transaction and queues its record. As in Kafka's
    /// `prepareTransitionTo`, the record's previous producer id is the producer id before
    /// the transition.
    fn transit(&mut self, id: &str, f: impl FnOnce(&mut Txn)) -> Option<(i64, i16)> {
        let txn = self.txns.get_mut(id)?;
        let old_pid = txn.producer_id;
        f(txn);
        txn.prev_producer_id = old_pid;
        let pid = txn.producer_id;
        let epoch = txn.producer_epoch;
        let value = txn.to_value();
        if pid != old_pid {
            if self.by_producer.get(&old_pid).is_some_and(|t| t == id) {
                self.by_producer.remove(&old_pid);
            }
            self.by_producer.insert(pid, id.to_string());
        }
        self.effects.records.push(TxnRecord {
            transactional_id: id.to_string(),
            value: Some(value),
        });
        Some((pid, epoch))
    }

    /// → PrepareCommit/PrepareAbort and its marker job (Kafka's `prepareAbortOrCommit`).
    /// Transaction version 1 keeps the epoch; version 2 bumps it (not past `i16::MAX` for
    /// an abort), remembers the old one, and records the producer id to move to once
    /// complete. The markers carry the (bumped) epoch of the Prepare state. A transaction
    /// without partitions has no markers to write and completes at once.
    fn prepare_end(&mut self, id: &str, commit: bool, now: i64, mode: EndMode) {
        let state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if self
            .transit(id, |t| {
                if mode.tv >= 2 {
                    let old = t.producer_epoch;
                    // Kafka leaves an abort at i16::MAX there (and logs it as a bug).
                    if old != i16::MAX || commit {
                        t.producer_epoch = old.saturating_add(1);
                    }
                    t.last_producer_epoch = old;
                }
                if mode.no_partition_added {
                    t.start_ms = now;
                }
                t.next_producer_id = mode.next_producer_id;
                t.state = state;
                t.last_update_ms = now;
                t.client_transaction_version = mode.tv;
            })
            .is_none()
        {
            return;
        }
        let Some(t) = self.txns.get(id) else { return };
        if t.partitions.is_empty() {
            self.complete(id, now);
            return;
        }
        self.effects.markers.push(MarkerJob {
            transactional_id: id.to_string(),
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            coordinator_epoch: self.config.coordinator_epoch,
            commit,
            partitions: t.partitions.iter().cloned().collect(),
        });
    }

    /// PrepareCommit/PrepareAbort → CompleteCommit/CompleteAbort (Kafka's `prepareComplete`:
    /// partitions cleared, start time kept).
    fn complete(&mut self, id: &str, now: i64) {
        self.transit(id, |t| {
            t.state = if t.state == TxnState::PrepareCommit {
                TxnState::CompleteCommit
            } else {
                TxnState::CompleteAbort
            };
            // Transaction version 2 with an exhausted epoch: the next transaction runs
            // under the new producer id (the record keeps the old one as PrevProducerId).
            if t.client_transaction_version >= 2 && t.next_producer_id != NO_PRODUCER_ID {
                t.producer_id = t.next_producer_id;
                t.producer_epoch = 0;
            }
            t.partitions.clear();
            t.next_producer_id = NO_PRODUCER_ID;
            t.last_update_ms = now;
        });
    }

    /// Fences the current producer of an open transaction and aborts it: Kafka's
    /// `prepareFenceProducerEpoch` followed by `endTransaction(ABORT, isFromClient = false)`.
    /// The bumped epoch goes into the PrepareAbort record and the markers, so the old
    /// producer's requests and batches are rejected from now on.
    ///
    /// With `transaction.version` 2 finalized, Kafka runs this abort as a TV2 end: the
    /// fence does not change the epoch itself, the abort bumps it (the same epoch + 1 in
    /// the end), and an exhausted epoch moves to a new producer id from `ids` (without a
    /// source the producer id is kept, as TV1 does).
    fn fence_and_abort(
        &mut self,
        id: &str,
        now: i64,
        ids: Option<&mut (dyn ProducerIdSource + '_)>,
    ) {
        let tv = self.server_transaction_version;
        let Some(t) = self.txns.get_mut(id) else {
            return;
        };
        let mode = if tv >= 2 {
            let next_producer_id = match ids {
                Some(ids) if is_epoch_exhausted(t.producer_epoch) => {
                    ids.next_producer_id().unwrap_or(NO_PRODUCER_ID)
                }
                _ => NO_PRODUCER_ID,
            };
            EndMode {
                tv,
                next_producer_id,
                no_partition_added: false,
            }
        } else {
            // Not past i16::MAX: the epoch is left as is there (Kafka logs it as a bug).
            t.producer_epoch = t.producer_epoch.saturating_add(1);
            t.last_producer_epoch = NO_EPOCH;
            EndMode::TV1
        };
        info!(
            transactional_id = id,
            producer_id = t.producer_id,
            epoch = t.producer_epoch,
            transaction_version = tv,
            "fencing the producer and aborting its transaction"
        );
        self.prepare_end(id, false, now, mode);
    }

    // ------------------------------------------------------------------ requests

    /// InitProducerId (Kafka's `handleInitProducerId`, TV1). `expected` is the producer id
    /// and epoch the client already holds (KIP-360, InitProducerId v3+), `None` otherwise.
    ///
    /// Without a transactional id: a fresh producer id with epoch 0 and nothing stored.
    /// With one: INVALID_TRANSACTION_TIMEOUT unless `0 < timeout_ms <= max`; a new id gets a
    /// new producer id at epoch 0; an existing one in Empty/CompleteCommit/CompleteAbort gets
    /// its epoch bumped (a new producer id once the epoch is exhausted); an Ongoing
    /// transaction is fenced and aborted and the answer is CONCURRENT_TRANSACTIONS (the
    /// client retries once the abort completes); PrepareCommit/PrepareAbort answer
    /// CONCURRENT_TRANSACTIONS. A stale `expected` pair is PRODUCER_FENCED; a retry of the
    /// last bump gets the current pair again.
    pub fn init_producer_id(
        &mut self,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        ids: &mut dyn ProducerIdSource,
        now_ms: i64,
    ) -> Result<(i64, i16), ErrorCode> {
        let Some(id) = transactional_id else {
            return ids.next_producer_id().map(|pid| (pid, 0));
        };
        if id.is_empty() || id.len() > MAX_STRING_LEN {
            return Err(ErrorCode::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        let known = self.txns.get(id).is_some_and(|t| t.state != TxnState::Dead);
        if !known {
            // Kafka creates the metadata with epoch -1 and bumps it to 0 below, in the same
            // request; only the bumped state is written.
            let pid = ids.next_producer_id()?;
            self.remove(id);
            self.txns.insert(
                id.to_string(),
                Txn {
                    producer_id: pid,
                    prev_producer_id: NO_PRODUCER_ID,
                    next_producer_id: NO_PRODUCER_ID,
                    producer_epoch: NO_EPOCH,
                    last_producer_epoch: NO_EPOCH,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    start_ms: -1,
                    last_update_ms: now_ms,
                    client_transaction_version: 0,
                },
            );
            self.by_producer.insert(pid, id.to_string());
        }
        let Some(t) = self.txns.get(id) else {
            return Err(ErrorCode::UnknownServerError);
        };
        if let Some((expected_pid, expected_epoch)) = expected {
            // Kafka's isValidProducerId: a just-created id, the current producer id, or the
            // previous one retrying the call that rotated it (its epoch was exhausted).
            let valid = t.producer_epoch == NO_EPOCH
                || expected_pid == t.producer_id
                || (expected_pid == t.prev_producer_id && is_epoch_exhausted(expected_epoch));
            if !valid {
                return Err(ErrorCode::ProducerFenced);
            }
        }
        match t.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                self.fence_and_abort(id, now_ms, Some(ids));
                Err(ErrorCode::ConcurrentTransactions)
            }
            // Unreachable: a Dead id is treated as unknown above.
            TxnState::Dead => Err(ErrorCode::ConcurrentTransactions),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let epoch = t.producer_epoch;
                if is_epoch_exhausted(epoch) && expected.is_none_or(|(_, e)| e == epoch) {
                    // prepareProducerIdRotation: a new producer id at epoch 0; the old epoch
                    // is remembered only when the client named it (so its retry is known).
                    let new_pid = ids.next_producer_id()?;
                    let last = if expected.is_some() { epoch } else { NO_EPOCH };
                    info!(
                        transactional_id = id,
                        old_producer_id = t.producer_id,
                        new_producer_id = new_pid,
                        "producer epoch exhausted, new producer id"
                    );
                    return self
                        .transit(id, |t| {
                            t.producer_id = new_pid;
                            t.producer_epoch = 0;
                            t.last_producer_epoch = last;
                            reset_to_empty(t, timeout_ms, now_ms);
                        })
                        .ok_or(ErrorCode::UnknownServerError);
                }
                // prepareIncrementProducerEpoch. (Kafka throws there when the epoch is
                // exhausted and the expected epoch is not the current one; the retry and the
                // fenced cases below answer that properly instead.)
                let (new_epoch, last) = match expected {
                    None => (epoch.checked_add(1), NO_EPOCH),
                    Some((_, e)) if epoch == NO_EPOCH || e == epoch => {
                        (epoch.checked_add(1), epoch)
                    }
                    Some((_, e)) if e == t.last_producer_epoch => {
                        // A retry of the bump whose answer was lost: same pair again.
                        (Some(epoch), t.last_producer_epoch)
                    }
                    Some(_) => return Err(ErrorCode::ProducerFenced),
                };
                let Some(new_epoch) = new_epoch else {
                    return Err(ErrorCode::ProducerFenced);
                };
                debug!(transactional_id = id, epoch = new_epoch, "init producer id");
                self.transit(id, |t| {
                    t.producer_epoch = new_epoch;
                    t.last_producer_epoch = last;
                    reset_to_empty(t, timeout_ms, now_ms);
                })
                .ok_or(ErrorCode::UnknownServerError)
            }
        }
    }

    /// AddPartitionsToTxn (Kafka's `handleAddPartitionsToTransaction`; also AddOffsetsToTxn
    /// with the group's `__consumer_offsets` partition). Unknown id or other producer id:
    /// INVALID_PRODUCER_ID_MAPPING; other epoch: PRODUCER_FENCED (the broker answers
    /// INVALID_PRODUCER_EPOCH to request versions before PRODUCER_FENCED existed); commit or
    /// abort in progress: CONCURRENT_TRANSACTIONS. Partitions already in the transaction:
    /// `Ok` without a record.
    pub fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        self.add_partitions_for(
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            0,
            now_ms,
        )
    }

    /// [`TxnCoordinator::add_partitions`] for a client of transaction version
    /// `client_tv`: 2 when the broker adds a partition for a Produce v12+ or TxnOffsetCommit
    /// v5+ (KIP-890 part 2, AddPartitionsToTxn v5 in Kafka), 0 for AddPartitionsToTxn up to
    /// v4 and AddOffsetsToTxn. The transaction records the version, and its EndTxn bumps the
    /// epoch when it is 2. A transaction that completed starts again here (the epoch of the
    /// late producer of the previous one no longer matches, so it cannot).
    pub fn add_partitions_for(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        client_tv: i16,
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let t = self.check_producer(transactional_id, producer_id, producer_epoch)?;
        match t.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ErrorCode::ConcurrentTransactions);
            }
            TxnState::Dead => return Err(ErrorCode::InvalidTxnState),
            TxnState::Ongoing if partitions.iter().all(|p| t.partitions.contains(p)) => {
                return Ok(());
            }
            _ => {}
        }
        if partitions.iter().any(|p| p.topic.len() > MAX_STRING_LEN) {
            return Err(ErrorCode::InvalidRequest);
        }
        // prepareAddPartitions: a transaction starts with its first partition.
        self.transit(transactional_id, |t| {
            if t.state != TxnState::Ongoing {
                t.start_ms = now_ms;
            }
            t.partitions.extend(partitions.iter().cloned());
            t.state = TxnState::Ongoing;
            t.last_update_ms = now_ms;
            t.client_transaction_version = client_tv;
        });
        Ok(())
    }

    /// EndTxn (Kafka's `endTransactionWithTV1`). Ongoing → PrepareCommit/PrepareAbort with
    /// its record and marker job; a retry after completion in the same direction is `Ok`;
    /// the same direction still in progress is CONCURRENT_TRANSACTIONS; the other direction
    /// or no transaction is INVALID_TXN_STATE.
    pub fn end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let t = self.check_producer(transactional_id, producer_id, producer_epoch)?;
        match (t.state, commit) {
            (TxnState::Ongoing, _) => {
                debug!(transactional_id, commit, "end transaction");
                self.prepare_end(transactional_id, commit, now_ms, EndMode::TV1);
                Ok(())
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            (TxnState::PrepareEpochFence, _) => Err(ErrorCode::ConcurrentTransactions),
            (TxnState::CompleteCommit, false)
            | (TxnState::CompleteAbort, true)
            | (TxnState::PrepareCommit, false)
            | (TxnState::PrepareAbort, true)
            | (TxnState::Empty, _)
            | (TxnState::Dead, _) => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// EndTxn v5+ (transactions v2, Kafka's `endTransaction` with a TV2 client): every
    /// commit or abort bumps the epoch, and the answer is the producer id and epoch the
    /// client continues with — the bumped epoch, or a new producer id at epoch 0 once the
    /// epoch is exhausted (`ids`). The Prepare record carries the bumped epoch, the new
    /// producer id as NextProducerId and ClientTransactionVersion 2; the markers carry the
    /// bumped epoch, which fences every batch of the old one.
    ///
    /// Validity (same epoch no longer means "retry"): Ongoing/Empty need the current
    /// epoch; PrepareCommit/PrepareAbort accept only a retry (the epoch before the bump);
    /// CompleteCommit/CompleteAbort accept a retry, a retry after an overflow (the previous
    /// producer id at epoch `i16::MAX - 1` while the current one is at 0), or the current
    /// epoch. Anything else: PRODUCER_FENCED; another producer id:
    /// INVALID_PRODUCER_ID_MAPPING. A retry of a completed end answers NONE with the
    /// current pair; an abort with no transaction open (Empty, or after a completed one)
    /// is accepted and bumps the epoch (the client may not know whether a Produce added
    /// a partition); a commit there, or the other direction of a retry, is
    /// INVALID_TXN_STATE; the same direction still in progress is
    /// CONCURRENT_TRANSACTIONS.
    pub fn end_txn_v2(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        ids: &mut dyn ProducerIdSource,
        now_ms: i64,
    ) -> Result<(i64, i16), ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let t = self
            .txns
            .get(transactional_id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        let retry_on_overflow = t.prev_producer_id == producer_id
            && producer_epoch == i16::MAX - 1
            && t.producer_epoch == 0;
        let retry_on_bump = i32::from(t.producer_epoch) == i32::from(producer_epoch) + 1;
        let valid = match t.state {
            TxnState::Ongoing | TxnState::Empty | TxnState::Dead | TxnState::PrepareEpochFence => {
                producer_epoch == t.producer_epoch
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_bump || retry_on_overflow || producer_epoch == t.producer_epoch
            }
        };
        let is_retry = retry_on_bump || retry_on_overflow;
        if t.producer_id != producer_id && !retry_on_overflow {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if !valid {
            return Err(ErrorCode::ProducerFenced);
        }
        let current = (t.producer_id, t.producer_epoch);
        let exhausted = is_epoch_exhausted(t.producer_epoch);
        let (no_partition_added, commit) = match (t.state, commit) {
            (TxnState::Ongoing, _) => (false, commit),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if is_retry => {
                return Ok(current);
            }
            (TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::Empty, false) => {
                if is_retry {
                    return Err(ErrorCode::InvalidTxnState);
                }
                (true, false)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                return Err(ErrorCode::ConcurrentTransactions);
            }
            (TxnState::Dead | TxnState::PrepareEpochFence, _) => {
                return Err(ErrorCode::ConcurrentTransactions);
            }
            _ => return Err(ErrorCode::InvalidTxnState),
        };
        let next_producer_id = if exhausted {
            let pid = ids.next_producer_id()?;
            info!(
                transactional_id,
                old_producer_id = producer_id,
                new_producer_id = pid,
                "producer epoch exhausted, the next transaction uses a new producer id"
            );
            pid
        } else {
            NO_PRODUCER_ID
        };
        debug!(transactional_id, commit, "end transaction (v2)");
        self.prepare_end(
            transactional_id,
            commit,
            now_ms,
            EndMode {
                tv: 2,
                next_producer_id,
                no_partition_added,
            },
        );
        // The pair of the Complete state (Kafka answers with `prepareComplete`'s pair,
        // whether or not the markers are written yet).
        let t = self
            .txns
            .get(transactional_id)
            .ok_or(ErrorCode::UnknownServerError)?;
        Ok(if t.next_producer_id != NO_PRODUCER_ID {
            (t.next_producer_id, 0)
        } else {
            (t.producer_id, t.producer_epoch)
        })
    }

    /// The checks every client request makes first: the id exists, belongs to
    /// `producer_id`, and `producer_epoch` is current.
    fn check_producer(&self, id: &str, producer_id: i64, epoch: i16) -> Result<&Txn, ErrorCode> {
        let t = self
            .txns
            .get(id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        if t.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if t.producer_epoch != epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        Ok(t)
    }

    /// Every marker of `job` is written: PrepareCommit/PrepareAbort → CompleteCommit/
    /// CompleteAbort with its record. A job the transaction has moved past (another
    /// producer id or epoch, another coordinator epoch, already completed) is ignored.
    pub fn markers_written(&mut self, job: &MarkerJob, now_ms: i64) {
        let Some(t) = self.txns.get(&job.transactional_id) else {
            return;
        };
        let expected = if job.commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if t.producer_id != job.producer_id
            || t.producer_epoch != job.producer_epoch
            || t.state != expected
            || job.coordinator_epoch != self.config.coordinator_epoch
        {
            debug!(
                transactional_id = job.transactional_id,
                "stale marker job ignored"
            );
            return;
        }
        self.complete(&job.transactional_id, now_ms);
    }

    // ------------------------------------------------------------------ produce verification

    /// Produce-time verification of transactional batches (KIP-890 part 1), for the
    /// transaction that `producer_id` currently belongs to. One code per partition:
    /// NONE when the transaction is open with that partition at `producer_epoch`;
    /// INVALID_PRODUCER_ID_MAPPING for a producer id no transactional id has;
    /// INVALID_PRODUCER_EPOCH for another epoch; CONCURRENT_TRANSACTIONS while a commit or
    /// abort is in progress; INVALID_TXN_STATE for a partition not added.
    ///
    /// These are the codes Kafka's `AddPartitionsToTxnManager` hands to the produce path
    /// (it turns the coordinator's PRODUCER_FENCED into INVALID_PRODUCER_EPOCH and
    /// TRANSACTION_ABORTABLE into INVALID_TXN_STATE for clients of transaction version 1);
    /// see [`produce_error_for_verification`] for the last step.
    pub fn verify_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<ErrorCode> {
        match self.by_producer.get(&producer_id) {
            Some(id) => self.verify_partitions_for(id, producer_id, producer_epoch, partitions),
            None => vec![ErrorCode::InvalidProducerIdMapping; partitions.len()],
        }
    }

    /// [`TxnCoordinator::verify_partitions`] for the transactional id a produce request
    /// names (Kafka verifies against that id).
    pub fn verify_partitions_for(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<ErrorCode> {
        let all = |e| vec![e; partitions.len()];
        let t = match self.check_producer(transactional_id, producer_id, producer_epoch) {
            Ok(t) => t,
            Err(ErrorCode::ProducerFenced) => return all(ErrorCode::InvalidProducerEpoch),
            Err(e) => return all(e),
        };
        if matches!(t.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return all(ErrorCode::ConcurrentTransactions);
        }
        partitions
            .iter()
            .map(|p| {
                if t.partitions.contains(p) {
                    ErrorCode::None
                } else {
                    ErrorCode::InvalidTxnState
                }
            })
            .collect()
    }

    /// The transactional id whose current producer id is `producer_id`.
    pub fn transactional_id_of(&self, producer_id: i64) -> Option<&str> {
        self.by_producer.get(&producer_id).map(String::as_str)
    }

    /// The `__transaction_state` partition (of `partitions`) owning the transactional id of
    /// `producer_id`.
    pub fn partition_of_producer(&self, producer_id: i64, partitions: i32) -> Option<i32> {
        self.transactional_id_of(producer_id)
            .map(|id| transaction_partition_for(id, partitions))
    }

    // ------------------------------------------------------------------ admin

    /// The state of `transactional_id`, if known.
    pub fn state(&self, transactional_id: &str) -> Option<TxnState> {
        self.txns.get(transactional_id).map(|t| t.state)
    }

    /// Number of transactional ids known.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// DescribeTransactions of one id (`handleDescribeTransactions`); `None` (the broker
    /// answers TRANSACTIONAL_ID_NOT_FOUND) when unknown.
    pub fn describe(&self, transactional_id: &str) -> Option<DescribedTxn> {
        let t = self.txns.get(transactional_id)?;
        if t.state == TxnState::Dead {
            return None;
        }
        Some(DescribedTxn {
            transactional_id: transactional_id.to_string(),
            state: t.state.name(),
            timeout_ms: t.timeout_ms,
            start_ms: t.start_ms,
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            partitions: t.partitions.iter().cloned().collect(),
        })
    }

    /// ListTransactions (`TransactionStateManager.listTransactionStates`): empty filters
    /// match everything; state names that are not states match nothing (the broker reports
    /// them as unknown filters, see [`TxnState::from_name`]); with `min_duration_ms >= 0`
    /// only transactions running longer than that are listed (v1, KIP-994; an id with no
    /// transaction has start -1 and so counts as running for a very long time, as in
    /// Kafka). Sorted by transactional id.
    pub fn list(
        &self,
        states: &[String],
        producer_ids: &[i64],
        min_duration_ms: i64,
        now_ms: i64,
    ) -> Vec<ListedTxn> {
        let wanted: Vec<TxnState> = states
            .iter()
            .filter_map(|s| TxnState::from_name(s))
            .collect();
        self.txns
            .iter()
            .filter(|(_, t)| {
                t.state != TxnState::Dead
                    && (producer_ids.is_empty() || producer_ids.contains(&t.producer_id))
                    && (states.is_empty() || wanted.contains(&t.state))
                    && (min_duration_ms < 0 || now_ms.saturating_sub(t.start_ms) > min_duration_ms)
            })
            .map(|(id, t)| ListedTxn {
                transactional_id: id.clone(),
                producer_id: t.producer_id,
                state: t.state.name(),
            })
            .collect()
    }

    // ------------------------------------------------------------------ timers

    /// The earliest time at which [`TxnCoordinator::tick`] has something to do
    /// (`i64::MAX` while no transactional id is known).
    pub fn next_deadline(&self) -> i64 {
        if self.txns.is_empty() {
            return i64::MAX;
        }
        self.next_abort_check_ms.min(self.next_expire_check_ms)
    }

    /// Runs the periodic checks that are due: every
    /// `abort_timed_out_interval_ms`, [`TxnCoordinator::abort_timed_out`]; every
    /// `remove_expired_interval_ms`, [`TxnCoordinator::expire_transactional_ids`].
    pub fn tick(&mut self, now_ms: i64) {
        self.tick_with(now_ms, None);
    }

    /// [`TxnCoordinator::tick`] with a producer id source, for transaction version 2
    /// aborts of transactions whose epoch is exhausted.
    pub fn tick_with(&mut self, now_ms: i64, ids: Option<&mut (dyn ProducerIdSource + '_)>) {
        if now_ms >= self.next_abort_check_ms {
            self.next_abort_check_ms =
                now_ms.saturating_add(self.config.abort_timed_out_interval_ms);
            self.abort_timed_out_with(now_ms, ids);
        }
        if now_ms >= self.next_expire_check_ms {
            self.next_expire_check_ms =
                now_ms.saturating_add(self.config.remove_expired_interval_ms);
            self.expire_transactional_ids(now_ms);
        }
    }

    /// Aborts every Ongoing transaction open longer than its timeout
    /// (`start + timeout < now`, `TransactionStateManager.timedOutTransactions`), bumping the
    /// epoch so that the producer that left it open is fenced.
    pub fn abort_timed_out(&mut self, now_ms: i64) {
        self.abort_timed_out_with(now_ms, None);
    }

    fn abort_timed_out_with(
        &mut self,
        now_ms: i64,
        mut ids: Option<&mut (dyn ProducerIdSource + '_)>,
    ) {
        let due: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, t)| {
                t.state == TxnState::Ongoing
                    && t.start_ms.saturating_add(i64::from(t.timeout_ms)) < now_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            info!(transactional_id = id, "transaction timed out");
            self.fence_and_abort(&id, now_ms, ids.as_deref_mut());
        }
    }

    /// Forgets transactional ids without a transaction in progress whose last update is at
    /// least `transactional.id.expiration.ms` old (Kafka's `removeExpiredTransactionalIds`),
    /// writing a tombstone for each.
    pub fn expire_transactional_ids(&mut self, now_ms: i64) {
        let horizon = now_ms.saturating_sub(self.config.id_expiration_ms);
        let due: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, t)| {
                t.state == TxnState::Dead
                    || (t.state.expiration_allowed() && t.last_update_ms <= horizon)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            info!(transactional_id = id, "transactional id expired");
            self.remove(&id);
            self.effects.records.push(TxnRecord {
                transactional_id: id,
                value: None,
            });
        }
    }

    /// Forgets the transactional ids `unloaded` selects: this node no longer coordinates
    /// their `__transaction_state` partition (Kafka's
    /// `TransactionStateManager.removeTransactionsForTxnTopicPartition`); the new leader
    /// replays them, and finishes a commit or abort in progress. Returns how many.
    pub fn unload_where(&mut self, unloaded: impl Fn(&str) -> bool) -> usize {
        let ids: Vec<String> = self
            .txns
            .keys()
            .filter(|id| unloaded(id))
            .cloned()
            .collect();
        for id in &ids {
            self.remove(id);
        }
        ids.len()
    }

    fn remove(&mut self, id: &str) {
        let Some(t) = self.txns.remove(id) else {
            return;
        };
        if self
            .by_producer
            .get(&t.producer_id)
            .is_some_and(|x| x == id)
        {
            self.by_producer.remove(&t.producer_id);
        }
    }

    // ------------------------------------------------------------------ loading

    /// Applies one record read back from `__transaction_state`, in log order: the last
    /// record of an id wins, a tombstone removes it. (A `Dead` value, which Kafka never
    /// writes, is treated as a tombstone.)
    pub fn replay(&mut self, record: TxnRecord) {
        let id = record.transactional_id;
        self.remove(&id);
        if let Some(v) = record.value.filter(|v| v.state != TxnState::Dead) {
            let t = Txn::from_value(v);
            self.by_producer.insert(t.producer_id, id.clone());
            self.txns.insert(id, t);
        }
    }

    /// After replay: the markers of every commit or abort that was in progress are written
    /// again (Kafka's loader hands them to the marker channel manager). A `PrepareEpochFence`
    /// state (never written by Kafka) continues as the abort it was about to become.
    pub fn finish_loading(&mut self, now_ms: i64) {
        self.finish_loading_where(now_ms, |_| true);
    }

    /// [`TxnCoordinator::finish_loading`] for the transactional ids `loaded` selects (one
    /// `__transaction_state` partition's, whose replay just ended).
    pub fn finish_loading_where(&mut self, now_ms: i64, loaded: impl Fn(&str) -> bool) {
        let ids: Vec<(String, TxnState)> = self
            .txns
            .iter()
            .filter(|(id, _)| loaded(id))
            .filter(|(_, t)| {
                matches!(
                    t.state,
                    TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
                )
            })
            .map(|(id, t)| (id.clone(), t.state))
            .collect();
        for (id, state) in ids {
            match state {
                TxnState::PrepareEpochFence => {
                    if let Some(t) = self.txns.get_mut(&id) {
                        t.state = TxnState::Ongoing;
                    }
                    self.prepare_end(&id, false, now_ms, EndMode::TV1);
                }
                _ => {
                    let Some(t) = self.txns.get(&id) else {
                        continue;
                    };
                    if t.partitions.is_empty() {
                        self.complete(&id, now_ms);
                        continue;
                    }
                    self.effects.markers.push(MarkerJob {
                        transactional_id: id.clone(),
                        producer_id: t.producer_id,
                        producer_epoch: t.producer_epoch,
                        coordinator_epoch: self.config.coordinator_epoch,
                        commit: state == TxnState::PrepareCommit,
                        partitions: t.partitions.iter().cloned().collect(),
                    });
                }
            }
        }
        info!(
            transactional_ids = self.txns.len(),
            markers = self.effects.markers.len(),
            "transaction coordinator loaded"
        );
    }
}

/// The common part of Kafka's `prepareIncrementProducerEpoch` and
/// `prepareProducerIdRotation`: a fresh Empty state with the requested timeout.
fn reset_to_empty(t: &mut Txn, timeout_ms: i32, now: i64) {
    t.state = TxnState::Empty;
    t.timeout_ms = timeout_ms;
    t.partitions.clear();
    t.start_ms = -1;
    t.last_update_ms = now;
}

/// The last step of Kafka's produce-time verification (`ReplicaManager`): verification
/// errors an old producer would not retry become NOT_ENOUGH_REPLICAS, which it does retry
/// without refreshing metadata.
pub fn produce_error_for_verification(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::ConcurrentTransactions
        | ErrorCode::NetworkException
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::NotCoordinator => ErrorCode::NotEnoughReplicas,
        other => other,
    }
}
