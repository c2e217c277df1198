//! Incremental fetch sessions (KIP-227), following Apache Kafka's `FetchManager`,
//! `FetchSession`, `FetchSessionCacheShard` and `FetchContext` (server module, Kafka 4.x).
//!
//! A request's `(session_id, epoch)` selects a [`FetchContext`]:
//! - epoch `-1` (FINAL): close `session_id` if non-zero; a sessionless full fetch (answer id 0);
//! - epoch `0` (INITIAL): close `session_id` if non-zero; a full fetch that creates a new session
//!   if the cache has room (answer its id) or else answers id 0;
//! - any other epoch: an incremental fetch of an existing session. Unknown id →
//!   `FETCH_SESSION_ID_NOT_FOUND`; epoch other than the session's next expected one →
//!   `INVALID_FETCH_SESSION_EPOCH`; a session created with topic IDs (v13+) used by a v7–v12
//!   request or vice versa → `FETCH_SESSION_TOPIC_ID_ERROR`. The request's partitions are added
//!   or updated, `forgotten_topics_data` removed; a session left empty is closed and the request
//!   answered as sessionless. Otherwise the epoch advances (once per request) and every session
//!   partition is read, but only partitions with something new are answered.
//!
//! The cache is bounded by `max.incremental.fetch.session.cache.slots` sessions. When full, a
//! new session may evict the least recently used session if it was idle for more than
//! `min.incremental.fetch.session.eviction.ms`, or else the smallest session created more than
//! that long ago, if the new one has more partitions. Time is passed in (`now`, milliseconds).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arus_protocol::messages::FetchRequest;
use arus_protocol::messages::fetch_response::PartitionData;
use arus_protocol::{ErrorCode, Uuid};
use tracing::debug;

use crate::broker_config::BrokerConfig;

/// Kafka's default `max.incremental.fetch.session.cache.slots`.
pub const DEFAULT_CACHE_SLOTS: usize = 1000;
/// Kafka's default `min.incremental.fetch.session.eviction.ms`.
pub const DEFAULT_EVICTION_MS: i64 = 120_000;

/// `FetchMetadata.INVALID_SESSION_ID`.
pub const INVALID_SESSION_ID: i32 = 0;
/// `FetchMetadata.INITIAL_EPOCH`: a full fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// `FetchMetadata.FINAL_EPOCH`: a full fetch that asks for no session.
pub const FINAL_EPOCH: i32 = -1;

/// `FetchMetadata.nextEpoch`.
pub fn next_epoch(prev: i32) -> i32 {
    if prev < 0 {
        FINAL_EPOCH
    } else if prev == i32::MAX {
        1
    } else {
        prev + 1
    }
}

/// How a request names a topic: by ID from Fetch v13, by name before.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicRef {
    Id(Uuid),
    Name(String),
}

/// A partition of a session (or of one request).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionPartition {
    pub topic: TopicRef,
    pub partition: i32,
}

/// The per-partition request parameters a session remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchParams {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
    pub log_start_offset: i64,
    pub last_fetched_epoch: i32,
}

/// One partition to read for a request, with the parameters to read it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchTarget {
    pub key: SessionPartition,
    pub params: FetchParams,
}

/// The partitions a request names, in order, one entry per partition (a repeated partition
/// keeps its first position and its last parameters, as Kafka's `LinkedHashMap` does).
pub fn request_targets(request: &FetchRequest, version: i16) -> Vec<FetchTarget> {
    let mut out: Vec<FetchTarget> = Vec::new();
    let mut seen: HashMap<SessionPartition, usize> = HashMap::new();
    for ft in &request.topics {
        let topic = topic_ref(version, &ft.topic, ft.topic_id);
        for fp in &ft.partitions {
            let key = SessionPartition {
                topic: topic.clone(),
                partition: fp.partition,
            };
            let params = FetchParams {
                fetch_offset: fp.fetch_offset,
                partition_max_bytes: fp.partition_max_bytes,
                current_leader_epoch: fp.current_leader_epoch,
                log_start_offset: fp.log_start_offset,
                last_fetched_epoch: fp.last_fetched_epoch,
            };
            match seen.get(&key) {
                Some(&i) => out[i].params = params,
                None => {
                    seen.insert(key.clone(), out.len());
                    out.push(FetchTarget { key, params });
                }
            }
        }
    }
    out
}

