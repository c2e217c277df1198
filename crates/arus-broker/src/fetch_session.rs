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
    /// `records` is the size of the data returned, which may be left in a file (zero-copy
    /// fetch) rather than in `resp.records`.
    fn maybe_update_response_data(
        &mut self,
        resp: &PartitionData,
        records: usize,
        update: bool,
    ) -> bool {
        let mut must_respond = false;
        if records > 0 {
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
        self.complete_with_files(context, results, |_| 0, now)
    }

    /// [`FetchSessionCache::complete`] for answers some of whose data stays in the log's
    /// files: `file_bytes(partition)` is the size of that data.
    pub fn complete_with_files(
        &mut self,
        context: FetchContext,
        results: Vec<PartitionData>,
        file_bytes: impl Fn(&SessionPartition) -> usize,
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
                    let records = records_size(&data) + file_bytes(&target.key);
                    if cached.maybe_update_response_data(&data, records, true) {
                        if records > 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::Bytes;
    use arus_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};

    /// A v12 (topic names) request.
    fn req(
        session_id: i32,
        epoch: i32,
        parts: &[(&str, i32, i64)],
        forgotten: &[(&str, i32)],
    ) -> FetchRequest {
        FetchRequest {
            session_id,
            session_epoch: epoch,
            topics: parts
                .iter()
                .map(|(t, p, off)| FetchTopic {
                    topic: t.to_string(),
                    partitions: vec![FetchPartition {
                        partition: *p,
                        fetch_offset: *off,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
            forgotten_topics_data: forgotten
                .iter()
                .map(|(t, p)| ForgottenTopic {
                    topic: t.to_string(),
                    partitions: vec![*p],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn key(t: &str, p: i32) -> SessionPartition {
        SessionPartition {
            topic: TopicRef::Name(t.into()),
            partition: p,
        }
    }

    fn data(hw: i64, log_start: i64, records: usize, error: ErrorCode) -> PartitionData {
        PartitionData {
            error_code: error.code(),
            high_watermark: hw,
            last_stable_offset: hw,
            log_start_offset: log_start,
            records: Some(Bytes::from(vec![0u8; records])),
            ..Default::default()
        }
    }

    fn ok(hw: i64) -> PartitionData {
        data(hw, 0, 0, ErrorCode::None)
    }

    /// Runs a request through the cache with the given per-target answers.
    fn run(
        cache: &mut FetchSessionCache,
        r: &FetchRequest,
        now: i64,
        answer: impl Fn(&FetchTarget) -> PartitionData,
    ) -> Completed {
        let ctx = cache.new_context(r, 12, now);
        let results = ctx.targets().iter().map(answer).collect();
        cache.complete(ctx, results, now)
    }

    fn keys(c: &Completed) -> Vec<SessionPartition> {
        c.partitions.iter().map(|(t, _)| t.key.clone()).collect()
    }

    /// Creates a session on `parts` (all at high watermark 10) and returns its id.
    fn create(cache: &mut FetchSessionCache, parts: &[(&str, i32, i64)], now: i64) -> i32 {
        let c = run(cache, &req(0, 0, parts, &[]), now, |_| ok(10));
        assert_eq!(c.error, ErrorCode::None);
        c.session_id
    }

    #[test]
    fn next_epoch_wraps_and_final_stays_final() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(5), 6);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(-1), -1);
    }

    #[test]
    fn sessionless_full_fetch_creates_nothing() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let c = run(&mut cache, &req(0, -1, &[("a", 0, 0)], &[]), 0, |_| ok(10));
        assert_eq!(c.session_id, 0);
        assert_eq!(c.error, ErrorCode::None);
        assert_eq!(keys(&c), vec![key("a", 0)]);
        assert!(cache.is_empty());
    }

    #[test]
    fn full_fetch_creates_a_session_answering_every_partition() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let c = run(
            &mut cache,
            &req(0, 0, &[("a", 0, 0), ("a", 1, 0), ("b", 0, 0)], &[]),
            0,
            |_| ok(10),
        );
        assert_ne!(c.session_id, 0);
        assert!(c.session_id > 0);
        assert_eq!(c.partitions.len(), 3);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.total_partitions(), 3);
        assert_eq!(cache.expected_epoch(c.session_id), Some(1));
    }

    #[test]
    fn repeated_partition_keeps_first_position_and_last_params() {
        let r = req(0, 0, &[("a", 0, 1), ("b", 0, 0), ("a", 0, 7)], &[]);
        let t = request_targets(&r, 12);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].key, key("a", 0));
        assert_eq!(t[0].params.fetch_offset, 7);
    }

    #[test]
    fn incremental_fetch_omits_unchanged_partitions() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0), ("a", 1, 0)], 0);
        // Nothing changed: an empty response, the epoch advances.
        let c = run(&mut cache, &req(id, 1, &[], &[]), 1, |_| ok(10));
        assert_eq!((c.error, c.session_id), (ErrorCode::None, id));
        assert!(c.partitions.is_empty());
        assert_eq!(cache.expected_epoch(id), Some(2));
        // A high watermark moved on a-1 only.
        let c = run(&mut cache, &req(id, 2, &[], &[]), 2, |t| {
            ok(if t.key.partition == 1 { 11 } else { 10 })
        });
        assert_eq!(keys(&c), vec![key("a", 1)]);
        // ... and is not repeated.
        let c = run(&mut cache, &req(id, 3, &[], &[]), 3, |t| {
            ok(if t.key.partition == 1 { 11 } else { 10 })
        });
        assert!(c.partitions.is_empty());
    }

    #[test]
    fn records_log_start_and_errors_are_always_answered() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)], 0);
        let c = run(&mut cache, &req(id, 1, &[], &[]), 1, |t| {
            match t.key.partition {
                0 => data(10, 0, 5, ErrorCode::None),
                1 => data(10, 3, 0, ErrorCode::None),
                _ => data(10, 0, 0, ErrorCode::OffsetOutOfRange),
            }
        });
        assert_eq!(keys(&c), vec![key("a", 0), key("a", 1), key("a", 2)]);
        // Records again on a-0 (moved to the end of the session after its records); the error
        // persists on a-2 and is repeated.
        let c = run(&mut cache, &req(id, 2, &[], &[]), 2, |t| {
            match t.key.partition {
                0 => data(10, 0, 5, ErrorCode::None),
                1 => data(10, 3, 0, ErrorCode::None),
                _ => data(10, 0, 0, ErrorCode::OffsetOutOfRange),
            }
        });
        assert_eq!(keys(&c), vec![key("a", 2), key("a", 0)]);
        // The error clears with an unchanged high watermark: answered once more (Kafka resets
        // the cached high watermark on error), then quiet.
        let quiet = |t: &FetchTarget| {
            data(
                10,
                if t.key.partition == 1 { 3 } else { 0 },
                0,
                ErrorCode::None,
            )
        };
        let c = run(&mut cache, &req(id, 3, &[], &[]), 3, quiet);
        assert_eq!(keys(&c), vec![key("a", 2)]);
        let c = run(&mut cache, &req(id, 4, &[], &[]), 4, quiet);
        assert!(c.partitions.is_empty());
    }

    #[test]
    fn partitions_with_records_move_to_the_end() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)], 0);
        run(&mut cache, &req(id, 1, &[], &[]), 1, |t| {
            data(
                10,
                0,
                if t.key.partition == 0 { 5 } else { 0 },
                ErrorCode::None,
            )
        });
        assert_eq!(
            cache.session_partitions(id).unwrap(),
            vec![key("a", 1), key("a", 2), key("a", 0)]
        );
    }

    #[test]
    fn incremental_fetch_adds_updates_and_forgets() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0), ("a", 1, 0)], 0);
        // Add b-0, move a-0's offset, forget a-1.
        let ctx = cache.new_context(&req(id, 1, &[("a", 0, 5), ("b", 0, 0)], &[("a", 1)]), 12, 1);
        let targets = ctx.targets().to_vec();
        assert_eq!(
            targets.iter().map(|t| t.key.clone()).collect::<Vec<_>>(),
            vec![key("a", 0), key("b", 0)]
        );
        assert_eq!(targets[0].params.fetch_offset, 5);
        let c = cache.complete(ctx, vec![ok(10), ok(10)], 1);
        // b-0 is new (its cached high watermark is unknown), a-0 unchanged.
        assert_eq!(keys(&c), vec![key("b", 0)]);
        assert_eq!(cache.total_partitions(), 2);
        // Later requests read a-0 from the remembered offset 5.
        let ctx = cache.new_context(&req(id, 2, &[], &[]), 12, 2);
        assert_eq!(ctx.targets()[0].params.fetch_offset, 5);
    }

    #[test]
    fn forgetting_every_partition_closes_the_session() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0)], 0);
        let c = run(&mut cache, &req(id, 1, &[], &[("a", 0)]), 1, |_| ok(10));
        assert_eq!((c.error, c.session_id), (ErrorCode::None, 0));
        assert!(cache.is_empty());
        assert_eq!(cache.total_partitions(), 0);
    }

    #[test]
    fn wrong_epoch_and_unknown_id_are_session_errors() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0)], 0);
        let c = run(&mut cache, &req(id, 5, &[], &[]), 1, |_| ok(10));
        assert_eq!(
            (c.error, c.session_id),
            (ErrorCode::InvalidFetchSessionEpoch, 0)
        );
        assert!(c.partitions.is_empty());
        // The session survives and still expects epoch 1.
        assert_eq!(cache.expected_epoch(id), Some(1));
        let other = if id == i32::MAX { 1 } else { id + 1 };
        let c = run(&mut cache, &req(other, 1, &[], &[]), 1, |_| ok(10));
        assert_eq!(c.error, ErrorCode::FetchSessionIdNotFound);
        // Session id 0 with a positive epoch names no session either.
        let c = run(&mut cache, &req(0, 1, &[], &[]), 1, |_| ok(10));
        assert_eq!(c.error, ErrorCode::FetchSessionIdNotFound);
        // Replaying an epoch already used is rejected.
        run(&mut cache, &req(id, 1, &[], &[]), 2, |_| ok(10));
        let c = run(&mut cache, &req(id, 1, &[], &[]), 3, |_| ok(10));
        assert_eq!(c.error, ErrorCode::InvalidFetchSessionEpoch);
    }

    #[test]
    fn topic_id_use_must_match_the_session() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0)], 0);
        let ctx = cache.new_context(&req(id, 1, &[], &[]), 13, 1);
        assert!(matches!(
            ctx,
            FetchContext::SessionError(ErrorCode::FetchSessionTopicIdError)
        ));
    }

    #[test]
    fn topic_id_sessions_key_partitions_by_id() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let tid = Uuid([7; 16]);
        let mut r = req(0, 0, &[("ignored", 0, 0)], &[]);
        r.topics[0].topic_id = tid;
        let ctx = cache.new_context(&r, 13, 0);
        let c = cache.complete(ctx, vec![ok(10)], 0);
        let id = c.session_id;
        assert_eq!(c.partitions[0].0.key.topic, TopicRef::Id(tid));
        let mut forget = req(id, 1, &[], &[("", 0)]);
        forget.forgotten_topics_data[0].topic_id = tid;
        let ctx = cache.new_context(&forget, 13, 1);
        assert!(matches!(ctx, FetchContext::Sessionless { .. }));
        assert!(cache.is_empty());
    }

    #[test]
    fn final_epoch_closes_and_initial_epoch_replaces() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0)], 0);
        // (id, 0): close id, open a new session.
        let c = run(&mut cache, &req(id, 0, &[("a", 0, 0)], &[]), 1, |_| ok(10));
        assert_ne!(c.session_id, 0);
        assert_ne!(c.session_id, id);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.expected_epoch(id), None);
        // (id, -1): close, answer sessionless.
        let c = run(
            &mut cache,
            &req(c.session_id, -1, &[("a", 0, 0)], &[]),
            2,
            |_| ok(10),
        );
        assert_eq!(c.session_id, 0);
        assert_eq!(keys(&c), vec![key("a", 0)]);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_request_racing_on_its_session_gets_invalid_epoch() {
        let mut cache = FetchSessionCache::new(10, 1000);
        let id = create(&mut cache, &[("a", 0, 0)], 0);
        let first = cache.new_context(&req(id, 1, &[], &[]), 12, 1);
        // A second request on epoch 2 is accepted while the first still waits.
        let second = cache.new_context(&req(id, 2, &[], &[]), 12, 1);
        let c = cache.complete(first, vec![ok(11)], 2);
        assert_eq!(
            (c.error, c.session_id),
            (ErrorCode::InvalidFetchSessionEpoch, id)
        );
        let c = cache.complete(second, vec![ok(11)], 2);
        assert_eq!(c.error, ErrorCode::None);
        assert_eq!(c.partitions.len(), 1);
    }

    #[test]
    fn a_full_cache_creates_no_session() {
        let mut cache = FetchSessionCache::new(2, 1000);
        create(&mut cache, &[("a", 0, 0)], 0);
        create(&mut cache, &[("a", 0, 0)], 0);
        // Same size, nothing stale: no room.
        let c = run(&mut cache, &req(0, 0, &[("a", 0, 0)], &[]), 10, |_| ok(10));
        assert_eq!(c.session_id, 0);
        assert_eq!(c.partitions.len(), 1);
        // Bigger, but the existing sessions are younger than the eviction time: still no room.
        let c = run(
            &mut cache,
            &req(0, 0, &[("a", 0, 0), ("a", 1, 0)], &[]),
            10,
            |_| ok(10),
        );
        assert_eq!(c.session_id, 0);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.evictions(), 0);
    }

    #[test]
    fn a_stale_session_is_evicted_first() {
        let mut cache = FetchSessionCache::new(2, 1000);
        let old = create(&mut cache, &[("a", 0, 0), ("a", 1, 0)], 0);
        let recent = create(&mut cache, &[("a", 0, 0), ("a", 1, 0)], 500);
        // At 1001 `old` has been idle for more than 1000 ms.
        let new = create(&mut cache, &[("a", 0, 0)], 1001);
        assert_ne!(new, 0);
        assert_eq!(cache.expected_epoch(old), None);
        assert!(cache.expected_epoch(recent).is_some());
        assert_eq!(cache.evictions(), 1);
        assert_eq!(cache.total_partitions(), 3);
    }

    #[test]
    fn a_bigger_session_evicts_the_smallest_old_one() {
        let mut cache = FetchSessionCache::new(2, 1000);
        let small = create(&mut cache, &[("a", 0, 0)], 0);
        let big = create(&mut cache, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)], 0);
        // Both are in use (not stale) but were created more than 1000 ms ago.
        run(&mut cache, &req(small, 1, &[], &[]), 1500, |_| ok(10));
        run(&mut cache, &req(big, 1, &[], &[]), 1500, |_| ok(10));
        // Two partitions: more than `small`, fewer than `big`.
        let new = create(&mut cache, &[("b", 0, 0), ("b", 1, 0)], 1600);
        assert_ne!(new, 0);
        assert_eq!(cache.expected_epoch(small), None);
        assert!(cache.expected_epoch(big).is_some());
        // One partition cannot evict anything now.
        let c = run(&mut cache, &req(0, 0, &[("c", 0, 0)], &[]), 1700, |_| {
            ok(10)
        });
        assert_eq!(c.session_id, 0);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_zero_slot_cache_never_creates_sessions() {
        let mut cache = FetchSessionCache::new(0, 1000);
        let c = run(&mut cache, &req(0, 0, &[("a", 0, 0)], &[]), 0, |_| ok(10));
        assert_eq!(c.session_id, 0);
        assert!(cache.is_empty());
    }
}
