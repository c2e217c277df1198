//! Drives the pure group coordinator (`arus-group`) inside the broker: one mutex around it
//! (never held across `.await`), deferred JoinGroup/SyncGroup answers through oneshot
//! channels, a timer task that sleeps until the coordinator's next deadline (woken early
//! when an operation may have changed it), and persistence in `__consumer_offsets`.
//!
//! Persistence: an operation's records are appended to the group's partition of
//! `__consumer_offsets` while the coordinator lock is held — so the log order is the order
//! in which the state changed — and the answers (the operation's own, and any deferred ones
//! it completed) are released only after that append is fsynced, like an `acks=all`
//! produce. On start-up a loader thread replays every partition; until it is done group
//! APIs answer COORDINATOR_LOAD_IN_PROGRESS.
//!
//! In a cluster (the registry driven by the metadata log) a group is served only where its
//! `__consumer_offsets` partition's leader is ([`crate::coordinator_shards`]): nothing is
//! loaded at start; [`GroupDriver::on_become_leader`] replays one partition's groups into
//! the coordinator and [`GroupDriver::on_resign`] forgets them. Other groups answer
//! NOT_COORDINATOR ([`GroupDriver::coordinator_error`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arus_group::consumer_group::{
    ConsumerGroupConfig, ConsumerGroups, GroupOverrides, TopicInfo, TopicMetadataSource,
};
use arus_group::records::{CoordinatorRecord, decode_record, encode_record, offsets_partition_for};
use arus_group::{Completion, Coordinator, GroupConfig, Ticket};
use arus_protocol::ErrorCode;
use arus_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use parking_lot::Mutex;

use crate::resource_configs::{ConfigMap, ResourceKind};
use tokio::sync::{Notify, oneshot};
use tracing::{info, warn};

use crate::broker::{Broker, now_ms};
use crate::broker_config::BrokerConfig;
use crate::coordinator_log::{Appended, CoordinatorBatches};
use crate::coordinator_shards::CoordinatorShards;
use crate::partition::Partition;
use crate::topics::{NewTopic, Topic, TopicError, TopicRegistry};

/// Kafka's internal topic for committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How long an answer waits for its records to reach stable storage before the request
/// fails (Kafka bounds the append by `offsets.commit.timeout.ms`, 5 s).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the timer pauses after a failed write reloaded the state (see
/// [`reload_from_log`]).
const RELOAD_TIMER_PAUSE_MS: i64 = 1000;

pub fn group_config(c: &BrokerConfig) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: c.group_initial_rebalance_delay_ms,
        min_session_timeout_ms: c.group_min_session_timeout_ms,
        max_session_timeout_ms: c.group_max_session_timeout_ms,
        max_size: c.group_max_size.max(1) as usize,
        offsets_retention_ms: c.offsets_retention_minutes.saturating_mul(60_000),
        offsets_retention_check_interval_ms: c.offsets_retention_check_interval_ms,
        offset_metadata_max_bytes: c.offset_metadata_max_bytes.max(0) as usize,
        ..GroupConfig::default()
    }
}

/// KIP-848 settings (`group.consumer.*`) for [`ConsumerGroups`].
pub fn consumer_group_config(c: &BrokerConfig) -> ConsumerGroupConfig {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()).rotate_left(32);
    ConsumerGroupConfig {
        session_timeout_ms: c.group_consumer_session_timeout_ms,
        heartbeat_interval_ms: c.group_consumer_heartbeat_interval_ms,
        regex_refresh_interval_ms: i64::from(c.group_consumer_regex_refresh_interval_ms),
        member_id_seed: seed,
        ..ConsumerGroupConfig::default()
    }
}

/// The broker's topics as the KIP-848 coordinator sees them (Kafka's metadata image).
pub struct RegistryMetadata<'a>(pub &'a TopicRegistry);

impl TopicMetadataSource for RegistryMetadata<'_> {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.0.get(name).map(|t| TopicInfo {
            id: t.id,
            partitions: t.partition_count(),
        })
    }
    fn topic_name(&self, id: &arus_protocol::Uuid) -> Option<String> {
        self.0.get_by_id(id).map(|t| t.name.clone())
    }
    fn topic_names(&self) -> Vec<String> {
        self.0.all().iter().map(|t| t.name.clone()).collect()
    }
    fn topics_version(&self) -> i64 {
        self.0.created_version()
    }
}