/// The partitions a request's `forgotten_topics_data` names.
pub fn request_forgotten(request: &FetchRequest, version: i16) -> Vec<SessionPartition> {
    request
        .forgotten_topics_data
        .iter()
        .flat_map(|ft| {
            let topic = topic_ref(version, &ft.topic, ft.topic_id);
            ft.partitions.iter().map(move |&p| SessionPartition {
                topic: topic.clone(),
                partition: p,
            })
        })
        .collect()
}

fn topic_ref(version: i16, name: &str, id: Uuid) -> TopicRef {
    if version >= 13 {
        TopicRef::Id(id)
    } else {
        TopicRef::Name(name.to_string())
    }
}

/// What a request's session metadata asks for, decided before any partition is read.
#[derive(Debug)]
pub enum FetchContext {
    /// The session metadata was wrong: answer this top-level error, no partitions, id 0.
    SessionError(ErrorCode),
    /// A full fetch without a session: every partition answered, session id 0.
    Sessionless { targets: Vec<FetchTarget> },
    /// A full fetch that creates a session (if the cache has room) on completion.
    Full {
        targets: Vec<FetchTarget>,
        uses_topic_ids: bool,
    },
    /// An incremental fetch of session `session_id`, whose epoch was `request_epoch`.
    Incremental {
        session_id: i32,
        request_epoch: i32,
        targets: Vec<FetchTarget>,
    },
}

impl FetchContext {
    /// The partitions to read for this request (for an incremental fetch, all of the session's).
    pub fn targets(&self) -> &[FetchTarget] {
        match self {
            FetchContext::SessionError(_) => &[],
            FetchContext::Sessionless { targets }
            | FetchContext::Full { targets, .. }
            | FetchContext::Incremental { targets, .. } => targets,
        }
    }
}

/// The response-level outcome of a request, with the partitions to answer.
#[derive(Debug)]
pub struct Completed {
    pub error: ErrorCode,
    pub session_id: i32,
    pub partitions: Vec<(FetchTarget, PartitionData)>,
}

/// Kafka's `FetchSession.CachedPartition`: the request parameters and what the client was last
/// told.
#[derive(Debug)]
struct CachedPartition {
    /// Position in the session's order.
    seq: u64,
    params: FetchParams,
    high_watermark: i64,
    local_log_start_offset: i64,
}

fn records_size(data: &PartitionData) -> usize {
    data.records.as_ref().map_or(0, |r| r.len())
}

impl CachedPartition {
    /// Kafka's `CachedPartition.maybeUpdateResponseData`: whether `resp` must be sent in an
    /// incremental response, updating what the client was told when `update` is set.
    fn maybe_update_response_data(&mut self, resp: &PartitionData, update: bool) -> bool {
        let mut must_respond = false;
        if records_size(resp) > 0 {
            // Partitions with new data are always included.
            must_respond = true;
        }
        if self.high_watermark != resp.high_watermark {
            must_respond = true;
            if update {
                self.high_watermark = resp.high_watermark;
            }
        }
        if self.local_log_start_offset != resp.log_start_offset {
            must_respond = true;
            if update {
                self.local_log_start_offset = resp.log_start_offset;
            }
        }
        if resp.preferred_read_replica != -1 {
            must_respond = true;
        }
        if resp.error_code != ErrorCode::None.code() {
            // Errors are always included; forgetting the high watermark makes the partition
            // be sent again once the error goes away.
            if update {
                self.high_watermark = -1;
            }
            must_respond = true;
        }
        if resp.diverging_epoch.epoch >= 0 || resp.diverging_epoch.end_offset >= 0 {
            must_respond = true;
        }
        must_respond
    }
}

