//! Produce: validate each partition's record set, append it, and answer per `acks`:
//! 0 — no response (a failure closes the connection, the only signal such a producer gets);
//! 1 — after the append; -1 (all) — after the append is fsynced (group commit), bounded by
//! the request's `timeout_ms` — unless `arus.acks.all.fsync=false`, which answers acks=all like
//! acks=1 (Kafka's own single-node behaviour with its default flush settings).

use std::sync::Arc;
use std::time::Duration;

use arus_log::LogError;
use arus_protocol::messages::ProduceRequest;
use arus_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    ProduceResponse, TopicProduceResponse,
};
use arus_protocol::{Bytes, ErrorCode, Response};
use arus_records::{
    Compression, DEFAULT_DECOMPRESSION_LIMIT, RecordError, TimestampType, ValidationConfig,
    ValidationError, recompress, set_log_append_time, validate_produce,
};
use tracing::{debug, warn};

use crate::broker::{Broker, Outcome, now_ms};
use crate::cluster::{Access, ClusterView, LeaderEndpoints, serve_local};
use crate::partition::Partition;
use crate::topic_settings::TopicSettings;
use crate::topics::is_internal_topic;

/// Why one partition's data was refused.
struct Refusal {
    code: ErrorCode,
    message: String,
    /// Per-record errors (Produce v8+ `record_errors`): index within the batch, message.
    record_errors: Vec<(usize, String)>,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            record_errors: Vec::new(),
        }
    }
}

fn validation_refusal(e: &ValidationError) -> Refusal {
    Refusal {
        code: ErrorCode::from_code(e.kafka_error_code()).unwrap_or(ErrorCode::CorruptMessage),
        message: e.to_string(),
        record_errors: e
            .record_errors()
            .iter()
            .map(|r| (r.index, r.message.clone()))
            .collect(),
    }
}

