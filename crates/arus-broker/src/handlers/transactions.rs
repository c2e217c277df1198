//! The transactional APIs of the transaction coordinator: InitProducerId (idempotent and
//! transactional producers), AddPartitionsToTxn (the client form up to v3, the batched
//! broker form with `verify_only` from v4), AddOffsetsToTxn, EndTxn, DescribeTransactions,
//! ListTransactions; and DescribeProducers, which reads the partitions' producer state.
//!
//! Every state change is answered after its `__transaction_state` record is fsynced (EndTxn
//! after its markers are, too: see `crate::txn`). Old
//! request versions get INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED, as in
//! Kafka's request handlers (KIP-588).

use std::collections::BTreeSet;
use std::sync::Arc;

use arus_protocol::ErrorCode;
use arus_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use arus_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use arus_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use arus_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use arus_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use arus_protocol::messages::end_txn_response::EndTxnResponse;
use arus_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use arus_protocol::messages::list_transactions_response::{
    ListTransactionsResponse, TransactionState as ListedState,
};
use arus_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeProducersRequest,
    DescribeTransactionsRequest, EndTxnRequest, InitProducerIdRequest, ListTransactionsRequest,
};
use arus_txn::{TopicPartition, TxnState};
use tracing::debug;

use crate::Broker;
use crate::cluster::coordinators::{self, Coordinator};
use crate::cluster::{Access, serve_local};
use crate::groups::{OFFSETS_TOPIC, offsets_topic};
use crate::handlers::transactional_id_pattern::TransactionalIdPattern;

/// How long EndTxn waits for its markers before answering anyway.
const MARKER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves when every receiver has fired (or its task ended).
async fn futures_join(markers: Vec<tokio::sync::oneshot::Receiver<()>>) {
    for m in markers {
        let _ = m.await;
    }
}

