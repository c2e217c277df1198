//! Drives the pure transaction coordinator (`arus-txn`) inside the broker: one mutex around
//! it (never held across `.await`), persistence in `__transaction_state`, the COMMIT/ABORT
//! markers it asks for, a timer for transaction timeouts and id expiration, and a loader.
//!
//! Persistence follows the group coordinator's rule: an operation's records are appended to
//! the transactional id's partition of `__transaction_state` while the coordinator lock is
//! held (log order = state order) and the answer leaves only after that append is fsynced.
//!
//! Markers (Kafka's TransactionMarkerChannelManager): once a PrepareCommit /
//! PrepareAbort record is durable, a task appends a control batch to every partition of the
//! transaction (through the group driver for `__consumer_offsets`, so that pending
//! transactional offsets complete in log order), waits for their fsync, and only then tells
//! the coordinator, which writes CompleteCommit / CompleteAbort. A crash in between is
//! repaired at start-up: the loader finds the transaction still in a Prepare state and
//! writes its markers again (a repeated marker is harmless to the partitions).
//!
//! Across brokers, partitions led by another node get their markers as WriteTxnMarkers
//! through the marker channel ([`crate::inter_broker::markers`]), which answers once that
//! leader has fsynced them; the transaction completes only when every partition answered.
//! The coordinator epoch in the markers is the leader epoch of the id's
//! `__transaction_state` partition here ([`TxnDriver::coordinator_epoch`]), so that a
//! partition refuses the markers of a deposed coordinator (TRANSACTION_COORDINATOR_FENCED).
//!
//! In a cluster (the registry driven by the metadata log) a transactional id is served only
//! where its `__transaction_state` partition's leader is ([`crate::coordinator_shards`]):
//! [`TxnDriver::on_become_leader`] replays one partition (and resends the markers of the
//! commits and aborts it finds in progress), [`TxnDriver::on_resign`] forgets its ids;
//! others answer NOT_COORDINATOR ([`TxnDriver::coordinator_error`]).
//!
//! Unlike Kafka (where EndTxn answers once the Prepare record is replicated), EndTxn here
//! answers once the markers are durable: the marker round trip is local and short, and a
//! producer that starts its next transaction at once then finds the previous one complete
//! instead of retrying on CONCURRENT_TRANSACTIONS with a client-side backoff.

pub mod controller_producer_ids;
pub mod producer_ids;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arus_protocol::ErrorCode;
use arus_txn::records::{decode_record, encode_record_at, transaction_partition_for};
use arus_txn::{
    MarkerJob, TopicPartition, TxnConfig, TxnCoordinator, produce_error_for_verification,
};
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tracing::{info, warn};

use crate::broker::{Broker, now_ms};
use crate::broker_config::BrokerConfig;
use crate::coordinator_log::{Appended, CoordinatorBatches};
use crate::coordinator_shards::CoordinatorShards;
use crate::groups::{OFFSETS_TOPIC, PersistError};
use crate::inter_broker::markers::{self, Destination, MarkerOutcome, MarkerSender};
use crate::inter_broker::txn_verification::{self, Operation, VerificationSender};
use crate::partition::Partition;
use crate::topics::{NewTopic, Topic, TopicError};
use producer_ids::{ProducerIdBlocks, ProducerIdError};

/// Kafka's internal topic for transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// How long an answer waits for its records to reach stable storage (Kafka bounds the
/// append by `transaction.state.log...` request timeouts; 5 s like the group coordinator).
const PERSIST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts to write a marker that failed on a storage error.
const MARKER_RETRY: Duration = Duration::from_secs(1);
/// Pause before resending markers whose leader moved or was unknown (Kafka's
/// `retry.backoff.ms` default for the marker channel).
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How long the timer pauses after a failed write reloaded the state (see
/// [`TxnDriver::reload_from_log`]).
const RELOAD_TIMER_PAUSE_MS: i64 = 1000;
/// A marker that keeps failing is logged on its first attempt and every this many after.
const MARKER_WARN_EVERY: u32 = 60;
/// Locks that keep one producer's transactional Produce v12+ requests in arrival order
/// (sharded by producer id, so the number is bounded).
pub const PRODUCE_ORDER_SHARDS: usize = 64;

pub fn txn_config(c: &BrokerConfig) -> TxnConfig {
    TxnConfig {
        max_timeout_ms: c.transaction_max_timeout_ms,
        id_expiration_ms: c.transactional_id_expiration_ms,
        abort_timed_out_interval_ms: c.transaction_abort_timed_out_interval_ms,
        remove_expired_interval_ms: c.transaction_remove_expired_interval_ms,
        // The pure coordinator's epoch only tells its own marker jobs apart; the epoch the
        // markers carry is the `__transaction_state` partition's leader epoch, set per job
        // when it is written (`TxnDriver::coordinator_epoch`).
        coordinator_epoch: 0,
    }
}

struct State {
    coord: TxnCoordinator,
    /// The file-backed blocks of a single node, or the controller's in a cluster.
    ids: Box<dyn arus_txn::ProducerIdSource + Send>,
    /// Next sweep of idle producer ids over every partition (`producer.id.expiration.*`).
    next_producer_expiry_ms: i64,
    /// The timer does not run before this (ms): set by [`TxnDriver::reload_from_log`], whose
    /// state's first tick would retry the write that just failed (aborting a timed-out
    /// transaction, a fenced epoch) — on a full disk a busy loop.
    timer_quiet_until_ms: i64,
}

/// What to do once the coordinator lock is released.
#[must_use]
pub(crate) struct TxnAfter {
    flush: Vec<(Arc<Partition>, i64)>,
    markers: Vec<MarkerJob>,
    persist_error: Option<String>,
}

pub struct TxnDriver {
    state: Mutex<State>,
    wake: Notify,
    loaded: AtomicBool,
    timer_started: AtomicBool,
    stopped: AtomicBool,
    /// For the dynamic `producer.id.expiration.ms` and
    /// `transaction.partition.verification.enable`, read where they are used.
    config: Arc<BrokerConfig>,
    producer_id_expiration_check_ms: i64,
    /// See [`TxnDriver::produce_order`].
    produce_order: [tokio::sync::Mutex<()>; PRODUCE_ORDER_SHARDS],
    /// The `__transaction_state` partitions served here. Lock order: `state`, then this.
    shards: Mutex<CoordinatorShards>,
    /// WriteTxnMarkers to the other brokers, made on first use in a cluster.
    marker_sender: std::sync::OnceLock<Arc<MarkerSender>>,
    /// AddPartitionsToTxn to remote coordinators, made on first use in a cluster.
    verification_sender: std::sync::OnceLock<Arc<VerificationSender>>,
}

/// Where a transactional id's coordinator is, for a partition leader that must verify a
/// transactional produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorAt {
    /// This node (serving it, or answering why not: loading).
    Here,
    /// Broker `node` leads the id's `__transaction_state` partition.
    Node(i32),
    /// No leader known (or no `__transaction_state` yet): COORDINATOR_NOT_AVAILABLE.
    Unknown,
}