thread_local! {
    /// The bytes being appended, one buffer per worker thread, reused: `prepare` fills it and
    /// the append consumes it within the same synchronous step of the handler (no await in
    /// between), so it is never shared — and a produce does not allocate (and fault in) fresh
    /// memory the size of its data.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer larger than this is not kept after use (a rare huge batch should not pin
/// its size per thread).
const SCRATCH_KEEP_BYTES: usize = 8 * 1024 * 1024;

/// A partition's validated record set; its bytes, ready to append, are in the scratch buffer.
struct Prepared {
    records: u64,
    /// Producer id and epoch of a transactional record set (its batches all share them;
    /// clients never mix producers in one partition's data).
    transactional: Option<(i64, i16)>,
}

/// Validates and, where the topic asks for it, rewrites the record set into the exact bytes
/// to append.
fn prepare(
    records: Bytes,
    settings: &TopicSettings,
    version: i16,
    now: i64,
    out: &mut Vec<u8>,
) -> Result<Prepared, Refusal> {
    let cfg = ValidationConfig {
        max_message_bytes: settings.max_message_bytes,
        require_keys: settings.compacted,
        timestamp_before_max_ms: settings.timestamp_before_max_ms,
        timestamp_after_max_ms: settings.timestamp_after_max_ms,
        now_ms: now,
        timestamp_type: settings.timestamp_type,
    };
    let validated = validate_produce(records, &cfg).map_err(|e| validation_refusal(&e))?;
    out.clear();
    out.reserve(validated.total_bytes);
    let mut transactional = None;
    for batch in &validated.batches {
        if batch.is_transactional() {
            transactional = Some((batch.producer_id(), batch.producer_epoch()));
        }
        let codec = batch
            .compression()
            .map_err(|e| Refusal::new(ErrorCode::CorruptMessage, e.to_string()))?;
        if codec == Compression::Zstd && version < 7 {
            return Err(Refusal::new(
                ErrorCode::UnsupportedCompressionType,
                "zstd compression requires Produce v7 or later",
            ));
        }
        let start = out.len();
        match settings.compression {
            Some(target) if target != codec => {
                // Stored uncompressed, the records are the batch: they may not expand past
                // max.message.bytes. Recompressed, the expansion streams through (bounded for
                // CPU) and the new batch's size is checked as Kafka's UnifiedLog.append does.
                let max = settings.max_message_bytes;
                let limit = if target == Compression::None {
                    max
                } else {
                    DEFAULT_DECOMPRESSION_LIMIT
                };
                let too_large = |size: String| {
                    Refusal::new(
                        ErrorCode::MessageTooLarge,
                        format!(
                            "Message batch size is {size} bytes after recompression to {target}, which exceeds the maximum configured size of {max}."
                        ),
                    )
                };
                let rebuilt = recompress(batch, target, limit).map_err(|e| match e {
                    RecordError::DecompressionLimit { .. } if target == Compression::None => {
                        too_large(format!("more than {limit}"))
                    }
                    e => Refusal::new(ErrorCode::CorruptMessage, e.to_string()),
                })?;
                if rebuilt.len() > max {
                    return Err(too_large(rebuilt.len().to_string()));
                }
                out.extend_from_slice(&rebuilt);
            }
            _ => out.extend_from_slice(batch.as_bytes()),
        }
        if settings.timestamp_type == TimestampType::LogAppendTime {
            set_log_append_time(&mut out[start..], now);
        }
    }
    Ok(Prepared {
        records: validated.record_count,
        transactional,
    })
}

/// Maps a failed append to the producer's error: idempotence and transaction rules keep
/// Kafka's codes, anything else is a storage failure.
fn append_refusal(e: LogError) -> Refusal {
    match &e {
        LogError::Producer(p) => Refusal::new(
            ErrorCode::from_code(p.kafka_error_code()).unwrap_or(ErrorCode::UnknownServerError),
            e.to_string(),
        ),
        _ => Refusal::new(ErrorCode::KafkaStorageError, e.to_string()),
    }
}

/// Validates one partition's record set into `out`, checks a transactional write with the
/// coordinator, and appends. Returns the append and the LogAppendTime to report (-1 if the
/// topic uses CreateTime).
/// `added`: for Produce v12+, the code of the implicit add of this partition to the
/// producer's transaction ([`add_transactional_partitions`]), which replaces verification.
#[allow(clippy::too_many_arguments)]
fn prepare_and_append(
    broker: &Broker,
    partition: &Partition,
    topic: &str,
    records: Bytes,
    settings: &TopicSettings,
    (version, now): (i16, i64),
    added: Option<ErrorCode>,
    out: &mut Vec<u8>,
) -> Result<(arus_log::AppendInfo, i64), Refusal> {
    let prepared = prepare(records, settings, version, now, out)?;
    if let Some((producer_id, epoch)) = prepared.transactional {
        // KIP-890 verification: a transactional write is accepted only for a partition the
        // producer's ongoing transaction has added.
        let code = match added {
            Some(code) => code,
            None => broker
                .txns
                .verify_produce(producer_id, epoch, topic, partition.index),
        };
        if code != ErrorCode::None {
            return Err(Refusal::new(
                code,
                format!(
                    "transactional write of producer {producer_id} (epoch {epoch}) refused by the transaction coordinator"
                ),
            ));
        }
    }
    let info = partition
        .append(out, prepared.records, now)
        .map_err(append_refusal)?;
    let log_append_time = if settings.timestamp_type == TimestampType::LogAppendTime {
        now
    } else {
        -1
    };
    Ok((info, log_append_time))
}

struct Appended {
    partition: Arc<Partition>,
    end_offset: i64,
}

/// The producer id and epoch of a record set whose first batch is transactional, read from
/// the batch header (magic 2) before validation, as Kafka's ReplicaManager does to decide
/// what to send to the transaction coordinator. Anything malformed is left to validation.
fn transactional_header(records: &Bytes) -> Option<(i64, i16)> {
    const MAGIC: usize = 16;
    const ATTRIBUTES: usize = 21;
    const PRODUCER_ID: usize = 43;
    const PRODUCER_EPOCH: usize = 51;
    const TRANSACTIONAL: i16 = 0x10;
    let b = records.get(..PRODUCER_EPOCH + 2)?;
    if b[MAGIC] != 2 {
        return None;
    }
    let attributes = i16::from_be_bytes([b[ATTRIBUTES], b[ATTRIBUTES + 1]]);
    if attributes & TRANSACTIONAL == 0 {
        return None;
    }
    let pid = i64::from_be_bytes(b[PRODUCER_ID..PRODUCER_ID + 8].try_into().ok()?);
    let epoch = i16::from_be_bytes([b[PRODUCER_EPOCH], b[PRODUCER_EPOCH + 1]]);
    Some((pid, epoch))
}

/// Produce v12+ (transactions v2): adds every partition of the request holding
/// transactional batches to the producer's transaction before anything is appended
/// (KIP-890 part 2; the client no longer sends AddPartitionsToTxn). Returns the add's code
/// per (topic, partition); partitions of unknown topics are left to the main loop. Before
/// v12, the same partitions are verified with the transaction coordinator when it is
/// another node (KIP-890 part 1; a local one is read at append time, no code here). The
/// returned guards ([`crate::txn::TxnDriver::produce_order`]) must be held until the
/// batches are appended.
async fn add_transactional_partitions<'a>(
    broker: &'a Arc<Broker>,
    view: &ClusterView,
    request: &ProduceRequest,
    version: i16,
) -> (
    std::collections::HashMap<(String, i32), ErrorCode>,
    Vec<tokio::sync::MutexGuard<'a, ()>>,
) {
    let mut by_producer: std::collections::BTreeMap<(i64, i16), Vec<arus_txn::TopicPartition>> =
        std::collections::BTreeMap::new();
    for t in &request.topic_data {
        // v13+ names topics by id only; the add needs the name.
        let topic = if version >= 13 {
            broker.topics.get_by_id(&t.topic_id)
        } else {
            broker.topics.get(&t.name)
        };
        let Some(topic) = topic else { continue };
        if is_internal_topic(&topic.name) {
            continue;
        }
        for p in &t.partition_data {
            // A partition led elsewhere is refused without touching the transaction.
            if serve_local(
                view,
                topic.id,
                p.index,
                topic.partition(p.index),
                None,
                Access::LeaderOnly,
            )
            .is_err()
            {
                continue;
            }
            if let Some(header) = p.records.as_ref().and_then(transactional_header) {
                by_producer
                    .entry(header)
                    .or_default()
                    .push(arus_txn::TopicPartition::new(topic.name.clone(), p.index));
            }
        }
    }
    // Taken before any await, in a fixed order (by producer id), so that requests of the
    // same producer queue in arrival order and two requests never wait on each other.
    let mut guards = Vec::new();
    let mut pids: Vec<i64> = if version >= 12 {
        by_producer.keys().map(|(pid, _)| *pid).collect()
    } else {
        Vec::new()
    };
    pids.dedup();
    let mut shards_taken = std::collections::BTreeSet::new();
    for pid in pids {
        if shards_taken.insert(pid.rem_euclid(crate::txn::PRODUCE_ORDER_SHARDS as i64)) {
            guards.push(broker.txns.produce_order(pid).await);
        }
    }
    let mut codes = std::collections::HashMap::new();
    if version < 12 {
        // KIP-890 part 1: verification, asked of the coordinator when it is another node
        // (a local coordinator is read when the batch is appended).
        for ((pid, epoch), partitions) in by_producer {
            let verified = broker
                .txns
                .verify_elsewhere(
                    broker,
                    request.transactional_id.as_deref(),
                    pid,
                    epoch,
                    &partitions,
                    version <= 10,
                )
                .await;
            for (tp, code) in verified.into_iter().flatten() {
                codes.insert((tp.topic, tp.partition), code);
            }
        }
        return (codes, guards);
    }
    for ((pid, epoch), partitions) in by_producer {
        let code = broker
            .txns
            .add_for_produce(
                broker,
                request.transactional_id.as_deref(),
                pid,
                epoch,
                &partitions,
            )
            .await;
        for tp in partitions {
            codes.insert((tp.topic, tp.partition), code);
        }
    }
    (codes, guards)
}