/// KIP-588: request versions below `fenced_since` know INVALID_PRODUCER_EPOCH only.
fn for_version(code: ErrorCode, version: i16, fenced_since: i16) -> ErrorCode {
    if code == ErrorCode::ProducerFenced && version < fenced_since {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
}

/// Why `transactional_id` is not served here now (loading, or led elsewhere).
fn not_ready(broker: &Broker, transactional_id: &str) -> Option<ErrorCode> {
    broker.txns.coordinator_error(broker, transactional_id)
}

pub async fn init_producer_id(
    broker: &Arc<Broker>,
    r: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let fail = |code: ErrorCode| InitProducerIdResponse {
        error_code: for_version(code, version, 4).code(),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    let transactional_id = r.transactional_id.as_deref().filter(|id| !id.is_empty());
    if let Some(id) = transactional_id
        && let Some(code) = not_ready(broker, id)
    {
        return fail(code);
    }
    // KIP-360: v3+ producers send the id/epoch they already have (-1 when none).
    let expected =
        (version >= 3 && r.producer_id >= 0).then_some((r.producer_id, r.producer_epoch));
    let (result, after) = broker.txns.locked(broker, |c, ids, now| {
        c.init_producer_id(
            transactional_id,
            r.transaction_timeout_ms,
            expected,
            ids,
            now,
        )
    });
    let persisted = broker.txns.finish(broker, after).await;
    match (result, persisted) {
        (Ok((producer_id, producer_epoch)), Ok(())) => InitProducerIdResponse {
            error_code: 0,
            producer_id,
            producer_epoch,
            ..Default::default()
        },
        (Ok(_), Err(e)) => fail(e.code()),
        (Err(code), _) => {
            debug!(transactional_id = ?transactional_id, error = code.name(), "InitProducerId refused");
            fail(code)
        }
    }
}

/// The partitions of `topics` that exist, and per-partition errors for the others (Kafka:
/// UNKNOWN_TOPIC_OR_PARTITION for those, OPERATION_NOT_ATTEMPTED for the rest).
fn check_partitions(
    broker: &Broker,
    topics: &[AddPartitionsToTxnTopic],
) -> Result<Vec<TopicPartition>, Vec<(TopicPartition, ErrorCode)>> {
    let mut ok = Vec::new();
    let mut unknown = BTreeSet::new();
    for t in topics {
        let topic = broker.topics.get(&t.name);
        for &p in &t.partitions {
            let tp = TopicPartition {
                topic: t.name.clone(),
                partition: p,
            };
            if topic.as_ref().is_some_and(|t| t.has_partition(p)) {
                ok.push(tp);
            } else {
                unknown.insert(tp);
            }
        }
    }
    if unknown.is_empty() {
        return Ok(ok);
    }
    let mut all: Vec<(TopicPartition, ErrorCode)> = ok
        .into_iter()
        .map(|tp| (tp, ErrorCode::OperationNotAttempted))
        .collect();
    all.extend(
        unknown
            .into_iter()
            .map(|tp| (tp, ErrorCode::UnknownTopicOrPartition)),
    );
    Err(all)
}

fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    code_of: impl Fn(&str, i32) -> ErrorCode,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| AddPartitionsToTxnPartitionResult {
                    partition_index: p,
                    partition_error_code: code_of(&t.name, p).code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// One transaction's AddPartitionsToTxn; per-partition codes.
async fn add_one(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let uniform = |code: ErrorCode| topic_results(topics, |_, _| code);
    if let Some(code) = not_ready(broker, transactional_id) {
        return uniform(code);
    }
    let partitions = match check_partitions(broker, topics) {
        Ok(p) => p,
        Err(codes) => {
            return topic_results(topics, |t, p| {
                codes
                    .iter()
                    .find(|(tp, _)| tp.topic == t && tp.partition == p)
                    .map_or(ErrorCode::UnknownServerError, |(_, c)| *c)
            });
        }
    };
    if verify_only {
        let codes = broker
            .txns
            .read(|c| c.verify_partitions(producer_id, producer_epoch, &partitions));
        return topic_results(topics, |t, p| {
            partitions
                .iter()
                .position(|tp| tp.topic == t && tp.partition == p)
                .and_then(|i| codes.get(i).copied())
                .unwrap_or(ErrorCode::UnknownServerError)
        });
    }
    // v5 without `verify_only` is a partition leader adding the partitions of a Produce
    // v12+ or TxnOffsetCommit v5+ (Kafka's `TransactionVersion.transactionVersionForAddPartitionsToTxn`:
    // transactions v2 above v4, so the transaction may start here and EndTxn bumps the epoch).
    let client_tv = if version >= 5 { 2 } else { 0 };
    let (result, after) = broker.txns.locked(broker, |c, _, now| {
        c.add_partitions_for(
            transactional_id,
            producer_id,
            producer_epoch,
            &partitions,
            client_tv,
            now,
        )
    });
    let persisted = broker.txns.finish(broker, after).await;
    let code = match (result, persisted) {
        (Ok(()), Ok(())) => ErrorCode::None,
        (Ok(()), Err(e)) => e.code(),
        (Err(code), _) => for_version(code, version, 2),
    };
    uniform(code)
}

pub async fn add_partitions(
    broker: &Arc<Broker>,
    r: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let results = add_one(
            broker,
            &r.v3_and_below_transactional_id,
            r.v3_and_below_producer_id,
            r.v3_and_below_producer_epoch,
            false,
            &r.v3_and_below_topics,
            version,
        )
        .await;
        return AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: results,
            ..Default::default()
        };
    }
    let mut results = Vec::with_capacity(r.transactions.len());
    for t in &r.transactions {
        let topic_results = add_one(
            broker,
            &t.transactional_id,
            t.producer_id,
            t.producer_epoch,
            t.verify_only,
            &t.topics,
            version,
        )
        .await;
        results.push(AddPartitionsToTxnResult {
            transactional_id: t.transactional_id.clone(),
            topic_results,
            ..Default::default()
        });
    }
    AddPartitionsToTxnResponse {
        results_by_transaction: results,
        ..Default::default()
    }
}

/// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction, so
/// that its COMMIT/ABORT marker completes the TxnOffsetCommit that follows.
pub async fn add_offsets(
    broker: &Arc<Broker>,
    r: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let reply = |code: ErrorCode| AddOffsetsToTxnResponse {
        error_code: code.code(),
        ..Default::default()
    };
    if let Some(code) = not_ready(broker, &r.transactional_id) {
        return reply(code);
    }
    let topic = match offsets_topic(broker) {
        Ok(t) => t,
        Err(_) => return reply(ErrorCode::CoordinatorNotAvailable),
    };
    let tp = [TopicPartition {
        topic: OFFSETS_TOPIC.to_string(),
        partition: arus_group::records::offsets_partition_for(&r.group_id, topic.partition_count()),
    }];
    let (result, after) = broker.txns.locked(broker, |c, _, now| {
        c.add_partitions(
            &r.transactional_id,
            r.producer_id,
            r.producer_epoch,
            &tp,
            now,
        )
    });
    let persisted = broker.txns.finish(broker, after).await;
    reply(match (result, persisted) {
        (Ok(()), Ok(())) => ErrorCode::None,
        (Ok(()), Err(e)) => e.code(),
        (Err(code), _) => for_version(code, version, 2),
    })
}

/// EndTxn: v0–4 are transactions v1 (the epoch stays), v5+ transactions v2 (Kafka's
/// `TransactionVersion.transactionVersionForEndTxn`: every commit or abort bumps the epoch
/// and the answer carries the producer id and epoch to continue with). Answered once the
/// Prepare record and the markers are durable (see `crate::txn`).
pub async fn end_txn(broker: &Arc<Broker>, r: EndTxnRequest, version: i16) -> EndTxnResponse {
    let reply = |code: ErrorCode, (producer_id, producer_epoch): (i64, i16)| EndTxnResponse {
        error_code: code.code(),
        producer_id,
        producer_epoch,
        ..Default::default()
    };
    const NONE: (i64, i16) = (-1, -1);
    if let Some(code) = not_ready(broker, &r.transactional_id) {
        return reply(code, NONE);
    }
    let (result, after) = broker.txns.locked(broker, |c, ids, now| {
        if version >= 5 {
            c.end_txn_v2(
                &r.transactional_id,
                r.producer_id,
                r.producer_epoch,
                r.committed,
                ids,
                now,
            )
        } else {
            c.end_txn(
                &r.transactional_id,
                r.producer_id,
                r.producer_epoch,
                r.committed,
                now,
            )
            .map(|()| NONE)
        }
    });
    let persisted = broker.txns.finish_with_markers(broker, after).await;
    match (result, persisted) {
        (Ok(pair), Ok(markers)) => {
            // Answer once the markers are durable (bounded: the outcome is already decided
            // by the durable Prepare record, so a slow marker only delays the answer).
            let all = futures_join(markers);
            let _ = tokio::time::timeout(MARKER_WAIT, all).await;
            reply(ErrorCode::None, pair)
        }
        (Ok(_), Err(e)) => reply(e.code(), NONE),
        (Err(code), _) => {
            debug!(transactional_id = %r.transactional_id, version, error = code.name(), "EndTxn refused");
            reply(for_version(code, version, 2), NONE)
        }
    }
}

pub fn describe(broker: &Broker, r: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let transaction_states = r
        .transactional_ids
        .into_iter()
        .map(|id| {
            let failed = |code: ErrorCode, id: String| TransactionState {
                error_code: code.code(),
                transactional_id: id,
                transaction_state: String::new(),
                transaction_start_time_ms: -1,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            };
            if let Some(code) = not_ready(broker, &id) {
                return failed(code, id);
            }
            let Some(d) = broker.txns.read(|c| c.describe(&id)) else {
                return failed(ErrorCode::TransactionalIdNotFound, id);
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for tp in d.partitions {
                match topics.last_mut() {
                    Some(t) if t.topic == tp.topic => t.partitions.push(tp.partition),
                    _ => topics.push(TopicData {
                        topic: tp.topic,
                        partitions: vec![tp.partition],
                        ..Default::default()
                    }),
                }
            }
            TransactionState {
                error_code: 0,
                transactional_id: id,
                transaction_state: d.state.to_string(),
                transaction_timeout_ms: d.timeout_ms,
                transaction_start_time_ms: d.start_ms,
                producer_id: d.producer_id,
                producer_epoch: d.producer_epoch,
                topics,
                ..Default::default()
            }
        })
        .collect();
    DescribeTransactionsResponse {
        transaction_states,
        ..Default::default()
    }
}

pub fn list(broker: &Broker, r: ListTransactionsRequest, version: i16) -> ListTransactionsResponse {
    if let Some(code) = broker.txns.list_error() {
        return ListTransactionsResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let pattern = if version >= 2 {
        r.transactional_id_pattern.as_deref()
    } else {
        None
    };
    let pattern = match TransactionalIdPattern::compile(pattern) {
        Ok(p) => p,
        Err(e) => {
            // The response carries no message (nor the unknown state filters, as Kafka's
            // error response): the operator's log has it.
            tracing::info!(error = %e, "ListTransactions refused");
            return ListTransactionsResponse {
                error_code: ErrorCode::InvalidRegularExpression.code(),
                ..Default::default()
            };
        }
    };
    let (known, unknown): (Vec<String>, Vec<String>) = r
        .state_filters
        .into_iter()
        .partition(|s| TxnState::from_name(s).is_some());
    // Filtering on nothing but unknown states matches nothing (Kafka's behaviour).
    if known.is_empty() && !unknown.is_empty() {
        return ListTransactionsResponse {
            unknown_state_filters: unknown,
            ..Default::default()
        };
    }
    let min_duration = if version >= 1 { r.duration_filter } else { -1 };
    let now = crate::broker::now_ms();
    let listed = broker
        .txns
        .read(|c| c.list(&known, &r.producer_id_filters, min_duration, now));
    ListTransactionsResponse {
        unknown_state_filters: unknown,
        transaction_states: listed
            .into_iter()
            .filter(|t| pattern.matches(&t.transactional_id))
            // A coordinator lists the transactions of the partitions it owns; the admin
            // client asks every broker and merges.
            .filter(|t| {
                coordinators::coordinates(broker, Coordinator::Transaction, &t.transactional_id)
            })
            .map(|t| ListedState {
                transactional_id: t.transactional_id,
                producer_id: t.producer_id,
                transaction_state: t.state.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub fn describe_producers(
    broker: &Broker,
    r: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let view = broker.cluster.current();
    DescribeProducersResponse {
        topics: r
            .topics
            .into_iter()
            .map(|t| {
                let topic = broker.topics.get(&t.name);
                TopicResponse {
                    partitions: t
                        .partition_indexes
                        .into_iter()
                        .map(|index| {
                            let unknown = || PartitionResponse {
                                partition_index: index,
                                error_code: ErrorCode::UnknownTopicOrPartition.code(),
                                error_message: Some(
                                    "This server does not host this topic-partition.".into(),
                                ),
                                ..Default::default()
                            };
                            let Some(t) = topic.as_ref() else {
                                return unknown();
                            };
                            // Kafka's `Partition.activeProducerState`: any replica with a log
                            // here answers; without one, NOT_LEADER_OR_FOLLOWER.
                            let local = t.partition(index);
                            let p = match serve_local(
                                &view,
                                t.id,
                                index,
                                local,
                                None,
                                Access::AnyReplica,
                            ) {
                                Ok(p) => p,
                                Err(ErrorCode::UnknownTopicOrPartition) => return unknown(),
                                Err(code) => {
                                    return PartitionResponse {
                                        partition_index: index,
                                        error_code: code.code(),
                                        ..Default::default()
                                    };
                                }
                            };
                            PartitionResponse {
                                partition_index: index,
                                error_code: 0,
                                active_producers: p
                                    .producers()
                                    .into_iter()
                                    .map(|v| ProducerState {
                                        producer_id: v.producer_id,
                                        producer_epoch: i32::from(v.producer_epoch),
                                        last_sequence: v.last_sequence,
                                        last_timestamp: v.last_timestamp,
                                        coordinator_epoch: v.coordinator_epoch,
                                        current_txn_start_offset: v.current_txn_start_offset,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    name: t.name,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}