#[derive(Debug)]
struct FetchSession {
    id: i32,
    uses_topic_ids: bool,
    creation_ms: i64,
    last_used_ms: i64,
    /// The epoch the next incremental request must carry.
    epoch: i32,
    partitions: HashMap<SessionPartition, CachedPartition>,
    /// Session order: partitions that returned records move to the end, so that `max_bytes`
    /// is shared fairly across requests.
    order: BTreeMap<u64, SessionPartition>,
    next_seq: u64,
    /// The size recorded when last touched (the eviction key), `None` before the first touch.
    cached_size: Option<usize>,
}

impl FetchSession {
    fn push(&mut self, key: SessionPartition, cached: impl FnOnce(u64) -> CachedPartition) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.partitions.insert(key, cached(seq));
    }

    fn move_to_end(&mut self, key: &SessionPartition) {
        let seq = self.next_seq;
        if let Some(c) = self.partitions.get_mut(key) {
            self.next_seq += 1;
            self.order.remove(&c.seq);
            c.seq = seq;
            self.order.insert(seq, key.clone());
        }
    }

    /// Kafka's `FetchSession.update`: adds or updates the request's partitions, then removes
    /// the forgotten ones. Returns (added, updated, removed) counts.
    fn update(
        &mut self,
        fetch_data: &[FetchTarget],
        forgotten: &[SessionPartition],
    ) -> (usize, usize, usize) {
        let (mut added, mut updated, mut removed) = (0, 0, 0);
        for t in fetch_data {
            if let Some(c) = self.partitions.get_mut(&t.key) {
                c.params = t.params;
                updated += 1;
            } else {
                let params = t.params;
                self.push(t.key.clone(), |seq| CachedPartition {
                    seq,
                    params,
                    high_watermark: -1,
                    local_log_start_offset: -1,
                });
                added += 1;
            }
        }
        for key in forgotten {
            if let Some(c) = self.partitions.remove(key) {
                self.order.remove(&c.seq);
                removed += 1;
            }
        }
        (added, updated, removed)
    }

    fn targets(&self) -> Vec<FetchTarget> {
        self.order
            .values()
            .map(|key| FetchTarget {
                key: key.clone(),
                params: self.partitions[key].params,
            })
            .collect()
    }
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct FetchSessionCache {
    max_entries: usize,
    eviction_ms: i64,
    sessions: HashMap<i32, FetchSession>,
    /// (last used, id), oldest first.
    last_used: BTreeSet<(i64, i32)>,
    /// (size, id) of sessions created more than `eviction_ms` before their last use.
    evictable: BTreeSet<(usize, i32)>,
    num_partitions: usize,
    evictions: u64,
}

impl Default for FetchSessionCache {
    fn default() -> Self {
        FetchSessionCache::new(DEFAULT_CACHE_SLOTS, DEFAULT_EVICTION_MS)
    }
}

impl FetchSessionCache {
    pub fn new(max_entries: usize, eviction_ms: i64) -> FetchSessionCache {
        FetchSessionCache {
            max_entries,
            eviction_ms,
            sessions: HashMap::new(),
            last_used: BTreeSet::new(),
            evictable: BTreeSet::new(),
            num_partitions: 0,
            evictions: 0,
        }
    }