/// Produce v10+ points the client of a partition led elsewhere to its leader (KIP-951).
const CURRENT_LEADER_MIN_VERSION: i16 = 10;

/// `listener`: the name of the listener the request came in on, whose endpoints KIP-951's
/// `NodeEndpoints` name.
pub async fn handle(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    version: i16,
    listener: &str,
) -> Outcome {
    let acks = request.acks;
    let view = broker.cluster.current();
    let mut leader_endpoints = LeaderEndpoints::default();
    let (added, order_guards) =
        add_transactional_partitions(broker, &view, &request, version).await;
    let now = now_ms();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut appended: Vec<(usize, usize, Appended)> = Vec::new();
    let mut any_error: Option<String> = None;
    let valid_acks = matches!(acks, -1..=1);

    for (ti, mut topic_data) in request.topic_data.into_iter().enumerate() {
        // v13+ names topics by id (KIP-516). As Kafka's handleProduceRequest, an id this
        // broker does not know is UNKNOWN_TOPIC_ID for each of its partitions; a known one is
        // handled under its name from then on.
        let by_id = version >= 13;
        let topic = if by_id {
            broker.topics.get_by_id(&topic_data.topic_id)
        } else {
            broker.topics.get(&topic_data.name)
        };
        if let Some(t) = topic.as_ref().filter(|_| by_id) {
            topic_data.name = t.name.clone();
        }
        let unknown_id = by_id && topic.is_none();
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for (pi, data) in topic_data.partition_data.into_iter().enumerate() {
            let mut resp = PartitionProduceResponse {
                index: data.index,
                base_offset: -1,
                ..Default::default()
            };
            let result = (|| {
                // Sorted out before the append, as Kafka's request handler does.
                if unknown_id {
                    return Err(Refusal::new(
                        ErrorCode::UnknownTopicId,
                        "This server does not host this topic ID.",
                    ));
                }
                if !valid_acks {
                    return Err(Refusal::new(
                        ErrorCode::InvalidRequiredAcks,
                        format!("acks must be -1, 0 or 1, got {acks}"),
                    ));
                }
                // Kafka's ReplicaManager.appendToLocalLog: only the coordinators append to
                // internal topics (a forged record would load as someone's offset or
                // transaction state).
                if is_internal_topic(&topic_data.name) {
                    return Err(Refusal::new(
                        ErrorCode::InvalidTopicException,
                        format!("Cannot append to internal topic {}", topic_data.name),
                    ));
                }
                let unknown = || {
                    Refusal::new(
                        ErrorCode::UnknownTopicOrPartition,
                        "This server does not host this topic-partition.",
                    )
                };
                let t = topic.as_ref().ok_or_else(unknown)?;
                // Before anything reads or writes the local log: this node may hold no
                // replica of it at all.
                // Kafka's `leaderLogIfLocal`: the replica itself must lead (the view may name
                // this node before the role, and the epoch the batches are stamped with, is
                // applied).
                let partition = serve_local(
                    &view,
                    t.id,
                    data.index,
                    t.partition(data.index),
                    None,
                    Access::LeaderOnly,
                )
                .and_then(|p| p.check_local_role(None, true).map(|()| p))
                .map_err(|code| match code {
                    ErrorCode::UnknownTopicOrPartition => unknown(),
                    code => Refusal::new(
                        code,
                        format!(
                            "Leader not local for partition {}-{} on broker {}",
                            topic_data.name,
                            data.index,
                            view.this_node()
                        ),
                    ),
                })?;
                // Kafka's `appendRecordsToLeader`: acks=all below min.insync.replicas is
                // refused before anything is written.
                partition.check_enough_replicas(acks).map_err(|e| {
                    Refusal::new(
                        e.error_code(),
                        format!("{e} for partition {}-{}", topic_data.name, data.index),
                    )
                })?;
                let records = data
                    .records
                    .ok_or_else(|| Refusal::new(ErrorCode::CorruptMessage, "null record set"))?;
                let settings = partition.settings();
                let added = added.get(&(topic_data.name.clone(), data.index)).copied();
                SCRATCH
                    .with(|scratch| {
                        let mut out = scratch.borrow_mut();
                        let result = prepare_and_append(
                            broker,
                            &partition,
                            &topic_data.name,
                            records,
                            &settings,
                            (version, now),
                            added,
                            &mut out,
                        );
                        if out.capacity() > SCRATCH_KEEP_BYTES {
                            *out = Vec::new();
                        }
                        result
                    })
                    .map(|(info, log_append_time)| (partition, info, log_append_time))
            })();
            match result {
                Ok((partition, info, log_append_time)) => {
                    resp.error_code = ErrorCode::None.code();
                    resp.base_offset = info.first_offset;
                    resp.log_append_time_ms = log_append_time;
                    resp.log_start_offset = partition.log_start_offset();
                    appended.push((
                        ti,
                        pi,
                        Appended {
                            end_offset: info.last_offset + 1,
                            partition,
                        },
                    ));
                }
                Err(refusal) => {
                    debug!(topic = %topic_data.name, partition = data.index, error = refusal.code.name(), message = %refusal.message, "produce refused");
                    any_error.get_or_insert_with(|| {
                        format!(
                            "{}-{}: {} ({})",
                            topic_data.name,
                            data.index,
                            refusal.code.name(),
                            refusal.message
                        )
                    });
                    resp.error_code = refusal.code.code();
                    if refusal.code == ErrorCode::NotLeaderOrFollower
                        && version >= CURRENT_LEADER_MIN_VERSION
                        && let Some(t) = &topic
                    {
                        let (leader_id, leader_epoch) =
                            leader_endpoints.refer(&view, t.id, data.index, listener);
                        resp.current_leader = LeaderIdAndEpoch {
                            leader_id,
                            leader_epoch,
                            ..Default::default()
                        };
                    }
                    if version >= 8 {
                        resp.error_message = Some(refusal.message.clone());
                        resp.record_errors = refusal
                            .record_errors
                            .into_iter()
                            .map(|(index, message)| BatchIndexAndErrorMessage {
                                batch_index: index as i32,
                                batch_index_error_message: Some(message),
                                ..Default::default()
                            })
                            .collect();
                    }
                }
            }
            partition_responses.push(resp);
        }
        responses.push(TopicProduceResponse {
            name: topic_data.name,
            topic_id: topic_data.topic_id,
            partition_responses,
            ..Default::default()
        });
    }
    drop(order_guards);
    if !appended.is_empty() {
        broker.data_arrived.notify_waiters();
    }

    if acks == 0 {
        return match any_error {
            Some(reason) => {
                warn!(reason = %reason, "closing connection after a failed acks=0 produce");
                Outcome::Close(reason)
            }
            None => Outcome::NoResponse,
        };
    }

    // acks=all waits for the fsync (unless arus.acks.all.fsync=false); any acks waits for it
    // when the append reached the topic's `flush.messages`, as Kafka flushes in the append.
    let fsync_all = acks == -1 && broker.config.acks_all_fsync;
    let must_sync: Vec<_> = appended
        .iter()
        .filter(|(_, _, a)| fsync_all || a.partition.flush_messages_reached(a.end_offset))
        .collect();
    if !must_sync.is_empty() {
        for (_, _, a) in &must_sync {
            broker.request_flush(a.partition.clone());
        }
        let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
        let deadline = tokio::time::Instant::now() + timeout;
        for (ti, pi, a) in must_sync {
            let waited = tokio::time::timeout_at(
                deadline,
                a.partition.wait_flushed_or_offline(a.end_offset),
            )
            .await;
            let resp = &mut responses[*ti].partition_responses[*pi];
            match waited {
                Ok(true) => {}
                // The fsync failed and took the directory offline: not durable.
                Ok(false) => {
                    resp.error_code = ErrorCode::KafkaStorageError.code();
                    if version >= 8 {
                        resp.error_message =
                            Some(format!("{}", a.partition.location().offline_error()));
                    }
                }
                Err(_) => {
                    resp.error_code = ErrorCode::RequestTimedOut.code();
                    if version >= 8 {
                        resp.error_message =
                            Some("timed out waiting for the write to reach stable storage".into());
                    }
                }
            }
        }
    }

    if acks == -1 {
        await_in_sync_replicas(&appended, &mut responses, request.timeout_ms, version).await;
    }

    Outcome::Respond(Response::Produce(ProduceResponse {
        responses,
        node_endpoints: leader_endpoints
            .into_nodes()
            .map(|n| NodeEndpoint {
                node_id: n.id,
                host: n.host,
                port: n.port,
                rack: n.rack,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }))
}

/// acks=all: each appended partition is answered once its in-sync replicas have the batch
/// (the high watermark reached its end, Kafka's `DelayedProduce`), with
/// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below `min.insync.replicas` meanwhile
/// and REQUEST_TIMED_OUT after the request's `timeout_ms`. A partition with no other replica
/// is answered at once (its high watermark moved with the append).
async fn await_in_sync_replicas(
    appended: &[(usize, usize, Appended)],
    responses: &mut [TopicProduceResponse],
    timeout_ms: i32,
    version: i16,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
    for (ti, pi, a) in appended {
        let resp = &mut responses[*ti].partition_responses[*pi];
        if resp.error_code != ErrorCode::None.code() {
            continue;
        }
        let refusal = match tokio::time::timeout_at(
            deadline,
            a.partition.wait_replicated(a.end_offset),
        )
        .await
        {
            Ok(true) => None,
            Ok(false) => Some((
                ErrorCode::NotEnoughReplicasAfterAppend,
                "the ISR shrank below min.insync.replicas while the records were replicated",
            )),
            Err(_) => Some((
                ErrorCode::RequestTimedOut,
                "timed out waiting for the in-sync replicas to copy the records",
            )),
        };
        if let Some((code, message)) = refusal {
            debug!(topic = %a.partition.topic, partition = a.partition.index, error = code.name(), "acks=all not satisfied");
            resp.error_code = code.code();
            if version >= 8 {
                resp.error_message = Some(message.to_string());
            }
        }
    }
}