/// Both kinds of group, which share one group-id namespace (as in Kafka's
/// `GroupMetadataManager`): the classic coordinator (which also keeps every group's
/// committed offsets) and the KIP-848 consumer groups. Records the consumer groups emit go
/// to `records`; they are appended after the classic coordinator's, in the same batch.
pub struct Groups<'a> {
    pub classic: &'a mut Coordinator,
    pub consumer: &'a mut ConsumerGroups,
    pub records: &'a mut Vec<CoordinatorRecord>,
}

enum Waiter {
    Join(oneshot::Sender<JoinGroupResponse>),
    Sync(oneshot::Sender<SyncGroupResponse>),
}

struct State {
    coord: Coordinator,
    consumer: ConsumerGroups,
    /// Records of consumer-group operations not yet appended.
    consumer_records: Vec<CoordinatorRecord>,
    /// Next removal of empty consumer groups without offsets (Kafka's
    /// `cleanupGroupMetadata`, every `offsets.retention.check.interval.ms`).
    next_consumer_cleanup_ms: i64,
    waiters: HashMap<Ticket, Waiter>,
    /// The timer does not run before this (ms): set by [`reload_from_log`], whose state's
    /// first tick could retry the write that just failed — on a full disk a busy loop.
    timer_quiet_until_ms: i64,
}

impl State {
    /// Kafka's periodic timers for consumer groups, then the classic coordinator's.
    fn tick(&mut self, now: i64) {
        let due = self.consumer.tick(now);
        self.consumer_records.extend(due);
        // Offsets of topics a live consumer group subscribes to do not expire.
        let kept = self
            .consumer
            .group_ids()
            .filter_map(|id| self.consumer.group(id))
            .filter(|g| !g.members.is_empty())
            .map(|g| {
                (
                    g.group_id.clone(),
                    g.subscribed_topic_names()
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                )
            })
            .collect();
        self.coord.set_offsets_kept(kept);
        self.coord.tick(now);
        if now >= self.next_consumer_cleanup_ms {
            self.next_consumer_cleanup_ms =
                now + self.coord.config().offsets_retention_check_interval_ms;
            let empty: Vec<String> = self
                .consumer
                .group_ids()
                .filter(|id| self.consumer.member_count(id) == 0 && !self.coord.has_offsets(id))
                .map(str::to_string)
                .collect();
            for id in empty {
                if let Ok(records) = self.consumer.delete_group(&id) {
                    info!(group = %id, "removed empty consumer group with no committed offsets");
                    self.consumer_records.extend(records);
                }
            }
        }
    }

    fn next_deadline(&self) -> i64 {
        self.coord
            .next_deadline()
            .min(self.consumer.next_deadline().unwrap_or(i64::MAX))
            .min(self.next_consumer_cleanup_ms)
    }
}

/// What to do once the coordinator lock is released.
#[must_use]
pub(crate) struct AfterLock {
    flush: Vec<(Arc<Partition>, i64)>,
    deliver: Vec<(Waiter, Completion)>,
    persist_error: Option<String>,
}

/// Why an operation's records could not be made durable; maps to Kafka's error for a
/// failed `__consumer_offsets` append.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot write __consumer_offsets: {0}")]
    Storage(String),
    #[error("timed out waiting for __consumer_offsets to reach stable storage")]
    Timeout,
    /// The internal partition's ISR shrank below `min.insync.replicas` while the records
    /// were replicated.
    #[error("the in-sync replicas of an internal partition fell below min.insync.replicas")]
    NotEnoughReplicas,
}

/// Waits until a coordinator's records below `end` are on stable storage and in every
/// in-sync replica of their internal partition (Kafka's coordinators append with required
/// acks -1), by `deadline`.
pub(crate) async fn durable_and_replicated(
    p: &Partition,
    end: i64,
    deadline: tokio::time::Instant,
) -> Result<(), PersistError> {
    let waited = tokio::time::timeout_at(deadline, async {
        p.wait_flushed(end).await;
        p.wait_replicated(end).await
    })
    .await;
    match waited {
        Ok(true) => Ok(()),
        Ok(false) => Err(PersistError::NotEnoughReplicas),
        Err(_) => Err(PersistError::Timeout),
    }
}

