//! Fetch with long-poll: answer as soon as `min_bytes` are available across the requested
//! partitions, else when `max_wait_ms` runs out. Appends wake waiting fetches through the
//! broker's `data_arrived` notification — no polling loop.
//!
//! Fetch sessions (KIP-227): the session metadata is resolved once per request into a
//! [`FetchContext`] (advancing an incremental session's epoch once), the context's partitions
//! are read on every pass of the long-poll, and the final pass is handed back to the session
//! cache, which creates the session of a full fetch or filters an incremental response down to
//! the partitions with something to say. See `crate::fetch_session`.
//!
//! Zero-copy: a partition's data of at least [`SEND_FROM_FILE_MIN_BYTES`] is not read at all;
//! the answer names a slice of the segment file, which the connection sends with `sendfile`
//! (Kafka's `FileRecords.writeTo`). Only fetches of v10+ take that path: before v10, zstd
//! batches must be refused, which needs the bytes. A read_committed fetch bounds the aborted
//! transactions it reports by the slice's `next_offset`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arus_log::{FileSlice, LogError};
use arus_protocol::messages::FetchRequest;
use arus_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch,
    NodeEndpoint, PartitionData,
};
use arus_protocol::{Bytes, ErrorCode};

use crate::broker::{Broker, now_ms};
use crate::cluster::{Access, ClusterView, LeaderEndpoints, serve_local};
use crate::fetch_session::{FetchContext, FetchTarget, SessionPartition, TopicRef};
use crate::topics::Topic;

/// Whether any batch in `records` is zstd-compressed (attributes' low three bits == 4).
fn contains_zstd(records: &[u8]) -> bool {
    let mut pos = 0usize;
    while let Some(header) = records.get(pos..pos + 23) {
        if header[22] & 0x07 == 4 {
            return true;
        }
        let len = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if len <= 0 {
            return false;
        }
        pos += 12 + len as usize;
    }
    false
}

/// The offset after the last whole batch in `records` (Kafka bounds the aborted
/// transactions it reports by the end of the data it returns).
fn next_offset_after(records: &Bytes) -> Option<i64> {
    arus_records::batches(records.clone())
        .map_while(Result::ok)
        .last()
        .map(|b| b.last_offset() + 1)
}