    /// Sized by `max.incremental.fetch.session.cache.slots` and
    /// `min.incremental.fetch.session.eviction.ms` when set, else Kafka's defaults.
    pub fn from_config(config: &BrokerConfig) -> FetchSessionCache {
        let slots = config
            .explicit
            .get("max.incremental.fetch.session.cache.slots")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_CACHE_SLOTS);
        let eviction_ms = config
            .explicit
            .get("min.incremental.fetch.session.eviction.ms")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|v| *v >= 0)
            .unwrap_or(DEFAULT_EVICTION_MS);
        FetchSessionCache::new(slots, eviction_ms)
    }

    /// The number of sessions cached.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The number of partitions cached across sessions.
    pub fn total_partitions(&self) -> usize {
        self.num_partitions
    }

    /// The number of sessions evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The epoch session `id` expects next, if it exists.
    pub fn expected_epoch(&self, id: i32) -> Option<i32> {
        self.sessions.get(&id).map(|s| s.epoch)
    }

    /// The partitions of session `id`, in session order.
    pub fn session_partitions(&self, id: i32) -> Option<Vec<SessionPartition>> {
        self.sessions
            .get(&id)
            .map(|s| s.order.values().cloned().collect())
    }

    /// Kafka's `FetchManager.newContext`: decides what the request is and updates the session
    /// for an incremental fetch (advancing its epoch once).
    pub fn new_context(&mut self, request: &FetchRequest, version: i16, now: i64) -> FetchContext {
        let (session_id, epoch) = (request.session_id, request.session_epoch);
        let fetch_data = request_targets(request, version);
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            // Any session named in a full fetch request is closed.
            if session_id != INVALID_SESSION_ID && self.remove(session_id) {
                debug!(session_id, "fetch session closed by a full fetch");
            }
            if epoch == FINAL_EPOCH {
                return FetchContext::Sessionless {
                    targets: fetch_data,
                };
            }
            return FetchContext::Full {
                targets: fetch_data,
                uses_topic_ids: version >= 13,
            };
        }
        let Some(session) = self.sessions.get_mut(&session_id) else {
            debug!(session_id, epoch, "fetch session error: no such session id");
            return FetchContext::SessionError(ErrorCode::FetchSessionIdNotFound);
        };
        if session.epoch != epoch {
            debug!(
                session_id,
                expected = session.epoch,
                epoch,
                "fetch session error: wrong epoch"
            );
            return FetchContext::SessionError(ErrorCode::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != (version >= 13) {
            debug!(
                session_id,
                version, "fetch session error: topic ids used inconsistently"
            );
            return FetchContext::SessionError(ErrorCode::FetchSessionTopicIdError);
        }
        let forgotten = request_forgotten(request, version);
        let (added, updated, removed) = session.update(&fetch_data, &forgotten);
        if session.partitions.is_empty() {
            debug!(
                session_id,
                epoch, removed, "fetch session closed: no partitions left; sessionless fetch"
            );
            self.remove(session_id);
            return FetchContext::Sessionless {
                targets: fetch_data,
            };
        }
        session.epoch = next_epoch(session.epoch);
        let targets = session.targets();
        self.touch(session_id, now);
        debug!(
            session_id,
            epoch, added, updated, removed, "incremental fetch"
        );
        FetchContext::Incremental {
            session_id,
            request_epoch: epoch,
            targets,
        }
    }

    /// Kafka's `FetchContext.updateAndGenerateResponseData`: `results` holds one answer per
    /// target of `context`, in order. Creates the session of a full fetch, and filters an
    /// incremental fetch's answers down to those with something to say.
    pub fn complete(
        &mut self,
        context: FetchContext,
        results: Vec<PartitionData>,
        now: i64,
    ) -> Completed {
        match context {
            FetchContext::SessionError(error) => Completed {
                error,
                session_id: INVALID_SESSION_ID,
                partitions: Vec::new(),
            },
            FetchContext::Sessionless { targets } => Completed {
                error: ErrorCode::None,
                session_id: INVALID_SESSION_ID,
                partitions: targets.into_iter().zip(results).collect(),
            },
            FetchContext::Full {
                targets,
                uses_topic_ids,
            } => {
                let partitions: Vec<(FetchTarget, PartitionData)> =
                    targets.into_iter().zip(results).collect();
                let session_id = self.maybe_create_session(now, uses_topic_ids, &partitions);
                debug!(session_id, partitions = partitions.len(), "full fetch");
                Completed {
                    error: ErrorCode::None,
                    session_id,
                    partitions,
                }
            }
            FetchContext::Incremental {
                session_id,
                request_epoch,
                targets,
            } => {
                let Some(session) = self.sessions.get_mut(&session_id) else {
                    // Closed or evicted while this request waited: the client starts over.
                    return Completed {
                        error: ErrorCode::FetchSessionIdNotFound,
                        session_id: INVALID_SESSION_ID,
                        partitions: Vec::new(),
                    };
                };
                let expected = next_epoch(request_epoch);
                if session.epoch != expected {
                    debug!(
                        session_id,
                        expected,
                        epoch = session.epoch,
                        "incremental fetch raced another request on its session"
                    );
                    return Completed {
                        error: ErrorCode::InvalidFetchSessionEpoch,
                        session_id,
                        partitions: Vec::new(),
                    };
                }
                let mut partitions = Vec::new();
                for (target, data) in targets.into_iter().zip(results) {
                    let Some(cached) = session.partitions.get_mut(&target.key) else {
                        continue;
                    };
                    if cached.maybe_update_response_data(&data, true) {
                        if records_size(&data) > 0 {
                            session.move_to_end(&target.key);
                        }
                        partitions.push((target, data));
                    }
                }
                Completed {
                    error: ErrorCode::None,
                    session_id,
                    partitions,
                }
            }
        }
    }

    /// Kafka's `FetchSessionCacheShard.maybeCreateSession`: the new id, or 0 without room.
    fn maybe_create_session(
        &mut self,
        now: i64,
        uses_topic_ids: bool,
        partitions: &[(FetchTarget, PartitionData)],
    ) -> i32 {
        let size = partitions.len();
        if self.sessions.len() >= self.max_entries && !self.try_evict(size, now) {
            debug!(size, "no fetch session created: the cache is full");
            return INVALID_SESSION_ID;
        }
        let id = self.new_session_id();
        let mut session = FetchSession {
            id,
            uses_topic_ids,
            creation_ms: now,
            last_used_ms: now,
            epoch: next_epoch(INITIAL_EPOCH),
            partitions: HashMap::with_capacity(size),
            order: BTreeMap::new(),
            next_seq: 0,
            cached_size: None,
        };
        for (target, data) in partitions {
            session.push(target.key.clone(), |seq| CachedPartition {
                seq,
                params: target.params,
                high_watermark: data.high_watermark,
                local_log_start_offset: data.log_start_offset,
            });
        }
        self.last_used.insert((now, id));
        self.sessions.insert(id, session);
        self.touch(id, now);
        id
    }

    /// A random positive id not in use.
    fn new_session_id(&self) -> i32 {
        loop {
            let b = uuid::Uuid::new_v4().into_bytes();
            let id = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) & i32::MAX;
            if id != INVALID_SESSION_ID && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Kafka's `tryEvict` (for an unprivileged, i.e. consumer, session of `size` partitions):
    /// evict the least recently used session if it is stale, else the smallest evictable
    /// session if it is smaller than the new one.
    fn try_evict(&mut self, size: usize, now: i64) -> bool {
        let Some(&(last_used, oldest)) = self.last_used.first() else {
            return false;
        };
        if now - last_used > self.eviction_ms {
            debug!(session_id = oldest, "evicting a stale fetch session");
            self.remove(oldest);
            self.evictions += 1;
            return true;
        }
        match self.evictable.first() {
            Some(&(evictable_size, id)) if size > evictable_size => {
                debug!(
                    session_id = id,
                    size = evictable_size,
                    new_size = size,
                    "evicting a smaller fetch session"
                );
                self.remove(id);
                self.evictions += 1;
                true
            }
            _ => false,
        }
    }

    /// Removes session `id`; whether it existed.
    pub fn remove(&mut self, id: i32) -> bool {
        let Some(session) = self.sessions.remove(&id) else {
            return false;
        };
        self.last_used.remove(&(session.last_used_ms, id));
        if let Some(size) = session.cached_size {
            self.evictable.remove(&(size, id));
            self.num_partitions -= size;
        }
        true
    }

    /// Kafka's `touch`: records the use time and the session's new size.
    fn touch(&mut self, id: i32, now: i64) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        self.last_used.remove(&(session.last_used_ms, id));
        session.last_used_ms = now;
        self.last_used.insert((now, id));
        if let Some(old) = session.cached_size {
            self.evictable.remove(&(old, id));
            self.num_partitions -= old;
        }
        let size = session.partitions.len();
        session.cached_size = Some(size);
        if now - session.creation_ms > self.eviction_ms {
            self.evictable.insert((size, id));
        }
        self.num_partitions += size;
        debug_assert_eq!(session.id, id);
    }
}