impl PersistError {
    /// Kafka's mapping in `GroupMetadataManager.storeOffsets`: storage failures become
    /// NOT_COORDINATOR, timeouts COORDINATOR_NOT_AVAILABLE (both make clients retry).
    pub fn code(&self) -> ErrorCode {
        match self {
            PersistError::Storage(_) => ErrorCode::NotCoordinator,
            PersistError::Timeout | PersistError::NotEnoughReplicas => {
                ErrorCode::CoordinatorNotAvailable
            }
        }
    }
}

pub struct GroupDriver {
    state: Mutex<State>,
    wake: Notify,
    loaded: AtomicBool,
    timer_started: AtomicBool,
    stopped: AtomicBool,
    /// The `__consumer_offsets` partitions served here. Lock order: `state`, then this.
    shards: Mutex<CoordinatorShards>,
}

impl GroupDriver {
    /// `__consumer_offsets` was deleted (Kafka 4 allows it): its groups and committed offsets
    /// are gone, as on Kafka, whose coordinator unloads the deleted partitions. Waiting
    /// joins and syncs are answered COORDINATOR_NOT_AVAILABLE; the topic is created again
    /// on next use.
    pub fn offsets_topic_deleted(&self, broker: &Broker) {
        let mut st = self.state.lock();
        reload(broker, &mut st, now_ms(), "__consumer_offsets was deleted");
    }

    pub fn new(config: &BrokerConfig) -> GroupDriver {
        GroupDriver {
            state: Mutex::new(State {
                coord: Coordinator::new(group_config(config), now_ms()),
                consumer: ConsumerGroups::new(consumer_group_config(config)),
                consumer_records: Vec::new(),
                next_consumer_cleanup_ms: now_ms() + config.offsets_retention_check_interval_ms,
                waiters: HashMap::new(),
                timer_quiet_until_ms: 0,
            }),
            wake: Notify::new(),
            loaded: AtomicBool::new(false),
            timer_started: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            shards: Mutex::new(CoordinatorShards::all()),
        }
    }

    /// Why this node does not serve `group_id` now, as Kafka's group coordinator answers:
    /// COORDINATOR_LOAD_IN_PROGRESS while its partition loads, NOT_COORDINATOR if another
    /// node leads its partition. `None`: serve it.
    pub fn coordinator_error(&self, broker: &Broker, group_id: &str) -> Option<ErrorCode> {
        // The cluster view says who leads the key's partition; the shards say whether
        // this node has loaded it.
        if !crate::cluster::coordinators::coordinates(
            broker,
            crate::cluster::coordinators::Coordinator::Group,
            group_id,
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
        let Some(count) = offsets_partition_count(broker) else {
            return Some(ErrorCode::NotCoordinator);
        };
        shards.status(offsets_partition_for(group_id, count)).err()
    }

    /// Why ListGroups cannot list now: some partition led here is still loading (Kafka's
    /// read-all operations fail on a loading shard and skip the ones not led here).
    pub fn list_error(&self) -> Option<ErrorCode> {
        (!self.is_loaded() || self.shards.lock().any_loading())
            .then_some(ErrorCode::CoordinatorLoadInProgress)
    }

    /// This node now leads `__consumer_offsets`-`partition` at `epoch`: its groups are
    /// replayed on a thread of their own (COORDINATOR_LOAD_IN_PROGRESS meanwhile), then
    /// served. Nothing happens on a single node (everything is led and loaded at start) or
    /// if the partition is already led at this epoch.
    pub fn on_become_leader(self: &Arc<Self>, broker: &Arc<Broker>, partition: i32, epoch: i32) {
        let Some(load) = self.shards.lock().begin_load(partition, epoch) else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            self.ensure_timer(broker);
        }
        let (me, for_thread) = (self.clone(), broker.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("arus-group-load-{partition}"))
            .spawn(move || me.load_partition(&for_thread, partition, epoch, load));
        if let Err(e) = spawned {
            warn!(error = %e, partition, "cannot start a group loader thread; loading inline");
            self.load_partition(broker, partition, epoch, load);
        }
    }