fn empty_partition(index: i32, code: ErrorCode) -> PartitionData {
    PartitionData {
        partition_index: index,
        error_code: code.code(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Some(Bytes::new()),
        ..Default::default()
    }
}

/// Below this, a partition's data is read into the response: one `write` of a small frame
/// costs less than an extra `sendfile` per partition.
pub const SEND_FROM_FILE_MIN_BYTES: usize = 16 * 1024;

struct Pass {
    /// One answer per target, in order.
    partitions: Vec<PartitionData>,
    /// Data left in the log's files, by partition (see the module doc).
    files: HashMap<SessionPartition, FileSlice>,
    bytes: usize,
    errors: bool,
}

/// What one partition's read found.
enum Found {
    Bytes(Bytes),
    File(FileSlice),
}

impl Found {
    fn len(&self) -> usize {
        match self {
            Found::Bytes(b) => b.len(),
            Found::File(f) => f.len,
        }
    }
}

/// The aborted transactions a read_committed fetch of `[from, to)` reports.
fn aborted(partition: &crate::partition::Partition, from: i64, to: i64) -> Vec<AbortedTransaction> {
    partition
        .aborted_transactions(from, to)
        .into_iter()
        .map(|t| AbortedTransaction {
            producer_id: t.producer_id,
            first_offset: t.first_offset,
            ..Default::default()
        })
        .collect()
}

/// Reads a partition's data: a file slice where the request allows one and it is large
/// enough to be worth a `sendfile`, else the bytes.
fn read_partition(
    partition: &crate::partition::Partition,
    offset: i64,
    limit: usize,
    upper: i64,
    from_file: bool,
) -> Result<Found, LogError> {
    // Small data goes through `read`, which may continue into the next segment (a slice
    // stays in one); the slice's lookup is then done twice, a cost only small fetches pay.
    if from_file
        && let Some(slice) = partition.read_slice(offset, limit, upper)?
        && slice.len >= SEND_FROM_FILE_MIN_BYTES
    {
        return Ok(Found::File(slice));
    }
    partition
        .read(offset, limit, upper)
        .map(|r| Found::Bytes(r.bytes))
}

/// Whether `replica.selector.class` names the rack-aware selector (the one Arus offers). A
/// static key (read-only in Kafka too), validated at start-up: read from the properties, not
/// through the dynamic layers, on every consumer Fetch.
fn rack_aware_selection(broker: &Broker) -> bool {
    broker
        .config
        .explicit
        .get("replica.selector.class")
        .is_some_and(|c| c.trim() == crate::cluster::replica_selector::RACK_AWARE_SELECTOR)
}

/// On the leader: the in-sync follower in the consumer's rack to read from instead, if any
/// (Kafka's `ReplicaManager.findPreferredReadReplica`).
fn preferred_read_replica(
    view: &ClusterView,
    partition: &crate::partition::Partition,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<i32> {
    use crate::cluster::replica_selector::{ReadableReplica, rack_aware};
    if client_rack.is_empty() || !partition.is_leader() {
        return None;
    }
    let rack_of = |id: i32| view.broker(id).and_then(|b| b.rack.clone());
    let leader = ReadableReplica {
        id: view.this_node(),
        rack: rack_of(view.this_node()),
        log_end_offset: partition.log_end_offset(),
        since_caught_up_ms: 0,
    };
    let followers: Vec<ReadableReplica> = partition
        .in_sync_followers_holding(fetch_offset, now_ms())
        .into_iter()
        .filter(|(id, _, _)| view.broker(*id).is_some_and(|b| !b.fenced))
        .map(|(id, log_end_offset, since_caught_up_ms)| ReadableReplica {
            id,
            rack: rack_of(id),
            log_end_offset,
            since_caught_up_ms,
        })
        .collect();
    rack_aware(client_rack, &leader, &followers)
}

/// The replica a fetch comes from (id and broker epoch, -1 before v15), or `None` for a
/// consumer: `replica_state` from v15, `replica_id` before (Kafka's `FetchRequest.replicaId`).
fn replica_of(request: &FetchRequest, version: i16) -> Option<(i32, i64)> {
    let (id, epoch) = if version >= 15 {
        (
            request.replica_state.replica_id,
            request.replica_state.replica_epoch,
        )
    } else {
        (request.replica_id, -1)
    };
    (id >= 0).then_some((id, epoch))
}

/// A follower's fetch tells its leader how far it got (Kafka's
/// `ReplicaManager.updateFollowerFetchState`, once per request, after the first read): the
/// fetch offset is the follower's log end offset. Only partitions read without an error and
/// without a diverging epoch count — a follower whose log diverges has offsets that are not
/// the leader's. Partitions whose leader does not accept this replica (not one of its
/// followers, or a stale broker epoch) are answered NOT_LEADER_OR_FOLLOWER with no data, as
/// Kafka's `withFollowerFetchError`; they are returned, to be refused on later passes too.
fn record_follower_fetches(
    broker: &Arc<Broker>,
    replica: (i32, i64),
    targets: &[FetchTarget],
    pass: &mut Pass,
) -> HashSet<SessionPartition> {
    let mut refused = HashSet::new();
    let now = now_ms();
    let mut advanced = false;
    for (target, data) in targets.iter().zip(pass.partitions.iter_mut()) {
        if data.error_code != ErrorCode::None.code() || data.diverging_epoch.epoch >= 0 {
            continue;
        }
        let topic = match &target.key.topic {
            TopicRef::Id(id) => broker.topics.get_by_id(id),
            TopicRef::Name(name) => broker.topics.get(name),
        };
        let Some(topic) = topic else { continue };
        let Some(partition) = topic.partition(target.key.partition) else {
            continue;
        };
        // Other refusals (not the leader, a fenced epoch) are the read's to report.
        if !partition.is_leader() {
            continue;
        }
        let fetch = arus_replication::FollowerFetch {
            replica_id: replica.0,
            fetch_offset: target.params.fetch_offset,
            log_start_offset: target.params.log_start_offset,
            fetch_time_ms: now,
            broker_epoch: replica.1,
        };
        match partition.record_follower_fetch(fetch) {
            Ok(result) => {
                advanced |= result.high_watermark_advanced;
                if let Some(proposal) = result.alter_partition {
                    crate::isr_updates::submit(broker, partition.clone(), topic.id, proposal);
                }
            }
            Err(e) => {
                tracing::warn!(topic = %partition.topic, partition = partition.index, replica = replica.0, error = %e, "follower fetch refused");
                *data = empty_partition(target.key.partition, e.error_code());
                if let Some(slice) = pass.files.remove(&target.key) {
                    pass.bytes = pass.bytes.saturating_sub(slice.len);
                }
                pass.errors = true;
                refused.insert(target.key.clone());
            }
        }
    }
    // Consumers long-polling at the old high watermark can read on.
    if advanced {
        broker.data_arrived.notify_waiters();
    }
    refused
}

/// Reads every target once, within the request's `max_bytes`. A replica's fetch reads up
/// to the log end (a consumer's up to the high watermark, or the last stable offset).
fn read_once(
    broker: &Broker,
    view: &ClusterView,
    request: &FetchRequest,
    version: i16,
    targets: &[FetchTarget],
    replica: Option<&HashSet<SessionPartition>>,
) -> Pass {
    // (`replica`: the fetch is a follower's; the set holds its partitions already refused.)
    let mut remaining = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let read_committed = request.isolation_level == 1;
    let from_file = version >= 10;
    // KIP-392: a consumer of v11+ (it sends its rack) may read from a follower, and its
    // leader may point it at one (Kafka's `FetchParams.fetchOnlyLeader`).
    let consumer_any_replica = replica.is_none() && version >= 11;
    let selector = consumer_any_replica && rack_aware_selection(broker);
    let mut files = HashMap::new();
    let mut partitions = Vec::with_capacity(targets.len());
    // Consecutive targets usually share a topic: look each run up once.
    let mut looked_up: Option<(&TopicRef, Option<Arc<Topic>>)> = None;
    for target in targets {
        let topic = match &looked_up {
            Some((r, t)) if *r == &target.key.topic => t.clone(),
            _ => {
                let t = match &target.key.topic {
                    TopicRef::Id(id) => broker.topics.get_by_id(id),
                    TopicRef::Name(name) => broker.topics.get(name),
                };
                looked_up = Some((&target.key.topic, t.clone()));
                t
            }
        };
        let index = target.key.partition;
        let fp = &target.params;
        if replica.is_some_and(|refused| refused.contains(&target.key)) {
            errors = true;
            partitions.push(empty_partition(index, ErrorCode::NotLeaderOrFollower));
            continue;
        }
        let Some(topic) = topic else {
            errors = true;
            let code = match target.key.topic {
                TopicRef::Id(_) => ErrorCode::UnknownTopicId,
                TopicRef::Name(_) => ErrorCode::UnknownTopicOrPartition,
            };
            partitions.push(empty_partition(index, code));
            continue;
        };
        // A consumer reads from the leader only (Kafka without a replica selector), and a
        // negative epoch is none (`FetchRequest.optionalEpoch`).
        let epoch = (fp.current_leader_epoch >= 0).then_some(fp.current_leader_epoch);
        let local = topic.partition(index);
        let access = if consumer_any_replica {
            Access::AnyReplica
        } else {
            Access::LeaderOnly
        };
        let served = serve_local(view, topic.id, index, local, epoch, access)
            .and_then(|p| p.check_local_role(epoch, !consumer_any_replica).map(|()| p));
        let partition = match served {
            Ok(p) => p,
            Err(code) => {
                errors = true;
                partitions.push(empty_partition(index, code));
                continue;
            }
        };
        let hw = partition.high_watermark();
        let lso = partition.last_stable_offset().min(hw);
        // read_committed readers stop at the last stable offset (Kafka's FetchIsolation);
        // a replica copies everything up to the log end.
        let upper = if replica.is_some() {
            partition.log_end_offset()
        } else if read_committed {
            lso
        } else {
            hw
        };
        let mut data = PartitionData {
            partition_index: index,
            error_code: ErrorCode::None.code(),
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: partition.log_start_offset(),
            aborted_transactions: if read_committed {
                Some(Vec::new())
            } else {
                None
            },
            records: Some(Bytes::new()),
            ..Default::default()
        };
        if selector
            && let Some(id) =
                preferred_read_replica(view, &partition, &request.rack_id, fp.fetch_offset)
        {
            // As Kafka: no records, the client re-fetches from the replica named.
            data.preferred_read_replica = id;
            partitions.push(data);
            continue;
        }
        let limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
        // Kafka's `HostedPartition.Offline`: the directory failed, even with nothing to read.
        if !partition.is_online() {
            errors = true;
            data.error_code = ErrorCode::KafkaStorageError.code();
            partitions.push(data);
            continue;
        }
        // KIP-320 (Fetch v12+, `last_fetched_epoch` >= 0): Kafka's `Partition.readRecords`
        // checks the fetcher's last epoch against this log before reading; a divergence is
        // answered at once with no records and where the fetcher's epoch ends here.
        if fp.last_fetched_epoch >= 0 {
            match partition.diverging_epoch(fp.fetch_offset, fp.last_fetched_epoch) {
                Ok(None) => {}
                Ok(Some(d)) => {
                    tracing::debug!(topic = %partition.topic, partition = index, fetch_offset = fp.fetch_offset, last_fetched_epoch = fp.last_fetched_epoch, epoch = d.epoch, end_offset = d.end_offset, "fetch: the fetcher's log diverges");
                    errors = true;
                    data.diverging_epoch = EpochEndOffset {
                        epoch: d.epoch,
                        end_offset: d.end_offset,
                        ..Default::default()
                    };
                    partitions.push(data);
                    continue;
                }
                Err(e) => {
                    tracing::debug!(topic = %partition.topic, partition = index, "fetch refused: {e}");
                    errors = true;
                    // As Kafka's `createLogReadResult(e)`: offsets unknown (-1).
                    partitions.push(empty_partition(index, e.error_code()));
                    continue;
                }
            }
        }
        if fp.fetch_offset >= upper
            && fp.fetch_offset <= hw.max(upper)
            && fp.fetch_offset >= partition.log_start_offset()
        {
            partitions.push(data);
            continue;
        }
        match read_partition(&partition, fp.fetch_offset, limit.max(1), upper, from_file) {
            Ok(found) => {
                let len = found.len();
                // KIP-74: an oversized first batch goes out whole only when the response
                // has nothing else yet; later partitions must fit what is left.
                let fits = len <= limit || total == 0;
                if len > 0 && fits && limit > 0 {
                    match found {
                        Found::File(slice) => {
                            if read_committed {
                                data.aborted_transactions =
                                    Some(aborted(&partition, fp.fetch_offset, slice.next_offset));
                            }
                            total += len;
                            remaining = remaining.saturating_sub(len);
                            files.insert(target.key.clone(), slice);
                        }
                        Found::Bytes(bytes) => {
                            if version < 10 && contains_zstd(&bytes) {
                                data.error_code = ErrorCode::UnsupportedCompressionType.code();
                                errors = true;
                            } else {
                                if read_committed && let Some(end) = next_offset_after(&bytes) {
                                    data.aborted_transactions =
                                        Some(aborted(&partition, fp.fetch_offset, end));
                                }
                                total += bytes.len();
                                remaining = remaining.saturating_sub(bytes.len());
                                data.records = Some(bytes);
                            }
                        }
                    }
                }
            }
            Err(LogError::OffsetOutOfRange { .. }) => {
                errors = true;
                data.error_code = ErrorCode::OffsetOutOfRange.code();
            }
            Err(e) => {
                errors = true;
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fetch read failed");
                data.error_code = ErrorCode::KafkaStorageError.code();
            }
        }
        partitions.push(data);
    }
    Pass {
        partitions,
        files,
        bytes: total,
        errors,
    }
}

/// Groups consecutive partitions of one topic into one topic entry, as Kafka's
/// `FetchResponse.of` does.
fn topic_responses(partitions: Vec<(FetchTarget, PartitionData)>) -> Vec<FetchableTopicResponse> {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut current: Option<TopicRef> = None;
    for (target, data) in partitions {
        if current.as_ref() != Some(&target.key.topic) {
            let (topic, topic_id) = match &target.key.topic {
                TopicRef::Id(id) => (String::new(), *id),
                TopicRef::Name(name) => (name.clone(), Default::default()),
            };
            topics.push(FetchableTopicResponse {
                topic,
                topic_id,
                partitions: Vec::new(),
                ..Default::default()
            });
            current = Some(target.key.topic);
        }
        if let Some(t) = topics.last_mut() {
            t.partitions.push(data);
        }
    }
    topics
}

/// Fetch v16+ points the client of a partition led elsewhere to its leader (KIP-951).
const CURRENT_LEADER_MIN_VERSION: i16 = 16;

/// As Kafka's `handleFetchRequest`: each partition refused with NOT_LEADER_OR_FOLLOWER or
/// FENCED_LEADER_EPOCH gets its current leader and epoch, and the response names the
/// endpoints of those leaders on `listener`.
fn refer_to_leaders(
    broker: &Broker,
    view: &ClusterView,
    partitions: &mut [(FetchTarget, PartitionData)],
    listener: &str,
) -> Vec<NodeEndpoint> {
    let refused = [
        ErrorCode::NotLeaderOrFollower.code(),
        ErrorCode::FencedLeaderEpoch.code(),
    ];
    let mut endpoints = LeaderEndpoints::default();
    for (target, data) in partitions.iter_mut() {
        if !refused.contains(&data.error_code) {
            continue;
        }
        let topic_id = match &target.key.topic {
            TopicRef::Id(id) => *id,
            TopicRef::Name(name) => match broker.topics.get(name) {
                Some(t) => t.id,
                None => continue,
            },
        };
        let (leader_id, leader_epoch) =
            endpoints.refer(view, topic_id, target.key.partition, listener);
        data.current_leader = LeaderIdAndEpoch {
            leader_id,
            leader_epoch,
            ..Default::default()
        };
    }
    endpoints
        .into_nodes()
        .map(|n| NodeEndpoint {
            node_id: n.id,
            host: n.host,
            port: n.port,
            rack: n.rack,
            ..Default::default()
        })
        .collect()
}

/// The response, and for each of its partitions in order, the file slice its records are to
/// be sent from (see [`crate::Outcome::RespondWithFiles`]). `listener`: the name of the
/// listener the request came in on, whose endpoints KIP-951's `NodeEndpoints` name.
pub async fn handle(
    broker: &Arc<Broker>,
    request: FetchRequest,
    version: i16,
    listener: &str,
) -> (FetchResponse, Vec<Option<FileSlice>>) {
    let context = broker
        .fetch_sessions
        .lock()
        .new_context(&request, version, now_ms());
    if let FetchContext::SessionError(code) = context {
        let response = FetchResponse {
            error_code: code.code(),
            session_id: 0,
            ..Default::default()
        };
        return (response, Vec::new());
    }
    // One view for the whole long-poll: a leadership change meanwhile is seen by the
    // client's next fetch.
    let view = broker.cluster.current();
    let replica = replica_of(&request, version);
    // A follower's partitions its leader refused (known after the first read).
    let mut refused: Option<HashSet<SessionPartition>> = replica.map(|_| HashSet::new());
    let mut recorded = false;
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let pass = loop {
        // Register for the wake-up before reading, so an append between the read and the
        // wait is not missed.
        let notified = broker.data_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // An incremental fetch re-reads all of its session's partitions on every pass; the
        // session itself (and its epoch) is only touched before the first and after the last.
        let mut pass = read_once(
            broker,
            &view,
            &request,
            version,
            context.targets(),
            refused.as_ref(),
        );
        if let Some(replica) = replica
            && !recorded
        {
            recorded = true;
            refused = Some(record_follower_fetches(
                broker,
                replica,
                context.targets(),
                &mut pass,
            ));
        }
        if pass.bytes >= min_bytes
            || pass.errors
            || context.targets().is_empty()
            || tokio::time::Instant::now() >= deadline
        {
            break pass;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    };
    let mut files = pass.files;
    let completed = broker.fetch_sessions.lock().complete_with_files(
        context,
        pass.partitions,
        |key| files.get(key).map_or(0, |f| f.len),
        now_ms(),
    );
    // An incremental session may leave partitions out; the slices follow the partitions
    // that remain, in response order (topic_responses keeps the order).
    let slices = completed
        .partitions
        .iter()
        .map(|(target, _)| files.remove(&target.key))
        .collect();
    let mut partitions = completed.partitions;
    let node_endpoints = if version >= CURRENT_LEADER_MIN_VERSION {
        refer_to_leaders(broker, &view, &mut partitions, listener)
    } else {
        Vec::new()
    };
    let response = FetchResponse {
        error_code: completed.error.code(),
        session_id: completed.session_id,
        responses: topic_responses(partitions),
        node_endpoints,
        ..Default::default()
    };
    (response, slices)
}

/// Puts the data of `files` (from [`handle`]) into the response's records, for callers that
/// cannot send from files. A slice that cannot be read makes its partition a
/// KAFKA_STORAGE_ERROR, as a failed read does.
pub fn read_files_in(response: &mut FetchResponse, files: Vec<Option<FileSlice>>) {
    let partitions = response
        .responses
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut());
    for (data, file) in partitions.zip(files) {
        let Some(slice) = file else { continue };
        match slice.read_to_bytes() {
            Ok(bytes) => data.records = Some(bytes),
            Err(e) => {
                tracing::error!(path = %slice.path.display(), error = %e, "fetch read failed");
                data.error_code = ErrorCode::KafkaStorageError.code();
                data.records = Some(Bytes::new());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::contains_zstd;
    use arus_protocol::Bytes;

    #[test]
    fn next_offset_after_walks_whole_batches() {
        let mut a = vec![0u8; 61];
        a[0..8].copy_from_slice(&10i64.to_be_bytes());
        a[8..12].copy_from_slice(&49i32.to_be_bytes());
        a[16] = 2; // magic
        a[23..27].copy_from_slice(&4i32.to_be_bytes());
        let mut b = a.clone();
        b[0..8].copy_from_slice(&15i64.to_be_bytes());
        b[23..27].copy_from_slice(&0i32.to_be_bytes());
        let next = |v: &[u8]| super::next_offset_after(&Bytes::copy_from_slice(v));
        assert_eq!(next(&a), Some(15));
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert_eq!(next(&both), Some(16));
        // A partial trailing batch does not count.
        assert_eq!(next(&both[..100]), Some(15));
        assert_eq!(next(&[]), None);
    }

    #[test]
    fn zstd_detection_walks_batches() {
        let mut a = vec![0u8; 61];
        a[8..12].copy_from_slice(&49i32.to_be_bytes());
        let mut b = a.clone();
        b[22] = 4;
        assert!(!contains_zstd(&a));
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert!(contains_zstd(&both));
    }
}