impl TxnDriver {
    /// Held by a transactional Produce v12+ from before its implicit add until its batches
    /// are appended. A connection's requests run concurrently here (Kafka handles them one
    /// at a time): without it, a producer's second request, whose partitions are already in
    /// the transaction, would append before the first one, still waiting for its add to be
    /// durable, and the first would then be out of sequence. Tokio's mutex is fair, so
    /// requests take it in the order they arrived.
    pub async fn produce_order(&self, producer_id: i64) -> tokio::sync::MutexGuard<'_, ()> {
        let shard = producer_id.rem_euclid(PRODUCE_ORDER_SHARDS as i64) as usize;
        self.produce_order[shard].lock().await
    }

    /// Replaces where producer ids come from (a clustered broker takes them from the
    /// controller, see [`controller_producer_ids`]).
    pub fn use_producer_ids(&self, ids: Box<dyn arus_txn::ProducerIdSource + Send>) {
        self.state.lock().ids = ids;
    }

    pub fn open(config: &Arc<BrokerConfig>) -> Result<TxnDriver, ProducerIdError> {
        Ok(TxnDriver {
            state: Mutex::new(State {
                coord: TxnCoordinator::new(txn_config(config)),
                ids: Box::new(ProducerIdBlocks::open(&config.log_dir)?),
                next_producer_expiry_ms: now_ms() + config.producer_id_expiration_check_interval_ms,
                timer_quiet_until_ms: 0,
            }),
            wake: Notify::new(),
            loaded: AtomicBool::new(false),
            timer_started: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            config: config.clone(),
            producer_id_expiration_check_ms: config.producer_id_expiration_check_interval_ms,
            produce_order: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
            shards: Mutex::new(CoordinatorShards::all()),
            marker_sender: std::sync::OnceLock::new(),
            verification_sender: std::sync::OnceLock::new(),
        })
    }

    /// Why this node does not serve `transactional_id` now, as Kafka's transaction
    /// coordinator answers: COORDINATOR_LOAD_IN_PROGRESS while its partition loads,
    /// NOT_COORDINATOR if another node leads it. `None`: serve it.
    pub fn coordinator_error(&self, broker: &Broker, transactional_id: &str) -> Option<ErrorCode> {
        // The cluster view says who leads the key's partition; the shards say whether
        // this node has loaded it.
        if !crate::cluster::coordinators::coordinates(
            broker,
            crate::cluster::coordinators::Coordinator::Transaction,
            transactional_id,
        ) {
            return Some(ErrorCode::NotCoordinator);
        }
        if !self.is_loaded() {
            return Some(ErrorCode::CoordinatorLoadInProgress);
        }
        let shards = self.shards.lock();
        if shards.is_all() {
            return None;
        }
        let Some(count) = state_partition_count(broker) else {
            return Some(ErrorCode::NotCoordinator);
        };
        shards
            .status(transaction_partition_for(transactional_id, count))
            .err()
    }

    /// Which node coordinates `transactional_id`: Kafka's `AddPartitionsToTxnManager` asks
    /// the leader of the id's `__transaction_state` partition on the inter-broker listener.
    pub fn coordinator_at(&self, broker: &Broker, transactional_id: &str) -> CoordinatorAt {
        let view = broker.cluster.current();
        if view.leads_every_partition() {
            return CoordinatorAt::Here;
        }
        let Some(topic) = broker.topics.get(TRANSACTION_STATE_TOPIC) else {
            return CoordinatorAt::Unknown;
        };
        let n = topic.partition_count().max(1);
        let partition = transaction_partition_for(transactional_id, n);
        match view.partition(topic.id, partition).and_then(|p| p.leader) {
            Some(leader) if leader == view.this_node() => CoordinatorAt::Here,
            Some(leader) => CoordinatorAt::Node(leader),
            None => CoordinatorAt::Unknown,
        }
    }

    /// The coordinator epoch of `transactional_id` here: the leader epoch at which this node
    /// leads its `__transaction_state` partition (Kafka's `TransactionStateManager`
    /// `coordinatorEpoch`), 0 on the single node; `None` if it is not led here.
    pub fn coordinator_epoch(&self, broker: &Broker, transactional_id: &str) -> Option<i32> {
        let shards = self.shards.lock();
        if shards.is_all() {
            return Some(0);
        }
        let count = state_partition_count(broker)?;
        shards.epoch(transaction_partition_for(transactional_id, count))
    }

    /// The verification requests to remote coordinators (`None` on the single node).
    fn verification_sender(&self, broker: &Broker) -> Option<Arc<VerificationSender>> {
        let channel = broker.broker_channel()?.clone();
        Some(
            self.verification_sender
                .get_or_init(|| {
                    Arc::new(VerificationSender::new(
                        channel,
                        broker.inter_broker_timeout(),
                    ))
                })
                .clone(),
        )
    }

    /// The marker channel to the other brokers (`None` on the single node).
    fn marker_sender(&self, broker: &Broker) -> Option<Arc<MarkerSender>> {
        let channel = broker.broker_channel()?.clone();
        Some(
            self.marker_sender
                .get_or_init(|| Arc::new(MarkerSender::new(channel, broker.inter_broker_timeout())))
                .clone(),
        )
    }

    /// Why ListTransactions cannot list now: a partition led here is still loading
    /// (Kafka's `TransactionStateManager.listTransactionStates`).
    pub fn list_error(&self) -> Option<ErrorCode> {
        (!self.is_loaded() || self.shards.lock().any_loading())
            .then_some(ErrorCode::CoordinatorLoadInProgress)
    }

    /// This node now leads `__transaction_state`-`partition` at `epoch`: its transactions are
    /// replayed on a thread of their own (COORDINATOR_LOAD_IN_PROGRESS meanwhile), then
    /// served; commits and aborts found in progress get their markers again. Nothing happens
    /// on a single node or if the partition is already led at this epoch.
    pub fn on_become_leader(self: &Arc<Self>, broker: &Arc<Broker>, partition: i32, epoch: i32) {
        let Some(load) = self.shards.lock().begin_load(partition, epoch) else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            self.ensure_timer(broker);
        }
        let (me, for_thread) = (self.clone(), broker.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("arus-txn-load-{partition}"))
            .spawn(move || me.load_partition(&for_thread, partition, epoch, load));
        if let Err(e) = spawned {
            warn!(error = %e, partition, "cannot start a transaction loader thread; loading inline");
            self.load_partition(broker, partition, epoch, load);
        }
    }

    /// This node no longer leads `__transaction_state`-`partition`: its transactional ids
    /// are forgotten (the new leader replays them and finishes what was in progress).
    pub fn on_resign(&self, broker: &Broker, partition: i32) {
        // Under the state lock: a load of this partition either finished before (and is
        // unloaded here) or starts after and finds it resigned.
        let mut st = self.state.lock();
        if !self.shards.lock().resign(partition) {
            return;
        }
        let count = state_partition_count(broker);
        let ids = st
            .coord
            .unload_where(|id| count.is_none_or(|n| transaction_partition_for(id, n) == partition));
        drop(st);
        self.wake.notify_one();
        info!(
            partition,
            ids, "unloaded the transactions of a __transaction_state partition no longer led here"
        );
    }

    fn load_partition(&self, broker: &Broker, partition: i32, epoch: i32, load: u64) {
        let started = std::time::Instant::now();
        let mut st = self.state.lock();
        if !self.shards.lock().is_loading(partition, load) {
            return;
        }
        let topic = broker.topics.get(TRANSACTION_STATE_TOPIC);
        let count = topic.as_ref().map_or(1, |t| t.partition_count().max(1));
        let mine = |id: &str| transaction_partition_for(id, count) == partition;
        let Some(p) = topic.as_ref().and_then(|t| t.partition(partition)) else {
            // Serving its ids from nothing would forget their transactions: not coordinated.
            warn!(
                partition,
                "cannot load a led __transaction_state partition: no local replica"
            );
            self.shards.lock().resign(partition);
            return;
        };
        st.coord.unload_where(mine);
        let records = replay_partition(&p, &mut st.coord);
        // Transactions left in a Prepare state get their markers again: the timer picks
        // these effects up on its next pass.
        st.coord.finish_loading_where(now_ms(), mine);
        self.shards.lock().finish_load(partition, load);
        drop(st);
        self.wake.notify_one();
        info!(
            partition,
            epoch,
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded the transactions of a __transaction_state partition"
        );
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Resolves once start-up loading has finished (tests).
    pub async fn wait_loaded(&self) {
        while !self.is_loaded() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Replays `__transaction_state` (if it exists) on a thread of its own; until it is done
    /// transactional APIs answer COORDINATOR_LOAD_IN_PROGRESS.
    pub(crate) fn start_loading(self: &Arc<Self>, broker: &Arc<Broker>) {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.ensure_timer(broker);
        }
        if broker.topics.is_driven() {
            // A cluster member: nothing is led before the metadata says so.
            *self.shards.lock() = CoordinatorShards::led();
        }
        let topic = broker.topics.get(TRANSACTION_STATE_TOPIC);
        let Some(topic) = topic.filter(|_| self.shards.lock().is_all()) else {
            self.state.lock().coord.finish_loading(now_ms());
            self.loaded.store(true, Ordering::Release);
            return;
        };
        let me = self.clone();
        let load = move || {
            let started = std::time::Instant::now();
            let mut st = me.state.lock();
            let mut n = 0usize;
            for p in topic.partitions() {
                n += replay_partition(&p, &mut st.coord);
            }
            // Transactions left in a Prepare state get their markers again: the timer
            // picks these effects up on its first pass.
            st.coord.finish_loading(now_ms());
            drop(st);
            me.loaded.store(true, Ordering::Release);
            me.wake.notify_one();
            info!(
                records = n,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "loaded __transaction_state"
            );
        };
        if let Err(e) = std::thread::Builder::new()
            .name("arus-txn-load".into())
            .spawn(load)
        {
            warn!(error = %e, "cannot start the transaction loader thread");
            // The closure was consumed by the failed spawn; load inline instead.
            let topic = broker.topics.get(TRANSACTION_STATE_TOPIC);
            let mut st = self.state.lock();
            for p in topic.iter().flat_map(|t| t.partitions()) {
                replay_partition(&p, &mut st.coord);
            }
            st.coord.finish_loading(now_ms());
            self.loaded.store(true, Ordering::Release);
        }
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn ensure_timer(self: &Arc<Self>, broker: &Arc<Broker>) {
        if self.timer_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let weak = Arc::downgrade(broker);
        tokio::spawn(async move { me.timer_loop(weak).await });
    }

    async fn timer_loop(self: Arc<Self>, broker: Weak<Broker>) {
        loop {
            if self.stopped.load(Ordering::Acquire) {
                return;
            }
            if !self.is_loaded() {
                self.wake.notified().await;
                continue;
            }
            let deadline = {
                let st = self.state.lock();
                // Effects a partition's load left (markers to resend) are due at once.
                let due = if st.coord.has_effects() {
                    0
                } else {
                    st.coord.next_deadline()
                };
                due.min(st.next_producer_expiry_ms)
                    .max(st.timer_quiet_until_ms)
            };
            let now = now_ms();
            // Effects left by loading (markers to resend) are applied on the first pass: the
            // coordinator's first check is due at once. A wake-up only means the deadline
            // may have moved (every locked operation sends one, the timer's own included).
            if deadline > now {
                let wait = Duration::from_millis((deadline - now).min(60_000) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => continue,
                }
            }
            if self.stopped.load(Ordering::Acquire) {
                return;
            }
            let Some(broker) = broker.upgrade() else {
                return;
            };
            let expire_producers = {
                let mut st = self.state.lock();
                let now = now_ms();
                if now >= st.next_producer_expiry_ms {
                    st.next_producer_expiry_ms = now + self.producer_id_expiration_check_ms;
                    true
                } else {
                    false
                }
            };
            if expire_producers {
                let now = now_ms();
                let expiration = self.config.effective_i64(
                    "producer.id.expiration.ms",
                    self.config.producer_id_expiration_ms,
                );
                for p in broker.topics.all().iter().flat_map(|t| t.partitions()) {
                    p.remove_expired_producers(now, expiration);
                }
            }
            let ((), after) = self.locked(&broker, |c, ids, now| c.tick_with(now, Some(ids)));
            if let Err(e) = self.finish(&broker, after).await {
                warn!(error = %e, "transaction coordinator timer could not persist its records");
            }
        }
    }

    /// Runs `f` on the coordinator under the lock and appends the records it produced.
    pub(crate) fn locked<R>(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        f: impl FnOnce(&mut TxnCoordinator, &mut dyn arus_txn::ProducerIdSource, i64) -> R,
    ) -> (R, TxnAfter) {
        self.ensure_timer(broker);
        let now = now_ms();
        let mut st = self.state.lock();
        let st = &mut *st;
        let r = f(&mut st.coord, st.ids.as_mut(), now);
        let after = self.apply_effects(broker, st, now);
        self.wake.notify_one();
        (r, after)
    }

    /// Read-only access (describe, list, verification).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&TxnCoordinator) -> R) -> R {
        f(&self.state.lock().coord)
    }

    /// Waits until the appended records are fsynced, then starts writing the markers the
    /// operation asked for.
    pub(crate) async fn finish(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        after: TxnAfter,
    ) -> Result<(), PersistError> {
        self.finish_with_markers(broker, after).await.map(|_| ())
    }

    /// Like [`TxnDriver::finish`], also returning one receiver per marker job that fires
    /// once that job's markers are durable in every partition.
    pub(crate) async fn finish_with_markers(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        after: TxnAfter,
    ) -> Result<Vec<oneshot::Receiver<()>>, PersistError> {
        let result = persist(broker, &after).await;
        if let Err(e) = result {
            if !after.markers.is_empty() {
                // The Prepare record may not be durable: do not write markers for it. If
                // the append failed, the state was reloaded from the log (the transaction
                // is back to what is durable, and a retried EndTxn works); after a timeout
                // the record is in the log and the next start resends its markers.
                warn!(
                    jobs = after.markers.len(),
                    "transaction markers not written: their Prepare record is not durable"
                );
            }
            return Err(e);
        }
        let mut done = Vec::with_capacity(after.markers.len());
        for job in after.markers {
            let (tx, rx) = oneshot::channel();
            done.push(rx);
            tokio::spawn(marker_task(self.clone(), broker.clone(), job, tx));
        }
        Ok(done)
    }

    /// The finalized `transaction.version` changed (or was read at start).
    /// The `transaction.version` the coordinator serves.
    pub fn transaction_version(&self) -> i16 {
        self.state.lock().coord.server_transaction_version()
    }

    pub fn set_transaction_version(&self, level: i16) {
        self.state
            .lock()
            .coord
            .set_server_transaction_version(level);
    }

    /// KIP-890 part 2: a Produce v12+ or TxnOffsetCommit v5+ adds its partitions to the
    /// producer's transaction itself (Kafka's `AddPartitionsToTxnManager` with the
    /// add-partition operation, an AddPartitionsToTxn v5 to the coordinator), starting a
    /// transaction if none is open. `transactional_id` is the request's; without one, the
    /// id the producer id belongs to. One code per partition, as the produce path hands it
    /// on: NONE once the partitions are in the transaction and durable; PRODUCER_FENCED
    /// becomes INVALID_PRODUCER_EPOCH (a late batch from an epoch a commit or abort has
    /// bumped cannot open a new transaction); transient coordinator states become
    /// NOT_ENOUGH_REPLICAS except CONCURRENT_TRANSACTIONS, which a transactions v2 client
    /// retries itself (Kafka's ReplicaManager).
    pub async fn add_for_produce(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        transactional_id: Option<&str>,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> ErrorCode {
        let code = if !self.is_loaded() {
            ErrorCode::CoordinatorLoadInProgress
        } else {
            let id = match transactional_id.filter(|id| !id.is_empty()) {
                Some(id) => Some(id.to_string()),
                None => self.read(|c| c.transactional_id_of(producer_id).map(str::to_string)),
            };
            match id {
                None => ErrorCode::InvalidProducerIdMapping,
                // Another node coordinates the id: it adds the partitions (an
                // AddPartitionsToTxn v5 from this broker, Kafka's AddPartitionsToTxnManager).
                Some(id) if let CoordinatorAt::Node(node) = self.coordinator_at(broker, &id) => {
                    txn_verification::ask_coordinator(
                        broker,
                        self.verification_sender(broker),
                        node,
                        &id,
                        producer_id,
                        producer_epoch,
                        partitions,
                        Operation::Add,
                        false,
                    )
                    .await
                    .into_iter()
                    .map(|(_, code)| code)
                    .find(|&code| code != ErrorCode::None)
                    .unwrap_or(ErrorCode::None)
                }
                Some(id) if self.coordinator_at(broker, &id) == CoordinatorAt::Unknown => {
                    ErrorCode::CoordinatorNotAvailable
                }
                Some(id) if let Some(code) = self.coordinator_error(broker, &id) => code,
                Some(id) => {
                    let (result, after) = self.locked(broker, |c, _, now| {
                        c.add_partitions_for(&id, producer_id, producer_epoch, partitions, 2, now)
                    });
                    let persisted = self.finish(broker, after).await;
                    match (result, persisted) {
                        (Ok(()), Ok(())) => ErrorCode::None,
                        (Ok(()), Err(e)) => e.code(),
                        (Err(code), _) => code,
                    }
                }
            }
        };
        match code {
            ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
            ErrorCode::NetworkException
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::NotCoordinator => ErrorCode::NotEnoughReplicas,
            other => other,
        }
    }

    /// KIP-890 verification of a transactional produce whose coordinator is another node
    /// (Kafka's `AddPartitionsToTxnManager` with `verify_only`): one code per partition of
    /// `partitions`, already mapped for the producer as [`TxnDriver::verify_produce`] maps
    /// them. `None`: this node coordinates the id (or verification is off), verify locally.
    /// `old_client`: a Produce up to v10 or TxnOffsetCommit up to v3, which does not know
    /// TRANSACTION_ABORTABLE.
    pub async fn verify_elsewhere(
        &self,
        broker: &Broker,
        transactional_id: Option<&str>,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        old_client: bool,
    ) -> Option<Vec<(TopicPartition, ErrorCode)>> {
        if !self.verification_enabled() {
            return None;
        }
        let at = match transactional_id.filter(|id| !id.is_empty()) {
            Some(id) => self.coordinator_at(broker, id),
            None => CoordinatorAt::Here,
        };
        let codes = match (at, transactional_id) {
            (CoordinatorAt::Here, _) | (_, None) => return None,
            (CoordinatorAt::Unknown, _) => partitions
                .iter()
                .map(|tp| (tp.clone(), ErrorCode::CoordinatorNotAvailable))
                .collect(),
            (CoordinatorAt::Node(node), Some(id)) => {
                txn_verification::ask_coordinator(
                    broker,
                    self.verification_sender(broker),
                    node,
                    id,
                    producer_id,
                    producer_epoch,
                    partitions,
                    Operation::Verify,
                    old_client,
                )
                .await
            }
        };
        Some(
            codes
                .into_iter()
                .map(|(tp, code)| (tp, produce_error_for_verification(code)))
                .collect(),
        )
    }

    fn verification_enabled(&self) -> bool {
        self.config.effective_bool(
            "transaction.partition.verification.enable",
            self.config.transaction_partition_verification_enable,
        )
    }

    /// KIP-890 verification for a transactional produce to `topic`-`partition`: NONE when
    /// the producer's ongoing transaction added the partition. Transient coordinator
    /// answers (loading, a commit in progress) become NOT_ENOUGH_REPLICAS, which every
    /// client retries, as in Kafka's ReplicaManager.
    pub fn verify_produce(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> ErrorCode {
        let enabled = self.config.effective_bool(
            "transaction.partition.verification.enable",
            self.config.transaction_partition_verification_enable,
        );
        if !enabled {
            return ErrorCode::None;
        }
        if !self.is_loaded() {
            return ErrorCode::NotEnoughReplicas;
        }
        let tp = [TopicPartition {
            topic: topic.to_string(),
            partition,
        }];
        let code = self
            .read(|c| c.verify_partitions(producer_id, producer_epoch, &tp))
            .into_iter()
            .next()
            .unwrap_or(ErrorCode::UnknownServerError);
        produce_error_for_verification(code)
    }

    /// Appends the coordinator's records (one batch per `__transaction_state` partition)
    /// and takes the marker jobs. Called with the lock held.
    fn apply_effects(&self, broker: &Arc<Broker>, st: &mut State, now: i64) -> TxnAfter {
        let effects = st.coord.take_effects();
        let mut after = TxnAfter {
            flush: Vec::new(),
            markers: effects.markers,
            persist_error: None,
        };
        if effects.records.is_empty() {
            return after;
        }
        let topic = match transaction_state_topic(broker) {
            Ok(t) => t,
            Err(e) => {
                after.persist_error = Some(e.to_string());
                self.reload_from_log(broker, st, now);
                return after;
            }
        };
        let n = topic.partition_count();
        let mut batches = CoordinatorBatches::new(now);
        let value_version = if st.coord.server_transaction_version() >= 1 {
            1
        } else {
            0
        };
        for r in &effects.records {
            let (key, value) = encode_record_at(r, value_version);
            batches.push(
                transaction_partition_for(&r.transactional_id, n),
                &key,
                value.as_deref(),
            );
        }
        let mut appended = Appended::default();
        batches.append_to(&topic, &mut appended);
        after.flush = appended.flush;
        after.persist_error = appended.error;
        if after.persist_error.is_some() {
            self.reload_from_log(broker, st, now);
        }
        if !after.flush.is_empty() {
            broker.data_arrived.notify_waiters();
        }
        after
    }

    /// After a write that failed (a full disk, an I/O error) the coordinator holds a
    /// transition `__transaction_state` does not: the client hears NOT_COORDINATOR, so the
    /// transition must not have happened (Kafka applies a transition only once its record
    /// is appended, `TransactionStateManager.appendTransactionToLog`). The state is rebuilt
    /// from the log, as the start-up loader does, so a retried EndTxn or InitProducerId
    /// finds the last durable state. Transactions the log leaves in a Prepare state get
    /// their markers again (idempotent: a marker task still writing them is harmless).
    /// Runs with the coordinator lock held; only a failed write triggers it.
    fn reload_from_log(&self, broker: &Broker, st: &mut State, now: i64) {
        self.reload(broker, st, now, "a __transaction_state write failed");
    }

    /// Rebuilds the coordinator from `__transaction_state` as it is now (empty if it is gone).
    fn reload(&self, broker: &Broker, st: &mut State, now: i64, why: &str) {
        let started = std::time::Instant::now();
        let tv = st.coord.server_transaction_version();
        st.coord = TxnCoordinator::new(txn_config(&self.config));
        st.coord.set_server_transaction_version(tv);
        let mut n = 0;
        if let Some(topic) = broker.topics.get(TRANSACTION_STATE_TOPIC) {
            for p in topic.partitions() {
                // Partitions still loading are replayed by their loader, which waits for us.
                if self.shards.lock().status(p.index).is_ok() {
                    n += replay_partition(&p, &mut st.coord);
                }
            }
        }
        st.coord.finish_loading(now);
        st.timer_quiet_until_ms = now + RELOAD_TIMER_PAUSE_MS;
        warn!(
            records = n,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "{why}; reloaded the transaction state from the log"
        );
    }

    /// `__transaction_state` was deleted (Kafka 4 allows it): every transactional id's state
    /// is gone, as on Kafka. Producer ids stay unique (their blocks are reserved apart).
    pub fn transaction_topic_deleted(&self, broker: &Broker) {
        let mut st = self.state.lock();
        self.reload(broker, &mut st, now_ms(), "__transaction_state was deleted");
    }
}

async fn persist(broker: &Broker, after: &TxnAfter) -> Result<(), PersistError> {
    for (p, _) in &after.flush {
        broker.request_flush(p.clone());
    }
    if let Some(e) = &after.persist_error {
        return Err(PersistError::Storage(e.clone()));
    }
    let deadline = tokio::time::Instant::now() + PERSIST_TIMEOUT;
    for (p, end) in &after.flush {
        crate::groups::durable_and_replicated(p, *end, deadline).await?;
    }
    Ok(())
}

/// Writes one transaction's markers, waits for them to be durable, then completes the
/// transaction. Partitions led here get their control batch appended directly; partitions
/// led elsewhere get it through the marker channel ([`crate::inter_broker::markers`]),
/// whose WriteTxnMarkers answers once the leader has made it durable. Partitions that fail
/// transiently are retried with their leader looked up again, until this node stops
/// coordinating the transaction at the coordinator epoch it started with. Boxed: the task is
/// spawned from code that the task itself runs.
fn marker_task(
    driver: Arc<TxnDriver>,
    broker: Arc<Broker>,
    job: MarkerJob,
    markers_durable: oneshot::Sender<()>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let Some(coordinator_epoch) = driver.coordinator_epoch(&broker, &job.transactional_id)
        else {
            return;
        };
        let mut flush: Vec<(Arc<Partition>, i64)> = Vec::new();
        let mut pending = job.partitions.clone();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let plan = markers::plan(&pending, |tp| marker_destination(&broker, tp));
            if !plan.unknown.is_empty() && attempt % MARKER_WARN_EVERY == 1 {
                info!(transactional_id = %job.transactional_id, partitions = plan.unknown.len(), attempt, "no reachable leader for some partitions of a transaction yet; their markers wait");
            }
            let mut retry = plan.unknown;
            let mut local_storage_error = false;
            // Remote markers are queued first so that their round trips overlap the local
            // appends.
            let mut remote = Vec::new();
            if !plan.remote.is_empty() {
                let Some(sender) = driver.marker_sender(&broker) else {
                    return;
                };
                for ((node, addr), parts) in plan.remote {
                    let entry = markers::marker_request_entry(
                        job.producer_id,
                        job.producer_epoch,
                        coordinator_epoch,
                        job.commit,
                        driver.transaction_version() as i8,
                        &parts,
                    );
                    remote.push((node, parts, sender.enqueue(node, addr, entry)));
                }
            }
            for tp in plan.local {
                match write_marker(&broker, &job, coordinator_epoch, tp.clone()) {
                    Ok(Some(done)) => flush.push(done),
                    Ok(None) => {}
                    Err(MarkerError::Rejected(e)) => {
                        // A newer epoch or coordinator already wrote to the partition: this
                        // marker is stale there, as Kafka's log would also refuse it.
                        warn!(topic = %tp.topic, partition = tp.partition, transactional_id = %job.transactional_id, error = %e, "transaction marker refused by the partition");
                    }
                    // Kafka's marker channel retries KAFKA_STORAGE_ERROR until the write
                    // succeeds: the transaction must complete once space returns, without
                    // a restart.
                    Err(e @ (MarkerError::Storage(_) | MarkerError::NotLocal { .. })) => {
                        local_storage_error |= matches!(e, MarkerError::Storage(_));
                        if attempt % MARKER_WARN_EVERY == 1 {
                            warn!(topic = %tp.topic, partition = tp.partition, transactional_id = %job.transactional_id, attempt, error = %e, "cannot write a transaction marker; retrying");
                        }
                        retry.push(tp);
                    }
                }
            }
            for (node, parts, reply) in remote {
                let codes = match reply.await {
                    Ok(Ok(codes)) => codes,
                    Ok(Err(e)) => {
                        if attempt % MARKER_WARN_EVERY == 1 {
                            warn!(node, transactional_id = %job.transactional_id, attempt, error = %e, "cannot send transaction markers; retrying");
                        }
                        retry.extend(parts);
                        continue;
                    }
                    // The sender is gone (shutdown).
                    Err(_) => return,
                };
                for (tp, code) in codes {
                    match markers::outcome_of(code) {
                        MarkerOutcome::Written => {}
                        MarkerOutcome::Skip => {
                            info!(topic = %tp.topic, partition = tp.partition, transactional_id = %job.transactional_id, error = code.name(), "partition cannot take transaction markers; skipped");
                        }
                        MarkerOutcome::Retry => {
                            if attempt % MARKER_WARN_EVERY == 1 {
                                info!(node, topic = %tp.topic, partition = tp.partition, transactional_id = %job.transactional_id, attempt, error = code.name(), "transaction marker not written; retrying");
                            }
                            retry.push(tp);
                        }
                        MarkerOutcome::Abandon => {
                            warn!(node, topic = %tp.topic, partition = tp.partition, transactional_id = %job.transactional_id, error = code.name(), "transaction marker refused for good; no more markers are sent for this transaction");
                            return;
                        }
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            // Only a broker shutdown or the loss of the transaction's partition ends the
            // retries (the next coordinator resends the markers of a transaction it finds
            // in a Prepare state), as Kafka's handler cancels them when the coordinator
            // epoch changed.
            if driver.stopped.load(Ordering::Acquire)
                || driver.coordinator_epoch(&broker, &job.transactional_id)
                    != Some(coordinator_epoch)
            {
                return;
            }
            pending = retry;
            tokio::time::sleep(if local_storage_error {
                MARKER_RETRY
            } else {
                MARKER_RETRY_BACKOFF
            })
            .await;
        }
        broker.data_arrived.notify_waiters();
        for (p, _) in &flush {
            broker.request_flush(p.clone());
        }
        for (p, end) in &flush {
            p.wait_flushed(*end).await;
            // As Kafka writes markers with required acks -1. A shrunken ISR leaves the
            // markers unreplicated: the transaction stays in PrepareCommit/Abort and the
            // markers are written again on the next load.
            if !p.wait_replicated(*end).await {
                tracing::warn!(topic = %p.topic, partition = p.index, "transaction marker not replicated: the ISR is below min.insync.replicas");
            }
        }
        // From here the outcome is durable in the data: an EndTxn waiting on it may answer.
        // The Complete record that follows is bookkeeping — if it is lost, the loader finds
        // the Prepare state and writes the (idempotent) markers again.
        let _ = markers_durable.send(());
        let ((), after) = driver.locked(&broker, |c, _, now| c.markers_written(&job, now));
        if let Err(e) = driver.finish(&broker, after).await {
            warn!(transactional_id = %job.transactional_id, error = %e, "cannot record the completion of a transaction");
        }
    })
}

/// Where `tp`'s marker goes, from the cluster view (Kafka's channel manager looks up the
/// leader on the inter-broker listener for every marker it queues).
fn marker_destination(broker: &Broker, tp: &TopicPartition) -> Destination {
    let Some(topic) = broker.topics.get(&tp.topic) else {
        return Destination::Deleted;
    };
    if !topic.has_partition(tp.partition) {
        return Destination::Deleted;
    }
    let view = broker.cluster.current();
    if view.leads_every_partition() {
        return Destination::Local;
    }
    let Some(placement) = view.partition(topic.id, tp.partition) else {
        return Destination::Deleted;
    };
    match placement.leader {
        Some(leader) if leader == view.this_node() => Destination::Local,
        Some(leader) => match broker.inter_broker_address(leader) {
            Some(addr) if broker.broker_channel().is_some() => {
                Destination::Remote { node: leader, addr }
            }
            _ => Destination::Unknown,
        },
        None => Destination::Unknown,
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum MarkerError {
    /// The partition's producer state refuses it (an older producer or coordinator epoch).
    #[error("{0}")]
    Rejected(arus_log::LogError),
    #[error("{0}")]
    Storage(arus_log::LogError),
    /// Leadership moved away between the lookup and the write.
    #[error("{topic}-{partition} is not led by this node")]
    NotLocal { topic: String, partition: i32 },
}

impl MarkerError {
    /// The code WriteTxnMarkers answers for the partition.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            MarkerError::Rejected(arus_log::LogError::Producer(p)) => {
                ErrorCode::from_code(p.kafka_error_code()).unwrap_or(ErrorCode::UnknownServerError)
            }
            MarkerError::Rejected(_) | MarkerError::Storage(_) => ErrorCode::KafkaStorageError,
            MarkerError::NotLocal { .. } => ErrorCode::NotLeaderOrFollower,
        }
    }
}

/// Appends one marker to a partition led here; `None` when the partition no longer exists.
pub(crate) fn write_marker(
    broker: &Arc<Broker>,
    job: &MarkerJob,
    coordinator_epoch: i32,
    tp: TopicPartition,
) -> Result<Option<(Arc<Partition>, i64)>, MarkerError> {
    let now = now_ms();
    let classify = |e: arus_log::LogError| match e {
        arus_log::LogError::Producer(_) => MarkerError::Rejected(e),
        other => MarkerError::Storage(other),
    };
    if let Some(t) = broker.topics.get(&tp.topic)
        && t.has_partition(tp.partition)
        && !t.partition(tp.partition).is_some_and(|p| p.is_leader())
    {
        return Err(MarkerError::NotLocal {
            topic: tp.topic,
            partition: tp.partition,
        });
    }
    let job = MarkerJob {
        coordinator_epoch,
        ..job.clone()
    };
    if tp.topic == OFFSETS_TOPIC {
        return broker
            .groups
            .write_txn_marker(broker, tp.partition, &job, now)
            .map_err(classify);
    }
    let Some(partition) = broker
        .topics
        .get(&tp.topic)
        .and_then(|t| t.partition(tp.partition))
    else {
        return Ok(None);
    };
    let info = partition
        .append_marker(
            job.producer_id,
            job.producer_epoch,
            coordinator_epoch,
            job.commit,
            now,
        )
        .map_err(classify)?;
    Ok(Some((partition, info.last_offset + 1)))
}

/// How many partitions `__transaction_state` has, if it exists.
fn state_partition_count(broker: &Broker) -> Option<i32> {
    broker
        .topics
        .get(TRANSACTION_STATE_TOPIC)
        .map(|t| t.partition_count())
        .filter(|&n| n > 0)
}

/// `__transaction_state`, created on first use with Kafka's settings for it.
pub fn transaction_state_topic(broker: &Broker) -> Result<Arc<Topic>, TopicError> {
    if let Some(t) = broker.topics.get(TRANSACTION_STATE_TOPIC) {
        return Ok(t);
    }
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("compression.type".to_string(), "uncompressed".to_string()),
        ("segment.bytes".to_string(), "104857600".to_string()),
    ]);
    broker.topics.get_or_create(NewTopic {
        name: TRANSACTION_STATE_TOPIC.to_string(),
        partitions: broker.config.transaction_state_log_num_partitions,
        replication_factor: 1,
        configs,
    })
}

/// Replays one partition of `__transaction_state`; returns how many records it applied.
fn replay_partition(p: &Partition, coord: &mut TxnCoordinator) -> usize {
    let mut n = 0;
    let scanned = p.for_each_batch(|batch| {
        if batch.is_control() {
            return;
        }
        let Ok(records) = batch.records() else {
            warn!(
                partition = p.index,
                offset = batch.base_offset(),
                "undecodable batch in __transaction_state"
            );
            return;
        };
        for r in records {
            let Some(key) = r.key.as_deref() else {
                continue;
            };
            match decode_record(key, r.value.as_deref()) {
                Ok(rec) => {
                    coord.replay(rec);
                    n += 1;
                }
                Err(e) => {
                    warn!(partition = p.index, error = %e, "skipping undecodable __transaction_state record")
                }
            }
        }
    });
    if let Err(e) = scanned {
        warn!(partition = p.index, error = %e, "cannot read __transaction_state");
    }
    n
}