    /// This node no longer leads `__consumer_offsets`-`partition`: its groups are forgotten
    /// (the new leader replays them) and pending JoinGroup/SyncGroup answers are
    /// NOT_COORDINATOR, as Kafka's `onUnloaded`.
    pub fn on_resign(&self, broker: &Broker, partition: i32) {
        // Under the state lock: a load of this partition either finished before (and is
        // unloaded here) or starts after and finds it resigned.
        let mut st = self.state.lock();
        if !self.shards.lock().resign(partition) {
            return;
        }
        let count = offsets_partition_count(broker);
        let mine = |g: &str| count.is_none_or(|n| offsets_partition_for(g, n) == partition);
        let groups = unload(&mut st, &mine);
        drop(st);
        self.wake.notify_one();
        info!(
            partition,
            groups, "unloaded the groups of a __consumer_offsets partition no longer led here"
        );
    }

    /// Replays one led partition (see [`GroupDriver::on_become_leader`]).
    fn load_partition(&self, broker: &Broker, partition: i32, epoch: i32, load: u64) {
        let started = std::time::Instant::now();
        let mut st = self.state.lock();
        if !self.shards.lock().is_loading(partition, load) {
            return;
        }
        let now = now_ms();
        let topic = broker.topics.get(OFFSETS_TOPIC);
        let count = topic.as_ref().map_or(1, |t| t.partition_count().max(1));
        let mine = |g: &str| offsets_partition_for(g, count) == partition;
        let Some(p) = topic.as_ref().and_then(|t| t.partition(partition)) else {
            // Serving its groups from nothing would lose their offsets: not coordinated.
            warn!(
                partition,
                "cannot load a led __consumer_offsets partition: no local replica"
            );
            self.shards.lock().resign(partition);
            return;
        };
        // A previous load of this partition (an older epoch) may have left its groups.
        unload(&mut st, &mine);
        let records = replay_partition(&p, count, &mut st);
        st.coord.finish_loading_where(now, mine);
        st.consumer.on_loaded_where(now, mine);
        // As at start-up: loading completes no deferred answer.
        let _ = st.coord.take_effects();
        self.shards.lock().finish_load(partition, load);
        drop(st);
        self.wake.notify_one();
        info!(
            partition,
            epoch,
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded the groups of a __consumer_offsets partition"
        );
    }

    /// Whether `partition` of `__consumer_offsets` is served here (every partition on a
    /// single node).
    fn serves_partition(&self, partition: i32) -> bool {
        self.shards.lock().status(partition).is_ok()
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Resolves once start-up loading has finished (tests; the CLI's in-process broker).
    pub async fn wait_loaded(&self) {
        while !self.is_loaded() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Replays `__consumer_offsets` (if it exists) on a thread of its own, so the broker
    /// starts serving other APIs at once.
    pub(crate) fn start_loading(self: &Arc<Self>, broker: &Arc<Broker>) {
        // Session timeouts of loaded members and offset retention run from start-up when a
        // runtime is at hand; otherwise the first group request starts the timer.
        if tokio::runtime::Handle::try_current().is_ok() {
            self.ensure_timer(broker);
        }
        if broker.topics.is_driven() {
            // A cluster member: nothing is led before the metadata says so.
            *self.shards.lock() = CoordinatorShards::led();
        }
        let topic = broker.topics.get(OFFSETS_TOPIC);
        let Some(topic) = topic.filter(|_| self.shards.lock().is_all()) else {
            let mut st = self.state.lock();
            st.coord.finish_loading(now_ms());
            st.consumer.on_loaded(now_ms());
            drop(st);
            self.loaded.store(true, Ordering::Release);
            return;
        };
        let me = self.clone();
        let parts = topic.partitions();
        let spawned = std::thread::Builder::new()
            .name("arus-group-load".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let mut st = me.state.lock();
                let mut n = 0usize;
                let count = parts.len() as i32;
                for p in &parts {
                    n += replay_partition(p, count, &mut st);
                }
                st.coord.finish_loading(now_ms());
                st.consumer.on_loaded(now_ms());
                // Loading itself never completes a deferred answer; records produced by
                // finish_loading (none today) would be re-derived on the next start.
                let _ = st.coord.take_effects();
                drop(st);
                me.loaded.store(true, Ordering::Release);
                me.wake.notify_one();
                info!(
                    records = n,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "loaded __consumer_offsets"
                );
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the group loader thread; loading inline");
            let mut st = self.state.lock();
            let count = topic.partition_count();
            for p in topic.partitions() {
                replay_partition(&p, count, &mut st);
            }
            st.coord.finish_loading(now_ms());
            st.consumer.on_loaded(now_ms());
            let _ = st.coord.take_effects();
            self.loaded.store(true, Ordering::Release);
        }
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Starts the timer task on first use (the broker may be opened outside a runtime).
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
                // The loader holds the coordinator lock; do not block a runtime thread on it.
                // It wakes us when done.
                self.wake.notified().await;
                continue;
            }
            let deadline = {
                let st = self.state.lock();
                st.next_deadline().max(st.timer_quiet_until_ms)
            };
            let now = now_ms();
            if deadline > now {
                // Capped so that a clock step does not leave the timer asleep for long.
                let wait = Duration::from_millis((deadline - now).min(60_000) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => continue,
                }
            }
            let Some(broker) = broker.upgrade() else {
                return;
            };
            let ((), after) = self.locked_state(&broker, |st, now| st.tick(now));
            if let Err(e) = self.finish(&broker, after).await {
                warn!(error = %e, "group coordinator timer could not persist its records");
            }
        }
    }

    /// Runs `f` on the coordinator under the lock, appends the records it produced, and
    /// collects the deferred answers to release after the flush.
    pub(crate) fn locked<R>(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        f: impl FnOnce(&mut Coordinator, i64) -> R,
    ) -> (R, AfterLock) {
        self.ensure_timer(broker);
        let now = now_ms();
        let mut st = self.state.lock();
        let r = f(&mut st.coord, now);
        let after = apply_effects(broker, &mut st, now);
        drop(st);
        self.wake.notify_one();
        (r, after)
    }

    /// Like [`GroupDriver::locked`], with both kinds of group.
    pub(crate) fn locked_groups<R>(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        f: impl FnOnce(Groups<'_>, i64) -> R,
    ) -> (R, AfterLock) {
        self.locked_state(broker, |st, now| {
            f(
                Groups {
                    classic: &mut st.coord,
                    consumer: &mut st.consumer,
                    records: &mut st.consumer_records,
                },
                now,
            )
        })
    }

    fn locked_state<R>(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        f: impl FnOnce(&mut State, i64) -> R,
    ) -> (R, AfterLock) {
        self.ensure_timer(broker);
        let now = now_ms();
        let mut st = self.state.lock();
        let r = f(&mut st, now);
        let after = apply_effects(broker, &mut st, now);
        drop(st);
        self.wake.notify_one();
        (r, after)
    }

    /// Hands a group's own `consumer.session.timeout.ms` / `consumer.heartbeat.interval.ms`
    /// (its GROUP resource configs) to the KIP-848 coordinator.
    pub(crate) fn set_consumer_overrides(&self, group_id: &str, configs: &ConfigMap) {
        self.state
            .lock()
            .consumer
            .set_group_overrides(group_id, overrides(configs));
    }

    /// Hands every group's own settings to the coordinator (at start).
    pub(crate) fn apply_all_consumer_overrides(&self, broker: &Broker) {
        apply_overrides(broker, &mut self.state.lock().consumer);
    }

    /// Read-only access to both kinds of group.
    pub(crate) fn read_groups<R>(&self, f: impl FnOnce(&Coordinator, &ConsumerGroups) -> R) -> R {
        let st = self.state.lock();
        f(&st.coord, &st.consumer)
    }

    /// Like [`GroupDriver::locked_groups`], registering a waiter for a pending JoinGroup.
    pub(crate) fn locked_join_groups(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        f: impl FnOnce(Groups<'_>, i64) -> arus_group::Reply<JoinGroupResponse>,
    ) -> (
        Result<JoinGroupResponse, oneshot::Receiver<JoinGroupResponse>>,
        AfterLock,
    ) {
        self.ensure_timer(broker);
        let now = now_ms();
        let mut st = self.state.lock();
        let st = &mut *st;
        let reply = f(
            Groups {
                classic: &mut st.coord,
                consumer: &mut st.consumer,
                records: &mut st.consumer_records,
            },
            now,
        );
        let r = match reply {
            arus_group::Reply::Now(r) => Ok(r),
            arus_group::Reply::Pending(t) => {
                let (tx, rx) = oneshot::channel();
                st.waiters.insert(t, Waiter::Join(tx));
                Err(rx)
            }
        };
        let after = apply_effects(broker, st, now);
        self.wake.notify_one();
        (r, after)
    }

    /// Like [`GroupDriver::locked`], registering a waiter for a pending SyncGroup.
    pub(crate) fn locked_sync(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        f: impl FnOnce(&mut Coordinator, i64) -> arus_group::Reply<SyncGroupResponse>,
    ) -> (
        Result<SyncGroupResponse, oneshot::Receiver<SyncGroupResponse>>,
        AfterLock,
    ) {
        self.ensure_timer(broker);
        let now = now_ms();
        let mut st = self.state.lock();
        let r = match f(&mut st.coord, now) {
            arus_group::Reply::Now(r) => Ok(r),
            arus_group::Reply::Pending(t) => {
                let (tx, rx) = oneshot::channel();
                st.waiters.insert(t, Waiter::Sync(tx));
                Err(rx)
            }
        };
        let after = apply_effects(broker, &mut st, now);
        drop(st);
        self.wake.notify_one();
        (r, after)
    }

    /// Read-only access (describe, list, fetch offsets).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Coordinator) -> R) -> R {
        f(&self.state.lock().coord)
    }

    /// Waits until the appended records are fsynced, then releases the deferred answers.
    pub(crate) async fn finish(
        &self,
        broker: &Broker,
        after: AfterLock,
    ) -> Result<(), PersistError> {
        for (p, _) in &after.flush {
            broker.request_flush(p.clone());
        }
        let mut result = match after.persist_error {
            Some(e) => Err(PersistError::Storage(e)),
            None => Ok(()),
        };
        let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
        for (p, end) in &after.flush {
            if let Err(e) = durable_and_replicated(p, *end, deadline).await {
                result = Err(e);
            }
        }
        for (waiter, completion) in after.deliver {
            match (waiter, completion) {
                (Waiter::Join(tx), Completion::Join(_, mut r)) => {
                    if let Err(e) = &result
                        && r.error_code == 0
                    {
                        r.error_code = e.code().code();
                    }
                    let _ = tx.send(r);
                }
                (Waiter::Sync(tx), Completion::Sync(_, mut r)) => {
                    if let Err(e) = &result
                        && r.error_code == 0
                    {
                        r.error_code = e.code().code();
                        r.assignment = Default::default();
                    }
                    let _ = tx.send(r);
                }
                _ => warn!("group completion of the wrong kind for its waiter"),
            }
        }
        result
    }
}

/// Appends the coordinator's pending records (one batch per `__consumer_offsets`
/// partition) and pairs its completions with their waiters. Called with the lock held.
fn apply_effects(broker: &Arc<Broker>, st: &mut State, now: i64) -> AfterLock {
    let mut effects = st.coord.take_effects();
    effects.records.append(&mut st.consumer_records);
    let mut after = AfterLock {
        flush: Vec::new(),
        deliver: Vec::new(),
        persist_error: None,
    };
    for c in effects.completions {
        let ticket = match &c {
            Completion::Join(t, _) | Completion::Sync(t, _) => *t,
        };
        if let Some(w) = st.waiters.remove(&ticket) {
            after.deliver.push((w, c));
        }
    }
    if effects.records.is_empty() && effects.txn_records.is_empty() {
        return after;
    }
    let topic = match offsets_topic(broker) {
        Ok(t) => t,
        Err(e) => {
            after.persist_error = Some(e.to_string());
            reload_from_log(broker, st, now);
            return after;
        }
    };
    let n = topic.partition_count();
    // TxnOffsetCommit records go in transactional batches of their producer (as Kafka's
    // coordinator writes them), after the operation's other records.
    let mut groups = vec![(CoordinatorBatches::new(now), &effects.records)];
    for txn in &effects.txn_records {
        groups.push((
            CoordinatorBatches::transactional(now, txn.producer_id, txn.producer_epoch),
            &txn.records,
        ));
    }
    let mut appended = Appended::default();
    for (mut batches, records) in groups {
        for r in records {
            let Some(group) = record_group(r) else {
                continue;
            };
            match encode_record(r) {
                Ok((key, value)) => {
                    batches.push(offsets_partition_for(group, n), &key, value.as_deref())
                }
                Err(e) => after.persist_error = Some(e.to_string()),
            }
        }
        batches.append_to(&topic, &mut appended);
    }
    after.flush = appended.flush;
    if let Some(e) = appended.error {
        after.persist_error = Some(e);
    }
    if after.persist_error.is_some() {
        reload_from_log(broker, st, now);
    }
    if !after.flush.is_empty() {
        // Consumers of __consumer_offsets (tools) long-poll like any other reader.
        broker.data_arrived.notify_waiters();
    }
    after
}

/// After a write that failed (a full disk, an I/O error) the state machines hold changes
/// that `__consumer_offsets` does not: the client hears NOT_COORDINATOR, so they must not
/// be visible either (an OffsetFetch must not return a commit that failed). Kafka's
/// `CoordinatorRuntime` reverts to its last committed snapshot; here the state is rebuilt
/// from the log, which holds the truth, exactly as the start-up loader does. Deferred
/// JoinGroup/SyncGroup answers of the discarded state are dropped (their handlers answer
/// COORDINATOR_NOT_AVAILABLE; clients rejoin). Runs with the coordinator lock held: group
/// operations wait for the replay, which only a failed write triggers.
fn reload_from_log(broker: &Broker, st: &mut State, now: i64) {
    reload(broker, st, now, "a __consumer_offsets write failed");
}

fn overrides(configs: &ConfigMap) -> GroupOverrides {
    let (session_timeout_ms, heartbeat_interval_ms) =
        crate::resource_configs::group::consumer_overrides(configs);
    GroupOverrides {
        session_timeout_ms,
        heartbeat_interval_ms,
    }
}

/// Gives `consumer` every group's own settings (GROUP resource configs).
fn apply_overrides(broker: &Broker, consumer: &mut ConsumerGroups) {
    for (group_id, configs) in broker.resource_configs.all(ResourceKind::Group) {
        consumer.set_group_overrides(&group_id, overrides(&configs));
    }
}

/// Rebuilds the group state from `__consumer_offsets` as it is now (empty if it is gone).
fn reload(broker: &Broker, st: &mut State, now: i64, why: &str) {
    let started = std::time::Instant::now();
    st.coord = Coordinator::new(group_config(&broker.config), now);
    st.consumer = ConsumerGroups::new(consumer_group_config(&broker.config));
    apply_overrides(broker, &mut st.consumer);
    st.consumer_records.clear();
    st.waiters.clear();
    let mut n = 0;
    if let Some(topic) = broker.topics.get(OFFSETS_TOPIC) {
        let count = topic.partition_count();
        for p in topic.partitions() {
            // Partitions still loading are replayed by their loader, which waits for us.
            if broker.groups.serves_partition(p.index) {
                n += replay_partition(&p, count, st);
            }
        }
    }
    st.coord.finish_loading(now);
    st.consumer.on_loaded(now);
    // As at start-up: loading completes no deferred answer.
    let _ = st.coord.take_effects();
    st.timer_quiet_until_ms = now + RELOAD_TIMER_PAUSE_MS;
    warn!(
        records = n,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "{why}; reloaded the group state from the log"
    );
}

/// How many partitions `__consumer_offsets` has, if it exists.
fn offsets_partition_count(broker: &Broker) -> Option<i32> {
    broker
        .topics
        .get(OFFSETS_TOPIC)
        .map(|t| t.partition_count())
        .filter(|&n| n > 0)
}

/// Forgets the groups `mine` selects in both coordinators; deferred JoinGroup/SyncGroup
/// answers of theirs go out at once with NOT_COORDINATOR. Returns how many groups.
fn unload(st: &mut State, mine: &impl Fn(&str) -> bool) -> usize {
    let n = st.coord.unload_where(mine) + st.consumer.unload_where(mine);
    for c in st.coord.take_effects().completions {
        match c {
            Completion::Join(t, r) => {
                if let Some(Waiter::Join(tx)) = st.waiters.remove(&t) {
                    let _ = tx.send(r);
                }
            }
            Completion::Sync(t, r) => {
                if let Some(Waiter::Sync(tx)) = st.waiters.remove(&t) {
                    let _ = tx.send(r);
                }
            }
        }
    }
    n
}

/// The marker type in a control record's key (`version: i16, type: i16`; 0 abort, 1 commit).
fn control_is_commit(key: &[u8]) -> Option<bool> {
    match key.get(2..4)? {
        [0, 0] => Some(false),
        [0, 1] => Some(true),
        _ => None,
    }
}

impl GroupDriver {
    /// Writes a transaction marker to `__consumer_offsets`-`partition` and completes the
    /// producer's pending transactional offsets, under the coordinator lock so that the
    /// log order is the order in which the offsets became visible. `None` if the partition
    /// does not exist.
    pub(crate) fn write_txn_marker(
        &self,
        broker: &Broker,
        partition: i32,
        job: &arus_txn::MarkerJob,
        now: i64,
    ) -> Result<Option<(Arc<Partition>, i64)>, arus_log::LogError> {
        let Some(p) = broker
            .topics
            .get(OFFSETS_TOPIC)
            .and_then(|t| t.partition(partition))
        else {
            return Ok(None);
        };
        let mut st = self.state.lock();
        let info = p.append_marker(
            job.producer_id,
            job.producer_epoch,
            job.coordinator_epoch,
            job.commit,
            now,
        )?;
        let partitions = broker
            .topics
            .get(OFFSETS_TOPIC)
            .map_or(1, |t| t.partition_count());
        st.coord
            .complete_txn_where(job.producer_id, job.commit, now, |g| {
                offsets_partition_for(g, partitions) == partition
            });
        drop(st);
        Ok(Some((p, info.last_offset + 1)))
    }
}

/// `__consumer_offsets`, created on first use with Kafka's settings for it.
pub fn offsets_topic(broker: &Broker) -> Result<Arc<Topic>, TopicError> {
    if let Some(t) = broker.topics.get(OFFSETS_TOPIC) {
        return Ok(t);
    }
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("compression.type".to_string(), "producer".to_string()),
        ("segment.bytes".to_string(), "104857600".to_string()),
    ]);
    broker.topics.get_or_create(NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: broker.config.offsets_topic_num_partitions,
        replication_factor: 1,
        configs,
    })
}

/// The group a record belongs to (it decides the `__consumer_offsets` partition).
fn record_group(r: &CoordinatorRecord) -> Option<&str> {
    use CoordinatorRecord as R;
    match r {
        R::OffsetCommit { group, .. } | R::GroupMetadata { group, .. } => Some(group),
        R::ConsumerGroupMetadata { group_id, .. }
        | R::ConsumerGroupPartitionMetadata { group_id, .. }
        | R::ConsumerGroupMemberMetadata { group_id, .. }
        | R::ConsumerGroupTargetAssignmentMetadata { group_id, .. }
        | R::ConsumerGroupTargetAssignmentMember { group_id, .. }
        | R::ConsumerGroupCurrentMemberAssignment { group_id, .. }
        | R::ConsumerGroupRegularExpression { group_id, .. } => Some(group_id),
        R::Unknown { .. } => None,
    }
}

/// Replays one partition into both coordinators (KIP-848 records, key types 3–8 and 16, to the
/// consumer groups; the rest to the classic coordinator); returns how many records it
/// applied.
fn replay_partition(p: &Partition, partitions: i32, st: &mut State) -> usize {
    let mut n = 0;
    let now = now_ms();
    let scanned = p.for_each_batch(|batch| {
        let Ok(records) = batch.records() else {
            warn!(
                partition = p.index,
                offset = batch.base_offset(),
                "undecodable batch in __consumer_offsets"
            );
            return;
        };
        if batch.is_control() {
            // A transaction marker completes the producer's pending offsets. Each partition
            // is its own coordinator shard in Kafka: the marker completes the pending
            // offsets of the groups this partition holds.
            if let Some(commit) = records
                .first()
                .and_then(|r| r.key.as_deref())
                .and_then(control_is_commit)
            {
                st.coord
                    .complete_txn_where(batch.producer_id(), commit, now, |g| {
                        offsets_partition_for(g, partitions) == p.index
                    });
            }
            return;
        }
        for r in records {
            let Some(key) = r.key.as_deref() else {
                continue;
            };
            let rec = match decode_record(key, r.value.as_deref()) {
                Ok(rec) => rec,
                Err(e) => {
                    warn!(partition = p.index, error = %e, "skipping undecodable __consumer_offsets record");
                    continue;
                }
            };
            n += 1;
            if batch.is_transactional() {
                // TxnOffsetCommit records: pending until the producer's marker.
                st.coord.replay_txn_offset(batch.producer_id(), rec, now);
            } else if !st.consumer.replay(&rec) {
                st.coord.replay(rec, now);
            }
        }
    });
    if let Err(e) = scanned {
        warn!(partition = p.index, error = %e, "cannot read __consumer_offsets");
    }
    n
}
